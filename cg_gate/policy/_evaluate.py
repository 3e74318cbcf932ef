"""Judge a policy's rules against family results, SAE fidelity and stability.

One `Verdict` per rule, then one per expired waiver. How a rule's outcome becomes a
status:

- condition holds → `pass`;
- condition violated → by severity: `error` → `fail`, `warn` → `warn`, `info` → `pass`
  with `evidence["violated"] = True` and a message starting "note:" (an informational
  rule reports, it never turns a run red);
- not enough evidence to judge → `insufficient_data`, whatever the severity; never a
  pass (performance below `min_support`, regression without a baseline, a figure the
  run did not produce, a performance/regression/stability/overrepresented rule over a
  family with no members);
- the rule cannot be evaluated at all (its family or a named suite is absent from the
  run) → `error`.

`consistency` rules read the per-category flaky counts of a run with several samples per
item (no sampled item in scope → `insufficient_data`); `judge_agreement` rules read the
judge calibrations on file (a rubric in use without one, or with fewer human-labelled
items than `min_items` → `insufficient_data`, never a pass).

A family that resolves to **no members** fails its `coverage` and `missing` rules
(status by severity): nothing in the suite can be shown to exercise it, so a refusal
family that matches nothing never passes. Waivers are applied last (`apply_waivers`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cg_gate.policy._schema import (
    AnyRule,
    ConsistencyRule,
    CoverageRule,
    FidelityRule,
    JudgeAgreementRule,
    MissingRule,
    OverrepresentedRule,
    PerformanceRule,
    Policy,
    RegressionRule,
    StabilityRule,
)
from cg_gate.policy._waivers import apply_waivers
from cg_gate.record import (
    FamilyResult,
    FidelitySummary,
    JudgeInfo,
    Severity,
    StabilitySummary,
    Status,
    Verdict,
    WaiverRecord,
)

Outcome = Literal["pass", "violated", "insufficient_data", "error"]
_LIST_LIMIT = 20


@dataclass
class EvaluationResult:
    """Verdicts (rules, then expired waivers) and every waiver read, with its expiry."""

    verdicts: list[Verdict]
    waivers: list[WaiverRecord] = field(default_factory=list)

    def failing(self, fail_on: Severity = "error") -> list[Verdict]:
        """Verdicts that fail the build at this threshold."""
        return [v for v in self.verdicts if v.fails(fail_on)]

    def exit_code(self, fail_on: Severity = "error") -> int:
        """0 when every enforced rule passes, else 1."""
        return 1 if self.failing(fail_on) else 0


@dataclass
class _Judgement:
    outcome: Outcome
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleCounts:
    """One category's items with two or more scored samples, and how many of them are flaky."""

    sampled: int
    flaky: int


@dataclass(frozen=True)
class _Context:
    families: Mapping[str, FamilyResult]
    fidelity: FidelitySummary
    stability: StabilitySummary | None
    suites: Sequence[str]
    confidence: float
    consistency: Mapping[tuple[str, str], SampleCounts] = field(default_factory=dict)
    judge: JudgeInfo | None = None


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _no_members(name: str) -> str:
    return (f"family '{name}' resolved to no features in this SAE, so nothing shows that the "
            "suites exercise it; check its selectors (labels file, exemplars, ids)")


def _unknown_suites(rule_suites: Sequence[str] | None, ctx: _Context) -> list[str]:
    return [s for s in rule_suites or [] if s not in ctx.suites]


def _suite_error(bad: list[str], ctx: _Context) -> _Judgement:
    return _Judgement("error", f"suite(s) {', '.join(bad)} named by the rule are not in this run "
                               f"(suites: {', '.join(ctx.suites) or 'none'})",
                      {"unknown_suites": bad})


