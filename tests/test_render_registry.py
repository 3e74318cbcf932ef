"""Renderer registry, render_all, atomic writes, and that renderers never mutate the run."""

from __future__ import annotations

import pytest

from cg_gate.errors import ConfigError, GateError
from cg_gate.record import dump_results
from cg_gate.render import RENDERERS, Renderer, parse_formats, render_all
from cg_gate.render import _registry
from fixtures.make_run import make_run

CHEAP = ["md", "junit", "sarif", "json", "model-index", "html"]


def test_registry_keys_are_the_format_choices():
    assert set(RENDERERS) == {"html", "pdf", "md", "junit", "sarif", "json", "model-index"}
    assert {r.filename for r in RENDERERS.values()} == {
        "report.html", "report.pdf", "summary.md", "junit.xml", "results.sarif",
        "results.json", "model-index.yaml"}


@pytest.mark.parametrize("given, expected", [
    ("html,pdf", ["html", "pdf"]),
    (" MD , junit ,md", ["md", "junit"]),
    (["sarif", "json"], ["sarif", "json"]),
])
def test_parse_formats(given, expected):
    assert parse_formats(given) == expected


@pytest.mark.parametrize("given", ["html,docx", "", ",,"])
def test_bad_formats_are_config_errors_listing_known_ones(given):
    with pytest.raises(ConfigError) as err:
        parse_formats(given)
    text = err.value.render()
    for name in RENDERERS:
        assert name in text


def test_render_all_writes_every_requested_file(tmp_path):
    written = render_all(make_run(), CHEAP, tmp_path)
    assert set(written) == set(CHEAP)
    for name, path in written.items():
        assert path == tmp_path / RENDERERS[name].filename
        assert path.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        RENDERERS[n].filename for n in CHEAP)
    assert (tmp_path / "results.json").read_text(encoding="utf-8") == dump_results(make_run())


def test_renderers_do_not_mutate_the_run(tmp_path):
    run = make_run()
    before = run.model_dump(mode="json")
    render_all(run, CHEAP, tmp_path)
    assert run.model_dump(mode="json") == before


def test_a_renderer_failing_midway_leaves_no_report_behind(tmp_path, monkeypatch):
    (tmp_path / "summary.md").write_text("previous summary\n", encoding="utf-8")

    def broken(run, *, policy_source=None):
        raise RuntimeError("renderer crashed half-way")

    monkeypatch.setitem(RENDERERS, "junit", Renderer("junit", "junit.xml", "broken", broken))
    with pytest.raises(RuntimeError):
        render_all(make_run(), ["md", "junit", "sarif"], tmp_path)
    # The earlier format was not written either, the old file is intact, and no temp files.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.md"]
    assert (tmp_path / "summary.md").read_text(encoding="utf-8") == "previous summary\n"


def test_a_write_interrupted_midway_leaves_no_partial_file(tmp_path, monkeypatch):
    import os

    real_fsync = os.fsync

    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(GateError, match="disk full"):
        render_all(make_run(), ["md"], tmp_path)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert list(tmp_path.iterdir()) == []
    # no staging or backup directory (".<out>.new-…", ".<out>.old-…") is left beside --out
    assert [p.name for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}.")] == []


def test_registry_module_imports_no_heavy_renderer():
    # WeasyPrint is imported by the pdf renderer only when it runs.
    assert "weasyprint" not in vars(_registry)


def test_reports_get_the_usual_file_mode(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        written = render_all(make_run(), ["md", "json"], tmp_path)
    finally:
        os.umask(old)
    assert {oct(p.stat().st_mode & 0o777) for p in written.values()} == {oct(0o644)}
