"""What a release ships: one version, the licence, the changelog, a wheel with its data, a light
install that runs the report and CI commands without torch, and workflows zizmor finds clean.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import cg_gate

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
FIXTURE = ROOT / "tests" / "fixtures" / "results_v1.1.json"

# What the `model` and `pdf` extras install, by import name: the light install has none.
HEAVY = ("torch", "transformers", "sae_lens", "transformer_lens", "scipy", "safetensors",
         "gguf", "peft", "datasets", "tqdm", "weasyprint", "pandas", "pyarrow", "accelerate")


# --------------------------------------------------------------------------- version


def test_the_version_is_written_once() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cg_gate.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", cg_gate.__version__)
    hits = [p for p in (ROOT / "cg_gate").rglob("*.py")
            if re.search(r"^__version__\s*=", p.read_text(encoding="utf-8"), re.M)]
    assert hits == [ROOT / "cg_gate" / "__init__.py"]


def test_cli_version_is_the_package_version() -> None:
    proc = subprocess.run([sys.executable, "-m", "cg_gate", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"cg-gate, version {cg_gate.__version__}"


# --------------------------------------------------------------------------- licence, changelog


def test_licence_is_the_apache_2_text_and_declared() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply" in text
    assert len(re.findall(r"^\s+\d+\. [A-Z]", text, re.M)) == 9  # sections 1-9
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]


def test_changelog_follows_keep_a_changelog() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n")
    assert "https://keepachangelog.com/en/1.1.0/" in text
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", text, re.M)
    assert headings[0] == ("Unreleased", "")
    for version, date in headings[1:]:
        assert re.fullmatch(r"\d+\.\d+\.\d+", version) and re.fullmatch(r" - \d{4}-\d{2}-\d{2}", date)
    kinds = set(re.findall(r"^### (\w+)$", text, re.M))
    assert kinds and kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    for label in [h[0] for h in headings]:
        assert re.search(rf"^\[{re.escape(label)}\]: https://", text, re.M), label


# --------------------------------------------------------------------------- extras


def test_extras_split_the_light_install_from_the_gate() -> None:
    project = PYPROJECT["project"]
    core = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    assert core == {"click", "jinja2", "pyyaml", "pydantic", "numpy", "google-re2"}
    extras = project["optional-dependencies"]
    model = {canonicalize_name(Requirement(r).name) for r in extras["model"]}
    assert {"torch", "transformers", "sae-lens", "scipy", "safetensors", "peft"} <= model
    assert [Requirement(r).name for r in extras["pdf"]] == ["weasyprint"]
    assert extras["all"] == ["cg-gate[model,pdf]"]
    assert "cg-gate[model,pdf]" in extras["dev"]  # `make setup` installs -e '.[dev]'
    assert not core & model
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "-e '.[dev]'" in makefile


def _closure(names: set[str]) -> set[str]:
    """Installed distributions `names` pull in (extras' requirements left out)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


_LIGHT = textwrap.dedent("""
    import importlib.abc, json, sys
    HEAVY = set(sys.argv[1].split(","))

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in HEAVY:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocked())
    from cg_gate.cli import main
    try:
        main(sys.argv[2:])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    tops = sorted({m.split(".")[0] for m in list(sys.modules)})
    sys.stdout.flush()
    print("\\n@@" + json.dumps({"code": code, "modules": tops}))
""")


def _light(args: list[str], tmp_path: Path, **env: str) -> tuple[int, list[str], str]:
    """Run `cg-gate ARGS` with every model/PDF library made unimportable."""
    full = dict(os.environ) | {"NO_COLOR": "1"} | env
    proc = subprocess.run([sys.executable, "-c", _LIGHT, ",".join(HEAVY), *args], cwd=ROOT,
                          env=full, capture_output=True, text=True, timeout=120)
    head, _, tail = proc.stdout.rpartition("\n@@")
    assert tail, proc.stderr[-3000:]
    result = json.loads(tail)
    return result["code"], result["modules"], head + proc.stderr


def _third_party(modules: list[str]) -> dict[str, set[str]]:
    dists = metadata.packages_distributions()
    return {m: {canonicalize_name(d) for d in dists.get(m, [])} for m in modules
            if m not in sys.stdlib_module_names and not m.startswith("_") and m != "cg_gate"
            and m in dists}


def test_light_install_runs_report_and_ci_glue_without_model_libraries(tmp_path: Path) -> None:
    out = tmp_path / "report"
    code, modules, text = _light(
        ["report", str(FIXTURE), "--format", "html,md,junit,sarif,json,model-index",
         "--out", str(out)], tmp_path)
    assert code in (0, 1), text  # the fixture's gate verdict, not an error
    for name in ("report.html", "summary.md", "junit.xml", "results.sarif", "results.json"):
        assert (out / name).stat().st_size > 0, name
    gh_out, gh_summary = tmp_path / "gh_output", tmp_path / "gh_summary"
    gh_out.touch()
    gh_summary.touch()
    code2, modules2, text2 = _light(
        ["ci", "github", "publish", "--results", str(out / "results.json"), "--comment", "never"],
        tmp_path, GITHUB_OUTPUT=str(gh_out), GITHUB_STEP_SUMMARY=str(gh_summary),
        GITHUB_EVENT_NAME="push")
    assert code2 == 0, text2
    assert re.search(r"^verdict=(pass|fail)$", gh_out.read_text(), re.M)
    assert gh_summary.read_text().startswith("## ")
    code3, modules3, text3 = _light(["policy", "validate", str(ROOT / "policies" / "default.yaml")],
                                    tmp_path)
    assert code3 == 0, text3
    # Nothing outside the base install's dependency closure was imported.
    core = {Requirement(r).name for r in PYPROJECT["project"]["dependencies"]}
    allowed = _closure(core)
    for mods in (modules, modules2, modules3):
        assert not set(mods) & set(HEAVY)
        outside = {m: d for m, d in _third_party(mods).items() if not d & allowed}
        assert outside == {}, outside


def test_a_command_needing_an_extra_exits_2_and_names_it(tmp_path: Path) -> None:
    code, _, text = _light(["run", "--policy", str(ROOT / "policies" / "default.yaml"),
                            "--out", str(tmp_path / "x")], tmp_path)
    assert code == 2, text
    assert "pip install 'cg-gate[model]'" in text and "Traceback" not in text
    code, _, text = _light(["report", str(FIXTURE), "--format", "pdf",
                            "--out", str(tmp_path / "pdf")], tmp_path)
    assert code == 2, text
    assert "pip install 'cg-gate[pdf]'" in text and "Traceback" not in text


# --------------------------------------------------------------------------- wheel and sdist


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and sdist, built from a copy of the tree with the venv's setuptools."""
    pytest.importorskip("build")
    tmp = tmp_path_factory.mktemp("dist")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".venv", "build", "dist",
                                    ".git", "cg-gate-*")
    shutil.copytree(ROOT, src, ignore=ignore)
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                           str(tmp / "dist"), str(src)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp / "dist"


