"""`run_gate`: suites → responses & scores → activations → metrics → families → validity →
verdicts → record → reports.

Each stage is one call into its own module that takes typed inputs and returns a typed
result; the record package assembles the run record (and derives its summary) from them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

from cg_gate._progress import quiet_library_bars
from cg_gate._terminal import clean
from cg_gate.errors import ConfigError
from cg_gate.pipeline._analysis import (
    baseline_of,
    concept_families,
    concept_metrics,
    sample_counts,
    validity_checks,
    verdicts,
)
from cg_gate.pipeline._config import RunConfig
from cg_gate.pipeline._fingerprint import env_offline
from cg_gate.pipeline._handles import Checkpoint, SAEHandle
from cg_gate.pipeline._inputs import (
    Inputs,
    find_calibrations,
    make_judge,
    make_refusal_model,
    read_inputs,
    read_labels,
)
from cg_gate.pipeline._manifest import new_run_id, utc_now
from cg_gate.pipeline._record import (
    Outcome,
    RunClock,
    StageResults,
    assemble,
    judge_info,
    write_outputs,
)
from cg_gate.pipeline._side import SideResult, run_side
from cg_gate.record import GateRun, RunCache
from cg_gate.render import check_writable
from cg_gate.suites import Item, Suite, SuiteSampling


def _warn(msg: str) -> None:
    """A one-line notice on stderr, shown with or without progress output."""
    print(f"cg-gate: {clean(msg)}", file=sys.stderr, flush=True)


class Stages:
    """Wall time per stage, and a one-line log to stderr."""

    def __init__(self, progress: bool) -> None:
        self.times: dict[str, float] = {}
        self.progress = progress
        self._name: str | None = None
        self._t = 0.0

    def log(self, msg: str) -> None:
        if self.progress:
            print(f"cg-gate: {clean(msg)}", file=sys.stderr, flush=True)  # paths may be hostile

    def start(self, name: str) -> None:
        self.stop()
        self._name, self._t = name, time.perf_counter()

    def stop(self) -> None:
        if self._name is not None:
            self.times[self._name] = round(self.times.get(self._name, 0.0)
                                           + time.perf_counter() - self._t, 3)
            self._name = None

    def finish(self) -> dict[str, float]:
        """Stop the clock; the wall time of each stage."""
        self.stop()
        return dict(self.times)


@dataclass(frozen=True)
class SamplingChoice:
    """Samples per item and temperature of a run, and where each came from."""

    samples: int
    temperature: float
    samples_from: str  # "--samples", "policy", "suite <source>" or "default"
    temperature_from: str  # "--temperature", "policy", "suite <source>" or "default"

    def record(self) -> dict[str, Any]:
        """The choice as the manifest's `arguments.sampling` records it."""
        return {"samples": self.samples, "temperature": self.temperature,
                "samples_from": self.samples_from, "temperature_from": self.temperature_from}


def _suite_sampling(suites: Sequence[Suite]) -> tuple[SuiteSampling, str] | None:
    """The sampling the suites ask for and the first suite asking; None when none asks.
    Two suites asking for different sampling is refused (exit 2), naming both files."""
    asking = [s for s in suites if s.sampling is not None]
    if not asking:
        return None
    first = asking[0]
    for other in asking[1:]:
        if other.sampling != first.sampling:
            raise ConfigError(
                f"suites {first.source} ({first.sampling.describe()}) and {other.source} "
                f"({other.sampling.describe()}) ask for different sampling, and one run "
                "samples every item alike",
                path=other.source,
                fix="set it for the run on the command line (--samples N --temperature T) or "
                    "in the policy's sampling:, or make the suites agree")
    return first.sampling, first.source


