"""The run record: `results.json`, the one object every renderer reads.

Versioned separately from the tool (`SCHEMA_VERSION`, semver). Numbers that have no
value (an unscored item, a concept without enough support) are `None` in JSON and NaN in
arrays — never a silent 0. Renderers read a `GateRun`; none of them mutates it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1.2.0"

Status = Literal["pass", "warn", "fail", "insufficient_data", "waived", "error"]
Severity = Literal["error", "warn", "info"]
Mode = Literal["enforce", "audit"]
CoverageClass = Literal["missing", "under", "normal", "over"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- manifest


class GitInfo(_Model):
    sha: str | None = Field(None, description="Commit of the working tree the run came from.")
    dirty: bool | None = Field(None, description="True when the tree had uncommitted changes.")
    remote: str | None = Field(None, description="Origin URL with any credentials stripped.")
    branch: str | None = Field(None, description="Current branch, if any.")


class CIInfo(_Model):
    provider: str | None = Field(None, description="'github' when run under GitHub Actions.")
    run_url: str | None = Field(None, description="Link to the CI run that produced the record.")
    repository: str | None = Field(None, description="owner/name of the repository under test.")
    ref: str | None = Field(None, description="Git ref the CI run was for.")
    pull_request: int | None = Field(None, description="Pull request number, if any.")


class ModelInfo(_Model):
    id: str = Field(description="Hub id, local directory or GGUF path as given.")
    revision: str | None = Field(None, description="Hub revision (commit or tag), if any.")
    gguf_file: str | None = Field(None, description="GGUF file name when loaded from GGUF.")
    adapter: str | None = Field(None, description="PEFT adapter directory applied on top, if any.")
    adapter_digest: str | None = Field(None, description="sha256 over the adapter's files.")
    architecture: str = Field(description="transformers model_type, e.g. 'llama'.")
    num_layers: int = Field(description="Number of decoder layers.")
    hidden_size: int = Field(description="Residual stream width.")
    dtype: str = Field(description="Torch dtype the weights ran in.")
    device: str = Field(description="Device the forward pass ran on.")
    weight_digests: dict[str, str] = Field(
        default_factory=dict, description="sha256 of every weight file, by file name."
    )
    digest: str = Field(description="sha256 over the weight digests (and adapter digest).")
    tokenizer_digest: str = Field(description="sha256 of the tokenizer's serialised state.")
    chat_template_digest: str | None = Field(
        None, description="sha256 of the chat template, None when the tokenizer has none."
    )

    @property
    def compute_digest(self) -> str:
        """What cached responses and activations are keyed on: the weights and the dtype they ran
        in (a bf16 run must not reuse float32 entries). float32 keeps the plain weight digest."""
        return self.digest if self.dtype == "float32" else f"{self.digest}+{self.dtype}"


class SAEInfo(_Model):
    source: str = Field(description="'release/sae_id' from the sae-lens registry, or a directory.")
    hook: str = Field(description="sae-lens hook name, e.g. 'blocks.20.hook_resid_post'.")
    layer: int = Field(description="Decoder layer index of the hook.")
    hook_kind: Literal["resid_pre", "resid_post"] = Field(description="Which side of the layer.")
    d_in: int = Field(description="Input width; equals the model's hidden size.")
    d_sae: int = Field(description="Number of concepts (features), K.")
    architecture: str = Field(description="sae-lens architecture name, e.g. 'topk'.")
    digest: str = Field(description="sha256 of the SAE's weights and config.")
    labels_source: str | None = Field(None, description="Labels file the concept labels came from.")
    labels_digest: str | None = Field(None, description="sha256 of that labels file.")
    training_fve: float | None = Field(
        None, description="Fraction of variance explained the SAE reached in its own training."
    )


class SuiteInfo(_Model):
    name: str = Field(description="Suite name; items' `suite` refers to it.")
    version: str | None = Field(None, description="Suite version as the suite file states it.")
    digest: str = Field(description="sha256 over the suite's items (content digest).")
    n_items: int = Field(description="Number of items.")
    source: str = Field(description="Where it came from: file path, dataset name, import.")
    provenance: dict[str, Any] = Field(
        default_factory=dict, description="Split, config, revision, importer and such."
    )


class PolicyInfo(_Model):
    path: str = Field(description="Policy file as given.")
    name: str = Field(description="metadata.name of the policy.")
    version: str | None = Field(None, description="metadata.version of the policy.")
    owner: str | None = Field(None, description="metadata.owner of the policy.")
    digest: str = Field(description="sha256 of the policy file's bytes.")
    waivers_path: str | None = Field(None, description="Separate waiver file, if any.")
    waivers_digest: str | None = Field(None, description="sha256 of the waiver file's bytes.")


class GenerationSettings(_Model):
    mode: Literal["generate", "imported", "none"] = Field(
        description="'generate': responses made in this run; 'imported': read from results."
    )
    temperature: float = Field(0.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, description="Nucleus sampling mass; 1 disables it.")
    max_new_tokens: int = Field(0, description="Generation length cap.")
    samples_per_item: int = Field(1, description="Responses generated per item.")
    seed: int = Field(0, description="Seed for sampling and any randomness in generation.")
    system_prompt: str | None = Field(None, description="System prompt applied to every item.")
    stop: list[str] = Field(default_factory=list, description="Stop strings honoured.")
    batch_size: int = Field(1, description="Items per generation batch.")
    judge_model: str | None = Field(None, description="Local model used by the rubric judge.")
    judge_rubric_digest: str | None = Field(None, description="sha256 of the judge's rubric.")


class TokenPolicy(_Model):
    text: Literal["prompt", "response", "both"] = Field(
        "prompt", description="Which text's tokens are counted (DESIGN §2.1)."
    )
    exclude_special: bool = Field(
        True, description="Exclude BOS, padding and other special tokens from the count."
    )
    chat_template: bool = Field(True, description="Chat template applied to the item.")


class AnalysisSettings(_Model):
    min_support: int = Field(20, description="Items with a_c(x) > 0 needed to report χ_model.")
    tau_under: float = Field(0.1, description="χ_bench below this (and > eps) is under-represented.")
    tau_over: float = Field(10.0, description="χ_bench above this is over-represented.")
    eps: float = Field(0.0, description="χ_bench at or below eps counts as missing.")
    bootstrap_samples: int = Field(1000, description="Bootstrap resamples for CIs.")
    confidence: float = Field(0.95, description="Two-sided confidence level of CIs.")
    seed: int = Field(0, description="Seed of every resampling in the run.")
    concept_ci: Literal["bootstrap", "delta"] = Field(
        "bootstrap", description="How per-concept χ_model intervals were computed."
    )
    stability_repeats: int = Field(100, description="Random 20% item drops for stability.")
    stability_drop: float = Field(0.2, description="Share of items dropped in each repeat.")
    ablation_n: int = Field(100, description="Top/bottom concepts whose salient items are dropped.")
    exercise_strength: float = Field(
        0.5, description="Share of a member's exemplar level an item must reach to exercise it."
    )
    exercise_min_items: int = Field(3, description="Items that must exercise a member to cover it.")
    min_purity: float = Field(
        0.5, description="Intended-category share a family needs before performance and "
                         "regression rules judge it."
    )
    max_density: float = Field(
        0.1, description="Share of the neutral reference texts above which a feature is dense."
    )


ANALYSIS_DEFAULTS = AnalysisSettings()
"""The analysis defaults, written once above; policies and the metric functions default to these."""


class JudgeCalibrationInfo(_Model):
    """How often the judge agreed with people on a human-labelled set (`cg-gate judge calibrate`)."""

    path: str = Field(description="Calibration file the figures were read from.")
    digest: str = Field(description="sha256 of the calibration's content (its `digest` field).")
    rubric_digest: str = Field(description="`rubric_digest` of the rubric it was calibrated on.")
    n_items: int = Field(description="Human-labelled items the judge scored and could be compared.")
    n_unparseable: int = Field(0, description="Items whose judge output had no readable score.")
    accuracy: float | None = Field(description="Share of items where judge and person agree.")
    kappa: Interval = Field(description="Cohen's κ with its bootstrap confidence interval.")
    confusion: list[list[int]] = Field(
        description="2×2 counts [[person fail & judge fail, person fail & judge pass], "
                    "[person pass & judge fail, person pass & judge pass]]."
    )
    human_digest: str | None = Field(None, description="sha256 of the human-labelled file.")
    created_at: str | None = Field(None, description="When the calibration was made (UTC).")


class JudgeInfo(_Model):
    """The rubric judge of a run: which model, prompt and rubrics, and its calibration."""

    model: str = Field(description="The judge model as given (directory, hub id or GGUF file).")
    model_digest: str | None = Field(None, description="sha256 over the judge's weights.")
    prompt_digest: str = Field(description="sha256 of the judge prompt template.")
    rubric_digests: list[str] = Field(
        default_factory=list, description="`rubric_digest` of every rubric the run's items use."
    )
    judged_categories: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Rubric digests used in each judged category, by 'suite/category'.",
    )
    calibrations: list[JudgeCalibrationInfo] = Field(
        default_factory=list,
        description="Calibrations on file for this judge model and prompt, one per rubric "
                    "(a rubric without one is uncalibrated).",
    )

    def calibration(self, rubric_digest: str) -> JudgeCalibrationInfo | None:
        """The calibration of one rubric, if any."""
        return next((c for c in self.calibrations if c.rubric_digest == rubric_digest), None)


class StageCost(_Model):
    """Wall time, tokens and throughput of one stage on one side (run-time facts)."""

    stage: str = Field(description="'load', 'generate', 'score', 'activations', 'metrics', ...")
    side: Literal["candidate", "baseline", "run"] = Field(
        description="Checkpoint the stage ran for; 'run' for stages over both."
    )
    wall_s: float = Field(description="Wall time, seconds.")
    items: int = Field(0, description="Items (or item samples) the stage handled.")
    computed: int = Field(0, description="Of those, how many were computed rather than cached.")
    tokens_in: int = Field(0, description="Tokens read by a model in this stage (prompts).")
    tokens_out: int = Field(0, description="Tokens generated in this stage.")
    items_per_s: float | None = Field(None, description="items / wall_s; None at zero time.")


class RunCost(_Model):
    """Cost and latency of the run, by stage and side. Not part of the results digest: a warm
    re-run computes less and takes less time yet judges the same numbers."""

    wall_s: float = Field(0.0, description="Wall time of the whole run, seconds.")
    tokens_in: int = Field(0, description="Tokens read by models, all stages and sides.")
    tokens_out: int = Field(0, description="Tokens generated, all sides.")
    stages: list[StageCost] = Field(default_factory=list, description="One row per stage and side.")


class Manifest(_Model):
    tool: str = Field("cg-gate", description="Producer name.")
    tool_version: str = Field(description="cg-gate version that wrote the record.")
    schema_version: str = Field(SCHEMA_VERSION, description="Version of this record's schema.")
    run_id: str = Field(description="Unique id of the run (time-ordered).")
    started_at: str = Field(description="UTC start, ISO 8601 ('Z').")
    finished_at: str = Field(description="UTC end, ISO 8601 ('Z').")
    git: GitInfo = Field(default_factory=GitInfo, description="Source tree of the run.")
    ci: CIInfo = Field(default_factory=CIInfo, description="CI context, when there is one.")
    model: ModelInfo = Field(description="The candidate checkpoint.")
    baseline: ModelInfo | None = Field(None, description="The baseline checkpoint, if any.")
    baseline_results: str | None = Field(
        None, description="Previous results.json used as the baseline instead of a checkpoint."
    )
    sae: SAEInfo = Field(description="The sparse autoencoder that reads the residual stream.")
    suites: list[SuiteInfo] = Field(description="Suites analysed, in order.")
    policy: PolicyInfo | None = Field(None, description="Policy judged, if any.")
    generation: GenerationSettings = Field(description="How responses were obtained.")
    token_policy: TokenPolicy = Field(default_factory=TokenPolicy, description="Counted tokens.")
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings, description="Metric settings.")
    arguments: dict[str, Any] = Field(
        default_factory=dict, description="Arguments passed and defaults applied."
    )
    packages: dict[str, str] = Field(default_factory=dict, description="Versions of key packages.")
    wall_time_s: float = Field(0.0, description="Wall time of the run, seconds.")
    stage_times_s: dict[str, float] = Field(default_factory=dict, description="Wall time per stage.")
    tokens_processed: int = Field(0, description="Tokens pushed through models (both sides).")
    items_processed: int = Field(0, description="Items analysed (candidate side).")
    cache_hits: int = Field(0, description="Items whose activations came from the cache.")
    judge: JudgeInfo | None = Field(None, description="The rubric judge, when items used one.")
    refusal_detector: str | None = Field(
        None, description="How the refusal scorer decided: 'classifier sha256:<digest of its files>' "
                          "(classifier and rules combined) or 'rules only'; None when no item used it."
    )
    cost: RunCost | None = Field(
        None, description="Cost and latency by stage and side (left out of the results digest)."
    )


# --------------------------------------------------------------------------- per item


class SampleRecord(_Model):
    response: str = Field(description="One generated response.")
    score: float | None = Field(None, description="Its score in [0,1]; None when unscored.")
    reason: str | None = Field(None, description="Scorer's short reason.")
    tokens: int | None = Field(None, description="Its length in tokens, when known.")


class ItemRecord(_Model):
    id: str = Field(description="Item id, unique within its suite.")
    suite: str = Field(description="Suite name.")
    category: str = Field(description="Category within the suite.")
    severity: str = Field(description="Severity of the item's category.")
    input: str = Field(description="Prompt text as the user wrote it (last user turn for chats).")
    response: str | None = Field(None, description="Candidate response.")
    score: float | None = Field(None, description="s(x) in [0,1]; None when unscored.")
    reason: str | None = Field(None, description="Scorer's short reason.")
    baseline_response: str | None = Field(None, description="Baseline response, if any.")
    baseline_score: float | None = Field(None, description="Baseline s(x), if any.")
    n_tokens: int = Field(description="Counted tokens T_x (summed over samples when the token "
                                      "policy reads responses and the item has several).")
    samples: list[SampleRecord] = Field(
        default_factory=list,
        description="Every response when several were generated per item (`score` is their mean, "
                    "`response` the first); empty for a single response.",
    )
    pass_rate: float | None = Field(
        None, description="Share of scored samples with s ≥ 0.5 (None: fewer than two scored)."
    )
    flaky: bool = Field(False, description="Some samples pass (s ≥ 0.5) and some fail.")
    response_tokens: int | None = Field(
        None, description="Length of the response in tokens (mean over samples), when known."
    )
    top_concepts: list[tuple[int, float]] = Field(
        default_factory=list, description="Most salient concepts (id, a_c(x)), highest first."
    )


# --------------------------------------------------------------------------- concepts


class Interval(_Model):
    value: float | None = Field(description="Point estimate; None when not computable.")
    low: float | None = Field(None, description="Lower bound of the confidence interval.")
    high: float | None = Field(None, description="Upper bound of the confidence interval.")


class ConceptRecord(_Model):
    id: int = Field(description="SAE feature index.")
    label: str | None = Field(None, description="Human-readable label, if the labels file has one.")
    chi_bench: dict[str, float] = Field(description="χ_bench(c,b) by suite.")
    chi_bench_all: float = Field(description="Cross-suite χ_bench(c): mean over suites.")
    coverage: dict[str, CoverageClass] = Field(description="Coverage class by suite.")
    coverage_all: CoverageClass = Field(description="Coverage class over the suite set.")
    support: int = Field(description="Items (all suites) with a_c(x) > 0.")
    chi_model: Interval = Field(description="Pooled χ_model(c) with CI; None below min_support.")
    lift: float | None = Field(None, description="χ_model minus the mean score of the same items.")
    baseline_chi_model: float | None = Field(None, description="Baseline pooled χ_model(c).")
    stability_std: float | None = Field(None, description="Std of χ_model under 20% drops.")
    top_items: list[str] = Field(default_factory=list, description="Ids of the most salient items.")
    density: float | None = Field(
        None, description="Share of the neutral reference texts it fires on (None: not measured)."
    )
    dense: bool = Field(
        False, description="Fires on most ordinary text; left out of rankings and family coverage."
    )
    contexts: list[str] = Field(
        default_factory=list,
        description="Top-activating contexts from the labels file, the activating token marked "
                    "⟦ ⟧ (kept for concepts the report may rank).",
    )
    label_detection: float | None = Field(
        None, description="How well the label tells held-out activating tokens from others (AUROC)."
    )


class CoverageSummary(_Model):
    suite: str = Field(description="Suite name, or '*' for the suite set.")
    missing: int = Field(description="Concepts missing.")
    under: int = Field(description="Concepts under-represented.")
    normal: int = Field(description="Concepts neither missing, under nor over.")
    over: int = Field(description="Concepts over-represented.")
    histogram: list[tuple[float, float, int]] = Field(
        default_factory=list, description="log10 χ_bench bins (low, high, count) of covered concepts."
    )


# --------------------------------------------------------------------------- families


class FamilyMember(_Model):
    id: int = Field(description="SAE feature index.")
    label: str | None = Field(None, description="Its label.")
    reasons: list[str] = Field(description="Why it is a member: 'label:/re/', 'id', 'exemplar ×4.2'.")
    auroc: float | None = Field(
        None, description="Exemplar selection: AUROC of its saliency, fit exemplars vs negatives."
    )
    heldout_auroc: float | None = Field(
        None, description="The same AUROC on the held-out exemplars and negatives (selectivity)."
    )
    ratio: float | None = Field(
        None, description="Fit exemplar mean over the largest negative-group mean (None: infinite)."
    )
    closest_group: str | None = Field(
        None, description="The negative group it fires on most (its nearest confusion)."
    )
    density: float | None = Field(None, description="Share of the neutral reference texts it fires on.")
    level: float | None = Field(
        None, description="Median non-zero saliency on the fit exemplars: how strongly the family's "
                          "own texts make it fire (coverage's yardstick)."
    )
    contexts: list[str] = Field(
        default_factory=list, description="Top-activating contexts, the activating token marked ⟦ ⟧."
    )


class FamilySelection(_Model):
    """How exemplar selection went: candidates, rejections by reason, held-out selectivity."""

    candidates: int = Field(description="Features that fired on at least one fit exemplar.")
    rejected: dict[str, int] = Field(
        default_factory=dict,
        description="Rejected candidates by reason: dense, rare, unselective, unspecific, beyond_top_k.",
    )
    confusions: dict[str, int] = Field(
        default_factory=dict,
        description="Negative group → candidates rejected as unspecific because they fire as much there.",
    )
    heldout_auroc: float | None = Field(
        None, description="AUROC of the family's summed saliency, held-out exemplars vs negatives."
    )
    n_fit: int = Field(0, description="Fit exemplars.")
    n_heldout: int = Field(0, description="Held-out exemplars.")
    n_negatives_fit: int = Field(0, description="Fit negatives (other families' exemplars, reference).")
    n_negatives_heldout: int = Field(0, description="Held-out negatives.")
    thresholds: dict[str, float | None] = Field(
        default_factory=dict, description="min_auroc, min_ratio, max_density, min_fire, top_k used."
    )


class CategoryAttribution(_Model):
    """One (suite, category)'s part in a family: its mass, χ_model and Δ contribution."""

    suite: str = Field(description="Suite name.")
    category: str = Field(description="Item category.")
    n_items: int = Field(description="Items of the category.")
    active_items: int = Field(description="Items where the family is active (den_F > 0).")
    mass_share: float | None = Field(
        description="Share of the family's saliency mass on this category (purity when intended)."
    )
    chi_model: float | None = Field(None, description="The family's χ_model over this category alone.")
    contribution: float | None = Field(
        None, description="w_k·χ_k: the category's part of χ_model(F); the parts add up to it."
    )
    baseline_chi_model: float | None = Field(None, description="Baseline χ_k over the paired items.")
    delta_contribution: float | None = Field(
        None, description="Σ δ(x) over the category's paired items; the parts add up to Δχ_model(F)."
    )
    drop_share: float | None = Field(
        None, description="Its negative contribution over the sum of all negative contributions "
                          "(the gross drop); None where the category did not pull Δ down."
    )


