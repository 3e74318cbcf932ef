"""The terminal summary of a run: verdict table, headline figures, where the reports are."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cg_gate._terminal import clean, echo, secho
from cg_gate.record import GateRun

if TYPE_CHECKING:  # pragma: no cover
    from cg_gate.pipeline import Outcome

_COLOURS = {
    "pass": "green", "warn": "yellow", "fail": "red", "error": "red",
    "insufficient_data": "magenta", "waived": "cyan",
}


def _cell(text: str, width: int) -> str:
    text = clean(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def verdict_table(run: GateRun) -> list[str]:
    """Plain-text rows of the verdict table (no colour)."""
    rows = []
    for v in run.verdicts:
        rows.append((clean(v.rule_id), v.status.upper(), v.severity, v.mode, clean(v.concept or "-"),
                     v.message))
    if not rows:
        return ["(no policy rules were evaluated)"]
    widths = [max(len(r[i]) for r in rows + [("RULE", "VERDICT", "SEV", "MODE", "CONCEPT", "")])
              for i in range(5)]
    header = "  ".join(h.ljust(w) for h, w in zip(("RULE", "VERDICT", "SEV", "MODE", "CONCEPT"), widths))
    lines = [header + "  EVIDENCE"]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + _cell(r[5], 90))
    return lines


def print_outcome(outcome: Outcome, *, brief: bool = False) -> None:
    """Print the verdict table and the report locations to stderr/stdout.

    `brief` (--quiet): only the gate line and the failing rules."""
    run = outcome.run
    s = run.summary
    if not brief:
        lines = verdict_table(run)
        echo("")
        echo(lines[0])
        for line, v in zip(lines[1:], run.verdicts):
            secho(line, fg=_COLOURS.get(v.status))
    if s.mean_score is not None and not brief:
        base = f" (baseline {s.baseline_mean_score:.3f})" if s.baseline_mean_score is not None else ""
        fve = run.fidelity.fve
        fid = f"; SAE fidelity {fve:.3f} FVE" if fve is not None else ""
        echo(f"\nMean item score {s.mean_score:.3f}{base} over {s.n_items} items; "
             f"{s.n_concepts} concepts{fid}")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items()) if n)
    colour = "green" if s.verdict == "pass" else "red"
    secho(("" if brief else "\n") + f"Gate: {s.verdict.upper()}"
          + (f" ({counts})" if counts else ""), fg=colour, bold=True)
    if s.failed_rules:
        echo("Failing: " + ", ".join(clean(r) for r in s.failed_rules))
    if outcome.paths and not brief:
        echo("Reports:")
        for fmt, path in outcome.paths.items():
            echo(f"  {fmt:<11} {clean(path)}")
