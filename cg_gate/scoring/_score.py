"""Scoring a suite's items: build each item's scorers, batch the judge, combine the values."""

from __future__ import annotations

from typing import Protocol, Sequence

from cg_gate.errors import SuiteError
from cg_gate.scoring._builtin import RefusalCall, RefusalScorer, classify_refusal
from cg_gate.scoring._judge import Judge, RubricJudge
from cg_gate.scoring._registry import Score, Scorer, get_scorer
from cg_gate.items import Item, ScorerSpec


class RefusalDetector(Protocol):
    """What `score_items` needs from a refusal classifier: P(refusal) for a batch of
    (request, response) pairs, and the combined call from a probability and the rules' call."""

    def probabilities(self, pairs: list[tuple[str, str]]) -> Sequence[float]: ...

    def decide(self, probability: float, rules: RefusalCall) -> RefusalCall: ...


def combine(item: Item, parts: Sequence[tuple[ScorerSpec, Score]]) -> Score:
    """One score from an item's scorer scores: 'all' → the minimum (every scorer must pass),
    'weighted' → the weighted mean. Any unscorable part makes the item unscorable."""
    if not parts:
        return Score(None, "no scorer")
    if len(parts) == 1:
        return parts[0][1]
    reason = "; ".join(f"{spec.name}: {s.reason}" for spec, s in parts)
    if any(s.value is None for _, s in parts):
        return Score(None, reason)
    if item.combine == "weighted":
        total = sum(spec.weight for spec, _ in parts)
        if total <= 0:
            return Score(None, f"scorer weights sum to {total}; {reason}")
        value = sum(spec.weight * s.value for spec, s in parts) / total  # type: ignore[operator]
        return Score(min(1.0, max(0.0, value)), reason)
    return Score(min(s.value for _, s in parts), reason)  # type: ignore[type-var]


def score_items(items: Sequence[Item], responses: Sequence[str | None], *,
                judge: Judge | None = None, refusal: RefusalDetector | None = None) -> list[Score]:
    """Score each item's response.

    An item with an imported score keeps it (reason "imported", or its imported reason);
    an item with no scorer and no score gets `Score(None, "no scorer")`; a missing response
    gets `Score(None, "no response")`. Rubric-judge prompts from all items go to `judge` in
    one call; without a judge they score None. With a `refusal` detector, every non-empty
    response a `refusal` scorer reads goes to it in one batch (each distinct text once) and the
    scorer scores the combined call; without one (and for an empty response), the rules alone
    decide.
    """
    if len(items) != len(responses):
        raise SuiteError(f"{len(items)} items but {len(responses)} responses",
                         fix="pass one response per item, in item order")
    built: dict[str, Scorer] = {}

    def build(spec: ScorerSpec) -> Scorer:
        key = spec.model_dump_json()
        if key not in built:
            built[key] = get_scorer(spec)
        return built[key]

    results: list[Score | None] = [None] * len(items)
    parts: list[list[tuple[ScorerSpec, Score | None]]] = [[] for _ in items]
    pending: list[tuple[int, int, str, RubricJudge]] = []  # item index, part index, prompt, scorer
    # item index, part index, (request, response), scorer
    refusals: list[tuple[int, int, tuple[str, str], RefusalScorer]] = []
    for i, (item, response) in enumerate(zip(items, responses)):
        if item.score is not None:
            results[i] = Score(item.score, "imported" if not item.reason else f"imported: {item.reason}")
            continue
        if not item.scorers:
            results[i] = Score(None, "no scorer")
            continue
        if response is None:
            response = item.response
        if response is None:
            results[i] = Score(None, "no response")
            continue
        for spec in item.scorers:
            sc = build(spec)
            if isinstance(sc, RubricJudge):
                if judge is None:
                    parts[i].append((spec, Score(None, "no judge model configured")))
                else:
                    pending.append((i, len(parts[i]), sc.prompt(item, response), sc))
                    parts[i].append((spec, None))
            elif isinstance(sc, RefusalScorer) and refusal is not None and response.strip():
                refusals.append((i, len(parts[i]), (item.prompt, response), sc))
                parts[i].append((spec, None))
            else:
                parts[i].append((spec, sc(item, response)))
    if pending and judge is not None:
        outputs = list(judge([p for _, _, p, _ in pending]))
        if len(outputs) != len(pending):
            raise SuiteError(f"the judge returned {len(outputs)} outputs for {len(pending)} prompts",
                             fix="the judge callable must return one output per prompt")
        for (i, j, _, sc), out in zip(pending, outputs):
            parts[i][j] = (parts[i][j][0], sc.parse(out))
    if refusals and refusal is not None:
        pairs = list(dict.fromkeys(pair for _, _, pair, _ in refusals))
        probs = list(refusal.probabilities(pairs))
        if len(probs) != len(pairs):
            raise SuiteError(f"the refusal classifier returned {len(probs)} probabilities for {len(pairs)} responses",
                             fix="the classifier must return one probability per (request, response) pair")
        by_pair = dict(zip(pairs, probs))
        for i, j, pair, sc in refusals:
            call = refusal.decide(by_pair[pair], classify_refusal(pair[1]))
            parts[i][j] = (parts[i][j][0], sc.score_call(call))
    for i, item in enumerate(items):
        if results[i] is None:
            results[i] = combine(item, [(spec, s) for spec, s in parts[i] if s is not None])
    return [r for r in results if r is not None]


def judge_digests(items: Sequence[Item]) -> dict[str, str]:
    """{rubric digest: rubric} for every rubric_judge scorer among the items (for the manifest)."""
    out: dict[str, str] = {}
    for item in items:
        for spec in item.scorers:
            if spec.name == "rubric_judge" and isinstance(spec.args.get("rubric"), str):
                sc = get_scorer(spec)
                out[sc.digest] = spec.args["rubric"]  # type: ignore[attr-defined]
    return out