class ItemContribution(_Model):
    """An item that drives a family's figure (the largest drop contributions, or mass)."""

    id: str = Field(description="Item id.")
    suite: str = Field(description="Suite name.")
    category: str = Field(description="Item category.")
    mass_share: float | None = Field(description="Share of the family's saliency mass on this item.")
    score: float | None = Field(description="Candidate score.")
    baseline_score: float | None = Field(None, description="Baseline score.")
    delta_contribution: float | None = Field(None, description="δ(x), its part of Δχ_model(F).")


class FamilyPurity(_Model):
    """Whether the family's saliency lies on the categories it is meant for."""

    intended: list[str] = Field(default_factory=list, description="Categories the policy names.")
    intended_share: float | None = Field(
        None, description="Share of the family's mass on the intended categories."
    )
    min_purity: float | None = Field(None, description="Share required before rules may judge.")
    judged: bool = Field(True, description="False: performance and regression rules are not judged.")
    reason: str | None = Field(None, description="Why the family cannot be judged, in words.")
    measured_on: Literal["candidate", "baseline"] = Field(
        "candidate", description="Model whose saliency the intended share is read on (the one "
                                 "the family was resolved on)."
    )
    candidate_share: float | None = Field(
        None, description="The intended share on the candidate, when purity is read on the "
                          "baseline (a large gap means the fine-tune moved the family)."
    )


