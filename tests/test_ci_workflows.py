"""The project's workflows and the example model-repo workflows hold their promises.

Read as YAML: the project's CI runs the README's test command on CPU-only torch, the action
end to end, the package build and the workflow linters; the release workflow checks, builds
and publishes with trusted publishing and moves the major tag; the example gate runs
read-only on every pull request (no path filter to strand a required check), takes its
baseline from main's stored results, and hands the comment to a `workflow_run` workflow
that never runs the pull request's code; no workflow pastes an expression into a script.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / ".github" / "workflows" / "ci.yml"
RELEASE = ROOT / ".github" / "workflows" / "release.yml"
EXAMPLES = ROOT / "examples" / "model-repo" / ".github" / "workflows"
GATE = EXAMPLES / "cg-gate.yml"
BASELINE = EXAMPLES / "cg-gate-baseline.yml"
COMMENT = EXAMPLES / "cg-gate-comment.yml"
SHARDED = EXAMPLES / "cg-gate-sharded.yml"
ALL = [CI, RELEASE, GATE, BASELINE, COMMENT, SHARDED]
# The one action not owned by GitHub, pinned to a commit (it receives the OIDC token).
PYPI_PUBLISH = "pypa/gh-action-pypi-publish@ed0c53931b1dc9bd32cbe73a98c7f6766f8a527e"


def _load(path: Path) -> dict[str, Any]:
    # PyYAML reads the `on:` key as True (YAML 1.1); normalise it back.
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


def _steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_no_expression_in_any_run_script(path: Path) -> None:
    for step in _steps(_load(path)):
        assert "${{" not in step.get("run", ""), (path.name, step.get("name"))


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_major_version(path: Path) -> None:
    for step in _steps(_load(path)):
        if "uses" in step and step["uses"] != PYPI_PUBLISH:
            assert re.fullmatch(r"(actions|github|cg-gate)/[\w./-]+@v\d+", step["uses"]), step["uses"]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_checkouts_keep_no_credentials(path: Path) -> None:
    for step in _steps(_load(path)):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, path.name


def test_project_ci_runs_make_test_on_cpu_torch() -> None:
    ci = _load(CI)
    assert set(ci["on"]) == {"push", "pull_request"}
    assert ci["permissions"] == {"contents": "read"}
    runs = [s.get("run", "") for s in ci["jobs"]["test"]["steps"]]
    make = next(i for i, r in enumerate(runs) if r.strip() == "make test")
    torch = next(i for i, r in enumerate(runs) if "torch==" in r)
    assert torch < make
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]
    setup = next(s for s in ci["jobs"]["test"]["steps"] if "setup-python" in s.get("uses", ""))
    assert setup["with"]["python-version"] == "3.11"
    assert setup["with"]["cache"] == "pip" and "constraints.txt" in setup["with"]["cache-dependency-path"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:.*\n\t.*pytest", makefile, re.M)


def test_project_ci_runs_the_action_end_to_end_builds_and_lints() -> None:
    ci = _load(CI)
    runs = [s.get("run", "").strip() for s in ci["jobs"]["test"]["steps"]]
    assert "make test" in runs
    makefile = (ROOT / "Makefile").read_text()
    # `make test` (what CI and .ci/run call) runs the suite, then the action under act
    assert re.search(r"^test:.*\n\t.*pytest -q\n\t.*pytest -q -m e2e tests/test_action_e2e.py", makefile, re.M)
    assert re.search(r"^action-e2e:.*\n\t.*pytest -q -m e2e tests/test_action_e2e.py", makefile, re.M)
    package = "\n".join(s.get("run", "") for s in ci["jobs"]["package"]["steps"])
    assert "python -m build" in package and "twine check --strict dist/*" in package
    assert "import torch" in package and "cg-gate report" in package  # the light install
    lint = "\n".join(s.get("run", "") for s in ci["jobs"]["workflows"]["steps"])
    assert "actionlint" in lint and "zizmor --offline" in lint and "action.yml" in lint


def test_release_builds_checks_publishes_and_moves_the_major_tag() -> None:
    release = _load(RELEASE)
    assert release["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    assert release["permissions"] == {}
    jobs = release["jobs"]
    assert jobs["build"]["permissions"] == {"contents": "read"}
    build = "\n".join(s.get("run", "") for s in jobs["build"]["steps"])
    assert "cg_gate/__init__.py" in build and "CHANGELOG.md" in build  # tag == version
    assert "python -m build" in build and "twine check --strict" in build
    publish = jobs["publish"]
    assert publish["needs"] == "build" and publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    assert [s["uses"] for s in publish["steps"]][-1] == PYPI_PUBLISH
    assert not any("password" in s.get("with", {}) for s in publish["steps"])  # trusted publishing
    tag = jobs["major-tag"]
    assert tag["needs"] == "publish" and tag["permissions"] == {"contents": "write"}
    move = tag["steps"][-1]
    assert 'major="${TAG%%.*}"' in move["run"] and "git/refs" in move["run"]
    assert move["env"]["TAG"] == "${{ github.ref_name }}"


def test_release_version_check_accepts_only_a_matching_tag_and_changelog(tmp_path: Path) -> None:
    step = next(s for s in _load(RELEASE)["jobs"]["build"]["steps"] if "CHANGELOG.md" in s.get("run", ""))
    (tmp_path / "cg_gate").mkdir()
    (tmp_path / "cg_gate" / "__init__.py").write_text('__version__ = "0.2.0"\n')

    def check(tag: str, changelog: str) -> int:
        (tmp_path / "CHANGELOG.md").write_text(changelog)
        return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, env={"TAG": tag,
                              "PATH": os.environ["PATH"]}, capture_output=True).returncode

    good = "# Changelog\n\n## [Unreleased]\n\n## [0.2.0] - 2026-12-01\n"
    assert check("v0.2.0", good) == 0
    assert check("v0.2.1", good) == 1
    assert check("v0.2.0", "# Changelog\n\n## [Unreleased]\n") == 1
    assert check("v0.2.0", "## [0.2.0] - someday\n") == 1
    assert check("v0.2.0", "## [0x2x0] - 2026-12-01\n") == 1  # dots are literal


def test_example_gate_is_read_only_and_hands_off_the_comment() -> None:
    gate = _load(GATE)
    assert list(gate["on"]) == ["pull_request"]
    assert gate["permissions"] == {"contents": "read"}
    (job,) = gate["jobs"].values()
    assert job["permissions"] == {"contents": "read", "actions": "read"}
    (step,) = [s for s in _steps(gate) if s.get("uses", "").endswith("/cg-gate@v0")]
    assert step["with"]["comment"] == "never"
    assert step["with"]["policy"].startswith("base/")  # policy from the base commit
    assert all(s.startswith("base/") for s in step["with"]["suites"].split())
    assert step["with"]["sae"].startswith("base/")
    uploads = [s for s in _steps(gate) if "upload-artifact" in s.get("uses", "")]
    assert [u["with"]["name"] for u in uploads] == ["cg-gate-pr"]
    assert all(u["if"] == "always()" for u in uploads)


def test_example_gate_reports_on_every_pull_request() -> None:
    """A required status check from a workflow with a path filter stays pending forever on a
    pull request that touches none of the paths: the gate has no filter, and no job-level
    condition that could skip it."""
    gate = _load(GATE)
    assert gate["on"]["pull_request"] is None  # no paths, paths-ignore or branches filter
    assert all("if" not in job for job in gate["jobs"].values())


def test_example_baseline_is_mains_stored_results_by_default() -> None:
    gate, baseline = _load(GATE), _load(BASELINE)
    (step,) = [s for s in _steps(gate) if s.get("uses", "").endswith("/cg-gate@v0")]
    assert step["with"]["baseline"] == "${{ steps.stored.outputs.baseline || 'base-model/model' }}"
    stored = next(s for s in _steps(gate) if s.get("id") == "stored")
    assert "cg-gate-baseline.yml" in stored["run"] and "--branch main" in stored["run"]
    assert "baseline=cg-gate-baseline/results.json" in stored["run"]
    assert "activations.npz" in stored["run"]  # paired regressions need the saliency too
    fallback = next(s for s in _steps(gate) if s.get("with", {}).get("path") == "base-model")
    assert fallback["if"] == "steps.stored.outputs.baseline == ''"
    # ... stored by the default branch's own gate run, also when that gate fails.
    assert baseline["on"]["push"] == {"branches": ["main"]} and "schedule" in baseline["on"]
    store = next(s for s in _steps(baseline) if s.get("with", {}).get("name") == "cg-gate-baseline")
    assert store["if"].startswith("always()")
    assert store["with"]["path"].split() == ["cg-gate-report/results.json",
                                             "cg-gate-report/activations.npz"]
    (job,) = baseline["jobs"].values()
    assert job["permissions"] == {"contents": "read", "security-events": "write"}


def test_example_protects_the_policy_with_codeowners() -> None:
    owners = (EXAMPLES.parent / "CODEOWNERS").read_text(encoding="utf-8")
    rules = dict(line.split(None, 1) for line in owners.splitlines()
                 if line.strip() and not line.startswith("#"))
    assert {"/policies/", "/suites/", "/saes/", "/.github/"} <= set(rules)
    readme = (EXAMPLES.parent.parent / "README.md").read_text(encoding="utf-8")
    assert "CODEOWNERS" in readme and "pull_request_target" in readme and "ruleset" in readme


def test_example_comment_workflow_is_fork_safe() -> None:
    gate, comment = _load(GATE), _load(COMMENT)
    trigger = comment["on"]["workflow_run"]
    assert trigger["workflows"] == [gate["name"]] and trigger["types"] == ["completed"]
    assert comment["permissions"] == {}
    (job,) = comment["jobs"].values()
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    uses = [s.get("uses", "") for s in job["steps"]]
    assert not any("checkout" in u for u in uses)  # never runs the pull request's code
    download = next(s for s in job["steps"] if "download-artifact" in s.get("uses", ""))
    assert download["with"]["name"] == "cg-gate-pr"
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    post = job["steps"][-1]
    assert "cg-gate ci github comment" in post["run"] and '--head-sha "$HEAD_SHA"' in post["run"]
    assert post["env"]["HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"
    install = next(s for s in job["steps"] if "pip install" in s.get("run", ""))
    assert "[model" not in install["run"] and "torch" not in install["run"]  # the light install


def test_sharded_example_runs_a_matrix_of_shards_and_one_merge_with_real_options() -> None:
    from click.testing import CliRunner

    from cg_gate.cli import cli

    wf = _load(SHARDED)
    shard, gate = wf["jobs"]["shard"], wf["jobs"]["gate"]
    assert shard["strategy"]["matrix"]["shard"] == [1, 2, 3, 4] and gate["needs"] == "shard"
    script = "\n".join(s.get("run", "") for job in (shard, gate) for s in job["steps"])
    assert '--shard "${SHARD}/4"' in script and "cg-gate merge shards --out report" in script
    # every option the workflow passes exists on the command it is passed to
    commands = re.findall(r"cg-gate ((?:ci github )?\w+)((?:\\\n|[^\n])*)", script)
    checked = set()
    for name, rest in commands:
        helptext = CliRunner().invoke(cli, [*name.split(), "--help"]).output
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", rest):
            assert option in helptext, (name, option)
            checked.add(option)
    assert {"--shard", "--sae", "--policy", "--out", "--comment", "--exit-code"} <= checked
