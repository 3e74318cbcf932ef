"""Sharded runs: `cg-gate run --shard I/N` does the model passes of one slice of the items
and writes a shard record; `cg-gate merge` joins the records and judges the whole run.

How items are sliced: the items are put in the order the extraction reads them (by the
length of the text it reads, ties in suite order), cut into batches of `--batch-size`,
and shard I gets the I-th of N contiguous runs of whole batches. Both checkpoints read the
same slice. Each item is therefore read in exactly the batch the unsharded run reads it
in, so its activations are the same bits, and the merged record — every sum, χ, family,
bootstrap, stability draw and verdict recomputed from the combined item rows — has the
unsharded run's digest.

Exactness holds for the activations whenever the read text is known before the run:
`--token-text prompt` (the default), or imported responses. Generated responses are
generated per shard; with greedy decoding they match the unsharded run unless batching
noise flips a near-tie, and a shared response cache makes them identical. Sampled
responses (temperature above 0) are seeded per generation batch, so they differ from the
unsharded run's: the merged record is then a sound run with a digest of its own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import scipy.sparse as sp

from cg_gate import __version__
from cg_gate.errors import ConfigError, ResultsError
from cg_gate.pipeline._config import RunConfig, ShardSpec
from cg_gate.pipeline._side import Responses, SideResult
from cg_gate.record import (
    ModelInfo,
    SAEInfo,
    StageCost,
    ShardRecord,
    ShardSide,
    check_shards,
    read_shard,
    shard_file_name,
    shard_paths,
    write_shard,
)
from cg_gate.suites import Item

if TYPE_CHECKING:  # named in annotations only; _run is imported where it is used, as below
    from cg_gate.pipeline._run import SamplingChoice

_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> ShardSpec:
    """`2/4` → ShardSpec(index=2, count=4); ConfigError (exit 2) for anything else."""
    m = _SHARD_RE.match(text or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ConfigError(f"--shard {text!r} is not I/N with 1 ≤ I ≤ N",
                          fix="pass e.g. --shard 1/4 … --shard 4/4, one per job")
    return ShardSpec(index=int(m.group(1)), count=int(m.group(2)))


def _read_length(item: Item, reads_response: bool) -> int:
    """The length extraction orders items by (the same key as `cg_gate.sae.extract`)."""
    n = sum(len(m.content) for m in item.messages)
    if reads_response and item.response is not None:
        n += len(item.response)
    return n


def shard_indices(items: Sequence[Item], shard: ShardSpec, *, batch_size: int,
                  reads_response: bool = False) -> list[int]:
    """Positions (in suite order) of the items shard `shard` runs: whole extraction batches.

    ConfigError when there are fewer batches than shards (a shard would be empty).
    """
    order = sorted(range(len(items)), key=lambda i: (_read_length(items[i], reads_response), i))
    batches = [order[lo:lo + batch_size] for lo in range(0, len(order), batch_size)]
    if shard.count > len(batches):
        raise ConfigError(
            f"{len(items)} items make {len(batches)} batches of {batch_size}, too few for "
            f"{shard.count} shards (each shard takes whole batches)",
            fix=f"use at most {len(batches)} shards, or a smaller --batch-size")
    k, n = shard.index - 1, len(batches)
    picked = [i for b in batches[k * n // shard.count:(k + 1) * n // shard.count] for i in b]
    return sorted(picked)


# --------------------------------------------------------------------------- identity


def _file_digest(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _model_identity(info: ModelInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"digest": info.digest, "tokenizer": info.tokenizer_digest,
            "chat_template": info.chat_template_digest, "dtype": info.dtype}


def input_identity(config: RunConfig, inputs: Any, labels_path: Path | None) -> dict[str, Any]:
    """What the inputs read from files are: suites, policy, labels, baseline results."""
    policy = inputs.policy.policy_info() if inputs.policy is not None else None
    return {
        "suites": [[s.name, s.version, s.digest()] for s in inputs.suites],
        "policy": [policy.digest, policy.waivers_digest] if policy is not None else None,
        "labels": _file_digest(labels_path),
        "baseline_results": _file_digest(config.baseline_results),
    }


def run_identity(config: RunConfig, inputs: Any, labels_path: Path | None, sae: SAEInfo,
                 cand: ModelInfo, base: ModelInfo | None, packages: dict[str, str]) -> dict[str, Any]:
    """Everything the shards of one run must share, by part (to say which part differs)."""
    settings = config.model_dump(mode="json", include={
        "generation", "token_policy", "batch_size", "validity", "judge", "today", "fail_on",
        "limit", "refusal_detector"})
    return {
        "cg-gate": __version__,
        "shards": config.shard.count if config.shard else 1,
        **input_identity(config, inputs, labels_path),
        "candidate": _model_identity(cand),
        "baseline": _model_identity(base),
        "sae": {"digest": sae.digest, "hook": sae.hook},
        "settings": settings,
        "packages": packages,
    }


def _key(identity: dict[str, Any]) -> str:
    import json

    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


# --------------------------------------------------------------------------- shard run


@dataclass
class ShardOutcome:
    """What a shard run wrote."""

    path: Path
    shard: ShardSpec
    n_items: int
    n_total: int


def _side_rows(side: SideResult, with_exemplars: bool) -> ShardSide:
    acts = side.activations
    texts = list(side.exemplars)
    return ShardSide(
        info=side.info.model_dump(mode="json"), texts=list(side.responses.texts),
        reasons=list(side.responses.reasons), scores=np.asarray(side.responses.scores, float),
        generated=side.responses.generated, saliency=acts.saliency.tocsr(),
        n_tokens=acts.n_tokens, sse=acts.sse, sum_sq=acts.sum_sq, sum_x=acts.sum_x,
        l0_sum=acts.l0_sum, act_keys=list(acts.keys), tokens_processed=acts.tokens_processed,
        cache_hits=acts.cache_hits, exemplar_texts=texts if with_exemplars else [],
        exemplars=(sp.vstack([side.exemplars[t] for t in texts]).tocsr()
                   if with_exemplars and texts else None),
        samples=side.responses.samples, sample_scores=side.responses.sample_scores,
        sample_reasons=side.responses.sample_reasons,
        sample_tokens=side.responses.sample_tokens,
        costs=[c.model_dump(mode="json") for c in side.costs],
    )


def run_shard(config: RunConfig, *, arguments: dict[str, Any] | None = None) -> ShardOutcome:
    """The model passes of shard `config.shard` over its slice; its shard record in `config.out`."""
    from cg_gate.pipeline._fingerprint import env_offline
    from cg_gate.pipeline._manifest import package_versions
    from cg_gate.pipeline._run import Stages, model_passes
    from cg_gate._progress import quiet_library_bars

    shard = config.shard
    if shard is None:
        raise ConfigError("a shard run needs --shard I/N", fix="pass --shard 1/4 (for example)")
    stages = Stages(config.progress)
    quiet_library_bars(config.progress)
    env_offline(config.load.offline)
    reads_response = config.token_policy.text != "prompt"
    total: list[int] = []

    def select(items: list[Item]) -> list[Item]:
        total.append(len(items))
        idx = shard_indices(items, shard, batch_size=config.batch_size,
                            reads_response=reads_response)
        stages.log(f"shard {shard}: {len(idx)} of {len(items)} items")
        return [items[i] for i in idx]

    passes = model_passes(config, stages, select=select, exemplars=shard.index == 1)
    cand, base = passes.candidate, passes.baseline
    packages = package_versions()
    identity = run_identity(passes.config, passes.inputs, passes.labels_path, passes.sae.info,
                            cand.info, base.info if base else None, packages)
    record = ShardRecord(
        index=shard.index, count=shard.count, run_key=_key(identity), identity=identity,
        item_keys=[(it.suite, it.id) for it in passes.items],
        config=passes.config.model_dump(mode="json"), packages=packages,
        # how samples and temperature were decided, for the merged run's manifest
        arguments={**(arguments or {}),
                   **({"sampling": passes.sampling.record()} if passes.sampling else {})},
        stage_times=stages.finish(), sae_info=passes.sae.info.model_dump(mode="json"),
        candidate=_side_rows(cand, shard.index == 1 and base is None),
        baseline=_side_rows(base, shard.index == 1) if base is not None else None,
    )
    path = write_shard(Path(config.out) / shard_file_name(shard.index, shard.count), record)
    stages.log(f"wrote {path}")
    return ShardOutcome(path=path, shard=shard, n_items=len(passes.items), n_total=total[0])


# --------------------------------------------------------------------------- merge


@dataclass
class _KnownSAE:
    """The SAE as the shards described it (merge loads no SAE)."""

    info: SAEInfo


def _side_result(sides: Sequence[ShardSide], order: np.ndarray) -> SideResult:
    """One checkpoint's rows from every shard, re-ordered to suite order by `order`."""
    from cg_gate.sae import Extraction

    texts = [t for s in sides for t in s.texts]
    reasons = [r for s in sides for r in s.reasons]
    keys = [k for s in sides for k in s.act_keys]
    sal = sp.vstack([s.saliency for s in sides]).tocsr()[order]
    n_tokens = np.concatenate([s.n_tokens for s in sides])[order]
    exemplars: dict[str, sp.csr_matrix] = {}
    for s in sides:
        if s.exemplars is not None:
            rows = s.exemplars.tocsr()
            exemplars.update({t: rows[i] for i, t in enumerate(s.exemplar_texts)})
    keys = [keys[i] for i in order]
    acts = Extraction(
        keys=keys, saliency=sp.csr_matrix(sal, dtype=np.float32), n_tokens=n_tokens,
        sse=np.concatenate([s.sse for s in sides])[order],
        sum_sq=np.concatenate([s.sum_sq for s in sides])[order],
        sum_x=np.concatenate([s.sum_x for s in sides])[order],
        l0_sum=np.concatenate([s.l0_sum for s in sides])[order],
        tokens_processed=sum(s.tokens_processed for s in sides),
        cache_hits=sum(s.cache_hits for s in sides),
        zero_token_keys=[k for k, n in zip(keys, n_tokens) if n == 0],
    )
    def rows(attr: str) -> list[Any]:
        joined = [r for s in sides for r in getattr(s, attr)]
        return [joined[i] for i in order] if joined else []

    responses = Responses(texts=[texts[i] for i in order],
                          scores=np.concatenate([s.scores for s in sides])[order],
                          reasons=[reasons[i] for i in order],
                          generated=sum(s.generated for s in sides),
                          samples=rows("samples"), sample_scores=rows("sample_scores"),
                          sample_reasons=rows("sample_reasons"),
                          sample_tokens=rows("sample_tokens"))
    return SideResult(info=ModelInfo.model_validate(sides[0].info), responses=responses,
                      activations=acts, exemplars=exemplars, costs=_costs(sides))