class FamilyCoverage(_Model):
    members: int = Field(description="Member features.")
    covered: int = Field(
        description="Members the suite set exercises: at least `exercise_min_items` items make the "
                    "member fire at `exercise_strength` × its exemplar level or more (members with "
                    "no level: fire at all on that many items)."
    )
    exercise_strength: float | None = Field(
        None, description="Share of a member's exemplar level an item must reach to exercise it."
    )
    exercise_min_items: int | None = Field(None, description="Items needed to exercise a member.")
    exercising_items: int | None = Field(
        None, description="Items that exercise at least one member."
    )
    covered_fraction: float | None = Field(description="covered / members; None with no members.")
    mean_chi_bench: float | None = Field(description="Mean χ_bench over members.")
    missing_ids: list[int] = Field(default_factory=list, description="Members missing everywhere.")
    under_ids: list[int] = Field(default_factory=list, description="Members under-represented.")
    over_ids: list[int] = Field(default_factory=list, description="Members over-represented.")
    by_suite: dict[str, float | None] = Field(
        default_factory=dict, description="covered fraction by suite."
    )
    exercising_items_by_suite: dict[str, int] = Field(
        default_factory=dict, description="Items exercising at least one member, by suite."
    )
    dense_ids: list[int] = Field(
        default_factory=list, description="Members left out of coverage as dense."
    )
    measured_on: Literal["candidate", "baseline"] = Field(
        "candidate", description="Model whose item saliency the exercise counts read (the one "
                                 "the family was resolved on)."
    )
    missing_by_suite: dict[str, list[int]] = Field(
        default_factory=dict, description="Members missing in each suite."
    )
    mean_chi_bench_by_suite: dict[str, float | None] = Field(
        default_factory=dict, description="Mean χ_bench(c,b) over members, by suite."
    )


