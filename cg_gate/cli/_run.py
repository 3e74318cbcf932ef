"""`cg-gate run`: the one command CI calls."""

from __future__ import annotations

import click

from cg_gate.cli._command import Command, detail, verbosity
from cg_gate.cli._options import build_config, gate_options, model_options, shard_option


@click.command("run", cls=Command)
@model_options
@gate_options
@shard_option
@click.pass_context
def run(ctx: click.Context, **params) -> None:
    """Run the gate: suites → responses → concepts → verdicts → reports.

    Exit 0 when every enforced rule passes, 1 when one fails, 2 when the run cannot be
    judged. Writes results.json and the reports to --out.
    """
    from cg_gate.cli._console import print_outcome
    from cg_gate.pipeline import run_gate

    config = build_config(params, with_gate=True, quiet=verbosity(ctx) < 0)
    if config.shard is not None:
        _run_shard(ctx, config, params)
        return
    outcome = run_gate(config, arguments=_arguments(ctx, params))
    print_outcome(outcome, brief=verbosity(ctx) < 0)
    print_run_detail(ctx, outcome.run)
    ctx.exit(outcome.run.exit_code(config.fail_on))


def print_run_detail(ctx: click.Context, run) -> None:
    """Under --verbose: wall time per stage, tokens, cache use (stderr)."""
    m = run.manifest
    stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in m.stage_times_s.items())
    detail(ctx, f"stages: {stages or '-'}")
    detail(ctx, f"wall time {m.wall_time_s:.1f} s; {m.items_processed} items, "
                f"{m.tokens_processed:,} tokens through the models, "
                f"{m.cache_hits} items' activations from the cache")
    for suite in m.suites:
        cut = suite.provenance.get("limit")
        if cut:
            detail(ctx, f"suite {suite.name}: first {cut['per_category']} items per category, "
                        f"{cut['items_kept']} of {cut['items_in_suite']}")


def _run_shard(ctx: click.Context, config, params: dict) -> None:
    """One shard's model passes: its record is written, nothing is judged yet (exit 0)."""
    from cg_gate.pipeline import run_shard

    from cg_gate._terminal import clean, echo

    done = run_shard(config, arguments=_arguments(ctx, params))
    echo(f"shard {done.shard}: {done.n_items} of {done.n_total} items -> {clean(done.path)}")
    echo("judge the run with `cg-gate merge` once every shard's record is in")
    ctx.exit(0)


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
    if verbosity(ctx):
        passed["verbosity"] = "quiet" if verbosity(ctx) < 0 else "verbose"
    return {"passed": passed, "defaults_applied": defaults}
