"""`cg-gate analyze`: Competency Gaps metrics without a policy."""

from __future__ import annotations

import click

from cg_gate._terminal import clean, echo
from cg_gate.cli._command import Command, verbosity
from cg_gate.cli._options import build_config, model_options


@click.command("analyze", cls=Command)
@model_options
@click.option("--no-validity", is_flag=True, help="Skip stability, ablation and overlap checks.")
@click.pass_context
def analyze(ctx: click.Context, **params) -> None:
    """Compute Competency Gaps metrics for a model, an SAE and suites.

    Writes OUT/results.json (coverage, χ_bench, χ_model with CIs per concept) and
    OUT/activations.npz. No policy is judged; the exit code is 0 unless the run fails.
    """
    from cg_gate.cli._run import _arguments, print_run_detail
    from cg_gate.pipeline import run_gate

    params["formats"] = ["json"]
    config = build_config(params, with_gate=False, quiet=verbosity(ctx) < 0)
    outcome = run_gate(config, arguments=_arguments(ctx, params))
    run = outcome.run
    if verbosity(ctx) >= 0:
        s = run.summary
        cov = next((c for c in run.coverage if c.suite == "*"), None)
        echo(f"{s.n_items} items, {s.n_concepts} concepts"
             + (f"; mean score {s.mean_score:.3f}" if s.mean_score is not None else ""))
        if cov is not None:
            echo(f"coverage over the suite set: {cov.missing} missing, {cov.under} under, "
                 f"{cov.normal} normal, {cov.over} over-represented")
        if run.fidelity.fve is not None:
            echo(f"SAE fidelity: FVE {run.fidelity.fve:.3f}, mean L0 "
                 f"{run.fidelity.mean_l0:.1f}")
    echo(f"results: {clean(outcome.paths['json'])}")
    print_run_detail(ctx, run)
    ctx.exit(0)
