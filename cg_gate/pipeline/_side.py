"""One checkpoint's pass over the suites: responses, scores and concept activations.

A checkpoint is loaded lazily: its identity (and so every cache key) comes from its files,
and the model is loaded only when a response or an activation is missing from the cache.
A warm re-run therefore imports no torch and loads no model.
"""

from __future__ import annotations

import gc
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from cg_gate.errors import ConfigError, SAELoadError
from cg_gate.pipeline._config import RunConfig, SideConfig
from cg_gate.pipeline._fingerprint import fingerprint
from cg_gate.record import GenerationSettings, ModelInfo, SAEInfo, TokenPolicy, atomic_write_text
from cg_gate.record import ActivationCache, ResponseCache, activation_key, response_key
from cg_gate.sae import Extraction, assemble
from cg_gate.suites import ChatMessage, Item

Log = Callable[[str], None]


def _digest_sidecar(config: RunConfig) -> Path:
    """The one memo of file digests shared by fingerprints and the model loader."""
    return Path(config.cache_dir) / "file-digests.json"


def _meta_path(cache_dir: Path, kind: str, fp: str) -> Path:
    return Path(cache_dir) / "meta" / f"{kind}-{fp}.json"


class Checkpoint:
    """A model known by its files; loaded on first need, then kept until `release()`."""

    def __init__(self, side: SideConfig, config: RunConfig, log: Log) -> None:
        from cg_gate.models import ModelSpec, default_model_spec, resolve_source

        if side.model is None:
            base = default_model_spec()
            spec = base.model_copy(update={"adapter": side.adapter})
        else:
            spec = ModelSpec(id=side.model, revision=side.revision, gguf_file=side.gguf_file,
                             adapter=side.adapter)
        device = config.device
        if device not in ("cpu", "cuda", "auto"):
            raise ConfigError(f"device {config.device!r} is not supported for models",
                              fix="use --device cpu, cuda or auto")
        self.spec = spec.model_copy(update={
            "dtype": config.dtype, "device": device, "allow_pickle": config.allow_pickle,
            "trust_remote_code": config.trust_remote_code, "offline": config.offline,
            "digest_cache": _digest_sidecar(config),
        })
        self._cache_dir = Path(config.cache_dir)
        self._log = log
        self._loaded: Any = None
        src = resolve_source(self.spec)
        files = src.directory / src.gguf_file if src.gguf_file else src.directory
        adapter = Path(self.spec.adapter) if self.spec.adapter else None
        self.fingerprint = fingerprint([files, adapter], self.spec.dtype, str(self.spec.gguf_file),
                                       "model-v1", sidecar=self.spec.digest_cache)
        self._info: ModelInfo | None = None
        meta = _meta_path(self._cache_dir, "model", self.fingerprint)
        if meta.is_file():
            try:
                self._info = ModelInfo.model_validate_json(meta.read_text())
            except ValueError:
                self._info = None

    @property
    def info(self) -> ModelInfo:
        """What the record says about the model (from the cache, else by loading it)."""
        if self._info is None:
            self.load()
        assert self._info is not None
        return self._info

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> Any:
        """The LoadedModel, loading it now if needed."""
        if self._loaded is None:
            from cg_gate.models import load_model

            self._log(f"loading model {self.spec.id}"
                      + (f" + adapter {self.spec.adapter}" if self.spec.adapter else ""))
            self._loaded = load_model(self.spec)
            self._info = self._loaded.info
            atomic_write_text(_meta_path(self._cache_dir, "model", self.fingerprint),
                              self._info.model_dump_json())
        return self._loaded

    def release(self) -> None:
        """Drop the weights (the next side may need the memory)."""
        if self._loaded is not None:
            self._loaded = None
            gc.collect()


class SAEHandle:
    """An SAE known by its files (or registry id); loaded on first need."""

    def __init__(self, source: str | None, config: RunConfig, log: Log) -> None:
        from cg_gate.sae import SAESpec  # no sae_lens import at module level

        if source is None:
            from cg_gate.default import default_sae_dir

            source = str(default_sae_dir())
        path = Path(source).expanduser()
        device = config.device if config.device in ("cpu", "cuda") else "cpu"
        if path.exists():
            if not path.is_dir():
                raise SAELoadError("an SAE is a directory (cfg.json + sae_weights.safetensors)",
                                   path=path, fix="pass the directory that holds cfg.json")
            self.spec = SAESpec(path=path, device=device)
            self.fingerprint = fingerprint([path], "sae-v1", sidecar=_digest_sidecar(config))
        elif "/" in source:
            release, _, sae_id = source.partition("/")
            self.spec = SAESpec(release=release, sae_id=sae_id, device=device)
            self.fingerprint = hashlib.sha256(f"{source}|sae-v1".encode()).hexdigest()
        else:
            raise SAELoadError(f"SAE {source!r} is neither a directory nor 'release/sae_id'",
                               fix="pass a sae-lens directory or a pretrained 'release/sae_id'")
        self.source = source
        self._cache_dir = Path(config.cache_dir)
        self._log = log
        self._loaded: Any = None
        self._info: SAEInfo | None = None
        meta = _meta_path(self._cache_dir, "sae", self.fingerprint)
        if meta.is_file():
            try:
                self._info = SAEInfo.model_validate_json(meta.read_text())
            except ValueError:
                self._info = None

    @property
    def dir(self) -> Path | None:
        return self.spec.path

    @property
    def info(self) -> SAEInfo:
        if self._info is None:
            self.load()
        assert self._info is not None
        return self._info

    def load(self) -> Any:
        if self._loaded is None:
            from cg_gate.sae import load_sae

            self._log(f"loading SAE {self.source}")
            self._loaded = load_sae(self.spec)
            self._info = self._loaded.info
            atomic_write_text(_meta_path(self._cache_dir, "sae", self.fingerprint),
                              self._info.model_dump_json())
        return self._loaded


