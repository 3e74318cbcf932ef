"""cg-gate's GitHub glue against fake GitHub environments.

Temp files stand in for $GITHUB_OUTPUT and $GITHUB_STEP_SUMMARY, a JSON file for the event
payload, and a fake REST API on 127.0.0.1 (a thread, bounded by the test) for the
pull-request comment. Expected strings are written out by hand from GitHub's rules.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from cg_gate.ci import (
    COMMENT_LIMIT,
    MARKER,
    OUTPUT_NAMES,
    STEP_SUMMARY_LIMIT,
    CommentError,
    annotations,
    append_step_summary,
    build_step_summary,
    comment_body,
    comment_marker,
    escape_data,
    escape_property,
    format_output,
    gate_outputs,
    pr_number_from_event,
    publish,
    should_comment,
    upsert_pr_comment,
    write_outputs,
)
from cg_gate.cli import cli
from cg_gate.render import RENDERERS
from cg_gate.record import (
    FidelitySummary,
    GateRun,
    GenerationSettings,
    Location,
    Manifest,
    ModelInfo,
    SAEInfo,
    SuiteInfo,
    Summary,
    Verdict,
    WaiverRecord,
)

POLICY = "policies/release.yaml"


def verdict(rule_id: str, status: str, *, severity: str = "error", mode: str = "enforce",
            line: int | None = 10, title: str = "Refusal is covered",
            message: str = "covered 0.50 < 0.80", check: str = "coverage",
            waiver: WaiverRecord | None = None, path: str = POLICY) -> Verdict:
    """One verdict of the policy 'release'."""
    return Verdict(
        rule_id=rule_id, stable_id=f"release/{rule_id}", title=title, check=check,
        concept="refusal", severity=severity, mode=mode, status=status, raw_status=status,
        message=message, location=None if line is None else Location(path=path, line=line,
                                                                      column=3),
        waiver=waiver,
    )


def make_gate_run(verdicts: list[Verdict] | None = None, *, fail_on: str = "error",
                  verdict_word: str | None = None, digest: str = "d" * 64,
                  run_id: str = "20261124T020000Z-abc123") -> GateRun:
    """A minimal but valid GateRun carrying the given verdicts."""
    verdicts = verdicts if verdicts is not None else []
    failing = [v.stable_id for v in verdicts if v.fails(fail_on)]  # type: ignore[arg-type]
    model = ModelInfo(id="org/support-ft", architecture="llama", num_layers=2, hidden_size=64,
                      dtype="float32", device="cpu", digest="m" * 64, tokenizer_digest="t" * 64)
    manifest = Manifest(
        tool_version="0.1.0", run_id=run_id, started_at="2026-11-24T02:00:00Z",
        finished_at="2026-11-24T02:01:00Z", model=model,
        sae=SAEInfo(source="sae-dir", hook="blocks.1.hook_resid_post", layer=1,
                    hook_kind="resid_post", d_in=64, d_sae=256, architecture="topk",
                    digest="s" * 64),
        suites=[SuiteInfo(name="safety", digest="x" * 64, n_items=4, source="safety.yaml")],
        generation=GenerationSettings(mode="none"),
    )
    summary = Summary(verdict=verdict_word or ("fail" if failing else "pass"), fail_on=fail_on,
                      failed_rules=failing, n_concepts=256, n_items=4)
    return GateRun(manifest=manifest, summary=summary, verdicts=verdicts,
                   fidelity=FidelitySummary(fve=0.9, mean_l0=12.0, dead_share=0.1),
                   digest=digest)


def parse_github_output(text: str) -> dict[str, str]:
    """Read a $GITHUB_OUTPUT file the way the runner does (name=value and heredocs)."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            value_lines = []
            while lines[i] != delimiter:
                value_lines.append(lines[i])
                i += 1
            i += 1
            out[name] = "\n".join(value_lines)
        else:
            name, value = line.split("=", 1)
            out[name] = value
    return out


# --------------------------------------------------------------------------- fake API


@dataclass
class FakeGitHub:
    """State of the fake REST API: comments by PR, the request log, behaviour switches."""

    repo: str = "octo/models"
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    page_size: int = 100
    readonly_tokens: set[str] = field(default_factory=lambda: {"readonly"})
    head_sha: str = "c0ffee" * 6 + "abcd"
    redirect_to: str | None = None
    foreign_next: str | None = None
    next_id: int = 1000
    base_url: str = ""
    # token → the user `GET /user` answers; any other token is refused there (403), as the
    # Actions GITHUB_TOKEN is, and writes comments as github-actions[bot]
    users: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_comment(self, pr: int, body: str, login: str = "someone") -> dict[str, Any]:
        with self.lock:
            self.next_id += 1
            kind = "Bot" if login.endswith("[bot]") else "User"
            comment = {"id": self.next_id, "body": body, "user": {"login": login, "type": kind},
                       "html_url": f"https://github.example/{self.repo}/pull/{pr}"
                                   f"#issuecomment-{self.next_id}"}
            self.comments.setdefault(pr, []).append(comment)
            return comment


