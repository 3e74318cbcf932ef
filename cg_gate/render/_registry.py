"""The renderer registry and `render_all`, which writes a run's reports as one set.

Every renderer is a function of the run record (never mutating it) that returns the
file's bytes. `render_all` renders every requested format in memory first and then writes
them as one output set (`write_output_set`: staged beside `--out`, moved in together), so a
renderer or a disk that fails part-way leaves the previous set in place, never a mix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cg_gate.errors import ConfigError
from cg_gate.record import GateRun, dump_results
from cg_gate.render._output import FileWriter, check_writable, write_output_set


class RenderFunction(Protocol):
    def __call__(self, run: GateRun, *, policy_source: str | None = None) -> bytes: ...


@dataclass(frozen=True)
class Renderer:
    """One output format: its `--format` name, file name and render function."""

    name: str
    filename: str
    description: str
    render: RenderFunction
    # shared intermediate products the function is also called with, each made once per
    # render_all: "results_json" (dump_results(run)) and "html_text" (the report page)
    takes: tuple[str, ...] = ()
    default: bool = True  # written when no --format is given


def _render_json(run: GateRun, *, policy_source: str | None = None,
                 results_json: str | None = None) -> bytes:
    return (results_json if results_json is not None else dump_results(run)).encode("utf-8")


def _html(run: GateRun, *, policy_source: str | None = None, html_text: str | None = None) -> bytes:
    from cg_gate.render._html import render_html_text

    if html_text is None:
        html_text = render_html_text(run, policy_source=policy_source)
    return html_text.encode("utf-8")


def _pdf(run: GateRun, *, policy_source: str | None = None, results_json: str | None = None,
         html_text: str | None = None) -> bytes:
    from cg_gate.render._pdf import render_pdf  # WeasyPrint is imported only when asked for

    return render_pdf(run, policy_source=policy_source, results_json=results_json, html_text=html_text)


def _shared_products(run: GateRun, wanted: set[str], policy_source: str | None) -> dict[str, str]:
    products: dict[str, str] = {}
    if "results_json" in wanted:
        products["results_json"] = dump_results(run)
    if "html_text" in wanted:
        from cg_gate.render._html import render_html_text

        products["html_text"] = render_html_text(run, policy_source=policy_source)
    return products


def _md(run: GateRun, *, policy_source: str | None = None) -> bytes:
    from cg_gate.render._markdown import render_markdown

    return render_markdown(run, policy_source=policy_source)


def _junit(run: GateRun, *, policy_source: str | None = None) -> bytes:
    from cg_gate.render._junit import render_junit

    return render_junit(run, policy_source=policy_source)


def _sarif(run: GateRun, *, policy_source: str | None = None) -> bytes:
    from cg_gate.render._sarif import render_sarif

    return render_sarif(run, policy_source=policy_source)


def _model_index(run: GateRun, *, policy_source: str | None = None) -> bytes:
    from cg_gate.render._model_index import render_model_index

    return render_model_index(run, policy_source=policy_source)


RENDERERS: dict[str, Renderer] = {
    "json": Renderer("json", "results.json", "the run record itself", _render_json,
                     takes=("results_json",)),
    "html": Renderer("html", "report.html", "self-contained HTML governance report", _html,
                     takes=("html_text",)),
    "pdf": Renderer("pdf", "report.pdf", "paged PDF report with results.json attached", _pdf,
                    takes=("results_json", "html_text")),
    "md": Renderer("md", "summary.md", "compact Markdown for job summaries and PR comments", _md),
    "junit": Renderer("junit", "junit.xml", "one JUnit testcase per rule", _junit),
    "sarif": Renderer("sarif", "results.sarif", "SARIF 2.1.0 for code scanning", _sarif),
    "model-index": Renderer("model-index", "model-index.yaml",
                            "Hugging Face model-card model-index", _model_index, default=False),
}
"""The report formats, keyed by their `--format` name (the CLI's choices come from here)."""

DEFAULT_FORMATS: tuple[str, ...] = tuple(name for name, r in RENDERERS.items() if r.default)


def parse_formats(formats: str | Iterable[str]) -> list[str]:
    """'html,pdf' or ['html', 'pdf'] → checked, de-duplicated format names in order."""
    if isinstance(formats, str):
        formats = formats.split(",")
    names: list[str] = []
    for raw in formats:
        name = raw.strip().lower()
        if not name:
            continue
        if name not in RENDERERS:
            raise ConfigError(
                f"unknown report format {raw.strip()!r}",
                fix=f"use one or more of: {', '.join(RENDERERS)} (comma-separated)",
            )
        if name not in names:
            names.append(name)
    if not names:
        raise ConfigError("no report format given",
                          fix=f"pass --format with one or more of: {', '.join(RENDERERS)}")
    return names


def render_all(run: GateRun, formats: str | Iterable[str], out_dir: Path, *,
               policy_source: str | None = None,
               extra: Mapping[str, bytes | FileWriter] | None = None) -> dict[str, Path]:
    """Render `formats` of `run` into `out_dir` as one output set; returns format → path.

    `policy_source` is the policy file's path relative to the repository root, used for
    SARIF and JUnit locations; by default the path recorded in the run is used. `extra`
    adds files to the set that are not reports (file name → bytes or a writer, e.g.
    activations.npz). Nothing in `out_dir` changes unless every file was written; see
    `cg_gate.render._output` for how the previous set and unrelated files are treated.
    """
    names = parse_formats(formats)
    out_dir = Path(out_dir)
    check_writable(out_dir)
    # results.json is also the PDF's attachment and the HTML page is also what the PDF
    # lays out: make each once for every renderer that takes it
    wanted = {product for name in names for product in RENDERERS[name].takes}
    shared = _shared_products(run, wanted, policy_source)
    files: dict[str, bytes | FileWriter] = {}
    for name in names:
        renderer = RENDERERS[name]
        extra_products = {product: shared[product] for product in renderer.takes}
        files[renderer.filename] = renderer.render(run, policy_source=policy_source,
                                                   **extra_products)
    files.update(extra or {})
    paths = write_output_set(out_dir, files, run_id=run.manifest.run_id)
    return {name: paths[RENDERERS[name].filename] for name in names}
