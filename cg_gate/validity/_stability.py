"""Stability of χ_bench and χ_model under random item drops (DESIGN §2.6).

Each repeat keeps a 0/1 weight per item: in every suite, round(drop·|D_b|) items chosen
uniformly at random get weight 0. With the weights of all repeats stacked in a dense
(R, N) matrix W, every sum the metrics need becomes one sparse × dense product
(`A_bᵀ Wᵀ`), done in blocks of concepts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from cg_gate.errors import ConfigError
from cg_gate.metrics import PreparedInput, check_fraction, check_positive_int, prepare, ratio_or_nan
from cg_gate.record import ANALYSIS_DEFAULTS as _D
from cg_gate.record import StabilitySummary

# Concepts processed at once: keeps each (concepts × repeats) block around 8 MB.
_BLOCK_CELLS = 1_000_000


@dataclass(frozen=True)
class Stability:
    """Spread of the concept metrics over `repeats` random drops of `drop` of each suite's items.

    Stds are sample standard deviations over repeats (ddof=1). `std_chi_model[c]` is NaN
    unless concept c keeps support ≥ min_support (scored items with a_c(x) > 0) in
    *every* repeat: a concept that drops to "insufficient data" under a 20% drop has no
    stable χ_model to speak of. Family stds follow the same rule with the family's
    support (scored items on which any member fires).
    """

    repeats: int
    drop: float
    seed: int
    min_support: int
    std_chi_bench: np.ndarray
    """(K,) std over repeats of the cross-suite χ_bench(c)."""
    std_chi_model: np.ndarray
    """(K,) std over repeats of pooled χ_model(c); NaN where unsupported in some repeat."""
    covered: np.ndarray
    """(K,) bool: the concept fires on at least one item (support > 0) in the full data."""
    families: dict[str, float | None] = field(default_factory=dict)
    """std over repeats of pooled family χ_model(F); None where unsupported in some repeat."""

    @property
    def median_std_chi_bench(self) -> float | None:
        """Median of std χ_bench over covered concepts (concepts that never fire have std 0)."""
        vals = self.std_chi_bench[self.covered]
        return float(np.median(vals)) if vals.size else None

    @property
    def median_std_chi_model(self) -> float | None:
        """Median of std χ_model over concepts supported in every repeat."""
        vals = self.std_chi_model[np.isfinite(self.std_chi_model)]
        return float(np.median(vals)) if vals.size else None

    def to_record(self) -> StabilitySummary:
        """The results.json summary."""
        return StabilitySummary(
            repeats=self.repeats,
            drop=self.drop,
            median_std_chi_bench=self.median_std_chi_bench,
            median_std_chi_model=self.median_std_chi_model,
            families=dict(self.families),
        )


def drop_weights(
    suite_index: np.ndarray, n_suites: int, repeats: int, drop: float, rng: np.random.Generator
) -> np.ndarray:
    """(repeats, N) float64 0/1 weights: per repeat and suite, round(drop·n_b) random items get 0."""
    n = suite_index.shape[0]
    w = np.ones((repeats, n))
    for b in range(n_suites):
        members = np.flatnonzero(suite_index == b)
        n_drop = int(math.floor(drop * members.size + 0.5))
        if n_drop == 0:
            continue
        order = np.argsort(rng.random((repeats, members.size)), axis=1)[:, :n_drop]
        rows = np.repeat(np.arange(repeats), n_drop)
        w[rows, members[order].ravel()] = 0.0
    return w


def _family_matrix(families: Mapping[str, Sequence[int]], k: int) -> tuple[list[str], sp.csr_matrix]:
    """(K, F) 0/1 membership matrix of the families, columns in mapping order."""
    names = list(families)
    rows, cols = [], []
    for j, name in enumerate(names):
        ids = np.unique(np.asarray(list(families[name]), dtype=np.int64))
        if ids.size and (ids.min() < 0 or ids.max() >= k):
            raise ConfigError(
                f"family {name!r} has concept ids outside 0..{k - 1}",
                fix="resolve families against the same SAE the saliency came from",
            )
        rows.append(ids)
        cols.append(np.full(ids.size, j))
    r = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.empty(0, dtype=np.int64)
    mat = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(k, len(names)))
    return names, mat


def _suite_blocks(data: PreparedInput) -> list[tuple[np.ndarray, sp.csc_matrix]]:
    """Per suite: its item indices and its rows of the saliency matrix (CSC)."""
    out = []
    for b in range(data.n_suites):
        members = np.flatnonzero(data.suite_index == b)
        out.append((members, data.csr[members].tocsc()))
    return out


def stability(
    saliency: Any,
    suites: Sequence[str],
    scores: Any,
    *,
    families: Mapping[str, Sequence[int]] | None = None,
    repeats: int = _D.stability_repeats,
    drop: float = _D.stability_drop,
    seed: int = _D.seed,
    min_support: int = _D.min_support,
) -> Stability:
    """Recompute χ_bench and pooled χ_model with `drop` of each suite's items removed, `repeats` times.

    Per repeat: χ_bench(c,b) over each suite's kept items (DESIGN §2.2), χ_bench(c) their
    mean; pooled χ_model(c) over kept scored items (NaN below `min_support`); pooled
    family χ_model(F) = Σ_{c∈F} Σ_x a_c(x)s(x) / Σ_{c∈F} Σ_x a_c(x). Returns per-concept and
    per-family standard deviations over repeats (see `Stability`). Seeded with
    `np.random.default_rng(seed)`.
    """
    check_positive_int(repeats, "repeats", minimum=2)
    check_positive_int(min_support, "min_support")
    check_fraction(drop, "drop", open_low=False)
    data = prepare(saliency, suites, scores)
    k = data.n_concepts
    fam_names, fam_mat = _family_matrix(families or {}, k)
    rng = np.random.default_rng(seed)
    w = drop_weights(data.suite_index, data.n_suites, repeats, drop, rng)  # (R, N)

    scored = data.scored
    s = np.where(scored, data.scores, 0.0)
    ws = (w * scored).T  # (N, R) weights of scored items
    wss = ws * s[:, None]  # (N, R) weights × score
    csc = data.csr.tocsc()
    binary = csc.copy()
    binary.data[:] = 1.0

    blocks = _suite_blocks(data)
    row_sums = np.asarray(data.csr.sum(axis=1)).ravel()
    # (R, S) suite totals Σ_x w(x) Σ_c a_c(x) per repeat.
    totals = np.stack([w[:, m] @ row_sums[m] for m, _ in blocks], axis=1)

    std_bench = np.empty(k)
    std_model = np.full(k, np.nan)
    n_fam = len(fam_names)
    fam_num = np.zeros((n_fam, repeats))
    fam_den = np.zeros((n_fam, repeats))
    step = max(1, _BLOCK_CELLS // repeats)
    for c0 in range(0, k, step):
        c1 = min(k, c0 + step)
        chi_sum = np.zeros((c1 - c0, repeats))
        for b, (members, a_b) in enumerate(blocks):
            sums = a_b[:, c0:c1].T @ w[:, members].T  # (Kc, R)
            t = totals[:, b]
            with np.errstate(divide="ignore", invalid="ignore"):
                chi_sum += np.where(t > 0, k * sums / t, 0.0)
        std_bench[c0:c1] = (chi_sum / data.n_suites).std(axis=1, ddof=1)

        a_t = csc[:, c0:c1].T.tocsr()  # (Kc, N)
        num = a_t @ wss
        den = a_t @ ws
        sup = binary[:, c0:c1].T.tocsr() @ ws
        chi = ratio_or_nan(num, den, sup, min_support)
        ok = np.isfinite(chi).all(axis=1)
        std_model[c0:c1][ok] = chi[ok].std(axis=1, ddof=1)
        if n_fam:
            f_t = fam_mat[c0:c1].T.tocsr()  # (F, Kc)
            fam_num += f_t @ num
            fam_den += f_t @ den

    family_std: dict[str, float | None] = {}
    if n_fam:
        # Items on which any member fires, per family: (N, F) > 0.
        fires = (data.csr @ fam_mat) > 0
        fam_support = np.asarray(fires.T.astype(np.float64) @ ws)  # (F, R)
        fam_chi = ratio_or_nan(fam_num, fam_den, fam_support, min_support)
        for j, name in enumerate(fam_names):
            row = fam_chi[j]
            family_std[name] = float(row.std(ddof=1)) if np.isfinite(row).all() else None

    return Stability(
        repeats=int(repeats),
        drop=float(drop),
        seed=int(seed),
        min_support=int(min_support),
        std_chi_bench=std_bench,
        std_chi_model=std_model,
        covered=np.asarray(data.csr.getnnz(axis=0)) > 0,
        families=family_std,
    )
