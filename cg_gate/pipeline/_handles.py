"""A checkpoint and an SAE known by their files, loaded only when a cache entry is missing.

Each handle's identity (and so every cache key) comes from its files; what the model or
SAE says about itself is remembered in the run cache, so a warm re-run imports no torch
and loads nothing.
"""

from __future__ import annotations

import gc
import hashlib
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel

from cg_gate.errors import SAELoadError
from cg_gate.models import LoadSettings
from cg_gate.pipeline._config import SideConfig
from cg_gate.pipeline._fingerprint import fingerprint
from cg_gate.record import ModelInfo, RunCache, SAEInfo

Log = Callable[[str], None]


class _Handle:
    """Lazy load plus metadata: `info` from the run cache, else from loading."""

    kind = ""
    info_type: type[BaseModel] = BaseModel

    def _setup(self, fp: str, cache: RunCache, log: Log) -> None:
        self.fingerprint = fp
        self._cache = cache
        self._log = log
        self._loaded: Any = None
        self.cached_info: Any = cache.read_meta(self.kind, fp, self.info_type)

    def _load(self) -> Any:
        raise NotImplementedError

    @property
    def info(self) -> Any:
        """What the record says about it (from the cache, else by loading it)."""
        if self.cached_info is None:
            self.load()
        return self.cached_info

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> Any:
        """The loaded object, loading it now if needed."""
        if self._loaded is None:
            self._loaded = self._load()
            self.cached_info = self._loaded.info
            self._cache.write_meta(self.kind, self.fingerprint, self.cached_info)
        return self._loaded

    def release(self) -> None:
        """Drop the weights (the next side may need the memory)."""
        if self._loaded is not None:
            self._loaded = None
            gc.collect()


class Checkpoint(_Handle):
    """A model known by its files."""

    kind = "model"
    info_type = ModelInfo

    def __init__(self, side: SideConfig, load: LoadSettings, cache: RunCache, log: Log) -> None:
        from cg_gate.models import ModelSpec, default_model_spec, resolve_source

        if side.model is None:
            spec = default_model_spec().model_copy(update={"adapter": side.adapter})
        else:
            spec = ModelSpec(id=side.model, revision=side.revision, gguf_file=side.gguf_file,
                             adapter=side.adapter)
        self.spec = spec.model_copy(update={**load.spec_fields(),
                                            "digest_cache": cache.file_digests})
        src = resolve_source(self.spec)
        files = src.directory / src.gguf_file if src.gguf_file else src.directory
        adapter = Path(self.spec.adapter) if self.spec.adapter else None
        self._setup(fingerprint([files, adapter], self.spec.dtype, str(self.spec.gguf_file),
                                "model-v1", sidecar=cache.file_digests), cache, log)

    def _load(self) -> Any:
        from cg_gate.models import load_model

        self._log(f"loading model {self.spec.id}"
                  + (f" + adapter {self.spec.adapter}" if self.spec.adapter else ""))
        return load_model(self.spec)


class SAEHandle(_Handle):
    """An SAE known by its files (or registry id)."""

    kind = "sae"
    info_type = SAEInfo

    def __init__(self, source: str | None, load: LoadSettings, cache: RunCache, log: Log) -> None:
        from cg_gate.sae import SAESpec

        if source is None:
            from cg_gate.default import default_sae_dir

            source = str(default_sae_dir())
        path = Path(source).expanduser()
        if path.exists():
            if not path.is_dir():
                raise SAELoadError("an SAE is a directory (cfg.json + sae_weights.safetensors)",
                                   path=path, fix="pass the directory that holds cfg.json")
            self.spec = SAESpec(path=path, device=load.device)
            fp = fingerprint([path], "sae-v1", sidecar=cache.file_digests)
        elif "/" in source:
            release, _, sae_id = source.partition("/")
            self.spec = SAESpec(release=release, sae_id=sae_id, device=load.device)
            fp = hashlib.sha256(f"{source}|sae-v1".encode()).hexdigest()
        else:
            raise SAELoadError(f"SAE {source!r} is neither a directory nor 'release/sae_id'",
                               fix="pass a sae-lens directory or a pretrained 'release/sae_id'")
        self.source = source
        self._setup(fp, cache, log)

    @property
    def dir(self) -> Path | None:
        return self.spec.path

    def _load(self) -> Any:
        from cg_gate.sae import load_sae

        self._log(f"loading SAE {self.source}")
        return load_sae(self.spec)
