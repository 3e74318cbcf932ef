"""action.yml: its metadata is consistent, and its shell steps do what they promise.

The metadata checks read the YAML. The step checks run the composite action's own bash
scripts with a stand-in `cg-gate` on PATH that records its arguments, so the mapping of
inputs to `cg-gate run` flags (suites split on newlines and commas, extra-args split like
a shell without expanding anything) is tested as GitHub would run it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cg_gate.ci import OUTPUT_NAMES

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)
INPUT_REF = re.compile(r"\binputs\.([A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def action() -> dict[str, Any]:
    return yaml.safe_load(ACTION.read_text(encoding="utf-8"))


def _steps(action: dict[str, Any]) -> list[dict[str, Any]]:
    return action["runs"]["steps"]


def _step(action: dict[str, Any], step_id: str) -> dict[str, Any]:
    (step,) = [s for s in _steps(action) if s.get("id") == step_id]
    return step


def _expressions(node: Any) -> list[str]:
    """Every `${{ ... }}` body and bare `if:` condition inside a step, recursively."""
    if isinstance(node, str):
        return EXPR.findall(node)
    if isinstance(node, list):
        return [e for item in node for e in _expressions(item)]
    if isinstance(node, dict):
        out = []
        for key, value in node.items():
            if key == "if" and isinstance(value, str) and "${{" not in value:
                out.append(value)
            else:
                out.extend(_expressions(value))
        return out
    return []


# --------------------------------------------------------------------------- metadata


def test_is_a_composite_action_with_bash_steps(action: dict[str, Any]) -> None:
    assert action["runs"]["using"] == "composite"
    for step in _steps(action):
        if "run" in step:
            assert step["shell"] == "bash", step["name"]
        else:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@v\d+", step["uses"]), step["uses"]


def test_every_declared_input_is_used_and_every_used_input_declared(
        action: dict[str, Any]) -> None:
    used = {name for e in _expressions(_steps(action)) for name in INPUT_REF.findall(e)}
    assert used == set(action["inputs"])


def test_inputs_the_brief_names_are_declared_with_safe_defaults(action: dict[str, Any]) -> None:
    inputs = action["inputs"]
    for name in ("policy", "checkpoint", "baseline", "sae", "suites", "output-dir", "formats",
                 "fail-on", "comment", "device", "cache-dir", "extra-args", "github-token",
                 "python-version", "torch-index-url", "upload-sarif"):
        assert name in inputs and inputs[name].get("description"), name
    assert inputs["policy"]["required"] is True and inputs["checkpoint"]["required"] is True
    assert inputs["output-dir"]["default"] == "cg-gate-report"
    assert inputs["fail-on"]["default"] == "error"
    assert inputs["comment"]["default"] == "auto"
    assert inputs["device"]["default"] == "cpu"
    assert inputs["upload-sarif"]["default"] == "false"
    assert inputs["github-token"]["default"] == "${{ github.token }}"
    assert inputs["python-version"]["default"] == "3.11"
    assert inputs["torch-index-url"]["default"] == "https://download.pytorch.org/whl/cpu"


def test_no_expression_is_pasted_into_a_script(action: dict[str, Any]) -> None:
    for step in _steps(action):
        assert "${{" not in step.get("run", ""), step["name"]


def test_every_output_is_set_by_a_step(action: dict[str, Any]) -> None:
    step_ids = {s.get("id") for s in _steps(action)}
    for name, spec in action["outputs"].items():
        match = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.([\w-]+) \}\}", spec["value"])
        assert match, name
        step_id, output = match.groups()
        assert step_id in step_ids, name
        step = _step(action, step_id)
        if step_id == "publish":
            assert output in OUTPUT_NAMES  # written by `cg-gate ci github publish`
            assert "cg-gate ci github publish" in step["run"]
        else:
            assert f"{output}=" in step["run"], name
    assert set(OUTPUT_NAMES) <= set(action["outputs"])


def test_step_references_point_at_earlier_steps(action: dict[str, Any]) -> None:
    seen: set[str] = set()
    for step in _steps(action):
        for expr in _expressions(step):
            for ref in re.findall(r"\bsteps\.([\w-]+)\.", expr):
                assert ref in seen, f"{step['name']} refers to later/unknown step {ref}"
        if "id" in step:
            seen.add(step["id"])


def test_reports_survive_a_failing_gate(action: dict[str, Any]) -> None:
    """Upload, publish and the final gate run even when an enforced rule failed."""
    for step_id in ("upload", "publish"):
        assert _step(action, step_id)["if"].startswith("always()")
    steps = _steps(action)
    assert steps[-1]["name"] == "Gate" and steps[-1]["if"] == "always()"
    sarif = [s for s in steps if "upload-sarif" in s.get("uses", "")]
    assert sarif and "inputs.upload-sarif == 'true'" in sarif[0]["if"]
    upload = _step(action, "upload")
    assert upload["with"]["name"] == "${{ steps.resolve.outputs.artifact-name }}"


# --------------------------------------------------------------------------- shell steps


def _run_script(script: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    full = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{Path(sys.executable).parent}"
                    f"{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(tmp_path / "home"), "GITHUB_OUTPUT": str(tmp_path / "out.txt")}
    full.update(env)
    (tmp_path / "out.txt").touch()
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          env=full, cwd=tmp_path, capture_output=True, text=True, timeout=60)


def _fake_cg_gate(tmp_path: Path, exit_code: int, writes_sarif: bool = False) -> Path:
    """A `cg-gate` that records its argv (NUL-separated) and exits with `exit_code`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    record = tmp_path / "argv.bin"
    fake = bin_dir / "cg-gate"
    sarif = ('prev=""; for a in "$@"; do [ "$prev" = --out ] && touch "$a/results.sarif"; '
             'prev="$a"; done\n') if writes_sarif else ""
    fake.write_text(f"#!/usr/bin/env bash\nprintf '%s\\0' \"$@\" > '{record}'\n{sarif}"
                    f"exit {exit_code}\n")
    fake.chmod(0o755)
    return record


