"""Scorers: a `(item, response) -> Score` protocol, a registry, the built-ins and `score_items`."""

from cg_gate.scoring._builtin import (
    RefusalCall,
    classify_refusal,
    REFUSAL_PATTERNS,
    detect_refusal,
    exact_match,
    extract_choice,
    extract_numbers,
    multiple_choice,
    normalize_answer,
    numeric,
    refusal,
    regex,
)
from cg_gate.scoring._judge import (
    JUDGE_TEMPLATE,
    Judge,
    RubricJudge,
    parse_judge_output,
    rubric_digest,
    rubric_judge,
)
from cg_gate.scoring._registry import SCORERS, Score, Scorer, get_scorer, known_scorers, scorer
from cg_gate.scoring._score import combine, judge_digests, score_items

__all__ = [
    "JUDGE_TEMPLATE",
    "REFUSAL_PATTERNS",
    "SCORERS",
    "Judge",
    "RefusalCall",
    "RubricJudge",
    "Score",
    "Scorer",
    "classify_refusal",
    "combine",
    "detect_refusal",
    "exact_match",
    "extract_choice",
    "extract_numbers",
    "get_scorer",
    "judge_digests",
    "known_scorers",
    "multiple_choice",
    "normalize_answer",
    "numeric",
    "parse_judge_output",
    "refusal",
    "regex",
    "rubric_digest",
    "rubric_judge",
    "score_items",
    "scorer",
]
