"""summary.md: a compact verdict for `$GITHUB_STEP_SUMMARY` and pull-request comments.

Always under `MAX_BYTES` (GitHub caps step summaries and comments): long tables are cut
with "… and N more", failing rules first, so the part a reviewer needs survives.

Safe to post: every string that comes from the record goes through `cell` (text) or
`code` (a code span), so nothing a policy, suite, label or results file says can become
Markdown or HTML in the comment. Both put the value on one line and write control
characters out visibly (`\\x1b`); `cell` also escapes what Markdown would read (emphasis,
code, strikethrough, math, table pipes, `](` of links and images, HTML and autolinks as
entities) and breaks what GitHub would link or notify on its own: `@user` and `@org/team`
mentions (a word joiner after `@`: shown as `@name`, notifies nobody), bare `http://`, `//`
and `www.` links. Issue references such as `#123` are left as GitHub renders them. The
only links are the report files and, when the record's CI run URL has the shape of a
GitHub Actions run (`https://host/owner/repo/actions/runs/N`), that run.

Sections that only some runs have appear only then: repeated samples (flaky items and the
lowest pass rates, and a column in the category table), the rubric judge's agreement with
people per judged category, and the run's cost per side.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from cg_gate.record import FamilyResult, GateRun, JudgeCalibrationInfo, Verdict
from cg_gate.render._format import (
    DASH,
    SEVERITY_RANK,
    STATUS_ICONS,
    STATUS_ORDER,
    interval,
    model_name,
    num,
    percent,
    short_digest,
    signed,
    status_label,
    utc_display,
    visible_controls,
)

MAX_BYTES = 60_000
CELL_CHARS = 160

_VERDICT_ICON = {"pass": "✅", "fail": "❌", "error": "⚠️"}


@dataclass(frozen=True)
class Limits:
    """How many rows each table shows before it is cut."""

    rules: int = 50
    families: int = 25
    categories: int = 10
    flaky: int = 5
    judged: int = 10

    def halved(self) -> Limits:
        """Every table cut to half its rows (at least one)."""
        return Limits(*(max(1, getattr(self, f) // 2) for f in
                        ("rules", "families", "categories", "flaky", "judged")))


_WORD_JOINER = "\u2060"
_MD_ESCAPES = str.maketrans({
    "\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "~": "\\~", "$": "\\$",
    "|": "\\|", "&": "&amp;", "<": "&lt;", ">": "&gt;",
})
_WWW_RE = re.compile(r"(?i)\b(www)\.")
_RUN_URL_RE = re.compile(
    r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+"
    r"/actions/runs/[0-9]+(/attempts/[0-9]+)?$")


def _one_line(text: object, limit: int) -> str:
    value = DASH if text is None else str(text)
    value = " ".join(visible_controls(value).split())
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return value or DASH


def _defuse(value: str) -> str:
    """Break mentions and the bare links GitHub would make by itself."""
    value = value.replace("@", "@" + _WORD_JOINER).replace("//", "/" + _WORD_JOINER + "/")
    return _WWW_RE.sub(lambda m: m.group(1) + _WORD_JOINER + ".", value)


def cell(text: object, limit: int = CELL_CHARS) -> str:
    """Record text as inert Markdown on one line, clipped to `limit` characters (see the
    module docstring for what is escaped); safe in a table cell and in running text."""
    value = _one_line(text, limit).translate(_MD_ESCAPES).replace("](", "\\](")
    return _defuse(value)


def code(text: object, limit: int = CELL_CHARS, *, table: bool = False) -> str:
    """Record text as a code span on one line: fenced with more backticks than it holds,
    so it cannot close the span early; pipes escaped when it sits in a table cell."""
    value = _one_line(text, limit)
    if table:
        value = value.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _more(n: int, what: str) -> str:
    return f"\n… and {n:,} more {what} (see results.json)\n"


def _rule_order(v: Verdict) -> tuple[int, int]:
    return (0 if v.fails() else 1, STATUS_ORDER.index(v.status) if v.status in STATUS_ORDER else 9)


def _counts(run: GateRun) -> str:
    parts = [f"{run.summary.counts[s]} {status_label(s).lower()}"
             for s in STATUS_ORDER if run.summary.counts.get(s)]
    return " · ".join(parts) if parts else "no rules judged"


def _header(run: GateRun) -> list[str]:
    m = run.manifest
    verdict = run.summary.verdict
    lines = [f"## {_VERDICT_ICON.get(verdict, '')} cg-gate: {verdict.upper()} — {cell(model_name(m.model))}", ""]
    policy = "no policy"
    if m.policy is not None:
        policy = f"policy {code(m.policy.name)}" + (f" v{cell(m.policy.version)}" if m.policy.version else "")
    lines.append(f"**{_counts(run)}** · fails on `{run.summary.fail_on}` · {policy} · "
                 f"run {code(m.run_id)} · {cell(utc_display(m.finished_at))}")
    lines.append("")
    model = f"Candidate {code(model_name(m.model))} ({code(short_digest(m.model.digest))})"
    if m.baseline is not None:
        model += (f" vs baseline {code(model_name(m.baseline))} "
                  f"({code(short_digest(m.baseline.digest))})")
    model += f" · mean score {num(run.summary.mean_score)}"
    if run.summary.baseline_mean_score is not None:
        model += f" (baseline {num(run.summary.baseline_mean_score)})"
    model += f" · {run.summary.n_items} items · SAE {code(m.sae.source)}"
    lines.append(model)
    if run.fidelity.warning:
        lines += ["", f"> ⚠️ SAE fidelity: {cell(run.fidelity.warning)}"]
    return lines


def _rules(run: GateRun, limit: int) -> list[str]:
    if not run.verdicts:
        return ["", "_No policy was judged in this run._"]
    lines = ["", "### Rules", "", "| | Rule | Severity | Mode | Verdict | Message |",
             "|---|---|---|---|---|---|"]
    ordered = sorted(run.verdicts, key=_rule_order)
    for v in ordered[:limit]:
        verdict = f"**{status_label(v.status)}**" if v.fails() else status_label(v.status)
        lines.append(f"| {STATUS_ICONS.get(v.status, '')} | {code(v.rule_id, 60, table=True)} {cell(v.title, 80)} "
                     f"| {v.severity} | {v.mode} | {verdict} | {cell(v.message)} |")
    if len(ordered) > limit:
        lines.append(_more(len(ordered) - limit, "rules"))
    return lines


def _scoped_delta(f: FamilyResult) -> str:
    """Δχ_model over the intended categories' items: what regression rules judge by default."""
    sc = f.scoped
    if sc is None or sc.delta is None or sc.delta.value is None:
        return DASH
    return f"{signed(sc.delta.value)} {interval(sc.delta.low, sc.delta.high)}"


