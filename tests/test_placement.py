"""`--device auto`: a model spread over devices by accelerate reads the same activations.

No GPU here: the tiny llama is split across "devices" by a `max_memory` budget that fits the
embeddings and the first decoder blocks in CPU memory and offloads the rest (the SAE's hook
layer among them) to disk, where accelerate runs them on the CPU from the checkpoint.
"""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cg_gate.cli import cli
from cg_gate.errors import ConfigError
from cg_gate.models import LoadSettings, ModelSpec, capture_at_hook, load_model, parse_max_memory
from cg_gate.record import GenerationSettings, TokenPolicy
from cg_gate.sae import ExtractionInput, extract
from cg_gate.suites import Item

BUDGET = {"cpu": "400KB"}  # embeddings (~100 KB) and one or two 160 KB blocks; the rest on disk
TEXTS = ["What is the capital of France?", "The quick brown fox jumps over the lazy dog.",
         "hi", "Please summarise the following paragraph in one sentence."]


@pytest.fixture(scope="module")
def split(tiny_model_dir: Path):
    return load_model(ModelSpec(id=str(tiny_model_dir), device="cpu", device_map="auto",
                                max_memory=BUDGET))


def test_the_budget_really_splits_the_model_with_the_hook_layer_offloaded(split, tiny_loaded):
    placed = split.model.hf_device_map
    assert placed["model.embed_tokens"] == "cpu" and placed["model.layers.0"] == "cpu"
    assert placed["model.layers.2"] == "disk"  # the SAE reads blocks.2.hook_resid_post
    assert split.info.device == "auto (cpu, disk)"
    assert split.device == torch.device("cpu")
    assert split.info.digest == tiny_loaded.info.digest  # the same weights, placed otherwise
    # Offloaded weights are not in memory: they sit on the meta device until their block runs.
    assert split.model.model.layers[2].self_attn.q_proj.weight.device == torch.device("meta")


@pytest.mark.parametrize("hook", ["blocks.2.hook_resid_post", "blocks.2.hook_resid_pre",
                                  "blocks.0.hook_resid_post"])
def test_the_hook_reads_the_same_residual_wherever_its_block_lives(split, tiny_loaded, hook):
    enc = tiny_loaded.tokenizer(TEXTS, return_tensors="pt", padding=True, padding_side="right")
    with torch.inference_mode():
        want = capture_at_hook(tiny_loaded.model, tiny_loaded.hook(hook), enc["input_ids"],
                               enc["attention_mask"])
        got = capture_at_hook(split.model, split.hook(hook), enc["input_ids"],
                              enc["attention_mask"])
    assert torch.equal(got, want)


def test_extraction_on_the_split_model_equals_the_unsplit_one(split, tiny_loaded, tiny_sae):
    inputs = [ExtractionInput.for_text(t) for t in TEXTS]
    kw = dict(token_policy=TokenPolicy(), cache=None, batch_size=2, progress=False)
    a, b = extract(tiny_loaded, tiny_sae, inputs, **kw), extract(split, tiny_sae, inputs, **kw)
    assert a.saliency.nnz > 0
    assert (a.saliency != b.saliency).nnz == 0
    for field in ("n_tokens", "sse", "sum_sq", "sum_x", "l0_sum"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field


def test_generation_on_the_split_model_equals_the_unsplit_one(split, tiny_loaded):
    from cg_gate.models import generate

    items = [Item(id=f"q{i}", suite="s", messages=[{"role": "user", "content": t}])
             for i, t in enumerate(TEXTS)]
    settings = GenerationSettings(mode="generate", max_new_tokens=5, batch_size=4)
    want = generate(tiny_loaded, items, settings, cache=None, progress=False)
    assert generate(split, items, settings, cache=None, progress=False) == want
    assert any(want)


def test_the_offload_folder_goes_with_the_model(tiny_model_dir, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    loaded = load_model(ModelSpec(id=str(tiny_model_dir), device="cpu", device_map="auto",
                                  max_memory=BUDGET))
    folders = list(tmp_path.glob("cg-gate-offload-*"))
    assert len(folders) == 1 and folders[0].is_dir()
    del loaded
    gc.collect()
    assert not folders[0].exists()


def test_an_adapter_is_merged_then_the_model_is_spread(tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                                LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                           init_lora_weights=False))
    peft_model.save_pretrained(tmp_path / "adapter")
    spec = dict(id=str(tiny_model_dir), adapter=str(tmp_path / "adapter"), device="cpu")
    whole = load_model(ModelSpec(**spec))
    split = load_model(ModelSpec(**spec, device_map="auto", max_memory=BUDGET))
    assert "disk" in split.model.hf_device_map.values()
    assert split.info.digest == whole.info.digest
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.inference_mode():
        assert torch.equal(split.model(ids).logits, whole.model(ids).logits)


def test_max_memory_is_parsed_and_bad_entries_are_config_errors():
    assert parse_max_memory("0=20GiB, cuda:1=20GiB,cpu=60GiB,disk=1TB") == {
        "0": "20GiB", "1": "20GiB", "cpu": "60GiB", "disk": "1TB"}
    for bad in ("20GiB", "gpu=1GiB", "0=lots", "cpu=1GiB,cpu=2GiB", ""):
        with pytest.raises(ConfigError):
            parse_max_memory(bad)


def test_auto_uses_accelerate_with_a_gpu_or_a_budget(monkeypatch):
    import cg_gate.models._settings as settings

    monkeypatch.setattr(settings, "_cuda_available", lambda: False)
    plain = LoadSettings.resolve(device="auto")
    assert plain.device == "cpu" and plain.device_map is None
    budget = LoadSettings.resolve(device="auto", max_memory={"cpu": "1GiB", "disk": "9GiB"})
    assert budget.device == "cpu" and budget.device_map == "auto"
    assert budget.spec_fields()["max_memory"] == {"cpu": "1GiB", "disk": "9GiB"}
    monkeypatch.setattr(settings, "_cuda_available", lambda: True)
    gpu = LoadSettings.resolve(device="auto")
    assert gpu.device == "cuda" and gpu.device_map == "auto"
    assert LoadSettings.resolve(device="cuda").device_map is None
    with pytest.raises(ConfigError, match="--device auto only"):
        LoadSettings.resolve(device="cpu", max_memory={"cpu": "1GiB"})


@pytest.mark.parametrize("args, said", [
    (["--max-memory", "cpu=1GiB"], "--device auto"),
    (["--device", "auto", "--max-memory", "gpu0=1GiB"], "DEVICE=SIZE"),
    (["--device", "mps"], "mps"),
])
def test_bad_placement_options_exit_2_before_anything_is_read(tmp_path, args, said):
    res = CliRunner().invoke(cli, ["run", *args, "--out", str(tmp_path / "out"),
                                   "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 2, res.output
    assert said in res.output and "Traceback" not in res.output
    assert not (tmp_path / "cache").exists()
