"""Choose a family's member features from exemplars: selective, specific, not dense.

Inputs, all item saliency `a_c(x)` (DESIGN §2.1) over the same SAE:

- the family's exemplars, split into a *fit* part (used to choose) and a *held-out* part
  (used only to report how selective the chosen features are);
- **negatives**, in named groups: every other family's exemplars and a neutral reference
  set (each split the same way).

A candidate is any feature that fires on at least one fit exemplar. With `m_F` its mean
saliency on the fit exemplars, `m_g` its mean on negative group g and `m_ref` on the
reference set, its **precision** is

    precision = m_F / (m_F + Σ_{g ≠ ref} m_g + reference_weight · m_ref)

— the share of its (group-balanced) saliency that lands on the family's own texts, with
the neutral world weighted `reference_weight` times one family (ordinary suites hold more
neutral than family content). It becomes a member when, on the fit split, it passes every
test below, checked in this order (the first one failed is the reason it is rejected):

1. **not dense**: it fires on at most `max_density` of the reference texts — features for
   newlines, articles or "you" fire on nearly every text and say nothing about a family;
2. **not rare**: it fires on at least `min_fire` fit exemplars (capped at their number);
3. **specific**: `m_F ≥ min_ratio · m_g` for *every* negative group (a feature shared with
   the over-refusal exemplars is not a refusal feature, however silent it is on neutral
   text); the group it fails against is counted in `confusions`;
4. **precise**: precision ≥ `min_precision`, on all fit exemplars and on each half of them
   (even and odd rows) — a feature that fires hugely on two or three exemplars passes on
   the whole but not on the half that lacks them, and such spiky features are the ones that
   turn out to fire all over other suites;
5. **among the best**: with `top_k`, only the k most precise are kept (ties: lower id).

Selectivity is then measured on texts that chose nothing: each member's **held-out
AUROC** (its saliency on held-out exemplars against held-out negatives; ties count one
half, 0.5 is chance) and the family's held-out AUROC of `den_F(x) = Σ_{c∈F} a_c(x)`.
A member's **level** is the median of its non-zero saliency on the fit exemplars: how
strongly the family's own texts make it fire, the yardstick coverage uses to tell
"exercised" from "touched" (see `_score.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

REJECT_REASONS = ("dense", "rare", "unspecific", "imprecise", "beyond_top_k")
"""Why a candidate feature was not taken, in the order the tests run."""


@dataclass(frozen=True)
class SelectionThresholds:
    """The member tests of the module docstring (defaults: the policy's `ExemplarSpec` and
    `analysis.max_density`)."""

    min_precision: float
    reference_weight: float
    min_ratio: float
    max_density: float
    min_fire: int
    top_k: int | None


@dataclass(frozen=True)
class MemberStats:
    """How one chosen feature fared on the family's texts."""

    id: int
    precision: float
    """Precision on the fit split (module docstring)."""
    auroc: float
    """AUROC on the fit split (exemplars vs all negatives)."""
    heldout_auroc: float | None
    """AUROC on the held-out split; None when either side of it is empty."""
    ratio: float
    """Fit exemplar mean over the largest negative-group mean (inf when all are 0)."""
    closest_group: str | None
    """The negative group with the largest mean (the nearest confusion)."""
    density: float
    """Share of the neutral reference texts it fires on."""
    fire_share: float
    """Share of the fit exemplars it fires on."""
    level: float
    """Median non-zero saliency on the fit exemplars."""


@dataclass
class Selection:
    """The members, the rejected candidates by reason, and held-out selectivity."""

    members: list[MemberStats]
    candidates: int
    """Features that fired on at least one fit exemplar."""
    rejected: dict[str, int]
    """Reason (REJECT_REASONS) → number of candidates rejected for it."""
    confusions: dict[str, int] = field(default_factory=dict)
    """Negative group → candidates rejected as unspecific because of it."""
    heldout_auroc: float | None = None
    """AUROC of den_F on held-out exemplars vs held-out negatives."""
    n_fit: int = 0
    n_heldout: int = 0
    n_negatives_fit: int = 0
    n_negatives_heldout: int = 0


