"""Several responses per item: generation, scoring, the item's mean, flaky items, the cache,
per-sample activations, and the `consistency` rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cg_gate.cli import cli
from cg_gate.items import Item, ScorerSpec
from cg_gate.models import LoadSettings
from cg_gate.pipeline import RunConfig, SideConfig
from cg_gate.pipeline._handles import Checkpoint, SAEHandle
from cg_gate.pipeline._record import item_records
from cg_gate.pipeline._run import with_sampling
from cg_gate.pipeline._side import SideResult, item_activations, responses_and_scores
from cg_gate.record import (
    FidelitySummary,
    GenerationSettings,
    ResponseCache,
    RunCache,
    TokenPolicy,
    category_breakdown,
    response_key,
)

PROMPTS = [
    ("q1", "facts", "What is the capital of France?"),
    ("q2", "chat", "The quick brown fox jumps over the lazy dog."),
    ("q3", "chat", "Please summarise the following paragraph in one sentence."),
    ("q4", "facts", "I cannot help with that request."),
    ("q5", "facts", "What is the capital of Spain? Madrid."),
    ("q6", "chat", "Tell me about the lazy dog and the brown fox."),
]


def _items() -> list[Item]:
    # A response passes when it holds an 'e': random text does about half the time.
    spec = ScorerSpec(name="regex", args={"must_include": ["e"]})
    return [Item(id=i, suite="tiny", category=c, messages=[{"role": "user", "content": p}],
                 scorers=[spec]) for i, c, p in PROMPTS]


def _config(tmp: Path, model: Path, sae: Path, *, samples: int, temperature: float,
            text: str = "prompt") -> RunConfig:
    config = RunConfig(candidate=SideConfig(model=str(model)), sae=str(sae), cache_dir=tmp,
                       samples=samples, progress=False, batch_size=4,
                       generation=GenerationSettings(mode="generate", max_new_tokens=5,
                                                     temperature=temperature, batch_size=4),
                       token_policy=TokenPolicy(text=text))
    return with_sampling(config, None)


def _side(config: RunConfig, items: list[Item]) -> SideResult:
    cache = RunCache(config.cache_dir)
    ckpt = Checkpoint(config.candidate, LoadSettings(), cache, lambda _m: None)
    sae = SAEHandle(config.sae, LoadSettings(), cache, lambda _m: None)
    responses = responses_and_scores(ckpt, items, config, cache, candidate=True, judge=None,
                                     log=lambda _m: None)
    acts = item_activations(ckpt, sae, items, responses, config, cache, lambda _m: None)
    return SideResult(info=ckpt.info, responses=responses, activations=acts)


@pytest.fixture(scope="module")
def sampled(tmp_path_factory, tiny_model_dir, tiny_sae_dir):
    cache = tmp_path_factory.mktemp("samples-cache")
    config = _config(cache, tiny_model_dir, tiny_sae_dir, samples=3, temperature=1.0)
    items = _items()
    return config, items, _side(config, items)


def test_three_samples_give_three_scored_responses_and_the_item_score_is_their_mean(sampled):
    config, items, side = sampled
    rows = item_records(items, side, None)
    assert [len(r.samples) for r in rows] == [3] * 6
    # Sampling really sampled: some item's three responses are not all the same.
    assert any(len({s.response for s in r.samples}) > 1 for r in rows)
    for r in rows:
        scores = [s.score for s in r.samples]
        assert all(v in (0.0, 1.0) for v in scores)  # regex: pass or fail
        assert r.score == pytest.approx(sum(scores) / 3)  # the item score is the mean
        passed = sum(v >= 0.5 for v in scores)
        assert r.pass_rate == pytest.approx(passed / 3)
        assert r.flaky == (0 < passed < 3)  # some samples pass and some fail
        assert r.response == r.samples[0].response
        assert all(s.tokens is not None for s in r.samples)
    # The random tiny model and seed make a mix, so the flag is exercised both ways.
    assert {r.flaky for r in rows} == {True, False}
    cats = {c.category: c for c in category_breakdown(rows, {})}
    for name, cat in cats.items():
        mine = [r for r in rows if r.category == name]
        assert cat.sampled == 3 and cat.flaky == sum(r.flaky for r in mine)
        lengths = sorted(s.tokens for r in mine for s in r.samples)
        assert cat.response_tokens.n == 9
        assert (cat.response_tokens.min, cat.response_tokens.max) == (lengths[0], lengths[-1])
        assert cat.response_tokens.median == lengths[4]  # 9 values: the 5th
        # p90 by linear interpolation between the 8th and 9th of 9 values (position 7.2).
        assert cat.response_tokens.p90 == pytest.approx(lengths[7] + 0.2 * (lengths[8] - lengths[7]))


def test_each_sample_has_its_own_seeded_cache_entry_and_a_rerun_loads_no_model(
        sampled, monkeypatch):
    config, items, side = sampled
    info = side.info
    rc = ResponseCache(Path(config.cache_dir) / "responses")
    for k in range(3):
        keys = rc.keys_for(info.digest, info.chat_template_digest, config.generation,
                           [it.input_digest() for it in items], sample=k)
        assert [rc.get(key) for key in keys] == [s[k] for s in side.responses.samples]
    # Sample 0 keeps the single-sample key layout; later samples add their index.
    assert response_key("m", None, "s", "i") == response_key("m", None, "s", "i", 0)
    assert response_key("m", None, "s", "i", 1) != response_key("m", None, "s", "i", 0)

    import cg_gate.models

    def boom(*_a, **_k):
        raise AssertionError("the re-run loaded a model")

    monkeypatch.setattr(cg_gate.models, "load_model", boom)
    again = _side(config, items)
    assert again.responses.samples == side.responses.samples
    np.testing.assert_array_equal(again.responses.scores, side.responses.scores)
    gen = next(c for c in again.responses.costs if c.stage == "generate")
    assert (gen.items, gen.computed, gen.tokens_out) == (18, 0, 0)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_per_sample_activations_are_averaged_per_item(sampled, tiny_loaded, tiny_sae, tmp_path):
    from cg_gate.sae import ExtractionInput, extract

    config, items, side = sampled
    config = config.model_copy(update={"token_policy": TokenPolicy(text="response")})
    per_item = _side(config, items)
    policy = TokenPolicy(text="response")
    checked_empty = False
    for i, it in enumerate(items):
        texts = side.responses.samples[i]
        ex = extract(tiny_loaded, tiny_sae, [ExtractionInput.for_item(it, t) for t in texts],
                     token_policy=policy, cache=None, batch_size=1, progress=False)
        # a_c(x) = mean of a_c(x, k) over the samples with counted tokens (an empty response
        # has no saliency to average).
        expected = ex.saliency.toarray()[ex.n_tokens > 0].mean(axis=0)
        got = per_item.activations.saliency.getrow(i).toarray()[0]
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
        assert per_item.activations.n_tokens[i] == ex.n_tokens.sum()
        checked_empty |= bool((ex.n_tokens == 0).any())
    assert checked_empty  # the seed makes one empty response, so that case is exercised


def test_more_than_one_sample_at_temperature_zero_exits_2_with_the_fix(tmp_path):
    res = CliRunner().invoke(cli, ["analyze", "--samples", "3", "--out", str(tmp_path / "o"),
                                   "--cache-dir", str(tmp_path / "c"), "--no-progress"])
    assert res.exit_code == 2
    assert "3 samples per item" in res.output and "--temperature" in res.output
    assert "Traceback" not in res.output


def test_the_policy_sets_samples_and_temperature_and_the_command_line_wins(tmp_path):
    from cg_gate.policy import SamplingSpec

    class _Policy:
        sampling = SamplingSpec(samples=4, temperature=0.8)

    base = RunConfig(cache_dir=tmp_path)
    got = with_sampling(base, _Policy()).generation
    assert (got.samples_per_item, got.temperature) == (4, 0.8)
    cli_wins = base.model_copy(update={"samples": 2, "generation": base.generation.model_copy(
        update={"temperature": 1.2})})
    got = with_sampling(cli_wins, _Policy()).generation
    assert (got.samples_per_item, got.temperature) == (2, 1.2)
    assert with_sampling(base, None).generation.samples_per_item == 1


# --------------------------------------------------------------------------- consistency rule

POLICY = """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: p}
concepts:
  early: {match: {ids: [0]}, categories: [facts]}