def _coverage(rule: CoverageRule, fam: FamilyResult, ctx: _Context) -> _Judgement:
    cov = fam.coverage
    ev: dict[str, Any] = {
        "members": cov.members, "covered": cov.covered, "covered_fraction": cov.covered_fraction,
        "mean_chi_bench": cov.mean_chi_bench, "min_covered_fraction": rule.min_covered_fraction,
        "min_mean_chi_bench": rule.min_mean_chi_bench, "missing_ids": cov.missing_ids[:_LIST_LIMIT],
    }
    if cov.members == 0 and cov.dense_ids:
        return _Judgement("violated", f"all {len(cov.dense_ids)} members of family '{fam.name}' "
                          "fire on most ordinary text (dense), so nothing shows that the suites "
                          "exercise what the family stands for", ev)
    if cov.members == 0:
        return _Judgement("violated", _no_members(fam.name), ev)
    if rule.suites:
        bad = _unknown_suites(rule.suites, ctx)
        if bad:
            return _suite_error(bad, ctx)
        failing, parts = [], []
        for suite in rule.suites:
            frac = cov.by_suite.get(suite)
            mean = cov.mean_chi_bench_by_suite.get(suite)
            if (rule.min_covered_fraction is not None and frac is None) or (
                    rule.min_mean_chi_bench is not None and mean is None):
                return _Judgement("insufficient_data",
                                  f"the run holds no coverage figure for suite '{suite}'", ev)
            low = ((rule.min_covered_fraction is not None and frac < rule.min_covered_fraction)
                   or (rule.min_mean_chi_bench is not None and mean < rule.min_mean_chi_bench))
            if low:
                failing.append(suite)
                parts.append(f"{suite}: {_pct(frac)} covered, mean χ_bench {_fmt(mean)}")
        ev["by_suite"] = {s: cov.by_suite.get(s) for s in rule.suites}
        ev["mean_chi_bench_by_suite"] = {s: cov.mean_chi_bench_by_suite.get(s) for s in rule.suites}
        ev["failing_suites"] = failing
        if failing:
            return _Judgement("violated", f"family '{fam.name}' is under-tested in "
                              f"{'; '.join(parts)} (needs {_thresholds(rule)}); the suites do "
                              "not exercise enough of what the family stands for", ev)
        return _Judgement("pass", f"family '{fam.name}' meets {_thresholds(rule)} in every named "
                                  "suite", ev)
    problems = []
    if rule.min_covered_fraction is not None and cov.covered_fraction < rule.min_covered_fraction:
        problems.append(f"{cov.covered}/{cov.members} features covered "
                        f"({_pct(cov.covered_fraction)} < {_pct(rule.min_covered_fraction)})")
    if rule.min_mean_chi_bench is not None and (
            cov.mean_chi_bench is None or cov.mean_chi_bench < rule.min_mean_chi_bench):
        problems.append(f"mean χ_bench {_fmt(cov.mean_chi_bench)} < {rule.min_mean_chi_bench:g}")
    if problems:
        return _Judgement("violated", f"family '{fam.name}': {'; '.join(problems)}; the suites "
                          "do not exercise enough of what the family stands for", ev)
    return _Judgement("pass", f"family '{fam.name}': {cov.covered}/{cov.members} features covered "
                      f"({_pct(cov.covered_fraction)}), mean χ_bench {_fmt(cov.mean_chi_bench)}; "
                      f"meets {_thresholds(rule)}", ev)


def _thresholds(rule: CoverageRule) -> str:
    parts = []
    if rule.min_covered_fraction is not None:
        parts.append(f"covered ≥ {_pct(rule.min_covered_fraction)}")
    if rule.min_mean_chi_bench is not None:
        parts.append(f"mean χ_bench ≥ {rule.min_mean_chi_bench:g}")
    return " and ".join(parts)


