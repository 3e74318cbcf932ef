"""From the stages' results to the record's parts: item rows, the manifest, written files."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from cg_gate import __version__
from cg_gate.pipeline._analysis import Baseline, Families, Metrics, Validity
from cg_gate.pipeline._config import RunConfig
from cg_gate.pipeline._handles import SAEHandle
from cg_gate.pipeline._inputs import Inputs
from cg_gate.pipeline._manifest import ci_info, git_info, iso, package_versions, utc_now
from cg_gate.pipeline._side import SideResult
from cg_gate.record import (
    ACTIVATIONS_FILE,
    GateRun,
    GenerationSettings,
    Interval,
    ItemRecord,
    JudgeCalibrationInfo,
    JudgeInfo,
    Manifest,
    RunCost,
    SampleRecord,
    StageCost,
    PolicyInfo,
    SAEInfo,
    SuiteInfo,
    assemble_run,
    write_saliency,
)
from cg_gate.suites import Item


@dataclass
class Outcome:
    """What `run_gate` returns: the record and the files written."""

    run: GateRun
    paths: dict[str, Path] = field(default_factory=dict)


def _top_concepts(row: sp.csr_matrix, k: int = 5) -> list[tuple[int, float]]:
    if row.nnz == 0:
        return []
    order = np.argsort(-row.data, kind="stable")[:k]
    return [(int(row.indices[j]), float(row.data[j])) for j in order]


def _value(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _samples(r: Any, i: int) -> list[SampleRecord]:
    """Item i's samples when it has several (a single response is the item's own fields)."""
    texts = r.samples[i] if r.samples else []
    if len(texts) < 2:
        return []
    return [SampleRecord(response=t, score=r.sample_scores[i][k], reason=r.sample_reasons[i][k],
                         tokens=r.sample_tokens[i][k]) for k, t in enumerate(texts)]


def _response_tokens(r: Any, i: int) -> int | None:
    known = [n for n in (r.sample_tokens[i] if r.sample_tokens else []) if n is not None]
    return int(round(float(np.mean(known)))) if known else None


def item_records(items: Sequence[Item], cand: SideResult,
                 baseline: Baseline | None) -> list[ItemRecord]:
    """One record per item: input, responses (every sample), scores and its most salient
    concepts."""
    sal = cand.activations.saliency
    base = baseline.result if baseline is not None else None
    r = cand.responses
    return [ItemRecord(
        id=it.id, suite=it.suite, category=it.category, severity=it.severity,
        input=it.prompt, response=r.texts[i],
        score=_value(r.scores[i]), reason=r.reasons[i],
        baseline_response=base.responses.texts[i] if base is not None else None,
        baseline_score=_value(baseline.scores[i]) if baseline is not None else None,
        n_tokens=int(cand.activations.n_tokens[i]),
        samples=_samples(r, i), pass_rate=r.pass_rate(i) if r.sample_scores else None,
        flaky=r.flaky(i) if r.sample_scores else False, response_tokens=_response_tokens(r, i),
        top_concepts=_top_concepts(sal.getrow(i)),
    ) for i, it in enumerate(items)]


def judge_info(judge: Any, items: Sequence[Item],
               calibrations: Sequence[tuple[Path, dict[str, Any]]]) -> JudgeInfo | None:
    """The judge's identity (model, prompt and rubric digests), the categories it judged, and
    the calibrations on file that match this judge model, prompt and a rubric in use."""
    from cg_gate.scoring import judge_digests, prompt_digest

    if judge is None:
        return None
    rubrics = judge_digests(items)
    if not rubrics:
        return None
    from cg_gate.scoring import rubric_digest

    judged: dict[str, set[str]] = {}
    for it in items:
        for spec in it.scorers:
            if spec.name == "rubric_judge" and isinstance(spec.args.get("rubric"), str):
                judged.setdefault(f"{it.suite}/{it.category}", set()).add(
                    rubric_digest(spec.args["rubric"]))
    prompt, digest = prompt_digest(), judge.digest
    found = []
    for path, cal in calibrations:
        if (cal.get("prompt_digest") == prompt and cal.get("rubric_digest") in rubrics
                and cal.get("judge", {}).get("model_digest") == digest):
            found.append(calibration_info(path, cal))
    return JudgeInfo(model=judge.model_id, model_digest=digest, prompt_digest=prompt,
                     rubric_digests=sorted(rubrics),
                     judged_categories={k: sorted(v) for k, v in sorted(judged.items())}, calibrations=found)


def calibration_info(path: Path, cal: dict[str, Any]) -> JudgeCalibrationInfo:
    """The manifest's summary of one stored calibration."""
    return JudgeCalibrationInfo(
        path=display_path(path), digest=cal["digest"], rubric_digest=cal["rubric_digest"],
        n_items=int(cal["n_items"]), n_unparseable=int(cal.get("n_unparseable", 0)),
        accuracy=cal.get("accuracy"),
        kappa=Interval(value=cal.get("kappa"), low=cal.get("kappa_low"),
                       high=cal.get("kappa_high")),
        confusion=cal["confusion"], human_digest=(cal.get("human") or {}).get("digest"),
        created_at=cal.get("created_at"),
    )


