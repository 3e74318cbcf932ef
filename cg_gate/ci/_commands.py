"""GitHub Actions workflow commands and files: outputs, job summary, annotations.

Every function here is a pure function of the run record and an environment mapping, so
tests drive them with temp files standing in for `$GITHUB_OUTPUT` and
`$GITHUB_STEP_SUMMARY`. Escaping follows GitHub's own toolkit (`@actions/core`):
message data escapes `%`, `\\r` and `\\n`; properties additionally escape `:` and `,`.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cg_gate.record import GateRun
from cg_gate.record import Severity, Verdict

#: GitHub rejects a job summary (per step) larger than this many bytes.
STEP_SUMMARY_LIMIT = 1024 * 1024

#: The outputs the action declares, in the order they are written.
OUTPUT_NAMES = (
    "verdict",
    "failed-rules",
    "counts",
    "report-html",
    "report-pdf",
    "results-json",
    "results-digest",
    "run-id",
    "flaky",
)

#: Files in the output directory that summary.md links to relatively.
REPORT_FILES = ("report.html", "report.pdf", "results.json", "junit.xml", "results.sarif")

_TRUNCATED_NOTE = (
    "\n\n> **Note:** this summary was truncated to fit GitHub's 1 MiB job-summary limit."
)


def escape_data(value: str) -> str:
    """Escape the message part of a workflow command (`::error ...::<data>`)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a property value of a workflow command (`file=`, `title=`, ...)."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


# --------------------------------------------------------------------------- annotations


@dataclass(frozen=True)
class Annotation:
    """One workflow-command annotation: level, where, a title and the message."""

    level: str  # "error" | "warning" | "notice"
    message: str
    title: str | None = None
    file: str | None = None
    line: int | None = None
    col: int | None = None

    def render(self) -> str:
        """The `::level prop=value,...::message` line GitHub reads from stdout."""
        props = []
        if self.file is not None:
            props.append(f"file={escape_property(self.file)}")
        if self.line is not None:
            props.append(f"line={self.line}")
        if self.col is not None:
            props.append(f"col={self.col}")
        if self.title is not None:
            props.append(f"title={escape_property(self.title)}")
        head = f"::{self.level}"
        if props:
            head += " " + ",".join(props)
        return f"{head}::{escape_data(self.message)}"


def _repo_path(path: str, workspace: str | None) -> str:
    """A policy path as GitHub wants it: relative to the repository root, '/'-separated."""
    p = Path(path)
    if workspace and p.is_absolute():
        with contextlib.suppress(ValueError):  # outside the workspace: leave it absolute
            p = p.relative_to(Path(workspace))
    return p.as_posix()


def _annotation_for(verdict: Verdict, blocking: bool, workspace: str | None) -> Annotation:
    level = "error" if blocking else "warning"
    message = verdict.message
    if not blocking:
        why = "audit mode" if verdict.mode == "audit" else f"severity {verdict.severity}"
        message = f"{message} (does not fail the build: {why})"
    if verdict.waiver is not None and verdict.waiver.expired:
        message = f"{message} (waiver expired {verdict.waiver.expires})"
    loc = verdict.location
    return Annotation(
        level=level,
        message=message,
        title=f"{verdict.stable_id} [{verdict.check}] {verdict.title}",
        file=_repo_path(loc.path, workspace) if loc else None,
        line=loc.line if loc else None,
        col=loc.column if loc else None,
    )


def annotation_records(
    run: GateRun, fail_on: Severity | None = None, workspace: str | None = None
) -> list[Annotation]:
    """One annotation per rule that did not pass cleanly.

    Rules that fail the build at `fail_on` are errors; rules whose status is fail, error or
    warn but that do not block (audit mode, or a severity below `fail_on`) are warnings.
    Pass, waived and insufficient-data verdicts produce none.
    """
    out = []
    for verdict in run.verdicts:
        blocking = verdict.fails(fail_on or run.summary.fail_on)
        if blocking or verdict.status in ("fail", "error", "warn"):
            out.append(_annotation_for(verdict, blocking, workspace))
    return out


def annotations(
    run: GateRun, fail_on: Severity | None = None, workspace: str | None = None
) -> list[str]:
    """The `::error ...` / `::warning ...` lines for `run`, ready to print to stdout."""
    return [a.render() for a in annotation_records(run, fail_on, workspace)]


# --------------------------------------------------------------------------- outputs


def gate_verdict(run: GateRun | None, fail_on: Severity | None = None) -> str:
    """'pass', 'fail' or 'error' — the gate outcome at `fail_on` ('error' with no record)."""
    if run is None or run.summary.verdict == "error":
        return "error"
    return "fail" if run.failing(fail_on) else "pass"


def gate_outputs(
    run: GateRun | None, out_dir: Path, fail_on: Severity | None = None
) -> dict[str, str]:
    """The action's outputs as strings.

    Report paths are empty when the file is absent, and all are empty without a run (files
    left on disk then belong to another run). `flaky` counts the items whose repeated samples
    disagree (0 with one sample per item).
    """
    out_dir = Path(out_dir)

    def existing(name: str) -> str:
        path = out_dir / name
        return str(path) if run is not None and path.is_file() else ""

    return {
        "verdict": gate_verdict(run, fail_on),
        "failed-rules": ",".join(v.stable_id for v in run.failing(fail_on)) if run else "",
        "counts": _counts_json(run) if run else "",
        "report-html": existing("report.html"),
        "report-pdf": existing("report.pdf"),
        "results-json": existing("results.json"),
        "results-digest": run.digest if run else "",
        "run-id": run.manifest.run_id if run else "",
        "flaky": str(sum(it.flaky for it in run.items)) if run else "",
    }