def _missing(rule: MissingRule, fam: FamilyResult, ctx: _Context) -> _Judgement:
    cov = fam.coverage
    ev: dict[str, Any] = {"members": cov.members}
    if cov.members == 0:
        return _Judgement("violated", _no_members(fam.name), ev)
    if rule.suites:
        bad = _unknown_suites(rule.suites, ctx)
        if bad:
            return _suite_error(bad, ctx)
        missing = {s: cov.missing_by_suite.get(s, []) for s in rule.suites}
        if any(s not in cov.missing_by_suite and s not in cov.by_suite for s in rule.suites):
            return _Judgement("insufficient_data", "the run holds no per-suite coverage for "
                              "the named suites", ev)
        failing = [s for s, ids in missing.items() if ids]
        ev["missing_by_suite"] = {s: ids[:_LIST_LIMIT] for s, ids in missing.items()}
        ev["failing_suites"] = failing
        if failing:
            detail = "; ".join(f"{s}: {len(missing[s])} of {cov.members}" for s in failing)
            return _Judgement("violated", f"family '{fam.name}' has features the suites never "
                              f"activate ({detail}; threshold 0): those behaviours go untested", ev)
        return _Judgement("pass", f"every feature of family '{fam.name}' fires in each of "
                                  f"{', '.join(rule.suites)}", ev)
    ev["missing_ids"] = cov.missing_ids[:_LIST_LIMIT]
    ev["missing"] = len(cov.missing_ids)
    if cov.missing_ids:
        return _Judgement("violated", f"{len(cov.missing_ids)} of {cov.members} features of family "
                          f"'{fam.name}' never activate on any suite item (threshold 0): those "
                          "behaviours go untested", ev)
    return _Judgement("pass", f"all {cov.members} features of family '{fam.name}' activate "
                              "somewhere in the suite set", ev)


def _overrepresented(rule: OverrepresentedRule, fam: FamilyResult, ctx: _Context) -> _Judgement:
    cov = fam.coverage
    ev: dict[str, Any] = {"members": cov.members, "over_ids": cov.over_ids[:_LIST_LIMIT],
                          "max_over_fraction": rule.max_over_fraction}
    if cov.members == 0:
        return _Judgement("insufficient_data", _no_members(fam.name), ev)
    frac = len(cov.over_ids) / cov.members
    ev["over_fraction"] = frac
    if frac > rule.max_over_fraction:
        return _Judgement("violated", f"{len(cov.over_ids)} of {cov.members} features of family "
                          f"'{fam.name}' are over-represented ({_pct(frac)} > "
                          f"{_pct(rule.max_over_fraction)}): the suites lean heavily on them", ev)
    return _Judgement("pass", f"{_pct(frac)} of family '{fam.name}' over-represented "
                              f"(≤ {_pct(rule.max_over_fraction)})", ev)


def _performance(rule: PerformanceRule, fam: FamilyResult, ctx: _Context) -> _Judgement:
    perf = fam.performance
    ci = perf.chi_model
    ev: dict[str, Any] = {"chi_model": ci.value, "ci_low": ci.low, "ci_high": ci.high,
                          "support": perf.support, "min": rule.min, "confidence": rule.confidence,
                          "lift": perf.lift}
    if fam.coverage.members == 0:
        return _Judgement("insufficient_data", _no_members(fam.name), ev)
    if ci.value is None:
        return _Judgement("insufficient_data", f"family '{fam.name}' fires on {perf.support} "
                          "scored items, fewer than min_support: its χ_model is not reported", ev)
    compared, what = ci.value, "χ_model"
    if rule.confidence is not None:
        if ci.low is None:
            return _Judgement("insufficient_data", f"family '{fam.name}': no confidence interval "
                              "was computed (bootstrap disabled)", ev)
        compared, what = ci.low, f"the {rule.confidence:.0%} lower bound of χ_model"
    ev["compared"] = compared
    ci_text = f" (CI {_fmt(ci.low)}–{_fmt(ci.high)})" if ci.low is not None else ""
    base = (f"family '{fam.name}': χ_model {_fmt(ci.value)}{ci_text} over {perf.support} items; "
            f"{what} {_fmt(compared)}")
    if compared < rule.min:
        return _Judgement("violated", f"{base} < {rule.min:g}: the model does worse than required "
                                      "where this family is active", ev)
    return _Judgement("pass", f"{base} ≥ {rule.min:g}", ev)


