"""Difficulty control: performance lift and a baseline-adjusted χ_model (DESIGN §2, additions).

A concept can look weak only because it fires on hard items. Two corrections:

- **lift** — χ_model minus the saliency-weighted mean of the suite means of the same
  items: `lift(F) = χ_model(F) − Σ_x a_F(x)·m(suite(x)) / Σ_x a_F(x)` with
  `a_F(x) = Σ_{c∈F} a_c(x)` and m(b) the mean score of suite b over its scored items; sums
  over scored items. Zero for a family spread uniformly over items.
- **baseline-adjusted** — with a baseline checkpoint's per-item correctness b(x) as the
  difficulty covariate, over the items P scored on both sides:
  `χ_adj(F) = Σ_P a_F·s / Σ_P a_F − Σ_P a_F·b / Σ_P a_F + mean_{x∈P} b(x)`,
  i.e. the candidate's saliency-weighted score on the family's items relative to how the
  baseline did on the same items, re-centred on the baseline's overall mean. A family
  on which the candidate does exactly as well as the baseline gets the baseline's
  overall mean, whatever the items' difficulty. The value is not clipped to [0, 1].

Both are None/NaN where the support (items in the sum with a_F(x) > 0) is below
min_support.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cg_gate.errors import ConfigError
from cg_gate.metrics import as_saliency, check_positive_int, check_scores, prepare
from cg_gate.record import ANALYSIS_DEFAULTS as _D


def _family_saliency(csr: Any, members: Sequence[int]) -> np.ndarray:
    """(N,) a_F(x) = Σ_{c∈F} a_c(x)."""
    ids = np.unique(np.asarray(list(members), dtype=np.int64))
    k = csr.shape[1]
    if ids.size == 0:
        return np.zeros(csr.shape[0])
    if ids.min() < 0 or ids.max() >= k:
        raise ConfigError(f"family members outside 0..{k - 1}",
                          fix="resolve the family against the SAE the saliency came from")
    return np.asarray(csr[:, ids].sum(axis=1)).ravel()


def family_lift(
    saliency: Any, suites: Sequence[str], scores: Any, members: Sequence[int], *, min_support: int = _D.min_support
) -> float | None:
    """lift(F) as in the module docstring; None below min_support."""
    check_positive_int(min_support, "min_support")
    data = prepare(saliency, suites, scores)
    a = _family_saliency(data.csr, members)
    scored = data.scored
    use = scored & (a > 0)
    if use.sum() < max(min_support, 1):
        return None
    n_scored = np.bincount(data.suite_index[scored], minlength=data.n_suites)
    sums = np.bincount(data.suite_index[scored], weights=data.scores[scored], minlength=data.n_suites)
    suite_mean = sums / np.maximum(n_scored, 1)
    w = a[use]
    chi = float(np.dot(w, data.scores[use]) / w.sum())
    expected = float(np.dot(w, suite_mean[data.suite_index[use]]) / w.sum())
    return chi - expected


def _paired(saliency: Any, scores: Any, baseline_scores: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
    csr = as_saliency(saliency)
    s = check_scores(scores, csr.shape[0])
    b = check_scores(baseline_scores, csr.shape[0], name="baseline_scores")
    paired = ~np.isnan(s) & ~np.isnan(b)
    return csr, s, b, paired


def adjusted_family_score(
    saliency: Any, scores: Any, baseline_scores: Any, members: Sequence[int], *, min_support: int = _D.min_support
) -> float | None:
    """Difficulty-adjusted χ_adj(F) as in the module docstring; None below min_support.

    `baseline_scores` is b(x) per item (same rows as `saliency`), NaN where the baseline
    has no score.
    """
    check_positive_int(min_support, "min_support")
    csr, s, b, paired = _paired(saliency, scores, baseline_scores)
    a = _family_saliency(csr, members)
    use = paired & (a > 0)
    if use.sum() < max(min_support, 1):
        return None
    w = a[use]
    return float((np.dot(w, s[use]) - np.dot(w, b[use])) / w.sum() + b[paired].mean())


def adjusted_concept_scores(
    saliency: Any, scores: Any, baseline_scores: Any, *, min_support: int = _D.min_support
) -> np.ndarray:
    """(K,) difficulty-adjusted χ_adj(c) for every single concept (F = {c}); NaN below min_support."""
    check_positive_int(min_support, "min_support")
    csr, s, b, paired = _paired(saliency, scores, baseline_scores)
    k = csr.shape[1]
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    keep = paired[rows]
    rows, cols, vals = rows[keep], csr.indices[keep], csr.data[keep]
    den = np.bincount(cols, weights=vals, minlength=k)
    diff = np.bincount(cols, weights=vals * (s[rows] - b[rows]), minlength=k)
    support = np.bincount(cols, minlength=k)
    out = np.full(k, np.nan)
    ok = (support >= max(min_support, 1)) & (den > 0)
    out[ok] = diff[ok] / den[ok] + b[paired].mean()
    return out