def test_wheel_carries_the_package_data_licence_and_metadata(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"cg_gate-{cg_gate.__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ("cg_gate/_templates/", "cg_gate/_policies/default.yaml", "cg_gate/data/schema/",
                 "cg_gate/data/suites/starter.yaml", "cg_gate/data/default/sae/",
                 "cg_gate/data/default/adapter/", "cg_gate/data/fonts/", "cg_gate/data/exemplars/"):
        assert any(n.startswith(path) for n in names), path
    source_data = {p.relative_to(ROOT).as_posix() for p in (ROOT / "cg_gate").rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts}
    assert source_data <= names  # every file of the package, data and code
    info = f"cg_gate-{cg_gate.__version__}.dist-info"
    assert f"{info}/licenses/LICENSE" in names
    meta = zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode()
    assert f"Version: {cg_gate.__version__}" in meta
    assert "License-Expression: Apache-2.0" in meta
    extras = set(re.findall(r"^Provides-Extra: (\S+)$", meta, re.M))
    assert {"model", "pdf", "all", "dev", "default-model"} <= extras
    assert 'Requires-Dist: torch<=2.14.1,>=2.4; extra == "model"' in meta
    assert not re.search(r"^Requires-Dist: torch[^;]*$", meta, re.M)  # never unconditional
    entry = zipfile.ZipFile(wheel).read(f"{info}/entry_points.txt").decode()
    assert "cg-gate = cg_gate.cli:main" in entry


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    pytest.importorskip("twine")
    (sdist,) = dist.glob("*.tar.gz")
    assert sdist.name == f"cg_gate-{cg_gate.__version__}.tar.gz"
    proc = subprocess.run([sys.executable, "-m", "twine", "check", "--strict",
                           *map(str, dist.iterdir())], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2


def _light_site(target: Path) -> Path:
    """A directory holding only the base install's dependency closure (links into this venv)."""
    core = {Requirement(r).name for r in PYPROJECT["project"]["dependencies"]}
    target.mkdir()
    for name in _closure(core):
        dist = metadata.distribution(name)
        for top in {f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] != ".."}:
            src = Path(dist.locate_file(top))
            if src.exists() and not (target / top).exists() and not top.endswith(".pth"):
                (target / top).symlink_to(src)
    return target


def test_the_built_wheel_runs_report_in_a_venv_without_torch(dist: Path, tmp_path: Path) -> None:
    """The light install for real: a fresh venv, the wheel, and only the base dependencies."""
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import site; print(site.getsitepackages()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "light-deps.pth").write_text(str(_light_site(tmp_path / "deps")) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True)
    env = {"PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin", "HOME": str(tmp_path),
           "NO_COLOR": "1", "LANG": "C.UTF-8"}
    probe = subprocess.run([py, "-c", "import cg_gate, importlib.util as u; "
                            "print(cg_gate.__file__); print(u.find_spec('torch'))"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert probe.stdout.splitlines()[0].startswith(site)  # the installed wheel, not the tree
    assert probe.stdout.splitlines()[1] == "None"  # torch is not importable at all
    out = tmp_path / "report"
    rep = subprocess.run([venv / "bin" / "cg-gate", "report", str(FIXTURE), "--format",
                          "html,md,junit,sarif,json", "--out", str(out)],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rep.returncode in (0, 1), rep.stderr  # the fixture's verdict, not an error
    for name in ("report.html", "summary.md", "junit.xml", "results.sarif", "results.json"):
        assert (out / name).stat().st_size > 0, name
    run = subprocess.run([venv / "bin" / "cg-gate", "run", "--policy",
                          str(ROOT / "policies" / "default.yaml"), "--out", str(tmp_path / "x")],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "pip install 'cg-gate[model]'" in run.stderr, run.stderr


# --------------------------------------------------------------------------- workflow lint


def test_zizmor_finds_nothing_in_the_workflows_and_the_action() -> None:
    zizmor = shutil.which("zizmor", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                         f"{os.environ.get('PATH', '')}")
    if zizmor is None:
        pytest.skip("zizmor is not installed")
    proc = subprocess.run(
        [zizmor, "--offline", "--format", "json", "--config", ".github/zizmor.yml",
         ".github/workflows/", ".github/dependabot.yml", "examples/model-repo/.github/workflows/",
         "action.yml"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=1)[:3000]
    assert proc.returncode == 0, proc.stderr
