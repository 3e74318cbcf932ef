"""The gate pipeline: one call from suites to a written run record and reports."""

from cg_gate.pipeline._analysis import load_baseline_results
from cg_gate.pipeline._config import RunConfig, ShardSpec, SideConfig
from cg_gate.pipeline._inputs import JudgeModel, calibration_dir, load_judge
from cg_gate.pipeline._manifest import iso, utc_now
from cg_gate.pipeline._record import Outcome
from cg_gate.pipeline._run import run_gate
from cg_gate.pipeline._shard import (
    ShardOutcome,
    merge_shards,
    parse_shard,
    run_shard,
    shard_indices,
)
from cg_gate.record import ACTIVATIONS_FILE

__all__ = [
    "ACTIVATIONS_FILE",
    "JudgeModel",
    "Outcome",
    "RunConfig",
    "ShardOutcome",
    "ShardSpec",
    "SideConfig",
    "calibration_dir",
    "iso",
    "load_baseline_results",
    "load_judge",
    "merge_shards",
    "parse_shard",
    "run_gate",
    "run_shard",
    "shard_indices",
    "utc_now",
]
