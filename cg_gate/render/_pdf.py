"""report.pdf: the report page through WeasyPrint with the print stylesheet.

Fonts come from `cg_gate/data/fonts` (no system font lookup for the text faces), the
results record is attached inside the PDF, and the url fetcher refuses anything but
`data:` URLs and files shipped with the package, so rendering never touches the network.

The file is archival: PDF/A-3b (XMP metadata declaring part 3, conformance B; fonts
embedded; an sRGB output intent) with results.json as its associated file
(`/AF`, relationship `Data`), and tagged (`/MarkInfo /Marked true` and a structure tree),
so assistive technology can read it. Title, subject and keywords come from the page's
`<title>` and `<meta>` tags, in both the document information and the XMP metadata.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cg_gate.errors import ConfigError
from cg_gate.record import dump_results
from cg_gate.record import GateRun
from cg_gate.render._env import FONTS_DIR, PACKAGE_DIR, document_time, templates_dir
from cg_gate.render._html import render_html_text

_FACES = (
    ("DejaVu Sans", "DejaVuSans.ttf", "normal", "normal"),
    ("DejaVu Sans", "DejaVuSans-Bold.ttf", "bold", "normal"),
    ("DejaVu Sans", "DejaVuSans-Oblique.ttf", "normal", "italic"),
    ("DejaVu Sans Mono", "DejaVuSansMono.ttf", "normal", "normal"),
)


def font_face_css() -> str:
    """@font-face rules pointing at the shipped TTFs with file:// URLs."""
    rules = []
    for family, filename, weight, style in _FACES:
        path = FONTS_DIR / filename
        if not path.is_file():
            raise ConfigError("shipped font missing", path=path,
                              fix="reinstall cg-gate; its package data includes data/fonts")
        rules.append(
            f'@font-face {{ font-family: "{family}"; src: url("{path.as_uri()}"); '
            f"font-weight: {weight}; font-style: {style}; }}"
        )
    return "\n".join(rules) + "\n"


def _allowed_roots() -> list[Path]:
    return [PACKAGE_DIR.resolve(), templates_dir().resolve()]


def local_only_fetcher():
    """A WeasyPrint URL fetcher that serves data: URLs and package files, nothing else."""
    from weasyprint.urls import URLFetcher

    roots = _allowed_roots()

    class LocalOnlyFetcher(URLFetcher):
        blocked: list[str] = []

        def fetch(self, url, headers=None):  # noqa: D401 - WeasyPrint's signature
            scheme = urlsplit(url).scheme.lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "file":
                path = Path(unquote(urlsplit(url).path)).resolve()
                if any(path.is_relative_to(root) for root in roots):
                    return super().fetch(url, headers)
            self.blocked.append(url)
            raise ValueError(f"cg-gate renders offline; refused to fetch {url}")

    return LocalOnlyFetcher(allowed_protocols=("file", "data"), timeout=1)


#: The PDF variant written: archival PDF/A-3b, which allows the embedded results.json.
PDF_VARIANT = "pdf/a-3b"


def _one_af_entry_per_file(document, pdf) -> None:
    """WeasyPrint lists an attachment in the catalog's /AF once from the names tree and
    once as a file specification; one entry per associated file is enough."""
    af = pdf.catalog.get("AF")
    if af:
        unique = list(dict.fromkeys(af))
        af.clear()
        af.extend(unique)


def render_pdf(run: GateRun, *, policy_source: str | None = None, results_json: str | None = None,
               html_text: str | None = None) -> bytes:
    """report.pdf bytes for `run`: same content as the HTML, paged, as tagged PDF/A-3b with
    results.json inside as its associated file.

    `results_json` (`dump_results(run)`) and `html_text` (`render_html_text(run, ...)`) are
    taken as given where the caller has made them already.
    """
    import weasyprint

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    when = document_time(run.manifest.finished_at)
    fetcher = local_only_fetcher()
    html = html_text if html_text is not None else render_html_text(run, policy_source=policy_source)
    document = weasyprint.HTML(
        string=html, base_url=templates_dir().as_uri() + "/", url_fetcher=fetcher
    )
    attachment = weasyprint.Attachment(
        string=results_json if results_json is not None else dump_results(run),
        name="results.json",
        description=f"cg-gate results, schema {run.schema_version}, run {run.manifest.run_id}",
        created=when,
        modified=when,
        relationship="Data",
        url_fetcher=fetcher,
    )
    stylesheet = weasyprint.CSS(string=font_face_css(), url_fetcher=fetcher)
    out = io.BytesIO()
    document.write_pdf(
        out,
        stylesheets=[stylesheet],
        attachments=[attachment],
        pdf_identifier=run.manifest.run_id.encode("utf-8"),
        uncompressed_pdf=False,
        pdf_variant=PDF_VARIANT,
        pdf_tags=True,
        finisher=_one_af_entry_per_file,
    )
    return out.getvalue()
