"""Reports: HTML, PDF, Markdown, JUnit, SARIF, JSON and model-index from one `GateRun`."""

from cg_gate.render._env import templates_dir
from cg_gate.render._markdown import cell as markdown_cell
from cg_gate.render._output import check_writable, set_file_names, write_output_set
from cg_gate.render._registry import DEFAULT_FORMATS, RENDERERS, Renderer, parse_formats, render_all
from cg_gate.render._schema_json import results_schema, results_schema_text
from cg_gate.render._view import ReportView, build_view

__all__ = [
    "DEFAULT_FORMATS",
    "RENDERERS",
    "Renderer",
    "ReportView",
    "build_view",
    "check_writable",
    "markdown_cell",
    "parse_formats",
    "render_all",
    "results_schema",
    "results_schema_text",
    "set_file_names",
    "templates_dir",
    "write_output_set",
]
