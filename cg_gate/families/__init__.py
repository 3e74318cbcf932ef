"""Concept families: exemplar texts, labels, resolving a family to SAE features, family metrics.

Texts and labels load eagerly (policies validate their exemplar files with them, and
`cg-gate policy validate` imports no scipy); selecting, resolving, scoring and
attribution, which need the metrics stack, load on first use of their names.
"""

from importlib import import_module
from typing import Any

from cg_gate.families._labels import Labels, compile_label_pattern, labels_digest, load_labels
from cg_gate.families._texts import (
    DEFAULT_REFERENCE,
    SPLITS,
    data_dir,
    load_text_records,
    load_texts,
    resolve_text_path,
)

_LAZY = {
    "PairedSides": "_attribution",
    "attribute": "_attribution",
    "intended_share": "_attribution",
    "REFERENCE_GROUP": "_resolve",
    "ResolvedFamily": "_resolve",
    "SaliencyFn": "_resolve",
    "TextSplit": "_resolve",
    "exemplar_split": "_resolve",
    "exemplar_texts": "_resolve",
    "feature_density": "_resolve",
    "reference_split": "_resolve",
    "reference_texts": "_resolve",
    "resolve_families": "_resolve",
    "resolve_family": "_resolve",
    "split_records": "_resolve",
    "BaselineSide": "_score",
    "Exercise": "_score",
    "bootstrap_ratio": "_score",
    "family_den": "_score",
    "family_result": "_score",
    "paired_bootstrap_delta": "_score",
    "purity": "_score",
    "REJECT_REASONS": "_select",
    "MemberStats": "_select",
    "Selection": "_select",
    "SelectionThresholds": "_select",
    "auroc_columns": "_select",
    "select_members": "_select",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f"cg_gate.families.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cg_gate.families' has no attribute {name!r}")


__all__ = sorted([
    "DEFAULT_REFERENCE", "SPLITS", "Labels", "compile_label_pattern", "data_dir", "labels_digest", "load_labels",
    "load_text_records", "load_texts", "resolve_text_path", *_LAZY,
])
