"""The run cache: per-item SAE activations, generated responses, model/SAE metadata.

`RunCache` owns the directory layout (`activations/`, `responses/`, `meta/`,
`file-digests.json`); each kind of entry has one key function here, used both by the
warm-run lookup and by generation and extraction themselves.

A key is the sha256 of everything the value depends on, so a re-run recomputes only
what changed and an interrupted run resumes. One file per item in sharded directories
(`ab/abcdef….act`), written atomically (temp file + rename), each carrying a checksum of
its payload. A corrupt or truncated entry is detected on read, warned about, deleted,
and reported as a miss — never silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pydantic import BaseModel

from cg_gate.errors import CacheError
from cg_gate.record._io import atomic_write_bytes, atomic_write_text
from cg_gate.record._schema import GenerationSettings, TokenPolicy

CACHE_FORMAT = 1  # response entries and the key layout
ACTIVATION_FORMAT = 2  # activation entries: 1 was an .npz body, 2 the raw layout of Entry.to_bytes
_MAGIC = b"CGGATE-ACT2\n"  # then sha256(body) (32 bytes), then the body
_HEADER = struct.Struct("<qqqddd")


class CacheCorruptionWarning(UserWarning):
    """A cache entry failed its checksum or could not be read; it was deleted."""


def _key(parts: dict[str, Any]) -> str:
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def activation_key(model_digest: str, sae_digest: str, hook: str, token_policy_json: str,
                   item_digest: str) -> str:
    """The cache key of one item's activations (DESIGN §3)."""
    return _key({"kind": "activations", "format": ACTIVATION_FORMAT, "model": model_digest,
                 "sae": sae_digest, "hook": hook, "token_policy": token_policy_json,
                 "item": item_digest})


def response_key(model_digest: str, chat_template_digest: str | None, settings_json: str,
                 item_digest: str, sample: int = 0) -> str:
    """The cache key of one item's generated response (its `sample`-th, counting from 0).

    Sample 0 keeps the key layout of single-sample runs, so their entries stay valid.
    """
    parts = {"kind": "response", "format": CACHE_FORMAT, "model": model_digest,
             "chat_template": chat_template_digest, "settings": settings_json,
             "item": item_digest}
    if sample:
        parts["sample"] = int(sample)
    return _key(parts)


def refusal_key(classifier_digest: str, prompt: str, response: str) -> str:
    """The cache key of the refusal classifier's probability for a response to a request."""
    return _key({"kind": "refusal", "format": CACHE_FORMAT, "classifier": classifier_digest,
                 "prompt": hashlib.sha256(prompt.encode("utf-8")).hexdigest(),
                 "text": hashlib.sha256(response.encode("utf-8")).hexdigest()})


# Settings that change what is generated (batch size does not: padding is masked).
_KEYED_SETTINGS = ("temperature", "top_p", "max_new_tokens", "samples_per_item", "seed",
                   "system_prompt", "stop")


def settings_key(settings: GenerationSettings) -> str:
    """The part of the generation settings a response depends on, as stable JSON."""
    return settings.model_dump_json(include=set(_KEYED_SETTINGS))


