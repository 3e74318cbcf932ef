"""`cg-gate policy validate|explain`: check a policy and say what it asks, without a model.

Imports nothing heavy (no torch, transformers or sae_lens): the policy package needs
only pydantic, PyYAML and, for family metrics, numpy/scipy.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from cg_gate._terminal import clean, echo, secho
from cg_gate.cli._command import Group, emit_json, error_json, json_option, verbosity
from cg_gate.cli._flags import ALLOW_EXTERNAL_PATHS

_FILE = click.Path(path_type=Path, exists=True, dir_okay=False)


def _today(value: dt.datetime | None) -> dt.date:
    return value.date() if value is not None else dt.datetime.now(dt.timezone.utc).date()


@click.group(cls=Group)
def policy() -> None:
    """Validate and inspect gate policies."""


@policy.command()
@click.argument("file", type=_FILE)
@click.option("--waivers", "waivers_file", type=_FILE, default=None,
              help="Separate waiver file (kind: WaiverSet) to check against the policy.")
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Date waiver expiry is judged on (default: today, UTC).")
@click.option("--fail-on-expired", is_flag=True,
              help="Exit 1 when a waiver has expired (it is a violation at gate time).")
@json_option
@ALLOW_EXTERNAL_PATHS
@click.pass_context
def validate(ctx: click.Context, file: Path, waivers_file: Path | None,
             today: dt.datetime | None, fail_on_expired: bool, as_json: bool,
             allow_external_paths: bool) -> None:
    """Check FILE (and its waivers); list its families, rules and waivers.

    Exit 0 when it validates, 2 with file:line:column and the fix when it does not.
    """
    from cg_gate.errors import GateError
    from cg_gate.policy import is_expired, load_policy, summary_lines

    day = _today(today)
    try:
        pol = load_policy(file, waivers=waivers_file, today=day,
                          allow_external_paths=allow_external_paths)
    except GateError as exc:
        if as_json:
            emit_json("policy-validate", {"file": str(file), "valid": False,
                                          "today": day.isoformat(), "errors": [error_json(exc)]})
        raise
    expired = [w for w in pol.all_waivers() if is_expired(w, day)]
    quiet = verbosity(ctx) < 0
    if as_json:
        emit_json("policy-validate", _validate_json(file, pol, day))
    elif not quiet:
        for line in summary_lines(pol, day):
            echo(clean(line))
    for w in expired:
        loc = w.location
        where = f"{clean(loc.path)}:{loc.line}:{loc.column}: " if loc else ""
        secho(f"warning: {where}waiver for rule {clean(w.rule)} expired on "
              f"{w.expires.isoformat()}; at gate time it waives nothing and is reported as "
              f"a violation (WAIVER-EXPIRED:{clean(w.rule)})", err=True, fg="yellow")
    if not (as_json or quiet):
        secho(f"{clean(file)}: valid ({len(pol.concepts)} families, {len(pol.rules)} rules, "
              f"{len(pol.all_waivers())} waivers, {len(expired)} expired)", fg="green")
    ctx.exit(1 if expired and fail_on_expired else 0)


def _where(obj: object) -> dict[str, object]:
    loc = getattr(obj, "location", None)
    return {"path": str(loc.path) if loc else None, "line": loc.line if loc else None,
            "column": loc.column if loc else None}


def _validate_json(file: Path, pol, day: dt.date) -> dict:
    """The `policy validate --json` object (README, "JSON output")."""
    from cg_gate.policy import is_expired

    md = pol.metadata
    return {
        "file": str(file), "valid": True, "today": day.isoformat(),
        "policy": {"name": md.name, "version": md.version, "owner": md.owner,
                   "digest": f"sha256:{pol.digest}"},
        "families": [{"key": key, "title": spec.title, "categories": list(spec.categories or []),
                      "match": spec.match.model_dump(mode="json", exclude_none=True)}
                     for key, spec in pol.concepts.items()],
        "rules": [{"id": r.id, "stable_id": pol.stable_id(r.id), "check": r.check,
                   "family": r.concept, "severity": r.severity, "mode": r.mode,
                   "title": r.title, **_where(r)} for r in pol.rules],
        "waivers": [{"rule": w.rule, "expires": w.expires.isoformat(),
                     "expired": is_expired(w, day), "approved_by": w.approved_by,
                     "ticket": w.ticket, "reason": w.reason, **_where(w)}
                    for w in pol.all_waivers()],
        "errors": [],
    }


@policy.command()
@click.argument("file", type=_FILE)
@click.option("--waivers", "waivers_file", type=_FILE, default=None,
              help="Separate waiver file to include.")
@click.option("--results", type=_FILE, default=None,
              help="A results.json of a run with this policy: also say how each family "
                   "resolved (members, rejected candidates and why, held-out AUROC, purity).")
@json_option
@ALLOW_EXTERNAL_PATHS
@click.pass_context
def explain(ctx: click.Context, file: Path, waivers_file: Path | None,
            results: Path | None, as_json: bool, allow_external_paths: bool) -> None:
    """Say in words what every rule of FILE requires and what a violation does."""
    from cg_gate.policy import explain_lines, load_policy

    pol = load_policy(file, waivers=waivers_file, allow_external_paths=allow_external_paths)
    run = None
    if results is not None:
        from cg_gate.cli._report import _read_results

        run = _read_results(results)
    if as_json:
        emit_json("policy-explain", _explain_json(file, pol, run))
        ctx.exit(0)
    for line in explain_lines(pol, run):
        echo(clean(line))
    ctx.exit(0)


_FAILS_BUILD = {"error": "always", "warn": "with --fail-on warn", "info": "never"}


def _explain_json(file: Path, pol, run) -> dict:
    """The `policy explain --json` object (README, "JSON output")."""
    md = pol.metadata
    resolved = {f.name: f for f in run.families} if run is not None else {}
    return {
        "file": str(file),
        "policy": {"name": md.name, "version": md.version, "owner": md.owner,
                   "description": md.description, "digest": f"sha256:{pol.digest}"},
        "analysis": pol.analysis.model_dump(mode="json"),
        "families": [
            {"key": key, "title": spec.title, "categories": list(spec.categories or []),
             "min_purity": spec.min_purity,
             "match": spec.match.model_dump(mode="json", exclude_none=True),
             "in_run": (resolved[key].model_dump(mode="json",
                                                 include={"members", "selection", "purity"})
                        if key in resolved else None)}
            for key, spec in pol.concepts.items()],
        "rules": [{"id": r.id, "stable_id": pol.stable_id(r.id), "check": r.check,
                   "family": r.concept, "requires": r.describe(), "title": r.title,
                   "severity": r.severity, "mode": r.mode,
                   "fails_build": "never" if r.mode == "audit" else _FAILS_BUILD[r.severity],
                   "why": r.description, "tags": list(r.tags), **_where(r)}
                  for r in pol.rules],
        "waivers": [{"rule": w.rule, "family": w.scope.family, "suite": w.scope.suite,
                     "expires": w.expires.isoformat(), "approved_by": w.approved_by,
                     "ticket": w.ticket, "reason": w.reason, **_where(w)}
                    for w in pol.all_waivers()],
    }


@policy.command()
@click.option("--kind", type=click.Choice(["GatePolicy", "WaiverSet"]), default="GatePolicy",
              show_default=True, help="Which file kind to describe.")
@click.pass_context
def schema(ctx: click.Context, kind: str) -> None:
    """Print the JSON Schema of policy (or waiver) files, for editors and linters.

    Save it and point YAML tooling at it, e.g. a first line
    `# yaml-language-server: $schema=policy.schema.json`.
    """
    import json

    from cg_gate.policy import Policy, WaiverSet

    model = Policy if kind == "GatePolicy" else WaiverSet
    echo(json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False))
    ctx.exit(0)
