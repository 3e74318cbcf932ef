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


# --------------------------------------------------------------------------- samples, judge, cost

# make_run_v1_2: three samples per safety item (sf-001 passes 2 of 3, sf-002 0 of 3, sf-003 3 of 3,
# sf-004 2 of 3), so sf-001 and sf-004 are flaky at a 2/3 pass rate; refusal (sf-001, sf-002)
# has 1 of 2 flaky at a mean pass rate of (2/3 + 0) / 2 = 33%, boundaries (sf-003, sf-004) 1 of 2
# at (1 + 2/3) / 2 = 83%. The judge's refusal rubric is calibrated (κ 0.40 [0.05, 0.75] on 10
# items, digest c…), the boundaries rubric is not. Cost, stage rows summed by hand: candidate
# 20 + 4 + 5 = 29.0 s, 900 + 1,500 = 2,400 tokens in, 620 out, 10 items / 29 s = 0.34 items/s;
# baseline 8 + 4 = 12.0 s, 900 + 1,930 = 2,830 in, 840 out, 10 / 12 = 0.83 items/s; the run
# 192.4 s, 5,230 in, 1,460 out, 10 / 192.4 = 0.05 items/s.
EXPECTED_V1_2_TAIL = """\
### Weakest categories

| Category | Suite | Severity | Mean score | Baseline | Failures | Flaky (pass rate) |
|---|---|---|---|---|---|---|
| refusal | safety | critical | 33% | 100% | 1/2 | 1/2 (33%) |
| account-access | support-qa | high | 33% | 67% | 2/3 | — |
| boundaries | safety | high | 75% | 100% | 0/2 | 1/2 (83%) |
| billing | support-qa | medium | 100% | 100% | 0/2 | — |
| shipping | support-qa | low | — | — | 0/0 | — |

### Samples

3 samples per item (temperature 0.7): **2 of 4** sampled items flaky; lowest pass rates: `sf-001` 67%, `sf-004` 67%

### Judge

Rubric judge `judges/grader`: agreement with people (Cohen's κ from `cg-gate judge calibrate`)

| Category | Agreement | Calibration |
|---|---|---|
| safety/boundaries | ⚠️ judge not calibrated | — |
| safety/refusal | κ 0.40 [0.05, 0.75] on 10 items | `cccccccccccc` |

### Cost

- Candidate: 29.0 s · 2,400 tokens in / 620 out · 0.34 items/s
- Baseline: 12.0 s · 2,830 tokens in / 840 out · 0.83 items/s
- **Total**: 192.4 s · 5,230 tokens in / 1,460 out · 0.05 items/s

[Full report](report.html) · [PDF](report.pdf) · [results.json](results.json) · [CI run](https://github.com/acme/support-model/actions/runs/42)
"""


def test_samples_judge_and_cost_sections_for_a_run_that_has_them():
    from fixtures.make_run import make_run_v1_2

    text = render_markdown_text(make_run_v1_2())
    assert text.endswith("\n" + EXPECTED_V1_2_TAIL)
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings[-4:] == ["### Weakest categories", "### Samples", "### Judge", "### Cost"]


def test_the_stored_v1_2_record_renders_the_same_sections(tmp_path):
    from fixtures.make_run import FIXTURE_V1_2
    from cg_gate.record import read_results

    assert render_markdown_text(read_results(FIXTURE_V1_2)).endswith("\n" + EXPECTED_V1_2_TAIL)


def test_a_run_without_samples_judge_or_cost_shows_none_of_them():
    text = render_markdown_text(make_run())
    for absent in ("### Samples", "### Judge", "### Cost", "Flaky", "κ", "items/s"):
        assert absent not in text, absent
    assert "| Category | Suite | Severity | Mean score | Baseline | Failures |\n" in text


def test_a_judge_without_any_calibration_says_so_per_category():
    from fixtures.make_run import make_run_v1_2

    run = make_run_v1_2()
    judge = run.manifest.judge.model_copy(update={"calibrations": []})
    text = render_markdown_text(run.model_copy(update={
        "manifest": run.manifest.model_copy(update={"judge": judge})}))
    assert "| safety/boundaries | ⚠️ judge not calibrated | — |" in text
    assert "| safety/refusal | ⚠️ judge not calibrated | — |" in text
    # a judge that judged no category and has no calibration on file: one line says it
    judge = judge.model_copy(update={"judged_categories": {}})
    text = render_markdown_text(run.model_copy(update={
        "manifest": run.manifest.model_copy(update={"judge": judge})}))
    assert ("Rubric judge `judges/grader`: agreement with people (Cohen's κ from "
            "`cg-gate judge calibrate`) · ⚠️ judge not calibrated") in text


def test_an_undefined_kappa_is_said_in_words():
    from fixtures.make_run import make_run_v1_2
    from cg_gate.record import Interval

    run = make_run_v1_2()
    cal = run.manifest.judge.calibrations[0].model_copy(update={"kappa": Interval(value=None)})
    judge = run.manifest.judge.model_copy(update={"calibrations": [cal]})
    text = render_markdown_text(run.model_copy(update={
        "manifest": run.manifest.model_copy(update={"judge": judge})}))
    assert "| safety/refusal | κ undefined on 10 compared items | `cccccccccccc` |" in text


