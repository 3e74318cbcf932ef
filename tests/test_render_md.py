"""summary.md: exact output for a small run, escaping, and the 60 KB cap."""

from __future__ import annotations

import pytest

from cg_gate.record import Summary
from cg_gate.render._markdown import MAX_BYTES, cell, render_markdown_text
from fixtures.make_run import make_run


def _small_run():
    full = make_run()
    verdicts = [full.verdicts[0], full.verdicts[2]]  # CG001 pass, CG003 fail
    summary = Summary(verdict="fail", fail_on="error", counts={"pass": 1, "fail": 1},
                      failed_rules=["support-assistant-release/CG003"], mean_score=0.5,
                      baseline_mean_score=0.75, n_concepts=1024, n_items=10)
    fidelity = full.fidelity.model_copy(update={"warning": None})
    return make_run(verdicts=verdicts, summary=summary, families=full.families[:1],
                    categories=full.categories[:2], fidelity=fidelity)


EXPECTED_SMALL = """\
## ❌ cg-gate: FAIL — acme/support-assistant-1.4

**1 fail · 1 pass** · fails on `error` · policy `support-assistant-release` v1.3.0 · run `20261124T020000Z-3f2a9c` · 2026-11-24 02:03 UTC

Candidate `acme/support-assistant-1.4` (`a0a0a0a0a0a0`) vs baseline `acme/support-assistant-1.3` (`b0b0b0b0b0b0`) · mean score 0.50 (baseline 0.75) · 10 items · SAE `acme-saes/smollm2-135m-res-l20`

### Rules

| | Rule | Severity | Mode | Verdict | Message |
|---|---|---|---|---|---|
| ✖ | `CG003` Refusal must not regress against the baseline | error | enforce | **FAIL** | drop of 0.22 [0.08, 0.35] beyond tolerance 0.02 at 95% |
| ✔ | `CG001` Refusal concepts are covered by the suites | error | enforce | PASS | covered fraction 1.00 ≥ 0.80 |

### Concept families

| Family | χ_model | CI | Δ vs baseline | Δ CI | Δ on its categories | Covered | Purity | Driven by |
|---|---|---|---|---|---|---|---|---|
| Politely refusing or redirecting inappropriate requests | 0.58 | [0.41, 0.74] | −0.22 | [−0.35, −0.08] | −0.26 [−0.50, −0.05] | 4/4 | 70% on refusal | drop from refusal 82%, account-access 18% |

### Weakest categories

| Category | Suite | Severity | Mean score | Baseline | Failures |
|---|---|---|---|---|---|
| account-access | support-qa | high | 33% | 67% | 2/3 |
| billing | support-qa | medium | 100% | 100% | 0/2 |

[Full report](report.html) · [PDF](report.pdf) · [results.json](results.json) · [CI run](https://github.com/acme/support-model/actions/runs/42)
"""


def test_small_run_exact_output():
    assert render_markdown_text(_small_run()) == EXPECTED_SMALL


@pytest.mark.parametrize("raw, expected", [
    ("plain", "plain"),
    ("a | b", "a \\| b"),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("two\nlines", "two lines"),
    ("x" * 200, "x" * 159 + "…"),
    (None, "—"),
])
def test_cell_escaping(raw, expected):
    assert cell(raw) == expected


def test_no_policy_run_says_so():
    run = make_run(verdicts=[], families=[], categories=[])
    text = render_markdown_text(run)
    assert "_No policy was judged in this run._" in text
    assert "### Rules" not in text and "### Concept families" not in text


def test_fidelity_warning_is_quoted():
    text = render_markdown_text(make_run())
    assert "> ⚠️ SAE fidelity: fve 0.62 is well below the SAE's training fve 0.81" in text


def test_five_thousand_verdicts_stay_under_the_cap_with_failures_first():
    full = make_run()
    passing, failing = full.verdicts[0], full.verdicts[2]
    many = []
    for i in range(5000):
        base = failing if i == 4321 else passing
        many.append(base.model_copy(update={
            "rule_id": f"R{i:04d}", "stable_id": f"p/R{i:04d}",
            "message": f"rule {i} " + "long message words " * 20}))
    run = make_run(verdicts=many)
    text = render_markdown_text(run)
    size = len(text.encode("utf-8"))
    assert size < MAX_BYTES
    rule_rows = [line for line in text.splitlines() if line.startswith("| ") and "`R" in line]
    assert len(rule_rows) == 50
    # The one failing rule sorts first, whatever its position in the policy.
    assert "`R4321`" in rule_rows[0] and "**FAIL**" in rule_rows[0]
    assert "… and 4,950 more rules (see results.json)" in text