def _costs(sides: Sequence[ShardSide]) -> list[StageCost]:
    """The shards' cost rows, summed by stage (wall time is the sum over the shard jobs)."""
    total: dict[str, dict[str, Any]] = {}
    for s in sides:
        for row in s.costs:
            t = total.setdefault(row["stage"], {**row, "wall_s": 0.0, "items": 0, "computed": 0,
                                                "tokens_in": 0, "tokens_out": 0})
            for k in ("wall_s", "items", "computed", "tokens_in", "tokens_out"):
                t[k] += row[k]
    out = []
    for t in total.values():
        wall = round(t["wall_s"], 3)
        out.append(StageCost.model_validate({**t, "wall_s": wall, "items_per_s": (
            round(t["items"] / wall, 3) if wall > 0 and t["items"] else None)}))
    return out


def _sae_dir(source: str | None) -> Path | None:
    if source is None:
        from cg_gate.default import default_sae_dir

        return Path(default_sae_dir())
    path = Path(source).expanduser()
    return path if path.is_dir() else None


def _item_order(shards: Sequence[ShardRecord], items: Sequence[Item]) -> np.ndarray:
    """For each item in suite order, its row in the shards' concatenated rows."""
    where: dict[tuple[str, str], int] = {}
    for shard in shards:
        for key in shard.item_keys:
            if key in where:
                raise ResultsError(f"item {key[0]}/{key[1]} is in more than one shard",
                                   path=shard.path, fix="merge the shards of one run")
            where[key] = len(where)
    keys = [(it.suite, it.id) for it in items]
    missing = [k for k in keys if k not in where]
    if missing or len(where) != len(keys):
        raise ResultsError(
            f"the shards hold {len(where)} items, the suites {len(keys)}"
            + (f" (first missing: {missing[0][0]}/{missing[0][1]})" if missing else ""),
            path=shards[0].path, fix="merge the shards of one run, next to the suites it read")
    return np.array([where[k] for k in keys], dtype=np.int64)


