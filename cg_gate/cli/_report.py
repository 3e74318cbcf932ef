"""`cg-gate report`: re-render reports from a results.json without loading any model."""

from __future__ import annotations

from pathlib import Path

import click

from cg_gate._terminal import clean, echo
from cg_gate.cli._command import Command, verbosity
from cg_gate.cli._options import (
    format_options,
    merge_signoff,
    old_date_alias,
    probe_writable,
    signoff_options,
)
from cg_gate.render import DEFAULT_FORMATS

REPORT_FORMATS = tuple(name for name in DEFAULT_FORMATS if name != "json")


def _read_results(path: Path):
    """read_results, with a file that is not text (a binary upload) refused by name."""
    from cg_gate.errors import ResultsError
    from cg_gate.record import read_results

    try:
        return read_results(path)
    except UnicodeDecodeError as exc:
        raise ResultsError(f"not UTF-8 JSON text (byte {exc.start})", path=path,
                           fix="pass the results.json that `cg-gate run` wrote") from None


@click.command("report", cls=Command)
@click.argument("results_json", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@format_options(always_json=False, default=REPORT_FORMATS)
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("cg-gate-report"), show_default=True, help="Output directory.")
@click.option("--policy-source", default=None,
              help="Policy file path relative to the repository root (SARIF/JUnit locations).")
@signoff_options
@old_date_alias
@click.pass_context
def report(ctx: click.Context, results_json: Path, formats: list[str], out_dir: Path,
           policy_source: str | None, **signoff: object) -> None:
    """Re-render reports from RESULTS_JSON (no model, no SAE is loaded).

    Sign-off details given here fill the report's sign-off block; the results file
    itself is not changed. Exits with the gate's code: 0 pass, 1 fail, 2 unusable input.
    """
    from cg_gate.render import render_all

    probe_writable(out_dir, "--out")
    run = _read_results(results_json)
    if any(v is not None for v in signoff.values()):
        run = run.model_copy(update={"signoff": merge_signoff(run.signoff, signoff)})
    written = render_all(run, formats, out_dir, policy_source=policy_source)
    if verbosity(ctx) >= 0:
        for name, path in written.items():
            echo(f"{name:<12} {clean(path)}")
    ctx.exit(run.exit_code())
