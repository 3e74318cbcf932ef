"""`cg-gate judge calibrate`: measure how often the rubric judge agrees with people."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import click

from cg_gate._terminal import clean, echo
from cg_gate.cli._command import Group, verbosity
from cg_gate.errors import ConfigError


@click.group("judge", cls=Group)
def judge() -> None:
    """Rubric judge: calibrate it against human labels before trusting its scores."""


def _rubric_text(value: str) -> tuple[str, str | None]:
    """The rubric from a file (when `value` names one) or as written; and the file, if any."""
    path = Path(value)
    try:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            if not text.strip():
                raise ConfigError("the rubric file is empty", path=path,
                                  fix="write the rubric the judge grades against")
            return text, str(path)
    except OSError:
        pass
    if not value.strip():
        raise ConfigError("the rubric is empty", fix="pass --rubric FILE or the rubric's text")
    return value, None


def _load(model: str, *, device: str, offline: bool) -> tuple[Callable[[list[str]], list[str]],
                                                              str | None]:
    """The judge as `prompts -> outputs` (greedy, as in a run) and its weights' digest."""
    from cg_gate.models import LoadSettings
    from cg_gate.pipeline import load_judge

    judge = load_judge(model, LoadSettings.resolve(device=device, offline=offline))
    return judge, judge.digest


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3f}"


@judge.command("calibrate")
@click.option("--judge", "model", required=True, metavar="ID|DIR|GGUF",
              help="The judge model, as `run --judge` takes it.")
@click.option("--rubric", required=True, metavar="FILE|TEXT",
              help="The rubric (a file, or its text), exactly as the suite's rubric_judge uses it.")
@click.option("--human", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help='JSONL of human-labelled responses: {"id", "input" or "messages", '
                   '"response", "human": pass|fail|0..1, "target"?}.')
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the calibration [default: in --judge's directory (or the "
                   "one holding its GGUF file), one file per rubric, where runs find it].")
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(1, 100000),
              help="Bootstrap resamples for κ's interval.")
@click.option("--confidence", default=0.95, show_default=True,
              type=click.FloatRange(0.5, 0.999), help="Two-sided confidence of κ's interval.")
@click.option("--seed", default=0, show_default=True, type=int, help="Bootstrap seed.")
@click.option("--device", default="cpu", show_default=True,
              type=click.Choice(["cpu", "cuda", "auto"]), help="Torch device of the judge.")
@click.option("--offline/--online", default=True, show_default=True,
              help="--offline makes any hub access an error.")
@click.pass_context
def calibrate(ctx: click.Context, model: str, rubric: str, human: Path, out: Path | None,
              bootstrap: int, confidence: float, seed: int, device: str, offline: bool) -> None:
    """Score human-labelled responses with the judge; report accuracy, Cohen's κ (with a
    bootstrap interval) and the confusion matrix; store the result with its digest.

    A run that uses the same judge model, judge prompt and rubric records the calibration's
    digest and figures; a `judge_agreement` rule can require a minimum κ.
    """
    from cg_gate.pipeline import iso, utc_now
    from cg_gate.record import atomic_write_text
    from cg_gate.scoring import (
        calibrate as measure,
        calibration_filename,
        calibration_record,
        read_human_labels,
    )

    text, _ = _rubric_text(rubric)
    labelled = read_human_labels(human)
    if out is None:
        from cg_gate.pipeline import calibration_dir

        home = calibration_dir(model)
        if home is None:
            raise ConfigError(f"the judge '{model}' is not a local directory or file, so the "
                              "calibration cannot be stored next to it",
                              fix="pass --out FILE, and give it to runs with --judge-calibration")
        out = home / calibration_filename(text)
    from cg_gate._progress import quiet_library_bars

    quiet_library_bars(verbosity(ctx) >= 0)
    fn, digest = _load(model, device=device, offline=offline)
    figures = measure(fn, text, labelled, bootstrap=bootstrap, confidence=confidence, seed=seed)
    record = calibration_record(
        figures, rubric=text, judge_model=model, judge_digest=digest, human_path=str(human),
        human_digest=hashlib.sha256(Path(human).read_bytes()).hexdigest(),
        created_at=iso(utc_now()))
    import json

    atomic_write_text(out, json.dumps(record, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    (ff, fp), (pf, pp) = record["confusion"]
    n = record["n_items"]
    if verbosity(ctx) < 0:  # --quiet: the figures in one line
        echo(f"κ {_fmt(record['kappa'])} [{_fmt(record['kappa_low'])}, "
             f"{_fmt(record['kappa_high'])}] on {n} items; {clean(out)}")
        return
    echo(f"judge {clean(model)} on {len(labelled)} human-labelled items "
         f"({n} compared, {record['n_unparseable']} judge outputs unreadable)")
    echo(f"accuracy {_fmt(record['accuracy'])}; Cohen's κ {_fmt(record['kappa'])} "
         f"[{_fmt(record['kappa_low'])}, {_fmt(record['kappa_high'])}] "
         f"({confidence:.0%} bootstrap, {bootstrap} resamples)")
    echo("                 judge fail  judge pass")
    echo(f"  person fail    {ff:>10}  {fp:>10}")
    echo(f"  person pass    {pf:>10}  {pp:>10}")
    if not n:
        echo("warning: no judge output held a readable score, so agreement cannot be "
             "measured; check that the judge model follows the JSON reply format")
    elif n < 20:
        echo(f"note: {n} compared items; calibrate on 20–30 or more before trusting the judge")
    echo(f"calibration: {clean(out)} (digest {record['digest'][:16]}…)")
