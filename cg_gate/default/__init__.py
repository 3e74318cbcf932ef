"""The embedded default: SmolLM2-135M-Instruct, its layer-20 SAE, labels and demo adapter."""

from cg_gate.default._paths import (
    DEFAULT_HOOK,
    DEFAULT_MODEL_FILE,
    default_adapter_dir,
    default_labels_path,
    default_model_path,
    default_sae_dir,
    label_quality,
    training_figures,
)
from cg_gate.default._autointerp import autointerp_labels
from cg_gate.default._label_text import (
    CATEGORY_WORDS,
    feature_label,
    label_tokens,
    readable_token,
    relabel_row,
    token_key,
)
from cg_gate.default._labels_io import import_neuronpedia, read_label_rows, write_label_rows

__all__ = [
    "CATEGORY_WORDS",
    "DEFAULT_HOOK",
    "DEFAULT_MODEL_FILE",
    "autointerp_labels",
    "default_adapter_dir",
    "default_labels_path",
    "default_model_path",
    "default_sae_dir",
    "feature_label",
    "import_neuronpedia",
    "label_quality",
    "label_tokens",
    "read_label_rows",
    "readable_token",
    "relabel_row",
    "token_key",
    "training_figures",
    "write_label_rows",
]