def _outputs(tmp_path: Path) -> dict[str, str]:
    lines = (tmp_path / "out.txt").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line)


def _run_env(**over: str) -> dict[str, str]:
    env = {"IN_POLICY": "policies/gate.yaml", "IN_CHECKPOINT": "./model", "IN_BASELINE": "",
           "IN_SAE": "", "IN_SUITES": "", "IN_OUTPUT_DIR": "cg-gate-report", "IN_FORMATS": "",
           "IN_FAIL_ON": "error", "IN_DEVICE": "cpu", "IN_EXTRA_ARGS": "",
           "CG_CACHE_DIR": "/cache/cg"}
    env.update(over)
    return env


def test_run_step_minimal_flags(action: dict[str, Any], tmp_path: Path) -> None:
    record = _fake_cg_gate(tmp_path, 0)
    stale = tmp_path / "cg-gate-report"
    stale.mkdir()
    for name in ("results.json", "summary.md", "results.sarif"):
        (stale / name).write_text("from an earlier run")
    (stale / "notes.txt").write_text("the user's")
    proc = _run_script(_step(action, "run")["run"], _run_env(), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in stale.iterdir()] == ["notes.txt"]
    assert record.read_bytes().split(b"\0")[:-1] == [
        b"run", b"--policy", b"policies/gate.yaml", b"--model", b"./model",
        b"--out", b"cg-gate-report", b"--fail-on", b"error", b"--device", b"cpu",
        b"--cache-dir", b"/cache/cg"]
    assert _outputs(tmp_path) == {"exit-code": "0"}


