"""Concept families: labels, resolving a family to SAE features, and family metrics."""

from cg_gate.families._labels import Labels, labels_digest, load_labels
from cg_gate.families._resolve import (
    ExemplarScore,
    ResolvedFamily,
    SaliencyFn,
    exemplar_texts,
    reference_texts,
    resolve_family,
    select_by_exemplars,
)
from cg_gate.families._score import (
    BaselineSide,
    bootstrap_ratio,
    family_den,
    family_result,
    paired_bootstrap_delta,
)
from cg_gate.policy import DEFAULT_REFERENCE, data_dir, load_texts, resolve_text_path

__all__ = [
    "DEFAULT_REFERENCE",
    "BaselineSide",
    "ExemplarScore",
    "Labels",
    "ResolvedFamily",
    "SaliencyFn",
    "bootstrap_ratio",
    "data_dir",
    "exemplar_texts",
    "family_den",
    "family_result",
    "labels_digest",
    "load_labels",
    "load_texts",
    "paired_bootstrap_delta",
    "reference_texts",
    "resolve_family",
    "select_by_exemplars",
]