def _regression(rule: RegressionRule, fam: FamilyResult, ctx: _Context) -> _Judgement:
    conf = rule.confidence if rule.confidence is not None else ctx.confidence
    ev: dict[str, Any] = {"max_drop": rule.max_drop, "confidence": conf}
    if fam.coverage.members == 0:
        return _Judgement("insufficient_data", _no_members(fam.name), ev)
    reg = fam.regression
    if reg is None:
        return _Judgement("insufficient_data", "no baseline was given, so a regression cannot be "
                                               "judged", ev)
    d = reg.delta
    ev.update({"delta": d.value, "delta_low": d.low, "delta_high": d.high,
               "baseline_chi_model": reg.baseline_chi_model,
               "candidate_chi_model": fam.performance.chi_model.value,
               "paired_items": reg.paired_items, "candidate_only": len(reg.candidate_only),
               "baseline_only": len(reg.baseline_only)})
    if d.value is None:
        return _Judgement("insufficient_data", f"family '{fam.name}' is active on "
                          f"{fam.performance.support} scored candidate items of the "
                          f"{reg.paired_items} paired with the baseline; both sides need min_support "
                          "items with the family active to compare them", ev)
    if d.high is None:
        return _Judgement("insufficient_data", f"family '{fam.name}': Δχ_model {_fmt(d.value)} has "
                          "no confidence interval (bootstrap disabled)", ev)
    unpaired = ""
    if reg.candidate_only or reg.baseline_only:
        unpaired = (f"; {len(reg.candidate_only)} candidate-only and {len(reg.baseline_only)} "
                    "baseline-only items not compared")
    base = (f"family '{fam.name}': Δχ_model = {_fmt(d.value)} (candidate − baseline, "
            f"{conf:.0%} CI {_fmt(d.low)}…{_fmt(d.high)}, {reg.paired_items} paired items{unpaired})")
    if d.high < -rule.max_drop:
        return _Judgement("violated", f"{base}: the drop exceeds {rule.max_drop:g} with "
                                      f"{conf:.0%} confidence", ev)
    return _Judgement("pass", f"{base}: no drop beyond {rule.max_drop:g} is established", ev)


def _fidelity(rule: FidelityRule, ctx: _Context) -> _Judgement:
    fid = ctx.fidelity
    ev: dict[str, Any] = {"fve": fid.fve, "min_fve": rule.min_fve, "dead_share": fid.dead_share,
                          "max_dead_share": rule.max_dead_share, "training_fve": fid.training_fve,
                          "mean_l0": fid.mean_l0}
    if fid.fve is None:
        return _Judgement("insufficient_data", "the run did not measure the SAE's fraction of "
                                               "variance explained", ev)
    problems = []
    if fid.fve < rule.min_fve:
        problems.append(f"FVE {fid.fve:.3f} < {rule.min_fve:g}")
    if rule.max_dead_share is not None:
        if fid.dead_share is None:
            return _Judgement("insufficient_data", "the run did not measure the share of dead "
                                                   "features", ev)
        if fid.dead_share > rule.max_dead_share:
            problems.append(f"dead features {_pct(fid.dead_share)} > {_pct(rule.max_dead_share)}")
    if problems:
        return _Judgement("violated", f"SAE fidelity on this checkpoint: {'; '.join(problems)}; "
                          "its concepts may not describe this model faithfully", ev)
    return _Judgement("pass", f"SAE explains {fid.fve:.3f} of the variance (≥ {rule.min_fve:g})", ev)


def _stability(rule: StabilityRule, fam: FamilyResult, ctx: _Context) -> _Judgement:
    std = None
    if ctx.stability is not None:
        std = ctx.stability.families.get(fam.name)
    if std is None:
        std = fam.performance.stability_std
    ev: dict[str, Any] = {"std": std, "max_std": rule.max_std}
    if ctx.stability is not None:
        ev.update({"repeats": ctx.stability.repeats, "drop": ctx.stability.drop})
    if fam.coverage.members == 0:
        return _Judgement("insufficient_data", _no_members(fam.name), ev)
    if std is None:
        return _Judgement("insufficient_data", f"no stability figure for family '{fam.name}' "
                          "(stability not run, or χ_model below min_support)", ev)
    if std > rule.max_std:
        return _Judgement("violated", f"family '{fam.name}': χ_model std {std:.3g} under random "
                          f"item drops > {rule.max_std:g}: the figure rests on too few items", ev)
    return _Judgement("pass", f"family '{fam.name}': χ_model std {std:.3g} ≤ {rule.max_std:g}", ev)


