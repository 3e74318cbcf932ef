"""View data for the HTML/PDF report: plain dataclasses built from a `GateRun`.

All decisions about what to show and how to format it are made here; the template only
loops and branches. Chart geometry (SVG coordinates, bar widths) is computed here too.
Nothing is recomputed from raw data: every figure comes from the run record as it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from cg_gate import __version__
from cg_gate.record import ConceptRecord, FamilyResult, GateRun, ItemRecord, Manifest, Verdict
from cg_gate.render._contexts import contexts_html
from cg_gate.render._format import (
    DASH,
    SEVERITY_RANK,
    evidence_text,
    model_name,
    STATUS_ICONS,
    STATUS_ORDER,
    interval,
    num,
    percent,
    short_digest,
    signed,
    status_label,
    utc_display,
)

N_CONCEPTS_SHOWN = 5
N_EXAMPLES = 2
EXAMPLE_CHARS = 280


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Count:
    status: str
    label: str
    n: int


@dataclass(frozen=True)
class Digest:
    short: str
    full: str


@dataclass(frozen=True)
class ModelView:
    role: str
    name: str
    revision: str
    digest: Digest


@dataclass(frozen=True)
class Banner:
    verdict: str
    verdict_class: str
    fail_on: str
    counts: list[Count]
    failed_rules: list[str]
    model: ModelView
    baseline: ModelView | None
    policy: str
    date: str
    mean_score: str
    baseline_mean_score: str
    n_items: int
    n_concepts: int


@dataclass(frozen=True)
class WaiverView:
    rule: str
    reason: str
    ticket: str
    approved_by: str
    expires: str
    expired: bool


@dataclass(frozen=True)
class RuleRow:
    rule_id: str
    stable_id: str
    title: str
    check: str
    concept: str
    severity: str
    mode: str
    status: str
    status_label: str
    icon: str
    raw_status_label: str
    message: str
    evidence: str
    location: str
    waiver: WaiverView | None
    blocking: bool


@dataclass(frozen=True)
class CIBar:
    """A 0..1 scale strip: track, interval, point and an optional baseline tick (SVG units)."""

    width: int
    low_x: float
    high_x: float
    value_x: float
    baseline_x: float | None
    has_interval: bool


@dataclass(frozen=True)
class MemberView:
    id: int
    label: str
    reasons: str
    selectivity: str
    contexts: list[Markup]


@dataclass(frozen=True)
class AttributionRow:
    category: str
    intended: bool
    mass_share: str
    mass_width: float
    active: str
    chi_model: str
    baseline: str
    delta: str
    delta_share: str
    delta_class: str


@dataclass(frozen=True)
class DriverRow:
    item_id: str
    category: str
    baseline_score: str
    score: str
    delta: str
    mass_share: str


@dataclass(frozen=True)
class FamilyCard:
    name: str
    title: str
    n_members: int
    covered: str
    covered_fraction: str
    covered_width: float
    mean_chi_bench: str
    chi_model: str
    chi_ci: str
    support: int
    lift: str
    adjusted: str
    bar: CIBar | None
    has_baseline: bool
    baseline: str
    delta: str
    delta_ci: str
    delta_full: str
    reading: str
    reading_class: str
    stability_std: str
    members: list[MemberView]
    more_members: int
    purity: str
    purity_class: str
    selection: str
    coverage_note: str
    attribution: list[AttributionRow]
    attribution_more: int
    has_delta: bool
    drivers: list[DriverRow]
    drivers_title: str
    scoped: str


@dataclass(frozen=True)
class HistBar:
    x: float
    y: float
    w: float
    h: float
    count: int
    label: str
    label_x: float


@dataclass(frozen=True)
class Histogram:
    width: int
    height: int
    base_y: float
    bars: list[HistBar]
    max_count: int


@dataclass(frozen=True)
class CoverageRow:
    suite: str
    missing: int
    under: int
    normal: int
    over: int
    histogram: Histogram | None


@dataclass(frozen=True)
class ExampleView:
    item_id: str
    suite: str
    category: str
    prompt: str
    response: str
    score: str
    score_class: str


@dataclass(frozen=True)
class ConceptRow:
    id: int
    label: str
    support: int
    chi_model: str
    chi_ci: str
    lift: str
    baseline: str
    coverage: str
    examples: list[ExampleView]
    contexts: list[Markup]
    detection: str


@dataclass(frozen=True)
class CategoryRow:
    suite: str
    category: str
    severity: str
    n_items: int
    n_scored: int
    failures: int
    score: str
    score_width: float
    baseline: str
    baseline_width: float | None
    bar_class: str
    samples: str = ""  # "3 sampled: 1 flaky · pass rate 56%" ('' without samples)
    lengths: str = ""  # "response tokens 6 / 10 / 12.4 / 14 (min / median / p90 / max)"
    judge: str = ""  # "judge κ 0.40 [0.15, 0.64] on 10 items" or "judge uncalibrated"
    judge_class: str = ""


@dataclass(frozen=True)
class SampledItem:
    item_id: str
    category: str
    pass_rate: str
    score: str
    scores: str  # each sample's score, in order
    flaky: bool
    first: str  # first sample's response, clipped


@dataclass(frozen=True)
class SamplesView:
    per_item: int
    sampled: int  # items with two or more scored samples
    unscored: str  # "2 items have fewer than two scored samples …", or '' when none
    flaky: int
    items: list[SampledItem]
    more: int


@dataclass(frozen=True)
class CalibrationRow:
    rubric: Digest
    calibration: Digest
    categories: str
    n_items: int
    unparseable: int
    accuracy: str
    kappa: str
    kappa_ci: str
    confusion: list[list[int]]
    created: str


@dataclass(frozen=True)
class JudgeView:
    model: str
    model_digest: Digest
    prompt_digest: Digest
    calibrations: list[CalibrationRow]
    uncalibrated: list[Digest]


@dataclass(frozen=True)
class CostRow:
    stage: str
    side: str
    wall: str
    items: str
    computed: str
    items_per_s: str
    tokens_in: str
    tokens_out: str


@dataclass(frozen=True)
class CostView:
    wall: str
    tokens_in: str
    tokens_out: str
    rows: list[CostRow]


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str
    full: str | None = None
    hint: str | None = None
    mono: bool = False


@dataclass(frozen=True)
class AblationView:
    side: str
    n_concepts: int
    items_dropped: int
    before: str
    after: str
    shift: str


@dataclass(frozen=True)
class HeatCell:
    x: int
    y: int
    size: int
    fill: str
    text: str
    text_fill: str


@dataclass(frozen=True)
class HeatLabel:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Heatmap:
    width: int
    height: int
    cells: list[HeatCell]
    row_labels: list[HeatLabel]
    col_labels: list[HeatLabel]


@dataclass(frozen=True)
class StabilityView:
    repeats: int
    drop: str
    median_std_chi_bench: str
    median_std_chi_model: str
    families: list[KeyValue]
    ablation_rule: str
    ablation: list[AblationView]
    heatmap: Heatmap | None


@dataclass(frozen=True)
class FidelityView:
    fve: str
    training_fve: str
    baseline_fve: str
    mean_l0: str
    dead_share: str
    warning: str | None
    by_suite: list[KeyValue]


@dataclass(frozen=True)
class ManifestSection:
    title: str
    entries: list[KeyValue]


@dataclass(frozen=True)
class SignOffView:
    filled: bool
    approver: str
    role: str
    date: str
    decision: str
    notes: str


@dataclass(frozen=True)
class ReportView:
    """Everything the report template shows, already formatted."""

    title: str
    run_id: str
    schema_version: str
    tool_version: str
    renderer_version: str
    model_digest_short: str
    keywords: str
    created: str
    banner: Banner
    rules: list[RuleRow]
    waivers: list[WaiverView]
    families: list[FamilyCard]
    coverage: list[CoverageRow]
    coverage_settings: str
    worst: list[ConceptRow]
    best: list[ConceptRow]
    concept_note: str
    categories: list[CategoryRow]
    categories_detail: bool  # some category shows samples, judge or length lines
    headline_score: str
    headline_baseline: str
    stability: StabilityView | None
    fidelity: FidelityView
    manifest: list[ManifestSection]
    signoff: SignOffView
    policy_source: str | None = field(default=None)
    samples: SamplesView | None = field(default=None)
    judge: JudgeView | None = field(default=None)
    cost: CostView | None = field(default=None)


# --------------------------------------------------------------------------- builders


def _digest(value: str | None) -> Digest:
    return Digest(short=short_digest(value), full=value or "")


def _banner(run: GateRun) -> Banner:
    m = run.manifest
    counts = [Count(status=s, label=status_label(s), n=run.summary.counts.get(s, 0))
              for s in STATUS_ORDER if run.summary.counts.get(s, 0)]
    baseline = None
    if m.baseline is not None:
        baseline = ModelView("baseline", model_name(m.baseline), m.baseline.revision or DASH,
                             _digest(m.baseline.digest))
    elif m.baseline_results:
        baseline = ModelView("baseline", m.baseline_results, DASH, _digest(None))
    policy = DASH
    if m.policy is not None:
        policy = m.policy.name + (f" v{m.policy.version}" if m.policy.version else "")
    return Banner(
        verdict=run.summary.verdict.upper(),
        verdict_class=run.summary.verdict,
        fail_on=run.summary.fail_on,
        counts=counts,
        failed_rules=list(run.summary.failed_rules),
        model=ModelView("candidate", model_name(m.model), m.model.revision or DASH, _digest(m.model.digest)),
        baseline=baseline,
        policy=policy,
        date=utc_display(m.finished_at),
        mean_score=num(run.summary.mean_score),
        baseline_mean_score=num(run.summary.baseline_mean_score),
        n_items=run.summary.n_items,
        n_concepts=run.summary.n_concepts,
    )


def _waiver(w) -> WaiverView:
    return WaiverView(rule=w.rule, reason=w.reason, ticket=w.ticket or DASH,
                      approved_by=w.approved_by, expires=w.expires, expired=w.expired)


def _rule(v: Verdict, fail_on: str, policy_path: str | None,
          policy_source: str | None) -> RuleRow:
    loc = DASH
    if v.location is not None:
        path = v.location.path
        if policy_source and path == policy_path:
            path = policy_source
        loc = f"{path}:{v.location.line}"
    return RuleRow(
        rule_id=v.rule_id, stable_id=v.stable_id, title=v.title, check=v.check,
        concept=v.concept or DASH, severity=v.severity, mode=v.mode, status=v.status,
        status_label=status_label(v.status), icon=STATUS_ICONS.get(v.status, "•"),
        raw_status_label=status_label(v.raw_status) if v.raw_status != v.status else "",
        message=v.message, evidence=evidence_text(v.evidence), location=loc,
        waiver=_waiver(v.waiver) if v.waiver else None, blocking=v.fails(fail_on),
    )


def _ci_bar(low: float | None, high: float | None, value: float | None,
            baseline: float | None, width: int = 240) -> CIBar | None:
    if value is None:
        return None

    def x(v: float) -> float:
        return round(min(1.0, max(0.0, v)) * width, 1)

    has_interval = low is not None and high is not None
    return CIBar(width=width, low_x=x(low if has_interval else value),
                 high_x=x(high if has_interval else value), value_x=x(value),
                 baseline_x=None if baseline is None else x(baseline), has_interval=has_interval)


def _regression_verdict(run: GateRun, family: str) -> Verdict | None:
    for v in run.verdicts:
        if v.check == "regression" and v.concept == family:
            return v
    return None


def _reading(fam: FamilyResult, verdict: Verdict | None) -> tuple[str, str]:
    """A plain-words reading of the baseline delta, from the record's CI and verdict."""
    reg = fam.regression
    if reg is None:
        return "no baseline to compare against", "muted"
    if verdict is not None and verdict.raw_status == "insufficient_data":
        return "not judged: " + verdict.message, "muted"
    d, where = reg.delta, ""
    if verdict is not None and verdict.evidence.get("scope") == "intended" and fam.scoped \
            and fam.scoped.delta is not None:
        d, where = fam.scoped.delta, f" on {', '.join(fam.scoped.categories)} items"
    if d.value is None:
        return "not comparable: too little support on one side", "muted"
    tolerance = None
    if verdict is not None:
        tolerance = verdict.evidence.get("max_drop")
    drop = -d.value
    if verdict is not None and verdict.raw_status in ("fail", "error"):
        beyond = f" beyond tolerance {num(tolerance)}" if isinstance(tolerance, (int, float)) else ""
        waived = " (waived)" if verdict.status == "waived" else ""
        return f"drop of {num(drop)}{where}{beyond}{waived}", "fail"
    if d.high is not None and d.high < 0:
        within = f", within tolerance {num(tolerance)}" if isinstance(tolerance, (int, float)) else ""
        return f"drop of {num(drop)}{where}{within}", "warn"
    if d.low is not None and d.low > 0:
        return f"improvement of {num(d.value)}{where}", "pass"
    return f"no detectable regression{where}", "pass"


