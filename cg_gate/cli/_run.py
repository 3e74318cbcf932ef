"""`cg-gate run`: the one command CI calls."""

from __future__ import annotations

import click

from cg_gate.cli._options import build_config, gate_options, model_options


@click.command("run")
@model_options
@gate_options
@click.pass_context
def run(ctx: click.Context, **params) -> None:
    """Run the gate: suites → responses → concepts → verdicts → reports.

    Exit 0 when every enforced rule passes, 1 when one fails, 2 when the run cannot be
    judged. Writes results.json and the reports to --out.
    """
    from cg_gate.cli._console import print_outcome
    from cg_gate.pipeline import run_gate

    config = build_config(params, with_gate=True)
    outcome = run_gate(config, arguments=_arguments(ctx, params))
    print_outcome(outcome)
    ctx.exit(outcome.run.exit_code(config.fail_on))


def _arguments(ctx: click.Context, params: dict) -> dict:
    """Arguments passed on the command line and the defaults applied, for the manifest."""
    passed: dict = {}
    defaults: dict = {}
    for name, value in params.items():
        if isinstance(value, (list, tuple)):
            value = [str(v) for v in value]
        elif value is not None and not isinstance(value, (bool, int, float)):
            value = str(value)
        source = ctx.get_parameter_source(name)
        is_default = source is None or source.name.lower() in ("default", "default_map")
        (defaults if is_default else passed)[name] = value
    return {"passed": passed, "defaults_applied": defaults}