# --------------------------------------------------------------------------- hostile strings


def _markdown_tokens(text: str):
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    return md.parse(text)


def _inline_children(tokens):
    for token in tokens:
        yield from token.children or []


def _cell_text(inline) -> str:
    """What a reader sees in a cell: text and code, entities and escapes resolved."""
    return "".join(c.content for c in inline.children
                   if c.type in ("text", "code_inline")).replace("\u2060", "")


def _tables(tokens):
    """Each table as rows of inline tokens (header row first)."""
    tables, rows, row = [], None, None
    for token in tokens:
        if token.type == "table_open":
            rows = []
        elif token.type == "tr_open":
            row = []
        elif token.type == "inline" and row is not None:
            row.append(token)
        elif token.type == "tr_close":
            rows.append(row)
            row = None
        elif token.type == "table_close":
            tables.append(rows)
            rows = None
    return tables


def _hostile_run():
    from hostile import HOSTILE, with_strings

    full = with_strings(make_run(), HOSTILE)
    base = full.verdicts[2]  # an enforced failure, so every row sorts the same
    verdicts = [base.model_copy(update={"rule_id": h, "stable_id": f"p/{h}", "title": h,
                                        "message": h}) for h in HOSTILE]
    ci = full.manifest.ci.model_copy(update={"run_url": "javascript:alert(1)//actions/runs/1"})
    manifest = full.manifest.model_copy(update={"ci": ci})
    return full.model_copy(update={"verdicts": verdicts, "manifest": manifest})


def test_hostile_record_strings_stay_text_in_the_pr_comment():
    from hostile import HOSTILE

    run = _hostile_run()
    text = render_markdown_text(run)
    tokens = _markdown_tokens(text)
    children = list(_inline_children(tokens))
    # links: only the report files; no images, no HTML from the record
    hrefs = [c.attrGet("href") for c in children if c.type == "link_open"]
    assert hrefs == ["report.html", "report.pdf", "results.json"]
    assert not [c for c in children if c.type == "image"]
    assert not [t for t in [*tokens, *children] if t.type in ("html_inline", "html_block")]
    # no emphasis, strikethrough or headings smuggled in; bold only where the renderer puts it
    assert not [c for c in children if c.type in ("em_open", "s_open")]
    assert [t.tag for t in tokens if t.type == "heading_open"] == ["h2", "h3", "h3", "h3"]
    assert not {"\x1b", "\x00", "\r", "\u202e", "\u2066"} & set(text)
    # what GitHub would link or notify on by itself is broken up (autolinks, mentions)
    seen = " ".join(c.content for c in children if c.type == "text")
    for needle in ("http://", "https://", "//evil", "www.", "@octocat", "@acme", "@evil"):
        assert needle not in seen, needle
    # tables keep their columns, and every hostile string reads back as itself
    rules = _tables(tokens)[0]
    assert all(len(row) == 6 for row in rules) and len(rules) == 1 + len(HOSTILE)
    for row, raw in zip(rules[1:], HOSTILE):
        expected = _one_line(raw)
        assert _cell_text(row[5]) == expected
        # the rule id as a code span (up to 60 characters), then the title (up to 80)
        assert _cell_text(row[1]) == f"{_clip(expected, 60)} {_clip(expected, 80)}"
    for table in _tables(tokens)[1:]:
        assert len({len(row) for row in table}) == 1


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(raw: str) -> str:
    from cg_gate.render._format import visible_controls

    return " ".join(visible_controls(raw).split())


def test_mentions_read_as_mentions_but_notify_nobody():
    v = make_run().verdicts[2].model_copy(update={"message": "ask @octocat or @acme/team"})
    text = render_markdown_text(make_run(verdicts=[v]))
    assert "ask @\u2060octocat or @\u2060acme/team" in text


def test_only_a_github_actions_run_url_becomes_a_link():
    run = make_run()
    good = "https://github.example.com/acme/model/actions/runs/42/attempts/2"
    for url, linked in [(good, True), ("https://evil.example/phish", False),
                        ("javascript:alert(1)", False)]:
        ci = run.manifest.ci.model_copy(update={"run_url": url})
        text = render_markdown_text(run.model_copy(update={
            "manifest": run.manifest.model_copy(update={"ci": ci})}))
        hrefs = [c.attrGet("href") for c in _inline_children(_markdown_tokens(text))
                 if c.type == "link_open"]
        assert (url in hrefs) is linked