def auroc_columns(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """Per-column AUROC of `pos` (n1 × K) against `neg` (n0 × K): P(pos > neg) + ½P(tie).

    Mann–Whitney U with mid-ranks for ties, divided by n1·n0.
    """
    from scipy.stats import rankdata

    n1, n0 = pos.shape[0], neg.shape[0]
    if n1 == 0 or n0 == 0:
        return np.full(pos.shape[1], np.nan)
    ranks = rankdata(np.vstack([pos, neg]), axis=0)
    return (ranks[:n1].sum(axis=0) - n1 * (n1 + 1) / 2.0) / (n1 * n0)


def _dense(m: sp.spmatrix | np.ndarray, cols: np.ndarray) -> np.ndarray:
    if sp.issparse(m):
        return np.asarray(sp.csc_matrix(m)[:, cols].toarray(), dtype=np.float64)
    return np.asarray(m, dtype=np.float64)[:, cols]


def _rows(m: sp.spmatrix | np.ndarray) -> int:
    return int(m.shape[0])


def select_members(
    fit: sp.spmatrix,
    negatives_fit: Mapping[str, sp.spmatrix],
    reference_group: str,
    thresholds: SelectionThresholds,
    *,
    heldout: sp.spmatrix | None = None,
    negatives_heldout: Mapping[str, sp.spmatrix] | None = None,
) -> Selection:
    """Apply the member tests (module docstring) and measure held-out selectivity.

    `negatives_fit` maps group name → (texts × K) saliency and must hold
    `reference_group` (the neutral set, which also gives each feature's density).
    """
    fit = sp.csr_matrix(fit)
    groups = {name: sp.csr_matrix(m) for name, m in negatives_fit.items() if m.shape[0] > 0}
    ref = groups[reference_group]
    n_fit = fit.shape[0]
    candidates = np.flatnonzero(fit.getnnz(axis=0) > 0)
    rejected = {reason: 0 for reason in REJECT_REASONS}
    sel = Selection(members=[], candidates=int(candidates.size), rejected=rejected,
                    n_fit=n_fit, n_negatives_fit=sum(_rows(m) for m in groups.values()))
    if candidates.size == 0:
        return sel

    density = np.asarray(ref[:, candidates].getnnz(axis=0), dtype=np.float64) / ref.shape[0]
    fire = np.asarray(fit[:, candidates].getnnz(axis=0), dtype=np.float64) / n_fit
    pos = _dense(fit, candidates)
    ex_mean = pos.mean(axis=0)
    names = list(groups)
    group_means = np.vstack([np.asarray(groups[g].mean(axis=0)).ravel()[candidates] for g in names])
    worst = group_means.argmax(axis=0)
    worst_mean = group_means[worst, np.arange(candidates.size)]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(worst_mean > 0, ex_mean / np.where(worst_mean > 0, worst_mean, 1.0), np.inf)
    t = thresholds
    weights = np.array([t.reference_weight if g == reference_group else 1.0 for g in names])
    precision = ex_mean / np.maximum(ex_mean + weights @ group_means, 1e-30)
    neg_mass = weights @ group_means
    halves = [pos[0::2].mean(axis=0), pos[1::2].mean(axis=0)] if n_fit >= 2 else [ex_mean]
    half_precision = np.min([h / np.maximum(h + neg_mass, 1e-30) for h in halves], axis=0)

    tests = [
        ("dense", density <= t.max_density),
        ("rare", fire * n_fit >= min(t.min_fire, n_fit) - 1e-9),
        ("unspecific", ratio >= t.min_ratio),
        ("imprecise", (precision >= t.min_precision) & (half_precision >= t.min_precision)),
    ]
    alive = np.ones(candidates.size, dtype=bool)
    for reason, ok in tests:
        newly = alive & ~ok
        rejected[reason] = int(newly.sum())
        if reason == "unspecific":
            for j in np.flatnonzero(newly):
                g = names[worst[j]]
                sel.confusions[g] = sel.confusions.get(g, 0) + 1
        alive &= ok
    idx = np.flatnonzero(alive)
    idx = idx[np.lexsort((candidates[idx], -precision[idx]))]
    if t.top_k is not None and idx.size > t.top_k:
        rejected["beyond_top_k"] = int(idx.size - t.top_k)
        idx = idx[: t.top_k]

    member_ids = candidates[idx]
    neg = np.vstack([_dense(m, member_ids) for m in groups.values()])
    auroc = auroc_columns(pos[:, idx], neg)
    ho_auroc = np.full(idx.size, np.nan)
    if heldout is not None and negatives_heldout:
        ho_groups = [sp.csr_matrix(m) for m in negatives_heldout.values() if m.shape[0] > 0]
        sel.n_heldout = _rows(heldout)
        sel.n_negatives_heldout = sum(_rows(m) for m in ho_groups)
        if sel.n_heldout and ho_groups and member_ids.size:
            h_pos = _dense(heldout, member_ids)
            h_neg = np.vstack([_dense(m, member_ids) for m in ho_groups])
            ho_auroc = auroc_columns(h_pos, h_neg)
            fam = auroc_columns(h_pos.sum(axis=1, keepdims=True), h_neg.sum(axis=1, keepdims=True))
            sel.heldout_auroc = float(fam[0])

    for k, j in enumerate(idx):
        col = pos[:, j]
        nz = col[col > 0]
        sel.members.append(MemberStats(
            id=int(candidates[j]), precision=float(precision[j]), auroc=float(auroc[k]),
            heldout_auroc=None if np.isnan(ho_auroc[k]) else float(ho_auroc[k]),
            ratio=float(ratio[j]), closest_group=names[worst[j]] if worst_mean[j] > 0 else None,
            density=float(density[j]), fire_share=float(fire[j]),
            level=float(np.median(nz)) if nz.size else 0.0,
        ))
    return sel
