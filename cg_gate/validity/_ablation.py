"""Adversarial ablation (DESIGN §2.6): drop the items that make the extreme concepts extreme."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from cg_gate.errors import ConfigError
from cg_gate.metrics import (
    ConceptMetrics,
    PreparedInput,
    as_saliency,
    check_positive_int,
    check_scores,
    ratio_or_nan,
    ratio_sums,
)
from cg_gate.record import ANALYSIS_DEFAULTS as _D
from cg_gate.record import AblationRow, AblationSummary

Side = Literal["top", "bottom"]


@dataclass(frozen=True)
class AblationSide:
    """One end of the χ_model ranking and what dropping its salient items did."""

    side: Side
    concepts: np.ndarray
    """Concept ids ablated (the N highest or lowest pooled χ_model among supported)."""
    items_dropped: np.ndarray
    """Distinct item indices dropped, ascending."""
    median_before: float | None
    """Median pooled χ_model over concepts supported before the drop."""
    median_after: float | None
    """Median pooled χ_model over concepts still supported after the drop."""

    def to_record(self) -> AblationRow:
        return AblationRow(
            side=self.side,
            n_concepts=int(self.concepts.size),
            items_dropped=int(self.items_dropped.size),
            median_before=self.median_before,
            median_after=self.median_after,
        )


@dataclass(frozen=True)
class Ablation:
    """Top and bottom ablations with the rule that picked the items."""

    rule: str
    sides: tuple[AblationSide, ...]

    def to_record(self) -> AblationSummary:
        """The results.json summary."""
        return AblationSummary(rule=self.rule, rows=[s.to_record() for s in self.sides])


def _median(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def _salient_items(csc: Any, scored: np.ndarray, concepts: np.ndarray, k: int) -> np.ndarray:
    """Union over `concepts` of each one's k scored items of highest a_c(x) (ties: lower index)."""
    picked: list[np.ndarray] = []
    for c in concepts.tolist():
        lo, hi = csc.indptr[c], csc.indptr[c + 1]
        rows, vals = csc.indices[lo:hi], csc.data[lo:hi]
        keep = scored[rows]
        rows, vals = rows[keep], vals[keep]
        picked.append(rows[np.lexsort((rows, -vals))[:k]])
    return np.unique(np.concatenate(picked)) if picked else np.empty(0, dtype=np.int64)


def ablation(
    saliency: Any,
    scores: Any,
    metrics: ConceptMetrics,
    *,
    n: int = _D.ablation_n,
    items_per_concept: int = 5,
) -> Ablation:
    """Drop the items most salient for the top-N and bottom-N concepts and re-measure.

    Rule: rank the concepts with a pooled χ_model (support ≥ metrics.min_support) by
    χ_model, ties by concept id; take the N highest ("top") and, separately, the N lowest
    ("bottom"); for each of those concepts take its `items_per_concept` scored items of
    highest a_c(x) (ties: lower item index); drop the union of these items and recompute
    pooled χ_model for every concept over the remaining scored items with the same
    min_support. Each side reports the median χ_model over supported concepts before and
    after (after: over concepts still supported). If the ranking is robust, the medians
    barely move; if a few items carry it, they move a lot.
    """
    check_positive_int(n, "n", minimum=1)
    check_positive_int(items_per_concept, "items_per_concept", minimum=1)
    csr = as_saliency(saliency)
    k = metrics.n_concepts
    if csr.shape[1] != k:
        raise ConfigError(
            f"saliency has {csr.shape[1]} concepts but the metrics have {k}",
            fix="pass the saliency matrix the metrics were computed from",
        )
    item_scores = check_scores(scores, csr.shape[0])
    data = PreparedInput(
        csr=csr,
        suite_index=np.zeros(csr.shape[0], dtype=np.int64),
        suite_names=("*",),
        scores=item_scores,
    )
    csc = csr.tocsc()
    chi = metrics.chi_model_all
    supported = np.flatnonzero(np.isfinite(chi))
    order = supported[np.lexsort((supported, chi[supported]))]  # ascending χ_model
    count = min(n, order.size)
    before = _median(chi)
    rule = (
        f"for each of the {n} supported concepts with the highest (top) and lowest (bottom) "
        f"pooled χ_model, its {items_per_concept} scored items of highest a_c(x) "
        "(ties: lower item index); the union is dropped and pooled χ_model recomputed "
        f"with min_support {metrics.min_support}"
    )
    sides = []
    for side, concepts in (("top", order[::-1][:count]), ("bottom", order[:count])):
        dropped = _salient_items(csc, data.scored, concepts, items_per_concept)
        keep = np.ones(csr.shape[0])
        keep[dropped] = 0.0
        sums = ratio_sums(data, keep)
        after = ratio_or_nan(sums.num[0], sums.den[0], sums.support[0], metrics.min_support)
        sides.append(
            AblationSide(
                side=side,
                concepts=np.asarray(concepts),
                items_dropped=dropped,
                median_before=before,
                median_after=_median(after),
            )
        )
    return Ablation(rule=rule, sides=tuple(sides))