MAX_MEMBERS_SHOWN = 30
"""Member concepts listed per family card; results.json has them all."""


def _reason_text(reason: str) -> str:
    """A member's selection reason for readers: `exemplar ×inf` means silent on the reference set."""
    if reason == "exemplar ×inf":
        return "exemplar; silent on the neutral reference"
    return reason


MAX_ATTRIBUTION_ROWS = 8
"""Categories listed per family card, largest saliency mass first."""

REJECT_WORDS = {"dense": "dense", "rare": "rare", "unspecific": "unspecific",
                "imprecise": "imprecise", "beyond_top_k": "beyond top k"}


def _purity(fam: FamilyResult) -> tuple[str, str]:
    p = fam.purity
    if not p.intended:
        return ("no intended categories named in the policy: purity not checked", "muted")
    named = ", ".join(p.intended)
    drift = ""
    if p.measured_on == "baseline" and p.candidate_share is not None:
        drift = f"; {percent(p.candidate_share)} on the candidate"
    if not p.judged:
        return (f"not judged — {p.reason}{drift}", "warn")
    where = " on the baseline model" if p.measured_on == "baseline" else ""
    return (f"{percent(p.intended_share)} of its saliency lies on {named}{where} "
            f"(needs {percent(p.min_purity)}){drift}", "pass")


