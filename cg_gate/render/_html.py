"""report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched)."""

from __future__ import annotations

from markupsafe import Markup

from cg_gate.record import GateRun
from cg_gate.render._env import document_time, jinja_env, read_template_text
from cg_gate.render._view import ReportView, build_view

TEMPLATE = "report.html.j2"
STYLESHEET = "report.css"


def created_stamp(run: GateRun) -> str:
    """The document date written into metadata: SOURCE_DATE_EPOCH, else the run's end."""
    return document_time(run.manifest.finished_at).strftime("%Y-%m-%dT%H:%M:%SZ")


def html_from_view(view: ReportView) -> str:
    """Template a prepared view into the report page."""
    template = jinja_env().get_template(TEMPLATE)
    # The stylesheet is our own file, not run data: it is inlined as-is.
    return template.render(v=view, css=Markup(read_template_text(STYLESHEET)))


def render_html_text(run: GateRun, *, policy_source: str | None = None) -> str:
    """The report page for `run` as text."""
    view = build_view(run, policy_source=policy_source, created=created_stamp(run))
    return html_from_view(view)
