"""Sparse autoencoders: loading (the only sae-lens import) and concept extraction."""

from cg_gate.sae._adapter import LoadedSAE, SAESpec, check_compatible, load_sae
from cg_gate.sae._extract import (
    Extraction,
    ExtractionInput,
    RenderedText,
    ZeroTokenWarning,
    assemble,
    cached_extraction,
    counted_mask,
    extract,
    render,
)

__all__ = [
    "Extraction",
    "ExtractionInput",
    "LoadedSAE",
    "RenderedText",
    "SAESpec",
    "ZeroTokenWarning",
    "assemble",
    "cached_extraction",
    "check_compatible",
    "counted_mask",
    "extract",
    "load_sae",
    "render",
]