def _selection(fam: FamilyResult) -> str:
    sel = fam.selection
    if sel is None:
        return "members chosen by label or id (no exemplars)"
    rejected = ", ".join(f"{n:,} {REJECT_WORDS.get(k, k)}" for k, n in sel.rejected.items() if n)
    confused = sorted(sel.confusions.items(), key=lambda kv: -kv[1])[:2]
    if confused:
        rejected += " (unspecific mostly against " + ", ".join(f"{g} {n:,}" for g, n in confused) + ")"
    held = (f"; held-out AUROC {num(sel.heldout_auroc)} ({sel.n_heldout} held-out exemplars vs "
            f"{sel.n_negatives_heldout} negatives)" if sel.heldout_auroc is not None else
            "; no held-out exemplars, so selectivity is not measured")
    return (f"{len(fam.members)} of {sel.candidates:,} candidate features kept from "
            f"{sel.n_fit} fit exemplars; rejected {rejected or 'none'}{held}")


def _coverage_note(fam: FamilyResult) -> str:
    cov = fam.coverage
    if cov.exercise_strength is None:
        return "covered = fires on the suites at all"
    dense = f"; {len(cov.dense_ids)} dense members left out" if cov.dense_ids else ""
    return (f"a member counts as covered when ≥ {cov.exercise_min_items} items make it fire at "
            f"≥ {percent(cov.exercise_strength)} of its exemplar level (read on the "
            f"{cov.measured_on} model); "
            f"{cov.exercising_items or 0} items exercise the family{dense}")


