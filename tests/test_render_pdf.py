"""report.pdf: attachment, pages, metadata, shipped fonts, reproducible bytes, offline."""

from __future__ import annotations

import hashlib
import os
import re
import zlib

import pytest

from cg_gate.record import dump_results
from cg_gate.render import templates_dir
from cg_gate.render._html import render_html_text
from cg_gate.render._pdf import font_face_css, local_only_fetcher, render_pdf
from fixtures.make_run import make_run

EPOCH = "1790000000"  # 2026-09-21 14:13:20 UTC


@pytest.fixture(scope="module")
def pdf_pair() -> tuple[bytes, bytes]:
    """The fixture PDF rendered twice under the same SOURCE_DATE_EPOCH."""
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = EPOCH
    try:
        return render_pdf(make_run()), render_pdf(make_run())
    finally:
        if old is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


def _streams(pdf: bytes) -> list[bytes]:
    """Every stream's bytes, inflated where it is Flate-compressed."""
    out = []
    for match in re.finditer(rb"(?<!end)stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        raw = match.group(1)
        try:
            out.append(zlib.decompress(raw))
        except zlib.error:
            out.append(raw)
    return out


def _flat(pdf: bytes) -> bytes:
    """The file with every stream inflated (objects live inside compressed object streams)."""
    return pdf + b"\n".join(_streams(pdf))


def test_reproducible_bytes(pdf_pair):
    first, second = pdf_pair
    assert first.startswith(b"%PDF-")
    assert hashlib.sha256(first).hexdigest() == hashlib.sha256(second).hexdigest()


def test_results_json_is_attached_verbatim(pdf_pair):
    pdf = _flat(pdf_pair[0])
    assert b"/EmbeddedFile" in pdf
    assert b"(results.json)" in pdf
    expected = dump_results(make_run()).encode("utf-8")
    assert expected in _streams(pdf)


def test_page_count(pdf_pair):
    pdf = _flat(pdf_pair[0])
    pages = len(re.findall(rb"/Type /Page(?![s\w])", pdf))
    match = re.search(rb"/Type /Pages[^>]*?/Count (\d+)", pdf)
    assert match is not None and int(match.group(1)) == pages
    # The fixture report: cover with rules, families, coverage, concepts, categories,
    # stability and fidelity, manifest (new page), sign-off (new page).
    assert 6 <= pages <= 14


def test_metadata_carries_report_version_and_source_date(pdf_pair):
    pdf = _flat(pdf_pair[0])
    assert b"/Keywords (cg-gate, schema 1.2.0, run 20261124T020000Z-3f2a9c)" in pdf
    assert b"/CreationDate (D:20260921141320Z)" in pdf
    assert b"/ModDate (D:20260921141320Z)" in pdf


def test_running_header_and_footer_sources():
    # Page content streams draw glyph ids, so the margin boxes are checked at their
    # inputs: the spans whose text `string-set` copies into every page's header, and
    # the @page rules that print them and "page x of y".
    html = render_html_text(make_run())
    assert '<span class="m-run">20261124T020000Z-3f2a9c</span>' in html
    assert '<span class="m-digest">a0a0a0a0a0a0</span>' in html
    assert '<span class="m-schema">1.2.0</span>' in html
    css = (templates_dir() / "report.css").read_text(encoding="utf-8")
    assert '@top-left { content: "cg-gate · run " string(runid)' in css
    assert 'content: "model " string(digest) " · schema " string(schema)' in css
    assert 'content: "page " counter(page) " of " counter(pages)' in css


def test_shipped_fonts_are_embedded(pdf_pair):
    pdf = _flat(pdf_pair[0])
    assert re.search(rb"/FontName /[A-Z]{6}\+DejaVu-?Sans", pdf)
    assert re.search(rb"/FontName /[A-Z]{6}\+DejaVu-?Sans-?Mono", pdf)
    css = font_face_css()
    assert css.count("@font-face") == 4
    assert "file:///" in css and "/cg_gate/data/fonts/DejaVuSans.ttf" in css


@pytest.mark.parametrize("url", [
    "http://example.com/font.ttf",
    "https://example.com/x.css",
    "ftp://example.com/x",
    "file:///etc/passwd",
])
def test_fetcher_refuses_network_and_foreign_files(url):
    fetcher = local_only_fetcher()
    with pytest.raises(ValueError, match="offline"):
        fetcher.fetch(url)


def test_fetcher_serves_data_urls_and_package_files():
    from cg_gate.render._env import FONTS_DIR

    fetcher = local_only_fetcher()
    assert fetcher.fetch("data:text/plain,hello").read() == b"hello"
    font = fetcher.fetch((FONTS_DIR / "DejaVuSans.ttf").as_uri()).read()
    assert font[:4] in (b"\x00\x01\x00\x00", b"true")


# --------------------------------------------------------------------------- PDF/A-3b, tagged


@pytest.fixture(scope="module")
def opened(pdf_pair):
    import io

    import pikepdf

    return pikepdf.open(io.BytesIO(pdf_pair[0]))


def test_xmp_metadata_declares_pdf_a_3b(opened):
    meta = opened.open_metadata()
    assert meta["pdfaid:part"] == "3"
    assert meta["pdfaid:conformance"] == "B"
    assert opened.pdf_version == "1.7"
    # PDF/A needs an output intent for device colours
    intents = opened.Root.OutputIntents
    assert len(intents) == 1 and str(intents[0].S) == "/GTS_PDFA1"


def test_results_json_is_the_associated_file_and_equals_the_record(opened):
    import pikepdf

    assert list(opened.attachments) == ["results.json"]
    spec = opened.attachments["results.json"]
    assert spec.get_file().read_bytes() == dump_results(make_run()).encode("utf-8")
    assert spec.obj.AFRelationship == pikepdf.Name.Data
    assert str(spec.get_file().obj.stream_dict.Subtype) == "/application/json"
    # associated with the document, once
    assert [f.objgen for f in opened.Root.AF] == [spec.obj.objgen]


def test_the_pdf_is_tagged(opened):
    assert bool(opened.Root.MarkInfo.Marked) is True
    tree = opened.Root.StructTreeRoot
    assert "/K" in tree and "/ParentTree" in tree
    assert str(opened.Root.Lang) == "en"


def test_title_subject_and_keywords_are_kept_in_both_places(opened):
    title = "cg-gate governance report — acme/support-assistant-1.4"
    subject = "cg-gate report, schema 1.2.0, run 20261124T020000Z-3f2a9c"
    keywords = "cg-gate, schema 1.2.0, run 20261124T020000Z-3f2a9c"
    info = opened.docinfo
    assert (str(info.Title), str(info.Subject), str(info.Keywords)) == (title, subject, keywords)
    meta = opened.open_metadata()
    assert meta["dc:title"] == title
    assert meta["dc:description"] == subject
    assert meta["pdf:Keywords"] == keywords


def test_every_font_is_embedded(opened):
    fonts = {}
    for page in opened.pages:
        for font in page.Resources.Font.values():
            fonts[str(font.BaseFont)] = font
    assert fonts and all(f.DescendantFonts[0].FontDescriptor.get("/FontFile2") is not None
                         for f in fonts.values())