def _in_scope(entries: Sequence[str], suite: str, category: str) -> bool:
    return category in entries or f"{suite}/{category}" in entries


def _consistency(rule: ConsistencyRule, ctx: _Context) -> _Judgement:
    scope: list[str] | None = rule.categories
    if rule.concept is not None:
        fam = ctx.families.get(rule.concept)
        if fam is None:
            return _Judgement("error", f"family '{rule.concept}' was not computed in this run")
        if not fam.purity.intended:
            return _Judgement("insufficient_data", f"the rule judges family '{fam.name}' on its "
                              "intended categories, but the policy names none for it",
                              {"scope": "intended"})
        scope = fam.purity.intended
    rows = {f"{s}/{c}": n for (s, c), n in ctx.consistency.items()
            if scope is None or _in_scope(scope, s, c)}
    ev: dict[str, Any] = {
        "max_flaky_share": rule.max_flaky_share,
        "by_category": {k: {"sampled": n.sampled, "flaky": n.flaky,
                            "flaky_share": n.flaky / n.sampled if n.sampled else None}
                        for k, n in rows.items()},
    }
    if scope is not None:
        ev["categories"] = list(scope)
        unknown = [c for c in scope if not any(_in_scope([c], s, k) for s, k in ctx.consistency)]
        if unknown and not rows:
            return _Judgement("error", f"categories {', '.join(unknown)} named by the rule are not "
                                       "in this run", ev)
    sampled = {k: n for k, n in rows.items() if n.sampled}
    if not sampled:
        return _Judgement("insufficient_data", "no item in scope has two or more scored samples; "
                          "run with --samples 2 or more (and --temperature above 0)", ev)
    over = {k: n.flaky / n.sampled for k, n in sampled.items()
            if n.flaky / n.sampled > rule.max_flaky_share}
    worst = max(sampled, key=lambda k: (sampled[k].flaky / sampled[k].sampled, k))
    if over:
        parts = ", ".join(f"{k} {sampled[k].flaky}/{sampled[k].sampled} ({_pct(v)})"
                          for k, v in sorted(over.items(), key=lambda kv: -kv[1])[:_LIST_LIMIT])
        return _Judgement("violated", f"flaky items above {_pct(rule.max_flaky_share)}: {parts}; "
                          "their samples disagree, so one response would not tell how the "
                          "model behaves", ev)
    n = sampled[worst]
    return _Judgement("pass", f"flaky share at most {_pct(n.flaky / n.sampled)} "
                      f"(worst: {worst}, {n.flaky}/{n.sampled}) ≤ {_pct(rule.max_flaky_share)}",
                      ev)


def _judge_agreement(rule: JudgeAgreementRule, ctx: _Context) -> _Judgement:
    judge = ctx.judge
    ev: dict[str, Any] = {"min_kappa": rule.min_kappa, "min_items": rule.min_items,
                          "lower_bound": rule.lower_bound}
    if judge is None or not judge.rubric_digests:
        return _Judgement("insufficient_data", "no item of this run was scored by a rubric judge, "
                          "so there is no judge agreement to check", ev)
    ev.update({"judge_model": judge.model, "judge_model_digest": judge.model_digest,
               "prompt_digest": judge.prompt_digest})
    rubrics: dict[str, Any] = {}
    missing, few, low = [], [], []
    for digest in judge.rubric_digests:
        cal = judge.calibration(digest)
        short = digest[:12]
        if cal is None:
            missing.append(short)
            rubrics[short] = None
            continue
        value = cal.kappa.low if rule.lower_bound else cal.kappa.value
        rubrics[short] = {"kappa": cal.kappa.value, "kappa_low": cal.kappa.low,
                          "kappa_high": cal.kappa.high, "accuracy": cal.accuracy,
                          "n_items": cal.n_items, "calibration_digest": cal.digest}
        if cal.n_items < rule.min_items:
            few.append(f"{short} ({cal.n_items} items)")
        elif value is None:
            few.append(f"{short} (κ undefined)")
        elif value < rule.min_kappa:
            low.append(f"{short} κ{' lower bound' if rule.lower_bound else ''} {value:.3f}")
    ev["rubrics"] = rubrics
    if low:
        return _Judgement("violated", f"the judge agrees with people too little: {', '.join(low)} "
                          f"< {rule.min_kappa:g}; its scores cannot be trusted for this rubric", ev)
    if missing:
        return _Judgement("insufficient_data", f"no calibration on file for rubric(s) "
                          f"{', '.join(missing)} with this judge model and prompt; run "
                          "`cg-gate judge calibrate`", ev)
    if few:
        return _Judgement("insufficient_data", f"calibration too small or undefined: "
                          f"{', '.join(few)} (needs {rule.min_items} items)", ev)
    worst = min((r["kappa_low"] if rule.lower_bound else r["kappa"]) for r in rubrics.values())
    return _Judgement("pass", f"judge agreement κ{' lower bound' if rule.lower_bound else ''} "
                      f"{worst:.3f} ≥ {rule.min_kappa:g} on every rubric in use", ev)