def decide_sampling(config: RunConfig, policy: Any, suites: Sequence[Suite] = ()
                    ) -> SamplingChoice:
    """Samples per item and temperature: each from the command line, else the policy's
    `sampling`, else the suites' `sampling`, else one greedy response.

    The suites' setting decides the samples only when neither the command line nor the
    policy sets them; its temperature also fills in when those ask for several samples and
    give none. N > 1 at temperature 0 is refused (exit 2)."""
    spec = policy.sampling if policy is not None else None
    in_policy = spec.model_fields_set if spec is not None else set()
    # the suites are asked only when the run's own settings leave something open, so a
    # disagreement between them is an error only where it would decide something
    if config.samples:
        samples, samples_from = config.samples, "--samples"
    elif "samples" in in_policy:
        samples, samples_from = spec.samples, "policy"
    elif (asked := _suite_sampling(suites)) is not None:
        samples, samples_from = asked[0].samples, f"suite {asked[1]}"
    else:
        samples, samples_from = 1, "default"

    temperature, temperature_from = config.generation.temperature, "--temperature"
    if temperature <= 0:
        temperature, temperature_from = 0.0, "default"
        if spec is not None and spec.temperature is not None:
            temperature, temperature_from = spec.temperature, "policy"
        elif (samples_from.startswith("suite") or samples > 1) and \
                (asked := _suite_sampling(suites)) is not None and asked[0].temperature is not None:
            temperature, temperature_from = asked[0].temperature, f"suite {asked[1]}"
    if samples > 1 and temperature <= 0:
        where = {"--samples": "--samples", "policy": "the policy's sampling.samples"}.get(
            samples_from, samples_from)
        raise ConfigError(f"{samples} samples per item ({where}) need sampling, but the "
                          "temperature is 0 (greedy decoding gives identical responses)",
                          fix="pass --temperature above 0 (e.g. --temperature 0.7) or set "
                              "sampling.temperature in the policy; or use one sample")
    return SamplingChoice(samples, temperature, samples_from, temperature_from)


def with_sampling(config: RunConfig, policy: Any, suites: Sequence[Suite] = ()) -> RunConfig:
    """`config` with samples per item and temperature decided (see `decide_sampling`)."""
    return apply_sampling(config, decide_sampling(config, policy, suites))


def apply_sampling(config: RunConfig, choice: SamplingChoice) -> RunConfig:
    """`config` generating `choice.samples` responses per item at `choice.temperature`."""
    gen = config.generation
    return config.model_copy(update={"generation": gen.model_copy(
        update={"samples_per_item": choice.samples, "temperature": choice.temperature})})


@dataclass
class ModelPasses:
    """What the model passes produced, and what judging them needs besides."""

    config: RunConfig  # with sampling decided
    inputs: Inputs
    items: list[Item]  # the items the passes ran on (all, or a shard's slice)
    sae: Any  # SAEHandle, or anything with the SAE's `info`
    labels: Any
    labels_path: Path | None
    judge: Any
    calibrations: list[Any]
    candidate: SideResult
    baseline: SideResult | None = None
    refusal_detector: str | None = None  # what the refusal scorer used (the manifest's words)
    sampling: SamplingChoice | None = None  # how samples and temperature were decided