class FamilyPerformance(_Model):
    chi_model: Interval = Field(description="Pooled family χ_model(F) with bootstrap CI.")
    support: int = Field(description="Items activating any member.")
    lift: float | None = Field(None, description="χ_model(F) minus the mean score of its items.")
    adjusted: float | None = Field(
        None, description="Difficulty-adjusted χ_model(F) using baseline correctness."
    )
    stability_std: float | None = Field(None, description="Std of χ_model(F) under 20% drops.")
    top_items: list[str] = Field(default_factory=list, description="Most salient items' ids.")


class FamilyRegression(_Model):
    baseline_chi_model: float | None = Field(description="Baseline χ_model(F).")
    delta: Interval = Field(description="Δχ_model(F) = candidate − baseline, paired bootstrap CI.")
    paired_items: int = Field(description="Items present on both sides.")
    candidate_only: list[str] = Field(default_factory=list, description="Items only in candidate.")
    baseline_only: list[str] = Field(default_factory=list, description="Items only in baseline.")


class FamilyScoped(_Model):
    """χ_model(F) and Δχ_model(F) over the items of the family's intended categories only."""

    categories: list[str] = Field(description="The intended categories (the scope).")
    items: int = Field(description="Items in the scope.")
    support: int = Field(description="Scored items in the scope with the family active.")
    chi_model: Interval = Field(description="χ_model(F) over the scope, with bootstrap CI.")
    baseline_chi_model: float | None = Field(None, description="Baseline χ_model(F) over the scope.")
    delta: Interval | None = Field(None, description="Paired Δχ_model(F) over the scope.")
    paired_items: int | None = Field(None, description="Items of the scope on both sides.")