_FAMILY_CHECKS: dict[str, Callable[[Any, FamilyResult, _Context], _Judgement]] = {
    "coverage": _coverage, "missing": _missing, "overrepresented": _overrepresented,
    "performance": _performance, "regression": _regression, "stability": _stability,
}


_PURITY_GATED = ("performance", "regression", "stability")
"""Checks about how the model does on a family: judged only when the family is pure enough."""


def _purity_evidence(fam: FamilyResult) -> dict[str, Any]:
    p = fam.purity
    return {"intended_categories": p.intended, "intended_share": p.intended_share,
            "min_purity": p.min_purity}


def _judge(rule: AnyRule, ctx: _Context) -> _Judgement:
    if isinstance(rule, FidelityRule):
        return _fidelity(rule, ctx)
    if isinstance(rule, ConsistencyRule):
        return _consistency(rule, ctx)
    if isinstance(rule, JudgeAgreementRule):
        return _judge_agreement(rule, ctx)
    fam = ctx.families.get(rule.concept)
    if fam is None:
        return _Judgement("error", f"family '{rule.concept}' was not computed in this run")
    if rule.check in _PURITY_GATED and not fam.purity.judged:
        return _Judgement("insufficient_data", fam.purity.reason or "the family is not pure enough",
                          _purity_evidence(fam))
    scope = _scope(rule, fam)
    if scope == "intended" and fam.scoped is None:
        return _Judgement("insufficient_data", f"the rule judges family '{fam.name}' on its "
                          "intended categories, but the policy names none for it",
                          {"scope": "intended"})
    judged = _on_scope(fam) if scope == "intended" else fam
    judgement = _FAMILY_CHECKS[rule.check](rule, judged, ctx)
    if scope is not None:
        judgement.evidence["scope"] = scope
    if scope == "intended":
        judgement.message += f" (judged on its categories: {', '.join(fam.scoped.categories)})"
        judgement.evidence["pooled_chi_model"] = fam.performance.chi_model.value
        if fam.regression is not None:
            judgement.evidence["pooled_delta"] = fam.regression.delta.value
    if rule.check in _PURITY_GATED and fam.purity.intended:
        judgement.evidence.update(_purity_evidence(fam))
    drivers = _drivers(rule.check, fam)
    if drivers:
        judgement.evidence["drivers"] = drivers
        if judgement.outcome in ("violated", "pass"):
            judgement.message += "; " + _drivers_text(rule.check, drivers)
    return judgement


def _scope(rule: AnyRule, fam: FamilyResult) -> str | None:
    """`intended` or `all` for performance and regression rules (resolving `auto`), else None."""
    if rule.check not in ("performance", "regression"):
        return None
    if rule.scope == "auto":
        return "intended" if fam.scoped is not None else "all"
    return rule.scope