def _attribution(fam: FamilyResult) -> list[AttributionRow]:
    intended = set(fam.purity.intended)
    rows = []
    for a in fam.attribution[:MAX_ATTRIBUTION_ROWS]:
        share = a.drop_share
        drives = share is not None
        rows.append(AttributionRow(
            category=a.category or a.suite, intended=a.category in intended,
            mass_share=percent(a.mass_share), mass_width=round(100 * (a.mass_share or 0.0), 1),
            active=f"{a.active_items}/{a.n_items}", chi_model=num(a.chi_model),
            baseline=num(a.baseline_chi_model), delta=signed(a.delta_contribution, 3),
            delta_share=percent(share) if drives else DASH,
            delta_class="fail" if drives and share >= 0.25 else "",
        ))
    return rows


def _drivers(fam: FamilyResult) -> tuple[list[DriverRow], str]:
    rows = [DriverRow(item_id=d.id, category=d.category or d.suite,
                      baseline_score=num(d.baseline_score), score=num(d.score),
                      delta=signed(d.delta_contribution, 3), mass_share=percent(d.mass_share))
            for d in fam.drivers]
    if fam.regression is not None and fam.regression.delta.value is not None:
        return rows, "Items that pull Δχ_model down most"
    return rows, "Items with the most family saliency"


def _scoped_text(fam: FamilyResult) -> str:
    """The figures the rules judge by default when the policy names intended categories."""
    sc = fam.scoped
    if sc is None:
        return ""
    text = (f"{', '.join(sc.categories)} items only ({sc.items}): χ_model "
            f"{num(sc.chi_model.value)} {interval(sc.chi_model.low, sc.chi_model.high)}")
    if sc.delta is not None:
        text += (f", baseline {num(sc.baseline_chi_model)}, Δ {signed(sc.delta.value)} "
                 f"{interval(sc.delta.low, sc.delta.high)}")
    return text + "; the figures above pool all items"


def _family(run: GateRun, fam: FamilyResult) -> FamilyCard:
    perf = fam.performance
    cov = fam.coverage
    reg = fam.regression
    reading, reading_class = _reading(fam, _regression_verdict(run, fam.name))
    members = [MemberView(id=m.id, label=m.label or DASH,
                          reasons=", ".join(map(_reason_text, m.reasons)),
                          selectivity=(f"held-out AUROC {num(m.heldout_auroc)}"
                                       if m.heldout_auroc is not None else ""),
                          contexts=contexts_html(m.contexts, limit=1, max_chars=90))
               for m in fam.members[:MAX_MEMBERS_SHOWN]]
    purity_text, purity_class = _purity(fam)
    drivers, drivers_title = _drivers(fam)
    fraction = cov.covered_fraction
    return FamilyCard(
        name=fam.name,
        title=fam.title or fam.name,
        n_members=len(fam.members),
        covered=f"{cov.covered} of {cov.members}",
        covered_fraction=percent(fraction),
        covered_width=round(100 * (fraction or 0.0), 1),
        mean_chi_bench=num(cov.mean_chi_bench),
        chi_model=num(perf.chi_model.value),
        chi_ci=interval(perf.chi_model.low, perf.chi_model.high),
        support=perf.support,
        lift=signed(perf.lift),
        adjusted=num(perf.adjusted),
        bar=_ci_bar(perf.chi_model.low, perf.chi_model.high, perf.chi_model.value,
                    reg.baseline_chi_model if reg else None),
        has_baseline=reg is not None,
        baseline=num(reg.baseline_chi_model) if reg else DASH,
        delta=signed(reg.delta.value) if reg else DASH,
        delta_ci=interval(reg.delta.low, reg.delta.high) if reg else DASH,
        delta_full=(f"{signed(reg.delta.value)} {interval(reg.delta.low, reg.delta.high)}"
                    if reg and reg.delta.value is not None else DASH),
        reading=reading,
        reading_class=reading_class,
        stability_std=num(perf.stability_std, 3),
        members=members,
        more_members=max(0, len(fam.members) - MAX_MEMBERS_SHOWN),
        purity=purity_text,
        purity_class=purity_class,
        selection=_selection(fam),
        coverage_note=_coverage_note(fam),
        attribution=_attribution(fam),
        attribution_more=max(0, len(fam.attribution) - MAX_ATTRIBUTION_ROWS),
        has_delta=reg is not None and reg.delta.value is not None,
        drivers=drivers,
        drivers_title=drivers_title,
        scoped=_scoped_text(fam),
    )


