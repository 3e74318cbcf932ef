"""Checkpoints: loading, residual-stream hooks, generation."""

from cg_gate.models._generate import (
    Generated,
    cached_responses,
    complete,
    count_tokens,
    generate,
    generate_samples,
)
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
from cg_gate.models._settings import DEVICE_CHOICES, DTYPE_CHOICES, LoadSettings, parse_max_memory
from cg_gate.models._digest import combine_digests, dir_sha256, file_sha256

__all__ = [
    "DEVICE_CHOICES",
    "DTYPE_CHOICES",
    "Generated",
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
    "count_tokens",
    "default_model_spec",
    "dir_sha256",
    "file_sha256",
    "find_decoder_layers",
    "generate",
    "generate_samples",
    "load_model",
    "parse_hook_name",
    "parse_max_memory",
    "resolve_hook",
    "resolve_source",
]