def _sampling_choice(recorded: Any) -> SamplingChoice | None:
    """The shards' record of how sampling was decided, or None (older shards have none)."""
    from cg_gate.pipeline._run import SamplingChoice

    try:
        return SamplingChoice(**recorded) if isinstance(recorded, dict) else None
    except TypeError:
        return None


def merge_shards(paths: Sequence[Path], *, out: Path, formats: list[str] | None = None,
                 arguments: dict[str, Any] | None = None,
                 progress: bool = False) -> tuple[Any, str]:
    """Join shard records into the run record and reports the unsharded run writes; the
    outcome and the run's --fail-on.

    The suites, policy and labels are read again (from the paths the shards recorded) and
    must be the ones the shards read; nothing is loaded but files.
    """
    from cg_gate.pipeline._fingerprint import env_offline
    from cg_gate.pipeline._inputs import (find_calibrations, make_judge, make_refusal_model, read_inputs,
                                         read_labels)
    from cg_gate.pipeline._run import ModelPasses, Stages, judge_passes, start_clock
    from cg_gate.record import RunCache

    from cg_gate.render import check_writable

    check_writable(out)  # a bad --out fails before any shard is read
    shards = check_shards([read_shard(p) for p in shard_paths(paths)])
    first = shards[0]
    update: dict[str, Any] = {"out": Path(out), "shard": None, "progress": progress}
    if formats is not None:
        update["formats"] = formats
    try:
        config = RunConfig.model_validate(first.config).model_copy(update=update)
    except ValueError as exc:
        raise ResultsError(f"the shard's run settings do not validate ({exc})", path=first.path,
                           fix="merge with the cg-gate version that ran the shards") from None
    clock = start_clock()
    stages = Stages(progress)
    env_offline(config.load.offline)
    stages.start("load")
    inputs = read_inputs(config)
    labels, labels_path = read_labels(config.labels, _sae_dir(config.sae))
    now = input_identity(config, inputs, labels_path)
    changed = [k for k, v in now.items() if first.identity.get(k) != v]
    if changed:
        raise ResultsError(
            f"the {', '.join(changed)} read now differ from what the shards read",
            path=first.path,
            fix="merge in a checkout of the same commit the shard jobs ran on")
    order = _item_order(shards, inputs.items)
    cand = _side_result([s.candidate for s in shards], order)
    base = (_side_result([s.baseline for s in shards if s.baseline is not None], order)
            if first.baseline is not None else None)
    passes = ModelPasses(config=config, inputs=inputs, items=inputs.items,
                         sae=_KnownSAE(SAEInfo.model_validate(first.sae_info)), labels=labels,
                         labels_path=labels_path,
                         # a judge is known by the cache its shards filled (merge loads none)
                         judge=make_judge(config.judge, config.load,
                                          RunCache(config.cache_dir) if config.judge else None,
                                          stages.log),
                         calibrations=find_calibrations(config.judge, config.judge_calibrations),
                         candidate=cand, baseline=base,
                         # the shards' refusal detector, named from its files (merge loads no model)
                         refusal_detector=make_refusal_model(
                             inputs.items, detector=config.refusal_detector)[1],
                         sampling=_sampling_choice(first.arguments.get("sampling")))
    merged_args = {**(arguments or {}), "shards": {
        "count": first.count, "arguments": first.arguments,
        "files": [str(s.path) for s in shards]}}
    run, write = judge_passes(passes, stages, clock, merged_args)
    shard_times: dict[str, float] = {}
    for shard in shards:
        for stage, t in shard.stage_times.items():
            shard_times[f"shards.{stage}"] = round(shard_times.get(f"shards.{stage}", 0.0) + t, 3)
    run.manifest.packages = dict(first.packages)
    run.manifest.stage_times_s = {**shard_times, **run.manifest.stage_times_s}
    return write(), config.fail_on
