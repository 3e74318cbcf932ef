"""Cheap identities of checkpoints and SAEs, computed from their files without loading them.

A warm re-run looks up cached responses and activations by these fingerprints and never
loads a model. File digests come from `cg_gate.models._digest`, memoised by (path, size,
mtime) in the same sidecar the model loader uses, so no file is hashed twice.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cg_gate.models import dir_sha256, file_sha256


def fingerprint(paths: list[Path | None], *extra: str, sidecar: Path | None = None) -> str:
    """One digest over files/directories (None entries skipped) and extra strings."""
    h = hashlib.sha256()
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        digest = dir_sha256(p, sidecar=sidecar) if p.is_dir() else file_sha256(p, sidecar=sidecar)
        h.update(digest.encode())
    for e in extra:
        h.update(b"\0" + e.encode())
    return h.hexdigest()


def env_offline(offline: bool) -> None:
    """Make the Hugging Face libraries refuse network access when offline."""
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
