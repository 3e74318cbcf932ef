"""A policy in words: what `cg-gate policy validate` and `policy explain` print."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cg_gate.policy._schema import ConceptSpec, Policy
from cg_gate.policy._waivers import is_expired

_CONSEQUENCE = {
    ("enforce", "error"): "fails the build when violated",
    ("enforce", "warn"): "warns when violated (fails only with --fail-on warn)",
    ("enforce", "info"): "notes a violation, never fails the build",
}


def _line(obj: object) -> str:
    loc = getattr(obj, "location", None)
    return f"line {loc.line}" if loc is not None else "-"


def family_selectors(spec: ConceptSpec) -> str:
    """A family's selectors in one line."""
    parts = []
    m = spec.match
    if m.exemplars is not None:
        ex = m.exemplars
        src = ex.path if ex.path is not None else f"{len(ex.texts or [])} inline texts"
        top = f", the {ex.top_k} most precise" if ex.top_k else ""
        against = "every other family's exemplars and the reference" if ex.contrast else \
            "the reference"
        parts.append(f"exemplars {src} (members fire on ≥{ex.min_fire} fit exemplars, "
                     f"≥{ex.min_ratio:g}× more than on {against}, precision ≥ "
                     f"{ex.min_precision:g}{top})")
    if m.labels:
        parts.append("labels " + ", ".join(f"/{p}/" for p in m.labels))
    if m.ids:
        parts.append("ids " + ", ".join(str(i) for i in m.ids))
    return "; ".join(parts)


def summary_lines(policy: Policy, today: dt.date) -> list[str]:
    """Families, rules and waivers, one line each (the `validate` listing)."""
    md = policy.metadata
    out = [f"policy {md.name}" + (f" {md.version}" if md.version else "")
           + (f" (owner: {md.owner})" if md.owner else ""),
           f"  digest sha256:{policy.digest}",
           f"families ({len(policy.concepts)}):"]
    for key, spec in policy.concepts.items():
        out.append(f"  {key:<24} {family_selectors(spec)}")
    out.append(f"rules ({len(policy.rules)}):")
    for rule in policy.rules:
        fam = rule.concept or "-"
        out.append(f"  {rule.id:<10} {rule.check:<15} {fam:<24} {rule.severity:<5} {rule.mode:<7}"
                   f" {_line(rule)}")
    waivers = policy.all_waivers()
    out.append(f"waivers ({len(waivers)}):")
    for w in waivers:
        state = "EXPIRED" if is_expired(w, today) else "valid"
        out.append(f"  {w.rule:<10} until {w.expires.isoformat()} {state:<7} approved by "
                   f"{w.approved_by}" + (f" ({w.ticket})" if w.ticket else "") + f" {_line(w)}")
    return out


def _selection_lines(fam: Any) -> list[str]:
    """How a family resolved in a run: members, rejections, held-out AUROC, purity."""
    out = []
    sel = fam.selection
    if sel is not None:
        rejected = ", ".join(f"{n:,} {k.replace('_', ' ')}" for k, n in sel.rejected.items() if n)
        out.append(f"    in this run: {len(fam.members)} members of {sel.candidates:,} candidates; "
                   f"rejected {rejected or 'none'}")
        if sel.confusions:
            worst = sorted(sel.confusions.items(), key=lambda kv: -kv[1])[:3]
            out.append("    unspecific candidates fired as much on: "
                       + ", ".join(f"{g} ({n:,})" for g, n in worst))
        if sel.heldout_auroc is not None:
            out.append(f"    held-out AUROC {sel.heldout_auroc:.2f} ({sel.n_heldout} held-out "
                       f"exemplars vs {sel.n_negatives_heldout} negatives)")
    p = fam.purity
    if p.intended:
        share = "n/a" if p.intended_share is None else f"{p.intended_share:.0%}"
        state = "judged" if p.judged else "NOT judged"
        out.append(f"    purity: {share} of its saliency on {', '.join(p.intended)} ({state})")
    return out


def explain_lines(policy: Policy, run: Any | None = None) -> list[str]:
    """Every rule in words, with what a violation does; with a run, how each family resolved."""
    md = policy.metadata
    a = policy.analysis
    out = [f"Policy '{md.name}'" + (f" version {md.version}" if md.version else "")
           + (f", owned by {md.owner}" if md.owner else "") + "."]
    if md.description:
        out.append(md.description.strip())
    out.append(
        f"Concept performance is reported only with at least {a.min_support} supporting items; "
        f"a concept is under-represented below χ_bench {a.tau_under:g} and over-represented "
        f"above {a.tau_over:g}; intervals are {a.bootstrap.confidence:.0%} bootstrap intervals "
        f"({a.bootstrap.samples} resamples, seed {a.bootstrap.seed}). A feature firing on more "
        f"than {a.max_density:.0%} of ordinary reference text is dense: no family member, not "
        f"ranked. A suite covers a family member when at least {a.exercise.min_items} items make "
        f"it fire at {a.exercise.strength:.0%} of its exemplar level or more.")
    out.append("")
    out.append("Families:")
    for key, spec in policy.concepts.items():
        title = f" — {spec.title}" if spec.title else ""
        out.append(f"  {key}{title}")
        out.append(f"    selected by {family_selectors(spec)}")
        if spec.categories:
            need = spec.min_purity if spec.min_purity is not None else a.min_purity
            out.append(f"    meant for items of {', '.join(spec.categories)}: performance and "
                       f"regression rules judge those items, and only when at least {need:.0%} "
                       "of the family's saliency lies on them")
        fam = next((f for f in run.families if f.name == key), None) if run is not None else None
        if fam is not None:
            out.extend(_selection_lines(fam))
    out.append("")
    out.append("Rules:")
    for rule in policy.rules:
        consequence = ("is reported only (audit mode), never fails the build" if rule.mode == "audit"
                       else _CONSEQUENCE[(rule.mode, rule.severity)])
        out.append(f"  {rule.id}: requires that {rule.describe()}.")
        if rule.title and rule.title != rule.describe():
            out.append(f"    Title: {rule.title}")
        out.append(f"    Severity {rule.severity}, mode {rule.mode}: {consequence}.")
        if rule.description:
            out.append(f"    Why: {rule.description.strip()}")
        if rule.tags:
            out.append(f"    Tags: {', '.join(rule.tags)}")
    waivers = policy.all_waivers()
    if waivers:
        out.append("")
        out.append("Waivers:")
        for w in waivers:
            scope = ", ".join(f"{k} {v}" for k, v in (("family", w.scope.family),
                                                       ("suite", w.scope.suite)) if v)
            out.append(f"  {w.rule}" + (f" ({scope})" if scope else "")
                       + f": waived until {w.expires.isoformat()} by {w.approved_by} — {w.reason}"
                       + (f" [{w.ticket}]" if w.ticket else ""))
    return out
