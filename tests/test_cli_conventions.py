"""CLI conventions: one spelling per option, deprecated aliases, -V, --quiet/--verbose,
NO_COLOR, validated sign-off fields, --json output and --limit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from builders import TINY_SUITE
from cg_gate import __version__
from cg_gate.cli import cli
from cg_gate.cli._command import DeprecatedAlias
from cg_gate.record import read_results
from fixtures.make_run import FIXTURE_V1

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "policies" / "default.yaml"


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(cli, list(args), **kwargs)


def _leaf_commands() -> dict[str, click.Command]:
    ctx = click.Context(cli)
    out: dict[str, click.Command] = {}

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), (*path, name))
        else:
            out[" ".join(path)] = cmd
    walk(cli, ())
    return out


# --------------------------------------------------------------------------- global options


def test_capital_v_is_the_version():
    for flag in ("-V", "--version"):
        res = invoke(flag)
        assert res.exit_code == 0 and res.output.strip() == f"cg-gate, version {__version__}"


def test_quiet_and_verbose_together_are_a_usage_error():
    res = invoke("-q", "policy", "validate", str(POLICY), "-v")
    assert res.exit_code == 2 and "--quiet and --verbose" in res.output


def test_no_color_turns_colour_off():
    coloured = invoke("policy", "validate", str(POLICY), color=True)
    assert coloured.exit_code == 0 and "\x1b[" in coloured.output  # there is colour to remove
    for value in ("1", "true", "0"):  # any non-empty value counts (no-color.org)
        plain = invoke("policy", "validate", str(POLICY), color=True, env={"NO_COLOR": value})
        assert plain.exit_code == 0 and "\x1b[" not in plain.output
    empty = invoke("policy", "validate", str(POLICY), color=True, env={"NO_COLOR": ""})
    assert "\x1b[" in empty.output


def test_errors_have_no_colour_under_no_color(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("apiVersion: cg-gate/v1\nkind: GatePolicy\nmetadata: {name: x}\nrules: 3\n")
    res = invoke("policy", "validate", str(bad), color=True, env={"NO_COLOR": "1"})
    assert res.exit_code == 2 and "p.yaml" in res.output and "\x1b[" not in res.output


# --------------------------------------------------------------------------- spelling


def _readme_option_table() -> dict[str, set[str]]:
    """README's table of shared options: flag -> the commands listed for it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("| option | commands | what |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        commands = {c.strip() for c in re.sub(r"\(.*?\)", "", cells[1]).split(",")}
        for flag in re.findall(r"`(-[^` ]+)", cells[0]):
            rows[{"-q/--quiet": "--quiet/-q", "-v/--verbose": "--verbose/-v"}.get(flag, flag)] = \
                commands
    return rows


def test_readme_documents_every_shared_option_with_its_commands():
    """Every option taken by several commands is spelled one way and listed in README's
    table with exactly the commands that take it; retired spellings are shown nowhere."""
    actual: dict[str, set[str]] = {}
    for path, cmd in _leaf_commands().items():
        if path.startswith("suites "):
            continue  # the same commands as `suite`
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden:
                assert not set(p.opts) & {"--formats", "--date", "--key"}, (path, p.opts)
                flag = "/".join(p.opts + p.secondary_opts)
                actual.setdefault(flag, set()).add(path)
    shared = {flag: cmds for flag, cmds in actual.items() if len(cmds) > 1}
    table = _readme_option_table()
    for flag, cmds in shared.items():
        if flag in ("--quiet/-q", "--verbose/-v"):  # every command takes them
            assert cmds == {p for p in _leaf_commands() if not p.startswith("suites ")}
            continue
        assert flag in table, f"{flag} ({sorted(cmds)}) is missing from README's option table"
        assert table[flag] == cmds, (flag, table[flag], cmds)
    for flag in table:
        assert flag in actual or any(flag in f.split("/") for f in actual), flag


def test_every_alias_is_hidden_and_points_at_a_parameter_of_its_command():
    seen = set()
    for path, cmd in _leaf_commands().items():
        names = {p.name for p in cmd.params}
        for p in cmd.params:
            if isinstance(p, DeprecatedAlias):
                assert p.hidden and p.replaces in names, (path, p.flag)
                seen.add((path, p.flag, p.replacement_flag))
                assert p.flag not in cmd.get_help(click.Context(cmd))
    assert ("run", "--formats", "--format") in seen
    assert ("report", "--date", "--signoff-date") in seen
    assert ("ci github comment", "--key", "--comment-key") in seen
    assert ("run", "--date", "--signoff-date") not in seen  # run never had --date


