"""χ_bench, coverage classes, support, χ_model, CIs and lift (DESIGN §2 items 2–5).

All sums run over the non-zeros of the saliency matrix with `np.bincount` on the key
`suite·K + concept`, so the cost is a few passes over nnz plus O(S·K) memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from cg_gate.errors import ConfigError
from cg_gate.metrics._ci import AUTO_BOOTSTRAP_BUDGET, bootstrap_interval, delta_interval
from cg_gate.metrics._input import (
    PreparedInput,
    check_fraction,
    check_positive_int,
    prepare,
)
from cg_gate.metrics._types import MISSING, NORMAL, OVER, UNDER, ConceptMetrics
from cg_gate.record import ANALYSIS_DEFAULTS as _D

CIMethod = Literal["auto", "bootstrap", "delta"]


@dataclass(frozen=True)
class RatioSums:
    """Per suite × concept sums over scored items behind χ_model."""

    num: np.ndarray
    """(S, K) Σ_x a_c(x)·s(x)."""
    den: np.ndarray
    """(S, K) Σ_x a_c(x)."""
    support: np.ndarray
    """(S, K) scored items with a_c(x) > 0."""


def classify(chi: np.ndarray, eps: float, tau_under: float, tau_over: float) -> np.ndarray:
    """Coverage class codes: MISSING iff χ ≤ eps, UNDER iff eps < χ < τ_under,
    OVER iff χ > τ_over, NORMAL otherwise."""
    codes = np.full(chi.shape, NORMAL, dtype=np.int8)
    codes[chi < tau_under] = UNDER
    codes[chi > tau_over] = OVER
    codes[chi <= eps] = MISSING
    return codes


def chi_bench_from_sums(sum_a: np.ndarray) -> np.ndarray:
    """χ_bench(c,b) = K·Σ_x a_c(x) / Σ_x Σ_c' a_c'(x) from (S, K) per-suite saliency sums.

    This is DESIGN §2.2 with the 1/|D_b| factors cancelled. A suite whose total saliency
    is 0 (no concept fires on any of its items) gets χ_bench 0 for every concept, i.e.
    every concept is missing in it.
    """
    k = sum_a.shape[-1]
    totals = sum_a.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi = np.where(totals > 0, k * sum_a / totals, 0.0)
    return chi


def ratio_or_nan(num: np.ndarray, den: np.ndarray, support: np.ndarray, min_support: int) -> np.ndarray:
    """num / den where support ≥ min_support and den > 0, NaN elsewhere ("insufficient data")."""
    ok = (support >= min_support) & (den > 0)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=ok)
    return out


def ratio_sums(data: PreparedInput, item_weight: np.ndarray | None = None) -> RatioSums:
    """Sums behind χ_model per suite over scored items, optionally weighting items.

    `item_weight` (N,) multiplies each item's contribution (0 drops it); support counts
    items with non-zero weight.
    """
    s_count, k = data.n_suites, data.n_concepts
    rows = data.nnz_rows()
    keep = data.scored[rows]
    if item_weight is not None:
        keep &= item_weight[rows] != 0
    rows = rows[keep]
    cols = data.csr.indices[keep]
    vals = data.csr.data[keep]
    if item_weight is not None:
        vals = vals * item_weight[rows]
    key = data.suite_index[rows] * k + cols
    size = s_count * k
    return RatioSums(
        num=np.bincount(key, weights=vals * data.scores[rows], minlength=size).reshape(s_count, k),
        den=np.bincount(key, weights=vals, minlength=size).reshape(s_count, k),
        support=np.bincount(key, minlength=size).reshape(s_count, k),
    )


def _check_settings(
    min_support: int, tau_under: float, tau_over: float, eps: float, n_boot: int,
    confidence: float, ci: str,
) -> None:
    check_positive_int(min_support, "min_support")
    check_positive_int(n_boot, "n_boot", minimum=1)
    check_fraction(confidence, "confidence")
    if not (np.isfinite(eps) and eps >= 0):
        raise ConfigError(f"eps must be a finite number ≥ 0, got {eps!r}", fix="set eps ≥ 0 (default 0)")
    if not (np.isfinite(tau_under) and np.isfinite(tau_over) and 0 <= tau_under <= tau_over):
        raise ConfigError(
            f"coverage thresholds need 0 ≤ tau_under ≤ tau_over, got {tau_under!r} and {tau_over!r}",
            fix="set tau_under below tau_over (defaults 0.1 and 10)",
        )
    if ci not in ("auto", "bootstrap", "delta"):
        raise ConfigError(f"unknown CI method {ci!r}", fix="use 'auto', 'bootstrap' or 'delta'")


def compute(
    saliency: Any,
    suites: Sequence[str],
    scores: Any,
    *,
    min_support: int = _D.min_support,
    tau_under: float = _D.tau_under,
    tau_over: float = _D.tau_over,
    eps: float = _D.eps,
    n_boot: int = _D.bootstrap_samples,
    confidence: float = _D.confidence,
    seed: int = _D.seed,
    ci: CIMethod = "auto",
) -> ConceptMetrics:
    """Competency Gaps concept metrics for an items × concepts saliency matrix.

    Args:
        saliency: (N, K) scipy.sparse matrix of a_c(x) ≥ 0 (any format, or a dense array).
        suites: one suite name per item; suites are numbered in order of first appearance.
        scores: (N,) s(x) in [0, 1]; NaN = unscored. Unscored items count for χ_bench and
            support but are left out of χ_model's numerator and denominator (and of lift
            and the CIs).
        min_support: scored items with a_c(x) > 0 a concept needs for χ_model (per suite
            and pooled); below it χ_model, its CI and lift are NaN.
        tau_under, tau_over, eps: coverage class thresholds (see `classify`).
        n_boot, confidence, seed: bootstrap resamples, two-sided level and seed.
        ci: 'bootstrap' (multinomial item resampling, percentile interval), 'delta'
            (delta-method interval of the ratio, clipped to [0, 1]) or 'auto': the
            bootstrap when n_boot × (non-zeros of supported concepts) ≤ 2·10^8, else delta.

    Formulas (DESIGN §2): χ_bench(c,b) = K·Σ_{x∈b} a_c(x) / Σ_{x∈b} Σ_c' a_c'(x), and 0 for
    every concept of a suite whose total saliency is 0; χ_bench(c) = mean_b χ_bench(c,b);
    coverage_all is MISSING iff the concept is missing in every suite, else UNDER / OVER /
    NORMAL by χ_bench(c) (a concept present somewhere is never MISSING overall);
    χ_model(c,b) = Σ a_c(x)s(x) / Σ a_c(x) over scored items of b; pooled χ_model(c) over
    the scored items of all suites; lift(c) = χ_model(c) − Σ a_c(x)·m(suite(x)) / Σ a_c(x)
    with m(b) the mean score of suite b, over scored items.

    Raises:
        ConfigError: shape mismatch, empty input, negative or non-finite saliency,
            scores outside [0, 1], or invalid settings.
    """
    _check_settings(min_support, tau_under, tau_over, eps, n_boot, confidence, ci)
    data = prepare(saliency, suites, scores)
    s_count, k = data.n_suites, data.n_concepts
    csr = data.csr
    rows = data.nnz_rows()
    key = data.suite_index[rows] * k + csr.indices

    # --- coverage -----------------------------------------------------------------
    sum_a = np.bincount(key, weights=csr.data, minlength=s_count * k).reshape(s_count, k)
    support = np.bincount(key, minlength=s_count * k).reshape(s_count, k)
    chi_bench = chi_bench_from_sums(sum_a)
    chi_bench_all = chi_bench.mean(axis=0)
    coverage = classify(chi_bench, eps, tau_under, tau_over)
    missing_everywhere = (coverage == MISSING).all(axis=0)
    coverage_all = classify(chi_bench_all, -np.inf, tau_under, tau_over)
    coverage_all[missing_everywhere] = MISSING

    # --- performance ----------------------------------------------------------------
    scored = data.scored
    nz_scored = scored[rows]
    s_rows = rows[nz_scored]
    s_cols = csr.indices[nz_scored]
    s_vals = csr.data[nz_scored]
    s_item_scores = data.scores[s_rows]
    s_key = key[nz_scored]
    size = s_count * k
    num = np.bincount(s_key, weights=s_vals * s_item_scores, minlength=size).reshape(s_count, k)
    den = np.bincount(s_key, weights=s_vals, minlength=size).reshape(s_count, k)
    support_scored = np.bincount(s_key, minlength=size).reshape(s_count, k)
    chi_model = ratio_or_nan(num, den, support_scored, min_support)
    num_all, den_all = num.sum(axis=0), den.sum(axis=0)
    chi_model_all = ratio_or_nan(num_all, den_all, support_scored.sum(axis=0), min_support)

    n_items = np.bincount(data.suite_index, minlength=s_count)
    n_scored = np.bincount(data.suite_index[scored], minlength=s_count)
    score_sums = np.bincount(data.suite_index[scored], weights=data.scores[scored], minlength=s_count)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_score = np.where(n_scored > 0, score_sums / np.maximum(n_scored, 1), np.nan)
    mean_score_all = float(data.scores[scored].mean()) if scored.any() else float("nan")

    # lift: χ_model minus the saliency-weighted mean of the items' suite means.
    suite_mean = np.where(n_scored > 0, mean_score, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = (suite_mean[:, None] * den).sum(axis=0) / den_all
    lift = np.where(np.isfinite(chi_model_all), chi_model_all - expected, np.nan)

    # --- intervals ----------------------------------------------------------------
    supported = np.flatnonzero(np.isfinite(chi_model_all))
    method = ci
    if ci == "auto":
        is_supported = np.zeros(k, dtype=bool)
        is_supported[supported] = True
        nnz_supported = int(np.count_nonzero(is_supported[s_cols]))
        method = "bootstrap" if nnz_supported * n_boot <= AUTO_BOOTSTRAP_BUDGET else "delta"
    ci_low = np.full(k, np.nan)
    ci_high = np.full(k, np.nan)
    if method == "delta":
        ci_low, ci_high = delta_interval(s_cols, s_vals, s_item_scores, chi_model_all, den_all, confidence)
    elif supported.size:
        scored_rows = np.flatnonzero(scored)
        low, high = bootstrap_interval(
            csr[scored_rows], data.scores[scored_rows], supported, n_boot, confidence, seed
        )
        ci_low[supported], ci_high[supported] = low, high

    return ConceptMetrics(
        suite_names=data.suite_names,
        n_items=n_items,
        chi_bench=chi_bench,
        chi_bench_all=chi_bench_all,
        coverage=coverage,
        coverage_all=coverage_all,
        support=support,
        support_all=support.sum(axis=0),
        chi_model=chi_model,
        chi_model_all=chi_model_all,
        ci_low=ci_low,
        ci_high=ci_high,
        lift=lift,
        mean_score=mean_score,
        mean_score_all=mean_score_all,
        min_support=int(min_support),
        tau_under=float(tau_under),
        tau_over=float(tau_over),
        eps=float(eps),
        n_boot=int(n_boot),
        confidence=float(confidence),
        seed=int(seed),
        ci_method=method,
    )