def test_run_step_maps_every_input_and_never_fails_itself(action: dict[str, Any],
                                                          tmp_path: Path) -> None:
    record = _fake_cg_gate(tmp_path, 1, writes_sarif=True)
    (tmp_path / "out dir").mkdir()
    env = _run_env(
        IN_BASELINE="org/base", IN_SAE="saes/layer6", IN_FORMATS="html,pdf,sarif",
        IN_SUITES="suites/a.yaml, suites/b c.jsonl\n\n  suites/d.csv  \n",
        IN_OUTPUT_DIR="out dir", IN_FAIL_ON="warn", IN_DEVICE="cuda",
        IN_EXTRA_ARGS="--online --system-prompt 'be brief; $(touch pwned)' --seed=3 `id` $HOME",
    )
    proc = _run_script(_step(action, "run")["run"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    argv = [a.decode() for a in record.read_bytes().split(b"\0")[:-1]]
    assert argv == [
        "run", "--policy", "policies/gate.yaml", "--model", "./model", "--out", "out dir",
        "--fail-on", "warn", "--device", "cuda", "--cache-dir", "/cache/cg",
        "--baseline", "org/base", "--sae", "saes/layer6", "--format", "html,pdf,sarif",
        "--suite", "suites/a.yaml", "--suite", "suites/b c.jsonl", "--suite", "suites/d.csv",
        "--online", "--system-prompt", "be brief; $(touch pwned)", "--seed=3", "`id`", "$HOME",
    ]
    assert not (tmp_path / "pwned").exists()
    assert _outputs(tmp_path) == {"exit-code": "1", "sarif": "true"}


def test_run_step_unbalanced_extra_args_is_exit_two(action: dict[str, Any],
                                                    tmp_path: Path) -> None:
    record = _fake_cg_gate(tmp_path, 0)
    proc = _run_script(_step(action, "run")["run"], _run_env(IN_EXTRA_ARGS="--x 'open"),
                       tmp_path)
    assert proc.returncode == 0
    assert "::error title=cg-gate::extra-args could not be split" in proc.stdout
    assert not record.exists()
    assert _outputs(tmp_path) == {"exit-code": "2"}


@pytest.mark.parametrize(("verdict", "run_exit", "expected", "says"), [
    ("pass", "0", 0, "verdict pass"),
    ("fail", "1", 1, "::error title=cg-gate::verdict fail: enforced rules fail (release/CG003)"),
    ("error", "2", 2, "::error title=cg-gate::verdict error"),
    # nothing published: cg-gate run's exit code decides, a missing one is "not judged"
    ("", "1", 1, "verdict fail"),
    ("", "", 2, "verdict error"),
    # a crash that exits 1 wrote no results: publish says error, and so does the step
    ("error", "1", 2, "disagrees"),
    ("pass", "1", 2, "disagrees"),
    ("", "7", 2, "verdict error"),
])
def test_gate_step_exits_with_the_published_verdict(action: dict[str, Any], tmp_path: Path,
                                                    verdict: str, run_exit: str, expected: int,
                                                    says: str) -> None:
    step = _step(action, "gate")
    assert step is _steps(action)[-1] and step["if"] == "always()"
    env = {"VERDICT": verdict, "RUN_EXIT": run_exit, "FAILED_RULES": "release/CG003"}
    proc = _run_script(step["run"], env, tmp_path)
    assert proc.returncode == expected
    assert says in proc.stdout
    assert ("::error" in proc.stdout) is (expected != 0)
    assert _outputs(tmp_path) == {"exit-code": str(expected)}


def _action_dir(tmp_path: Path, version: str = "1.2.3", constraints: str = "click==8.5.1\n") -> Path:
    action_path = tmp_path / "action"
    (action_path / "cg_gate").mkdir(parents=True, exist_ok=True)
    (action_path / "cg_gate" / "__init__.py").write_text(f'"""x"""\n\n__version__ = "{version}"\n')
    (action_path / "constraints.txt").write_text(constraints)
    (action_path / "pyproject.toml").write_text("[project]\n")
    return action_path


def _resolve(action: dict[str, Any], tmp_path: Path, **env: str) -> dict[str, str]:
    if not (tmp_path / "action").exists():
        _action_dir(tmp_path)
    (tmp_path / "out.txt").write_text("")
    base = {"GITHUB_JOB": "gate", "JOB_INDEX": "0", "IN_CACHE_DIR": "",
            "IN_OUTPUT_DIR": "cg-gate-report", "IN_ARTIFACT_NAME": "", "RUNNER_OS": "Linux",
            "RUNNER_ARCH": "X64", "GITHUB_ACTION_PATH": str(tmp_path / "action"),
            "KEY_INPUTS": "model  saes/l6 suites/a.yaml cpu ", "PIP_INPUTS": "3.11 2.13.0 idx",
            "GITHUB_RUN_ID": "1"}
    proc = _run_script(_step(action, "resolve")["run"], base | env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    return _outputs(tmp_path)


def test_resolve_step_names_are_unique_per_leg_and_output_dir(action: dict[str, Any],
                                                              tmp_path: Path) -> None:
    leg0 = _resolve(action, tmp_path)
    assert re.fullmatch(r"cg-gate-report-gate-0-[0-9a-f]{8}", leg0["artifact-name"])
    assert leg0["cache-dir"] == str(tmp_path / "home" / ".cache" / "cg-gate")
    assert leg0["hub-cache"] == str(tmp_path / "home" / ".cache" / "huggingface" / "hub")
    assert leg0["comment-key"] == leg0["artifact-name"].removeprefix("cg-gate-report-")
    leg1 = _resolve(action, tmp_path, JOB_INDEX="1")
    other_dir = _resolve(action, tmp_path, IN_OUTPUT_DIR="reports/b")
    names = {leg0["artifact-name"], leg1["artifact-name"], other_dir["artifact-name"]}
    assert len(names) == 3
    named = _resolve(action, tmp_path, IN_ARTIFACT_NAME="cg-gate-report", IN_CACHE_DIR="/c",
                     HF_HOME="/hf")
    assert named["artifact-name"] == "cg-gate-report" and named["cache-dir"] == "/c"
    assert named["hub-cache"] == "/hf/hub"


def test_cache_keys_follow_the_content_not_the_run(action: dict[str, Any],
                                                   tmp_path: Path) -> None:
    """Gate-cache keys: OS, arch, cg-gate version, the inputs; pip keys: its dependency files."""
    first = _resolve(action, tmp_path)
    assert first["version"] == "1.2.3"
    assert first["gate-key-prefix"] == "cg-gate-Linux-X64-v1.2.3-"
    assert re.fullmatch(r"[0-9a-f]{16}", first["gate-key-inputs"])
    assert first["pip-key"].startswith(first["pip-key-prefix"])
    assert re.fullmatch(r"cg-gate-pip-Linux-X64-[0-9a-f]{16}-[0-9a-f]{16}", first["pip-key"])
    # Another run, attempt or leg of the same inputs: the same keys.
    again = _resolve(action, tmp_path, GITHUB_RUN_ID="2", JOB_INDEX="3")
    for key in ("gate-key-prefix", "gate-key-inputs", "pip-key"):
        assert again[key] == first[key], key
    # Another checkpoint: another gate key, the same pip key.
    other_model = _resolve(action, tmp_path, KEY_INPUTS="model@v2  saes/l6 suites/a.yaml cpu ")
    assert other_model["gate-key-inputs"] != first["gate-key-inputs"]
    assert other_model["pip-key"] == first["pip-key"]
    # Another cg-gate version: another prefix (older entries are not restored).
    _action_dir(tmp_path, version="1.3.0")
    newer = _resolve(action, tmp_path)
    assert newer["gate-key-prefix"] == "cg-gate-Linux-X64-v1.3.0-"
    # Other pins: another pip key under the same prefix (restored as a fallback).
    _action_dir(tmp_path, version="1.2.3", constraints="click==8.5.2\n")
    pins = _resolve(action, tmp_path)
    assert pins["pip-key"] != first["pip-key"]
    assert pins["pip-key-prefix"] == first["pip-key-prefix"]
    other_torch = _resolve(action, tmp_path, PIP_INPUTS="3.11 2.14.0 idx")
    assert other_torch["pip-key-prefix"] != first["pip-key-prefix"]


def _fingerprint(action: dict[str, Any], tmp_path: Path, matched: str) -> dict[str, str]:
    (tmp_path / "out.txt").write_text("")
    env = {"HUB_CACHE": str(tmp_path / "hub"), "CG_CACHE_DIR": str(tmp_path / "cg"),
           "PREFIX": "cg-gate-Linux-X64-v1.2.3-abc-", "MATCHED": matched}
    proc = _run_script(_step(action, "cache-key")["run"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    return _outputs(tmp_path)


def test_gate_caches_are_saved_only_when_their_content_changed(action: dict[str, Any],
                                                               tmp_path: Path) -> None:
    assert _fingerprint(action, tmp_path, "") == {"key": "", "unchanged": "false"}  # nothing
    (tmp_path / "cg" / "responses").mkdir(parents=True)
    (tmp_path / "cg" / "responses" / "ab12.json").write_text("{}")
    first = _fingerprint(action, tmp_path, "")
    assert re.fullmatch(r"cg-gate-Linux-X64-v1\.2\.3-abc-[0-9a-f]{16}", first["key"])
    assert first["unchanged"] == "false"
    # Restored from that key, nothing added: nothing to save, whichever inputs saved it.
    digest = first["key"].rsplit("-", 1)[1]
    assert _fingerprint(action, tmp_path, first["key"])["unchanged"] == "true"
    assert _fingerprint(action, tmp_path, f"cg-gate-Linux-X64-v1.2.3-other-{digest}") == {
        "key": first["key"], "unchanged": "true"}
    # The run added an entry (here: to the hub cache): a new key.
    (tmp_path / "hub" / "models--org--m" / "blobs").mkdir(parents=True)
    (tmp_path / "hub" / "models--org--m" / "blobs" / "f00d").write_text("w")
    grown = _fingerprint(action, tmp_path, first["key"])
    assert grown["unchanged"] == "false" and grown["key"] != first["key"]


def test_caches_are_restored_and_saved_by_split_actions(action: dict[str, Any]) -> None:
    """Restore and save are separate steps; saves run after a failing gate, only on news."""
    uses = {s.get("id") or s["name"]: s for s in _steps(action) if "uses" in s}
    assert not any(s["uses"].startswith("actions/cache@") for s in uses.values())
    pip_save = uses["Save pip's cache"]
    gate_save = uses["Save the gate caches"]
    assert uses["pip-cache"]["uses"] == uses["gate-cache"]["uses"] == "actions/cache/restore@v5"
    assert pip_save["uses"] == gate_save["uses"] == "actions/cache/save@v5"
    for save in (pip_save, gate_save):
        assert save["if"].startswith("always()") and "inputs.cache == 'true'" in save["if"]
    assert "steps.pip-cache.outputs.cache-hit != 'true'" in pip_save["if"]
    assert "steps.cache-key.outputs.unchanged != 'true'" in gate_save["if"]
    assert gate_save["with"]["key"] == "${{ steps.cache-key.outputs.key }}"
    assert gate_save["with"]["path"] == uses["gate-cache"]["with"]["path"]
    assert "run_id" not in ACTION.read_text(encoding="utf-8")
    order = [s.get("id") or s["name"] for s in _steps(action)]
    assert order.index("gate-cache") < order.index("run") < order.index("cache-key") \
        < order.index("Save the gate caches")


def _fake_tools(tmp_path: Path, names: tuple[str, ...]) -> Path:
    """Stand-ins that append `name args...` to a log (python, sudo, brew, ldconfig, ...)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    for name in names:
        tool = bin_dir / name
        tool.write_text(f"#!/usr/bin/env bash\necho \"{name} $*\" >> '{log}'\n")
        tool.chmod(0o755)
    return log


@pytest.mark.parametrize(("runner_os", "version", "index", "torch_call"), [
    ("Linux", "2.13.0", "https://download.pytorch.org/whl/cpu",
     "python -m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"),
    ("Linux", "2.13.0", "", "python -m pip install torch==2.13.0"),
    ("Linux", "", "https://download.pytorch.org/whl/cpu",
     "python -m pip install torch --index-url https://download.pytorch.org/whl/cpu"),
    ("macOS", "2.13.0", "https://download.pytorch.org/whl/cpu",
     "python -m pip install torch==2.13.0"),
])
def test_install_step_takes_torch_from_the_cpu_index_first(
        action: dict[str, Any], tmp_path: Path, runner_os: str, version: str, index: str,
        torch_call: str) -> None:
    log = _fake_tools(tmp_path, ("python", "sudo", "brew", "ldconfig", "cg-gate"))
    action_path = _action_dir(tmp_path)
    install = next(s for s in _steps(action) if s["name"] == "Install cg-gate")
    env = {"TORCH_VERSION": version, "TORCH_INDEX_URL": index, "RUNNER_OS": runner_os,
           "GITHUB_ACTION_PATH": str(action_path)}
    proc = _run_script(install["run"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    pip = [c for c in calls if c.startswith("python -m pip install")]
    assert pip == [
        "python -m pip install --upgrade pip",
        torch_call,
        f"python -m pip install -c {action_path}/constraints.txt {action_path}[model,pdf]",
    ]
    assert calls[-1] == "cg-gate --version"
