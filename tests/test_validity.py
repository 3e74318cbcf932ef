"""cg_gate.validity: stability, ablation, overlap, difficulty control, fidelity warning."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from cg_gate.errors import ConfigError
from cg_gate.metrics import compute
from cg_gate.record import AblationSummary, OverlapSummary, StabilitySummary
from cg_gate.validity import (
    ablation,
    adjusted_concept_scores,
    adjusted_family_score,
    drop_weights,
    family_lift,
    fidelity_warning,
    overlap,
    stability,
)


def random_case(n_items: int, n_concepts: int, density: float, seed: int, n_suites: int = 2):
    rng = np.random.default_rng(seed)
    a = sp.random(n_items, n_concepts, density=density, random_state=seed, format="csr")
    suites = [f"s{i % n_suites}" for i in range(n_items)]
    scores = rng.random(n_items)
    return a, suites, scores


# --------------------------------------------------------------------------- stability


def test_drop_weights_drop_exact_share_per_suite():
    suite_index = np.array([0] * 10 + [1] * 7 + [2] * 1)
    w = drop_weights(suite_index, 3, repeats=25, drop=0.2, rng=np.random.default_rng(0))
    assert w.shape == (25, 18)
    assert set(np.unique(w)) <= {0.0, 1.0}
    # round(0.2·10) = 2, round(0.2·7) = round(1.4) = 1, round(0.2·1) = 0 dropped per repeat.
    assert ((w[:, :10] == 0).sum(axis=1) == 2).all()
    assert ((w[:, 10:17] == 0).sum(axis=1) == 1).all()
    assert (w[:, 17] == 1).all()
    assert len({tuple(row) for row in w}) > 1  # repeats differ


def test_stability_matches_naive_recomputation():
    a, suites, scores = random_case(150, 12, 0.4, seed=1)
    scores[::7] = np.nan
    families = {"f": [0, 3, 5], "g": [11]}
    seed, repeats, min_support = 4, 6, 10
    res = stability(a, suites, scores, families=families, repeats=repeats, drop=0.2, seed=seed,
                    min_support=min_support)
    names = np.array(suites)
    suite_index = np.where(names == "s0", 0, 1)
    w = drop_weights(suite_index, 2, repeats, 0.2, np.random.default_rng(seed))
    dense = a.toarray()
    bench, model = [], []
    fam = {f: [] for f in families}
    for r in range(repeats):
        kept = w[r] > 0
        m = compute(a[kept], list(names[kept]), scores[kept], min_support=min_support, ci="delta")
        bench.append(m.chi_bench_all)
        model.append(m.chi_model_all)
        use = kept & ~np.isnan(scores)
        for f, ids in families.items():
            af = dense[use][:, ids].sum(axis=1)
            support = (af > 0).sum()
            fam[f].append((af * scores[use]).sum() / af.sum() if support >= min_support else np.nan)
    bench, model = np.array(bench), np.array(model)
    np.testing.assert_allclose(res.std_chi_bench, bench.std(axis=0, ddof=1), rtol=1e-9, atol=1e-12)
    expected_model = np.where(np.isfinite(model).all(axis=0), np.nan_to_num(model).std(axis=0, ddof=1), np.nan)
    np.testing.assert_allclose(res.std_chi_model, expected_model, rtol=1e-9, atol=1e-12)
    for f in families:
        vals = np.array(fam[f])
        if np.isfinite(vals).all():
            assert res.families[f] == pytest.approx(vals.std(ddof=1), rel=1e-9)
        else:
            assert res.families[f] is None
    assert res.families["f"] is not None  # 3 members over ~110 scored items: supported


def test_stability_std_nan_when_unsupported_in_some_repeat():
    # Concept 0 fires on exactly 10 scored items of 50; min_support 10 → any drop of one of
    # them makes it unsupported. Concept 1 fires everywhere.
    dense = np.zeros((50, 2))
    dense[:10, 0] = 1.0
    dense[:, 1] = 1.0
    scores = np.linspace(0, 1, 50)
    res = stability(sp.csr_matrix(dense), ["s"] * 50, scores, repeats=20, min_support=10,
                    families={"only0": [0], "both": [0, 1]})
    assert np.isnan(res.std_chi_model[0])
    assert np.isfinite(res.std_chi_model[1]) and res.std_chi_model[1] > 0
    assert res.families["only0"] is None
    assert res.families["both"] is not None
    assert res.median_std_chi_model == pytest.approx(res.std_chi_model[1])


def test_stability_std_shrinks_as_suite_grows():
    medians = []
    for n in (200, 3200):
        a, suites, scores = random_case(n, 30, 0.2, seed=2)
        res = stability(a, suites, scores, repeats=30, seed=0, min_support=5)
        medians.append((res.median_std_chi_bench, res.median_std_chi_model))
    # std ~ 1/sqrt(n): 16× the items → about a quarter of the spread.
    assert medians[1][0] < 0.5 * medians[0][0]
    assert medians[1][1] < 0.5 * medians[0][1]


def test_stability_median_bench_over_covered_only_and_record():
    dense = np.zeros((40, 4))
    dense[:, 0] = np.arange(40) % 3 + 1.0
    dense[::2, 1] = 1.0
    # concepts 2 and 3 never fire (std 0) and must not pull the median to 0
    res = stability(sp.csr_matrix(dense), ["s"] * 40, np.ones(40), repeats=10, min_support=1)
    assert res.covered.tolist() == [True, True, False, False]
    assert res.median_std_chi_bench == pytest.approx(np.median(res.std_chi_bench[:2]))
    assert res.median_std_chi_bench > 0
    rec = res.to_record()
    assert isinstance(rec, StabilitySummary)
    assert rec.repeats == 10 and rec.drop == pytest.approx(0.2)


@pytest.mark.parametrize("kwargs", [{"repeats": 1}, {"drop": 1.5}, {"families": {"f": [99]}}])
def test_stability_bad_settings(kwargs):
    a, suites, scores = random_case(20, 4, 0.5, seed=3)
    with pytest.raises(ConfigError):
        stability(a, suites, scores, **kwargs)


# --------------------------------------------------------------------------- ablation


def _ablation_fixture():
    """Every item fires every concept (background 1.0), so dropping any item moves every χ_model.

    Concept 0 ("top") fires strongly (10.0) on items 0–4, which score 1; concept 1
    ("bottom") fires strongly on items 5–9, which score 0. Items 10–59 score ½ alternating
    0/1 so other concepts sit in the middle. χ_model is a weighted mean of scores, so
    dropping score-1 items can only lower every χ_model (and score-0 items only raise it).
    """
    n, k = 60, 8
    dense = np.ones((n, k))
    dense[:5, 0] = 10.0
    dense[5:10, 1] = 10.0
    scores = np.empty(n)
    scores[:5] = 1.0
    scores[5:10] = 0.0
    scores[10:] = np.arange(50) % 2
    return sp.csr_matrix(dense), scores


def test_ablation_direction_is_known_by_construction():
    a, scores = _ablation_fixture()
    m = compute(a, ["s"] * 60, scores, min_support=5, ci="delta")
    assert np.argmax(m.chi_model_all) == 0 and np.argmin(m.chi_model_all) == 1
    res = ablation(a, scores, m, n=1, items_per_concept=5)
    top, bottom = res.sides
    assert top.side == "top" and bottom.side == "bottom"
    assert top.concepts.tolist() == [0] and bottom.concepts.tolist() == [1]
    assert top.items_dropped.tolist() == [0, 1, 2, 3, 4]
    assert bottom.items_dropped.tolist() == [5, 6, 7, 8, 9]
    before = float(np.median(m.chi_model_all))
    assert top.median_before == pytest.approx(before)
    assert top.median_after < before  # score-1 items gone
    assert bottom.median_after > before  # score-0 items gone
    # Exact value after dropping items 0–4: a concept c ∉ {0, 1} has weight 1 on every
    # item left: items 5–9 score 0, items 10–59 average ½ → (0·5 + 25)/55.
    assert top.median_after == pytest.approx(25 / 55)
    assert "5 scored items of highest a_c(x)" in res.rule
    rec = res.to_record()
    assert isinstance(rec, AblationSummary)
    assert [r.items_dropped for r in rec.rows] == [5, 5]


def test_ablation_skips_unscored_items_and_checks_shapes():
    a, scores = _ablation_fixture()
    scores = scores.copy()
    scores[0] = np.nan  # the most salient item of concept 0 is unscored
    m = compute(a, ["s"] * 60, scores, min_support=5, ci="delta")
    res = ablation(a, scores, m, n=1, items_per_concept=5)
    top = res.sides[0]
    assert 0 not in top.items_dropped.tolist()
    assert len(top.items_dropped) == 5
    with pytest.raises(ConfigError):
        ablation(a[:, :3], scores, m)


# --------------------------------------------------------------------------- overlap


def test_overlap_jaccard_on_hand_built_sets():
    # a covers {0, 1, 2}, b covers {1, 2, 3}, c covers {2}, d covers nothing.
    rows = {
        "a": [1, 1, 1, 0, 0],
        "b": [0, 1, 1, 1, 0],
        "c": [0, 0, 1, 0, 0],
        "d": [0, 0, 0, 0, 0],
    }
    dense = np.array([rows[s] for s in "abcd"], dtype=float)
    m = compute(sp.csr_matrix(dense), list("abcd"), np.ones(4), min_support=1)
    res = overlap(m)
    j = res.jaccard
    assert res.suites == ("a", "b", "c", "d")
    assert j[0, 1] == pytest.approx(2 / 4) and j[1, 0] == pytest.approx(2 / 4)
    assert j[0, 2] == pytest.approx(1 / 3)
    assert j[1, 2] == pytest.approx(1 / 3)
    assert j[0, 3] == 0.0 and j[2, 3] == 0.0
    assert j[0, 0] == 1.0 and j[2, 2] == 1.0
    assert np.isnan(j[3, 3])  # both empty: undefined
    rec = res.to_record()
    assert isinstance(rec, OverlapSummary)
    assert rec.jaccard[3][3] is None and rec.jaccard[0][1] == pytest.approx(0.5)


# --------------------------------------------------------------------------- difficulty


def test_adjusted_family_score_known_case():
    # Family = concepts {0, 1}; it fires on items 0–3 (a_F = 1 each, split over members).
    dense = np.zeros((9, 3))
    dense[0:4, 0] = 0.5
    dense[0:4, 1] = 0.5
    dense[:, 2] = 1.0
    baseline = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1.0])  # family items are hard for the baseline
    cand = np.array([0, 0, 1, 1, 1, 1, 1, 1, np.nan])  # item 8 unscored → not paired
    # Paired items 0–7. Σa·s/Σa = 2/4; Σa·b/Σa = 1/4; mean b over paired = 5/8.
    # χ_adj = 1/2 − 1/4 + 5/8 = 7/8.
    got = adjusted_family_score(sp.csr_matrix(dense), cand, baseline, [0, 1], min_support=1)
    assert got == pytest.approx(7 / 8)
    # A candidate identical to the baseline scores the baseline's overall mean.
    same = adjusted_family_score(sp.csr_matrix(dense), baseline, baseline, [0, 1], min_support=1)
    assert same == pytest.approx(baseline.mean())
    assert adjusted_family_score(sp.csr_matrix(dense), cand, baseline, [0, 1], min_support=5) is None
    per_concept = adjusted_concept_scores(sp.csr_matrix(dense), cand, baseline, min_support=1)
    assert per_concept[0] == pytest.approx(7 / 8)  # concept 0 alone: same items, same weights
    # Concept 2 on all 8 paired items: Σs/8 − Σb/8 + 5/8 = 6/8 − 5/8 + 5/8
    assert per_concept[2] == pytest.approx(6 / 8)
    assert np.isnan(adjusted_concept_scores(sp.csr_matrix(dense), cand, baseline, min_support=5)[0])


def test_family_lift_known_case():
    # Suite "hard" (mean ¼) and "easy" (mean ¾); the family fires with weight 1 on two hard items
    # scoring 1 and 0, and with weight 2 on one easy item scoring 1.
    dense = np.zeros((8, 2))
    dense[[0, 1], 0] = 1.0
    dense[4, 1] = 2.0
    suites = ["hard"] * 4 + ["easy"] * 4
    scores = np.array([1, 0, 0, 0, 1, 1, 1, 0.0])
    # χ(F) = (1 + 0 + 2)/4 = 3/4; expected = (¼ + ¼ + 2·¾)/4 = 1/2; lift = 1/4.
    assert family_lift(sp.csr_matrix(dense), suites, scores, [0, 1], min_support=1) == pytest.approx(0.25)
    assert family_lift(sp.csr_matrix(dense), suites, scores, [0, 1], min_support=4) is None
    with pytest.raises(ConfigError):
        family_lift(sp.csr_matrix(dense), suites, scores, [7])


# --------------------------------------------------------------------------- fidelity


def test_fidelity_warning():
    assert fidelity_warning(0.85, 0.9) is None
    assert fidelity_warning(0.8, 0.9, margin=0.1) is None  # exactly at the margin
    msg = fidelity_warning(0.6, 0.9)
    assert msg is not None and "0.600" in msg and "0.900" in msg
    assert fidelity_warning(0.6, None) is None
    assert fidelity_warning(None, 0.9) is None
    assert fidelity_warning(0.75, 0.9, margin=0.2) is None
    assert fidelity_warning(0.75, 0.9, margin=0.05) is not None