class FamilyResult(_Model):
    name: str = Field(description="Family key in the policy.")
    title: str | None = Field(None, description="Human title.")
    members: list[FamilyMember] = Field(description="Resolved members and why.")
    coverage: FamilyCoverage = Field(description="What the suites test of this family.")
    performance: FamilyPerformance = Field(description="How the model does where it fires.")
    regression: FamilyRegression | None = Field(None, description="Against the baseline, if any.")
    selection: FamilySelection | None = Field(
        None, description="Exemplar selection figures (None: no exemplars)."
    )
    attribution: list[CategoryAttribution] = Field(
        default_factory=list, description="Mass, χ_model and Δ by (suite, category), largest mass first."
    )
    drivers: list[ItemContribution] = Field(
        default_factory=list,
        description="Items driving the verdict: most negative Δ contributions, else most mass.",
    )
    purity: FamilyPurity = Field(default_factory=FamilyPurity, description="Purity gate.")
    scoped: FamilyScoped | None = Field(
        None, description="Figures over the intended categories only (None: none named)."
    )


# --------------------------------------------------------------------------- verdicts


class Location(_Model):
    path: str = Field(description="Policy (or waiver) file.")
    line: int = Field(description="1-based line of the rule.")
    column: int = Field(1, description="1-based column.")


