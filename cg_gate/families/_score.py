"""Family metrics: coverage, pooled performance with a bootstrap CI, lift, and the
paired regression against a baseline (DESIGN §2, "Concept families", "Uncertainty",
"Regression against a baseline").

For a family F and item x: `den_F(x) = Σ_{c∈F} a_c(x)` and `num_F(x) = den_F(x)·s(x)`;
`χ_model(F) = Σ_x num_F(x) / Σ_x den_F(x)` over scored items (NaN scores are excluded).
The family's **support** is the number of scored items with `den_F(x) > 0`; below
`min_support` the value and its interval are None ("insufficient data").

Bootstrap (percentile, seeded): `rng = numpy.random.default_rng(seed)`; resample b draws
`rng.integers(0, n, size=n)` indices into the n support items (drawn in blocks, which
yields the same stream); the statistic is Σnum/Σden of the drawn items; bounds are the
`(1−confidence)/2` and `(1+confidence)/2` quantiles (`numpy.quantile`, linear).
Items outside the support contribute 0 to both sums, so resampling the support is the
bootstrap of the ratio over the items that carry it.

**Coverage** (like purity) is read on the model the family was resolved on — the baseline
when there is one, else the candidate — so an item's activation and the member's exemplar
level come from the same model. It asks whether the suites *exercise* each member, not merely touch it: an item
exercises member c when `a_c(x) ≥ exercise_strength · level_c` (`level_c`, the median
non-zero saliency of c on the family's fit exemplars; for members chosen by label or id,
which have no level, any `a_c(x) > 0`), and c is covered in a suite when at least
`exercise_min_items` of its items exercise it. A coding suite that brushes a refusal
feature on one prompt does not cover refusal. Members that are dense (they fire on more
than `max_density` of the neutral reference) are left out of coverage, unless the policy
names them by id.

**Scoped figures.** When the policy names a family's intended categories, χ_model(F) and
Δχ_model(F) are also computed over those categories' items alone (`FamilyResult.scoped`):
the same formulas on a sub-suite, as the paper's per-benchmark χ_model(c,b) is on one
suite. Performance and regression rules judge the scoped figures by default, so a coding
regression cannot fail a refusal rule; the pooled figures stay in the record beside them.

Regression pairs items by (suite, id) — or by id alone when the baseline gives no
suites. The paired set P holds items present and scored on both sides with the family
active on at least one side; each resample draws one index vector into P and applies it
to both sides, so `Δ = χ_cand − χ_base` keeps the item pairing. Items present on one
side only are listed, never silently dropped. Both sides need `min_support` items with
the family active within P, else Δ is None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from cg_gate.errors import ConfigError
from cg_gate.families._attribution import PairedSides, attribute, intended_share
from cg_gate.families._resolve import ResolvedFamily
from cg_gate.metrics import MISSING, OVER, UNDER, ConceptMetrics
from cg_gate.record import ANALYSIS_DEFAULTS as _D
from cg_gate.record import (
    CategoryAttribution,
    FamilyScoped,
    FamilyCoverage,
    FamilyMember,
    FamilyPurity,
    FamilyPerformance,
    FamilyRegression,
    FamilyResult,
    Interval,
)

_MAX_BLOCK = 4_000_000  # indices drawn per bootstrap block


@dataclass(frozen=True)
class BaselineSide:
    """The baseline checkpoint's view of the same suites."""

    saliency: sp.spmatrix
    """(items × K) item saliency on the baseline model, same SAE."""
    scores: np.ndarray
    """(items,) baseline s(x); NaN = unscored."""
    item_ids: Sequence[str]
    """Item ids, in row order."""
    suites: Sequence[str] | None = None
    """Suite of each row; None pairs by id alone."""


def family_den(saliency: sp.spmatrix, members: Sequence[int]) -> np.ndarray:
    """den_F(x) = Σ_{c∈F} a_c(x) for every item (row): one sparse product with F's indicator."""
    indicator = np.zeros(saliency.shape[1], dtype=np.float64)
    if len(members):
        indicator[np.asarray(members, dtype=np.int64)] = 1.0
    return np.asarray(sp.csr_matrix(saliency) @ indicator, dtype=np.float64).ravel()


