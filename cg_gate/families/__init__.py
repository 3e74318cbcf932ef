"""Concept families: exemplar texts, labels, resolving a family to SAE features, family metrics.

Texts and labels load eagerly (policies validate their exemplar files with them, and
`cg-gate policy validate` imports no scipy); resolving and scoring, which need the metrics
stack, load on first use of their names.
"""

from importlib import import_module
from typing import Any

from cg_gate.families._labels import Labels, labels_digest, load_labels
from cg_gate.families._texts import DEFAULT_REFERENCE, data_dir, load_texts, resolve_text_path

_LAZY = {
    "ExemplarScore": "_resolve",
    "ResolvedFamily": "_resolve",
    "SaliencyFn": "_resolve",
    "exemplar_texts": "_resolve",
    "reference_texts": "_resolve",
    "resolve_family": "_resolve",
    "select_by_exemplars": "_resolve",
    "BaselineSide": "_score",
    "bootstrap_ratio": "_score",
    "family_den": "_score",
    "family_result": "_score",
    "paired_bootstrap_delta": "_score",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f"cg_gate.families.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cg_gate.families' has no attribute {name!r}")


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
    "resolve_text_path",
    "select_by_exemplars",
]
