"""`cg-gate suite`: validate, show and import evaluation suites."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from cg_gate._terminal import clean, echo
from cg_gate.cli._command import Group, emit_json, error_json, json_option, verbosity
from cg_gate.errors import SuiteError


def _mapping(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    from cg_gate.suites import parse_mapping

    try:
        return parse_mapping(value)
    except SuiteError as exc:
        raise click.BadParameter(exc.render()) from None


_MAP_HELP = "Column mapping for CSV and datasets, e.g. input=question,target=answer,id=qid."


@click.group("suite", cls=Group)
def suite() -> None:
    """Inspect, validate and import evaluation suites.

    A suite is a path (.yaml, .json, .jsonl, .csv, .parquet, a datasets directory), optionally
    suffixed ::name to rename it, or hf:dataset[:config]@split[#revision].
    """


@suite.command("validate")
@click.argument("specs", nargs=-1, required=True, metavar="SUITE...")
@click.option("--map", "mapping", callback=_mapping, help=_MAP_HELP)
@click.option("--scorer", default=None, help="Default scorer for formats that cannot name one (CSV, datasets).")
@json_option
@click.pass_context
def validate(ctx: click.Context, specs: tuple[str, ...], mapping: dict[str, str] | None,
             scorer: str | None, as_json: bool) -> None:
    """Check suites load: unique ids, known scorers, categories. Exit 0 if all do, 2 if not."""
    from cg_gate.errors import GateError
    from cg_gate.suites import load_suites

    try:
        suites = load_suites(specs, mapping=mapping, scorer=scorer)
    except GateError as exc:
        if as_json:
            emit_json("suite-validate", {"valid": False, "suites": [], "errors": [error_json(exc)]})
        raise
    if as_json:
        emit_json("suite-validate", {"valid": True, "suites": [_suite_json(s) for s in suites],
                                     "errors": []})
        ctx.exit(0)
    for s in suites if verbosity(ctx) >= 0 else ():
        facts = _suite_json(s)
        cats = facts["categories"]
        echo(f"{clean(s.source)}: ok — suite {clean(repr(s.name))}"
             + (f" v{clean(s.version)}" if s.version else ""))
        echo(f"  items: {len(s.items)}")
        echo(f"  categories: {len(cats)} "
             f"({', '.join(f'{clean(c)}={n}' for c, n in cats.items())})")
        if facts["unscored"]:
            echo(f"  warning: {facts['unscored']} item(s) have no scorer and no imported score")
        if s.sampling is not None:
            echo(f"  sampling: {s.sampling.describe()} (--samples/--temperature and "
                 "the policy's sampling win)")
        echo(f"  digest: {facts['digest']}")
    ctx.exit(0)


def _suite_json(s) -> dict:
    """One suite's facts, as `suite validate --json` and `suites list --json` give them."""
    cats = Counter(item.category for item in s.items)
    return {"name": s.name, "version": s.version, "source": str(s.source),
            "items": len(s.items), "categories": dict(sorted(cats.items())),
            "unscored": sum(1 for item in s.items if not item.scorers and item.score is None),
            "digest": f"sha256:{s.digest()}"}


@suite.command("show")
@click.argument("spec", metavar="SUITE")
@click.option("--category", "-c", default=None, help="Show only this category.")
@click.option("--map", "mapping", callback=_mapping, help=_MAP_HELP)
@click.pass_context
def show(ctx: click.Context, spec: str, category: str | None, mapping: dict[str, str] | None) -> None:
    """Print a suite's items as a table (id, category, severity, scorers, prompt)."""
    from cg_gate.suites import load_suite

    s = load_suite(spec, mapping=mapping)
    items = [i for i in s.items if category is None or i.category == category]
    if category is not None and not items:
        known = ", ".join(sorted({i.category for i in s.items}))
        raise SuiteError(f"suite {s.name!r} has no category {category!r}", path=s.source,
                         fix=f"use one of: {known}")
    rows = [(clean(i.id), clean(i.category), i.severity,
             clean(",".join(sc.name for sc in i.scorers)) or
             ("imported" if i.score is not None else "-"), clean(" ".join(i.prompt.split())))
            for i in items]
    headers = ("ID", "CATEGORY", "SEVERITY", "SCORER", "PROMPT")
    widths = [max(len(h), *(len(r[k]) for r in rows)) for k, h in enumerate(headers[:-1])]
    echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)) + "  " + headers[-1])
    for r in rows:
        prompt = r[-1] if len(r[-1]) <= 70 else r[-1][:69] + "…"
        echo("  ".join(v.ljust(w) for v, w in zip(r, widths)) + "  " + prompt)
    if s.categories and category in (None, *s.categories):
        echo("")
        for name, cat in s.categories.items():
            if category in (None, name):
                echo(f"{clean(name)} [{cat.severity}]: {clean(cat.purpose)}")
    echo(f"\n{len(items)} item(s); suite {clean(repr(s.name))}, digest sha256:{s.digest()[:16]}")
    ctx.exit(0)