def _purity_cell(f: FamilyResult) -> str:
    p = f.purity
    if not p.intended:
        return DASH
    share = f"{percent(p.intended_share)} on {', '.join(p.intended)}"
    return share if p.judged else f"not judged: {share} < {percent(p.min_purity)}"


def _drivers_cell(f: FamilyResult) -> str:
    """What drives the family's Δ (or, without a baseline, where its saliency lies)."""
    parts = sorted((a for a in f.attribution if a.drop_share), key=lambda a: -(a.drop_share or 0))
    if parts and f.regression is not None and (f.regression.delta.value or 0.0) < 0:
        return "drop from " + ", ".join(f"{a.category or a.suite} {percent(a.drop_share)}"
                                        for a in parts[:3])
    parts = [a for a in f.attribution[:3] if a.mass_share]
    return ", ".join(f"{a.category or a.suite} {percent(a.mass_share)}" for a in parts) or DASH


def _families(run: GateRun, limit: int) -> list[str]:
    if not run.families:
        return []
    lines = ["", "### Concept families", "",
             "| Family | χ_model | CI | Δ vs baseline | Δ CI | Δ on its categories | Covered "
             "| Purity | Driven by |",
             "|---|---|---|---|---|---|---|---|---|"]
    for f in run.families[:limit]:
        p, reg = f.performance, f.regression
        lines.append(
            f"| {cell(f.title or f.name, 80)} | {num(p.chi_model.value)} "
            f"| {interval(p.chi_model.low, p.chi_model.high)} "
            f"| {signed(reg.delta.value) if reg else DASH} "
            f"| {interval(reg.delta.low, reg.delta.high) if reg else DASH} "
            f"| {_scoped_delta(f)} "
            f"| {f.coverage.covered}/{f.coverage.members} "
            f"| {cell(_purity_cell(f), 80)} | {cell(_drivers_cell(f), 100)} |")
    if len(run.families) > limit:
        lines.append(_more(len(run.families) - limit, "families"))
    return lines


def _categories(run: GateRun, limit: int) -> list[str]:
    if not run.categories:
        return []

    def key(c):
        score = c.mean_score if c.mean_score is not None else math.inf
        return (score, SEVERITY_RANK.get(c.severity, 9), c.suite, c.category)

    ranked = sorted(run.categories, key=key)
    sampled = any(c.sampled for c in run.categories)
    lines = ["", "### Weakest categories", "",
             "| Category | Suite | Severity | Mean score | Baseline | Failures |"
             + (" Flaky (pass rate) |" if sampled else ""),
             "|---|---|---|---|---|---|" + ("---|" if sampled else "")]
    for c in ranked[:limit]:
        flaky = ""
        if sampled:
            flaky = (f" {c.flaky}/{c.sampled} ({percent(c.pass_rate)}) |" if c.sampled
                     else f" {DASH} |")
        lines.append(f"| {cell(c.category, 60)} | {cell(c.suite, 60)} | {cell(c.severity, 20)} "
                     f"| {percent(c.mean_score)} | {percent(c.baseline_mean_score)} "
                     f"| {c.failures}/{c.n_scored} |{flaky}")
    if len(ranked) > limit:
        lines.append(_more(len(ranked) - limit, "categories"))
    return lines


