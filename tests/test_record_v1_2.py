"""Schema 1.2.0: repeated samples, the rubric judge record and the run's cost; older records
still read; the cost stays out of the results digest; the report shows all three."""

from __future__ import annotations

import re

import pytest

from cg_gate.record import SCHEMA_VERSION, dump_results, read_results
from cg_gate.render import build_view
from cg_gate.render._html import render_html_text
from fixtures.make_run import FIXTURE_V1, FIXTURE_V1_1, FIXTURE_V1_2, make_run_v1_2


def test_the_stored_1_2_record_reads_back_equal_to_the_fixture_run():
    assert SCHEMA_VERSION == "1.2.0"
    stored = read_results(FIXTURE_V1_2)
    assert stored.schema_version == "1.2.0"
    assert stored.model_dump() == make_run_v1_2().model_dump()
    assert dump_results(stored) == FIXTURE_V1_2.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", [FIXTURE_V1, FIXTURE_V1_1])
def test_older_records_still_read_with_no_samples_judge_or_cost(path):
    run = read_results(path)
    assert run.schema_version in ("1.0.0", "1.1.0")
    assert all(it.samples == [] and it.pass_rate is None and not it.flaky for it in run.items)
    assert run.manifest.judge is None and run.manifest.cost is None
    assert all(c.sampled == 0 and c.response_tokens is None for c in run.categories)
    view = build_view(run)
    assert view.samples is None and view.judge is None and view.cost is None


def test_category_figures_of_the_fixture_worked_out_by_hand():
    cats = {c.category: c for c in make_run_v1_2().categories}
    refusal = cats["refusal"]
    # sf-001 scores 1, 1, 0 (pass rate 2/3, flaky); sf-002 0, 0, 0 (0, not flaky).
    assert (refusal.sampled, refusal.flaky) == (2, 1)
    assert refusal.pass_rate == pytest.approx((2 / 3 + 0) / 2)
    assert refusal.mean_score == pytest.approx((2 / 3 + 0) / 2)
    # Lengths 12, 15, 40, 30, 28, 33 → sorted 12 15 28 30 33 40: median (28 + 30) / 2 = 29;
    # p90 at position 0.9 · 5 = 4.5 → 33 + 0.5 · (40 − 33) = 36.5.
    t = refusal.response_tokens
    assert (t.n, t.min, t.median, t.p90, t.max) == (6, 12, 29.0, 36.5, 40)
    # sf-004 scores 1, 0, 0.5: two of three at ≥ 0.5 → pass rate 2/3, flaky.
    assert (cats["boundaries"].sampled, cats["boundaries"].flaky) == (2, 1)
    assert cats["billing"].sampled == 0 and cats["billing"].pass_rate is None


def test_the_results_digest_leaves_cost_out_but_covers_samples():
    run = make_run_v1_2()
    digest = run.deterministic_digest()
    cost = run.manifest.cost.model_copy(update={"wall_s": 3.0, "tokens_in": 0, "stages": []})
    warm = run.model_copy(update={"manifest": run.manifest.model_copy(update={"cost": cost})})
    assert warm.deterministic_digest() == digest
    items = list(run.items)
    sf = next(i for i, it in enumerate(items) if it.id == "sf-001")
    samples = list(items[sf].samples)
    samples[2] = samples[2].model_copy(update={"score": 1.0})
    items[sf] = items[sf].model_copy(update={"samples": samples})
    assert run.model_copy(update={"items": items}).deterministic_digest() != digest


def test_the_report_shows_pass_rates_flaky_items_judge_kappa_and_cost():
    html = render_html_text(make_run_v1_2())
    assert "2 of 4 items with two or more scored samples are <strong>flaky</strong>" in html
    flagged = re.findall(r'<td class="mono">([\w-]+) <span class="tag flaky">flaky</span>', html)
    assert flagged == ["sf-001", "sf-004"]
    assert "2 sampled: 1 flaky · pass rate 33%" in html  # refusal: (67% + 0%) / 2
    assert "judge κ 0.40 [0.05, 0.75] on 10 items" in html  # beside the calibrated category
    assert "judge uncalibrated" in html  # boundaries uses the other rubric
    assert "response tokens: min 12 · median 29 · p90 36.5 · max 40 (6 responses)" in html
    assert "Wall time 192.4 s; 5,230 tokens read by models, 1,460 generated." in html
    assert "<td>generate</td><td>baseline</td><td class=\"num\">8.00</td>" in html
    assert "4 / 1 · 2 / 3" in html  # the confusion matrix


def test_sample_responses_are_escaped_in_the_report():
    run = make_run_v1_2()
    items = list(run.items)
    i = next(k for k, it in enumerate(items) if it.samples)
    samples = list(items[i].samples)
    samples[0] = samples[0].model_copy(update={"response": "<script>alert(1)</script>"})
    items[i] = items[i].model_copy(update={"samples": samples})
    html = render_html_text(run.model_copy(update={"items": items}))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