class WaiverRecord(_Model):
    rule: str = Field(description="Rule id the waiver applies to.")
    scope: dict[str, str] = Field(default_factory=dict, description="Optional family/suite scope.")
    reason: str = Field(description="Why the rule is waived.")
    ticket: str | None = Field(None, description="Tracking ticket.")
    approved_by: str = Field(description="Who approved it.")
    expires: str = Field(description="ISO date after which the waiver no longer applies.")
    expired: bool = Field(description="True when the run date is after `expires`.")
    location: Location | None = Field(None, description="Where the waiver is written.")


class Verdict(_Model):
    rule_id: str = Field(description="Rule id as written in the policy, e.g. 'CG001'.")
    stable_id: str = Field(description="'policy-name/rule-id', stable across runs.")
    title: str = Field(description="What the rule asks, in words.")
    check: str = Field(description="Rule kind: coverage, missing, performance, ...")
    concept: str | None = Field(None, description="Family the rule is about, if any.")
    severity: Severity = Field(description="error | warn | info.")
    mode: Mode = Field(description="enforce fails the build; audit only reports.")
    status: Status = Field(description="Outcome after waivers.")
    raw_status: Status = Field(description="Outcome before waivers.")
    message: str = Field(description="One line: value, threshold and what it means.")
    evidence: dict[str, Any] = Field(default_factory=dict, description="Numbers behind the verdict.")
    location: Location | None = Field(None, description="Rule's place in the policy file.")
    tags: list[str] = Field(default_factory=list, description="Free tags, e.g. 'euai:annex-iv-2g'.")
    waiver: WaiverRecord | None = Field(None, description="Waiver that applied, if any.")

    def fails(self, fail_on: Severity = "error") -> bool:
        """True when this verdict fails the build at the given threshold."""
        if self.mode != "enforce":
            return False
        if self.status in ("fail", "error"):
            return self.severity == "error" or (fail_on == "warn" and self.severity == "warn")
        if self.status == "warn":
            return fail_on == "warn"
        return False


