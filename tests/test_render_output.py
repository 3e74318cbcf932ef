"""Output sets: all or nothing in `--out`, with failures injected at every step."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cg_gate.errors import ConfigError, GateError
from cg_gate.render import RENDERERS, Renderer, check_writable, render_all, set_file_names
from cg_gate.render import _output
from fixtures.make_run import make_run

FORMATS = ["json", "md", "junit", "sarif"]


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: (os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
            for p in sorted(directory.iterdir())}


def _leftovers(out: Path) -> list[str]:
    """Staging or backup directories left beside `out`."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


@pytest.fixture()
def previous(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """`--out` holding a complete earlier set, a report.html of it and a user's own file."""
    out = tmp_path / "out"
    older = make_run()
    older.manifest.run_id = "20260101T000000Z-000000"
    render_all(older, [*FORMATS, "html"], out)
    (out / "notes.txt").write_text("mine\n")
    return out, _snapshot(out)


def test_a_new_directory_gets_the_whole_set_and_nothing_is_left_beside_it(tmp_path):
    out = tmp_path / "deep" / "out"
    written = render_all(make_run(), FORMATS, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written.values())
    assert _leftovers(out) == []
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_output._umask())


def test_a_renderer_raising_mid_set_leaves_the_previous_set(previous, monkeypatch):
    out, before = previous

    def broken(run, *, policy_source=None):
        raise RuntimeError("renderer crashed")

    monkeypatch.setitem(RENDERERS, "sarif", Renderer("sarif", "results.sarif", "x", broken))
    with pytest.raises(RuntimeError):
        render_all(make_run(), FORMATS, out)
    assert _snapshot(out) == before and _leftovers(out) == []


def test_a_full_disk_mid_set_exits_2_and_leaves_the_previous_set(previous):
    out, before = previous

    def full_disk(path: Path) -> None:
        path.write_bytes(b"half of the arrays")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(GateError) as err:
        render_all(make_run(), FORMATS, out, extra={"activations.npz": full_disk})
    assert err.value.exit_code == 2
    assert "No space left on device" in err.value.render()
    assert "left as they were" in err.value.render()
    assert _snapshot(out) == before and _leftovers(out) == []


@pytest.mark.parametrize("fail_at", range(1, 10))
def test_a_failure_while_moving_files_in_puts_the_previous_set_back(previous, monkeypatch,
                                                                     fail_at):
    out, before = previous
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(errno.EIO, "I/O error")
        return real_replace(src, dst)

    monkeypatch.setattr(_output.os, "replace", flaky_replace)
    with pytest.raises(GateError, match="I/O error"):
        render_all(make_run(), FORMATS, out)
    monkeypatch.setattr(_output.os, "replace", real_replace)
    assert _snapshot(out) == before and _leftovers(out) == []


def test_a_new_run_removes_the_old_runs_other_reports_but_no_user_file(previous):
    out, before = previous
    render_all(make_run(), ["md", "json"], out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "results.json", "summary.md"]
    assert (out / "notes.txt").read_text() == "mine\n"
    summary = (out / "summary.md").read_text()
    assert make_run().manifest.run_id in summary and "20260101T000000Z" not in summary


def test_re_rendering_the_same_run_keeps_its_other_files(tmp_path):
    out = tmp_path / "out"
    run = make_run()
    render_all(run, [*FORMATS, "html"], out)
    signed = run.model_copy(update={"signoff": run.signoff.model_copy(
        update={"approver": "R. Okafor"})})
    render_all(signed, ["html"], out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        RENDERERS[n].filename for n in [*FORMATS, "html"])
    assert "R. Okafor" in (out / "report.html").read_text()


