"""The `cg-gate` entry point: help, version, lazy imports, usage errors."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from cg_gate import __version__
from cg_gate.cli import cli

HEAVY = ("torch", "transformers", "sae_lens")


def test_help_lists_every_command():
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    for name in ("analyze", "run", "report", "policy", "suite", "labels", "ci", "demo", "merge"):
        assert f"  {name}" in res.output


def test_version():
    res = CliRunner().invoke(cli, ["--version"])
    assert res.exit_code == 0 and __version__ in res.output


def _modules_after(args: list[str]) -> set[str]:
    code = (
        "import sys, json\n"
        "from cg_gate.cli import cli\n"
        f"try:\n    cli.main(args={args!r}, prog_name='cg-gate', standalone_mode=False)\n"
        "except SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_help_of_every_command_imports_no_heavy_library():
    for args in (["--help"], ["run", "--help"], ["analyze", "--help"], ["demo", "--help"],
                 ["merge", "--help"]):
        loaded = _modules_after(args)
        assert not loaded & set(HEAVY), (args, loaded & set(HEAVY))


def test_unknown_format_is_a_usage_error_with_exit_2(tmp_path):
    res = CliRunner().invoke(cli, ["run", "--format", "html,docx", "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "docx" in res.output and "html" in res.output


def test_shipped_policy_is_found():
    from cg_gate.cli._demo import shipped_policy

    assert shipped_policy("default").name == "default.yaml"


def test_suites_list_names_the_starter_suite():
    res = CliRunner().invoke(cli, ["suites", "list"])
    assert res.exit_code == 0
    assert "starter" in res.output and "300 items" in res.output