def run_cost(wall_s: float, stage_times: dict[str, float],
             sides: Sequence[SideResult]) -> RunCost:
    """Cost and latency by stage and side: each side's stages (generate, score, activations,
    exemplars), then the run's own stages; the run's 'candidate' and 'baseline' stages span
    those rows, so they are not repeated."""
    rows: list[StageCost] = [c for side in sides for c in side.costs]
    for stage, t in stage_times.items():
        if stage in ("candidate", "baseline"):
            continue
        rows.append(StageCost(stage=stage, side="run", wall_s=t, items=0, computed=0))
    return RunCost(wall_s=round(wall_s, 3), tokens_in=sum(c.tokens_in for c in rows),
                   tokens_out=sum(c.tokens_out for c in rows), stages=rows)


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it lies below it (SARIF and annotations
    locate rules relative to the repository root), else as given."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _policy_info(policy: Any, config: RunConfig) -> PolicyInfo | None:
    if policy is None:
        return None
    return policy.policy_info().model_copy(update={"path": display_path(Path(config.policy))})


def _sae_info(sae: SAEHandle, labels_path: Path | None) -> SAEInfo:
    from cg_gate.families import labels_digest

    if labels_path is None:
        return sae.info
    return sae.info.model_copy(update={"labels_source": str(labels_path),
                                       "labels_digest": labels_digest(labels_path)})


def _generation(config: RunConfig, cand: SideResult, items: Sequence[Item],
                judge: Any) -> GenerationSettings:
    from cg_gate.scoring import judge_digests

    imported = all(it.response is not None or it.score is not None for it in items)
    mode = "imported" if imported else ("generate" if cand.responses.generated else "none")
    return config.generation.model_copy(update={
        "mode": mode, "judge_model": config.judge if judge is not None else None,
        "judge_rubric_digest": next(iter(judge_digests(items)), None),
    })


@dataclass
class RunClock:
    """When the run started."""

    run_id: str
    started: datetime
    t0: float


@dataclass
class StageResults:
    """What the stages returned, in pipeline order."""

    inputs: Inputs
    candidate: SideResult
    baseline: Baseline | None
    metrics: Metrics
    families: Families
    validity: Validity
    evaluation: Any  # cg_gate.policy.EvaluationResult | None (no policy)
    labels: Any = None  # cg_gate.families.Labels | None
    labels_path: Path | None = None
    calibrations: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    refusal_detector: str | None = None  # 'classifier sha256:…', 'rules only', None: no refusal scorer


