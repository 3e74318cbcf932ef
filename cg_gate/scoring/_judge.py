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


# --------------------------------------------------------------------------- calibration

CALIBRATION_KIND = "cg-gate/judge-calibration"
CALIBRATION_PREFIX = "cg-gate-calibration-"
PASS_AT = 0.5
"""A judge score (or a person's score) of at least this counts as a pass."""


def prompt_digest() -> str:
    """sha256 of the judge prompt template alone (recorded beside the rubric digest)."""
    return hashlib.sha256(JUDGE_TEMPLATE.encode("utf-8")).hexdigest()


def calibration_filename(rubric: str) -> str:
    """The calibration file's name beside a judge: one per rubric."""
    return f"{CALIBRATION_PREFIX}{rubric_digest(rubric)[:16]}.json"


def cohen_kappa(confusion: Any) -> float | None:
    """Cohen's κ of a 2×2 table [[both fail, person fail & judge pass], [person pass & judge
    fail, both pass]]: (p_o − p_e) / (1 − p_e). None when undefined (no items, or both raters
    put every item in the same class, so p_e = 1)."""
    import numpy as np

    t = np.asarray(confusion, dtype=np.float64)
    n = t.sum()
    if n <= 0:
        return None
    po = np.trace(t) / n
    pe = float((t.sum(axis=1) * t.sum(axis=0)).sum()) / (n * n)
    if pe >= 1.0:
        return None
    return float((po - pe) / (1.0 - pe))


