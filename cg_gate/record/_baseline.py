"""`activations.npz`: a run's sparse saliency and scores, so a later run can use it as a baseline."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cg_gate.errors import ResultsError
from cg_gate.record._io import atomic_write_bytes

ACTIVATIONS_FILE = "activations.npz"


@dataclass
class SaliencyFile:
    """What `activations.npz` holds: one row per item."""

    saliency: Any  # scipy.sparse.csr_matrix (n_items, d_sae)
    scores: np.ndarray  # (n_items,) float64, NaN = unscored
    item_ids: list[str]
    suites: list[str]


def write_saliency(path: Path, saliency: Any, scores: np.ndarray, item_ids: Sequence[str],
                   suites: Sequence[str]) -> None:
    """Write the file atomically (compressed CSR arrays, ids and scores; no pickle)."""
    csr = saliency.tocsr()
    buf = io.BytesIO()
    np.savez_compressed(
        buf, data=csr.data, indices=csr.indices, indptr=csr.indptr,
        shape=np.array(csr.shape, dtype=np.int64),
        item_ids=np.array(list(item_ids), dtype=str),
        suites=np.array(list(suites), dtype=str),
        scores=np.asarray(scores).astype(np.float64),
    )
    atomic_write_bytes(path, buf.getvalue())


def read_saliency(path: Path) -> SaliencyFile:
    """Read the file beside a baseline's results.json; ResultsError when absent or unreadable."""
    import scipy.sparse as sp

    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"baseline results have no {ACTIVATIONS_FILE} beside them", path=path,
                           fix="re-run the baseline with `cg-gate run` (it writes the file), or "
                               "pass the baseline checkpoint instead")
    try:
        with np.load(path, allow_pickle=False) as z:
            csr = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            return SaliencyFile(saliency=csr, scores=z["scores"], item_ids=list(z["item_ids"]),
                                suites=list(z["suites"]))
    except (OSError, KeyError, ValueError) as exc:
        raise ResultsError(f"cannot read baseline activations ({exc})", path=path,
                           fix="re-run the baseline with `cg-gate run`") from None