rules:
  - {id: C1, check: consistency, max_flaky_share: 0.25}
  - {id: C2, check: consistency, max_flaky_share: 0.5}
  - {id: C3, check: consistency, concept: early, max_flaky_share: 0.2}
  - {id: C4, check: consistency, categories: [tiny/chat], max_flaky_share: 0.0}
"""


def _family():
    from cg_gate.record import (
        FamilyCoverage,
        FamilyPerformance,
        FamilyPurity,
        FamilyResult,
        Interval,
    )

    return FamilyResult(
        name="early", members=[],
        coverage=FamilyCoverage(members=1, covered=1, covered_fraction=1.0, mean_chi_bench=1.0),
        performance=FamilyPerformance(chi_model=Interval(value=None), support=0),
        purity=FamilyPurity(intended=["facts"]))


def _verdicts(tmp_path: Path, counts: dict) -> dict:
    from cg_gate.policy import SampleCounts, evaluate, load_policy

    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    policy = load_policy(path)
    result = evaluate(policy, families={"early": _family()}, fidelity=FidelitySummary(
        fve=None, mean_l0=None, dead_share=None), stability=None, suites=["tiny"],
        today=dt.date(2026, 1, 1),
        consistency={k: SampleCounts(sampled=a, flaky=b) for k, (a, b) in counts.items()})
    return {v.rule_id: v for v in result.verdicts}


def test_consistency_rule_gates_on_the_flaky_share_per_category(tmp_path):
    # facts: 1 of 3 sampled items flaky (33%); chat: 2 of 3 (67%).
    v = _verdicts(tmp_path, {("tiny", "facts"): (3, 1), ("tiny", "chat"): (3, 2)})
    assert v["C1"].status == "fail"  # 67% and 33% > 25%
    assert "tiny/chat 2/3 (67%)" in v["C1"].message and "tiny/facts 1/3 (33%)" in v["C1"].message
    assert v["C1"].evidence["by_category"]["tiny/chat"]["flaky_share"] == pytest.approx(2 / 3)
    assert v["C2"].status == "fail"  # chat 67% > 50%; facts 33% is fine
    assert "tiny/facts" not in v["C2"].message
    assert v["C3"].status == "fail"  # the family's category facts: 33% > 20%
    assert list(v["C3"].evidence["by_category"]) == ["tiny/facts"]
    assert v["C4"].status == "fail"
    v = _verdicts(tmp_path, {("tiny", "facts"): (4, 0), ("tiny", "chat"): (4, 0)})
    assert [v[r].status for r in ("C1", "C2", "C3", "C4")] == ["pass"] * 4


def test_consistency_without_sampled_items_is_insufficient_data_never_a_pass(tmp_path):
    v = _verdicts(tmp_path, {("tiny", "facts"): (0, 0), ("tiny", "chat"): (0, 0)})
    assert {r.status for r in v.values()} == {"insufficient_data"}
    assert "--samples 2" in v["C1"].message


@pytest.mark.parametrize("rule, needle", [
    ("{id: C9, check: consistency, concept: nope, max_flaky_share: 0.1}",
     "concept 'nope' is not a declared family"),
    ("{id: C9, check: consistency, max_flaky_share: 1.5}", "less than or equal to 1"),
    ("{id: C9, check: consistency, concept: early, categories: [facts], max_flaky_share: 0.1}",
     "not both"),
    ("{id: J9, check: judge_agreement, concept: early, min_kappa: 0.5}",
     "about the rubric judge, not a family"),
])
def test_bad_consistency_and_judge_rules_exit_2_at_their_line(tmp_path, rule, needle):
    path = tmp_path / "p.yaml"
    path.write_text("apiVersion: cg-gate/v1\nkind: GatePolicy\nmetadata: {name: p}\n"
                    "concepts:\n  early: {match: {ids: [0]}}\nrules:\n  - " + rule + "\n")
    res = CliRunner().invoke(cli, ["policy", "validate", str(path)])
    assert res.exit_code == 2, res.output
    assert f"{path}:7" in res.output and needle in res.output


def test_generate_samples_refuses_several_greedy_samples_before_loading_anything():
    from cg_gate.errors import ConfigError
    from cg_gate.models import generate_samples

    def load():
        raise AssertionError("loaded a model")

    settings = GenerationSettings(mode="generate", max_new_tokens=4, samples_per_item=2)
    with pytest.raises(ConfigError, match="2 samples per item need sampling") as err:
        generate_samples(load, None, _items(), settings, cache=ResponseCache(Path("/nonexistent")))
    assert "--temperature" in err.value.fix


def test_an_item_score_is_the_mean_of_its_scored_samples_only():
    from cg_gate.pipeline._side import Responses, _item_reason, _mean_score

    assert _mean_score([1.0, None, 0.0]) == pytest.approx(0.5)
    assert np.isnan(_mean_score([None, None]))
    assert _item_reason([1.0, None, 0.0], ["ok", "judge output unparseable", "no"]) == (
        "1/2 scored samples pass (1 unscored); first: ok")
    r = Responses(texts=["a"], scores=np.array([0.5]), reasons=[None],
                  sample_scores=[[1.0, None, 0.0]])
    assert r.pass_rate(0) == 0.5 and r.flaky(0)
    one = Responses(texts=["a"], scores=np.array([1.0]), reasons=[None],
                    sample_scores=[[1.0, None]])
    assert one.pass_rate(0) is None and not one.flaky(0)  # one scored sample: no rate
