"""The gate pipeline: one call from suites to a written run record and reports."""

from cg_gate.pipeline._analysis import load_baseline_results
from cg_gate.pipeline._config import RunConfig, SideConfig
from cg_gate.pipeline._record import Outcome
from cg_gate.pipeline._run import run_gate
from cg_gate.record import ACTIVATIONS_FILE

__all__ = [
    "ACTIVATIONS_FILE",
    "Outcome",
    "RunConfig",
    "SideConfig",
    "load_baseline_results",
    "run_gate",
]