def build_manifest(config: RunConfig, r: StageResults, sae: SAEHandle, judge: Any,
                   clock: RunClock, stage_times: dict[str, float],
                   arguments: dict[str, Any] | None) -> Manifest:
    """The reproducibility manifest (DESIGN §5)."""
    inputs, cand, baseline = r.inputs, r.candidate, r.baseline
    base = baseline.result if baseline is not None else None
    tokens = cand.activations.tokens_processed + (base.activations.tokens_processed if base else 0)
    wall = time.perf_counter() - clock.t0
    return Manifest(
        tool_version=__version__, run_id=clock.run_id, started_at=iso(clock.started),
        finished_at=iso(utc_now()), git=git_info(), ci=ci_info(), model=cand.info,
        baseline=base.info if base else None,
        baseline_results=str(config.baseline_results) if config.baseline_results else None,
        sae=_sae_info(sae, r.labels_path),
        suites=[SuiteInfo(name=s.name, version=s.version, digest=s.digest(), n_items=len(s.items),
                          source=s.source, provenance=s.provenance) for s in inputs.suites],
        policy=_policy_info(inputs.policy, config),
        generation=_generation(config, cand, inputs.items, judge),
        token_policy=config.token_policy, analysis=r.metrics.analysis,
        arguments=arguments or {}, packages=package_versions(),
        wall_time_s=round(wall, 3), stage_times_s=stage_times,
        tokens_processed=int(tokens), items_processed=len(inputs.items),
        cache_hits=int(cand.activations.cache_hits),
        judge=judge_info(judge, inputs.items, r.calibrations),
        refusal_detector=r.refusal_detector,
        cost=run_cost(wall, stage_times, [cand] + ([base] if base else [])),
    )


def assemble(config: RunConfig, r: StageResults, sae: SAEHandle, judge: Any, clock: RunClock,
             finish: Callable[[], dict[str, float]], arguments: dict[str, Any] | None) -> GateRun:
    """The record, assembled by the record package from the stages' results."""
    from cg_gate.metrics import concept_records, coverage_summaries

    items, cand, metrics, validity = r.inputs.items, r.candidate, r.metrics.metrics, r.validity
    concepts = concept_records(metrics, {} if r.labels is None else dict(r.labels.items()),
                               cand.activations.saliency, [it.id for it in items],
                               stability_std=validity.stability_std,
                               baseline_chi_model=r.metrics.baseline_chi,
                               density=r.families.density,
                               max_density=r.metrics.analysis.max_density,
                               contexts=r.labels.examples if r.labels is not None else None,
                               label_detection=(r.labels.detection if r.labels is not None
                                                else None))
    rows = item_records(items, cand, r.baseline)
    manifest = build_manifest(config, r, sae, judge, clock, finish(), arguments)
    return assemble_run(
        manifest=manifest, items=rows,
        declared_severities={(s.name, c): cat.severity for s in r.inputs.suites
                             for c, cat in s.categories.items()},
        n_concepts=sae.info.d_sae, fail_on=config.fail_on,
        verdicts=r.evaluation.verdicts if r.evaluation else [],
        waivers=r.evaluation.waivers if r.evaluation else [],
        families=list(r.families.results.values()), coverage=coverage_summaries(metrics),
        concepts=concepts, stability=validity.stability, ablation=validity.ablation,
        overlap=validity.overlap, fidelity=validity.fidelity, signoff=config.signoff,
    )


def write_outputs(run: GateRun, config: RunConfig, items: Sequence[Item],
                  cand: SideResult) -> Outcome:
    """results.json, activations.npz and the requested reports, written as one output set."""
    from cg_gate.render import render_all

    out = Path(config.out)
    formats = [f for f in config.formats if f != "json"] + ["json"]
    policy_source = run.manifest.policy.path if run.manifest.policy else None
    def saliency(path: Path) -> None:
        write_saliency(path, cand.activations.saliency, cand.responses.scores,
                       [it.id for it in items], [it.suite for it in items])

    paths = dict(render_all(run, formats, out, policy_source=policy_source,
                            extra={ACTIVATIONS_FILE: saliency}))
    paths["activations"] = out / ACTIVATIONS_FILE
    return Outcome(run=run, paths=paths)
