"""Competency Gaps concept metrics: χ_bench, coverage classes, χ_model with CIs, lift."""

from cg_gate.metrics._compute import classify, compute
from cg_gate.metrics._records import concept_records, coverage_summaries, top_items_per_concept
from cg_gate.metrics._types import (
    COVERAGE_NAMES,
    MISSING,
    NORMAL,
    OVER,
    UNDER,
    ConceptMetrics,
)
from cg_gate.metrics._compute import ratio_or_nan, ratio_sums
from cg_gate.metrics._input import PreparedInput, as_saliency, check_fraction, check_positive_int, check_scores, prepare

__all__ = [
    "COVERAGE_NAMES",
    "MISSING",
    "NORMAL",
    "OVER",
    "UNDER",
    "ConceptMetrics",
    "PreparedInput",
    "as_saliency",
    "check_fraction",
    "check_positive_int",
    "check_scores",
    "classify",
    "compute",
    "concept_records",
    "coverage_summaries",
    "prepare",
    "ratio_or_nan",
    "ratio_sums",
    "top_items_per_concept",
]
