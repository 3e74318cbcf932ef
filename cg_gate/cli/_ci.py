"""`cg-gate ci github ...`: GitHub Actions glue. Imports no model libraries."""

from __future__ import annotations

import os
from pathlib import Path

import click

from cg_gate._terminal import clean, echo
from cg_gate.cli._command import Group, alias

_BOT_LOGIN_HELP = ("Login the token writes comments as; only a marker comment by it is "
                   "updated [default: GET /user, else github-actions[bot]].")


@click.group("ci", cls=Group)
def ci() -> None:
    """CI glue: GitHub outputs, job summary, annotations and PR comments."""


@ci.group("github")
def github() -> None:
    """GitHub Actions: publish a gate run, post the pull-request comment."""


@github.command("publish")
@click.option("--results", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="results.json written by `cg-gate run` (may be missing if the run failed).")
@click.option("--summary", type=click.Path(path_type=Path, dir_okay=False),
              help="summary.md for the job summary and PR comment "
                   "[default: summary.md next to --results].")
@click.option("--comment", type=click.Choice(["auto", "always", "never"]), default="auto",
              show_default=True,
              help="Pull-request comment: auto = only on pull_request events.")
@click.option("--fail-on", type=click.Choice(["error", "warn"]),
              help="Lowest severity that fails the gate [default: as recorded in the run].")
@click.option("--exit-code", type=int,
              help="Exit code of `cg-gate run`; 2 or more makes the verdict 'error'.")
@click.option("--artifact-url", help="Link to the uploaded report artifact.")
@click.option("--comment-key", help="Keeps matrix legs' comments apart [default: $GITHUB_JOB].")
@click.option("--pr-number", type=click.IntRange(min=1),
              help="Pull request to comment on [default: from $GITHUB_EVENT_PATH].")
@click.option("--bot-login", help=_BOT_LOGIN_HELP)
@click.pass_context
def publish(ctx: click.Context, results: Path, summary: Path | None, comment: str,
            fail_on: str | None, exit_code: int | None, artifact_url: str | None,
            comment_key: str | None, pr_number: int | None, bot_login: str | None) -> None:
    """Write outputs, job summary, annotations and the PR comment for one run.

    Reads the GitHub environment ($GITHUB_OUTPUT, $GITHUB_STEP_SUMMARY, $GITHUB_EVENT_PATH,
    $GITHUB_API_URL, $GITHUB_TOKEN). Prints one annotation per failing rule. Always exits
    0: the build is decided by `cg-gate run`'s exit code, not here.
    """
    from cg_gate.ci import publish as do_publish

    result = do_publish(
        results,
        summary if summary is not None else results.parent / "summary.md",
        env=os.environ,
        comment=comment,  # type: ignore[arg-type]
        fail_on=fail_on,  # type: ignore[arg-type]
        exit_code=exit_code,
        artifact_url=artifact_url or None,
        comment_key=comment_key or None,
        pr_number=pr_number,
        bot_login=bot_login or None,
    )
    for line in result.annotations:  # workflow commands on purpose, escaped by the publisher
        click.echo(line)
    outcome = result.comment.action if result.comment else "not posted"
    echo(f"cg-gate: verdict={clean(result.outputs['verdict'])}; PR comment {clean(outcome)}.")
    for note in result.notes:
        echo(f"note: {clean(note)}")
    ctx.exit(0)


@github.command("comment")
@click.option("--body", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              required=True, help="Markdown to post (usually summary.md).")
@click.option("--pr-number", type=click.IntRange(min=1), required=True,
              help="Pull request to comment on.")
@click.option("--repo", default=lambda: os.environ.get("GITHUB_REPOSITORY", ""),
              help="owner/name [default: $GITHUB_REPOSITORY].")
@click.option("--comment-key", "key", help="Comment key, as `publish --comment-key` used.")
@alias("--key", replaces="key", replacement_flag="--comment-key")
@click.option("--head-sha",
              help="Post only if the pull request's head is this commit (workflow_run guard).")
@click.option("--link", help="Link appended to the comment (e.g. the gate's run).")
@click.option("--bot-login", help=_BOT_LOGIN_HELP)
@click.pass_context
def comment(ctx: click.Context, body: Path, pr_number: int, repo: str, key: str | None,
            head_sha: str | None, link: str | None, bot_login: str | None) -> None:
    """Create or update the cg-gate comment on a pull request.

    For the fork-safe `workflow_run` pattern: the gate workflow uploads summary.md and the
    PR number; a second workflow with `pull-requests: write` posts them with this command.
    Uses $GITHUB_TOKEN and $GITHUB_API_URL. Exit 0 when posted or skipped for lack of
    permission, 2 when the API fails otherwise.
    """
    from cg_gate.ci import link_reports, upsert_pr_comment

    text, linked = link_reports(body.read_text(encoding="utf-8"), link)
    if link and not linked:
        text = text.rstrip("\n") + f"\n\n[Full report (HTML, PDF, results.json)]({link})\n"
    result = upsert_pr_comment(
        text, repo=repo, pr_number=pr_number, token=os.environ.get("GITHUB_TOKEN", ""),
        api_url=os.environ.get("GITHUB_API_URL") or "https://api.github.com",
        key=key or None, expected_head_sha=head_sha or None, bot_login=bot_login or None,
    )
    if result.ignored:
        click.echo(f"::warning title=cg-gate::{_escape(result.ignored_note() or '')}")
    if result.action == "skipped":
        click.echo(f"::warning title=cg-gate::{_escape(result.note or 'comment skipped')}")
    else:
        echo(f"cg-gate: PR comment {result.action}: {clean(result.url or result.comment_id)}")
    ctx.exit(0)


def _escape(text: str) -> str:
    from cg_gate.ci import escape_data

    return escape_data(text)