@suite.command("import")
@click.option("--from", "source", required=True,
              type=click.Choice(["lm-eval", "inspect", "openai-evals", "helm", "garak", "promptfoo", "jsonl"]),
              help="Format of the results file (helm: the run directory).")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the suite (project JSONL).")
@click.option("--name", default=None, help="Suite name (default: the task name).")
@click.option("--task", default=None, help="lm-eval: task name (default: from the file name).")
@click.option("--model", default=None,
              help="lm-eval: model the samples came from; promptfoo: which provider's results to import.")
@click.option("--metric", default=None, help="lm-eval, helm: metric to import as the score.")
@click.option("--score-name", "score_name", default=None, help="inspect: which scorer's value to import.")
@click.pass_context
def import_(ctx: click.Context, source: str, file: Path, out: Path, name: str | None, task: str | None,
            model: str | None, metric: str | None, score_name: str | None) -> None:
    """Import per-item results (lm-eval --log_samples, inspect_ai logs, OpenAI Evals logs, a HELM
    run directory, a garak report.jsonl, promptfoo results.json, JSONL) as a suite."""
    from cg_gate.record import atomic_write_text
    from cg_gate.suites import import_results, suite_to_jsonl

    options: dict[str, str] = {}
    if source == "lm-eval":
        options = {k: v for k, v in (("task", task), ("model", model), ("metric", metric)) if v}
    elif source == "inspect" and score_name:
        options = {"scorer": score_name}
    elif source == "helm" and metric:
        options = {"metric": metric}
    elif source == "promptfoo" and model:
        options = {"model": model}
    if file.is_dir() and source != "helm":
        raise SuiteError(f"{source} imports read a file, and this is a directory", path=file,
                         fix="pass the results file (only --from helm reads a run directory)")
    s = import_results(file, source=source, name=name, **options)  # type: ignore[arg-type]
    atomic_write_text(out, suite_to_jsonl(s))
    scored = [i.score for i in s.items if i.score is not None]
    mean = f", mean score {sum(scored) / len(scored):.3f}" if scored else ""
    echo(f"imported {len(s.items)} item(s) from {clean(file)} ({source}) as suite "
         f"{clean(repr(s.name))}{mean}")
    echo(f"wrote {clean(out)} (digest sha256:{s.digest()[:16]})")
    ctx.exit(0)


import_.name = "import"


@suite.command("list")
@json_option
@click.pass_context
def list_suites(ctx: click.Context, as_json: bool) -> None:
    """List the suites that ship with cg-gate (usable as `--suite PATH`)."""
    from cg_gate.suites import load_suite, starter_suite_path

    path = starter_suite_path()
    loaded = load_suite(path)
    if as_json:
        emit_json("suites-list", {"suites": [{**_suite_json(loaded), "path": str(path)}]})
        ctx.exit(0)
    cats = sorted({it.category for it in loaded.items})
    echo(f"{clean(loaded.name):<10} {len(loaded.items):>4} items  {len(cats):>2} categories  "
         f"{clean(loaded.version or '-'):<8} {clean(path)}")
    ctx.exit(0)