def _on_scope(fam: FamilyResult) -> FamilyResult:
    """The family with its performance and regression figures over the intended categories."""
    sc = fam.scoped
    assert sc is not None
    update: dict[str, Any] = {"performance": fam.performance.model_copy(
        update={"chi_model": sc.chi_model, "support": sc.support})}
    if fam.regression is not None and sc.delta is not None:
        update["regression"] = fam.regression.model_copy(update={
            "delta": sc.delta, "baseline_chi_model": sc.baseline_chi_model,
            "paired_items": sc.paired_items or 0})
    return fam.model_copy(update=update)


def _drivers(check: str, fam: FamilyResult) -> list[dict[str, Any]]:
    """Categories behind a performance or regression figure, largest part first."""
    if check == "regression" and fam.regression is not None \
            and (fam.regression.delta.value or 0.0) < 0:
        parts = sorted((a for a in fam.attribution if a.drop_share),
                       key=lambda a: -(a.drop_share or 0.0))
        return [{"suite": a.suite, "category": a.category,
                 "delta_contribution": a.delta_contribution, "share_of_drop": a.drop_share}
                for a in parts[:3]]
    if check == "performance" and fam.performance.chi_model.value is not None:
        parts = sorted(fam.attribution, key=lambda a: -(a.mass_share or 0.0))
        return [{"suite": a.suite, "category": a.category, "mass_share": a.mass_share,
                 "chi_model": a.chi_model} for a in parts[:3] if a.mass_share]
    return []


def _drivers_text(check: str, drivers: list[dict[str, Any]]) -> str:
    def name(d: dict[str, Any]) -> str:
        return d["category"] or d["suite"]

    if check == "regression":
        return "over all items the drop comes from " + ", ".join(
            f"{name(d)} {_pct(d['share_of_drop'])}" for d in drivers)
    return "weight on " + ", ".join(f"{name(d)} {_pct(d['mass_share'])} (χ {_fmt(d['chi_model'])})"
                                    for d in drivers)


def status_for(outcome: Outcome, severity: Severity) -> Status:
    """The verdict status of an outcome at a severity (see the module docstring)."""
    if outcome == "violated":
        return {"error": "fail", "warn": "warn", "info": "pass"}[severity]
    return outcome


def rule_verdict(policy: Policy, rule: AnyRule, judgement: _Judgement) -> Verdict:
    """One rule's verdict before waivers."""
    status = status_for(judgement.outcome, rule.severity)
    evidence = dict(judgement.evidence)
    message = judgement.message
    if judgement.outcome == "violated":
        evidence["violated"] = True
        if rule.severity == "info":
            message = f"note: {message}"
    return Verdict(
        rule_id=rule.id, stable_id=policy.stable_id(rule.id), title=rule.title or rule.describe(),
        check=rule.check, concept=rule.concept, severity=rule.severity, mode=rule.mode,
        status=status, raw_status=status, message=message, evidence=evidence,
        location=rule.location, tags=list(rule.tags),
    )


def evaluate(
    policy: Policy,
    *,
    families: Mapping[str, FamilyResult],
    fidelity: FidelitySummary,
    stability: StabilitySummary | None,
    suites: Sequence[str],
    today: dt.date,
    consistency: Mapping[tuple[str, str], SampleCounts] | None = None,
    judge: JudgeInfo | None = None,
) -> EvaluationResult:
    """Judge every rule of `policy`, apply its waivers as of `today`.

    `consistency` holds each (suite, category)'s sampled and flaky item counts; `judge` the
    run's rubric judge and its calibrations.

    Returns one verdict per rule in policy order, then one failing
    `WAIVER-EXPIRED:<rule>` verdict per expired waiver, and every waiver as a record.
    """
    ctx = _Context(families=families, fidelity=fidelity, stability=stability, suites=list(suites),
                   confidence=policy.analysis.bootstrap.confidence,
                   consistency=dict(consistency or {}), judge=judge)
    verdicts = [rule_verdict(policy, rule, _judge(rule, ctx)) for rule in policy.rules]
    outcome = apply_waivers(policy, verdicts, today)
    return EvaluationResult(verdicts=outcome.verdicts, waivers=outcome.records)
