"""Family resolution and family metrics, checked against direct naive loops."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from cg_gate.errors import ConfigError, PolicyError
from cg_gate.families import (
    BaselineSide,
    Exercise,
    Labels,
    PairedSides,
    ResolvedFamily,
    attribute,
    SelectionThresholds,
    auroc_columns,
    family_result,
    load_text_records,
    purity,
    resolve_families,
    resolve_family,
    select_members,
    split_records,
)
from cg_gate.metrics import MISSING, NORMAL, OVER, UNDER, ConceptMetrics
from cg_gate.policy import ConceptSpec
from cg_gate.record import FamilyMember

DATA = Path(__file__).resolve().parents[1] / "cg_gate" / "data"

# Exemplar selection, worked by hand. Seven features; family A's fit exemplars (4 texts),
# family B's (4 texts) and the reference set (4 texts). Thresholds: max_density 0.5,
# min_fire 2, min_ratio 3, min_precision 0.5, reference_weight 3.
A_FIT = np.array([
    # f0   f1   f2   f3   f4   f5   f6   f7
    [1.0, 2.0, 4.0, 1.0, 1.0, 1.0, 1.0, 6.0],
    [1.0, 2.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0],
    [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0],
])
B_FIT = np.array([
    [0.0, 0.3, 0.0, 0.0, 1.0, 0.0, 1.2, 0.0],
    [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
])
R_FIT = np.array([
    [0.0, 0.0, 0.0, 1.0, 0.0, 0.4, 0.6, 1.0],
    [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.6, 0.0],
    [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
])
# By hand (m = mean; precision = m_A / (m_A + m_B + 3·m_R)):
#   f0 m_A 1, m_B 0, m_R 0          → precision 1, ratio inf         → member
#   f1 m_A 1, m_B 0.075              → precision 1/1.075 = 0.930      → member
#   f2 fires on 1 exemplar          → rare
#   f3 fires on 3 of 4 reference texts (0.75 > 0.5) → dense
#   f4 m_A 1, m_B 0.5: ratio 2 < 3  → unspecific, confused with B
#   f5 m_A 0.75, m_R 0.1, density 0.25: precision 0.75/1.05 = 0.714 → member
#   f6 m_A 1, m_B 0.3, m_R 0.3: ratios 3.33; precision 1/2.2 = 0.4545 → imprecise
#   f7 m_A 1.75, m_R 0.25: ratio 7, precision 1.75/2.5 = 0.7, but the odd half of the
#      exemplars (rows 1, 3) never fires it: half precision 0 → imprecise
#   (f5's halves: rows 0, 2 → 1.0, rows 1, 3 → 0.5: 0.5/(0.5 + 0.3) = 0.625, it stays)
THRESHOLDS = SelectionThresholds(min_precision=0.5, reference_weight=3.0, min_ratio=3.0,
                                 max_density=0.5, min_fire=2, top_k=None)


def test_member_tests_worked_by_hand() -> None:
    sel = select_members(sp.csr_matrix(A_FIT), {"B": sp.csr_matrix(B_FIT),
                                                "reference": sp.csr_matrix(R_FIT)},
                         "reference", THRESHOLDS)
    assert [m.id for m in sel.members] == [0, 1, 5]  # most precise first
    assert sel.candidates == 8
    assert sel.rejected == {"dense": 1, "rare": 1, "unspecific": 1, "imprecise": 2,
                            "beyond_top_k": 0}
    assert sel.confusions == {"B": 1}
    by_id = {m.id: m for m in sel.members}
    assert by_id[0].precision == 1.0 and math.isinf(by_id[0].ratio)
    assert by_id[1].precision == pytest.approx(1 / 1.075)
    assert by_id[5].precision == pytest.approx(0.75 / 1.05)
    assert by_id[5].density == 0.25 and by_id[5].closest_group == "reference"
    assert by_id[5].ratio == pytest.approx(7.5)
    assert [by_id[i].level for i in (0, 1, 5)] == [1.0, 2.0, 1.0]  # median non-zero
    # fit AUROC of f1: positives [2, 2, 0, 0] against 8 negatives [0.3, 0 × 7]:
    # the 2s beat all 8 (16 pairs), each 0 beats none and ties 7 (2 × 3.5)
    assert by_id[1].auroc == pytest.approx((16 + 7) / 32)
    top2 = select_members(sp.csr_matrix(A_FIT), {"B": sp.csr_matrix(B_FIT),
                                                 "reference": sp.csr_matrix(R_FIT)},
                          "reference", replace(THRESHOLDS, top_k=2))
    assert [m.id for m in top2.members] == [0, 1] and top2.rejected["beyond_top_k"] == 1


def test_heldout_auroc_by_hand() -> None:
    held = sp.csr_matrix(np.array([[1.0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 2.0, 0, 0]]))
    neg = {"B": sp.csr_matrix(np.zeros((1, 8))),
           "reference": sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 1.0, 0, 0]]))}
    sel = select_members(sp.csr_matrix(A_FIT), {"B": sp.csr_matrix(B_FIT),
                                                "reference": sp.csr_matrix(R_FIT)},
                         "reference", THRESHOLDS, heldout=held, negatives_heldout=neg)
    by_id = {m.id: m for m in sel.members}
    # f0: held-out positives [1, 0] vs negatives [0, 0] → (1 + 1 + ½ + ½) / 4
    assert by_id[0].heldout_auroc == pytest.approx(0.75)
    # f5: [0, 2] vs [0, 1] → (½ + 0 + 1 + 1) / 4
    assert by_id[5].heldout_auroc == pytest.approx(0.625)
    # family den (f0 + f1 + f5): [1, 2] vs [0, 1] → (1 + ½ + 1 + 1) / 4
    assert sel.heldout_auroc == pytest.approx(0.875)
    assert (sel.n_heldout, sel.n_negatives_heldout) == (2, 2)


def test_auroc_columns_matches_pairwise_count() -> None:
    rng = np.random.default_rng(3)
    pos = rng.integers(0, 3, size=(7, 4)).astype(float)
    neg = rng.integers(0, 3, size=(5, 4)).astype(float)
    for c in range(4):
        wins = sum((p > q) + 0.5 * (p == q) for p in pos[:, c] for q in neg[:, c])
        assert auroc_columns(pos, neg)[c] == pytest.approx(wins / 35)


def spec(**match) -> ConceptSpec:
    return ConceptSpec.model_validate({"title": "T", "match": match})


def _texts_fn(rows: dict[str, np.ndarray]):
    def fn(texts: list[str]) -> sp.csr_matrix:
        return sp.csr_matrix(np.vstack([rows[t] for t in texts]))
    return fn


def test_resolve_families_contrasts_each_family_with_the_others(tmp_path: Path) -> None:
    rows = {f"a{i}": A_FIT[i] for i in range(4)} | {f"b{i}": B_FIT[i] for i in range(4)} | \
        {f"r{i}": R_FIT[i] for i in range(4)}
    ref = tmp_path / "ref.jsonl"
    ref.write_text("".join(f'{{"text": "r{i}"}}\n' for i in range(4)))
    common = {"min_fire": 2, "min_ratio": 3, "reference": str(ref), "top_k": None}
    concepts = {
        "A": spec(exemplars={"texts": [f"a{i}" for i in range(4)], **common}),
        "B": spec(exemplars={"texts": [f"b{i}" for i in range(4)], **common}),
    }
    fams = resolve_families(concepts, labels=None, d_sae=8, exemplar_saliency=_texts_fn(rows),
                            max_density=0.5)
    assert fams["A"].ids == [0, 1, 5]
    assert fams["A"].selection.confusions == {"B": 1}
    assert fams["A"].members[0].reasons == ["exemplar p=1.00"]
    no_contrast = {"A": spec(exemplars={"texts": [f"a{i}" for i in range(4)], **common,
                                        "contrast": False}), "B": concepts["B"]}
    fams = resolve_families(no_contrast, labels=None, d_sae=8,
                            exemplar_saliency=_texts_fn(rows), max_density=0.5)
    assert 4 in fams["A"].ids  # shared with B, but B is no negative now


def test_split_records() -> None:
    marked = split_records([("a", "fit"), ("b", "heldout"), ("c", None)])
    assert (marked.fit, marked.heldout) == (["a", "c"], ["b"])
    unmarked = split_records([(str(i), None) for i in range(8)])
    assert unmarked.heldout == ["3", "7"] and len(unmarked.fit) == 6
    assert split_records([(str(i), None) for i in range(7)]).heldout == []


def test_shipped_exemplars_are_large_and_split() -> None:
    for path in (DATA / "exemplars").glob("*.jsonl"):
        split = split_records(load_text_records(path))
        assert len(split.all) >= 50 and len(split.heldout) >= 10, path.name
    ref = split_records(load_text_records(DATA / "reference" / "neutral.jsonl"))
    assert len(ref.all) >= 500 and len(ref.heldout) >= 100


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
    levels = {1: None, 2: 0.5, 3: 3.0, 5: 0.9}  # 3: no item reaches half of 3.0
    fam = ResolvedFamily(key="fam", title="Fam", members=[
        FamilyMember(id=i, reasons=["exemplar"], level=lv) for i, lv in levels.items()])
    ex = Exercise(strength=0.5, min_items=3)
    res = family_result(fam, metrics=m, saliency=sp.csr_matrix(dense), scores=scores,
                        item_ids=ids, suites=suites, n_boot=0, exercise=ex)
    cov = res.coverage

    def exercises(x: int, c: int) -> bool:
        bar = 0.5 * levels[c] if levels[c] else 0.0
        return dense[x, c] > 0 and dense[x, c] >= bar

    def covered(rows: list[int]) -> list[int]:
        return [c for c in levels if sum(exercises(x, c) for x in rows) >= 3]

    everywhere = covered(list(range(N)))
    assert 3 not in everywhere and len(everywhere) >= 2  # the data exercise the others
    assert (cov.members, cov.covered) == (4, len(everywhere))
    assert cov.covered_fraction == len(everywhere) / 4
    for name in SUITES:
        rows = [x for x in range(N) if suites[x] == name]
        assert cov.by_suite[name] == len(covered(rows)) / 4
        assert cov.exercising_items_by_suite[name] == sum(
            any(exercises(x, c) for c in levels) for x in rows)
    assert (cov.exercise_strength, cov.exercise_min_items) == (0.5, 3)
    # χ_bench classes still come from the metrics: χ_bench(c) = mean over suites
    assert cov.mean_chi_bench == pytest.approx((0 + 0.025 + 10 + 0.25) / 4)
    assert (cov.missing_ids, cov.under_ids, cov.over_ids) == ([1], [2], [3])
    assert cov.missing_by_suite == {"s1": [1, 5], "s2": [1, 2]}
    assert cov.mean_chi_bench_by_suite["s1"] == pytest.approx((0 + 0.05 + 12 + 0) / 4)
    # a dense member (by the reference density) is left out of coverage
    density = np.zeros(K)
    density[5] = 0.9
    res = family_result(fam, metrics=m, saliency=sp.csr_matrix(dense), scores=scores,
                        item_ids=ids, suites=suites, n_boot=0, exercise=ex, density=density,
                        max_density=0.1)
    assert res.coverage.members == 3 and res.coverage.dense_ids == [5]


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


# --------------------------------------------------------------------------- purity, attribution
# Six items in one suite, categories a a b b c c; the family's saliency den_F per item and
# scores worked by hand:
#   den  = 1 2 0 3 1 1  (total 8)   candidate s = 1 0 1 1 0 1   baseline s = 1 1 1 1 1 1
#   mass shares a 3/8, b 3/8, c 2/8; χ_model = (1 + 0 + 3 + 0 + 1)/8 = 5/8
#   χ_a = 1/3, χ_b = 1, χ_c = 1/2; contributions a 1/8, b 3/8, c 1/8 (sum 5/8)
#   same saliency on both sides: δ(x) = den·(s_c − s_b)/8 → x2 −2/8, x5 −1/8, others 0
#   Δ = −3/8: a −1/4 (2/3 of the drop), b 0, c −1/8 (1/3)
DEN = np.array([1.0, 2.0, 0.0, 3.0, 1.0, 1.0])
S_CAND = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
S_BASE = np.ones(6)
CATS = ["a", "a", "b", "b", "c", "c"]
IDS = [f"x{i + 1}" for i in range(6)]


def _paired() -> PairedSides:
    rows = np.flatnonzero(DEN > 0)
    return PairedSides(rows=rows, c_den=DEN[rows], c_scores=S_CAND[rows], b_den=DEN[rows],
                       b_scores=S_BASE[rows])


def test_attribution_by_hand() -> None:
    cats, top = attribute(DEN, S_CAND, IDS, ["s"] * 6, CATS, paired=_paired())
    by = {c.category: c for c in cats}
    assert [c.category for c in cats][2] == "c"  # largest mass first (a and b tie at 3/8)
    assert (by["a"].mass_share, by["b"].mass_share, by["c"].mass_share) == (3 / 8, 3 / 8, 2 / 8)
    assert by["a"].chi_model == pytest.approx(1 / 3) and by["b"].chi_model == 1.0
    assert [by[k].contribution for k in "abc"] == pytest.approx([1 / 8, 3 / 8, 1 / 8])
    assert sum(c.contribution for c in cats) == pytest.approx(5 / 8)
    assert [by[k].delta_contribution for k in "abc"] == pytest.approx([-1 / 4, 0.0, -1 / 8])
    assert by["a"].drop_share == pytest.approx(2 / 3) and by["c"].drop_share == pytest.approx(1 / 3)
    assert by["b"].drop_share is None  # it did not pull Δ down
    assert by["a"].baseline_chi_model == 1.0
    assert (by["b"].n_items, by["b"].active_items) == (2, 1)
    assert [(t.id, t.category, t.score, t.baseline_score) for t in top] == [
        ("x2", "a", 0.0, 1.0), ("x5", "c", 0.0, 1.0)]
    assert [t.delta_contribution for t in top] == pytest.approx([-2 / 8, -1 / 8])
    assert top[0].mass_share == pytest.approx(2 / 8)


def test_attribution_adds_up_on_random_data() -> None:
    rng = np.random.default_rng(5)
    n = 200
    den = rng.random(n) * (rng.random(n) < 0.6)
    s_c, s_b = rng.random(n).round(1), rng.random(n).round(1)
    b_den = den * rng.uniform(0.5, 1.5, n)
    cats = [f"k{i % 7}" for i in range(n)]
    rows = np.flatnonzero((den > 0) | (b_den > 0))
    paired = PairedSides(rows=rows, c_den=den[rows], c_scores=s_c[rows], b_den=b_den[rows],
                         b_scores=s_b[rows])
    parts, _ = attribute(den, s_c, [str(i) for i in range(n)], ["s"] * n, cats, paired=paired)
    chi_c = (den * s_c).sum() / den.sum()
    chi_b = (b_den[rows] * s_b[rows]).sum() / b_den[rows].sum()
    assert sum(p.contribution for p in parts) == pytest.approx(chi_c)
    assert sum(p.delta_contribution for p in parts) == pytest.approx(chi_c - chi_b)
    assert sum(p.mass_share for p in parts) == pytest.approx(1.0)
    assert sum(p.drop_share or 0.0 for p in parts) == pytest.approx(1.0)
    gross = -sum(p.delta_contribution for p in parts if p.delta_contribution < 0)
    assert all(p.drop_share == pytest.approx(-p.delta_contribution / gross)
               for p in parts if p.delta_contribution < 0)


def test_purity_gate() -> None:
    cats, _ = attribute(DEN, S_CAND, IDS, ["s"] * 6, CATS)
    ok = purity(cats, ["a", "b"], 0.5, "fam")
    assert ok.judged and ok.intended_share == pytest.approx(6 / 8)
    low = purity(cats, ["c"], 0.5, "fam")
    assert not low.judged and low.intended_share == pytest.approx(2 / 8)
    assert "25 %" in low.reason and "a 38 %" in low.reason
    assert purity(cats, [], 0.5, "fam").judged  # no intended categories: no gate
    absent = purity(cats, ["refusal"], 0.5, "fam")  # the suites have no such category
    assert not absent.judged and "concepts.fam.categories" in absent.reason
    assert "categories are a, b, c" in absent.reason
    cats0, _ = attribute(np.zeros(6), S_CAND, IDS, ["s"] * 6, CATS)
    assert not purity(cats0, ["a"], 0.5, "fam").judged


def test_scoped_figures_use_only_the_intended_categories() -> None:
    dense, scores, suites, ids = make_data()
    cats = ["x" if i % 3 == 0 else "y" for i in range(N)]
    b_scores = np.where(np.isnan(scores), np.nan, np.clip(scores + 0.2, 0, 1))
    members = [0, 3, 6]
    res = family_result(resolved(members), metrics=make_metrics(scores, suites, min_support=3),
                        saliency=sp.csr_matrix(dense), scores=scores, item_ids=ids,
                        suites=suites, n_boot=0, categories=cats, intended=["x"],
                        baseline=BaselineSide(saliency=sp.csr_matrix(dense), scores=b_scores,
                                              item_ids=ids, suites=suites))
    sc = res.scoped
    x_rows = [i for i in range(N) if cats[i] == "x"]
    pairs = [i for i in x_rows if not math.isnan(scores[i])
             and sum(dense[i, c] for c in members) > 0]
    assert (sc.categories, sc.items, sc.support) == (["x"], len(x_rows), len(pairs))
    assert sc.chi_model.value == pytest.approx(naive_chi(dense, scores, members, x_rows))
    assert sc.baseline_chi_model == pytest.approx(naive_chi(dense, b_scores, members, x_rows))
    assert sc.delta.value == pytest.approx(naive_chi(dense, scores, members, x_rows)
                                           - naive_chi(dense, b_scores, members, x_rows))
    assert sc.paired_items == len(x_rows)
    # the pooled figures are the paper's, over every item, unchanged
    assert res.performance.chi_model.value == pytest.approx(
        naive_chi(dense, scores, members, range(N)))
    # a change of scores outside the scope leaves the scoped figures as they were
    other = scores.copy()
    other[[i for i in range(N) if cats[i] == "y"]] = 0.0
    res2 = family_result(resolved(members), metrics=make_metrics(other, suites, min_support=3),
                         saliency=sp.csr_matrix(dense), scores=other, item_ids=ids,
                         suites=suites, n_boot=0, categories=cats, intended=["x"],
                         baseline=BaselineSide(saliency=sp.csr_matrix(dense), scores=b_scores,
                                               item_ids=ids, suites=suites))
    assert res2.scoped.delta.value == pytest.approx(sc.delta.value)
    assert res2.regression.delta.value < res.regression.delta.value


def test_coverage_and_purity_are_read_on_the_baseline_when_there_is_one() -> None:
    dense, scores, suites, ids = make_data()
    cats = ["x" if i % 3 == 0 else "y" for i in range(N)]
    members = [0, 3]
    b_dense = dense.copy()
    b_dense[:, 3] = 0.0  # member 3 never fires on the baseline
    b_dense[[i for i in range(N) if cats[i] == "y"], 0] = 0.0  # member 0 only on x items there
    order = list(range(N))[::-1]  # the baseline lists the same items in another order
    base = BaselineSide(saliency=sp.csr_matrix(b_dense[order]), scores=scores[order],
                        item_ids=[ids[i] for i in order], suites=[suites[i] for i in order])
    fam = ResolvedFamily(key="fam", title="Fam", members=[
        FamilyMember(id=c, reasons=["exemplar"], level=None) for c in members])
    res = family_result(fam, metrics=make_metrics(scores, suites), saliency=sp.csr_matrix(dense),
                        scores=scores, item_ids=ids, suites=suites, n_boot=0, baseline=base,
                        categories=cats, intended=["x"], exercise=Exercise(0.5, 3))
    assert res.coverage.measured_on == "baseline" and res.coverage.covered == 1  # 3 is silent
    p = res.purity
    assert p.measured_on == "baseline" and p.intended_share == pytest.approx(1.0)
    cand_x = sum(dense[i, c] for i in range(N) for c in members if cats[i] == "x")
    cand_all = sum(dense[i, c] for i in range(N) for c in members)
    assert p.candidate_share == pytest.approx(cand_x / cand_all)