def model_passes(config: RunConfig, stages: Stages,
                 select: Callable[[list[Item]], list[Item]] | None = None,
                 exemplars: bool = True) -> ModelPasses:
    """Read the inputs and run each checkpoint over the items (`select` picks a slice of
    them; `exemplars=False` skips the exemplar and reference texts)."""
    if config.baseline is not None and config.baseline_results is not None:
        raise ConfigError("give a baseline checkpoint or a baseline results.json, not both",
                          fix="drop one of the two baseline options")

    check_writable(config.out)  # a bad --out fails now, not after the models ran

    stages.start("load")
    inputs = read_inputs(config)
    items = select(inputs.items) if select is not None else inputs.items
    sampling = decide_sampling(config, inputs.policy, inputs.suites)
    config = apply_sampling(config, sampling)
    cache = RunCache(config.cache_dir)
    sae = SAEHandle(config.sae, config.load, cache, stages.log)
    labels, labels_path = read_labels(config.labels, sae.dir)
    candidate = Checkpoint(config.candidate, config.load, cache, stages.log)
    baseline_ckpt = (Checkpoint(config.baseline, config.load, cache, stages.log)
                     if config.baseline is not None else None)
    judge = make_judge(config.judge, config.load, cache, stages.log)
    calibrations = find_calibrations(config.judge, config.judge_calibrations)
    refusal, refusal_detector = make_refusal_model(items, cache, _warn,
                                                   detector=config.refusal_detector, log=stages.log)
    side = partial(run_side, sae=sae, items=items, config=config, cache=cache, judge=judge,
                   refusal=refusal, log=stages.log)
    texts = inputs.exemplar_texts if exemplars else ()

    stages.start("candidate")
    cand = side(candidate, candidate=True, exemplar_texts=texts if baseline_ckpt is None else ())
    candidate.release()
    base = None
    if baseline_ckpt is not None:
        stages.start("baseline")
        base = side(baseline_ckpt, candidate=False, exemplar_texts=texts)
        baseline_ckpt.release()
    return ModelPasses(config=config, inputs=inputs, items=items, sae=sae, labels=labels,
                       labels_path=labels_path, judge=judge, calibrations=calibrations,
                       candidate=cand, baseline=base, refusal_detector=refusal_detector,
                       sampling=sampling)


def judge_passes(p: ModelPasses, stages: Stages, clock: RunClock,
                 arguments: dict[str, Any] | None) -> tuple[GateRun, Callable[[], Outcome]]:
    """Metrics → families → validity → verdicts → record over every item's rows; the record
    and a function that writes it and the reports."""
    config, inputs, cand, base, judge = p.config, p.inputs, p.candidate, p.baseline, p.judge
    baseline = baseline_of(inputs.items, base, config.baseline_results)

    stages.start("metrics")
    stages.log("computing concept metrics")
    metrics = concept_metrics(cand, inputs.items, baseline, inputs.analysis)
    stages.start("families")
    families = concept_families(inputs.policy, p.labels, p.sae.info.d_sae,
                                (base or cand).exemplars, metrics, cand, inputs.items, baseline)
    stages.start("validity")
    if config.validity:
        stages.log("stability, ablation and overlap checks")
    validity = validity_checks(config.validity, cand, baseline, p.sae.info.training_fve, metrics,
                               families, inputs.items)

    stages.start("verdicts")
    evaluation = verdicts(inputs.policy, families, validity, metrics,
                          config.today or clock.started.date(),
                          consistency=sample_counts(inputs.items, cand),
                          judge=judge_info(judge, inputs.items, p.calibrations))

    stages.start("record")
    if p.sampling is not None:  # where samples and temperature came from, beside the arguments
        arguments = {**(arguments or {}), "sampling": p.sampling.record()}
    results = StageResults(inputs=inputs, candidate=cand, baseline=baseline, metrics=metrics,
                           families=families, validity=validity, evaluation=evaluation,
                           labels=p.labels, labels_path=p.labels_path,
                           calibrations=p.calibrations, refusal_detector=p.refusal_detector)
    run = assemble(config, results, p.sae, judge, clock, stages.finish, arguments)

    def write() -> Outcome:
        stages.log(f"writing reports to {config.out}/")
        return write_outputs(run, config, inputs.items, cand)

    return run, write


def start_clock() -> RunClock:
    """The run's id and start time."""
    started = utc_now()
    return RunClock(run_id=new_run_id(started), started=started, t0=time.perf_counter())


def run_gate(config: RunConfig, *, arguments: dict[str, Any] | None = None) -> Outcome:
    """Run the whole gate for `config`; write results.json and the reports to `config.out`."""
    clock = start_clock()
    stages = Stages(config.progress)
    quiet_library_bars(config.progress)
    env_offline(config.load.offline)
    passes = model_passes(config, stages)
    _run, write = judge_passes(passes, stages, clock, arguments)
    return write()