def _handler(state: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    prefix = f"/repos/{state.repo}"
    list_re = re.compile(rf"^{re.escape(prefix)}/issues/(\d+)/comments$")
    edit_re = re.compile(rf"^{re.escape(prefix)}/issues/comments/(\d+)$")
    pull_re = re.compile(rf"^{re.escape(prefix)}/pulls/(\d+)$")

    class Handler(BaseHTTPRequestHandler):
        timeout = 5

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None
                  ) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _token(self) -> str:
            auth = self.headers.get("Authorization", "")
            return auth.removeprefix("Bearer ")

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length", "0"))
            return json.loads(self.rfile.read(length) or b"{}")

        def _log(self, method: str) -> SplitResult:
            url = urlsplit(self.path)
            with state.lock:
                state.requests.append((method, url.path, self._token() or None))
            return url

        def do_GET(self) -> None:  # noqa: N802
            url = self._log("GET")
            if state.redirect_to:
                self._send(302, headers={"Location": state.redirect_to})
                return
            if m := list_re.match(url.path):
                pr = int(m.group(1))
                page = int(parse_qs(url.query).get("page", ["1"])[0])
                items = state.comments.get(pr, [])
                chunk = items[(page - 1) * state.page_size: page * state.page_size]
                headers = {}
                if page * state.page_size < len(items):
                    nxt = state.foreign_next or (
                        f"{state.base_url}{url.path}?per_page=100&page={page + 1}")
                    headers["Link"] = f'<{nxt}>; rel="next"'
                self._send(200, chunk, headers)
            elif url.path == "/user":
                user = state.users.get(self._token())
                if user is None:
                    self._send(403, {"message": "Resource not accessible by integration"})
                else:
                    self._send(200, user)
            elif m := pull_re.match(url.path):
                self._send(200, {"number": int(m.group(1)), "head": {"sha": state.head_sha}})
            else:
                self._send(404, {"message": "Not Found"})

        def do_POST(self) -> None:  # noqa: N802
            url = self._log("POST")
            if self._token() in state.readonly_tokens:
                self._send(403, {"message": "Resource not accessible by integration"})
                return
            if m := list_re.match(url.path):
                author = state.users.get(self._token(), {}).get("login", "github-actions[bot]")
                comment = state.add_comment(int(m.group(1)), self._body()["body"], author)
                self._send(201, comment)
            else:
                self._send(404, {"message": "Not Found"})

        def do_PATCH(self) -> None:  # noqa: N802
            url = self._log("PATCH")
            if self._token() in state.readonly_tokens:
                self._send(403, {"message": "Resource not accessible by integration"})
                return
            if m := edit_re.match(url.path):
                cid = int(m.group(1))
                for comments in state.comments.values():
                    for comment in comments:
                        if comment["id"] == cid:
                            comment["body"] = self._body()["body"]
                            self._send(200, comment)
                            return
            self._send(404, {"message": "Not Found"})

    return Handler


class FakeGitHubServer:
    """Context manager: a FakeGitHub served on 127.0.0.1 until the block ends."""

    def __init__(self, state: FakeGitHub | None = None) -> None:
        self.state = state or FakeGitHub()

    def __enter__(self) -> FakeGitHub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self._server.timeout = 5
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.state.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self.state

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# =========================================================================== tests


@pytest.fixture()
def gh():
    with FakeGitHubServer() as state:
        yield state