def kappa_interval(human: Any, judge: Any, *, samples: int = 1000, confidence: float = 0.95,
                   seed: int = 0) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of κ over items (resamples where κ is undefined are
    left out; None, None when fewer than 2 items or no resample defines κ)."""
    import numpy as np

    h = np.asarray(human, dtype=np.int64)
    j = np.asarray(judge, dtype=np.int64)
    n = h.size
    if n < 2 or samples < 1:
        return None, None
    codes = 2 * h + j  # 0: ff, 1: fp, 2: pf, 3: pp
    idx = np.random.default_rng(seed).integers(0, n, size=(samples, n))
    counts = np.stack([(codes[idx] == c).sum(axis=1) for c in range(4)], axis=1).astype(np.float64)
    ff, fp, pf, pp = counts.T
    po = (ff + pp) / n
    pe = ((ff + fp) * (ff + pf) + (pf + pp) * (fp + pp)) / (n * n)
    ok = pe < 1.0
    if not ok.any():
        return None, None
    kappas = (po[ok] - pe[ok]) / (1.0 - pe[ok])
    alpha = (1.0 - confidence) / 2.0
    return float(np.quantile(kappas, alpha)), float(np.quantile(kappas, 1.0 - alpha))


def _human_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value) if 0.0 <= value <= 1.0 else None
    if isinstance(value, str):
        return _judge_value(value)
    return None


def read_human_labels(path: Any) -> list[tuple[Item, str, float]]:
    """(item, response, person's score) from a JSONL file of human-labelled responses.

    Each line: `{"id": ..., "input": "..." or "messages": [...], "response": "...",
    "human": "pass" | "fail" | 0..1 | true/false, "target": optional}`. A bad line is a
    ConfigError (exit 2) naming the file and line.
    """
    from pathlib import Path

    from cg_gate.errors import ConfigError
    from cg_gate.jsonl import jsonl_rows

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the human labels ({exc.strerror or exc})", path=path,
                          fix="pass a JSONL file of human-labelled responses") from None
    fix = ('write one object per line: {"id": "h1", "input": "...", "response": "...", '
           '"human": "pass"}')
    out: list[tuple[Item, str, float]] = []
    seen: set[str] = set()
    for lineno, row in jsonl_rows(text, path, error=ConfigError, fix=fix):
        def bad(msg: str) -> ConfigError:
            return ConfigError(msg, path=path, line=lineno, fix=fix)

        if not isinstance(row, dict):
            raise bad("each line must be a JSON object")
        rid = str(row.get("id", f"line-{lineno}"))
        if rid in seen:
            raise bad(f"duplicate id '{rid}'")
        seen.add(rid)
        response = row.get("response")
        if not isinstance(response, str):
            raise bad(f"item '{rid}': 'response' must be the text the person judged")
        human = _human_value(row.get("human"))
        if human is None:
            raise bad(f"item '{rid}': 'human' must be pass/fail, true/false or a number in [0, 1] "
                      f"(got {row.get('human')!r})")
        messages = row.get("messages")
        if messages is None:
            prompt = row.get("input")
            if not isinstance(prompt, str):
                raise bad(f"item '{rid}': give 'input' (text) or 'messages' (chat turns)")
            messages = [{"role": "user", "content": prompt}]
        try:
            item = Item(id=rid, suite="human-labels", messages=messages, target=row.get("target"))
        except ValueError as exc:
            raise bad(f"item '{rid}': {str(exc).splitlines()[0]}") from None
        out.append((item, response, human))
    if not out:
        raise ConfigError("the human labels file holds no items", path=path, fix=fix)
    return out


def calibrate(judge: Judge, rubric: str, labelled: list[tuple[Item, str, float]], *,
              bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Score `labelled` responses with the judge and measure agreement with the people.

    Person and judge each pass a response at a score ≥ 0.5. Items whose judge output has no
    readable score are counted (`n_unparseable`) and left out of the agreement figures.
    Returns the calibration's figures and per-item rows (see `calibration_record`).
    """
    rj = RubricJudge(rubric, judge)
    outputs = list(judge([rj.prompt(item, response) for item, response, _ in labelled]))
    if len(outputs) != len(labelled):
        raise ValueError(f"the judge returned {len(outputs)} outputs for {len(labelled)} prompts")
    rows, human, judged = [], [], []
    for (item, _, person), out in zip(labelled, outputs):
        score = rj.parse(out)
        rows.append({"id": item.id, "human": person, "judge": score.value, "reason": score.reason})
        if score.value is not None:
            human.append(int(person >= PASS_AT))
            judged.append(int(score.value >= PASS_AT))
    confusion = [[0, 0], [0, 0]]
    for h, j in zip(human, judged):
        confusion[h][j] += 1
    n = len(human)
    low, high = kappa_interval(human, judged, samples=bootstrap, confidence=confidence, seed=seed)
    return {
        "n_items": n, "n_unparseable": len(labelled) - n,
        "accuracy": (confusion[0][0] + confusion[1][1]) / n if n else None,
        "kappa": cohen_kappa(confusion), "kappa_low": low, "kappa_high": high,
        "confidence": confidence, "bootstrap": bootstrap, "seed": seed, "threshold": PASS_AT,
        "confusion": confusion, "items": rows,
    }


def _canonical(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False)


def calibration_record(figures: dict[str, Any], *, rubric: str, judge_model: str,
                       judge_digest: str | None, human_path: str, human_digest: str,
                       created_at: str) -> dict[str, Any]:
    """The stored calibration: figures, what was calibrated (judge model, prompt and rubric
    digests, the human file's digest) and `digest`, the sha256 of everything else."""
    record = {
        "kind": CALIBRATION_KIND, "version": 1, "created_at": created_at,
        "judge": {"model": judge_model, "model_digest": judge_digest},
        "prompt_digest": prompt_digest(), "rubric_digest": rubric_digest(rubric), "rubric": rubric,
        "human": {"path": human_path, "digest": human_digest},
        **figures,
    }
    record["digest"] = hashlib.sha256(_canonical(record).encode("utf-8")).hexdigest()
    return record


def read_calibration(path: Any) -> dict[str, Any]:
    """A stored calibration, its digest checked (ConfigError, exit 2, when it does not hold)."""
    from pathlib import Path

    from cg_gate.errors import ConfigError

    path = Path(path)
    fix = "re-run `cg-gate judge calibrate` to write it again"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the judge calibration ({exc.strerror or exc})", path=path,
                          fix=fix) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not valid JSON ({exc.msg})", path=path, line=exc.lineno,
                          column=exc.colno, fix=fix) from None
    if not isinstance(data, dict) or data.get("kind") != CALIBRATION_KIND:
        raise ConfigError("not a cg-gate judge calibration", path=path, fix=fix)
    body = {k: v for k, v in data.items() if k != "digest"}
    if hashlib.sha256(_canonical(body).encode("utf-8")).hexdigest() != data.get("digest"):
        raise ConfigError("the calibration's digest does not match its content (edited by hand?)",
                          path=path, fix=fix)
    return data
