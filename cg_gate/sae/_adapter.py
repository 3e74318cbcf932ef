"""The one place cg-gate touches sae-lens: loading an SAE and running encode/decode.

Two sources: a directory written by sae-lens `save_model` (cfg.json +
sae_weights.safetensors), loaded with `SAE.load_from_disk`; or a release/sae_id of the
sae-lens pretrained registry, loaded with `SAE.from_pretrained_with_cfg_and_sparsity`
(which resolves through huggingface_hub, so offline it reads the local HF cache).
Any architecture sae-lens registers for inference works (standard, gated, jumprelu,
topk, batchtopk, ...).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cg_gate.errors import SAELoadError
from cg_gate.models import combine_digests, file_sha256
from cg_gate.models import parse_hook_name
from cg_gate.record import SAEInfo

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from cg_gate.models import LoadedModel

SAE_CFG = "cfg.json"
SAE_WEIGHTS = "sae_weights.safetensors"


class SAESpec(BaseModel):
    """Which SAE: `release` + `sae_id` from the sae-lens registry, or a local `path`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    release: str | None = Field(None, description="sae-lens pretrained release name.")
    sae_id: str | None = Field(None, description="SAE id within the release.")
    path: Path | None = Field(None, description="Directory with cfg.json + sae_weights.safetensors.")
    device: str = Field("cpu", description="Device the SAE runs on.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="SAE dtype.")

    @model_validator(mode="after")
    def _one_source(self) -> SAESpec:
        if (self.path is None) == (self.release is None):
            raise ValueError("give either path, or release and sae_id")
        if self.release is not None and not self.sae_id:
            raise ValueError("a release needs an sae_id")
        return self

    @property
    def source(self) -> str:
        """'release/sae_id', or the directory."""
        return str(self.path) if self.path is not None else f"{self.release}/{self.sae_id}"


@dataclass
class LoadedSAE:
    """A loaded SAE: `encode`/`decode` on tensors, and what the run record says about it."""

    sae: Any
    info: SAEInfo
    spec: SAESpec
    log_sparsity: Any = field(default=None, repr=False)

    @property
    def dtype(self) -> torch.dtype:
        """Torch dtype of the SAE's weights."""
        return self.sae.W_dec.dtype

    @property
    def device(self) -> torch.device:
        """Torch device of the SAE's weights."""
        return self.sae.W_dec.device

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations f (…, d_sae) ≥ 0 of residuals x (…, d_in)."""
        return self.sae.encode(x.to(device=self.device, dtype=self.dtype))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Reconstruction x̂ (…, d_in) of feature activations f."""
        return self.sae.decode(f)


def _training_fve(directory: Path | None) -> float | None:
    if directory is None:
        return None
    sidecar = directory / "training.json"
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    # Flat ({"fve": …}) or as cg-gate's training scripts write it ({"figures": {"fve": …}}).
    for scope in (data, data.get("figures")):
        if not isinstance(scope, dict):
            continue
        for key in ("fve", "explained_variance", "training_fve"):
            value = scope.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
    return None


def _state_digest(sae: Any, cfg: dict[str, Any]) -> str:
    import torch

    h = hashlib.sha256()
    for name, tensor in sorted(sae.state_dict().items()):
        raw = tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8)
        h.update(name.encode())
        h.update(raw.numpy().tobytes())
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _describe(sae: Any, spec: SAESpec, digest: str, directory: Path | None) -> SAEInfo:
    hook_name = sae.cfg.metadata.get("hook_name", None)
    if not hook_name:
        raise SAELoadError("the SAE's config names no hook (metadata.hook_name)",
                           path=spec.source,
                           fix="set metadata.hook_name in cfg.json, e.g. blocks.20.hook_resid_post")
    hook = parse_hook_name(str(hook_name))
    if getattr(sae.cfg, "reshape_activations", "none") != "none":
        raise SAELoadError(f"SAE reshapes its input ({sae.cfg.reshape_activations}); "
                           "cg-gate reads the residual stream only", path=spec.source,
                           fix="use a residual-stream SAE")
    return SAEInfo(
        source=spec.source,
        hook=hook.name,
        layer=hook.layer,
        hook_kind=hook.kind,
        d_in=int(sae.cfg.d_in),
        d_sae=int(sae.cfg.d_sae),
        architecture=str(sae.cfg.architecture()),
        digest=digest,
        training_fve=_training_fve(directory),
    )