def test_old_spellings_still_work_with_a_note(tmp_path):
    new = invoke("report", str(FIXTURE_V1), "--format", "md", "--out", str(tmp_path / "n"),
                 "--approver", "A", "--decision", "reject", "--signoff-date", "2026-11-25")
    old = invoke("report", str(FIXTURE_V1), "--formats", "md", "--out", str(tmp_path / "o"),
                 "--approver", "A", "--decision", "reject", "--date", "2026-11-25")
    assert new.exit_code == old.exit_code == 1, old.output
    assert "deprecated" not in new.stderr
    assert "note: --formats is deprecated and will be removed; use --format" in old.stderr
    assert "note: --date is deprecated and will be removed; use --signoff-date" in old.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["summary.md"]
    assert (tmp_path / "o" / "summary.md").read_bytes() == (tmp_path / "n" / "summary.md").read_bytes()


def test_old_and_new_spelling_together_are_a_usage_error(tmp_path):
    res = invoke("report", str(FIXTURE_V1), "--format", "md", "--formats", "html",
                 "--out", str(tmp_path))
    assert res.exit_code == 2 and "pass only --format" in res.output


def test_format_may_be_repeated_or_comma_separated(tmp_path):
    res = invoke("report", str(FIXTURE_V1), "--format", "md", "--format", "junit,sarif",
                 "--out", str(tmp_path))
    assert res.exit_code == 1, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junit.xml", "results.sarif",
                                                          "summary.md"]


def test_unknown_format_on_report_is_a_usage_error(tmp_path):
    res = invoke("report", str(FIXTURE_V1), "--format", "md,docx", "--out", str(tmp_path))
    assert res.exit_code == 2 and "docx" in res.output and "model-index" in res.output
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


# --------------------------------------------------------------------------- sign-off


