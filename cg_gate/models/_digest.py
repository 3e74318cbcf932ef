"""Content digests of checkpoints: weight files, tokenizer, chat template.

Weight files can be gigabytes, so they are hashed in chunks and the result is memoised
by (path, size, mtime) — in memory, and optionally in a small JSON sidecar so a later
process does not hash the same file again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
_MEMO: dict[tuple[str, int, int], str] = {}


def _memo_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _read_sidecar(sidecar: Path) -> dict[str, str]:
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def file_sha256(path: Path, *, sidecar: Path | None = None) -> str:
    """sha256 of a file's bytes, streamed in 1 MiB chunks and memoised.

    `sidecar` is an optional JSON file that keeps the memo across processes; a stale
    entry never matches because the key carries the file's size and mtime.
    """
    path = Path(path)
    key = _memo_key(path)
    if key in _MEMO:
        return _MEMO[key]
    skey = "|".join(str(k) for k in key)
    if sidecar is not None:
        known = _read_sidecar(sidecar).get(skey)
        if isinstance(known, str) and len(known) == 64:
            _MEMO[key] = known
            return known
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    digest = h.hexdigest()
    _MEMO[key] = digest
    if sidecar is not None:
        from cg_gate.record import atomic_write_text

        data = _read_sidecar(sidecar)
        data[skey] = digest
        try:
            atomic_write_text(sidecar, json.dumps(data, indent=0, sort_keys=True))
        except OSError:
            pass  # the memo is an optimisation; a read-only cache dir must not fail the run
    return digest


def text_sha256(text: str) -> str:
    """sha256 of UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def combine_digests(parts: dict[str, str]) -> str:
    """One sha256 over named digests, independent of dict order."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return text_sha256(blob)


def dir_sha256(root: Path, *, sidecar: Path | None = None) -> str:
    """sha256 over every file under `root` (relative names and content digests)."""
    root = Path(root)
    parts = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            parts[p.relative_to(root).as_posix()] = file_sha256(p, sidecar=sidecar)
    return combine_digests(parts)


def tokenizer_sha256(tokenizer: Any) -> str:
    """sha256 of a tokenizer's serialised state (tokenizer.json for fast tokenizers)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return text_sha256(backend.to_str())
    vocab = tokenizer.get_vocab()
    return text_sha256(json.dumps(sorted(vocab.items()), ensure_ascii=False))


def chat_template_sha256(tokenizer: Any) -> str | None:
    """sha256 of the tokenizer's chat template, None when it has none."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return None
    if isinstance(template, str):
        return text_sha256(template)
    return text_sha256(json.dumps(template, sort_keys=True, ensure_ascii=False))
