"""`cg-gate demo`: the whole gate on the embedded default, offline."""

from __future__ import annotations

import time
from pathlib import Path

import click

from cg_gate._terminal import clean, echo
from cg_gate.cli._command import Command, verbosity
from cg_gate.cli._options import format_options, limit_option, probe_writable
from cg_gate.errors import ConfigError


def shipped_policy(name: str = "default") -> Path:
    """A policy shipped with cg-gate: `<repo>/policies` in a checkout, else `cg_gate/_policies`."""
    package = Path(__file__).resolve().parent.parent
    for base in (package.parent / "policies", package / "_policies"):
        path = base / f"{name}.yaml"
        if path.is_file():
            return path
    raise ConfigError(f"the shipped policy {name}.yaml is missing",
                      path=package.parent / "policies",
                      fix="reinstall cg-gate so its policies/ directory ships with it")


@click.command("demo", cls=Command)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False),
              default=Path("cg-gate-demo"), show_default=True, help="Output directory.")
@click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path(".cg-gate-cache"), show_default=True, help="Cache directory.")
@click.option("--policy", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Policy to judge [default: the shipped release policy].")
@click.option("--max-new-tokens", default=40, show_default=True, type=click.IntRange(1, 512),
              help="Generation length cap.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 512),
              help="Items per batch.")
@limit_option
@format_options(extra_help=" Leaving out pdf skips WeasyPrint's page layout, most of a warm "
                           "re-run's time.")
@click.option("--fail-on", default="error", show_default=True, type=click.Choice(["error", "warn"]),
              help="Lowest rule severity that fails the build.")
@click.option("--no-progress", is_flag=True,
              help="No progress bars or progress lines (--quiet implies it).")
@click.pass_context
def demo(ctx: click.Context, out: Path, cache_dir: Path, policy: Path | None, max_new_tokens: int,
         batch_size: int, limit: int | None, formats: list[str], fail_on: str, no_progress: bool) -> None:
    """Run the embedded demo gate offline.

    Candidate: SmolLM2-135M-Instruct with the shipped billing-support LoRA adapter.
    Baseline: SmolLM2-135M-Instruct. SAE: the shipped 8,192-feature SAE at layer 20.
    Suite: the starter suite. Policy: policies/default.yaml. The exit code is the gate's.
    """
    from cg_gate.default import default_adapter_dir, default_labels_path, default_sae_dir
    from cg_gate.cli._console import print_outcome
    from cg_gate.cli._run import print_run_detail
    from cg_gate.pipeline import RunConfig, SideConfig, run_gate
    from cg_gate.record import GenerationSettings
    from cg_gate.suites import starter_suite_path

    quiet = verbosity(ctx) < 0
    probe_writable(out, "--out")
    probe_writable(cache_dir, "--cache-dir")
    config = RunConfig(
        candidate=SideConfig(adapter=str(default_adapter_dir())),
        baseline=SideConfig(),
        sae=str(default_sae_dir()),
        labels=default_labels_path(),
        suites=[str(starter_suite_path())],
        limit=limit,
        policy=policy or shipped_policy("default"),
        out=out,
        formats=formats,
        fail_on=fail_on,
        cache_dir=cache_dir,
        batch_size=batch_size,
        generation=GenerationSettings(mode="generate", max_new_tokens=max_new_tokens,
                                      batch_size=batch_size),
        progress=not (no_progress or quiet),
    )
    t0 = time.perf_counter()
    outcome = run_gate(config, arguments={"command": "demo", "limit": limit,
                                          "max_new_tokens": max_new_tokens})
    print_outcome(outcome, brief=quiet)
    print_run_detail(ctx, outcome.run)
    reports = [str(outcome.paths[name]) for name in ("html", "pdf", "md") if name in outcome.paths]
    if not quiet:
        echo(f"\nDemo finished in {time.perf_counter() - t0:.1f} s. "
             f"Open {clean(' or '.join(reports or [str(outcome.paths['json'])]))}.")
    ctx.exit(outcome.run.exit_code(fail_on))