def test_a_planted_symlink_is_replaced_not_followed(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (out / "summary.md").symlink_to(victim)
    render_all(make_run(), ["md"], out)
    assert victim.read_text() == "precious\n"
    assert not (out / "summary.md").is_symlink()
    assert (out / "summary.md").read_text().startswith("## ")


def test_a_directory_with_a_reports_name_is_an_error_not_deleted(tmp_path):
    out = tmp_path / "out"
    (out / "junit.xml").mkdir(parents=True)
    (out / "junit.xml" / "keep").write_text("x")
    with pytest.raises(GateError, match="is a directory"):
        render_all(make_run(), ["junit"], out)
    assert (out / "junit.xml" / "keep").read_text() == "x"
    assert _leftovers(out) == []


def test_set_files_are_the_registry_files_and_activations():
    assert set(set_file_names()) == {r.filename for r in RENDERERS.values()} | {
        "activations.npz"}
    with pytest.raises(ValueError, match="notes.txt"):
        _output.write_output_set("unused", {"notes.txt": b"x"})


# --------------------------------------------------------------------------- check_writable


def test_out_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "report"
    target.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        check_writable(target)
    with pytest.raises(ConfigError, match="is a file"):
        check_writable(target / "sub")


def test_out_in_a_directory_that_refuses_files_is_refused(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    (locked / "existing").mkdir(parents=True)
    _refuse_new_files_in(monkeypatch, locked)
    with pytest.raises(ConfigError) as err:
        check_writable(locked / "out")
    assert "not writable (Permission denied)" in err.value.render()
    assert err.value.exit_code == 2
    _refuse_new_files_in(monkeypatch, locked / "existing")
    with pytest.raises(ConfigError, match="existing is not writable"):
        check_writable(locked / "existing")
    assert check_writable(tmp_path / "fine") == tmp_path / "fine"
    assert not (tmp_path / "fine").exists()  # the check creates nothing


def test_run_refuses_a_bad_out_before_loading_anything(tmp_path, monkeypatch):
    import cg_gate.models
    import cg_gate.sae
    from cg_gate.cli import cli

    def boom(*_a, **_k):
        raise AssertionError("nothing may load before --out is checked")

    monkeypatch.setattr(cg_gate.models, "load_model", boom)
    monkeypatch.setattr(cg_gate.sae, "load_sae", boom)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where --out's parent should be")
    result = CliRunner().invoke(cli, [
        "run", "--model", str(tmp_path / "no-model"), "--sae", str(tmp_path / "no-sae"),
        "--suite", str(tmp_path / "no-suite.yaml"), "--out", str(blocker / "out"),
        "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "cannot create the output directory" in result.output
    assert "blocker" in result.output


def _refuse_new_files_in(monkeypatch, locked: Path) -> None:
    """Make `locked` refuse new files (permission bits do not stop root)."""
    real_stemp, real_dtemp = _output.tempfile.mkstemp, _output.tempfile.mkdtemp

    def guard(real):
        def make(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).resolve() == locked.resolve():
                raise PermissionError(errno.EACCES, "Permission denied")
            return real(*args, dir=dir, **kwargs)
        return make

    monkeypatch.setattr(_output.tempfile, "mkstemp", guard(real_stemp))
    monkeypatch.setattr(_output.tempfile, "mkdtemp", guard(real_dtemp))


def test_an_existing_out_whose_parent_refuses_files_stages_inside_it(previous, monkeypatch):
    out, before = previous
    _refuse_new_files_in(monkeypatch, out.parent)
    render_all(make_run(), FORMATS, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["notes.txt", *(RENDERERS[n].filename for n in FORMATS)])
    assert (out / "notes.txt").read_text() == "mine\n"


def test_a_symlinked_out_is_written_through_the_link(tmp_path):
    real = tmp_path / "elsewhere" / "reports"
    real.mkdir(parents=True)
    link = tmp_path / "out"
    link.symlink_to(real, target_is_directory=True)
    written = render_all(make_run(), ["md"], link)
    assert written["md"] == link / "summary.md"
    assert link.is_symlink() and (real / "summary.md").is_file()
    assert _leftovers(real) == [] and _leftovers(link) == []


def test_a_set_without_results_json_is_recognised_by_its_sarif(tmp_path):
    out = tmp_path / "out"
    run = make_run()
    render_all(run, ["html", "md", "junit", "sarif"], out)  # `cg-gate report`'s default set
    render_all(run, ["md", "json"], out)  # the same run again, other formats
    assert sorted(p.name for p in out.iterdir()) == [
        "junit.xml", "report.html", "results.json", "results.sarif", "summary.md"]
    other = make_run()
    other.manifest.run_id = "20270101T000000Z-ffffff"
    render_all(other, ["md"], out)
    assert sorted(p.name for p in out.iterdir()) == ["summary.md"]
