"""Fuzzed records through the CI-facing renderers: junit.xml and results.sarif stay valid
against their published schemas, summary.md stays inert, whatever the strings hold."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cg_gate.render._junit import render_junit
from cg_gate.render._markdown import render_markdown
from cg_gate.render._sarif import render_sarif
from fixtures.make_run import make_run
from hostile import HOSTILE, free_path_count, with_strings
from published_schemas import junit_problems, sarif_problems

# Any code point, lone surrogates and controls included, with the pieces that break XML,
# JSON and Markdown mixed in often enough to meet each other.
PIECES = ["\x00", "\x01", "\x08", "\x0b", "\x1b[2J", "\x7f", "\x85", "\ud800", "\udfff",
          "\ufffe", "\uffff", "]]>", "<![CDATA[", "&", "<", ">", '"', "'", "`", "|", "\\",
          "\r", "\n", "](", "@", "//", "www.", "<!--", "-->", "\u2028", "\U0001f600"]
TEXT = st.lists(st.one_of(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                                 exclude_categories=()), max_size=12),
                          st.sampled_from(PIECES + HOSTILE)),
                max_size=6).map("".join)
RUN = make_run()


def test_every_free_text_field_is_fuzzed():
    # ids, titles, messages, labels, paths, digests, URLs, item texts ...
    assert free_path_count(RUN) > 300


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, min_size=1, max_size=40))
def test_fuzzed_records_render_valid_junit_sarif_and_inert_markdown(strings):
    run = with_strings(RUN, strings)

    junit = render_junit(run)
    assert junit_problems(junit) == []

    sarif = render_sarif(run)
    sarif.decode("utf-8")  # strict: no lone surrogates made it through
    assert sarif_problems(json.loads(sarif)) == []

    from test_render_md import _inline_children, _markdown_tokens

    text = render_markdown(run).decode("utf-8")
    tokens = _markdown_tokens(text)
    children = list(_inline_children(tokens))
    hrefs = {c.attrGet("href") for c in children if c.type == "link_open"}
    assert hrefs <= {"report.html", "report.pdf", "results.json"}
    assert not [t for t in [*tokens, *children]
                if t.type in ("image", "html_inline", "html_block")]
