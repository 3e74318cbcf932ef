"""`cg-gate ci github publish`: everything the action does after `cg-gate run`.

Reads the run record and summary.md from the output directory and writes the action's
outputs, the job summary, one annotation per failing rule and (when asked) the
pull-request comment. It never decides the build: the action's last step does, from
`cg-gate run`'s own exit code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cg_gate.ci._commands import (
    Annotation,
    annotations,
    append_outputs,
    append_step_summary,
    fallback_summary,
    gate_outputs,
    link_reports,
)
from cg_gate.ci._comments import CommentResult, upsert_pr_comment
from cg_gate.errors import GateError
from cg_gate.record import GateRun, read_results
from cg_gate.record import Severity

CommentMode = Literal["auto", "always", "never"]

#: Events on which `comment: auto` posts a comment.
PR_EVENTS = ("pull_request", "pull_request_target")


@dataclass(frozen=True)
class GitHubContext:
    """The parts of the GitHub Actions environment cg-gate reads."""

    event_name: str | None = None
    event_path: str | None = None
    repository: str | None = None
    api_url: str = "https://api.github.com"
    server_url: str = "https://github.com"
    run_id: str | None = None
    job: str | None = None
    workspace: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> GitHubContext:
        """Read the context from `GITHUB_*` variables (absent ones stay None)."""
        return cls(
            event_name=env.get("GITHUB_EVENT_NAME") or None,
            event_path=env.get("GITHUB_EVENT_PATH") or None,
            repository=env.get("GITHUB_REPOSITORY") or None,
            api_url=env.get("GITHUB_API_URL") or "https://api.github.com",
            server_url=env.get("GITHUB_SERVER_URL") or "https://github.com",
            run_id=env.get("GITHUB_RUN_ID") or None,
            job=env.get("GITHUB_JOB") or None,
            workspace=env.get("GITHUB_WORKSPACE") or None,
        )

    @property
    def run_url(self) -> str | None:
        """Link to the workflow run, where the report artifacts are listed."""
        if not (self.repository and self.run_id):
            return None
        return f"{self.server_url.rstrip('/')}/{self.repository}/actions/runs/{self.run_id}"

    def pr_number(self) -> int | None:
        """The pull request the event is about, read from the event payload file."""
        return pr_number_from_event(self.event_path)


def pr_number_from_event(event_path: str | os.PathLike[str] | None) -> int | None:
    """PR number from a `$GITHUB_EVENT_PATH` payload; None when the event has none.

    Understands pull_request(_target) (`pull_request.number`), issue_comment on a pull
    request (`issue.number`) and workflow_run for same-repository PRs
    (`workflow_run.pull_requests[0].number`).
    """
    if not event_path:
        return None
    try:
        payload = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    candidates = []
    pull = payload.get("pull_request")
    if isinstance(pull, dict):
        candidates.append(pull.get("number"))
    issue = payload.get("issue")
    if isinstance(issue, dict) and issue.get("pull_request"):
        candidates.append(issue.get("number"))
    run = payload.get("workflow_run")
    pulls = run.get("pull_requests") if isinstance(run, dict) else None
    if isinstance(pulls, list) and pulls and isinstance(pulls[0], dict):
        candidates.append(pulls[0].get("number"))
    for number in candidates:
        if isinstance(number, int) and not isinstance(number, bool) and number > 0:
            return number
    return None


def should_comment(mode: CommentMode, event_name: str | None) -> bool:
    """`never`: no; `always`: yes (when there is a PR); `auto`: only on pull-request events."""
    if mode == "never":
        return False
    if mode == "always":
        return True
    return event_name in PR_EVENTS


@dataclass
class PublishResult:
    """What `publish` wrote and said."""

    outputs: dict[str, str]
    annotations: list[str]
    comment: CommentResult | None = None
    notes: list[str] = field(default_factory=list)
    summary_bytes: int = 0


def _load_run(results: Path, notes: list[str]) -> GateRun | None:
    if not results.is_file():
        return None
    try:
        return read_results(results)
    except GateError as exc:
        from cg_gate.render import markdown_cell

        # the message quotes the file's own text, and notes are Markdown in the job summary
        notes.append(f"results.json could not be read: {markdown_cell(exc.render(), 1000)}")
        return None


def publish(
    results: Path,
    summary: Path | None = None,
    *,
    env: Mapping[str, str] = os.environ,
    comment: CommentMode = "auto",
    fail_on: Severity | None = None,
    exit_code: int | None = None,
    artifact_url: str | None = None,
    comment_key: str | None = None,
    pr_number: int | None = None,
    token: str | None = None,
    bot_login: str | None = None,
) -> PublishResult:
    """Publish one gate run to GitHub: outputs, annotations, job summary, PR comment.

    A missing or unreadable results.json, or an `exit_code` of 2 or more (the run could not
    be judged), still produces outputs (`verdict=error`), an error annotation and a job
    summary saying so. Comment failures, and marker comments by someone other than the
    token's identity (`bot_login`, see `upsert_pr_comment`), become notes in the job
    summary; nothing here raises for them.
    """
    results = Path(results)
    ctx = GitHubContext.from_env(env)
    notes: list[str] = []
    # Exit 2 means the run could not be judged: a results.json still on disk is from an
    # earlier run (a reused workspace) and must not be reported as this one's.
    judged = exit_code in (None, 0, 1)
    run = _load_run(results, notes) if judged else None
    outputs = gate_outputs(run, results.parent, fail_on)

    if run is not None:
        lines = annotations(run, fail_on, ctx.workspace)
    else:
        code = f" (exit code {exit_code})" if exit_code is not None else ""
        lines = [Annotation("error", f"cg-gate could not judge the run{code}: no readable "
                                     f"results at {results}. The log above says why.",
                            title="cg-gate").render()]

    summary_md = None
    if summary is not None and Path(summary).is_file():
        summary_md = Path(summary).read_text(encoding="utf-8")
    if summary_md is None or run is None:
        summary_md = fallback_summary(run, fail_on, exit_code)
    link = artifact_url or ctx.run_url

    result: CommentResult | None = None
    number = pr_number or ctx.pr_number()
    if should_comment(comment, ctx.event_name):
        if number is None:
            if comment == "always":
                notes.append("No pull-request comment: this event is not about a pull request.")
        elif not ctx.repository:
            notes.append("No pull-request comment: GITHUB_REPOSITORY is not set.")
        else:
            body, linked = link_reports(summary_md, link)
            if link and not linked:
                body = body.rstrip("\n") + f"\n\n[Full report (HTML, PDF, results.json)]({link})\n"
            try:
                result = upsert_pr_comment(
                    body, repo=ctx.repository, pr_number=number,
                    token=token if token is not None else env.get("GITHUB_TOKEN", ""),
                    api_url=ctx.api_url, key=comment_key or ctx.job, bot_login=bot_login,
                )
            except GateError as exc:
                result = CommentResult("skipped", note=f"The pull-request comment failed: "
                                                       f"{exc.render()}")
            if result.note:
                notes.append(result.note)
            if result.ignored:
                notes.append(result.ignored_note() or "")

    append_outputs(outputs, env)
    written = append_step_summary(summary_md, env, link, notes)
    return PublishResult(outputs=outputs, annotations=lines, comment=result,
                         notes=notes, summary_bytes=written)

