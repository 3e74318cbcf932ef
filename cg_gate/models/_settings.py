"""How checkpoints (and the SAE beside them) are loaded: decided once, at the CLI edge."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cg_gate.errors import ConfigError

DEVICE_CHOICES = ("cpu", "cuda", "auto")
_SIZE_RE = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B|B)?$", re.IGNORECASE)
_DEVICE_KEY_RE = re.compile(r"^(\d+|cuda:\d+|cpu|disk)$")


def parse_max_memory(text: str) -> dict[str, str]:
    """`0=20GiB,cpu=60GiB` → {'0': '20GiB', 'cpu': '60GiB'} (GPU index, cpu or disk = size);
    ConfigError (exit 2) for anything else."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        key, eq, size = (x.strip() for x in part.partition("="))
        key = key.lower().removeprefix("cuda:")
        if not eq or not _DEVICE_KEY_RE.match(key) or not _SIZE_RE.match(size):
            raise ConfigError(
                f"--max-memory entry {part!r} is not DEVICE=SIZE",
                fix="write e.g. --max-memory 0=20GiB,1=20GiB,cpu=60GiB (GPU index, cpu or "
                    "disk; sizes in B, KB, MB, GB, KiB, MiB, GiB, ...)")
        if key in out:
            raise ConfigError(f"--max-memory names {key!r} twice", fix="give each device once")
        out[key] = size.replace(" ", "")
    return out

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
    device_map: Literal["auto"] | None = Field(
        None, description="'auto': accelerate spreads each model over the GPUs, CPU and disk.")
    max_memory: dict[str, str] | None = Field(
        None, description="With device_map: bytes each device may hold ('0', 'cpu', 'disk').")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="Weights dtype.")
    offline: bool = Field(True, description="Forbid network access (hub lookups).")
    allow_pickle: bool = Field(False, description="Allow pickle weight files.")
    trust_remote_code: bool = Field(False, description="Allow model code from the checkpoint.")

    @classmethod
    def resolve(cls, *, device: str = "cpu", max_memory: dict[str, str] | None = None,
                **rest: Any) -> LoadSettings:
        """The settings with `device` made concrete; ConfigError (exit 2) where it cannot run.

        `auto` places models with accelerate (`device_map='auto'`) when there is a GPU or a
        `max_memory` budget, and runs the SAE on the first GPU (else the CPU); without either
        it is a plain CPU load.
        """
        if device == "mps":
            raise ConfigError("device 'mps' is not supported: models and SAEs run on cpu or cuda",
                              fix="use --device cpu, cuda or auto")
        if max_memory and device != "auto":
            raise ConfigError("--max-memory applies to --device auto only",
                              fix="add --device auto, or drop --max-memory")
        if device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"unknown device {device!r}", fix="use --device cpu, cuda or auto")
        if device != "cpu":
            available = _cuda_available()
            if device == "cuda" and not available:
                raise ConfigError("device 'cuda' was asked for but no CUDA device is available",
                                  fix="use --device cpu or --device auto")
            if device == "auto" and (available or max_memory):
                rest["device_map"] = "auto"
            device = "cuda" if available else "cpu"
        return cls(device=device, max_memory=max_memory or None, **rest)

    def spec_fields(self) -> dict[str, Any]:
        """These settings as `ModelSpec` fields."""
        return self.model_dump()