def _histogram(bins: list[tuple[float, float, int]], width: int = 300,
               height: int = 120) -> Histogram | None:
    if not bins:
        return None
    top, bottom, left, right = 14, 22, 6, 6
    plot_w = width - left - right
    plot_h = height - top - bottom
    max_count = max(count for _, _, count in bins) or 1
    step = plot_w / len(bins)
    bars = []
    for i, (low, high, count) in enumerate(bins):
        h = round(plot_h * count / max_count, 1)
        x = round(left + i * step + 1, 1)
        bars.append(HistBar(
            x=x, y=round(top + plot_h - h, 1), w=round(step - 2, 1), h=h, count=count,
            label=f"{low:g}…{high:g}", label_x=round(x + (step - 2) / 2, 1)))
    return Histogram(width=width, height=height, base_y=top + plot_h, bars=bars,
                     max_count=max_count)


def _clip(text: str | None, limit: int = EXAMPLE_CHARS) -> str:
    if text is None:
        return DASH
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _example(item: ItemRecord) -> ExampleView:
    score_class = "muted"
    if item.score is not None:
        score_class = "pass" if item.score >= 0.5 else "fail"
    return ExampleView(item_id=item.id, suite=item.suite, category=item.category,
                       prompt=_clip(item.input), response=_clip(item.response),
                       score=num(item.score), score_class=score_class)


N_CONTEXTS = 2
"""Top-activating contexts shown per ranked concept (results.json keeps up to three)."""


def _concept(c: ConceptRecord, items: dict[str, ItemRecord]) -> ConceptRow:
    examples = [_example(items[i]) for i in c.top_items if i in items][:N_EXAMPLES]
    return ConceptRow(
        id=c.id, label=c.label or f"feature {c.id} (unlabelled)", support=c.support,
        chi_model=num(c.chi_model.value), chi_ci=interval(c.chi_model.low, c.chi_model.high),
        lift=signed(c.lift), baseline=num(c.baseline_chi_model), coverage=c.coverage_all,
        examples=examples, contexts=contexts_html(c.contexts, limit=N_CONTEXTS, max_chars=100),
        detection=(f"label detection {num(c.label_detection)}"
                   if c.label_detection is not None else ""),
    )