@pytest.fixture()
def gh_env(tmp_path: Path, gh: FakeGitHub) -> dict[str, str]:
    """A pull_request event on PR #7 of octo/models, with a writable token."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 7,
                                 "pull_request": {"number": 7, "head": {"sha": gh.head_sha}}}))
    (tmp_path / "output.txt").write_text("")
    (tmp_path / "summary.txt").write_text("")
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.txt"),
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_REPOSITORY": gh.repo,
        "GITHUB_API_URL": gh.base_url,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_JOB": "gate",
        "GITHUB_TOKEN": "good-token",
        "GITHUB_WORKSPACE": str(tmp_path / "ws"),
    }


def _out_dir(tmp_path: Path, run: GateRun | None, summary: str | None = "## cg-gate: FAIL\n"
             ) -> Path:
    from cg_gate.record import write_results

    out = tmp_path / "cg-gate-report"
    out.mkdir(exist_ok=True)
    if run is not None:
        write_results(run, out / "results.json")
        (out / "report.html").write_text("<html></html>")
    if summary is not None:
        (out / "summary.md").write_text(summary)
    return out


# --------------------------------------------------------------------------- escaping


@pytest.mark.parametrize(("raw", "data", "prop"), [
    ("plain", "plain", "plain"),
    ("50%", "50%25", "50%25"),
    ("a\nb", "a%0Ab", "a%0Ab"),
    ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
    ("key: value", "key: value", "key%3A value"),
    ("a,b", "a,b", "a%2Cb"),
    ("%0A", "%250A", "%250A"),
    ("x::y", "x::y", "x%3A%3Ay"),
    ("100%,\n:", "100%25,%0A:", "100%25%2C%0A%3A"),
])
def test_escaping_table(raw: str, data: str, prop: str) -> None:
    assert escape_data(raw) == data
    assert escape_property(raw) == prop


# --------------------------------------------------------------------------- annotations


def test_annotations_one_per_rule_that_did_not_pass() -> None:
    run = make_gate_run([
        verdict("CG001", "fail", title="Refusal: covered, mostly", message="covered 50% < 80%"),
        verdict("CG002", "warn", severity="warn", line=20, message="chi 0.55 < 0.6"),
        verdict("CG003", "fail", mode="audit", line=30, message="drop 0.04\nover 0.02"),
        verdict("CG004", "pass", line=40),
        verdict("CG005", "waived", line=50),
        verdict("CG006", "insufficient_data", line=60),
        verdict("CG007", "error", line=None, check="fidelity", title="SAE fits",
                message="fve unavailable"),
    ])
    assert annotations(run) == [
        "::error file=policies/release.yaml,line=10,col=3,"
        "title=release/CG001 [coverage] Refusal%3A covered%2C mostly::covered 50%25 < 80%25",
        "::warning file=policies/release.yaml,line=20,col=3,"
        "title=release/CG002 [coverage] Refusal is covered::chi 0.55 < 0.6 "
        "(does not fail the build: severity warn)",
        "::warning file=policies/release.yaml,line=30,col=3,"
        "title=release/CG003 [coverage] Refusal is covered::drop 0.04%0Aover 0.02 "
        "(does not fail the build: audit mode)",
        "::error title=release/CG007 [fidelity] SAE fits::fve unavailable",
    ]


def test_annotations_fail_on_warn_makes_warn_rules_errors() -> None:
    run = make_gate_run([verdict("CG002", "warn", severity="warn", line=20, message="m")])
    assert annotations(run, fail_on="warn") == [
        "::error file=policies/release.yaml,line=20,col=3,"
        "title=release/CG002 [coverage] Refusal is covered::m"]


def test_annotation_paths_are_relative_to_the_workspace(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run = make_gate_run([verdict("CG001", "fail", path=str(ws / "policies" / "p.yaml"))])
    assert annotations(run, workspace=str(ws))[0].startswith(
        "::error file=policies/p.yaml,line=10,")


def test_expired_waiver_is_named_in_the_annotation() -> None:
    waiver = WaiverRecord(rule="CG001", reason="r", approved_by="a", expires="2026-01-31",
                          expired=True)
    run = make_gate_run([verdict("CG001", "fail", message="m", waiver=waiver)])
    assert annotations(run)[0].endswith("::m (waiver expired 2026-01-31)")


# --------------------------------------------------------------------------- outputs


def test_format_output_single_and_multiline() -> None:
    assert format_output("verdict", "pass") == "verdict=pass\n"
    text = format_output("notes", "a\nb")
    name, delimiter = text.split("\n")[0].split("<<")
    assert name == "notes"
    assert text == f"notes<<{delimiter}\na\nb\n{delimiter}\n"
    assert delimiter.startswith("ghadelimiter_") and len(delimiter) > 20
    assert parse_github_output(text) == {"notes": "a\nb"}


def test_write_outputs_appends_every_declared_output(tmp_path: Path) -> None:
    run = make_gate_run([verdict("CG001", "fail"), verdict("CG002", "fail", line=11),
                         verdict("CG003", "pass", line=12)])
    out = _out_dir(tmp_path, run)
    target = tmp_path / "gh_output"
    target.write_text("earlier=kept\n")
    values = write_outputs(run, out, {"GITHUB_OUTPUT": str(target)})
    parsed = parse_github_output(target.read_text())
    assert parsed == {
        "earlier": "kept",
        "verdict": "fail",
        "failed-rules": "release/CG001,release/CG002",
        "counts": '{"pass":1,"warn":0,"fail":2,"insufficient_data":0,"waived":0,"error":0}',
        "report-html": str(out / "report.html"),
        "report-pdf": "",
        "results-json": str(out / "results.json"),
        "results-digest": run.deterministic_digest(),
        "run-id": "20261124T020000Z-abc123",
        "flaky": "0",
    }
    assert tuple(values) == OUTPUT_NAMES


def test_write_outputs_outside_actions_writes_nothing(tmp_path: Path) -> None:
    values = write_outputs(make_gate_run([]), tmp_path, {})
    assert values["verdict"] == "pass" and values["failed-rules"] == ""
    assert list(tmp_path.iterdir()) == []


def test_verdict_follows_fail_on(tmp_path: Path) -> None:
    run = make_gate_run([verdict("CG002", "warn", severity="warn")])
    assert write_outputs(run, tmp_path, {}, fail_on="error")["verdict"] == "pass"
    assert write_outputs(run, tmp_path, {}, fail_on="warn")["verdict"] == "fail"
    assert write_outputs(None, tmp_path, {})["verdict"] == "error"


# --------------------------------------------------------------------------- step summary


def test_step_summary_appends_summary_notes_and_link(tmp_path: Path) -> None:
    target = tmp_path / "s.md"
    target.write_text("# before\n")
    env = {"GITHUB_STEP_SUMMARY": str(target)}
    n = append_step_summary("## cg-gate: PASS", env, "https://x.example/a/1", ["no comment"])
    expected = ("# before\n## cg-gate: PASS\n\n\n> **Note:** no comment\n"
                "\n[Full report (HTML, PDF, results.json)](https://x.example/a/1)\n")
    assert target.read_text() == expected
    assert n == len(expected.encode()) - len(b"# before\n")


def test_step_summary_stays_within_github_limit(tmp_path: Path) -> None:
    target = tmp_path / "s.md"
    target.write_bytes(b"x" * 1000)  # an earlier write in the same step counts too
    line = "| concept ✓ | 0.5 |\n"  # multi-byte characters: the cut must keep valid UTF-8
    huge = line * (2 * STEP_SUMMARY_LIMIT // len(line.encode()))
    append_step_summary(huge, {"GITHUB_STEP_SUMMARY": str(target)}, "https://x.example/r")
    data = target.read_bytes()
    assert len(data) <= STEP_SUMMARY_LIMIT
    text = data.decode("utf-8")  # raises if a character was cut in half
    assert "truncated to fit GitHub's 1 MiB job-summary limit" in text
    assert text.endswith("[Full report (HTML, PDF, results.json)](https://x.example/r)\n")
    body = text[1000:text.index("\n\n> **Note:**")]
    assert body.endswith(line) and set(body.split("\n")[:-1]) == {line.rstrip("\n")}


def test_build_step_summary_small_input_untouched() -> None:
    assert build_step_summary("a\n") == "a\n"


# --------------------------------------------------------------------------- events


@pytest.mark.parametrize(("payload", "number"), [
    ({"pull_request": {"number": 7}}, 7),
    ({"issue": {"number": 9, "pull_request": {"url": "u"}}}, 9),
    ({"issue": {"number": 9}}, None),
    ({"workflow_run": {"pull_requests": [{"number": 3}]}}, 3),
    ({"workflow_run": {"pull_requests": []}}, None),
    ({"ref": "refs/heads/main"}, None),
    ({"pull_request": {"number": True}}, None),
    ({"pull_request": {"number": "7"}}, None),
    ([1, 2], None),
])
def test_pr_number_from_event(tmp_path: Path, payload: Any, number: int | None) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    assert pr_number_from_event(path) == number


def test_pr_number_from_unreadable_event(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert pr_number_from_event(bad) is None
    assert pr_number_from_event(tmp_path / "missing.json") is None
    assert pr_number_from_event(None) is None


@pytest.mark.parametrize(("mode", "event", "expected"), [
    ("auto", "pull_request", True), ("auto", "pull_request_target", True),
    ("auto", "push", False), ("auto", None, False), ("always", "push", True),
    ("never", "pull_request", False),
])
def test_should_comment(mode: str, event: str | None, expected: bool) -> None:
    assert should_comment(mode, event) is expected  # type: ignore[arg-type]


# --------------------------------------------------------------------------- comment body


def test_comment_marker_keeps_legs_apart_and_cannot_be_closed_early() -> None:
    assert comment_marker(None) == MARKER == "<!-- cg-gate:report -->"
    assert comment_marker("gate-0") == "<!-- cg-gate:report -->\n<!-- cg-gate:job=gate-0 -->"
    evil = comment_marker("x --> <img src=y>")
    assert evil.count("-->") == 2 and "<img" not in evil


def test_comment_body_truncated_to_github_limit() -> None:
    body = comment_body("row\n" * 40000, "gate-0")
    assert len(body) <= COMMENT_LIMIT
    assert body.startswith(comment_marker("gate-0") + "\nrow\n")
    assert body.endswith("the full report is in the job's artifact.\n")


# --------------------------------------------------------------------------- PR comment API


def test_upsert_creates_then_updates_the_same_comment(gh: FakeGitHub) -> None:
    gh.add_comment(7, "LGTM")
    first = upsert_pr_comment("v1", repo=gh.repo, pr_number=7, token="tok",
                              api_url=gh.base_url, key="gate-0")
    second = upsert_pr_comment("v2", repo=gh.repo, pr_number=7, token="tok",
                               api_url=gh.base_url + "/", key="gate-0")
    assert (first.action, second.action) == ("created", "updated")
    assert first.comment_id == second.comment_id
    assert [c["body"] for c in gh.comments[7]] == [
        "LGTM", "<!-- cg-gate:report -->\n<!-- cg-gate:job=gate-0 -->\nv2"]
    methods = [(m, p) for m, p, _ in gh.requests]
    assert methods == [
        ("GET", "/user"),  # refused for this token: it writes as github-actions[bot]
        ("GET", "/repos/octo/models/issues/7/comments"),
        ("POST", "/repos/octo/models/issues/7/comments"),
        ("GET", "/user"),
        ("GET", "/repos/octo/models/issues/7/comments"),
        ("PATCH", f"/repos/octo/models/issues/comments/{first.comment_id}"),
    ]
    assert {t for _, _, t in gh.requests} == {"tok"}


def test_matrix_legs_get_one_comment_each(gh: FakeGitHub) -> None:
    for key in ("gate-0", "gate-1", "gate-0", "gate-1"):
        upsert_pr_comment(f"leg {key}", repo=gh.repo, pr_number=7, token="t",
                          api_url=gh.base_url, key=key)
    assert len(gh.comments[7]) == 2
    assert [c["body"].endswith(f"leg gate-{i}") for i, c in enumerate(gh.comments[7])] == [
        True, True]


def test_existing_comment_found_across_pages(gh: FakeGitHub) -> None:
    for i in range(250):
        gh.add_comment(7, f"chatter {i}")
    ours = gh.add_comment(7, comment_body("old", "gate-0"), "github-actions[bot]")
    result = upsert_pr_comment("new", repo=gh.repo, pr_number=7, token="t",
                               api_url=gh.base_url, key="gate-0")
    assert result.action == "updated" and result.comment_id == ours["id"]
    assert len(gh.comments[7]) == 251
    gets = [p for m, p, _ in gh.requests if m == "GET" and p != "/user"]
    assert len(gets) == 3


def test_quoted_marker_in_a_human_comment_is_not_ours(gh: FakeGitHub) -> None:
    gh.add_comment(7, "> " + comment_body("old", "gate-0"))
    result = upsert_pr_comment("new", repo=gh.repo, pr_number=7, token="t",
                               api_url=gh.base_url, key="gate-0")
    assert result.action == "created" and len(gh.comments[7]) == 2


# --------------------------------------------------------------------------- comment author


def test_a_foreign_marker_comment_is_ignored_reported_and_left_unchanged(gh: FakeGitHub) -> None:
    fake = gh.add_comment(7, comment_body("## ✅ cg-gate: PASS", "gate-0"), "mallory")
    result = upsert_pr_comment("## cg-gate: FAIL", repo=gh.repo, pr_number=7, token="t",
                               api_url=gh.base_url, key="gate-0")
    assert result.action == "created" and result.comment_id != fake["id"]
    assert [c.comment_id for c in result.ignored] == [fake["id"]]
    assert result.ignored[0].author == "mallory"
    assert "Ignored 1 comment(s)" in result.ignored_note()
    assert f"comment {fake['id']} by mallory" in result.ignored_note()
    # the attacker's comment is untouched and never PATCHed; ours carries the real verdict
    assert gh.comments[7][0]["body"].endswith("## ✅ cg-gate: PASS")
    assert gh.comments[7][1]["body"].endswith("## cg-gate: FAIL")
    assert gh.comments[7][1]["user"]["login"] == "github-actions[bot]"
    assert not [m for m, _, _ in gh.requests if m == "PATCH"]
    # the next push updates our comment, still leaving the attacker's alone
    again = upsert_pr_comment("## cg-gate: PASS", repo=gh.repo, pr_number=7, token="t",
                              api_url=gh.base_url, key="gate-0")
    assert again.action == "updated" and again.comment_id == result.comment_id
    assert gh.comments[7][0]["body"].endswith("## ✅ cg-gate: PASS") and len(gh.comments[7]) == 2


def test_a_user_named_like_the_bot_is_not_the_bot(gh: FakeGitHub) -> None:
    fake = gh.add_comment(7, comment_body("fake", None), "github-actions[bot]")
    fake["user"]["type"] = "User"
    result = upsert_pr_comment("real", repo=gh.repo, pr_number=7, token="t",
                               api_url=gh.base_url)
    assert result.action == "created" and [c.comment_id for c in result.ignored] == [fake["id"]]
    assert fake["body"].endswith("fake")


def test_a_personal_token_updates_only_its_own_comment(gh: FakeGitHub) -> None:
    gh.users["pat"] = {"login": "Alice", "type": "User"}
    bots = gh.add_comment(7, comment_body("bot's", None), "github-actions[bot]")
    mine = gh.add_comment(7, comment_body("alice's old", None), "alice")
    result = upsert_pr_comment("alice's new", repo=gh.repo, pr_number=7, token="pat",
                               api_url=gh.base_url)
    assert (result.action, result.comment_id) == ("updated", mine["id"])
    assert [c.comment_id for c in result.ignored] == [bots["id"]]
    assert bots["body"].endswith("bot's") and mine["body"].endswith("alice's new")


def test_an_explicit_bot_login_skips_the_user_lookup(gh: FakeGitHub) -> None:
    other = gh.add_comment(7, comment_body("actions bot", None), "github-actions[bot]")
    app = gh.add_comment(7, comment_body("app old", None), "gate-app[bot]")
    result = upsert_pr_comment("app new", repo=gh.repo, pr_number=7, token="t",
                               api_url=gh.base_url, bot_login="gate-app[bot]")
    assert (result.action, result.comment_id) == ("updated", app["id"])
    assert [c.comment_id for c in result.ignored] == [other["id"]]
    assert "/user" not in [p for _, p, _ in gh.requests]


def test_a_hostile_author_login_cannot_start_a_workflow_command(tmp_path: Path, gh: FakeGitHub,
                                                                gh_env: dict[str, str]) -> None:
    gh.add_comment(7, comment_body("x", "k"), "evil\n::error file=a,line=1::owned\r::x")
    body = tmp_path / "summary.md"
    body.write_text("## cg-gate: PASS\n")
    result = CliRunner().invoke(cli, ["ci", "github", "comment", "--body", str(body),
                                      "--pr-number", "7", "--comment-key", "k"], env=gh_env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("::warning title=cg-gate::Ignored 1 comment(s)")
    assert "by evil___error_file_a_line_1__owned___x" in lines[0]
    assert [line for line in lines if line.startswith("::")] == [lines[0]]
    assert "PR comment created" in lines[1]


def test_publish_reports_a_foreign_marker_comment(tmp_path: Path, gh: FakeGitHub,
                                                  gh_env: dict[str, str]) -> None:
    fake = gh.add_comment(7, comment_body("## cg-gate: PASS", "gate-0"), "mallory")
    run = make_gate_run([verdict("CG001", "fail")])
    out = _out_dir(tmp_path, run, "## cg-gate: FAIL\n")
    result = CliRunner().invoke(cli, [
        "ci", "github", "publish", "--results", str(out / "results.json"), "--exit-code", "1",
        "--comment-key", "gate-0"], env=gh_env)
    assert result.exit_code == 0, result.output
    assert "PR comment created." in result.output
    assert f"note: Ignored 1 comment(s) carrying the cg-gate marker that the gate's token " \
           f"did not write (comment {fake['id']} by mallory)" in result.output
    summary = Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    assert f"> **Note:** Ignored 1 comment(s)" in summary
    assert fake["body"].endswith("## cg-gate: PASS") and len(gh.comments[7]) == 2


def test_read_only_token_is_skipped_with_a_note(gh: FakeGitHub) -> None:
    result = upsert_pr_comment("x", repo=gh.repo, pr_number=7, token="readonly",
                               api_url=gh.base_url)
    assert result.action == "skipped" and result.comment_id is None
    assert "HTTP 403" in result.note and "forks" in result.note
    assert gh.comments.get(7, []) == []


def test_unknown_repo_404_is_skipped(gh: FakeGitHub) -> None:
    result = upsert_pr_comment("x", repo="octo/other", pr_number=7, token="t",
                               api_url=gh.base_url)
    assert result.action == "skipped" and "HTTP 404" in result.note


def test_redirect_is_not_followed(gh: FakeGitHub) -> None:
    gh.redirect_to = gh.base_url + "/elsewhere"
    with pytest.raises(CommentError, match="HTTP 302"):
        upsert_pr_comment("x", repo=gh.repo, pr_number=7, token="t", api_url=gh.base_url)
    assert [p for _, p, _ in gh.requests] == ["/user"]  # the first request; nothing followed


def test_pagination_link_to_another_host_is_not_followed(gh: FakeGitHub) -> None:
    gh.page_size = 1
    gh.add_comment(7, "a")
    gh.add_comment(7, comment_body("old", None))
    gh.foreign_next = "http://127.0.0.2:9/steal?page=2"
    result = upsert_pr_comment("x", repo=gh.repo, pr_number=7, token="t", api_url=gh.base_url)
    assert result.action == "created"  # the second page was never read
    assert [(m, p) for m, p, _ in gh.requests if p != "/user"] == [
        ("GET", "/repos/octo/models/issues/7/comments"),
        ("POST", "/repos/octo/models/issues/7/comments")]


def test_head_sha_guard(gh: FakeGitHub) -> None:
    skipped = upsert_pr_comment("x", repo=gh.repo, pr_number=7, token="t",
                                api_url=gh.base_url, expected_head_sha="0" * 40)
    assert skipped.action == "skipped" and "not at the commit" in skipped.note
    assert 7 not in gh.comments
    posted = upsert_pr_comment("x", repo=gh.repo, pr_number=7, token="t",
                               api_url=gh.base_url, expected_head_sha=gh.head_sha)
    assert posted.action == "created"


def test_unreachable_api_raises_comment_error() -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(CommentError, match="could not reach"):
        upsert_pr_comment("x", repo="o/r", pr_number=1, token="t",
                          api_url=f"http://127.0.0.1:{port}", timeout=2)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"repo": "not a repo"}, "owner/name"),
    ({"pr_number": 0}, "not positive"),
    ({"api_url": "file:///etc/passwd"}, "not an http(s) URL"),
])
def test_bad_arguments_are_gate_errors(kwargs: dict[str, Any], fragment: str) -> None:
    from cg_gate.errors import GateError

    args = {"repo": "o/r", "pr_number": 1, "token": "t", "api_url": "https://api.github.com"}
    args.update(kwargs)
    with pytest.raises(GateError, match=re.escape(fragment)):
        upsert_pr_comment("x", **args)


def test_no_token_skips_without_network() -> None:
    result = upsert_pr_comment("x", repo="o/r", pr_number=1, token="",
                               api_url="http://127.0.0.1:9")
    assert result.action == "skipped" and "no token" in result.note


# --------------------------------------------------------------------------- publish


def test_publish_twice_creates_then_updates_one_comment(tmp_path: Path, gh: FakeGitHub,
                                                        gh_env: dict[str, str]) -> None:
    run = make_gate_run([verdict("CG001", "fail")])
    out = _out_dir(tmp_path, run, "## cg-gate: FAIL\n\nfirst push\n")
    first = publish(out / "results.json", out / "summary.md", env=gh_env, exit_code=1,
                    comment_key="gate-0")
    (out / "summary.md").write_text("## cg-gate: FAIL\n\nsecond push\n")
    second = publish(out / "results.json", out / "summary.md", env=gh_env, exit_code=1,
                     comment_key="gate-0")
    assert (first.comment.action, second.comment.action) == ("created", "updated")
    assert len(gh.comments[7]) == 1
    link = "[Full report (HTML, PDF, results.json)](https://github.example/octo/models/actions/runs/4242)"
    assert gh.comments[7][0]["body"] == (
        "<!-- cg-gate:report -->\n<!-- cg-gate:job=gate-0 -->\n"
        f"## cg-gate: FAIL\n\nsecond push\n\n{link}\n")
    outputs = parse_github_output(Path(gh_env["GITHUB_OUTPUT"]).read_text())
    assert outputs["verdict"] == "fail" and outputs["failed-rules"] == "release/CG001"
    summary = Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    assert summary.count("## cg-gate: FAIL") == 2 and "second push" in summary
    assert first.annotations == [
        "::error file=policies/release.yaml,line=10,col=3,"
        "title=release/CG001 [coverage] Refusal is covered::covered 0.50 < 0.80"]


def test_publish_with_read_only_token_notes_the_skip(tmp_path: Path, gh: FakeGitHub,
                                                     gh_env: dict[str, str]) -> None:
    gh_env["GITHUB_TOKEN"] = "readonly"
    out = _out_dir(tmp_path, make_gate_run([]), "## cg-gate: PASS\n")
    result = publish(out / "results.json", out / "summary.md", env=gh_env, exit_code=0)
    assert result.comment.action == "skipped"
    summary = Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    assert summary.startswith("## cg-gate: PASS\n")
    assert "> **Note:** The pull-request comment on octo/models#7 was skipped" in summary
    assert "HTTP 403" in summary
    assert gh.comments.get(7, []) == []


def test_publish_on_push_posts_no_comment(tmp_path: Path, gh: FakeGitHub,
                                          gh_env: dict[str, str]) -> None:
    gh_env["GITHUB_EVENT_NAME"] = "push"
    out = _out_dir(tmp_path, make_gate_run([]), "## ok\n")
    result = publish(out / "results.json", out / "summary.md", env=gh_env)
    assert result.comment is None and gh.requests == []


def test_publish_without_results_reports_error(tmp_path: Path, gh: FakeGitHub,
                                               gh_env: dict[str, str]) -> None:
    out = _out_dir(tmp_path, None, None)
    result = publish(out / "results.json", out / "summary.md", env=gh_env, exit_code=2,
                     comment="never")
    assert result.outputs == {name: "" for name in OUTPUT_NAMES} | {"verdict": "error"}
    assert result.annotations[0].startswith("::error title=cg-gate::cg-gate could not judge "
                                            "the run (exit code 2)")
    summary = Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    assert summary.startswith("## cg-gate: ERROR\n") and "exit code 2" in summary


def test_publish_exit_code_two_ignores_stale_results(tmp_path: Path,
                                                    gh_env: dict[str, str]) -> None:
    stale = make_gate_run([verdict("CG001", "fail")])
    out = _out_dir(tmp_path, stale, "## stale\n")
    result = publish(out / "results.json", out / "summary.md", env=gh_env, exit_code=2,
                     comment="never")
    assert result.outputs["verdict"] == "error" and result.outputs["failed-rules"] == ""
    assert result.outputs["run-id"] == "" and result.outputs["results-digest"] == ""
    assert len(result.annotations) == 1 and "could not judge" in result.annotations[0]
    summary = Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "stale" not in summary and summary.startswith("## cg-gate: ERROR\n")


def test_publish_falls_back_to_a_summary_from_the_record(tmp_path: Path,
                                                         gh_env: dict[str, str]) -> None:
    run = make_gate_run([verdict("CG001", "fail", message="a | b")])
    out = _out_dir(tmp_path, run, None)
    publish(out / "results.json", out / "summary.md", env=gh_env, comment="never")
    summary = Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    # the Markdown renderer's summary.md, made from the record (report links then point at
    # the run's artifacts)
    rendered = RENDERERS["md"].render(run).decode()
    assert summary.startswith(rendered.split("[Full report]")[0])
    assert "| **FAIL** | a \\| b |" in summary


def test_publish_corrupt_results_is_an_error_not_a_crash(tmp_path: Path,
                                                         gh_env: dict[str, str]) -> None:
    out = _out_dir(tmp_path, None, "## x\n")
    (out / "results.json").write_text("{broken")
    result = publish(out / "results.json", out / "summary.md", env=gh_env, comment="never")
    assert result.outputs["verdict"] == "error"
    assert any("results.json could not be read" in n for n in result.notes)


# --------------------------------------------------------------------------- CLI


def test_cli_publish_prints_annotations_and_exits_zero(tmp_path: Path, gh: FakeGitHub,
                                                       gh_env: dict[str, str]) -> None:
    run = make_gate_run([verdict("CG001", "fail")])
    out = _out_dir(tmp_path, run)
    result = CliRunner().invoke(cli, [
        "ci", "github", "publish", "--results", str(out / "results.json"),
        "--exit-code", "1", "--artifact-url", "https://github.example/artifacts/9",
        "--comment-key", "gate-0"], env=gh_env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("::error file=policies/release.yaml,line=10,col=3,")
    assert "verdict=fail; PR comment created." in result.output
    assert gh.comments[7][0]["body"].endswith(
        "[Full report (HTML, PDF, results.json)](https://github.example/artifacts/9)\n")


def test_cli_comment_command_and_head_guard(tmp_path: Path, gh: FakeGitHub,
                                            gh_env: dict[str, str]) -> None:
    body = tmp_path / "summary.md"
    body.write_text("## cg-gate: PASS\n")
    args = ["ci", "github", "comment", "--body", str(body), "--pr-number", "7", "--comment-key", "k"]
    wrong = CliRunner().invoke(cli, [*args, "--head-sha", "f" * 40], env=gh_env)
    assert wrong.exit_code == 0 and wrong.output.startswith("::warning title=cg-gate::")
    assert 7 not in gh.comments
    right = CliRunner().invoke(cli, [*args, "--head-sha", gh.head_sha], env=gh_env)
    assert right.exit_code == 0 and "PR comment created" in right.output
    again = CliRunner().invoke(cli, args, env=gh_env)
    assert "PR comment updated" in again.output and len(gh.comments[7]) == 1


def test_cli_comment_rejects_bad_pr_number(tmp_path: Path, gh_env: dict[str, str]) -> None:
    body = tmp_path / "s.md"
    body.write_text("x")
    result = CliRunner().invoke(cli, ["ci", "github", "comment", "--body", str(body),
                                      "--pr-number", "7; rm -rf /"], env=gh_env)
    assert result.exit_code == 2 and "not a valid integer" in result.output


def test_cli_ci_imports_no_model_libraries(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from cg_gate.cli import main\n"
            "try:\n    main(['ci', 'github', 'publish', '--help'])\n"
            "except SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'sae_lens') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert "HEAVY []" in out


def test_relative_report_links_point_at_the_artifact(tmp_path: Path, gh: FakeGitHub,
                                                     gh_env: dict[str, str]) -> None:
    summary = ("## cg-gate: PASS\n\n[Full report](report.html) · [PDF](report.pdf) · "
               "[results.json](results.json) · [CI run](https://github.example/run)\n")
    out = _out_dir(tmp_path, make_gate_run([]), summary)
    url = "https://github.example/octo/models/actions/runs/4242/artifacts/9"
    publish(out / "results.json", out / "summary.md", env=gh_env, artifact_url=url)
    expected = (f"## cg-gate: PASS\n\n[Full report]({url}) · [PDF]({url}) · "
                f"[results.json]({url}) · [CI run](https://github.example/run)\n")
    assert Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text() == expected
    assert gh.comments[7][0]["body"] == comment_marker("gate") + "\n" + expected


def test_an_unreadable_results_note_cannot_add_links_or_mentions(tmp_path: Path,
                                                                  gh_env: dict[str, str]) -> None:
    from markdown_it import MarkdownIt

    out = _out_dir(tmp_path, None, "## x\n")
    data = make_gate_run([]).model_dump(mode="json")
    data["schema_version"] = "[c](https://evil.example) @octocat <img src=x>"
    (out / "results.json").write_text(json.dumps(data))
    result = publish(out / "results.json", out / "summary.md", env=gh_env, comment="never")
    assert result.outputs["verdict"] == "error"
    summary = Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "results.json could not be read" in summary and "@\u2060octocat" in summary
    tokens = MarkdownIt("commonmark").parse(summary)
    children = [c for t in tokens for c in t.children or []]
    assert [c.attrGet("href") for c in children if c.type == "link_open"] == [
        "https://github.example/octo/models/actions/runs/4242"]  # the run's own link only
    assert not [c for c in children if c.type in ("image", "html_inline")]


def test_the_comment_and_summary_show_samples_judge_and_cost_and_the_flaky_output(
        tmp_path: Path, gh: FakeGitHub, gh_env: dict[str, str]) -> None:
    from fixtures.make_run import make_run_v1_2

    run = make_run_v1_2()  # sf-001 and sf-004 are flaky (two of three samples pass)
    out = _out_dir(tmp_path, run, RENDERERS["md"].render(run).decode())
    result = publish(out / "results.json", out / "summary.md", env=gh_env, exit_code=1)
    assert result.outputs["flaky"] == "2"
    assert parse_github_output(Path(gh_env["GITHUB_OUTPUT"]).read_text())["flaky"] == "2"
    body = gh.comments[7][0]["body"]
    summary = Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    for text in (body, summary):
        assert ("3 samples per item (temperature 0.7): **2 of 4** sampled items flaky; "
                "lowest pass rates: `sf-001` 67%, `sf-004` 67%") in text
        assert "| safety/refusal | κ 0.40 [0.05, 0.75] on 10 items | `cccccccccccc` |" in text
        assert "| safety/boundaries | ⚠️ judge not calibrated | — |" in text
        assert "- **Total**: 192.4 s · 5,230 tokens in / 1,460 out · 0.05 items/s" in text
    # a run with one response per item: nothing to show, and no flaky items
    plain = make_gate_run([verdict("CG001", "pass")])
    assert gate_outputs(plain, out)["flaky"] == "0"
    assert "### Samples" not in RENDERERS["md"].render(plain).decode()
