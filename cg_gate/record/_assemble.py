"""Assembling a `GateRun` from the stages' results: the record derives its own summary.

The pipeline hands over what each stage produced (item rows, verdicts, family results,
validity checks, the manifest); the gate verdict, the counts by status, the headline
means and the per-category breakdown are derived here, from the record's own contents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from cg_gate.record._schema import (
    AblationSummary,
    CategoryBreakdown,
    ConceptRecord,
    CoverageSummary,
    FamilyResult,
    FidelitySummary,
    GateRun,
    ItemRecord,
    LengthStats,
    Manifest,
    OverlapSummary,
    Severity,
    SignOff,
    StabilitySummary,
    Summary,
    Verdict,
    WaiverRecord,
)


def _values(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _mean(values: np.ndarray) -> float | None:
    v = values[~np.isnan(values)]
    return float(v.mean()) if v.size else None


def summarise(verdicts: Sequence[Verdict], items: Sequence[ItemRecord], *, fail_on: Severity,
              n_concepts: int) -> Summary:
    """The gate outcome (fail when any verdict fails at `fail_on`) and the headline figures."""
    failing = [v for v in verdicts if v.fails(fail_on)]
    counts: dict[str, int] = defaultdict(int)
    for v in verdicts:
        counts[v.status] += 1
    return Summary(
        verdict="fail" if failing else "pass", fail_on=fail_on, counts=dict(counts),
        failed_rules=[v.stable_id for v in failing],
        mean_score=_mean(_values([it.score for it in items])),
        baseline_mean_score=_mean(_values([it.baseline_score for it in items])),
        n_concepts=n_concepts, n_items=len(items),
    )


def length_stats(lengths: Sequence[int]) -> LengthStats | None:
    """min / median / p90 (linear interpolation) / max of response lengths; None when empty."""
    if not lengths:
        return None
    a = np.asarray(lengths, dtype=np.float64)
    return LengthStats(n=int(a.size), min=int(a.min()), median=float(np.median(a)),
                       p90=float(np.percentile(a, 90)), max=int(a.max()))


def _response_lengths(rows: Sequence[ItemRecord]) -> list[int]:
    out: list[int] = []
    for r in rows:
        if r.samples:
            out.extend(s.tokens for s in r.samples if s.tokens is not None)
        elif r.response_tokens is not None:
            out.append(r.response_tokens)
    return out


def category_breakdown(items: Sequence[ItemRecord],
                       declared: Mapping[tuple[str, str], str]) -> list[CategoryBreakdown]:
    """Items grouped by (suite, category) in order of appearance; `declared` severities win.

    With several samples per item: `sampled` items (two or more scored samples), how many of
    them are flaky, their mean pass rate; and the response-length distribution of the category.
    """
    groups: dict[tuple[str, str], list[ItemRecord]] = defaultdict(list)
    for it in items:
        groups[(it.suite, it.category)].append(it)
    out = []
    for (suite, cat), rows in groups.items():
        scores = _values([r.score for r in rows])
        scored = scores[~np.isnan(scores)]
        sampled = [r for r in rows if r.pass_rate is not None]
        out.append(CategoryBreakdown(
            suite=suite, category=cat, severity=declared.get((suite, cat), rows[0].severity),
            n_items=len(rows), n_scored=int(scored.size),
            mean_score=float(scored.mean()) if scored.size else None,
            failures=int((scored < 0.5).sum()),
            baseline_mean_score=_mean(_values([r.baseline_score for r in rows])),
            sampled=len(sampled), flaky=sum(r.flaky for r in sampled),
            pass_rate=_mean(_values([r.pass_rate for r in sampled])),
            response_tokens=length_stats(_response_lengths(rows)),
        ))
    return out


def assemble_run(
    *,
    manifest: Manifest,
    items: Sequence[ItemRecord],
    declared_severities: Mapping[tuple[str, str], str],
    n_concepts: int,
    fail_on: Severity,
    verdicts: Sequence[Verdict] = (),
    waivers: Sequence[WaiverRecord] = (),
    families: Sequence[FamilyResult] = (),
    coverage: Sequence[CoverageSummary] = (),
    concepts: Sequence[ConceptRecord] = (),
    stability: StabilitySummary | None = None,
    ablation: AblationSummary | None = None,
    overlap: OverlapSummary | None = None,
    fidelity: FidelitySummary,
    signoff: SignOff | None = None,
) -> GateRun:
    """The run record, with its summary, categories and digest derived from its contents."""
    run = GateRun(
        manifest=manifest,
        summary=summarise(verdicts, items, fail_on=fail_on, n_concepts=n_concepts),
        verdicts=list(verdicts), waivers=list(waivers), families=list(families),
        coverage=list(coverage), concepts=list(concepts), items=list(items),
        categories=category_breakdown(items, declared_severities),
        stability=stability, ablation=ablation, overlap=overlap, fidelity=fidelity,
        signoff=signoff or SignOff(),
    )
    run.digest = run.deterministic_digest()
    return run
