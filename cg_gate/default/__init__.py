"""The embedded default: SmolLM2-135M-Instruct, its layer-20 SAE, labels and demo adapter."""

from cg_gate.default._paths import (
    DEFAULT_HOOK,
    DEFAULT_MODEL_FILE,
    default_adapter_dir,
    default_labels_path,
    default_model_path,
    default_sae_dir,
    training_figures,
)
from cg_gate.default._autointerp import autointerp_labels
from cg_gate.default._labels_io import import_neuronpedia

__all__ = [
    "DEFAULT_HOOK",
    "DEFAULT_MODEL_FILE",
    "autointerp_labels",
    "default_adapter_dir",
    "default_labels_path",
    "default_model_path",
    "default_sae_dir",
    "import_neuronpedia",
    "training_figures",
]