# --------------------------------------------------------------------------- activations


def read_activations(ckpt: Checkpoint, sae: SAEHandle, inputs: Sequence[Any], policy: TokenPolicy,
                     cache: ActivationCache, *, batch_size: int, progress: bool) -> Extraction:
    """Activations for `inputs`, from the cache when every entry is there, else extracted."""
    if ckpt._info is not None and sae._info is not None:
        policy_json = policy.model_dump_json()
        entries = []
        for inp in inputs:
            key = activation_key(ckpt._info.digest, sae._info.digest, sae._info.hook,
                                 policy_json, inp.key)
            entry = cache.get(key)
            if entry is None:
                break
            entries.append(entry)
        else:
            return assemble(inputs, entries, sae._info.d_sae, sae._info.d_in, tokens=0,
                            hits=len(entries))
    from cg_gate.sae import extract

    return extract(ckpt.load(), sae.load(), inputs, token_policy=policy, cache=cache,
                   batch_size=batch_size, progress=progress)


def text_input(text: str) -> Any:
    """An ExtractionInput for a bare user text (exemplars, reference sets)."""
    from cg_gate.sae import ExtractionInput

    key = hashlib.sha256(json.dumps({"text": text}).encode()).hexdigest()
    return ExtractionInput(key=key, messages=[ChatMessage(role="user", content=text)])


# --------------------------------------------------------------------------- responses


def read_responses(ckpt: Checkpoint, items: Sequence[Item], settings: GenerationSettings,
                   cache: ResponseCache, *, progress: bool) -> list[str]:
    """One response per item, from the cache when all are there, else generated."""
    from cg_gate.models import settings_key

    if not items:
        return []
    if ckpt._info is not None:
        skey = settings_key(settings)
        out = []
        for item in items:
            text = cache.get(response_key(ckpt._info.digest, ckpt._info.chat_template_digest,
                                          skey, item.input_digest()))
            if text is None:
                break
            out.append(text)
        else:
            return out
    from cg_gate.models import generate

    return generate(ckpt.load(), items, settings, cache=cache, progress=progress)


# --------------------------------------------------------------------------- one side


@dataclass
class SideResult:
    """Everything one checkpoint contributes to the record."""

    info: ModelInfo | None
    responses: list[str | None]
    scores: np.ndarray
    reasons: list[str | None]
    activations: Extraction
    generated: int = 0
    exemplars: dict[str, sp.csr_matrix] = field(default_factory=dict)


def needs_generation(item: Item, *, candidate: bool) -> bool:
    """Whether the item needs a response generated on this side."""
    if candidate and (item.response is not None or item.score is not None):
        return False
    return bool(item.scorers)


def run_side(
    ckpt: Checkpoint,
    sae: SAEHandle,
    items: Sequence[Item],
    config: RunConfig,
    *,
    candidate: bool,
    acts_cache: ActivationCache,
    resp_cache: ResponseCache,
    judge: Any,
    exemplar_texts: Sequence[str] = (),
    log: Log,
) -> SideResult:
    """Responses → scores → activations (and exemplar activations) for one checkpoint."""
    from cg_gate.sae import ExtractionInput
    from cg_gate.scoring import score_items

    gen_idx = [i for i, it in enumerate(items) if needs_generation(it, candidate=candidate)]
    responses: list[str | None] = [it.response if candidate else None for it in items]
    if gen_idx and config.generation.max_new_tokens > 0:
        log(f"responses for {len(gen_idx)} items")
        texts = read_responses(ckpt, [items[i] for i in gen_idx], config.generation, resp_cache,
                               progress=config.progress)
        for i, text in zip(gen_idx, texts):
            responses[i] = text
    scored_items = items if candidate else [it.model_copy(update={"score": None, "reason": None,
                                                                  "response": None})
                                            for it in items]
    scores = score_items(scored_items, responses, judge=judge)
    values = np.array([np.nan if s.value is None else float(s.value) for s in scores])

    policy = config.token_policy
    if policy.text != "prompt" and any(r is None for r in responses):
        missing = sum(r is None for r in responses)
        raise ConfigError(f"token policy '{policy.text}' reads responses, but {missing} items have none",
                          fix="use --token-text prompt, or give those items scorers or responses")
    inputs = []
    for i, it in enumerate(items):
        response = responses[i] if policy.text != "prompt" else None
        key = it.input_digest()
        if response is not None:  # what the model reads includes the response
            key = hashlib.sha256(f"{key}|{response}".encode()).hexdigest()
        inputs.append(ExtractionInput(key=key, messages=list(it.messages), response=response))
    log(f"concepts for {len(items)} items")
    acts = read_activations(ckpt, sae, inputs, policy, acts_cache, batch_size=config.batch_size,
                            progress=config.progress)
    exemplars: dict[str, sp.csr_matrix] = {}
    if exemplar_texts:
        uniq = list(dict.fromkeys(exemplar_texts))
        log(f"concepts for {len(uniq)} exemplar and reference texts")
        ex_policy = TokenPolicy(text="prompt", exclude_special=policy.exclude_special,
                                chat_template=policy.chat_template)
        ex = read_activations(ckpt, sae, [text_input(t) for t in uniq], ex_policy, acts_cache,
                              batch_size=config.batch_size, progress=config.progress)
        rows = ex.saliency.tocsr()
        for i, text in enumerate(uniq):
            exemplars[text] = rows[i]
    return SideResult(info=ckpt.info, responses=responses, scores=values,
                      reasons=[s.reason for s in scores], activations=acts,
                      generated=len(gen_idx), exemplars=exemplars)