@pytest.mark.parametrize(("args", "message"), [
    (["--approver", "A", "--decision", "maybe"], "'maybe' is not one of approve, reject, "
                                                  "approve-with-conditions"),
    (["--approver", "A", "--signoff-date", "next tuesday"], "is not an ISO date"),
    (["--approver", "A", "--signoff-date", "2026-02-30"], "does not exist"),
    (["--approver", "A", "--signoff-date", "20261125"], "is not an ISO date"),
    (["--approver", "   "], "approver is blank"),
    (["--approver", "A", "--role", ""], "role is blank"),
    (["--approver", "A\nB"], "approver holds line breaks"),
    (["--decision", "approve"], "needs an approver"),
    (["--approver", "A", "--decision", "approve-with-conditions"], "pass --notes"),
    (["--approver", "A", "--date", "31/12/2026"], "is not an ISO date"),
])
def test_report_refuses_bad_signoff_fields_with_exit_2(tmp_path, args, message):
    res = invoke("report", str(FIXTURE_V1), "--format", "md", "--out", str(tmp_path), *args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_run_refuses_bad_signoff_fields_before_loading_anything(tmp_path):
    res = invoke("run", "--model", str(tmp_path / "absent"), "--approver", "A",
                 "--decision", "maybe", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "'maybe' is not one of" in res.output
    res = invoke("run", "--model", str(tmp_path / "absent"), "--signoff-date", "2026-13-01",
                 "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "does not exist" in res.output
    assert not (tmp_path / "o").exists()


def test_signoff_decision_is_normalised_and_recorded(tmp_path):
    res = invoke("report", str(FIXTURE_V1), "--format", "json", "--out", str(tmp_path),
                 "--approver", " J. Doe ", "--decision", "Approve-With-Conditions",
                 "--notes", "retest after the refusal fix", "--signoff-date", "2024-02-29")
    assert res.exit_code == 1, res.output
    got = read_results(tmp_path / "results.json").signoff
    assert (got.approver, got.decision, got.date, got.notes) == (
        "J. Doe", "approve-with-conditions", "2024-02-29", "retest after the refusal fix")


@pytest.mark.parametrize(("body", "message", "line"), [
    ("approver: A\ndecision: maybe\n", "'maybe' is not one of", 2),
    ("approver: A\nrole: QA\ndate: 2026-02-30\n", "'2026-02-30' looks like a date but is not", 3),
    ("approver: A\nrole: QA\ndate: next tuesday\n", "date 'next tuesday' is not an ISO date", 3),
    ("approver: '  '\n", "approver is blank", 1),
    ("approver: A\ndecison: approve\n", "unknown field 'decison'", 2),
    ("signoff:\n  approver: A\n  decision: approve\n  role: '\t'\n", "role is blank", 4),
])
def test_signoff_file_fields_are_validated_naming_file_and_line(tmp_path, body, message, line):
    signoff = tmp_path / "signoff.yaml"
    signoff.write_text(body, encoding="utf-8")
    res = invoke("report", str(FIXTURE_V1), "--format", "md", "--out", str(tmp_path / "o"),
                 "--signoff-file", str(signoff))
    assert res.exit_code == 2, res.output
    assert message in res.output and "Fix:" in res.output
    where = f"{signoff}:{line}:" if line else f"{signoff}:"
    assert where in res.output


# --------------------------------------------------------------------------- --json


def test_policy_validate_json_is_the_only_thing_on_stdout():
    res = invoke("policy", "validate", str(POLICY), "--json", "--today", "2026-01-01")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "cg-gate/policy-validate" and data["version"] == 1
    assert data["valid"] is True and data["errors"] == [] and data["today"] == "2026-01-01"
    assert data["policy"]["name"] == "release" and data["policy"]["digest"].startswith("sha256:")
    text = POLICY.read_text(encoding="utf-8").splitlines()
    assert [f["key"] for f in data["families"]][:2] == ["refusal", "professional-boundaries"]
    for rule in data["rules"]:
        assert rule["stable_id"] == f"release/{rule['id']}"
        assert rule["path"] == str(POLICY)
        assert f"id: {rule['id']}" in text[rule["line"] - 1]  # the rule's own line
    assert {r["mode"] for r in data["rules"]} <= {"enforce", "audit"}


def test_policy_validate_json_reports_waivers_and_expiry(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text("""\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: p}
concepts:
  refusal: {match: {ids: [1, 2]}}
rules:
  - {id: R1, concept: refusal, check: missing}
waivers:
  - {rule: R1, reason: pilot, approved_by: Ana, expires: 2026-01-31}
""")
    res = invoke("policy", "validate", str(policy), "--json", "--today", "2026-02-01")
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert data["waivers"] == [{"rule": "R1", "expires": "2026-01-31", "expired": True,
                                "approved_by": "Ana", "ticket": None, "reason": "pilot",
                                "path": str(policy), "line": 9, "column": 5}]
    assert "expired on 2026-01-31" in res.stderr  # the warning stays on stderr
    res = invoke("policy", "validate", str(policy), "--json", "--today", "2026-01-31")
    assert json.loads(res.stdout)["waivers"][0]["expired"] is False


def test_policy_validate_json_on_a_bad_file_says_where_and_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: cg-gate/v1\nkind: GatePolicy\nmetadata: {name: x}\n"
                   "rules:\n  - {id: A, check: nope}\n")
    res = invoke("policy", "validate", str(bad), "--json")
    assert res.exit_code == 2
    data = json.loads(res.stdout)
    assert data["valid"] is False and len(data["errors"]) == 1
    err = data["errors"][0]
    assert (err["path"], err["line"]) == (str(bad), 5)
    assert "nope" in err["message"] and "coverage" in err["fix"]
    assert "bad.yaml:5" in res.stderr


def test_suite_validate_json(tmp_path):
    suite = tmp_path / "s.jsonl"
    suite.write_text("\n".join(json.dumps(row) for row in [
        {"id": "a", "input": "Hi", "category": "chat", "scorer": "refusal"},
        {"id": "b", "input": "2+2?", "category": "math", "target": "4", "scorer": "numeric"},
        {"id": "c", "input": "3+3?", "category": "math", "target": "6", "scorer": "numeric"},
        {"id": "d", "input": "no scorer", "category": "math"},
    ]) + "\n")
    res = invoke("suite", "validate", str(suite), "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "cg-gate/suite-validate" and data["valid"] is True
    [s] = data["suites"]
    assert (s["items"], s["categories"], s["unscored"]) == (4, {"chat": 1, "math": 3}, 1)
    assert s["digest"].startswith("sha256:") and len(s["digest"]) == 7 + 64


def test_suite_validate_json_on_a_bad_file(tmp_path):
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"id": "a", "input": "x"}\n{"id": "a", "input": "y"}\n')
    res = invoke("suite", "validate", str(suite), "--json")
    assert res.exit_code == 2
    data = json.loads(res.stdout)
    assert data["valid"] is False and data["suites"] == []
    assert data["errors"][0]["path"] == str(suite) and "a" in data["errors"][0]["message"]


def test_suites_list_json():
    res = invoke("suites", "list", "--json")
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    [starter] = data["suites"]
    assert data["kind"] == "cg-gate/suites-list"
    assert starter["name"] == "starter" and starter["items"] == 300
    assert sum(starter["categories"].values()) == 300 and Path(starter["path"]).is_file()


# --------------------------------------------------------------------------- --limit


def test_first_items_keeps_the_first_n_of_each_category_and_records_the_cut():
    from cg_gate.pipeline._inputs import first_items
    from cg_gate.suites import load_suite, starter_suite_path

    full = load_suite(starter_suite_path())
    small = first_items(full, 3)
    categories = {it.category for it in full.items}
    assert len(small.items) == 3 * len(categories)
    for cat in categories:
        assert [it.id for it in small.items if it.category == cat] == \
            [it.id for it in full.items if it.category == cat][:3]
    assert [it.id for it in small.items] == [it.id for it in full.items if it in small.items]
    assert small.provenance["limit"] == {"per_category": 3, "items_kept": len(small.items),
                                         "items_in_suite": 300}
    assert small.digest() != full.digest()
    assert first_items(full, 1000).digest() == full.digest()


# --------------------------------------------------------------------------- runs on a tiny model

SUITE = TINY_SUITE % {"pattern": "."}

TINY_POLICY = """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: tiny-policy}
analysis: {min_support: 2, bootstrap: {samples: 50, seed: 0}}
concepts:
  early: {match: {ids: [0, 1, 2, 3, 4, 5, 6, 7]}}
rules:
  - {id: R1, concept: early, check: coverage, min_covered_fraction: 0.1}
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from builders import build_tiny_model, build_tiny_sae

    root = tmp_path_factory.mktemp("conventions")
    build_tiny_model(root / "model", seed=0)
    build_tiny_sae(root / "sae", d_in=64, d_sae=256, hook="blocks.2.hook_resid_post")
    (root / "suite.yaml").write_text(SUITE)
    (root / "policy.yaml").write_text(TINY_POLICY)
    return root


@pytest.fixture
def few_reference_texts(monkeypatch):
    """Four neutral reference texts instead of 640, to keep the runs to seconds."""
    import cg_gate.families as families

    texts = ["Hello there.", "The weather is mild today.", "Add two and three.", "Thanks!"]
    monkeypatch.setattr(families, "reference_texts", lambda spec=None: list(texts))


def _tiny_args(tiny: Path, out: Path) -> list[str]:
    return ["--model", str(tiny / "model"), "--sae", str(tiny / "sae"), "--suite",
            str(tiny / "suite.yaml"), "--out", str(out), "--cache-dir", str(tiny / "cache"),
            "--max-new-tokens", "3", "--batch-size", "4", "--no-validity"]


def test_analyze_limit_judges_the_first_items_per_category_and_records_it(
        tiny, tmp_path, few_reference_texts):
    res = invoke("analyze", *_tiny_args(tiny, tmp_path / "lim"), "--limit", "2", "-v",
                 catch_exceptions=False)
    assert res.exit_code == 0, res.output
    run = read_results(tmp_path / "lim" / "results.json")
    assert [it.id for it in run.items] == ["q1", "q2", "q3", "q4"]  # 2 facts, 2 chat, in order
    [suite] = run.manifest.suites
    assert suite.n_items == 4
    assert suite.provenance["limit"] == {"per_category": 2, "items_kept": 4, "items_in_suite": 6}
    assert run.manifest.arguments["passed"]["limit"] == 2
    assert "suite tiny: first 2 items per category, 4 of 6" in res.stderr
    assert "stages: load " in res.stderr and "wall time" in res.stderr

    full = invoke("analyze", *_tiny_args(tiny, tmp_path / "full"), "--no-progress",
                  catch_exceptions=False)
    assert full.exit_code == 0, full.output
    whole = read_results(tmp_path / "full" / "results.json").manifest.suites[0]
    assert whole.n_items == 6 and "limit" not in whole.provenance
    assert whole.digest != suite.digest
    assert "stages:" not in full.stderr  # detail only under --verbose


def test_run_quiet_prints_only_the_verdict(tiny, tmp_path, few_reference_texts):
    args = [*_tiny_args(tiny, tmp_path / "q"), "--policy", str(tiny / "policy.yaml"),
            "--format", "md"]
    # each run with an empty cache, so both generate and extract
    quiet = invoke("run", *args, "--cache-dir", str(tmp_path / "c1"), "--quiet",
                   catch_exceptions=False)
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stdout == "Gate: PASS (1 pass)\n"
    assert quiet.stderr == ""
    loud = invoke("-v", "run", *args, "--cache-dir", str(tmp_path / "c2"),
                  catch_exceptions=False)  # the global option before the command name
    assert loud.exit_code == 0, loud.output
    assert "RULE" in loud.stdout and "Reports:" in loud.stdout and "Gate: PASS" in loud.stdout
    assert "cg-gate: " in loud.stderr and "stages: " in loud.stderr
    # CliRunner's stderr is no terminal: progress comes as plain lines
    lines = loud.stderr.splitlines()
    assert any(re.fullmatch(r"generate candidate: 6/6 items, [\d.]+ items/s, done in \d+s", line)
               for line in lines), loud.stderr
    assert any(re.fullmatch(r"concepts candidate: 6/6 items, [\d.]+ items/s, done in \d+s", line)
               for line in lines), loud.stderr


def test_an_impossible_date_in_a_policy_is_exit_2_at_its_line(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text("apiVersion: cg-gate/v1\nkind: GatePolicy\nmetadata: {name: p}\n"
                      "concepts:\n  r: {match: {ids: [1]}}\n"
                      "rules:\n  - {id: R1, concept: r, check: missing}\n"
                      "waivers:\n  - {rule: R1, reason: x, approved_by: A, expires: 2026-02-30}\n")
    res = invoke("policy", "validate", str(policy))
    assert res.exit_code == 2, res.output
    assert f"{policy}:9:52: '2026-02-30' looks like a date but is not one" in res.output
    assert "Fix: write a real date as YYYY-MM-DD" in res.output


def test_policy_explain_json_says_each_rule_in_words_and_how_families_resolved():
    fixture = ROOT / "tests" / "fixtures" / "results_v1.1.json"
    res = invoke("policy", "explain", str(POLICY), "--json", "--results", str(fixture))
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["kind"] == "cg-gate/policy-explain"
    text = invoke("policy", "explain", str(POLICY)).stdout
    for rule in data["rules"]:  # the same words as the text explanation
        assert f"{rule['id']}: requires that {rule['requires']}." in text
        expected = {"audit": "never"}.get(rule["mode"]) or {
            "error": "always", "warn": "with --fail-on warn", "info": "never"}[rule["severity"]]
        assert rule["fails_build"] == expected
    refusal = next(f for f in data["families"] if f["key"] == "refusal")
    assert refusal["in_run"]["selection"]["candidates"] == 310  # as the fixture records
    assert refusal["in_run"]["selection"]["heldout_auroc"] == 0.84
    plain = json.loads(invoke("policy", "explain", str(POLICY), "--json").stdout)
    assert all(f["in_run"] is None for f in plain["families"])


def test_quiet_validation_prints_nothing_but_warnings_and_errors(tmp_path):
    res = invoke("policy", "validate", str(POLICY), "-q")
    assert res.exit_code == 0 and res.output == ""
    res = invoke("-q", "suite", "validate", str(ROOT / "cg_gate" / "data" / "suites" /
                                                 "starter.yaml"))
    assert res.exit_code == 0 and res.output == ""
    bad = tmp_path / "p.yaml"
    bad.write_text("apiVersion: cg-gate/v1\nkind: GatePolicy\nmetadata: {name: x}\nrules: 3\n")
    res = invoke("policy", "validate", str(bad), "-q")
    assert res.exit_code == 2 and "p.yaml" in res.stderr
