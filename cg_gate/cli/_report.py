"""`cg-gate report`: re-render reports from a results.json without loading any model."""

from __future__ import annotations

from pathlib import Path

import click

from cg_gate.errors import ConfigError


def _signoff_from_file(path: Path):
    import yaml
    from pydantic import ValidationError

    from cg_gate.record import SignOff

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            f"sign-off file is not valid YAML ({getattr(exc, 'problem', exc)})",
            path=path, line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
            fix="write it as a mapping with approver, role, date, decision and notes",
        ) from None
    if isinstance(data, dict) and "signoff" in data and isinstance(data["signoff"], dict):
        data = data["signoff"]
    if not isinstance(data, dict):
        raise ConfigError("sign-off file must be a mapping", path=path,
                          fix="write approver:, role:, date:, decision:, notes: keys")
    data = {k: (str(v) if v is not None else None) for k, v in data.items()}
    try:
        return SignOff.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"sign-off field {key!r}: {first['msg']}", path=path,
                          fix="use only approver, role, date, decision and notes") from None


@click.command("report")
@click.argument("results_json", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--format", "formats", default="html,pdf,md,junit,sarif", show_default=True,
              help="Comma-separated formats: html, pdf, md, junit, sarif, json, model-index.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("cg-gate-report"), show_default=True, help="Output directory.")
@click.option("--policy-source", default=None,
              help="Policy file path relative to the repository root (SARIF/JUnit locations).")
@click.option("--signoff-file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              default=None, help="YAML with approver, role, date, decision, notes.")
@click.option("--approver", default=None, help="Sign-off: who approves.")
@click.option("--role", default=None, help="Sign-off: their role.")
@click.option("--decision", default=None,
              help="Sign-off: approve | reject | approve-with-conditions.")
@click.option("--date", "date_", default=None, help="Sign-off: date of the decision.")
@click.option("--notes", default=None, help="Sign-off: conditions or remarks.")
@click.pass_context
def report(ctx: click.Context, results_json: Path, formats: str, out_dir: Path,
           policy_source: str | None, signoff_file: Path | None, approver: str | None,
           role: str | None, decision: str | None, date_: str | None,
           notes: str | None) -> None:
    """Re-render reports from RESULTS_JSON (no model, no SAE is loaded).

    Sign-off details given here fill the report's sign-off block; the results file
    itself is not changed. Exits with the gate's code: 0 pass, 1 fail, 2 unusable input.
    """
    from cg_gate.record import read_results
    from cg_gate.render import parse_formats, render_all

    names = parse_formats(formats)
    run = read_results(results_json)
    signoff = run.signoff
    if signoff_file is not None:
        signoff = _signoff_from_file(signoff_file)
    given = {"approver": approver, "role": role, "decision": decision, "date": date_,
             "notes": notes}
    updates = {k: v for k, v in given.items() if v is not None}
    if signoff_file is not None or updates:
        signoff = signoff.model_copy(update=updates)
        run = run.model_copy(update={"signoff": signoff})
    written = render_all(run, names, out_dir, policy_source=policy_source)
    for name, path in written.items():
        click.echo(f"{name:<12} {path}")
    ctx.exit(run.exit_code())
