"""`cg-gate merge`: join the records of a sharded run and judge it, as `run` would have."""

from __future__ import annotations

from pathlib import Path

import click

from cg_gate.cli._options import parse_formats


@click.command("merge")
@click.argument("shards", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=True))
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Output directory for results.json and the reports.")
@click.option("--formats", callback=parse_formats, default=None,
              help="Report formats [default: the ones the shards were run with].")
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

    given = ctx.get_parameter_source("formats")
    explicit = given is not None and given.name.lower() not in ("default", "default_map")
    outcome, fail_on = merge_shards(
        list(shards), out=out, formats=formats if explicit else None,
        arguments={"passed": {"shards": [str(s) for s in shards], "out": str(out)}},
        progress=not no_progress)
    print_outcome(outcome)
    ctx.exit(outcome.run.exit_code(fail_on))