def _many_flaky_run(n_items: int, n_judged: int, item_id: str = "item"):
    """make_run_v1_2 with `n_items` flaky items (pass rates 1/3 and 2/3) and `n_judged`
    uncalibrated judged categories."""
    from fixtures.make_run import OTHER_RUBRIC_DIGEST, make_run_v1_2
    from cg_gate.record import SampleRecord

    run = make_run_v1_2()
    template = next(it for it in run.items if it.flaky)
    items = [template.model_copy(update={
        "id": f"{item_id}-{i:05d}", "pass_rate": (1 if i % 2 else 2) / 3, "flaky": True,
        "samples": [SampleRecord(response="r", score=float(k == 0)) for k in range(3)]})
        for i in range(n_items)]
    judged = {f"suite/cat-{i:05d}": [OTHER_RUBRIC_DIGEST] for i in range(n_judged)}
    judge = run.manifest.judge.model_copy(update={"judged_categories": judged})
    return run.model_copy(update={"items": items, "manifest": run.manifest.model_copy(
        update={"judge": judge})})


def test_flaky_items_are_listed_lowest_pass_rate_first_and_cut_with_a_count():
    text = render_markdown_text(_many_flaky_run(12, 0))
    line = next(line for line in text.splitlines() if line.startswith("3 samples per item"))
    # pass rate 1/3 on the odd ids, 2/3 on the even ones; ties by id; five shown
    assert line == ("3 samples per item (temperature 0.7): **12 of 12** sampled items flaky; "
                    "lowest pass rates: `item-00001` 33%, `item-00003` 33%, `item-00005` 33%, "
                    "`item-00007` 33%, `item-00009` 33% and 7 more")


def test_flaky_items_of_several_suites_are_named_with_their_suite():
    run = _many_flaky_run(2, 0)
    items = [run.items[0], run.items[0].model_copy(update={"suite": "other"})]
    text = render_markdown_text(run.model_copy(update={"items": items}))
    assert "lowest pass rates: `other/item-00000` 67%, `safety/item-00000` 67%\n" in text


def test_thousands_of_flaky_items_and_judged_categories_stay_under_the_comment_limit():
    from cg_gate.ci import COMMENT_LIMIT, comment_body

    run = _many_flaky_run(5000, 5000, item_id="x" * 150)
    text = render_markdown_text(run)
    assert len(text.encode("utf-8")) < MAX_BYTES
    body = comment_body(text, key="gate")
    assert len(body) <= COMMENT_LIMIT and "truncated" not in body
    assert "… and 4,990 more judged categories (see results.json)" in text
    assert "and 4,995 more" in text  # the flaky list keeps five ids and counts the rest


def test_hostile_item_ids_categories_and_judge_names_stay_text():
    from hostile import HOSTILE, with_strings
    from fixtures.make_run import make_run_v1_2

    run = with_strings(make_run_v1_2(), HOSTILE)
    judge = run.manifest.judge.model_copy(update={
        "model": HOSTILE[0],
        "judged_categories": {h: [d] for h, d in zip(HOSTILE, [
            run.manifest.judge.rubric_digests[i % 2] for i in range(len(HOSTILE))])}})
    items = [it.model_copy(update={"id": HOSTILE[i % len(HOSTILE)], "flaky": True,
                                   "pass_rate": 0.5})
             for i, it in enumerate(run.items) if it.samples]
    run = run.model_copy(update={"items": items, "manifest": run.manifest.model_copy(
        update={"judge": judge})})
    text = render_markdown_text(run)
    tokens = _markdown_tokens(text)
    children = list(_inline_children(tokens))
    hrefs = [c.attrGet("href") for c in children if c.type == "link_open"]
    assert hrefs == ["report.html", "report.pdf", "results.json"]
    assert not [c for c in children if c.type in ("image", "em_open", "s_open")]
    assert not [t for t in [*tokens, *children] if t.type in ("html_inline", "html_block")]
    assert not {"\x1b", "\x00", "\r", "\u202e", "\u2066"} & set(text)
    seen = " ".join(c.content for c in children if c.type == "text")
    for needle in ("http://", "https://", "//evil", "www.", "@octocat", "@acme"):
        assert needle not in seen, needle
    # the judge table: three columns on every row, each category reads back as itself (in
    # the order of the raw names, ten shown)
    judge_table = next(t for t in _tables(tokens) if _cell_text(t[0][1]) == "Agreement")
    assert all(len(row) == 3 for row in judge_table)
    assert [_cell_text(row[0]) for row in judge_table[1:]] == [
        _clip(_one_line(h), 80) for h in sorted(HOSTILE)[:10]]
    # the samples line: the flaky items (suite/id, the suites being hostile strings too) read
    # back as themselves, each in its own code span
    para = next(t for t in tokens if t.type == "inline" and t.content.startswith("3 samples"))
    spans = [c.content for c in para.children if c.type == "code_inline"]
    assert len({it.suite for it in items}) > 1
    assert spans == [_clip(_one_line(f"{it.suite}/{it.id}"), 60) for it in
                     sorted(items, key=lambda it: (it.suite, it.id))[:5]]
    for table in _tables(tokens):
        assert len({len(row) for row in table}) == 1
