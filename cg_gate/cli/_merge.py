"""`cg-gate merge`: join the records of a sharded run and judge it, as `run` would have."""

from __future__ import annotations

from pathlib import Path

import click

from cg_gate.cli._command import Command, verbosity
from cg_gate.cli._options import format_options


@click.command("merge", cls=Command)
@click.argument("shards", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=True))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Output directory for results.json and the reports.")
@format_options(default=(), extra_help=" Without it: the formats the shards were run with.")
@click.option("--no-progress", is_flag=True, help="No progress messages.")
@click.pass_context
def merge(ctx: click.Context, shards: tuple[Path, ...], out: Path, formats: list[str] | None,
          no_progress: bool) -> None:
    """Merge the shard records of `cg-gate run --shard I/N` into one judged run.

    SHARDS are the shard files (cg-gate-shard-I-of-N.npz) or directories holding them.
    Every summary — concept metrics, families, bootstrap, stability, verdicts — is computed
    from the combined item rows, so results.json has the digest of the unsharded run. The
    suites, policy and labels are read again from the paths the shards recorded (run it in
    the same checkout); no model is loaded. Exit codes as for `run`.
    """
    from cg_gate.cli._console import print_outcome
    from cg_gate.pipeline import merge_shards

    outcome, fail_on = merge_shards(
        list(shards), out=out, formats=formats or None,
        arguments={"passed": {"shards": [str(s) for s in shards], "out": str(out)}},
        progress=not no_progress and verbosity(ctx) >= 0)
    print_outcome(outcome, brief=verbosity(ctx) < 0)
    ctx.exit(outcome.run.exit_code(fail_on))