def _samples(run: GateRun, limit: int) -> list[str]:
    """One line: samples per item, how many sampled items are flaky, the lowest pass rates."""
    sampled = [it for it in run.items if it.samples]
    if not sampled:
        return []
    gen = run.manifest.generation
    rated = [it for it in sampled if it.pass_rate is not None]
    flaky = sorted((it for it in rated if it.flaky),
                   key=lambda it: (it.pass_rate, it.suite, it.id))
    per = f"{gen.samples_per_item} samples per item"
    if gen.temperature > 0:
        per += f" (temperature {gen.temperature:g})"
    line = f"{per}: **{len(flaky)} of {len(rated)}** sampled items flaky"
    if flaky:
        # ids are unique within a suite: name the suite too when several suites were sampled
        several = len({it.suite for it in sampled}) > 1
        shown = ", ".join(f"{code(f'{it.suite}/{it.id}' if several else it.id, 60)} "
                          f"{percent(it.pass_rate)}" for it in flaky[:limit])
        more = f" and {len(flaky) - limit:,} more" if len(flaky) > limit else ""
        line += f"; lowest pass rates: {shown}{more}"
    unrated = len(sampled) - len(rated)
    if unrated:
        line += (f" · {unrated} item{'s' if unrated != 1 else ''} with fewer than two scored "
                 "samples")
    return ["", "### Samples", "", line]


def _kappa(cal: JudgeCalibrationInfo) -> str:
    if cal.kappa.value is None:
        return f"κ undefined on {cal.n_items} compared items"
    return f"κ {num(cal.kappa.value)} {interval(cal.kappa.low, cal.kappa.high)} on {cal.n_items} items"


def _judge(run: GateRun, limit: int) -> list[str]:
    """Per judged category: the judge's κ with its interval and the calibration's digest, or
    that no calibration was on file for its rubric."""
    judge = run.manifest.judge
    if judge is None:
        return []
    lines = ["", "### Judge", "",
             f"Rubric judge {code(judge.model, 80)}: agreement with people "
             "(Cohen's κ from `cg-gate judge calibrate`)"]
    rows = []
    for category, digests in sorted(judge.judged_categories.items()):
        for digest in digests:
            cal = judge.calibration(digest)
            if cal is None:
                rows.append(f"| {cell(category, 80)} | ⚠️ judge not calibrated | {DASH} |")
            else:
                rows.append(f"| {cell(category, 80)} | {_kappa(cal)} "
                            f"| {code(short_digest(cal.digest), table=True)} |")
    if not rows:
        if not judge.calibrations:
            lines[-1] += " · ⚠️ judge not calibrated"
        return lines
    lines += ["", "| Category | Agreement | Calibration |", "|---|---|---|", *rows[:limit]]
    if len(rows) > limit:
        lines.append(_more(len(rows) - limit, "judged categories"))
    return lines


_SIDE_NAMES = {"candidate": "Candidate", "baseline": "Baseline"}


def _cost_line(name: str, wall: float, tokens_in: int, tokens_out: int, items: int) -> str:
    rate = f" · {items / wall:,.2f} items/s" if wall > 0 and items else ""
    return f"- {name}: {wall:,.1f} s · {tokens_in:,} tokens in / {tokens_out:,} out{rate}"


def _cost(run: GateRun) -> list[str]:
    """One line per checkpoint (its stages summed; items/s over the run's items) and the
    run's total."""
    cost = run.manifest.cost
    if cost is None:
        return []
    n = run.summary.n_items
    lines = ["", "### Cost", ""]
    for side, name in _SIDE_NAMES.items():
        stages = [c for c in cost.stages if c.side == side]
        if stages:
            lines.append(_cost_line(name, sum(c.wall_s for c in stages),
                                    sum(c.tokens_in for c in stages),
                                    sum(c.tokens_out for c in stages), n))
    lines.append(_cost_line("**Total**", cost.wall_s, cost.tokens_in, cost.tokens_out, n))
    return lines


def _links(run: GateRun) -> list[str]:
    links = ["[Full report](report.html)", "[PDF](report.pdf)", "[results.json](results.json)"]
    url = run.manifest.ci.run_url
    if url and _RUN_URL_RE.match(url):
        links.append(f"[CI run]({url})")
    elif url:
        links.append(f"CI run: {cell(url, 300)}")
    return ["", " · ".join(links), ""]


def _compose(run: GateRun, limits: Limits) -> str:
    lines = (_header(run) + _rules(run, limits.rules) + _families(run, limits.families)
             + _categories(run, limits.categories) + _samples(run, limits.flaky)
             + _judge(run, limits.judged) + _cost(run) + _links(run))
    return "\n".join(lines)


def render_markdown_text(run: GateRun) -> str:
    """summary.md as text, guaranteed under `MAX_BYTES` bytes of UTF-8."""
    limits = Limits()
    text = _compose(run, limits)
    while len(text.encode("utf-8")) >= MAX_BYTES and limits.rules > 1:
        limits = limits.halved()
        text = _compose(run, limits)
    return text


def render_markdown(run: GateRun, *, policy_source: str | None = None) -> bytes:
    """summary.md bytes for `run`."""
    return render_markdown_text(run).encode("utf-8")
