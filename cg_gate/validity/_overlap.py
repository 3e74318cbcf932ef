"""Jaccard overlap of covered-concept sets between suites (DESIGN §2.6)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cg_gate.metrics import MISSING, ConceptMetrics
from cg_gate.record import OverlapSummary


@dataclass(frozen=True)
class Overlap:
    """Suite × suite Jaccard index |C_a ∩ C_b| / |C_a ∪ C_b| of covered sets (class not missing).

    NaN where both sets are empty (the index is undefined); the diagonal is 1 except for a
    suite that covers nothing.
    """

    suites: tuple[str, ...]
    jaccard: np.ndarray
    """(S, S) float64, NaN where undefined."""

    def to_record(self) -> OverlapSummary:
        """The results.json summary (NaN → None)."""
        return OverlapSummary(
            suites=list(self.suites),
            jaccard=[[float(v) if np.isfinite(v) else None for v in row] for row in self.jaccard],
        )


def overlap(metrics: ConceptMetrics) -> Overlap:
    """Jaccard overlap of the concepts each suite covers, from `metrics.coverage`."""
    covered = (metrics.coverage != MISSING).astype(np.int64)  # (S, K)
    inter = covered @ covered.T
    sizes = covered.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    jac = np.full(inter.shape, np.nan)
    np.divide(inter, union, out=jac, where=union > 0)
    return Overlap(suites=tuple(metrics.suite_names), jaccard=jac)
