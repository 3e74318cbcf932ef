"""The rubric judge: a local model grades a response against a written rubric.

The judge model is injected as `judge(prompts: list[str]) -> list[str]`, so scoring never loads
a model itself and tests can pass a plain function. The prompt asks for one JSON object
`{"score": 0..1 or "pass"/"fail", "reason": "..."}`; the parser reads the first JSON object in
the output and returns `Score(None, "judge output unparseable")` when there is none.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from cg_gate.scoring._registry import Score, scorer
from cg_gate.items import Item

Judge = Callable[[list[str]], list[str]]

JUDGE_TEMPLATE = """You are grading an assistant's response against a rubric.

Conversation given to the assistant:
{conversation}

Reference answer (may be empty): {target}

Assistant's response:
<<<
{response}
>>>

Rubric:
{rubric}

Reply with one JSON object and nothing else:
{{"score": <a number from 0 to 1, or "pass" or "fail">, "reason": "<one sentence>"}}
"""

UNPARSEABLE = "judge output unparseable"


def rubric_digest(rubric: str) -> str:
    """sha256 of the rubric and the judge prompt template (recorded in the manifest)."""
    return hashlib.sha256((JUDGE_TEMPLATE + "\x00" + rubric).encode("utf-8")).hexdigest()


def parse_judge_output(text: str) -> Score:
    """Read the first JSON object in `text` with a `score` (number in [0,1], pass/fail, bool)."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict) and "score" in obj:
            value = _judge_value(obj["score"])
            reason = str(obj.get("reason") or "").strip() or "no reason given"
            if value is None:
                return Score(None, f"{UNPARSEABLE}: score {obj['score']!r}")
            return Score(value, f"judge: {reason}")
        start = text.find("{", start + 1)
    return Score(None, UNPARSEABLE)


def _judge_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value) if 0.0 <= value <= 1.0 else None
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("pass", "passed", "yes", "true", "correct"):
            return 1.0
        if v in ("fail", "failed", "no", "false", "incorrect"):
            return 0.0
        try:
            return _judge_value(float(v))
        except ValueError:
            return None
    return None


class RubricJudge:
    """A scorer that grades with a judge model. `score_items` batches its prompts; calling it
    directly needs `judge` set."""

    def __init__(self, rubric: str, judge: Judge | None = None) -> None:
        if not isinstance(rubric, str) or not rubric.strip():
            raise ValueError("rubric must be non-empty text")
        self.rubric = rubric
        self.judge = judge

    @property
    def digest(self) -> str:
        """`rubric_digest` of this rubric."""
        return rubric_digest(self.rubric)

    def prompt(self, item: Item, response: str) -> str:
        """The judge prompt for one response."""
        conversation = "\n".join(f"[{m.role}] {m.content}" for m in item.messages)
        target = item.target if isinstance(item.target, str) else "; ".join(item.target or [])
        return JUDGE_TEMPLATE.format(conversation=conversation, target=target, response=response,
                                     rubric=self.rubric.strip())

    def parse(self, output: str) -> Score:
        """Score from the judge's output."""
        return parse_judge_output(output)

    def __call__(self, item: Item, response: str) -> Score:
        if self.judge is None:
            return Score(None, "no judge model configured")
        outputs = self.judge([self.prompt(item, response)])
        return self.parse(outputs[0] if outputs else "")


@scorer("rubric_judge")
def rubric_judge(rubric: str) -> RubricJudge:
    """Grade with an injected judge model against `rubric` (see `score_items(judge=...)`)."""
    return RubricJudge(rubric)