def _load_from_disk(spec: SAESpec) -> LoadedSAE:
    from sae_lens import SAE

    directory = Path(spec.path).expanduser()  # type: ignore[arg-type]
    if not directory.is_dir():
        raise SAELoadError("SAE directory not found", path=directory,
                           fix="pass a directory written by sae-lens save_model (cfg.json + "
                           "sae_weights.safetensors), or --sae-release/--sae-id")
    for name in (SAE_CFG, SAE_WEIGHTS):
        if not (directory / name).is_file():
            raise SAELoadError(f"the SAE directory has no {name}", path=directory,
                               fix="pass a directory written by sae-lens save_model")
    try:
        json.loads((directory / SAE_CFG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SAELoadError(f"cfg.json cannot be read ({exc})", path=directory / SAE_CFG,
                           fix="restore the SAE's cfg.json") from None
    try:
        sae = SAE.load_from_disk(str(directory), device=spec.device, dtype=spec.dtype)
    except Exception as exc:
        raise SAELoadError(f"sae-lens cannot load this SAE: {exc}", path=directory,
                           fix="check cfg.json's architecture and that the weights match it") from None
    digest = combine_digests({SAE_WEIGHTS: file_sha256(directory / SAE_WEIGHTS),
                              SAE_CFG: file_sha256(directory / SAE_CFG)})
    return LoadedSAE(sae=sae.eval(), info=_describe(sae, spec, digest, directory), spec=spec)


def _load_from_registry(spec: SAESpec) -> LoadedSAE:
    from sae_lens import SAE

    try:
        sae, cfg, log_sparsity = SAE.from_pretrained_with_cfg_and_sparsity(
            spec.release, spec.sae_id, device=spec.device, dtype=spec.dtype)  # type: ignore[arg-type]
    except ValueError as exc:
        raise SAELoadError(f"sae-lens registry: {exc}", path=spec.source,
                           fix="check --sae-release and --sae-id against the sae-lens pretrained "
                           "SAE list") from None
    except Exception as exc:
        raise SAELoadError(
            f"cannot fetch SAE {spec.source} ({type(exc).__name__}); cg-gate runs offline and "
            "the SAE is not in the local Hugging Face cache",
            path=spec.source,
            fix="download it once where there is network (it lands in the HF cache), or pass a "
            "local SAE directory with --sae",
        ) from None
    digest = _state_digest(sae, cfg)
    return LoadedSAE(sae=sae.eval(), info=_describe(sae, spec, digest, None), spec=spec,
                     log_sparsity=log_sparsity)


def load_sae(spec: SAESpec) -> LoadedSAE:
    """Load the SAE `spec` names; SAELoadError (exit 2) with a fix when it cannot.

    Digest: for a directory, sha256 over sae_weights.safetensors and cfg.json; for a
    registry SAE, sha256 over the loaded state dict and config (loaders differ in files).
    """
    if spec.path is not None:
        return _load_from_disk(spec)
    return _load_from_registry(spec)


def check_compatible(sae: LoadedSAE, model: LoadedModel) -> None:
    """SAELoadError unless the SAE reads a residual the model has, of the model's width."""
    if sae.info.d_in != model.info.hidden_size:
        raise SAELoadError(
            f"SAE input width d_in={sae.info.d_in} does not match the model's hidden size "
            f"{model.info.hidden_size} ({model.info.architecture})",
            path=sae.info.source,
            fix="use an SAE trained on this model (same residual width and layer)",
        )
    model.hook(sae.info.hook)  # raises for a layer out of range
