"""A family verdict means its name: measured with the default model, SAE and release policy.

Scores are imported (nothing is generated). Saliency is read from the starter suite's
prompts and from suites written for these tests (tests/data/README.md) that no threshold
was tuned on. The model and SAE load once for the module; every text is read once into an
activation cache shared with the `cg-gate run` calls below.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from cg_gate.cli import cli
from cg_gate.default import default_sae_dir
from cg_gate.families import (
    BaselineSide,
    Exercise,
    family_result,
    feature_density,
    reference_texts,
    resolve_families,
)
from cg_gate.metrics import compute
from cg_gate.models import default_model_spec, load_model
from cg_gate.policy import evaluate, load_policy
from cg_gate.record import ActivationCache, FidelitySummary, TokenPolicy
from cg_gate.sae import ExtractionInput, SAESpec, extract, load_sae
from cg_gate.suites import load_suites, starter_suite_path

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "policies" / "default.yaml"
DATA = Path(__file__).resolve().parent / "data" / "suites"
FAMILY_OF = {"refusal": "refusal", "boundaries": "professional-boundaries",
             "over_refusal": "over-refusal", "uncertainty": "uncertainty",
             "time_dates": "time", "arithmetic": "arithmetic"}
REGRESSION_RULE = {"refusal": "CG020", "professional-boundaries": "CG021",
                   "over-refusal": "CG022", "uncertainty": "CG023", "time": "CG024",
                   "arithmetic": "CG025"}


class World:
    """The default model and SAE, the release policy's families, the starter suite's saliency."""

    def __init__(self, cache_root: Path) -> None:
        self.cache_root = cache_root
        self.model = load_model(default_model_spec())
        self.sae = load_sae(SAESpec(path=default_sae_dir(), device="cpu"))
        self.cache = ActivationCache(cache_root / "activations")
        self.policy = load_policy(POLICY)
        self.analysis = self.policy.analysis.to_settings()
        d_sae = self.sae.info.d_sae
        self.families = resolve_families(
            self.policy.concepts, labels=None, d_sae=d_sae, exemplar_saliency=self.texts,
            max_density=self.analysis.max_density)
        self.density = feature_density(self.texts(reference_texts()))
        self.items = [it for s in load_suites([str(starter_suite_path())]) for it in s.items]
        self.saliency = self.read([ExtractionInput.for_item(it) for it in self.items])
        self.categories = np.array([it.category for it in self.items])
        # χ_bench, coverage classes and min_support do not depend on scores; lift does, and
        # no check here reads it, so one set of concept metrics serves every perturbation
        self.metrics = compute(self.saliency, [it.suite for it in self.items],
                               np.ones(len(self.items)), min_support=self.analysis.min_support,
                               n_boot=1)

    def read(self, inputs: list[ExtractionInput]) -> sp.csr_matrix:
        return extract(self.model, self.sae, inputs, token_policy=TokenPolicy(), cache=self.cache,
                       batch_size=16, progress=False).saliency.tocsr()

    def texts(self, texts: list[str]) -> sp.csr_matrix:
        return self.read([ExtractionInput.for_text(t) for t in texts])

    def results(self, cand: np.ndarray, base: np.ndarray | None, *, n_boot: int = 1000,
                only: str | None = None):
        """Family results on the starter suite for candidate (and baseline) scores."""
        a = self.analysis
        ids = [it.id for it in self.items]
        suites = [it.suite for it in self.items]
        side = None if base is None else BaselineSide(saliency=self.saliency, scores=base,
                                                      item_ids=ids, suites=suites)
        return {key: family_result(
            self.families[key], metrics=self.metrics, saliency=self.saliency, scores=cand,
            item_ids=ids, suites=suites, n_boot=n_boot, confidence=a.confidence, seed=a.seed,
            baseline=side, categories=list(self.categories), intended=spec.categories,
            min_purity=a.min_purity, density=self.density, max_density=a.max_density,
            exercise=Exercise(a.exercise_strength, a.exercise_min_items))
            for key, spec in self.policy.concepts.items() if only in (None, key)}

    def verdicts(self, results) -> dict[str, str]:
        fid = FidelitySummary(fve=0.9, mean_l0=30.0, dead_share=0.05)
        out = evaluate(self.policy, families=results, fidelity=fid, stability=None,
                       suites=["starter"], today=dt.date(2026, 1, 1))
        return {v.rule_id: v.status for v in out.verdicts}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    return World(tmp_path_factory.mktemp("meaning") / "cache")


# Over-refusal prompts share their features with refusal prompts (they sound risky whether
# or not they are harmful): few features pass the member tests and they separate held-out
# texts only weakly. The figure is reported, not hidden; the other five separate well.
MIN_MEMBERS = {"over-refusal": 1}
MIN_HELDOUT_AUROC = {"over-refusal": 0.55}


def test_members_are_selective_on_held_out_exemplars(world: World) -> None:
    for key, fam in world.families.items():
        sel = fam.selection
        assert len(fam.members) >= MIN_MEMBERS.get(key, 10), key
        assert sel.n_heldout >= 15 and sel.n_negatives_heldout >= 200, key
        # the family's summed saliency tells held-out exemplars from held-out negatives
        assert sel.heldout_auroc >= MIN_HELDOUT_AUROC.get(key, 0.75), (key, sel.heldout_auroc)
        assert sel.rejected["dense"] > 0 and sel.rejected["unspecific"] > 0, key
        assert all(m.density <= world.analysis.max_density for m in fam.members), key


def test_each_shipped_family_is_pure_on_the_starter_suite(world: World) -> None:
    results = world.results(np.ones(len(world.items)), None, n_boot=0)
    for cat, key in FAMILY_OF.items():
        p = results[key].purity
        assert p.intended == [cat]
        assert p.judged and p.intended_share >= 0.5, (key, p.intended_share)


def _perturbed(world: World, rng: np.random.Generator, key: str, inside: bool):
    base = (rng.random(len(world.items)) < 0.8).astype(float)
    cand = base.copy()
    own = world.categories == world.policy.concepts[key].categories[0]
    if inside:  # a real regression of the family's own behaviour: most passing items fail
        hit = own & (base == 1) & (rng.random(len(base)) < 0.7)
    else:  # another category fails completely
        others = sorted(set(world.categories[~own]))
        hit = world.categories == others[rng.integers(len(others))]
    cand[hit] = 0.0
    return cand, base


@pytest.mark.parametrize("key", ["refusal", "professional-boundaries", "time"])
def test_regression_rules_follow_the_family_not_other_categories(world: World, key: str) -> None:
    rng = np.random.default_rng(sum(map(ord, key)))
    rule = REGRESSION_RULE[key]
    outside = inside = 0
    for _ in range(100):
        cand, base = _perturbed(world, rng, key, inside=False)
        status = world.verdicts(world.results(cand, base, n_boot=200, only=key))[rule]
        outside += status == "pass"
        cand, base = _perturbed(world, rng, key, inside=True)
        status = world.verdicts(world.results(cand, base, n_boot=200, only=key))[rule]
        inside += status in ("fail", "warn")  # violated (time's rule is a warning)
    assert outside >= 95 and inside >= 95, (key, outside, inside)


def test_a_planted_gap_makes_its_own_family_rank_worst(world: World) -> None:
    rng = np.random.default_rng(0)
    base = (rng.random(len(world.items)) < 0.7).astype(float)
    for cat, key in FAMILY_OF.items():
        scores = base.copy()
        scores[world.categories == cat] = 0.0
        results = world.results(scores, None, n_boot=0)
        pooled = {k: r.performance.chi_model.value for k, r in results.items()}  # all items
        if pooled[key] is None:  # too little support to rank (over-refusal): never a ranking
            assert results[key].performance.support < world.analysis.min_support, cat
            continue
        ranked = {k: v for k, v in pooled.items() if v is not None}
        assert min(ranked, key=ranked.get) == key, (cat, pooled)


def _run(world: World, suite: Path, out: Path) -> dict[str, str]:
    res = CliRunner().invoke(cli, [
        "run", "--suite", str(suite), "--policy", str(POLICY), "--cache-dir",
        str(world.cache_root), "--out", str(out), "--format", "md", "--no-progress"])
    assert res.exit_code in (0, 1), res.output
    run = json.loads((out / "results.json").read_text())
    return {v["rule_id"]: v["status"] for v in run["verdicts"]}


def test_coverage_discriminates_between_suites(world: World, tmp_path: Path) -> None:
    coding = _run(world, DATA / "coding-only.jsonl", tmp_path / "coding")
    harmful = _run(world, DATA / "harmful-only.jsonl", tmp_path / "harmful")
    # a suite with no safety content does not cover refusal; harmful requests do
    assert coding["CG001"] == "fail" and harmful["CG001"] == "pass"
    # and a coding suite cannot judge how the model refuses
    assert coding["CG010"] == "insufficient_data"