# --------------------------------------------------------------------------- validity


class StabilitySummary(_Model):
    repeats: int = Field(description="Number of random drops.")
    drop: float = Field(description="Share of items dropped each time.")
    median_std_chi_bench: float | None = Field(description="Median over concepts of std χ_bench.")
    median_std_chi_model: float | None = Field(description="Median over supported concepts.")
    families: dict[str, float | None] = Field(default_factory=dict, description="std χ_model(F).")


class AblationRow(_Model):
    side: Literal["top", "bottom"] = Field(description="Which end of the χ_model ranking.")
    n_concepts: int = Field(description="Concepts whose salient items were dropped.")
    items_dropped: int = Field(description="Distinct items dropped.")
    median_before: float | None = Field(description="Median χ_model over supported concepts.")
    median_after: float | None = Field(description="The same after the drop.")


class AblationSummary(_Model):
    rule: str = Field(description="How items were picked, in words.")
    rows: list[AblationRow] = Field(default_factory=list, description="Top and bottom rows.")


class OverlapSummary(_Model):
    suites: list[str] = Field(description="Suite order of the matrix.")
    jaccard: list[list[float | None]] = Field(description="Covered-set Jaccard, suite × suite.")


class FidelitySummary(_Model):
    fve: float | None = Field(description="Fraction of variance explained on the suite's tokens.")
    mean_l0: float | None = Field(description="Mean active features per token.")
    dead_share: float | None = Field(description="Share of features that never fire on the suite.")
    training_fve: float | None = Field(None, description="The SAE's own training figure.")
    warning: str | None = Field(None, description="Set when fidelity is well below training.")
    by_suite: dict[str, float | None] = Field(default_factory=dict, description="fve by suite.")
    baseline_fve: float | None = Field(None, description="Same on the baseline checkpoint.")


class CategoryBreakdown(_Model):
    suite: str = Field(description="Suite name.")
    category: str = Field(description="Category name.")
    severity: str = Field(description="Category severity.")
    n_items: int = Field(description="Items in the category.")
    n_scored: int = Field(description="Items with a score.")
    mean_score: float | None = Field(description="Mean s(x) of scored items.")
    failures: int = Field(description="Scored items with s(x) < 0.5.")
    baseline_mean_score: float | None = Field(None, description="Baseline mean s(x).")
    sampled: int = Field(0, description="Items with two or more scored samples.")
    flaky: int = Field(0, description="Of those, items whose samples disagree (pass and fail).")
    pass_rate: float | None = Field(
        None, description="Mean per-item pass rate over the sampled items (None: none sampled)."
    )
    response_tokens: LengthStats | None = Field(
        None, description="Response length in tokens over every response of the category."
    )


class LengthStats(_Model):
    n: int = Field(description="Responses measured.")
    min: int = Field(description="Shortest, tokens.")
    median: float = Field(description="Median, tokens.")
    p90: float = Field(description="90th percentile (linear interpolation), tokens.")
    max: int = Field(description="Longest, tokens.")


