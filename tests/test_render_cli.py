"""`cg-gate report`: re-render from results.json, sign-off options, exit codes, light imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cg_gate.cli import cli
from cg_gate.record import dump_results, read_results
from fixtures.make_run import FIXTURE_V1, make_run

CHEAP = "html,md,junit,sarif,json,model-index"


def test_report_renders_and_exits_with_the_gate_code(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(FIXTURE_V1), "--format", CHEAP,
                                      "--out", str(tmp_path)])
    assert result.exit_code == 1, result.output  # the fixture gate fails on CG003
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "junit.xml", "model-index.yaml", "report.html", "results.json", "results.sarif",
        "summary.md"]
    assert "summary.md" in result.output


def test_passing_record_exits_zero(tmp_path):
    full = make_run()
    results = tmp_path / "results.json"
    results.write_text(dump_results(make_run(verdicts=[full.verdicts[0]])), encoding="utf-8")
    result = CliRunner().invoke(cli, ["report", str(results), "--format", "md",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output


def test_signoff_options_fill_the_block_without_touching_the_input(tmp_path):
    before = FIXTURE_V1.read_bytes()
    result = CliRunner().invoke(cli, [
        "report", str(FIXTURE_V1), "--format", "html,json", "--out", str(tmp_path),
        "--approver", "J. Doe", "--role", "Head of ML Governance", "--decision", "reject",
        "--signoff-date", "2026-11-25"])
    assert result.exit_code == 1, result.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    signoff = html[html.index('<section id="signoff">'):]
    for text in ("J. Doe", "Head of ML Governance", "reject", "2026-11-25"):
        assert text in signoff
    assert read_results(tmp_path / "results.json").signoff.approver == "J. Doe"
    assert FIXTURE_V1.read_bytes() == before


def test_signoff_file_with_option_override(tmp_path):
    signoff = tmp_path / "signoff.yaml"
    signoff.write_text("approver: A. Rivera\nrole: Compliance\ndecision: approve\n"
                       "date: 2026-11-26\nnotes: ok\n", encoding="utf-8")
    result = CliRunner().invoke(cli, [
        "report", str(FIXTURE_V1), "--format", "json", "--out", str(tmp_path / "o"),
        "--signoff-file", str(signoff), "--decision", "approve-with-conditions"])
    assert result.exit_code == 1, result.output
    got = read_results(tmp_path / "o" / "results.json").signoff
    assert (got.approver, got.role, got.decision, got.date, got.notes) == (
        "A. Rivera", "Compliance", "approve-with-conditions", "2026-11-26", "ok")


def test_bad_signoff_file_is_exit_2_naming_the_file(tmp_path):
    signoff = tmp_path / "signoff.yaml"
    signoff.write_text("approver: [unclosed\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["report", str(FIXTURE_V1), "--format", "md", "--out",
                                      str(tmp_path / "o"), "--signoff-file", str(signoff)])
    assert result.exit_code == 2
    assert "signoff.yaml" in result.output and "Fix:" in result.output


def test_unknown_format_is_exit_2_listing_formats(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(FIXTURE_V1), "--format", "html,docx",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown report format 'docx'" in result.output
    assert "model-index" in result.output
    assert list(tmp_path.iterdir()) == []


def test_broken_results_file_is_exit_2(tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps({"schema_version": "1.0.0", "manifest": {}}), encoding="utf-8")
    result = CliRunner().invoke(cli, ["report", str(bad), "--format", "md", "--out",
                                      str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "results.json" in result.output


def test_report_command_does_not_import_torch(tmp_path):
    code = (
        "import sys\n"
        "from cg_gate.cli import main\n"
        "try:\n"
        f"    main(['report', {str(FIXTURE_V1)!r}, '--format', 'html,md,junit,sarif,json,"
        f"model-index', '--out', {str(tmp_path)!r}])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sae_lens', 'weasyprint')"
        " if m in sys.modules)\n"
        "print('HEAVY', heavy, 'EXIT', code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parent.parent, timeout=120)
    assert "HEAVY [] EXIT 1" in out.stdout, out.stdout + out.stderr
    assert (tmp_path / "report.html").is_file()
