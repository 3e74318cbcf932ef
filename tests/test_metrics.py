"""Properties, intervals, validation and record converters of cg_gate.metrics."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import cg_gate.metrics._compute as compute_module
from cg_gate.errors import ConfigError
from cg_gate.metrics import MISSING, NORMAL, UNDER, compute, concept_records, coverage_summaries
from cg_gate.metrics._ci import bootstrap_interval, bootstrap_weights
from cg_gate.record import ConceptRecord, CoverageSummary


def random_case(n_items: int, n_concepts: int, density: float, seed: int, n_suites: int = 3):
    rng = np.random.default_rng(seed)
    a = sp.random(n_items, n_concepts, density=density, random_state=seed, format="csr")
    suites = [f"s{i % n_suites}" for i in range(n_items)]
    scores = rng.random(n_items)
    return a, suites, scores


# --------------------------------------------------------------------------- properties


def test_chi_bench_averages_to_one_per_suite():
    a, suites, scores = random_case(300, 50, 0.1, seed=1)
    m = compute(a, suites, scores, ci="delta")
    np.testing.assert_allclose(m.chi_bench.mean(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(m.chi_bench_all.mean(), 1.0, atol=1e-12)


def test_chi_bench_matches_naive_formula():
    a, suites, scores = random_case(120, 30, 0.2, seed=2, n_suites=2)
    m = compute(a, suites, scores, ci="delta")
    dense = a.toarray()
    names = np.array(suites)
    k = dense.shape[1]
    for b, name in enumerate(m.suite_names):
        d = dense[names == name]
        naive = d.mean(axis=0) / (d.sum() / (k * d.shape[0]))
        np.testing.assert_allclose(m.chi_bench[b], naive, rtol=1e-12)


def test_scaling_saliency_leaves_chi_bench_and_chi_model_unchanged():
    a, suites, scores = random_case(200, 40, 0.15, seed=3)
    m1 = compute(a, suites, scores, ci="delta")
    m2 = compute(a * 37.5, suites, scores, ci="delta")
    np.testing.assert_allclose(m1.chi_bench, m2.chi_bench, rtol=1e-12)
    np.testing.assert_allclose(m1.chi_model_all, m2.chi_model_all, rtol=1e-12)
    assert (m1.coverage == m2.coverage).all()


def test_nan_scores_are_excluded_from_chi_model():
    a, suites, scores = random_case(300, 20, 0.3, seed=4, n_suites=1)
    scores = scores.copy()
    unscored = np.arange(300) % 4 == 0
    scores[unscored] = np.nan
    m = compute(a, suites, scores, min_support=5, ci="delta")
    kept = ~unscored
    m_kept = compute(a[kept], [s for s, k in zip(suites, kept) if k], scores[kept], min_support=5, ci="delta")
    np.testing.assert_allclose(m.chi_model_all, m_kept.chi_model_all, rtol=1e-12)
    # ... but unscored items still count for support and coverage.
    assert (m.support_all >= m_kept.support_all).all()
    assert (m.support_all > m_kept.support_all).any()
    dense = a.toarray()
    naive = (dense[kept] * scores[kept, None]).sum(0) / dense[kept].sum(0)
    np.testing.assert_allclose(m.chi_model_all, naive, rtol=1e-12)


def test_min_support_boundary():
    # Concept 0 fires on exactly 4 scored items (plus one unscored).
    dense = np.zeros((6, 2))
    dense[:5, 0] = 1.0
    dense[:, 1] = 1.0
    scores = np.array([1, 0, 1, 0, np.nan, 1.0])
    at = compute(sp.csr_matrix(dense), ["s"] * 6, scores, min_support=4, ci="delta")
    above = compute(sp.csr_matrix(dense), ["s"] * 6, scores, min_support=5, ci="delta")
    assert at.chi_model_all[0] == pytest.approx(0.5)
    assert np.isnan(above.chi_model_all[0])
    assert np.isnan(above.ci_low[0]) and np.isnan(above.lift[0])
    assert above.chi_model_all[1] == pytest.approx(3 / 5)


def test_zero_saliency_suite_is_all_missing():
    dense = np.array([[1.0, 2.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    m = compute(sp.csr_matrix(dense), ["a", "a", "b", "b"], np.ones(4), min_support=1)
    assert m.chi_bench[1].tolist() == [0.0, 0.0]
    assert (m.coverage[1] == MISSING).all()
    # Cross-suite χ_bench averages in the 0s: concept 0 has χ = 2·1/4 in a, 0 in b.
    assert m.chi_bench_all[0] == pytest.approx(0.25)


def test_coverage_all_missing_only_if_missing_everywhere():
    # eps = 0.3. Suite a: χ = 4·(2·col)/16 = [0, 0, 2, 2]; suite b: χ = 4·(2·col)/8 = col.
    # Concept 0: χ 0 in a and 0.25 ≤ eps in b → missing in both, so missing overall.
    # Concept 1: χ 0.5 in b only → not missing overall although its mean χ 0.25 ≤ eps.
    dense = np.array(
        [[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 4.0], [0.25, 0.5, 2.0, 1.25], [0.25, 0.5, 2.0, 1.25]]
    )
    m = compute(sp.csr_matrix(dense), ["a", "a", "b", "b"], np.ones(4), eps=0.3, min_support=1)
    np.testing.assert_allclose(m.chi_bench[1], [0.25, 0.5, 2.0, 1.25])
    assert m.coverage[:, 0].tolist() == [MISSING, MISSING]
    assert m.coverage[:, 1].tolist() == [MISSING, NORMAL]
    assert m.coverage_all[0] == MISSING
    assert m.coverage_all[1] == NORMAL  # χ_all = 0.25 ≥ τ_under 0.1 → normal, never missing
    m2 = compute(sp.csr_matrix(dense), ["a", "a", "b", "b"], np.ones(4), eps=0.3, tau_under=0.3, min_support=1)
    assert m2.coverage_all[1] == UNDER


@pytest.mark.parametrize("fmt", ["coo", "csc", "lil", "dense"])
def test_any_input_format_gives_same_result(fmt):
    a, suites, scores = random_case(80, 12, 0.3, seed=5)
    ref = compute(a, suites, scores, min_support=3, ci="delta")
    other = a.toarray() if fmt == "dense" else a.asformat(fmt)
    m = compute(other, suites, scores, min_support=3, ci="delta")
    np.testing.assert_allclose(m.chi_bench, ref.chi_bench)
    np.testing.assert_allclose(m.chi_model_all, ref.chi_model_all)
    assert (m.support == ref.support).all()


def test_explicit_zeros_and_duplicates_are_canonicalised_without_mutating_input():
    # Item 0 stores concept 1 twice (1 + 2) and an explicit zero for concept 0.
    rows = np.array([0, 0, 0, 1])
    cols = np.array([0, 1, 1, 0])
    vals = np.array([0.0, 1.0, 2.0, 5.0])
    coo = sp.coo_matrix((vals, (rows, cols)), shape=(2, 2))
    before = coo.data.copy()
    m = compute(coo, ["s", "s"], [1.0, 0.0], min_support=1)
    assert m.support_all.tolist() == [1, 1]  # the stored zero is not support
    assert (coo.data == before).all()
    # χ_bench: total 8; concept 0 → 2·5/8, concept 1 → 2·3/8
    np.testing.assert_allclose(m.chi_bench[0], [10 / 8, 6 / 8])


def test_suites_in_order_of_first_appearance():
    a, _, scores = random_case(6, 3, 1.0, seed=6)
    m = compute(a, ["z", "b", "z", "m", "b", "m"], scores, min_support=1)
    assert m.suite_names == ("z", "b", "m")
    assert m.n_items.tolist() == [2, 2, 2]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "case, match",
    [
        ("suites_len", "suite names for"),
        ("scores_len", "expected"),
        ("negative", "negative"),
        ("score_high", r"outside \[0, 1\]"),
        ("score_low", r"outside \[0, 1\]"),
        ("empty_items", "empty"),
        ("empty_concepts", "empty"),
        ("nan_saliency", "NaN or infinite"),
        ("bad_ci", "unknown CI method"),
        ("bad_confidence", "confidence"),
        ("bad_thresholds", "tau_under"),
        ("bad_min_support", "min_support"),
    ],
)
def test_bad_input_raises_config_error(case, match):
    a = sp.csr_matrix(np.array([[1.0, 0.0], [0.5, 2.0]]))
    suites, scores, kwargs = ["s", "s"], np.array([1.0, 0.0]), {}
    if case == "suites_len":
        suites = ["s"]
    elif case == "scores_len":
        scores = np.array([1.0])
    elif case == "negative":
        a = sp.csr_matrix(np.array([[1.0, -0.1], [0.5, 2.0]]))
    elif case == "score_high":
        scores = np.array([1.5, 0.0])
    elif case == "score_low":
        scores = np.array([-0.5, np.nan])
    elif case == "empty_items":
        a, suites, scores = sp.csr_matrix((0, 2)), [], np.array([])
    elif case == "empty_concepts":
        a = sp.csr_matrix((2, 0))
    elif case == "nan_saliency":
        a = sp.csr_matrix(np.array([[1.0, np.nan], [0.5, 2.0]]))
    elif case == "bad_ci":
        kwargs = {"ci": "jackknife"}
    elif case == "bad_confidence":
        kwargs = {"confidence": 1.5}
    elif case == "bad_thresholds":
        kwargs = {"tau_under": 20.0, "tau_over": 10.0}
    elif case == "bad_min_support":
        kwargs = {"min_support": -1}
    with pytest.raises(ConfigError, match=match) as info:
        compute(a, suites, scores, **kwargs)
    assert info.value.fix  # every error says what to do


# --------------------------------------------------------------------------- intervals


def _planted(n_items: int, n_concepts: int, p: np.ndarray, seed: int):
    """Saliency independent of scores; concept c's items score 1 with probability p[c].

    Item x is "about" one concept c(x); it fires c(x) strongly and a few others weakly
    at random, and its score is Bernoulli(p[c(x)]). χ_model(c) is then (mostly) a
    weighted mean of Bernoulli(p[c]) draws.
    """
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, n_concepts, n_items)
    scores = (rng.random(n_items) < p[owner]).astype(float)
    rows = np.arange(n_items)
    vals = rng.uniform(0.5, 1.5, n_items)
    a = sp.csr_matrix((vals, (rows, owner)), shape=(n_items, n_concepts))
    return a, ["s"] * n_items, scores


def test_bootstrap_ci_is_seeded_and_reproducible():
    a, suites, scores = random_case(400, 20, 0.2, seed=7)
    m1 = compute(a, suites, scores, ci="bootstrap", n_boot=200, seed=11)
    m2 = compute(a, suites, scores, ci="bootstrap", n_boot=200, seed=11)
    m3 = compute(a, suites, scores, ci="bootstrap", n_boot=200, seed=12)
    assert m1.ci_method == "bootstrap"
    np.testing.assert_array_equal(m1.ci_low, m2.ci_low)
    np.testing.assert_array_equal(m1.ci_high, m2.ci_high)
    assert not np.array_equal(m1.ci_low, m3.ci_low)
    ok = np.isfinite(m1.chi_model_all)
    assert ok.any()
    assert (m1.ci_low[ok] <= m1.chi_model_all[ok] + 1e-12).all()
    assert (m1.ci_high[ok] >= m1.chi_model_all[ok] - 1e-12).all()


def test_bootstrap_weights_are_multinomial_counts():
    w = bootstrap_weights(50, 30, np.random.default_rng(0))
    assert w.shape == (30, 50)
    np.testing.assert_array_equal(w.sum(axis=1), 50)
    assert (w >= 0).all() and (w == np.round(w)).all()
    assert (w == 0).any()  # some items not drawn


def test_bootstrap_interval_matches_naive_loop():
    a, _, scores = random_case(60, 5, 0.5, seed=8)
    columns = np.array([0, 2, 4])
    n_boot = 300
    low, high = bootstrap_interval(a, scores, columns, n_boot, 0.9, seed=3)
    # Naive: the same weights, one concept and one resample at a time.
    w = bootstrap_weights(60, n_boot, np.random.default_rng(3))
    dense = a.toarray()
    for j, c in enumerate(columns):
        ratios = [
            sum(w[r, x] * dense[x, c] * scores[x] for x in range(60)) / sum(w[r, x] * dense[x, c] for x in range(60))
            for r in range(n_boot)
        ]
        assert low[j] == pytest.approx(np.quantile(ratios, 0.05), abs=1e-12)
        assert high[j] == pytest.approx(np.quantile(ratios, 0.95), abs=1e-12)


def test_bootstrap_ci_covers_truth():
    k = 40
    p = np.linspace(0.2, 0.8, k)
    a, suites, scores = _planted(8000, k, p, seed=9)
    m = compute(a, suites, scores, ci="bootstrap", n_boot=500, seed=0)
    covered = (m.ci_low <= p) & (p <= m.ci_high)
    assert covered.mean() >= 0.85  # nominal 95%; 40 concepts
    d = compute(a, suites, scores, ci="delta")
    assert ((d.ci_low <= p) & (p <= d.ci_high)).mean() >= 0.85


def test_ci_narrows_as_items_grow():
    k = 10
    p = np.full(k, 0.5)
    widths = []
    for n in (500, 4000):
        a, suites, scores = _planted(n, k, p, seed=10)
        m = compute(a, suites, scores, ci="bootstrap", n_boot=300, min_support=20)
        widths.append(np.nanmean(m.ci_high - m.ci_low))
    # Width ~ 1/sqrt(n): 8× the items → about 1/2.8 the width.
    assert widths[1] < 0.5 * widths[0]


def test_bootstrap_and_delta_agree():
    k = 30
    p = np.linspace(0.1, 0.9, k)
    a, suites, scores = _planted(6000, k, p, seed=12)
    # Add weak background saliency so concepts share items.
    bg = sp.random(6000, k, density=0.05, random_state=3, format="csr") * 0.2
    a = (a + bg).tocsr()
    b = compute(a, suites, scores, ci="bootstrap", n_boot=1000, seed=1)
    d = compute(a, suites, scores, ci="delta")
    assert b.ci_method == "bootstrap" and d.ci_method == "delta"
    width_b = b.ci_high - b.ci_low
    width_d = d.ci_high - d.ci_low
    assert np.abs(b.ci_low - d.ci_low).max() < 0.15 * width_d.mean()
    assert np.abs(b.ci_high - d.ci_high).max() < 0.15 * width_d.mean()
    assert abs(width_b.mean() / width_d.mean() - 1) < 0.05


def test_auto_picks_bootstrap_small_and_delta_large(monkeypatch):
    a, suites, scores = random_case(200, 10, 0.3, seed=13)
    assert compute(a, suites, scores, n_boot=100).ci_method == "bootstrap"
    # nnz of supported columns × n_boot above the budget → delta
    monkeypatch.setattr(compute_module, "AUTO_BOOTSTRAP_BUDGET", a.nnz * 100 - 1)
    assert compute(a, suites, scores, n_boot=100).ci_method == "delta"


def test_lift_zero_for_uniform_concept():
    rng = np.random.default_rng(14)
    n = 300
    dense = np.zeros((n, 3))
    dense[:, 0] = 1.0  # fires equally on every item
    dense[:, 1] = rng.random(n) * (rng.random(n) < 0.5)
    dense[:, 2] = 0.3  # also uniform, different level
    suites = ["easy" if i % 3 else "hard" for i in range(n)]
    scores = np.where(np.array(suites) == "easy", rng.uniform(0.6, 1, n), rng.uniform(0, 0.4, n))
    m = compute(sp.csr_matrix(dense), suites, scores, ci="delta")
    assert m.lift[0] == pytest.approx(0.0, abs=1e-12)
    assert m.lift[2] == pytest.approx(0.0, abs=1e-12)
    # A concept that fires only on hard items has low χ_model but lift ~ its within-suite effect (0 here).
    hard_only = dense.copy()
    hard_only[:, 1] = (np.array(suites) == "hard").astype(float)
    m2 = compute(sp.csr_matrix(hard_only), suites, scores, ci="delta")
    assert m2.chi_model_all[1] < 0.4
    assert m2.lift[1] == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- records


def test_concept_records_from_small_case():
    dense = np.array(
        [
            [2.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 3.0, 0.0],
            [2.0, 0.0, 0.5, 0.0],
            [1.0, 0.0, 0.0, 0.0],
        ]
    )
    scores = np.array([1.0, 0.0, 0.5, np.nan])
    m = compute(sp.csr_matrix(dense), ["a", "a", "b", "b"], scores, min_support=2, ci="delta")
    recs = concept_records(m, {0: "zero", 2: "two"}, sp.csr_matrix(dense), ["i0", "i1", "i2", "i3"], top_items=2)
    assert [r.id for r in recs] == [0, 2]  # concepts 1 and 3 never fire
    assert all(isinstance(r, ConceptRecord) for r in recs)
    r0, r2 = recs
    assert r0.label == "zero" and r0.support == 3
    # Ties 2.0 / 2.0 go to the lower index: i0 before i2.
    assert r0.top_items == ["i0", "i2"]
    assert r2.top_items == ["i1", "i0"]
    # c0 scored items x0 (2, 1) and x2 (2, ½): (2 + 1)/4 = 3/4
    assert r0.chi_model.value == pytest.approx(0.75)
    assert set(r0.chi_bench) == {"a", "b"}
    assert r0.coverage_all in ("normal", "over", "under")
    all_recs = concept_records(m, {}, sp.csr_matrix(dense), ["i0", "i1", "i2", "i3"], only_active=False)
    assert len(all_recs) == 4
    assert all_recs[1].chi_model.value is None and all_recs[1].lift is None
    assert all_recs[1].coverage_all == "missing"
    assert all_recs[1].top_items == []


def test_concept_records_optional_arrays_and_nan_to_none():
    dense = np.ones((4, 2))
    m = compute(sp.csr_matrix(dense), ["a"] * 4, np.array([1, 0, 1, 0.0]), min_support=10)
    recs = concept_records(
        m, {}, sp.csr_matrix(dense), list("wxyz"),
        stability_std=np.array([0.1, np.nan]), baseline_chi_model=np.array([0.4, 0.6]),
    )
    assert recs[0].chi_model.value is None  # support 4 < 10
    assert recs[0].stability_std == pytest.approx(0.1) and recs[1].stability_std is None
    assert recs[1].baseline_chi_model == pytest.approx(0.6)
    with pytest.raises(ConfigError):
        concept_records(m, {}, sp.csr_matrix(dense), list("wxy"))


def test_concept_records_mark_dense_concepts_and_keep_contexts_of_rankable_ones():
    dense = np.array([[2.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    m = compute(sp.csr_matrix(dense), ["a"] * 4, np.ones(4), min_support=2, ci="delta")
    ctx = {0: ["x⟦a⟧", "y⟦b⟧", "z⟦c⟧", "w⟦d⟧"], 1: ["d⟦e⟧"], 2: ["rare⟦r⟧"]}
    recs = concept_records(m, {}, sp.csr_matrix(dense), list("wxyz"),
                           density=np.array([0.02, 0.6, 0.0]), max_density=0.1, contexts=ctx,
                           label_detection={0: 0.8}, max_contexts=3)
    assert [(r.id, r.density, r.dense) for r in recs] == [(0, 0.02, False), (1, 0.6, True),
                                                          (2, 0.0, False)]
    assert recs[0].contexts == ["x⟦a⟧", "y⟦b⟧", "z⟦c⟧"]  # capped at three
    assert recs[1].contexts == []  # dense: never ranked, no contexts kept
    assert recs[2].contexts == []  # support 1 < min_support 2: never ranked
    assert recs[0].label_detection == 0.8 and recs[1].label_detection is None


def test_coverage_summaries_counts_and_histogram():
    dense = np.array([[1.0, 0.0, 0.0, 8.0], [1.0, 0.0, 0.0, 8.0], [0.0, 0.0, 5.0, 5.0]])
    m = compute(sp.csr_matrix(dense), ["a", "a", "b"], np.ones(3), min_support=1, tau_under=0.5, tau_over=2.5)
    # a: total 18 → χ = 4·[2, 0, 0, 16]/18 = [4/9, 0, 0, 32/9]: under, missing, missing, over
    # b: total 10 → χ = 4·[0, 0, 5, 5]/10 = [0, 0, 2, 2]: missing, missing, normal, normal
    # all: [2/9, 0, 1, 50/18=2.78]: under, missing, normal, over
    sums = coverage_summaries(m, bins=4)
    assert [s.suite for s in sums] == ["a", "b", "*"]
    assert all(isinstance(s, CoverageSummary) for s in sums)
    assert (sums[0].missing, sums[0].under, sums[0].normal, sums[0].over) == (2, 1, 0, 1)
    assert (sums[1].missing, sums[1].under, sums[1].normal, sums[1].over) == (2, 0, 2, 0)
    assert (sums[2].missing, sums[2].under, sums[2].normal, sums[2].over) == (1, 1, 1, 1)
    for s, covered in zip(sums, (2, 2, 3)):
        assert len(s.histogram) == 4
        assert sum(c for _, _, c in s.histogram) == covered
    # Shared edges: from log10(2/9) to log10(32/9).
    assert sums[0].histogram[0][0] == pytest.approx(np.log10(2 / 9))
    assert sums[2].histogram[-1][1] == pytest.approx(np.log10(32 / 9))


def test_bootstrap_blocks_do_not_change_the_interval(monkeypatch):
    import cg_gate.metrics._ci as ci_module

    a, suites, scores = random_case(300, 25, 0.2, seed=15)
    ref = compute(a, suites, scores, ci="bootstrap", n_boot=200, seed=5)
    # Concept blocks of 3 and resample blocks of 7 rows: same resamples, same bounds.
    monkeypatch.setattr(ci_module, "_CONCEPT_BLOCK_CELLS", 3 * 200)
    monkeypatch.setattr(ci_module, "_WEIGHT_BLOCK_CELLS", 7 * 300)
    blocked = compute(a, suites, scores, ci="bootstrap", n_boot=200, seed=5)
    np.testing.assert_array_equal(ref.ci_low, blocked.ci_low)
    np.testing.assert_array_equal(ref.ci_high, blocked.ci_high)
