"""`run_gate`: suites → responses & scores → activations → metrics → families → validity →
verdicts → record → reports.

Each stage is one call into its own module that takes typed inputs and returns a typed
result; the record package assembles the run record (and derives its summary) from them.
"""

from __future__ import annotations

import sys
import time
from functools import partial
from typing import Any

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
from cg_gate.pipeline._inputs import find_calibrations, make_judge, read_inputs, read_labels
from cg_gate.pipeline._manifest import new_run_id, utc_now
from cg_gate.pipeline._record import (
    Outcome,
    RunClock,
    StageResults,
    assemble,
    judge_info,
    write_outputs,
)
from cg_gate.pipeline._side import run_side
from cg_gate.record import RunCache
from cg_gate.render import check_writable


class _Stages:
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


def with_sampling(config: RunConfig, policy: Any) -> RunConfig:
    """`config` with samples per item and temperature decided: the command line's, else the
    policy's `sampling`, else one greedy response. N > 1 at temperature 0 is refused (exit 2)."""
    spec = policy.sampling if policy is not None else None
    gen = config.generation
    samples = config.samples or (spec.samples if spec is not None else 1)
    temperature = gen.temperature
    if temperature <= 0 and spec is not None and spec.temperature is not None:
        temperature = spec.temperature
    if samples > 1 and temperature <= 0:
        where = "--samples" if config.samples else "the policy's sampling.samples"
        raise ConfigError(f"{samples} samples per item ({where}) need sampling, but the "
                          "temperature is 0 (greedy decoding gives identical responses)",
                          fix="pass --temperature above 0 (e.g. --temperature 0.7) or set "
                              "sampling.temperature in the policy; or use one sample")
    return config.model_copy(update={"generation": gen.model_copy(
        update={"samples_per_item": samples, "temperature": temperature})})


def run_gate(config: RunConfig, *, arguments: dict[str, Any] | None = None) -> Outcome:
    """Run the whole gate for `config`; write results.json and the reports to `config.out`."""
    started = utc_now()
    clock = RunClock(run_id=new_run_id(started), started=started, t0=time.perf_counter())
    stages = _Stages(config.progress)
    quiet_library_bars(config.progress)
    env_offline(config.load.offline)
    if config.baseline is not None and config.baseline_results is not None:
        raise ConfigError("give a baseline checkpoint or a baseline results.json, not both",
                          fix="drop one of the two baseline options")

    check_writable(config.out)  # a bad --out fails now, not after the models ran

    stages.start("load")
    inputs = read_inputs(config)
    config = with_sampling(config, inputs.policy)
    cache = RunCache(config.cache_dir)
    sae = SAEHandle(config.sae, config.load, cache, stages.log)
    labels, labels_path = read_labels(config.labels, sae.dir)
    candidate = Checkpoint(config.candidate, config.load, cache, stages.log)
    baseline_ckpt = (Checkpoint(config.baseline, config.load, cache, stages.log)
                     if config.baseline is not None else None)
    judge = make_judge(config.judge, config.load, cache, stages.log)
    calibrations = find_calibrations(config.judge, config.judge_calibrations)
    side = partial(run_side, sae=sae, items=inputs.items, config=config, cache=cache, judge=judge,
                   log=stages.log)

    stages.start("candidate")
    cand = side(candidate, candidate=True,
                exemplar_texts=inputs.exemplar_texts if baseline_ckpt is None else ())
    candidate.release()
    base = None
    if baseline_ckpt is not None:
        stages.start("baseline")
        base = side(baseline_ckpt, candidate=False, exemplar_texts=inputs.exemplar_texts)
        baseline_ckpt.release()
    baseline = baseline_of(inputs.items, base, config.baseline_results)

    stages.start("metrics")
    stages.log("computing concept metrics")
    metrics = concept_metrics(cand, inputs.items, baseline, inputs.analysis)
    stages.start("families")
    families = concept_families(inputs.policy, labels, sae.info.d_sae,
                                (base or cand).exemplars, metrics, cand, inputs.items, baseline)
    stages.start("validity")
    if config.validity:
        stages.log("stability, ablation and overlap checks")
    validity = validity_checks(config.validity, cand, baseline, sae.info.training_fve, metrics,
                               families, inputs.items)

    stages.start("verdicts")
    evaluation = verdicts(inputs.policy, families, validity, metrics, config.today or started.date(),
                          consistency=sample_counts(inputs.items, cand),
                          judge=judge_info(judge, inputs.items, calibrations))

    stages.start("record")
    results = StageResults(inputs=inputs, candidate=cand, baseline=baseline, metrics=metrics,
                           families=families, validity=validity, evaluation=evaluation,
                           labels=labels, labels_path=labels_path, calibrations=calibrations)
    run = assemble(config, results, sae, judge, clock, stages.finish, arguments)
    stages.log(f"writing reports to {config.out}/")
    return write_outputs(run, config, inputs.items, cand)
