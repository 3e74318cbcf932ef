"""How checkpoints (and the SAE beside them) are loaded: decided once, at the CLI edge."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cg_gate.errors import ConfigError

DEVICE_CHOICES = ("cpu", "cuda", "mps", "auto")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")


def _cuda_available() -> bool:
    import torch  # only when cuda or auto is asked for: `--device cpu` imports no torch here

    return bool(torch.cuda.is_available())


class LoadSettings(BaseModel):
    """Device, dtype and the safety switches every load of the run shares.

    `device` is concrete ('cpu' or 'cuda'): `resolve` turns the user's choice into it and
    refuses what cannot run, so nothing downstream normalises a device again.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    device: Literal["cpu", "cuda"] = Field("cpu", description="Device models and the SAE run on.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="Weights dtype.")
    offline: bool = Field(True, description="Forbid network access (hub lookups).")
    allow_pickle: bool = Field(False, description="Allow pickle weight files.")
    trust_remote_code: bool = Field(False, description="Allow model code from the checkpoint.")

    @classmethod
    def resolve(cls, *, device: str = "cpu", **rest: Any) -> LoadSettings:
        """The settings with `device` made concrete; ConfigError (exit 2) where it cannot run."""
        if device == "mps":
            raise ConfigError("device 'mps' is not supported: models and SAEs run on cpu or cuda",
                              fix="use --device cpu, cuda or auto")
        if device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"unknown device {device!r}", fix="use --device cpu, cuda or auto")
        if device != "cpu":
            available = _cuda_available()
            if device == "cuda" and not available:
                raise ConfigError("device 'cuda' was asked for but no CUDA device is available",
                                  fix="use --device cpu or --device auto")
            device = "cuda" if available else "cpu"
        return cls(device=device, **rest)

    def spec_fields(self) -> dict[str, Any]:
        """These settings as `ModelSpec` fields."""
        return self.model_dump()
