"""The analysis stages after the model passes: metrics, families, validity, fidelity.

Each stage takes typed inputs and returns a typed result; the analysis settings travel
whole, as the one `AnalysisSettings` object the policy (or the defaults) gave.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from cg_gate.errors import ConfigError
from cg_gate.families import BaselineSide
from cg_gate.metrics import ConceptMetrics
from cg_gate.pipeline._side import SideResult
from cg_gate.record import (
    ACTIVATIONS_FILE,
    AblationSummary,
    AnalysisSettings,
    FamilyResult,
    FidelitySummary,
    GateRun,
    OverlapSummary,
    StabilitySummary,
    read_results,
    read_saliency,
)
from cg_gate.suites import Item


@dataclass
class Baseline:
    """The baseline's view of the same items: from a checkpoint, or a previous run's files."""

    side: BaselineSide
    scores: np.ndarray  # (n,) baseline s(x) aligned to the candidate's items; NaN = absent
    result: SideResult | None = None  # when a baseline checkpoint ran in this run


def load_baseline_results(path: Path) -> tuple[GateRun, BaselineSide]:
    """A previous run as a baseline: its record and its saliency."""
    run = read_results(path)
    f = read_saliency(Path(path).parent / ACTIVATIONS_FILE)
    return run, BaselineSide(saliency=f.saliency, scores=f.scores, item_ids=f.item_ids,
                             suites=f.suites)


def _align(ids: Sequence[tuple[str, str]], other_ids: Sequence[tuple[str, str]],
           values: np.ndarray) -> np.ndarray:
    """`values` (indexed like other_ids) re-indexed like `ids`; NaN where absent."""
    pos = {k: i for i, k in enumerate(other_ids)}
    out = np.full(len(ids), np.nan)
    for i, k in enumerate(ids):
        j = pos.get(k)
        if j is not None:
            out[i] = values[j]
    return out


def baseline_of(items: Sequence[Item], result: SideResult | None,
                results_path: Path | None) -> Baseline | None:
    """The baseline stage's result, aligned to `items` by (suite, id)."""
    if result is not None:
        side = BaselineSide(saliency=result.activations.saliency, scores=result.responses.scores,
                            item_ids=[it.id for it in items], suites=[it.suite for it in items])
    elif results_path is not None:
        side = load_baseline_results(results_path)[1]
    else:
        return None
    keys = [(it.suite, it.id) for it in items]
    base_keys = list(zip(side.suites or [""] * len(side.item_ids), side.item_ids))
    return Baseline(side=side, scores=_align(keys, base_keys, np.asarray(side.scores, float)),
                    result=result)


@dataclass
class Metrics:
    """The concept-metrics stage: candidate metrics, and the baseline's pooled χ_model."""

    metrics: ConceptMetrics
    analysis: AnalysisSettings  # with the CI method the metrics used
    baseline_chi: np.ndarray | None = None


def _compute(saliency: Any, suites: Sequence[str], scores: Any, a: AnalysisSettings,
             **kw: Any) -> ConceptMetrics:
    from cg_gate.metrics import compute

    return compute(saliency, suites, scores, min_support=a.min_support, tau_under=a.tau_under,
                   tau_over=a.tau_over, eps=a.eps, n_boot=a.bootstrap_samples,
                   confidence=a.confidence, seed=a.seed, **kw)


def concept_metrics(cand: SideResult, items: Sequence[Item], baseline: Baseline | None,
                    analysis: AnalysisSettings) -> Metrics:
    """χ_bench, coverage classes and χ_model with CIs (DESIGN §2) for the candidate."""
    metrics = _compute(cand.activations.saliency, [it.suite for it in items],
                       cand.responses.scores, analysis)
    base_chi = None
    if baseline is not None:
        b = baseline.side
        base_chi = _compute(b.saliency, list(b.suites), b.scores, analysis, ci="delta").chi_model_all
    return Metrics(metrics=metrics, analysis=analysis.model_copy(update={"concept_ci": metrics.ci_method}),
                   baseline_chi=base_chi)


@dataclass
class Families:
    """The families stage: each policy family's result and its member features."""

    results: dict[str, FamilyResult] = field(default_factory=dict)
    members: dict[str, list[int]] = field(default_factory=dict)
    density: np.ndarray | None = None
    """Per feature, the share of the neutral reference texts it fires on."""


def _exemplar_lookup(rows: dict[str, sp.csr_matrix], d_sae: int):
    def saliency_fn(texts: list[str]) -> sp.csr_matrix:
        missing = [t for t in texts if t not in rows]
        if missing:
            raise ConfigError(f"{len(missing)} exemplar texts were not read by the model",
                              fix="report this as a bug in cg-gate")
        return sp.vstack([rows[t] for t in texts]).tocsr() if texts else sp.csr_matrix((0, d_sae))

    return saliency_fn


