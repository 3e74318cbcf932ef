"""Residual-stream hook points on Hugging Face decoder models, and the truncated forward.

sae-lens names hook points the TransformerLens way: `blocks.L.hook_resid_pre` is the
hidden state entering decoder block L, `blocks.L.hook_resid_post` the one leaving it.
On a Hugging Face model those are the input and the output of the L-th module of the
decoder's `nn.ModuleList`, which is found by inspecting the model (the ModuleList whose
length is the config's layer count), not by a table of attribute names per family.

A forward pass only needs to run up to the hook: `capture_at_hook` registers a hook
that stores the residual and raises a private exception, so layers above never run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cg_gate.errors import SAELoadError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

HookKind = Literal["resid_pre", "resid_post"]

_HOOK_RE = re.compile(r"^blocks\.(\d+)\.hook_(resid_pre|resid_post)$")
ACCEPTED_HOOK_FORMS = "blocks.<L>.hook_resid_post or blocks.<L>.hook_resid_pre"


@dataclass(frozen=True)
class HookName:
    """A parsed sae-lens hook name."""

    name: str
    layer: int
    kind: HookKind


@dataclass(frozen=True)
class HookPoint:
    """Where on a loaded model a hook name lands: decoder block `layer`, before or after it."""

    name: str
    layer: int
    kind: HookKind
    module: Any  # the decoder block (torch.nn.Module)


def parse_hook_name(hook_name: str) -> HookName:
    """Parse `blocks.L.hook_resid_post` / `blocks.L.hook_resid_pre`; anything else is an error."""
    m = _HOOK_RE.match(hook_name.strip())
    if not m:
        raise SAELoadError(
            f"hook '{hook_name}' is not a residual-stream hook cg-gate can read",
            fix=f"use an SAE trained on {ACCEPTED_HOOK_FORMS}",
        )
    return HookName(name=hook_name.strip(), layer=int(m.group(1)), kind=m.group(2))  # type: ignore[arg-type]


def num_layers_of(config: Any) -> int | None:
    """The decoder layer count a transformers config declares."""
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in ("num_hidden_layers", "n_layer", "num_layers"):
        value = getattr(cfg, attr, None)
        if isinstance(value, int):
            return value
    return None


def find_decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder blocks, found by inspection.

    Candidates are `nn.ModuleList`s whose length equals the config's layer count and whose
    entries share one class; the shallowest wins (llama `model.layers`, gpt2
    `transformer.h`, gpt_neox `gpt_neox.layers`, ...).
    """
    from torch import nn

    n = num_layers_of(model.config)
    candidates: list[tuple[int, str, nn.ModuleList]] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if n is not None and len(module) != n:
            continue
        if len({type(m) for m in module}) != 1:
            continue
        candidates.append((name.count("."), name, module))
    if not candidates:
        raise SAELoadError(
            f"cannot find the decoder layers of this {type(model).__name__} "
            f"(no ModuleList of {n} identical blocks)",
            fix="use a decoder-only transformers model (llama, mistral, qwen2, gemma2, gpt2, gpt_neox, ...)",
        )
    candidates.sort(key=lambda c: (c[0], c[1]))
    return candidates[0][2]


def resolve_hook(model: nn.Module, hook_name: str) -> HookPoint:
    """Map an sae-lens hook name onto the model's decoder block."""
    parsed = parse_hook_name(hook_name)
    layers = find_decoder_layers(model)
    if not 0 <= parsed.layer < len(layers):
        raise SAELoadError(
            f"hook '{hook_name}' asks for layer {parsed.layer}, but the model has "
            f"{len(layers)} decoder layers (0..{len(layers) - 1})",
            fix="use an SAE trained for this model's depth, or the matching checkpoint",
        )
    return HookPoint(name=parsed.name, layer=parsed.layer, kind=parsed.kind, module=layers[parsed.layer])


class _StopForward(Exception):
    """Raised by the capture hook to end the forward pass at the hook layer."""


def capture_at_hook(
    model: nn.Module,
    hook: HookPoint,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run the model up to `hook` and return the residual stream there, (batch, seq, d).

    The forward pass is cut at the hook: blocks above it never run, nor does the head.
    On a model spread over devices (`--device auto`) the residual is returned where the
    hook's block ran — another GPU, or the CPU for offloaded blocks; callers move it to
    where they compute (the SAE's device). accelerate's per-block hooks have already put
    offloaded weights back when the capture hook stops the pass.
    """
    captured: list[torch.Tensor] = []

    def post_hook(_module: Any, _args: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, (tuple, list)) else output)
        raise _StopForward

    def pre_hook(_module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        hidden = args[0] if args else kwargs.get("hidden_states")
        if hidden is None:
            raise SAELoadError(
                f"cannot read the input of decoder block {hook.layer} for '{hook.name}'",
                fix="use a blocks.<L>.hook_resid_post SAE with this model",
            )
        captured.append(hidden)
        raise _StopForward

    if hook.kind == "resid_post":
        handle = hook.module.register_forward_hook(post_hook)
    else:
        handle = hook.module.register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not captured:
        raise SAELoadError(
            f"the forward pass never reached '{hook.name}'",
            fix="check that the model's forward runs its decoder blocks in order",
        )
    return captured[0]