def _concepts(run: GateRun) -> tuple[list[ConceptRow], list[ConceptRow]]:
    items: dict[str, ItemRecord] = {}
    for item in run.items:
        items.setdefault(item.id, item)
    supported = [c for c in run.concepts if c.chi_model.value is not None and not c.dense]
    ranked = sorted(supported, key=lambda c: (c.chi_model.value, c.id))
    n = min(N_CONCEPTS_SHOWN, len(ranked) // 2 if len(ranked) > 1 else len(ranked))
    worst = [_concept(c, items) for c in ranked[:n]]
    best = [_concept(c, items) for c in reversed(ranked[len(ranked) - n:])] if n else []
    return worst, best


def _judge_texts(run: GateRun) -> dict[str, tuple[str, str]]:
    """'suite/category' → (κ text, class) for every judged category."""
    judge = run.manifest.judge
    if judge is None:
        return {}
    out = {}
    for cat, digests in judge.judged_categories.items():
        parts, cls = [], "pass"
        for d in digests:
            cal = judge.calibration(d)
            if cal is None:
                parts.append("judge uncalibrated")
                cls = "warn"
            elif cal.kappa.value is None:
                parts.append(f"judge κ undefined on {cal.n_items} compared items")
                cls = "warn"
            else:
                parts.append(f"judge κ {num(cal.kappa.value)} {interval(cal.kappa.low, cal.kappa.high)}"
                             f" on {cal.n_items} items")
        out[cat] = ("; ".join(parts), cls)
    return out


def _lengths(c: Any) -> str:
    s = c.response_tokens
    if s is None:
        return ""
    return (f"response tokens: min {s.min} · median {s.median:g} · p90 {s.p90:g} · max {s.max} "
            f"({s.n} responses)")


def _categories(run: GateRun) -> list[CategoryRow]:
    judged = _judge_texts(run)

    def key(c):
        score = c.mean_score if c.mean_score is not None else math.inf
        return (SEVERITY_RANK.get(c.severity, 9), score, c.suite, c.category)

    rows = []
    for c in sorted(run.categories, key=key):
        bar_class = "muted"
        if c.mean_score is not None:
            bar_class = "pass" if c.mean_score >= 0.8 else "warn" if c.mean_score >= 0.5 else "fail"
        rows.append(CategoryRow(
            suite=c.suite, category=c.category, severity=c.severity, n_items=c.n_items,
            n_scored=c.n_scored, failures=c.failures, score=percent(c.mean_score),
            score_width=round(100 * (c.mean_score or 0.0), 1),
            baseline=percent(c.baseline_mean_score),
            baseline_width=(None if c.baseline_mean_score is None
                            else round(100 * c.baseline_mean_score, 1)),
            bar_class=bar_class,
            samples=(f"{c.sampled} sampled: {c.flaky} flaky · pass rate {percent(c.pass_rate)}"
                     if c.sampled else ""),
            lengths=_lengths(c),
            judge=judged.get(f"{c.suite}/{c.category}", ("", ""))[0],
            judge_class=judged.get(f"{c.suite}/{c.category}", ("", ""))[1],
        ))
    return rows


N_SAMPLED_SHOWN = 30


def _samples(run: GateRun) -> SamplesView | None:
    """Items with several samples: flaky ones first, then by pass rate (lowest first)."""
    sampled = [it for it in run.items if it.samples]
    if not sampled:
        return None
    order = sorted(sampled, key=lambda it: (not it.flaky, it.pass_rate if it.pass_rate is not None
                                            else 2.0, it.suite, it.id))
    shown = [SampledItem(item_id=it.id, category=it.category, pass_rate=percent(it.pass_rate),
                         score=num(it.score),
                         scores=" ".join(DASH if s.score is None else f"{s.score:g}"
                                         for s in it.samples),
                         flaky=it.flaky, first=_clip(it.samples[0].response, 120))
             for it in order[:N_SAMPLED_SHOWN]]
    return SamplesView(per_item=run.manifest.generation.samples_per_item,
                       sampled=sum(it.pass_rate is not None for it in sampled),
                       unscored=_unscored_note(sum(it.pass_rate is None for it in sampled)),
                       flaky=sum(it.flaky for it in sampled), items=shown,
                       more=max(0, len(order) - N_SAMPLED_SHOWN))


def _unscored_note(n: int) -> str:
    if not n:
        return ""
    return (f"{n} item{'s' if n != 1 else ''} {'have' if n != 1 else 'has'} fewer than two "
            "scored samples and no pass rate.")


def _judge(run: GateRun) -> JudgeView | None:
    judge = run.manifest.judge
    if judge is None:
        return None
    rows = []
    for cal in judge.calibrations:
        cats = sorted(k for k, ds in judge.judged_categories.items() if cal.rubric_digest in ds)
        rows.append(CalibrationRow(
            rubric=_digest(cal.rubric_digest), calibration=_digest(cal.digest),
            categories=", ".join(cats) or DASH, n_items=cal.n_items,
            unparseable=cal.n_unparseable, accuracy=percent(cal.accuracy),
            kappa=num(cal.kappa.value), kappa_ci=interval(cal.kappa.low, cal.kappa.high),
            confusion=cal.confusion, created=utc_display(cal.created_at)))
    calibrated = {c.rubric_digest for c in judge.calibrations}
    return JudgeView(model=judge.model, model_digest=_digest(judge.model_digest),
                     prompt_digest=_digest(judge.prompt_digest), calibrations=rows,
                     uncalibrated=[_digest(d) for d in judge.rubric_digests if d not in calibrated])


def _cost(run: GateRun) -> CostView | None:
    cost = run.manifest.cost
    if cost is None:
        return None

    def count(n: int | None) -> str:
        return DASH if not n else f"{n:,}"

    rows = [CostRow(stage=c.stage, side=c.side, wall=f"{c.wall_s:.2f}",
                    items=count(c.items), computed=f"{c.computed:,}" if c.items else DASH,
                    items_per_s=DASH if c.items_per_s is None else f"{c.items_per_s:,.1f}",
                    tokens_in=count(c.tokens_in), tokens_out=count(c.tokens_out))
            for c in cost.stages]
    return CostView(wall=f"{cost.wall_s:.1f} s", tokens_in=f"{cost.tokens_in:,}",
                    tokens_out=f"{cost.tokens_out:,}", rows=rows)


def _heat_fill(value: float | None) -> tuple[str, str, str]:
    if value is None:
        return "#eeeeee", DASH, "#333333"
    v = min(1.0, max(0.0, value))
    # White → deep blue (#0b3d91); text flips to white on dark cells.
    r = round(255 + (11 - 255) * v)
    g = round(255 + (61 - 255) * v)
    b = round(255 + (145 - 255) * v)
    return f"#{r:02x}{g:02x}{b:02x}", f"{value:.2f}", "#ffffff" if v > 0.55 else "#1f2328"


def _heatmap(run: GateRun) -> Heatmap | None:
    if run.overlap is None or not run.overlap.suites:
        return None
    names = run.overlap.suites
    size, left, top = 56, 110, 22
    cells = []
    for i, row in enumerate(run.overlap.jaccard):
        for j, value in enumerate(row):
            fill, text, text_fill = _heat_fill(value)
            cells.append(HeatCell(x=left + j * size, y=top + i * size, size=size, fill=fill,
                                  text=text, text_fill=text_fill))
    row_labels = [HeatLabel(x=left - 6, y=top + i * size + size / 2 + 4, text=_clip(n, 16))
                  for i, n in enumerate(names)]
    col_labels = [HeatLabel(x=left + j * size + size / 2, y=top - 7, text=_clip(n, 10))
                  for j, n in enumerate(names)]
    return Heatmap(width=left + size * len(names) + 4, height=top + size * len(names) + 4,
                   cells=cells, row_labels=row_labels, col_labels=col_labels)


def _stability(run: GateRun) -> StabilityView | None:
    s, a = run.stability, run.ablation
    if s is None and a is None and run.overlap is None:
        return None
    titles = {f.name: f.title or f.name for f in run.families}
    ablation = []
    if a is not None:
        for row in a.rows:
            shift = DASH
            if row.median_before is not None and row.median_after is not None:
                shift = signed(row.median_after - row.median_before)
            ablation.append(AblationView(side=row.side, n_concepts=row.n_concepts,
                                         items_dropped=row.items_dropped,
                                         before=num(row.median_before),
                                         after=num(row.median_after), shift=shift))
    return StabilityView(
        repeats=s.repeats if s else 0,
        drop=percent(s.drop) if s else DASH,
        median_std_chi_bench=num(s.median_std_chi_bench, 3) if s else DASH,
        median_std_chi_model=num(s.median_std_chi_model, 3) if s else DASH,
        families=[KeyValue(key=titles.get(k, k), value=num(v, 3))
                  for k, v in (s.families.items() if s else [])],
        ablation_rule=a.rule if a else "",
        ablation=ablation,
        heatmap=_heatmap(run),
    )


def _fidelity(run: GateRun) -> FidelityView:
    f = run.fidelity
    return FidelityView(
        fve=num(f.fve), training_fve=num(f.training_fve), baseline_fve=num(f.baseline_fve),
        mean_l0=num(f.mean_l0, 1), dead_share=percent(f.dead_share, 1), warning=f.warning,
        by_suite=[KeyValue(key=k, value=num(v)) for k, v in f.by_suite.items()],
    )


_DIGEST_KEYS = ("digest", "sha")


def _is_digest(key: str, value: Any) -> bool:
    if not isinstance(value, str) or len(value) < 20:
        return False
    return key.endswith(_DIGEST_KEYS) or key.endswith("digests") or all(
        ch in "0123456789abcdef" for ch in value)


def _scalar(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_scalar(v) for v in value) if value else DASH
    return str(value)


def _entries(data: dict[str, Any], hints: dict[str, str], prefix: str = "") -> list[KeyValue]:
    out = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if not value:
                out.append(KeyValue(key=name, value=DASH, hint=hints.get(key)))
            out.extend(_entries(value, {}, prefix=f"{name}."))
            continue
        if _is_digest(name, value):
            out.append(KeyValue(key=name, value=short_digest(value), full=value,
                                hint=hints.get(key), mono=True))
        else:
            out.append(KeyValue(key=name, value=_scalar(value), hint=hints.get(key)))
    return out


def _hints(model_cls) -> dict[str, str]:
    return {name: f.description or "" for name, f in model_cls.model_fields.items()}


def _manifest(m: Manifest) -> list[ManifestSection]:
    """Every manifest field, grouped: scalars under 'Run', each sub-object its own section."""
    from cg_gate.record import (
        AnalysisSettings,
        CIInfo,
        GenerationSettings,
        GitInfo,
        JudgeInfo,
        ModelInfo,
        PolicyInfo,
        SAEInfo,
        SuiteInfo,
        TokenPolicy,
    )

    data = m.model_dump(mode="json")
    hints = _hints(Manifest)
    titles = {"git": ("Source tree", GitInfo), "ci": ("CI", CIInfo),
              "model": ("Candidate model", ModelInfo), "baseline": ("Baseline model", ModelInfo),
              "sae": ("Sparse autoencoder", SAEInfo), "policy": ("Policy", PolicyInfo),
              "generation": ("Generation", GenerationSettings),
              "token_policy": ("Token policy", TokenPolicy),
              "analysis": ("Analysis settings", AnalysisSettings)}
    run_entries: list[KeyValue] = []
    sections: list[ManifestSection] = []
    for key, value in data.items():
        if key == "cost" or (key == "judge" and value is None):
            continue  # cost has its own table; a run without a judge has nothing to say here
        if key == "judge":
            value = {**value, "calibrations": [c["digest"] for c in value["calibrations"]],
                     "judged_categories": {k: [short_digest(d) for d in ds]
                                           for k, ds in value["judged_categories"].items()}}
            sections.append(ManifestSection("Rubric judge", _entries(value, _hints(JudgeInfo))))
            continue
        if key in titles:
            title, cls = titles[key]
            if value is None:
                sections.append(ManifestSection(title, [KeyValue(key=key, value="none",
                                                                 hint=hints.get(key))]))
            else:
                sections.append(ManifestSection(title, _entries(value, _hints(cls))))
        elif key == "suites":
            for suite in value:
                sections.append(ManifestSection(f"Suite: {suite['name']}",
                                                _entries(suite, _hints(SuiteInfo))))
        elif key in ("packages", "arguments", "stage_times_s"):
            title = {"packages": "Package versions", "arguments": "Arguments",
                     "stage_times_s": "Stage times (s)"}[key]
            entries = _entries(value, {}) or [KeyValue(key=key, value=DASH, hint=hints.get(key))]
            sections.append(ManifestSection(title, entries))
        else:
            run_entries.extend(_entries({key: value}, hints))
    return [ManifestSection("Run", run_entries), *sections]


def _signoff(run: GateRun) -> SignOffView:
    s = run.signoff
    filled = any(v for v in (s.approver, s.role, s.date, s.decision, s.notes))
    return SignOffView(filled=filled, approver=s.approver or "", role=s.role or "",
                       date=s.date or "", decision=s.decision or "", notes=s.notes or "")


def build_view(run: GateRun, *, policy_source: str | None = None,
               created: str | None = None) -> ReportView:
    """Turn a run record into the report's view data. Does not modify `run`."""
    m = run.manifest
    fail_on = run.summary.fail_on
    worst, best = _concepts(run)
    categories = _categories(run)
    a = m.analysis
    supported = sum(1 for c in run.concepts if c.chi_model.value is not None and not c.dense)
    dense = sum(1 for c in run.concepts if c.dense)
    dense_note = (f" {dense} dense concepts (firing on more than {percent(a.max_density)} of "
                  "ordinary reference text) are left out." if dense else "")
    return ReportView(
        title=f"cg-gate governance report — {model_name(m.model)}",
        run_id=m.run_id,
        schema_version=run.schema_version,
        tool_version=m.tool_version,
        renderer_version=__version__,
        model_digest_short=short_digest(m.model.digest),
        keywords=f"cg-gate, schema {run.schema_version}, run {m.run_id}",
        created=created or m.finished_at,
        banner=_banner(run),
        rules=[_rule(v, fail_on, m.policy.path if m.policy else None, policy_source)
               for v in run.verdicts],
        waivers=[_waiver(w) for w in run.waivers],
        families=[_family(run, f) for f in run.families],
        coverage=[CoverageRow(suite="all suites" if c.suite == "*" else c.suite,
                              missing=c.missing, under=c.under, normal=c.normal, over=c.over,
                              histogram=_histogram(c.histogram))
                  for c in run.coverage],
        coverage_settings=(f"missing: χ_bench ≤ {a.eps:g}; under-represented: "
                           f"χ_bench < {a.tau_under:g}; over-represented: χ_bench > {a.tau_over:g}"),
        worst=worst,
        best=best,
        concept_note=(f"{supported} of {len(run.concepts)} firing concepts have support ≥ "
                      f"{a.min_support} items and are not dense; only those are ranked."
                      + dense_note),
        categories=categories,
        categories_detail=any(c.samples or c.judge or c.lengths for c in categories),
        headline_score=percent(run.summary.mean_score),
        headline_baseline=percent(run.summary.baseline_mean_score),
        stability=_stability(run),
        fidelity=_fidelity(run),
        manifest=_manifest(m),
        signoff=_signoff(run),
        policy_source=policy_source,
        samples=_samples(run),
        judge=_judge(run),
        cost=_cost(run),
    )