CategoryBreakdown.model_rebuild()


class SignOff(_Model):
    approver: str | None = Field(None, description="Who signs the release off.")
    role: str | None = Field(None, description="Their role.")
    date: str | None = Field(None, description="Date of the decision.")
    decision: str | None = Field(None, description="approve | reject | approve-with-conditions.")
    notes: str | None = Field(None, description="Conditions or remarks.")


class Summary(_Model):
    verdict: Literal["pass", "fail", "error"] = Field(description="Gate outcome.")
    fail_on: Severity = Field("error", description="Lowest severity that fails the build.")
    counts: dict[str, int] = Field(default_factory=dict, description="Verdicts by status.")
    failed_rules: list[str] = Field(default_factory=list, description="Stable ids failing the gate.")
    mean_score: float | None = Field(None, description="Mean s(x) over scored candidate items.")
    baseline_mean_score: float | None = Field(None, description="Same for the baseline.")
    n_concepts: int = Field(description="K, concepts in the SAE.")
    n_items: int = Field(description="Items analysed.")


#: Manifest fields outside `GateRun.deterministic_digest`: they vary between runs of the same
#: inputs (when, where, how long, how much the cache saved), not with what the run found.
DIGEST_EXCLUDED_MANIFEST: tuple[str, ...] = (
    "run_id", "started_at", "finished_at", "wall_time_s", "stage_times_s", "tokens_processed",
    "cache_hits", "git", "ci", "arguments", "cost",
)


class GateRun(_Model):
    """The whole record of one run. Renderers take this and nothing else."""

    schema_version: str = Field(SCHEMA_VERSION, description="Version of this schema.")
    manifest: Manifest = Field(description="Reproducibility manifest.")
    summary: Summary = Field(description="Gate outcome and headline figures.")
    verdicts: list[Verdict] = Field(default_factory=list, description="One per rule.")
    waivers: list[WaiverRecord] = Field(default_factory=list, description="All waivers read.")
    families: list[FamilyResult] = Field(default_factory=list, description="Concept families.")
    coverage: list[CoverageSummary] = Field(default_factory=list, description="Per suite and '*'.")
    concepts: list[ConceptRecord] = Field(
        default_factory=list, description="Concepts that fire on at least one item (others are missing)."
    )
    items: list[ItemRecord] = Field(default_factory=list, description="Every item analysed.")
    categories: list[CategoryBreakdown] = Field(default_factory=list, description="By category.")
    stability: StabilitySummary | None = Field(None, description="Random-drop stability.")
    ablation: AblationSummary | None = Field(None, description="Adversarial ablation.")
    overlap: OverlapSummary | None = Field(None, description="Cross-suite Jaccard.")
    fidelity: FidelitySummary = Field(description="SAE fidelity on this checkpoint.")
    signoff: SignOff = Field(default_factory=SignOff, description="Release sign-off block.")
    digest: str = Field("", description="sha256 of the deterministic part of this record.")

    # -- derived facts -------------------------------------------------------

    def failing(self, fail_on: Severity | None = None) -> list[Verdict]:
        """Verdicts that fail the build."""
        threshold = fail_on or self.summary.fail_on
        return [v for v in self.verdicts if v.fails(threshold)]

    @property
    def has_failure(self) -> bool:
        return bool(self.failing())

    def exit_code(self, fail_on: Severity | None = None) -> int:
        """0 when every enforced rule passes, 1 otherwise (2 is raised, not returned)."""
        return 1 if self.failing(fail_on) else 0

    def deterministic_digest(self) -> str:
        """sha256 of what the run found, the same for every run of the same inputs.

        Covered: the schema version, the rest of the manifest (model, baseline, SAE, suite,
        policy and waiver digests, generation and analysis settings, package versions,
        items processed), the summary, verdicts, waivers, families, coverage, concepts,
        items, categories and validity checks. Left out (`DIGEST_EXCLUDED_MANIFEST`): what
        says when, where and how fast this run happened, or how much a cache saved it
        (run id, timestamps, wall and stage times, tokens processed, cache hits, the cost
        table, git and CI context, command-line arguments); the sign-off block, which is filled in after
        the run; and the digest field itself. A cold run and a fully cached re-run of the
        same inputs therefore have the same digest.
        """
        data = self.model_dump(mode="json")
        data["digest"] = ""
        m = data["manifest"]
        for key in DIGEST_EXCLUDED_MANIFEST:
            m.pop(key, None)
        data["signoff"] = {}
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(blob.encode()).hexdigest()
