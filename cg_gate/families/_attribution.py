"""Where a family's saliency lies, and which items drive its χ_model and Δχ_model.

With `den_F(x) = Σ_{c∈F} a_c(x)` (the family's saliency on item x):

- **purity** — the share of the family's saliency mass on each (suite, category):
  `share_k = Σ_{x∈k} den_F(x) / Σ_x den_F(x)` over all items. A family meant for refusal
  whose mass sits on coding items is not measuring refusal there.
- **attribution of χ_model** — over the scored items with `den_F > 0`,
  `χ_model(F) = Σ_k w_k·χ_k` with `w_k = Σ_{x∈k} den_F / Σ_x den_F` and `χ_k` the family's
  χ_model over category k alone; `contribution_k = w_k·χ_k` adds up to χ_model exactly.
- **attribution of Δχ_model** — over the paired items P of the regression (see
  `_score.py`), with `C = Σ_P den^cand` and `B = Σ_P den^base`, each item contributes
  `δ(x) = den^cand(x)·s^cand(x)/C − den^base(x)·s^base(x)/B`; `Σ_P δ(x) = Δχ_model`
  exactly, and a category's contribution is the sum over its items. A category's **share
  of the drop** is its contribution over the sum of all negative contributions (categories
  that gained are left out of that sum), so shares add up to 100 % even when a gain
  elsewhere offsets part of the drop: "68 % of this drop comes from coding items".

None of this changes χ_model: it is the paper's saliency-weighted mean, computed in
`_score.py`; these are exact decompositions of it beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cg_gate.record import CategoryAttribution, ItemContribution


@dataclass(frozen=True)
class PairedSides:
    """The regression's paired items, already restricted as `_score._regression` does."""

    rows: np.ndarray
    """Candidate row of each pair."""
    c_den: np.ndarray
    c_scores: np.ndarray
    b_den: np.ndarray
    b_scores: np.ndarray


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def attribute(
    den: np.ndarray,
    scores: np.ndarray,
    item_ids: Sequence[str],
    suites: Sequence[str],
    categories: Sequence[str],
    *,
    paired: PairedSides | None = None,
    top_n: int = 8,
) -> tuple[list[CategoryAttribution], list[ItemContribution]]:
    """Purity and exact χ_model / Δχ_model decompositions by category, and the top items.

    `den` is the candidate's den_F per item, `scores` its s(x) (NaN = unscored). With
    `paired`, the Δ decomposition is filled in and the top items are those whose δ(x) is
    most negative (they drive a drop); without it, those with the most saliency mass.
    """
    den = np.asarray(den, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    keys = list(zip(suites, categories))
    order = list(dict.fromkeys(keys))
    index = {k: i for i, k in enumerate(order)}
    group = np.array([index[k] for k in keys], dtype=np.int64)
    g = len(order)

    mass = np.bincount(group, weights=den, minlength=g)
    active = np.bincount(group, weights=(den > 0).astype(np.float64), minlength=g)
    n_items = np.bincount(group, minlength=g)
    scored = ~np.isnan(scores) & (den > 0)
    s_den = np.where(scored, den, 0.0)
    s_num = np.where(scored, den * np.nan_to_num(scores), 0.0)
    g_den = np.bincount(group, weights=s_den, minlength=g)
    g_num = np.bincount(group, weights=s_num, minlength=g)
    total_mass, total_scored = float(mass.sum()), float(g_den.sum())

    delta = np.zeros(den.shape[0])
    b_chi = np.full(g, np.nan)
    in_pairs = np.zeros(g, dtype=bool)
    if paired is not None and paired.rows.size:
        c_sum, b_sum = float(paired.c_den.sum()), float(paired.b_den.sum())
        if c_sum > 0 and b_sum > 0:
            d = paired.c_den * paired.c_scores / c_sum - paired.b_den * paired.b_scores / b_sum
            delta[paired.rows] = d
            pg = group[paired.rows]
            in_pairs[pg] = True
            bd = np.bincount(pg, weights=paired.b_den, minlength=g)
            bn = np.bincount(pg, weights=paired.b_den * paired.b_scores, minlength=g)
            with np.errstate(divide="ignore", invalid="ignore"):
                b_chi = np.where(bd > 0, bn / np.where(bd > 0, bd, 1.0), np.nan)
        else:
            paired = None
    g_delta = np.bincount(group, weights=delta, minlength=g)
    gross_drop = float(-g_delta[g_delta < 0].sum())

    out = []
    for i, (suite, category) in enumerate(order):
        chi = float(g_num[i] / g_den[i]) if g_den[i] > 0 else None
        out.append(CategoryAttribution(
            suite=suite, category=category, n_items=int(n_items[i]), active_items=int(active[i]),
            mass_share=_share(float(mass[i]), total_mass),
            chi_model=chi,
            contribution=(float(g_num[i]) / total_scored) if total_scored > 0 else None,
            baseline_chi_model=None if np.isnan(b_chi[i]) else float(b_chi[i]),
            delta_contribution=float(g_delta[i]) if paired is not None and in_pairs[i] else None,
            drop_share=(float(-g_delta[i]) / gross_drop if paired is not None and gross_drop > 0
                        and g_delta[i] < 0 else None),
        ))
    out.sort(key=lambda c: -(c.mass_share or 0.0))

    if paired is not None:
        cand = paired.rows[np.argsort(delta[paired.rows], kind="stable")]
        cand = cand[delta[cand] < 0][:top_n]
        b_score_of = dict(zip(paired.rows.tolist(), paired.b_scores.tolist()))
    else:
        live = np.flatnonzero(den > 0)
        cand = live[np.argsort(-den[live], kind="stable")][:top_n]
        b_score_of = {}
    top = []
    for r in cand.tolist():
        s = scores[r]
        top.append(ItemContribution(
            id=str(item_ids[r]), suite=suites[r], category=categories[r],
            mass_share=_share(float(den[r]), total_mass),
            score=None if np.isnan(s) else float(s),
            baseline_score=b_score_of.get(r),
            delta_contribution=float(delta[r]) if paired is not None else None,
        ))
    return out, top


def intended_share(attribution: Sequence[CategoryAttribution], intended: Sequence[str]) -> float | None:
    """Share of the family's mass on the categories the policy names (None: no mass)."""
    wanted = set(intended)
    shares = [a.mass_share for a in attribution if a.mass_share is not None]
    if not shares:
        return None
    return float(sum(a.mass_share or 0.0 for a in attribution if a.category in wanted))