@dataclass(frozen=True)
class Entry:
    """One item's activations: the sparse saliency row and its fidelity sums."""

    indices: np.ndarray  # (nnz,) int32 feature ids, ascending
    values: np.ndarray  # (nnz,) float32 saliency a_c(x)
    n_tokens: int  # counted tokens T_x
    sse: float  # Σ_t ‖x_t − x̂_t‖²
    sum_sq: float  # Σ_t ‖x_t‖²
    sum_x: np.ndarray  # (d_in,) float64 Σ_t x_t
    l0_sum: float  # Σ_t #active features

    def to_bytes(self) -> bytes:
        """Serialise: magic, sha256 of the body, then the body (fixed header + raw arrays).

        Body: `<qqqddd` (nnz, d_in, n_tokens, sse, sum_sq, l0_sum), then `indices` int32[nnz],
        `values` float32[nnz] and `sum_x` float64[d_in], little-endian. No pickle, no zip:
        a warm run reads hundreds of entries, and parsing this is a few slices.
        """
        indices = np.ascontiguousarray(self.indices, dtype="<i4")
        values = np.ascontiguousarray(self.values, dtype="<f4")
        sum_x = np.ascontiguousarray(self.sum_x, dtype="<f8")
        if indices.shape != values.shape or indices.ndim != 1 or sum_x.ndim != 1:
            raise ValueError("indices and values must be 1-D arrays of one length")
        head = _HEADER.pack(indices.size, sum_x.size, int(self.n_tokens), float(self.sse),
                            float(self.sum_sq), float(self.l0_sum))
        body = head + indices.tobytes() + values.tobytes() + sum_x.tobytes()
        return _MAGIC + hashlib.sha256(body).digest() + body

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        """Parse and verify; raises ValueError when the bytes are not a valid entry."""
        head = len(_MAGIC)
        if data[:head] != _MAGIC or len(data) < head + 32 + _HEADER.size:
            raise ValueError("not a cg-gate cache entry of this format")
        body = memoryview(data)[head + 32:]
        if hashlib.sha256(body).digest() != data[head:head + 32]:
            raise ValueError("file checksum mismatch")
        nnz, d_in, n_tokens, sse, sum_sq, l0 = _HEADER.unpack_from(body)
        if nnz < 0 or d_in < 0 or n_tokens < 0 or len(body) != _HEADER.size + 8 * nnz + 8 * d_in:
            raise ValueError("array lengths disagree with the entry's size")
        at = _HEADER.size
        indices = np.frombuffer(body, dtype="<i4", count=nnz, offset=at).astype(np.int32)
        values = np.frombuffer(body, dtype="<f4", count=nnz, offset=at + 4 * nnz).astype(np.float32)
        sum_x = np.frombuffer(body, dtype="<f8", count=d_in, offset=at + 8 * nnz).astype(np.float64)
        return cls(indices=indices, values=values, n_tokens=int(n_tokens), sse=float(sse),
                   sum_sq=float(sum_sq), sum_x=sum_x, l0_sum=float(l0))


