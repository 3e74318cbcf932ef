"""Family resolution and family metrics, checked against direct naive loops."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cg_gate.errors import ConfigError, PolicyError
from cg_gate.families import (
    BaselineSide,
    Labels,
    ResolvedFamily,
    family_result,
    load_texts,
    resolve_family,
)
from cg_gate.metrics import MISSING, NORMAL, OVER, UNDER, ConceptMetrics
from cg_gate.policy import ConceptSpec
from cg_gate.record import FamilyMember

DATA = Path(__file__).resolve().parents[1] / "cg_gate" / "data"

# exemplars (4 texts) × 6 features, reference (3 texts) × 6 features
E = np.array([
    [1.0, 0.0, 4.0, 0.3, 0.0, 0.8],
    [1.0, 1.0, 0.0, 0.3, 0.0, 0.8],
    [1.0, 1.0, 0.0, 0.3, 0.0, 0.8],
    [1.0, 0.0, 0.0, 0.3, 0.0, 0.0],
])
R = np.array([
    [0.3, 0.0, 0.0, 0.6, 0.5, 0.45],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
])
# by hand: exemplar means 1.0, 0.5, 1.0, 0.3, 0, 0.6; fired on 4, 2, 1, 4, 0, 3
# reference means 0.1, 0, 0, 0.2, 1/6, 0.15 → ratios 10, inf, inf, 1.5, 0, 4
# members at min_ratio 3, min_fire 2: 1 (inf), 0 (×10), 5 (×4); 2 fires on one text only


def saliency_fn(calls: list[list[str]]):
    def fn(texts: list[str]) -> sp.csr_matrix:
        calls.append(list(texts))
        return sp.csr_matrix(E if len(calls) == 1 else R)
    return fn


def spec(**match) -> ConceptSpec:
    return ConceptSpec.model_validate({"title": "T", "match": match})


def test_exemplar_selection_by_hand() -> None:
    calls: list[list[str]] = []
    fam = resolve_family("f", spec(exemplars={"texts": ["a", "b", "c", "d"], "min_ratio": 3}),
                         labels=None, d_sae=6, exemplar_saliency=saliency_fn(calls))
    assert fam.ids == [0, 1, 5]
    reasons = {m.id: m.reasons for m in fam.members}
    assert reasons == {0: ["exemplar ×10.0"], 1: ["exemplar ×inf"], 5: ["exemplar ×4.0"]}
    assert [s.id for s in fam.exemplar_scores] == [1, 0, 5]
    # the second call read the shipped neutral reference set
    assert calls[0] == ["a", "b", "c", "d"]
    assert calls[1] == load_texts(DATA / "reference" / "neutral.jsonl")
    assert len(calls[1]) >= 50


def test_exemplar_top_k_min_fire_and_given_reference() -> None:
    calls: list[list[str]] = []
    fam = resolve_family("f", spec(exemplars={"texts": ["a"] * 4, "min_ratio": 3, "top_k": 2}),
                         labels=None, d_sae=6, exemplar_saliency=saliency_fn(calls),
                         reference_saliency=sp.csr_matrix(R))
    assert fam.ids == [0, 1] and len(calls) == 1
    fam = resolve_family("f", spec(exemplars={"texts": ["a"] * 4, "min_ratio": 3, "min_fire": 1}),
                         labels=None, d_sae=6, exemplar_saliency=saliency_fn([]),
                         reference_saliency=sp.csr_matrix(R))
    assert fam.ids == [0, 1, 2, 5]
    fam = resolve_family("f", spec(exemplars={"texts": ["a"] * 4, "min_ratio": 1.2}),
                         labels=None, d_sae=6, exemplar_saliency=saliency_fn([]),
                         reference_saliency=sp.csr_matrix(R))
    assert fam.ids == [0, 1, 3, 5]


def test_labels_ids_and_merged_reasons() -> None:
    labels = Labels(labels={0: "Refusing requests", 3: "declines politely", 4: "dates",
                            9: "refusal beyond the SAE"})
    fam = resolve_family("f", spec(labels=["(?i)refus", "declin"], ids=[3, 5]), labels=labels,
                         d_sae=6, exemplar_saliency=None)
    assert [(m.id, m.label, m.reasons) for m in fam.members] == [
        (0, "Refusing requests", ["label:/(?i)refus/"]),
        (3, "declines politely", ["label:/declin/", "id"]),
        (5, None, ["id"]),
    ]
    fam = resolve_family("f", spec(labels=["x"], ids=[1]), labels=None, d_sae=6,
                         exemplar_saliency=None)
    assert fam.ids == [1] and "no labels file" in fam.notes[0]


def test_resolve_errors() -> None:
    with pytest.raises(PolicyError) as err:
        resolve_family("f", spec(ids=[6]), labels=None, d_sae=6, exemplar_saliency=None)
    assert "6" in err.value.message
    with pytest.raises(ConfigError):
        resolve_family("f", spec(exemplars={"texts": ["a"]}), labels=None, d_sae=6,
                       exemplar_saliency=None)
    with pytest.raises(ConfigError):
        resolve_family("f", spec(exemplars={"texts": ["a"]}), labels=None, d_sae=7,
                       exemplar_saliency=lambda t: sp.csr_matrix(np.ones((len(t), 6))))


# --------------------------------------------------------------------------- family metrics

K, N = 8, 90
SUITES = ("s1", "s2")


def make_data(seed: int = 3):
    rng = np.random.default_rng(seed)
    dense = rng.random((N, K)) * (rng.random((N, K)) < 0.35)
    scores = rng.random(N).round(2)
    scores[rng.random(N) < 0.15] = np.nan
    suites = [SUITES[i % 2] for i in range(N)]
    ids = [f"q{i}" for i in range(N)]
    return dense, scores, suites, ids


def make_metrics(scores: np.ndarray, suites: list[str], min_support: int = 5) -> ConceptMetrics:
    cov = np.array([[NORMAL, MISSING, UNDER, OVER, NORMAL, MISSING, NORMAL, NORMAL],
                    [NORMAL, MISSING, MISSING, NORMAL, NORMAL, NORMAL, UNDER, NORMAL]], dtype=np.int8)
    cov_all = np.array([NORMAL, MISSING, UNDER, OVER, NORMAL, NORMAL, UNDER, NORMAL], dtype=np.int8)
    chi = np.array([[1.0, 0.0, 0.05, 12.0, 2.0, 0.0, 1.5, 1.0],
                    [3.0, 0.0, 0.0, 8.0, 1.0, 0.5, 0.05, 1.0]])
    mean_score = np.array([np.nanmean([s for s, b in zip(scores, suites) if b == name])
                           for name in SUITES])
    nan = np.full(K, np.nan)
    return ConceptMetrics(
        suite_names=SUITES, n_items=np.array([45, 45]), chi_bench=chi,
        chi_bench_all=chi.mean(axis=0), coverage=cov, coverage_all=cov_all,
        support=np.zeros((2, K), dtype=np.int64), support_all=np.zeros(K, dtype=np.int64),
        chi_model=np.full((2, K), np.nan), chi_model_all=nan, ci_low=nan, ci_high=nan, lift=nan,
        mean_score=mean_score, mean_score_all=float(np.nanmean(scores)), min_support=min_support,
        tau_under=0.1, tau_over=10.0, eps=0.0, n_boot=0, confidence=0.95, seed=0,
        ci_method="bootstrap")


def resolved(ids: list[int]) -> ResolvedFamily:
    return ResolvedFamily(key="fam", title="Fam",
                          members=[FamilyMember(id=i, reasons=["id"]) for i in ids])


def naive_chi(dense, scores, members, rows):
    num = den = 0.0
    for c in members:
        for x in rows:
            if math.isnan(scores[x]):
                continue
            num += dense[x, c] * scores[x]
            den += dense[x, c]
    return num / den


def test_family_coverage_by_hand() -> None:
    dense, scores, suites, ids = make_data()
    m = make_metrics(scores, suites)
    res = family_result(resolved([1, 2, 3, 5]), metrics=m, saliency=sp.csr_matrix(dense),
                        scores=scores, item_ids=ids, suites=suites, n_boot=0)
    cov = res.coverage
    assert (cov.members, cov.covered) == (4, 3)
    assert cov.covered_fraction == 0.75
    # χ_bench(c) = mean over suites: 0, 0.025, 10, 0.25
    assert cov.mean_chi_bench == pytest.approx((0 + 0.025 + 10 + 0.25) / 4)
    assert (cov.missing_ids, cov.under_ids, cov.over_ids) == ([1], [2], [3])
    assert cov.by_suite == {"s1": 0.5, "s2": 0.5}
    assert cov.missing_by_suite == {"s1": [1, 5], "s2": [1, 2]}
    assert cov.mean_chi_bench_by_suite["s1"] == pytest.approx((0 + 0.05 + 12 + 0) / 4)


def test_family_performance_matches_naive_loops() -> None:
    dense, scores, suites, ids = make_data()
    m = make_metrics(scores, suites)
    members = [0, 3, 6]
    res = family_result(resolved(members), metrics=m, saliency=sp.csr_matrix(dense),
                        scores=scores, item_ids=ids, suites=suites, n_boot=300,
                        confidence=0.9, seed=11)
    perf = res.performance
    expected = naive_chi(dense, scores, members, range(N))
    assert perf.chi_model.value == pytest.approx(expected, rel=1e-12)
    support_rows = [x for x in range(N) if not math.isnan(scores[x])
                    and sum(dense[x, c] for c in members) > 0]
    assert perf.support == len(support_rows)
    # lift: den-weighted mean of the items' suites' mean scores
    w = [sum(dense[x, c] for c in members) for x in support_rows]
    suite_mean = {"s1": m.mean_score[0], "s2": m.mean_score[1]}
    baseline = sum(wi * suite_mean[suites[x]] for wi, x in zip(w, support_rows)) / sum(w)
    assert perf.lift == pytest.approx(expected - baseline, rel=1e-12)
    # bootstrap: resample b draws rng.integers(0, n, n) over the support items
    rng = np.random.default_rng(11)
    stats = []
    n = len(support_rows)
    for _ in range(300):
        pick = [support_rows[i] for i in rng.integers(0, n, size=n)]
        stats.append(naive_chi(dense, scores, members, pick))
    low, high = np.quantile(stats, [0.05, 0.95])
    assert perf.chi_model.low == pytest.approx(low, rel=1e-10)
    assert perf.chi_model.high == pytest.approx(high, rel=1e-10)
    # top items: highest den_F, scored or not
    den = [sum(dense[x, c] for c in members) for x in range(N)]
    top = sorted(range(N), key=lambda x: -den[x])[:5]
    assert perf.top_items == [ids[x] for x in top]


def test_min_support_and_empty_family() -> None:
    dense, scores, suites, ids = make_data()
    m = make_metrics(scores, suites, min_support=N)
    res = family_result(resolved([0, 3]), metrics=m, saliency=sp.csr_matrix(dense),
                        scores=scores, item_ids=ids, suites=suites, n_boot=50)
    assert res.performance.chi_model.value is None and res.performance.lift is None
    assert res.performance.support > 0
    res = family_result(resolved([]), metrics=make_metrics(scores, suites),
                        saliency=sp.csr_matrix(dense), scores=scores, item_ids=ids,
                        suites=suites, n_boot=50)
    assert res.coverage.members == 0 and res.coverage.covered_fraction is None
    assert res.performance.support == 0 and res.performance.chi_model.value is None


def test_stability_std_matches_naive_drops() -> None:
    dense, scores, suites, ids = make_data()
    m = make_metrics(scores, suites)
    members = [0, 4]
    res = family_result(resolved(members), metrics=m, saliency=sp.csr_matrix(dense),
                        scores=scores, item_ids=ids, suites=suites, n_boot=0,
                        stability_repeats=25, stability_drop=0.2, seed=5)
    rng = np.random.default_rng(5)
    vals = []
    for _ in range(25):
        dropped = set(rng.choice(N, size=round(0.2 * N), replace=False).tolist())
        vals.append(naive_chi(dense, scores, members, [x for x in range(N) if x not in dropped]))
    assert res.performance.stability_std == pytest.approx(float(np.std(vals)), rel=1e-10)


def test_paired_regression_matches_naive_loops() -> None:
    dense, scores, suites, ids = make_data()
    rng = np.random.default_rng(8)
    b_dense = np.clip(dense + rng.normal(0, 0.1, dense.shape) * (dense > 0), 0, None)
    b_scores = np.clip(scores - 0.1, 0, 1)
    b_scores[[4, 9]] = np.nan
    # baseline lacks candidate items q0..q2, has two extra, and is in a different order
    order = list(range(N - 1, 2, -1))
    b_ids = [ids[i] for i in order] + ["extra1", "extra2"]
    b_suites = [suites[i] for i in order] + ["s1", "s2"]
    b_sal = np.vstack([b_dense[order], np.ones((2, K))])
    b_sc = np.concatenate([b_scores[order], [1.0, 1.0]])
    members = [0, 3, 6]
    m = make_metrics(scores, suites)
    res = family_result(resolved(members), metrics=m, saliency=sp.csr_matrix(dense),
                        scores=scores, item_ids=ids, suites=suites, n_boot=200, seed=2,
                        baseline=BaselineSide(saliency=sp.csr_matrix(b_sal), scores=b_sc,
                                              item_ids=b_ids, suites=b_suites))
    reg = res.regression
    assert reg.paired_items == N - 3
    assert reg.candidate_only == ["q0", "q1", "q2"] and reg.baseline_only == ["extra1", "extra2"]
    # paired set: candidate order, scored on both sides, family active on either side
    pairs = []
    for x in range(3, N):
        if math.isnan(scores[x]) or math.isnan(b_scores[x]):
            continue
        if sum(dense[x, c] for c in members) > 0 or sum(b_dense[x, c] for c in members) > 0:
            pairs.append(x)
    c_chi = naive_chi(dense, scores, members, pairs)
    b_chi = naive_chi(b_dense, b_scores, members, pairs)
    assert reg.baseline_chi_model == pytest.approx(b_chi, rel=1e-12)
    assert reg.delta.value == pytest.approx(c_chi - b_chi, rel=1e-12)
    rng = np.random.default_rng(2)
    stats = []
    for _ in range(200):
        pick = [pairs[i] for i in rng.integers(0, len(pairs), size=len(pairs))]
        stats.append(naive_chi(dense, scores, members, pick)
                     - naive_chi(b_dense, b_scores, members, pick))
    low, high = np.quantile(stats, [0.025, 0.975])
    assert reg.delta.low == pytest.approx(low, rel=1e-10)
    assert reg.delta.high == pytest.approx(high, rel=1e-10)
    assert reg.delta.low <= reg.delta.value <= reg.delta.high


def test_row_mismatch_and_duplicate_ids_are_errors() -> None:
    dense, scores, suites, ids = make_data()
    m = make_metrics(scores, suites)
    with pytest.raises(ConfigError):
        family_result(resolved([0]), metrics=m, saliency=sp.csr_matrix(dense),
                      scores=scores[:-1], item_ids=ids, suites=suites)
    dup = list(ids)
    dup[2] = dup[0]  # same suite (s1) → same key
    with pytest.raises(ConfigError) as err:
        family_result(resolved([0]), metrics=m, saliency=sp.csr_matrix(dense), scores=scores,
                      item_ids=dup, suites=suites,
                      baseline=BaselineSide(saliency=sp.csr_matrix(dense), scores=scores,
                                            item_ids=ids, suites=suites))
    assert "q0" in err.value.message


def test_regression_same_items_same_order_pairs_every_row() -> None:
    dense, scores, suites, ids = make_data()
    b_scores = np.where(np.isnan(scores), np.nan, np.clip(scores + 0.2, 0, 1))
    members = [0, 3]
    res = family_result(resolved(members), metrics=make_metrics(scores, suites),
                        saliency=sp.csr_matrix(dense), scores=scores, item_ids=ids, suites=suites,
                        n_boot=0, baseline=BaselineSide(saliency=sp.csr_matrix(dense),
                                                        scores=b_scores, item_ids=ids,
                                                        suites=suites))
    reg = res.regression
    assert reg.paired_items == N and reg.candidate_only == [] and reg.baseline_only == []
    pairs = [x for x in range(N) if not math.isnan(scores[x])
             and sum(dense[x, c] for c in members) > 0]
    expected = (naive_chi(dense, scores, members, pairs)
                - naive_chi(dense, b_scores, members, pairs))
    assert reg.delta.value == pytest.approx(expected, rel=1e-12)
    assert expected < 0 and reg.delta.low is None