def _counts_json(run: GateRun) -> str:
    """Verdicts by status as compact JSON (`fromJSON(...)` in a workflow), every status present."""
    counts = {status: 0 for status in ("pass", "warn", "fail", "insufficient_data", "waived", "error")}
    for v in run.verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
    return json.dumps(counts, separators=(",", ":"))


def format_output(name: str, value: str) -> str:
    """`name=value\\n`, or GitHub's heredoc form when the value spans lines."""
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
    while delimiter in value:  # pragma: no cover - a uuid collision
        delimiter = f"ghadelimiter_{uuid.uuid4().hex}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def append_outputs(values: Mapping[str, str], env: Mapping[str, str]) -> Path | None:
    """Append `values` to the file named by `$GITHUB_OUTPUT`; None when it is not set."""
    target = env.get("GITHUB_OUTPUT")
    if not target:
        return None
    text = "".join(format_output(name, value) for name, value in values.items())
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(text)
    return Path(target)


def write_outputs(
    run: GateRun | None,
    out_dir: Path,
    env: Mapping[str, str] = os.environ,
    fail_on: Severity | None = None,
) -> dict[str, str]:
    """Write the action's outputs (`OUTPUT_NAMES`) to `$GITHUB_OUTPUT`; return them.

    Outside GitHub Actions (no `$GITHUB_OUTPUT`) nothing is written.
    """
    values = gate_outputs(run, out_dir, fail_on)
    append_outputs(values, env)
    return values


# --------------------------------------------------------------------------- step summary


def _truncate_utf8(text: str, limit: int) -> str:
    """The longest prefix of `text`, cut at a line end when possible, within `limit` bytes."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[:limit].decode("utf-8", errors="ignore")
    newline = cut.rfind("\n")
    return cut[: newline + 1] if newline > 0 else cut


def link_reports(summary_md: str, url: str | None) -> tuple[str, bool]:
    """Point summary.md's relative report links (`](report.html)`) at `url`.

    On GitHub the summary is shown far from the output directory, so relative links would
    break; the reports live in the uploaded artifact. Returns the text and whether any
    link was rewritten.
    """
    if not url:
        return summary_md, False
    text = summary_md
    for name in REPORT_FILES:
        text = text.replace(f"]({name})", f"]({url})")
    return text, text != summary_md


def build_step_summary(
    summary_md: str,
    artifact_url: str | None = None,
    notes: Sequence[str] = (),
    limit: int = STEP_SUMMARY_LIMIT,
) -> str:
    """The markdown for the job summary: the report summary, notes and a link to the reports.

    Kept within `limit` bytes; when the summary itself is too long it is cut at a line end
    and a note says so, while the notes and the link are always kept. Relative report
    links in the summary are pointed at `artifact_url` instead of getting a second link.
    """
    summary_md, linked = link_reports(summary_md, artifact_url)
    tail = ""
    if notes:
        tail += "\n" + "".join(f"\n> **Note:** {note}" for note in notes) + "\n"
    if artifact_url and not linked:
        tail += f"\n[Full report (HTML, PDF, results.json)]({artifact_url})\n"
    body = summary_md if summary_md.endswith("\n") or not summary_md else summary_md + "\n"
    if len((body + tail).encode("utf-8")) <= limit:
        return body + tail
    room = limit - len((tail + _TRUNCATED_NOTE + "\n").encode("utf-8"))
    return _truncate_utf8(body, max(room, 0)) + _TRUNCATED_NOTE + "\n" + tail


def append_step_summary(
    summary_md: str,
    env: Mapping[str, str] = os.environ,
    artifact_url: str | None = None,
    notes: Sequence[str] = (),
) -> int:
    """Append the job summary to `$GITHUB_STEP_SUMMARY`; return the bytes written.

    What the step already wrote counts against GitHub's 1 MiB limit. Nothing is written
    (0 returned) outside GitHub Actions.
    """
    target = env.get("GITHUB_STEP_SUMMARY")
    if not target:
        return 0
    path = Path(target)
    used = path.stat().st_size if path.exists() else 0
    text = build_step_summary(summary_md, artifact_url, notes, STEP_SUMMARY_LIMIT - used)
    data = text.encode("utf-8")
    with open(path, "ab") as fh:
        fh.write(data)
    return len(data)


def fallback_summary(run: GateRun | None, fail_on: Severity | None = None,
                     exit_code: int | None = None) -> str:
    """The Markdown renderer's summary of the record, for when `summary.md` was not written;
    without a record, a short note that the gate could not be judged."""
    if run is None:
        code = f" (exit code {exit_code})" if exit_code is not None else ""
        return (
            "## cg-gate: ERROR\n\n"
            f"The gate could not be judged{code}: `cg-gate run` wrote no results. "
            "The step log names the file, line and fix.\n"
        )
    from cg_gate.render import RENDERERS

    return RENDERERS["md"].render(run).decode("utf-8")