def concept_families(policy: Any, labels: Any, d_sae: int, exemplar_rows: dict[str, sp.csr_matrix],
                     metrics: Metrics, cand: SideResult, items: Sequence[Item],
                     baseline: Baseline | None) -> Families:
    """Resolve every policy family to SAE features and score it (with the baseline's Δ)."""
    from cg_gate.families import (
        Exercise,
        family_result,
        feature_density,
        reference_texts,
        resolve_families,
    )
    from cg_gate.validity import adjusted_family_score

    saliency_fn = _exemplar_lookup(exemplar_rows, d_sae)
    out = Families(density=feature_density(saliency_fn(reference_texts())))
    if policy is None:
        return out
    a, sal, scores = metrics.analysis, cand.activations.saliency, cand.responses.scores
    resolved_all = resolve_families(policy.concepts, labels=labels, d_sae=d_sae,
                                    exemplar_saliency=saliency_fn, max_density=a.max_density)
    exercise = Exercise(strength=a.exercise_strength, min_items=a.exercise_min_items)
    for key, spec in policy.concepts.items():
        resolved = resolved_all[key]
        out.members[key] = [m.id for m in resolved.members]
        fam = family_result(
            resolved, metrics=metrics.metrics, saliency=sal, scores=scores,
            item_ids=[it.id for it in items], suites=[it.suite for it in items],
            n_boot=a.bootstrap_samples, confidence=a.confidence, seed=a.seed,
            baseline=baseline.side if baseline is not None else None,
            stability_repeats=0,  # filled from the one stability pass of the validity stage
            categories=[it.category for it in items], intended=spec.categories,
            min_purity=spec.min_purity if spec.min_purity is not None else a.min_purity,
            exercise=exercise, density=out.density, max_density=a.max_density,
        )
        if baseline is not None and out.members[key]:
            fam.performance.adjusted = adjusted_family_score(
                sal, scores, baseline.scores, out.members[key], min_support=a.min_support)
        out.results[key] = fam
    return out


@dataclass
class Validity:
    """The validity stage: stability, ablation, overlap (when run) and SAE fidelity."""

    fidelity: FidelitySummary
    stability: StabilitySummary | None = None
    ablation: AblationSummary | None = None
    overlap: OverlapSummary | None = None
    stability_std: np.ndarray | None = None  # per concept, for the concept table


def validity_checks(run_checks: bool, cand: SideResult, baseline: Baseline | None,
                    training_fve: float | None, metrics: Metrics, families: Families,
                    items: Sequence[Item]) -> Validity:
    """Paper-style checks (DESIGN §2.6) and SAE fidelity on the suite's own activations."""
    from cg_gate.validity import ablation, overlap, stability

    suite_of = [it.suite for it in items]
    base = baseline.result if baseline is not None else None
    out = Validity(fidelity=sae_fidelity(cand, base, training_fve, suite_of))
    if not run_checks:
        return out
    a, sal, scores = metrics.analysis, cand.activations.saliency, cand.responses.scores
    stab = stability(sal, suite_of, scores, families=families.members,
                     repeats=a.stability_repeats, drop=a.stability_drop, seed=a.seed,
                     min_support=a.min_support)
    out.stability, out.stability_std = stab.to_record(), stab.std_chi_model
    for key, fam in families.results.items():
        fam.performance.stability_std = stab.families.get(key)
    out.ablation = ablation(sal, scores, metrics.metrics, n=a.ablation_n).to_record()
    out.overlap = overlap(metrics.metrics).to_record()
    return out


def sae_fidelity(cand: SideResult, base: SideResult | None, training_fve: float | None,
                 suite_of: Sequence[str]) -> FidelitySummary:
    """Reconstruction quality (FVE, L0, dead share) overall and by suite."""
    from cg_gate.validity import fidelity_warning

    acts = cand.activations
    fve = acts.fve()
    fired = np.asarray(acts.saliency.getnnz(axis=0) > 0)
    suite_arr = np.asarray(suite_of)
    return FidelitySummary(
        fve=fve, mean_l0=acts.mean_l0(),
        dead_share=float(1.0 - fired.mean()) if fired.size else None,
        training_fve=training_fve, warning=fidelity_warning(fve, training_fve),
        by_suite={n: acts.fve(suite_arr == n) for n in dict.fromkeys(suite_of)},
        baseline_fve=base.activations.fve() if base is not None else None,
    )


def sample_counts(items: Sequence[Item], cand: SideResult) -> dict[tuple[str, str], Any]:
    """Per (suite, category): items with two or more scored samples, and the flaky ones."""
    from cg_gate.policy import SampleCounts

    sampled: dict[tuple[str, str], list[int]] = {}
    r = cand.responses
    for i, it in enumerate(items):
        row = sampled.setdefault((it.suite, it.category), [0, 0])
        if r.sample_scores and r.pass_rate(i) is not None:
            row[0] += 1
            row[1] += int(r.flaky(i))
    return {k: SampleCounts(sampled=a, flaky=b) for k, (a, b) in sampled.items()}


def verdicts(policy: Any, families: Families, validity: Validity, metrics: Metrics,
             today: date, *, consistency: dict[tuple[str, str], Any] | None = None,
             judge: Any = None) -> Any:
    """The verdicts stage: every rule judged, waivers applied (None without a policy)."""
    if policy is None:
        return None
    from cg_gate.policy import evaluate

    return evaluate(policy, families=families.results, fidelity=validity.fidelity,
                    stability=validity.stability, suites=list(metrics.metrics.suite_names),
                    today=today, consistency=consistency, judge=judge)
