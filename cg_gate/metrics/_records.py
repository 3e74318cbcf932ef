"""Converters from `ConceptMetrics` arrays to the run record's models (results.json)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cg_gate.errors import ConfigError
from cg_gate.metrics._input import as_saliency
from cg_gate.metrics._types import COVERAGE_NAMES, MISSING, NORMAL, OVER, UNDER, ConceptMetrics
from cg_gate.record import ANALYSIS_DEFAULTS as _D
from cg_gate.record import ConceptRecord, CoverageSummary, Interval

HISTOGRAM_BINS = 20


def _opt(value: float) -> float | None:
    """A float, or None where there is no value (NaN/inf)."""
    v = float(value)
    return v if math.isfinite(v) else None


def top_items_per_concept(saliency: Any, concepts: np.ndarray, k: int) -> dict[int, np.ndarray]:
    """For each concept id, the indices of its k items of highest a_c(x), highest first.

    Ties go to the lower item index; items with a_c(x) = 0 are never listed.
    """
    csc = as_saliency(saliency).tocsc()
    out: dict[int, np.ndarray] = {}
    for c in concepts.tolist():
        lo, hi = csc.indptr[c], csc.indptr[c + 1]
        rows, vals = csc.indices[lo:hi], csc.data[lo:hi]
        order = np.lexsort((rows, -vals))[:k]
        out[c] = rows[order]
    return out


def concept_records(
    metrics: ConceptMetrics,
    labels: Mapping[int, str],
    saliency: Any,
    item_ids: Sequence[str],
    *,
    top_items: int = 5,
    only_active: bool = True,
    stability_std: np.ndarray | None = None,
    baseline_chi_model: np.ndarray | None = None,
    density: np.ndarray | None = None,
    max_density: float = _D.max_density,
    contexts: Mapping[int, Sequence[str]] | None = None,
    label_detection: Mapping[int, float] | None = None,
    max_contexts: int = 3,
) -> list[ConceptRecord]:
    """One `ConceptRecord` per concept (only those with support > 0 when `only_active`).

    `saliency` is the (N, K) matrix `metrics` was computed from and `item_ids` its row ids;
    `top_items` lists each concept's most salient items. Optional (K,) arrays fill
    `stability_std` (from `cg_gate.validity.stability`), `baseline_chi_model` and `density`
    (share of the neutral reference texts the concept fires on; above `max_density` the
    concept is marked `dense`). `contexts` (feature id → top-activating contexts, from the
    labels file) are kept, at most `max_contexts` each, for the concepts a report may rank:
    support ≥ min_support and not dense. NaN values become None.
    """
    k = metrics.n_concepts
    csr = as_saliency(saliency)
    if csr.shape[1] != k or csr.shape[0] != len(item_ids):
        raise ConfigError(
            f"saliency {csr.shape[0]} × {csr.shape[1]} does not match {len(item_ids)} item ids "
            f"and {k} concepts in the metrics",
            fix="pass the saliency matrix and item ids the metrics were computed from",
        )
    for name, arr in (("stability_std", stability_std), ("baseline_chi_model", baseline_chi_model),
                      ("density", density)):
        if arr is not None and np.shape(arr) != (k,):
            raise ConfigError(f"{name} has shape {np.shape(arr)}, expected ({k},)",
                              fix=f"pass one {name} value per concept")
    concepts = np.flatnonzero(metrics.support_all > 0) if only_active else np.arange(k)
    tops = top_items_per_concept(csr, concepts, top_items) if top_items > 0 else {}
    suites = metrics.suite_names
    # Plain Python values up front: per-element numpy indexing dominates otherwise.
    chi_bench = metrics.chi_bench[:, concepts].T.tolist()
    coverage = [[COVERAGE_NAMES[v] for v in row] for row in metrics.coverage[:, concepts].T.tolist()]
    columns = {
        "chi_bench_all": metrics.chi_bench_all,
        "coverage_all": metrics.coverage_all,
        "support": metrics.support_all,
        "value": metrics.chi_model_all,
        "low": metrics.ci_low,
        "high": metrics.ci_high,
        "lift": metrics.lift,
        "stability": stability_std if stability_std is not None else np.full(k, np.nan),
        "baseline": baseline_chi_model if baseline_chi_model is not None else np.full(k, np.nan),
        "density": density if density is not None else np.full(k, np.nan),
    }
    col = {name: np.asarray(arr)[concepts].tolist() for name, arr in columns.items()}
    records = []
    for j, c in enumerate(concepts.tolist()):
        records.append(
            ConceptRecord(
                id=c,
                label=labels.get(c),
                chi_bench=dict(zip(suites, chi_bench[j])),
                chi_bench_all=col["chi_bench_all"][j],
                coverage=dict(zip(suites, coverage[j])),
                coverage_all=COVERAGE_NAMES[col["coverage_all"][j]],
                support=col["support"][j],
                chi_model=Interval(
                    value=_opt(col["value"][j]), low=_opt(col["low"][j]), high=_opt(col["high"][j])
                ),
                lift=_opt(col["lift"][j]),
                baseline_chi_model=_opt(col["baseline"][j]),
                stability_std=_opt(col["stability"][j]),
                top_items=[str(item_ids[i]) for i in tops[c].tolist()] if c in tops else [],
                density=_opt(col["density"][j]),
                dense=bool(col["density"][j] > max_density),
                contexts=(list(contexts.get(c, ()))[:max_contexts]
                          if contexts and col["support"][j] >= metrics.min_support
                          and not col["density"][j] > max_density else []),
                label_detection=label_detection.get(c) if label_detection else None,
            )
        )
    return records


def coverage_summaries(metrics: ConceptMetrics, *, bins: int = HISTOGRAM_BINS) -> list[CoverageSummary]:
    """Coverage class counts per suite and for the suite set ('*', last).

    Each summary carries a histogram of log10 χ_bench over its covered concepts (class
    not missing, χ_bench > 0) as (low, high, count) bins. All summaries share the same
    `bins` equal-width edges spanning every covered value, so they can be drawn side by
    side; the histogram is empty where nothing is covered.
    """
    rows = [(name, metrics.chi_bench[i], metrics.coverage[i]) for i, name in enumerate(metrics.suite_names)]
    rows.append(("*", metrics.chi_bench_all, metrics.coverage_all))
    logs = []
    for _, chi, codes in rows:
        covered = (codes != MISSING) & (chi > 0)
        logs.append(np.log10(chi[covered]))
    pooled = np.concatenate(logs)
    edges = None
    if pooled.size:
        lo, hi = float(pooled.min()), float(pooled.max())
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
    out = []
    for (name, _, codes), values in zip(rows, logs):
        histogram: list[tuple[float, float, int]] = []
        if edges is not None and values.size:
            counts, _ = np.histogram(values, bins=edges)
            histogram = [(float(edges[j]), float(edges[j + 1]), int(counts[j])) for j in range(bins)]
        out.append(
            CoverageSummary(
                suite=name,
                missing=int((codes == MISSING).sum()),
                under=int((codes == UNDER).sum()),
                normal=int((codes == NORMAL).sum()),
                over=int((codes == OVER).sum()),
                histogram=histogram,
            )
        )
    return out