def _ratio(num: np.ndarray, den: np.ndarray) -> float | None:
    d = float(den.sum())
    return float(num.sum()) / d if d > 0 else None


def _quantiles(stats: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return None, None
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_ratio(num: np.ndarray, den: np.ndarray, *, n_boot: int, confidence: float,
                    seed: int) -> Interval:
    """Σnum/Σden with a seeded percentile bootstrap CI over the rows (module docstring)."""
    value = _ratio(num, den)
    n = num.shape[0]
    if value is None or n_boot <= 0 or n == 0:
        return Interval(value=value)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot, dtype=np.float64)
    block = max(1, _MAX_BLOCK // n)
    for start in range(0, n_boot, block):
        k = min(block, n_boot - start)
        idx = rng.integers(0, n, size=(k, n))
        d = den[idx].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            stats[start:start + k] = num[idx].sum(axis=1) / d
    low, high = _quantiles(stats, confidence)
    return Interval(value=value, low=low, high=high)


def paired_bootstrap_delta(c_num: np.ndarray, c_den: np.ndarray, b_num: np.ndarray,
                           b_den: np.ndarray, *, n_boot: int, confidence: float,
                           seed: int) -> Interval:
    """Δ = Σc_num/Σc_den − Σb_num/Σb_den with a paired percentile bootstrap CI.

    One index vector per resample is applied to both sides (module docstring).
    """
    c, b = _ratio(c_num, c_den), _ratio(b_num, b_den)
    if c is None or b is None:
        return Interval(value=None)
    value = c - b
    n = c_num.shape[0]
    if n_boot <= 0:
        return Interval(value=value)
    rng = np.random.default_rng(seed)
    stats = np.empty(n_boot, dtype=np.float64)
    block = max(1, _MAX_BLOCK // n)
    for start in range(0, n_boot, block):
        k = min(block, n_boot - start)
        idx = rng.integers(0, n, size=(k, n))
        with np.errstate(divide="ignore", invalid="ignore"):
            stats[start:start + k] = (c_num[idx].sum(axis=1) / c_den[idx].sum(axis=1)
                                      - b_num[idx].sum(axis=1) / b_den[idx].sum(axis=1))
    low, high = _quantiles(stats, confidence)
    return Interval(value=value, low=low, high=high)


def _mean_or_none(values: np.ndarray) -> float | None:
    if values.size == 0:
        return None
    m = float(np.mean(values))
    return m if np.isfinite(m) else None


@dataclass(frozen=True)
class Exercise:
    """What makes an item exercise a member (module docstring)."""

    strength: float = _D.exercise_strength
    min_items: int = _D.exercise_min_items


def _exercised(saliency: sp.csr_matrix, members: Sequence[FamilyMember],
               exercise: Exercise) -> sp.csr_matrix:
    """(items × members) bool: item x exercises member c."""
    if not members:
        return sp.csr_matrix((saliency.shape[0], 0), dtype=bool)
    cols = sp.csc_matrix(saliency[:, [m.id for m in members]])
    bar = np.array([exercise.strength * m.level if m.level else 0.0 for m in members])
    data = cols.data >= np.repeat(bar, np.diff(cols.indptr))
    data &= cols.data > 0
    out = sp.csc_matrix((data, cols.indices, cols.indptr), shape=cols.shape)
    out.eliminate_zeros()
    return out.tocsr()


def _coverage(members: np.ndarray, metrics: ConceptMetrics, exercised: sp.csr_matrix,
              suites: Sequence[str], exercise: Exercise) -> FamilyCoverage:
    n = int(members.size)
    cls_all = metrics.coverage_all[members]
    suite_arr = np.asarray(suites)
    counts_all = np.asarray(exercised.sum(axis=0)).ravel() if n else np.zeros(0)
    covered = int((counts_all >= exercise.min_items).sum())
    by_suite: dict[str, float | None] = {}
    items_by: dict[str, int] = {}
    missing_by: dict[str, list[int]] = {}
    mean_by: dict[str, float | None] = {}
    for si, name in enumerate(metrics.suite_names):
        rows = exercised[np.flatnonzero(suite_arr == name)]
        counts = np.asarray(rows.sum(axis=0)).ravel() if n else np.zeros(0)
        by_suite[name] = float((counts >= exercise.min_items).mean()) if n else None
        items_by[name] = int((rows.getnnz(axis=1) > 0).sum()) if n else 0
        cls = metrics.coverage[si, members]
        missing_by[name] = [int(i) for i in members[cls == MISSING]]
        mean_by[name] = _mean_or_none(metrics.chi_bench[si, members])
    return FamilyCoverage(
        members=n, covered=covered, covered_fraction=covered / n if n else None,
        exercise_strength=exercise.strength, exercise_min_items=exercise.min_items,
        exercising_items=int((exercised.getnnz(axis=1) > 0).sum()) if n else 0,
        exercising_items_by_suite=items_by,
        mean_chi_bench=_mean_or_none(metrics.chi_bench_all[members]),
        missing_ids=[int(i) for i in members[cls_all == MISSING]],
        under_ids=[int(i) for i in members[cls_all == UNDER]],
        over_ids=[int(i) for i in members[cls_all == OVER]],
        by_suite=by_suite, missing_by_suite=missing_by, mean_chi_bench_by_suite=mean_by,
    )


def _check_rows(what: str, saliency: sp.spmatrix, scores: np.ndarray, item_ids: Sequence[str],
                suites: Sequence[str] | None, k: int) -> None:
    n = saliency.shape[0]
    lengths = {"scores": len(scores), "item_ids": len(item_ids)}
    if suites is not None:
        lengths["suites"] = len(suites)
    bad = {name: size for name, size in lengths.items() if size != n}
    if bad:
        raise ConfigError(f"{what}: saliency has {n} rows but " +
                          ", ".join(f"{name} has {size}" for name, size in bad.items()),
                          fix="pass one score, id and suite per saliency row")
    if saliency.shape[1] != k:
        raise ConfigError(f"{what}: saliency has {saliency.shape[1]} concepts, metrics have {k}",
                          fix="use the same SAE on both sides")


def _stability_std(num: np.ndarray, den: np.ndarray, n_all: int, support_rows: np.ndarray,
                   repeats: int, drop: float, seed: int) -> float | None:
    """Std (ddof 0) of χ_model(F) when `round(drop·n)` of all n items are dropped at random."""
    if repeats <= 0:
        return None
    rng = np.random.default_rng(seed)
    n_drop = int(round(drop * n_all))
    values = []
    for _ in range(repeats):
        dropped = np.zeros(n_all, dtype=bool)
        dropped[rng.choice(n_all, size=n_drop, replace=False)] = True
        keep = ~dropped[support_rows]
        r = _ratio(num[keep], den[keep])
        if r is not None:
            values.append(r)
    return float(np.std(values)) if values else None


def family_result(
    resolved: ResolvedFamily,
    *,
    metrics: ConceptMetrics,
    saliency: sp.spmatrix,
    scores: np.ndarray,
    item_ids: Sequence[str],
    suites: Sequence[str],
    n_boot: int = _D.bootstrap_samples,
    confidence: float = _D.confidence,
    seed: int = _D.seed,
    baseline: BaselineSide | None = None,
    stability_repeats: int = 0,
    stability_drop: float = 0.2,
    top_n: int = 5,
    categories: Sequence[str] | None = None,
    intended: Sequence[str] = (),
    min_purity: float = _D.min_purity,
    exercise: Exercise = Exercise(),
    density: np.ndarray | None = None,
    max_density: float = _D.max_density,
) -> FamilyResult:
    """Coverage, performance (with CI and lift), regression, purity and attribution of a family.

    `saliency` is (items × K) for the candidate, `scores` its s(x) (NaN = unscored),
    `item_ids`, `suites` and `categories` name each row. `min_support` comes from
    `metrics`. With `stability_repeats > 0`, `performance.stability_std` is the std of
    χ_model(F) under random `stability_drop` item drops. With `intended` categories, the
    family is judged only when at least `min_purity` of its saliency mass lies on them
    (`purity.judged`). `density` (per feature, on the neutral reference) leaves dense
    members out of coverage. See the module docstring and `_attribution.py`.
    """
    scores = np.asarray(scores, dtype=np.float64)
    k = metrics.n_concepts
    _check_rows("candidate", saliency, scores, item_ids, suites, k)
    members = np.asarray(resolved.ids, dtype=np.int64)
    sal = sp.csr_matrix(saliency)
    # Exemplar levels and purity are read on the model the family was resolved on: the
    # baseline when there is one (the pipeline reads exemplars there), else the candidate.
    base = _baseline_rows(baseline, item_ids, suites, members, k) if baseline is not None else None
    reference, measured_on = (base.aligned, "baseline") if base is not None else (sal, "candidate")
    cov_members = [m for m in resolved.members  # explicit ids are the policy's own choice
                   if density is None or density[m.id] <= max_density or "id" in m.reasons]
    exercised = _exercised(reference, cov_members, exercise)
    coverage = _coverage(np.asarray([m.id for m in cov_members], dtype=np.int64), metrics,
                         exercised, suites, exercise)
    coverage.dense_ids = sorted(set(resolved.ids) - {m.id for m in cov_members})
    coverage.measured_on = measured_on

    suite_index = {name: i for i, name in enumerate(metrics.suite_names)}
    unknown = sorted({s for s in suites if s not in suite_index})
    if unknown:
        raise ConfigError(f"items name suites the metrics do not know: {', '.join(unknown)}",
                          fix="compute metrics and family results over the same items")

    den = family_den(saliency, members)
    scored = ~np.isnan(scores)
    rows = np.flatnonzero(scored & (den > 0))
    d, s = den[rows], scores[rows]
    num = d * s
    support = int(rows.size)
    enough = support >= metrics.min_support and support > 0

    if enough:
        chi = bootstrap_ratio(num, d, n_boot=n_boot, confidence=confidence, seed=seed)
        suite_mean = metrics.mean_score[[suite_index[suites[i]] for i in rows]]
        expected = float((d * suite_mean).sum() / d.sum())
        lift = chi.value - expected if chi.value is not None else None
        stability = _stability_std(num, d, len(scores), rows, stability_repeats, stability_drop,
                                   seed)
    else:
        chi, lift, stability = Interval(value=None), None, None

    active = np.flatnonzero(den > 0)
    top = active[np.argsort(-den[active], kind="stable")][:top_n]
    performance = FamilyPerformance(chi_model=chi, support=support, lift=lift,
                                    stability_std=stability,
                                    top_items=[str(item_ids[i]) for i in top])

    regression, paired = None, None
    if base is not None:
        regression, paired = _regression(den, scores, base, metrics, n_boot=n_boot,
                                         confidence=confidence, seed=seed)
    cats = list(categories) if categories is not None else [""] * len(scores)
    attribution, drivers = attribute(den, scores, item_ids, suites, cats, paired=paired)
    scoped = None
    if intended:
        in_scope = np.isin(np.asarray(cats, dtype=object), list(intended))
        scoped = _scoped(intended, den * in_scope, scores, in_scope, base, metrics,
                         n_boot=n_boot, confidence=confidence, seed=seed)
    if measured_on == "baseline":
        ref_parts, _ = attribute(family_den(reference, members), scores, item_ids, suites, cats)
        pure = purity(ref_parts, intended, min_purity, resolved.key)
        pure.measured_on = "baseline"
        pure.candidate_share = intended_share(attribution, intended) if intended else None
    else:
        pure = purity(attribution, intended, min_purity, resolved.key)
    return FamilyResult(name=resolved.key, title=resolved.title, members=resolved.members,
                        coverage=coverage, performance=performance, regression=regression,
                        selection=resolved.selection, attribution=attribution, drivers=drivers,
                        purity=pure, scoped=scoped)


@dataclass(frozen=True)
class _BaselineRows:
    """The baseline side, checked and paired with the candidate once per family."""

    pairing: _Pairing
    scores: np.ndarray
    """Baseline s(x), in the baseline's row order."""
    den: np.ndarray
    """den_F(x) on the baseline, in the baseline's row order."""
    aligned: sp.csr_matrix
    """The baseline's saliency in the candidate's row order (zero rows where unpaired)."""


def _baseline_rows(baseline: BaselineSide, item_ids: Sequence[str], suites: Sequence[str],
                   members: np.ndarray, k: int) -> _BaselineRows:
    scores = np.asarray(baseline.scores, dtype=np.float64)
    _check_rows("baseline", baseline.saliency, scores, baseline.item_ids, baseline.suites, k)
    pairing = _pair(item_ids, suites, baseline)
    ci, bi = pairing.candidate_rows, pairing.baseline_rows
    pick = sp.csr_matrix((np.ones(ci.size), (ci, bi)),
                         shape=(len(item_ids), baseline.saliency.shape[0]))
    return _BaselineRows(pairing=pairing, scores=scores,
                         den=family_den(baseline.saliency, members),
                         aligned=(pick @ sp.csr_matrix(baseline.saliency)).tocsr())


def _scoped(intended: Sequence[str], den: np.ndarray, scores: np.ndarray, in_scope: np.ndarray,
            base: _BaselineRows | None, metrics: ConceptMetrics, *, n_boot: int,
            confidence: float, seed: int) -> FamilyScoped:
    """χ_model(F) and Δχ_model(F) over the items of the intended categories only."""
    rows = np.flatnonzero(~np.isnan(scores) & (den > 0))
    support = int(rows.size)
    chi = Interval(value=None)
    if support >= max(1, metrics.min_support):
        d = den[rows]
        chi = bootstrap_ratio(d * scores[rows], d, n_boot=n_boot, confidence=confidence,
                              seed=seed)
    out = FamilyScoped(categories=list(intended), items=int(in_scope.sum()), support=support,
                       chi_model=chi)
    if base is not None:
        reg, _ = _regression(den, scores, base, metrics, n_boot=n_boot, confidence=confidence,
                             seed=seed, scope=in_scope)
        out.baseline_chi_model, out.delta, out.paired_items = (reg.baseline_chi_model, reg.delta,
                                                               reg.paired_items)
    return out


def purity(attribution: Sequence[CategoryAttribution], intended: Sequence[str],
           min_purity: float, name: str) -> FamilyPurity:
    """The purity gate: may this family's performance and regression rules be judged?"""
    if not intended:
        return FamilyPurity()
    share = intended_share(attribution, intended)
    named = ", ".join(intended)
    if share is None:
        return FamilyPurity(intended=list(intended), min_purity=min_purity, judged=False,
                            reason=f"family '{name}' is active on no item, so its purity on "
                                   f"{named} cannot be measured")
    if share >= min_purity:
        return FamilyPurity(intended=list(intended), intended_share=share, min_purity=min_purity)
    if not any(a.category in set(intended) for a in attribution):
        present = ", ".join(sorted({a.category for a in attribution})[:8])
        return FamilyPurity(
            intended=list(intended), intended_share=share, min_purity=min_purity, judged=False,
            reason=f"no suite item is in family '{name}''s categories ({named}); the suites' "
                   f"categories are {present}: name the ones this family is meant for in the "
                   f"policy (concepts.{name}.categories) to judge it")
    others = sorted((a for a in attribution if a.category not in set(intended)),
                    key=lambda a: -(a.mass_share or 0.0))[:3]
    where = ", ".join(f"{a.category} {100 * (a.mass_share or 0):.0f} %" for a in others)
    return FamilyPurity(
        intended=list(intended), intended_share=share, min_purity=min_purity, judged=False,
        reason=f"only {100 * share:.0f} % of family '{name}''s saliency lies on its categories "
               f"({named}), below min_purity {100 * min_purity:.0f} %; the rest is on {where}: "
               "a verdict would be about those items, not about this family")


def _keys(item_ids: Sequence[str], suites: Sequence[str] | None, what: str) -> list[tuple[str, str]]:
    keys = list(zip(suites if suites is not None else [""] * len(item_ids), map(str, item_ids)))
    if len(set(keys)) != len(keys):
        seen: set[tuple[str, str]] = set()
        dup = next(k for k in keys if k in seen or seen.add(k))
        raise ConfigError(f"{what}: item id '{dup[1]}' appears twice"
                          + (f" in suite '{dup[0]}'" if dup[0] else ""),
                          fix="item ids must be unique within a suite")
    return keys


@dataclass(frozen=True)
class _Pairing:
    candidate_rows: np.ndarray
    baseline_rows: np.ndarray
    candidate_only: list[str]
    baseline_only: list[str]


def _pair(item_ids: Sequence[str], suites: Sequence[str], baseline: BaselineSide) -> _Pairing:
    """Pair rows by (suite, id), or by id when the baseline names no suites."""
    c_keys = _keys(item_ids, suites if baseline.suites is not None else None, "candidate")
    b_keys = _keys(baseline.item_ids, baseline.suites, "baseline")
    if c_keys == b_keys:  # the usual case: both sides ran the same suites in the same order
        rows = np.arange(len(c_keys), dtype=np.int64)
        return _Pairing(rows, rows, [], [])
    b_index = {key: i for i, key in enumerate(b_keys)}
    c_set = set(c_keys)
    ci = np.array([i for i, key in enumerate(c_keys) if key in b_index], dtype=np.int64)
    bi = np.array([b_index[c_keys[i]] for i in ci], dtype=np.int64)
    return _Pairing(
        ci, bi,
        candidate_only=[str(item_ids[i]) for i, key in enumerate(c_keys) if key not in b_index],
        baseline_only=[str(baseline.item_ids[i]) for i, key in enumerate(b_keys) if key not in c_set],
    )


def _regression(c_den_all: np.ndarray, c_scores: np.ndarray, base: _BaselineRows,
                metrics: ConceptMetrics, *, n_boot: int, confidence: float,
                seed: int, scope: np.ndarray | None = None
                ) -> tuple[FamilyRegression, PairedSides | None]:
    pairing = base.pairing
    ci, bi = pairing.candidate_rows, pairing.baseline_rows
    c_den, b_den = c_den_all[ci], base.den[bi]
    c_s, b_s = c_scores[ci], base.scores[bi]
    keep = ~np.isnan(c_s) & ~np.isnan(b_s) & ((c_den > 0) | (b_den > 0))
    n_pairs = int(ci.size)
    if scope is not None:  # only the pairs whose candidate item lies in the scope
        keep &= scope[ci]
        n_pairs = int(scope[ci].sum())
    c_den, b_den, c_s, b_s = c_den[keep], b_den[keep], c_s[keep], b_s[keep]
    paired = PairedSides(rows=ci[keep], c_den=c_den, c_scores=c_s, b_den=b_den, b_scores=b_s)
    c_support, b_support = int((c_den > 0).sum()), int((b_den > 0).sum())
    b_num = b_den * b_s
    baseline_chi = _ratio(b_num, b_den) if b_support >= max(1, metrics.min_support) else None
    if min(c_support, b_support) >= max(1, metrics.min_support):
        delta = paired_bootstrap_delta(c_den * c_s, c_den, b_num, b_den, n_boot=n_boot,
                                       confidence=confidence, seed=seed)
    else:
        delta = Interval(value=None)
    reg = FamilyRegression(baseline_chi_model=baseline_chi, delta=delta,
                           paired_items=n_pairs, candidate_only=pairing.candidate_only,
                           baseline_only=pairing.baseline_only)
    return reg, (paired if delta.value is not None else None)
