"""Checkpoints: loading, residual-stream hooks, generation."""

from cg_gate.models._generate import cached_responses, complete, generate
from cg_gate.models._hooks import (
    HookName,
    HookPoint,
    capture_at_hook,
    find_decoder_layers,
    parse_hook_name,
    resolve_hook,
)
from cg_gate.models._load import (
    LoadedModel,
    ModelSource,
    ModelSpec,
    default_model_spec,
    load_model,
    resolve_source,
)
from cg_gate.models._settings import DEVICE_CHOICES, DTYPE_CHOICES, LoadSettings
from cg_gate.models._digest import combine_digests, dir_sha256, file_sha256

__all__ = [
    "DEVICE_CHOICES",
    "DTYPE_CHOICES",
    "HookName",
    "HookPoint",
    "LoadSettings",
    "LoadedModel",
    "ModelSource",
    "ModelSpec",
    "cached_responses",
    "capture_at_hook",
    "combine_digests",
    "complete",
    "default_model_spec",
    "dir_sha256",
    "file_sha256",
    "find_decoder_layers",
    "generate",
    "load_model",
    "parse_hook_name",
    "resolve_hook",
    "resolve_source",
]