class _ShardedStore:
    suffix = ".bin"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"cannot create the cache directory ({exc.strerror})", path=self.root,
                             fix="pass a writable --cache-dir") from None
        if not os.access(self.root, os.W_OK):
            raise CacheError("the cache directory is not writable", path=self.root,
                             fix="pass a writable --cache-dir")

    def path(self, key: str) -> Path:
        """Where the entry for `key` lives."""
        if len(key) < 3 or not all(c in "0123456789abcdef" for c in key):
            raise CacheError(f"invalid cache key {key!r}", fix="use the cache's key functions")
        return self.root / key[:2] / f"{key}{self.suffix}"

    def _read(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def _discard(self, key: str, why: str) -> None:
        path = self.path(key)
        warnings.warn(f"cache entry {path} is corrupt ({why}); deleted and recomputed",
                      CacheCorruptionWarning, stacklevel=3)
        path.unlink(missing_ok=True)

    def _write(self, key: str, data: bytes) -> None:
        atomic_write_bytes(self.path(key), data)

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()


class ActivationCache(_ShardedStore):
    """Per-item activations keyed by `activation_key(...)`.

    File: a magic line, the sha256 of the body, and the body (`Entry.to_bytes`). Any
    changed byte makes the entry a miss.
    """

    suffix = ".act"

    @staticmethod
    def keys_for(model_digest: str, sae_digest: str, hook: str, policy: TokenPolicy,
                 input_keys: list[str]) -> list[str]:
        """The cache key of each input's activations under one model, SAE and token policy."""
        policy_json = policy.model_dump_json()
        return [activation_key(model_digest, sae_digest, hook, policy_json, k) for k in input_keys]

    def get(self, key: str) -> Entry | None:
        """The verified entry, or None on a miss (a corrupt entry is deleted and is a miss)."""
        data = self._read(key)
        if data is None:
            return None
        try:
            return Entry.from_bytes(data)
        except ValueError as exc:
            self._discard(key, str(exc))
            return None

    def put(self, key: str, entry: Entry) -> None:
        """Store atomically."""
        self._write(key, entry.to_bytes())


class ResponseCache(_ShardedStore):
    """Generated responses keyed by `response_key(...)`, as checksummed JSON."""

    suffix = ".json"

    @staticmethod
    def keys_for(model_digest: str, chat_template_digest: str | None,
                 settings: GenerationSettings, item_digests: list[str], *,
                 sample: int = 0) -> list[str]:
        """The cache key of each item's response (its `sample`-th) under one model and
        generation settings."""
        skey = settings_key(settings)
        return [response_key(model_digest, chat_template_digest, skey, d, sample)
                for d in item_digests]

    def get(self, key: str) -> str | None:
        """The verified text, or None on a miss (a corrupt entry is deleted and is a miss)."""
        obj = self._entry(key)
        return None if obj is None else obj["text"]

    def tokens(self, key: str) -> int | None:
        """Response tokens the entry was stored with (None: a miss, or an entry written
        before token counts were kept)."""
        obj = self._entry(key)
        n = obj.get("tokens") if obj is not None else None
        return n if isinstance(n, int) and not isinstance(n, bool) else None

    def _entry(self, key: str) -> dict[str, Any] | None:
        data = self._read(key)
        if data is None:
            return None
        try:
            obj = json.loads(data.decode("utf-8"))
            text = obj["text"]
            ok = (obj.get("format") == CACHE_FORMAT and isinstance(text, str)
                  and obj.get("sha256") == hashlib.sha256(text.encode("utf-8")).hexdigest())
        except (ValueError, KeyError, TypeError, AttributeError):
            ok, text = False, None
        if not ok:
            self._discard(key, "checksum mismatch or unreadable JSON")
            return None
        return obj

    def put(self, key: str, text: str, *, tokens: int | None = None) -> None:
        """Store atomically, with the response's token count when known."""
        obj: dict[str, Any] = {"format": CACHE_FORMAT,
                               "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                               "text": text}
        if tokens is not None:
            obj["tokens"] = int(tokens)
        self._write(key, json.dumps(obj, ensure_ascii=False).encode("utf-8"))


class RefusalCache(_ShardedStore):
    """The refusal classifier's probabilities keyed by `refusal_key(...)`, as checksummed JSON."""

    suffix = ".json"

    @staticmethod
    def _sum(probability: float) -> str:
        return hashlib.sha256(repr(float(probability)).encode("ascii")).hexdigest()

    def get(self, key: str) -> float | None:
        """The stored probability, or None on a miss (a corrupt entry is deleted and is a miss)."""
        data = self._read(key)
        if data is None:
            return None
        try:
            obj = json.loads(data.decode("utf-8"))
            p = obj["probability"]
            ok = (obj.get("format") == CACHE_FORMAT and isinstance(p, float) and 0.0 <= p <= 1.0
                  and obj.get("sha256") == self._sum(p))
        except (ValueError, KeyError, TypeError, AttributeError):
            ok, p = False, None
        if not ok:
            self._discard(key, "checksum mismatch or unreadable JSON")
            return None
        return p

    def put(self, key: str, probability: float) -> None:
        """Store atomically."""
        p = float(probability)
        self._write(key, json.dumps({"format": CACHE_FORMAT, "sha256": self._sum(p),
                                     "probability": p}).encode("utf-8"))


class RunCache:
    """One cache directory: its layout, and the stores and memos a run reads and writes.

    Layout: `activations/` (ActivationCache), `responses/` (ResponseCache), `refusal/`
    (RefusalCache: the refusal classifier's probabilities), `meta/<kind>-
    <fingerprint>.json` (what a model or SAE said about itself when last loaded, so a warm
    run needs neither) and `file-digests.json` (weight-file digests memoised by path, size
    and mtime).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.activations = ActivationCache(self.root / "activations")
        self.responses = ResponseCache(self.root / "responses")
        self.refusal = RefusalCache(self.root / "refusal")

    @property
    def file_digests(self) -> Path:
        """The memo of file digests shared by fingerprints and the model loader."""
        return self.root / "file-digests.json"

    def _meta_path(self, kind: str, fingerprint: str) -> Path:
        return self.root / "meta" / f"{kind}-{fingerprint}.json"

    def read_meta(self, kind: str, fingerprint: str, model: type[BaseModel]) -> Any:
        """The stored metadata of a `kind` ('model', 'sae') known by `fingerprint`, or None."""
        path = self._meta_path(kind, fingerprint)
        if not path.is_file():
            return None
        try:
            return model.model_validate_json(path.read_text())
        except ValueError:
            return None

    def write_meta(self, kind: str, fingerprint: str, info: BaseModel) -> None:
        """Remember `info` for the next run."""
        atomic_write_text(self._meta_path(kind, fingerprint), info.model_dump_json())
