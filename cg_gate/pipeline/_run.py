"""`run_gate`: suites → responses → concepts → metrics → families → verdicts → record → reports.

Each stage is a call into its own subpackage; this module only wires them and fills the
run record. Nothing here computes a metric itself.
"""

from __future__ import annotations

import io
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import click
import numpy as np
import scipy.sparse as sp

from cg_gate import __version__
from cg_gate.errors import ConfigError, ResultsError
from cg_gate.pipeline._config import RunConfig
from cg_gate.pipeline._console import Outcome
from cg_gate.pipeline._fingerprint import env_offline
from cg_gate.pipeline._manifest import ci_info, git_info, iso, new_run_id, package_versions, utc_now
from cg_gate.pipeline._side import Checkpoint, SAEHandle, SideResult, run_side
from cg_gate.record import (
    AnalysisSettings,
    CategoryBreakdown,
    FidelitySummary,
    GateRun,
    GenerationSettings,
    ItemRecord,
    Manifest,
    PolicyInfo,
    SuiteInfo,
    Summary,
    atomic_write_bytes,
    read_results,
)
from cg_gate.record import ActivationCache, ResponseCache
from cg_gate.suites import Item, Suite

ACTIVATIONS_FILE = "activations.npz"


class _Stages:
    """Wall time per stage, and a one-line log to stderr."""

    def __init__(self, progress: bool) -> None:
        self.times: dict[str, float] = {}
        self.progress = progress
        self._name: str | None = None
        self._t = 0.0

    def log(self, msg: str) -> None:
        if self.progress:
            click.echo(f"cg-gate: {msg}", err=True)

    def start(self, name: str) -> None:
        self.stop()
        self._name, self._t = name, time.perf_counter()

    def stop(self) -> None:
        if self._name is not None:
            self.times[self._name] = round(self.times.get(self._name, 0.0)
                                           + time.perf_counter() - self._t, 3)
            self._name = None


# --------------------------------------------------------------------------- baseline file


def save_activations(path: Path, items: Sequence[Item], side: SideResult) -> None:
    """The sparse saliency and scores of a run, so a later run can use it as a baseline."""
    csr = side.activations.saliency.tocsr()
    buf = io.BytesIO()
    np.savez_compressed(
        buf, data=csr.data, indices=csr.indices, indptr=csr.indptr,
        shape=np.array(csr.shape, dtype=np.int64),
        item_ids=np.array([it.id for it in items], dtype=str),
        suites=np.array([it.suite for it in items], dtype=str),
        scores=side.scores.astype(np.float64),
    )
    atomic_write_bytes(path, buf.getvalue())


def load_baseline_results(path: Path) -> tuple[GateRun, Any]:
    """A previous run as a baseline: its record and its saliency (BaselineSide)."""
    from cg_gate.families import BaselineSide

    run = read_results(path)
    npz = Path(path).parent / ACTIVATIONS_FILE
    if not npz.is_file():
        raise ResultsError(f"baseline results have no {ACTIVATIONS_FILE} beside them", path=npz,
                           fix="re-run the baseline with `cg-gate run` (it writes the file), or "
                               "pass the baseline checkpoint instead")
    try:
        with np.load(npz, allow_pickle=False) as z:
            csr = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            side = BaselineSide(saliency=csr, scores=z["scores"], item_ids=list(z["item_ids"]),
                                suites=list(z["suites"]))
    except (OSError, KeyError, ValueError) as exc:
        raise ResultsError(f"cannot read baseline activations ({exc})", path=npz,
                           fix="re-run the baseline with `cg-gate run`") from None
    return run, side


# --------------------------------------------------------------------------- helpers


def _align(ids: Sequence[tuple[str, str]], other_ids: Sequence[tuple[str, str]],
           values: np.ndarray) -> np.ndarray:
    """`values` (indexed like other_ids) re-indexed like `ids`; NaN where absent."""
    pos = {k: i for i, k in enumerate(other_ids)}
    out = np.full(len(ids), np.nan)
    for i, k in enumerate(ids):
        j = pos.get(k)
        if j is not None:
            out[i] = values[j]
    return out


def _mean(values: np.ndarray) -> float | None:
    v = values[~np.isnan(values)]
    return float(v.mean()) if v.size else None


def _labels_for(config: RunConfig, sae: SAEHandle) -> tuple[Any, Path | None]:
    from cg_gate.families import load_labels

    path = config.labels
    if path is None and sae.dir is not None:
        for name in ("labels.jsonl", "labels.json", "labels.jsonl.gz"):
            if (sae.dir / name).is_file():
                path = sae.dir / name
                break
    if path is None:
        return None, None
    return load_labels(path), Path(path)


def _categories(suites: Sequence[Suite], items: Sequence[Item], scores: np.ndarray,
                base_scores: np.ndarray | None) -> list[CategoryBreakdown]:
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        groups[(it.suite, it.category)].append(i)
    declared = {(s.name, c): cat.severity for s in suites for c, cat in s.categories.items()}
    out = []
    for (suite, cat), idx in groups.items():
        s = scores[idx]
        scored = s[~np.isnan(s)]
        out.append(CategoryBreakdown(
            suite=suite, category=cat,
            severity=declared.get((suite, cat), items[idx[0]].severity),
            n_items=len(idx), n_scored=int(scored.size),
            mean_score=float(scored.mean()) if scored.size else None,
            failures=int((scored < 0.5).sum()),
            baseline_mean_score=_mean(base_scores[idx]) if base_scores is not None else None,
        ))
    return out


def _top_concepts(row: sp.csr_matrix, k: int = 5) -> list[tuple[int, float]]:
    if row.nnz == 0:
        return []
    order = np.argsort(-row.data, kind="stable")[:k]
    return [(int(row.indices[j]), float(row.data[j])) for j in order]


def _exemplar_texts(policy: Any) -> list[str]:
    from cg_gate.families import exemplar_texts, reference_texts

    texts: list[str] = []
    if policy is None:
        return texts
    for spec in policy.concepts.values():
        ex = spec.match.exemplars
        if ex is not None:
            texts.extend(exemplar_texts(ex))
            texts.extend(reference_texts(ex))
    return texts


# --------------------------------------------------------------------------- the run


def run_gate(config: RunConfig, *, arguments: dict[str, Any] | None = None) -> Outcome:
    """Run the whole gate for `config`; write results.json and the reports to `config.out`."""
    from cg_gate.families import BaselineSide, family_result, resolve_family
    from cg_gate.metrics import compute, concept_records, coverage_summaries
    from cg_gate.policy import evaluate, load_policy
    from cg_gate.suites import load_suites, starter_suite_path

    t0 = time.perf_counter()
    started = utc_now()
    run_id = new_run_id(started)
    stages = _Stages(config.progress)
    env_offline(config.offline)
    if config.baseline is not None and config.baseline_results is not None:
        raise ConfigError("give a baseline checkpoint or a baseline results.json, not both",
                          fix="drop one of the two baseline options")

    # -- inputs ----------------------------------------------------------------
    stages.start("load")
    policy = load_policy(config.policy, waivers=config.waivers) if config.policy else None
    analysis = policy.analysis.to_settings() if policy is not None else AnalysisSettings()
    specs = config.suites or [str(starter_suite_path())]
    suites = load_suites(specs)
    items = [it for s in suites for it in s.items]
    if not items:
        raise ConfigError("the suites hold no items", fix="pass a suite with at least one item")
    keys = [(it.suite, it.id) for it in items]
    acts_cache = ActivationCache(Path(config.cache_dir) / "activations")
    resp_cache = ResponseCache(Path(config.cache_dir) / "responses")
    sae = SAEHandle(config.sae, config, stages.log)
    labels, labels_path = _labels_for(config, sae)
    candidate = Checkpoint(config.candidate, config, stages.log)
    baseline_ckpt = (Checkpoint(config.baseline, config, stages.log)
                     if config.baseline is not None else None)
    exemplar_texts = _exemplar_texts(policy)
    judge = _judge(config)

    # -- candidate, then baseline --------------------------------------------------
    stages.start("candidate")
    cand = run_side(candidate, sae, items, config, candidate=True, acts_cache=acts_cache,
                    resp_cache=resp_cache, judge=judge,
                    exemplar_texts=exemplar_texts if baseline_ckpt is None else (),
                    log=stages.log)
    candidate.release()
    base: SideResult | None = None
    base_side = None
    base_run = None
    if baseline_ckpt is not None:
        stages.start("baseline")
        base = run_side(baseline_ckpt, sae, items, config, candidate=False, acts_cache=acts_cache,
                        resp_cache=resp_cache, judge=judge, exemplar_texts=exemplar_texts,
                        log=stages.log)
        baseline_ckpt.release()
        base_side = BaselineSide(saliency=base.activations.saliency, scores=base.scores,
                                 item_ids=[it.id for it in items],
                                 suites=[it.suite for it in items])
    elif config.baseline_results is not None:
        base_run, base_side = load_baseline_results(config.baseline_results)
    exemplar_rows = (base.exemplars if base is not None else cand.exemplars)

    # -- metrics ---------------------------------------------------------------------
    stages.start("metrics")
    stages.log("computing concept metrics")
    sal = cand.activations.saliency
    suite_of = [it.suite for it in items]
    metric_kw = dict(min_support=analysis.min_support, tau_under=analysis.tau_under,
                     tau_over=analysis.tau_over, eps=analysis.eps,
                     n_boot=analysis.bootstrap_samples, confidence=analysis.confidence,
                     seed=analysis.seed)
    metrics = compute(sal, suite_of, cand.scores, **metric_kw)
    analysis = analysis.model_copy(update={"concept_ci": metrics.ci_method})
    base_scores_aligned = None
    base_chi = None
    if base_side is not None:
        base_keys = list(zip(base_side.suites or [""] * len(base_side.item_ids),
                             base_side.item_ids))
        base_scores_aligned = _align(keys, base_keys, np.asarray(base_side.scores, float))
        base_metrics = compute(base_side.saliency, list(base_side.suites), base_side.scores,
                               **{**metric_kw, "ci": "delta"})
        base_chi = base_metrics.chi_model_all

    # -- families ----------------------------------------------------------------------
    stages.start("families")
    d_sae = sae.info.d_sae

    def saliency_fn(texts: list[str]) -> sp.csr_matrix:
        missing = [t for t in texts if t not in exemplar_rows]
        if missing:
            raise ConfigError(f"{len(missing)} exemplar texts were not read by the model",
                              fix="report this as a bug in cg-gate")
        return sp.vstack([exemplar_rows[t] for t in texts]).tocsr() if texts else \
            sp.csr_matrix((0, d_sae))

    families = {}
    resolved_members: dict[str, list[int]] = {}
    if policy is not None:
        for key, spec in policy.concepts.items():
            resolved = resolve_family(key, spec, labels=labels, d_sae=d_sae,
                                      exemplar_saliency=saliency_fn)
            resolved_members[key] = [m.id for m in resolved.members]
            fam = family_result(
                resolved, metrics=metrics, saliency=sal, scores=cand.scores,
                item_ids=[it.id for it in items], suites=suite_of,
                n_boot=analysis.bootstrap_samples, confidence=analysis.confidence,
                seed=analysis.seed, baseline=base_side,
                stability_repeats=0,  # filled from the one stability pass below
            )
            if base_scores_aligned is not None and resolved_members[key]:
                from cg_gate.validity import adjusted_family_score

                adj = adjusted_family_score(sal, cand.scores, base_scores_aligned,
                                            resolved_members[key],
                                            min_support=analysis.min_support)
                fam.performance.adjusted = adj
            families[key] = fam

    # -- validity --------------------------------------------------------------------------
    stages.start("validity")
    stability_rec = ablation_rec = overlap_rec = None
    stability_std = None
    if config.validity:
        from cg_gate.validity import ablation, overlap, stability

        stages.log("stability, ablation and overlap checks")
        stab = stability(sal, suite_of, cand.scores, families=resolved_members,
                         repeats=analysis.stability_repeats, drop=analysis.stability_drop,
                         seed=analysis.seed, min_support=analysis.min_support)
        stability_rec = stab.to_record()
        stability_std = stab.std_chi_model
        for key, fam in families.items():
            fam.performance.stability_std = stab.families.get(key)
        ablation_rec = ablation(sal, cand.scores, metrics, n=analysis.ablation_n).to_record()
        overlap_rec = overlap(metrics).to_record()

    fidelity = _fidelity(cand, base, sae, suite_of)

    # -- verdicts ----------------------------------------------------------------------------
    stages.start("verdicts")
    verdicts, waivers = [], []
    today = config.today or started.date()
    if policy is not None:
        result = evaluate(policy, families=families, fidelity=fidelity, stability=stability_rec,
                          suites=list(metrics.suite_names), today=today)
        verdicts, waivers = result.verdicts, result.waivers

    # -- record --------------------------------------------------------------------------------
    stages.start("record")
    label_map = {} if labels is None else dict(labels.items())
    concepts = concept_records(metrics, label_map, sal, [it.id for it in items],
                               stability_std=stability_std, baseline_chi_model=base_chi)
    item_records = []
    for i, it in enumerate(items):
        item_records.append(ItemRecord(
            id=it.id, suite=it.suite, category=it.category, severity=it.severity,
            input=it.prompt, response=cand.responses[i],
            score=None if np.isnan(cand.scores[i]) else float(cand.scores[i]),
            reason=cand.reasons[i],
            baseline_response=base.responses[i] if base is not None else None,
            baseline_score=(None if base_scores_aligned is None or np.isnan(base_scores_aligned[i])
                            else float(base_scores_aligned[i])),
            n_tokens=int(cand.activations.n_tokens[i]),
            top_concepts=_top_concepts(sal.getrow(i)),
        ))
    failing = [v for v in verdicts if v.fails(config.fail_on)]
    counts: dict[str, int] = defaultdict(int)
    for v in verdicts:
        counts[v.status] += 1
    summary = Summary(
        verdict="fail" if failing else "pass", fail_on=config.fail_on, counts=dict(counts),
        failed_rules=[v.stable_id for v in failing], mean_score=_mean(cand.scores),
        baseline_mean_score=_mean(base_scores_aligned) if base_scores_aligned is not None else None,
        n_concepts=d_sae, n_items=len(items),
    )
    stages.stop()
    finished = utc_now()
    tokens = cand.activations.tokens_processed + (base.activations.tokens_processed if base else 0)
    manifest = Manifest(
        tool_version=__version__, run_id=run_id, started_at=iso(started), finished_at=iso(finished),
        git=git_info(), ci=ci_info(), model=cand.info, baseline=base.info if base else None,
        baseline_results=str(config.baseline_results) if config.baseline_results else None,
        sae=_sae_info(sae, labels_path),
        suites=[SuiteInfo(name=s.name, version=s.version, digest=s.digest(), n_items=len(s.items),
                          source=s.source, provenance=s.provenance) for s in suites],
        policy=_policy_info(policy, config) if policy is not None else None,
        generation=_generation(config, cand, items, judge),
        token_policy=config.token_policy, analysis=analysis,
        arguments=arguments or {}, packages=package_versions(),
        wall_time_s=round(time.perf_counter() - t0, 3), stage_times_s=dict(stages.times),
        tokens_processed=int(tokens), items_processed=len(items),
        cache_hits=int(cand.activations.cache_hits),
    )
    run = GateRun(
        manifest=manifest, summary=summary, verdicts=verdicts, waivers=waivers,
        families=list(families.values()), coverage=coverage_summaries(metrics),
        concepts=concepts, items=item_records,
        categories=_categories(suites, items, cand.scores, base_scores_aligned),
        stability=stability_rec, ablation=ablation_rec, overlap=overlap_rec, fidelity=fidelity,
        signoff=config.signoff,
    )
    return write_outputs(run, config, items, cand, stages)


def write_outputs(run: GateRun, config: RunConfig, items: Sequence[Item], cand: SideResult,
                  stages: _Stages) -> Outcome:
    """results.json, activations.npz and the requested reports, each written atomically."""
    from cg_gate.render import render_all

    out = Path(config.out)
    stages.log(f"writing reports to {out}/")
    paths: dict[str, Path] = {}
    run.digest = run.deterministic_digest()
    formats = [f for f in config.formats if f != "json"] + ["json"]
    policy_source = run.manifest.policy.path if run.manifest.policy else None
    paths.update(render_all(run, formats, out, policy_source=policy_source))
    save_activations(out / ACTIVATIONS_FILE, items, cand)
    paths["activations"] = out / ACTIVATIONS_FILE
    return Outcome(run=run, paths=paths)


def _judge(config: RunConfig) -> Any:
    if not config.judge:
        return None
    from cg_gate.models import ModelSpec, complete, load_model

    holder: dict[str, Any] = {}

    def judge(prompts: list[str]) -> list[str]:
        if "model" not in holder:
            holder["model"] = load_model(ModelSpec(id=config.judge, offline=config.offline,
                                                   device=config.device if config.device in
                                                   ("cpu", "cuda", "auto") else "cpu"))
        return complete(holder["model"], prompts, max_new_tokens=96)

    return judge


def _fidelity(cand: SideResult, base: SideResult | None, sae: SAEHandle,
              suite_of: Sequence[str]) -> FidelitySummary:
    from cg_gate.validity import fidelity_warning

    acts = cand.activations
    fve = acts.fve()
    fired = np.asarray(acts.saliency.getnnz(axis=0) > 0)
    training = sae.info.training_fve
    names = list(dict.fromkeys(suite_of))
    suite_arr = np.asarray(suite_of)
    return FidelitySummary(
        fve=fve, mean_l0=acts.mean_l0(),
        dead_share=float(1.0 - fired.mean()) if fired.size else None,
        training_fve=training, warning=fidelity_warning(fve, training),
        by_suite={n: acts.fve(suite_arr == n) for n in names},
        baseline_fve=base.activations.fve() if base is not None else None,
    )


def _sae_info(sae: SAEHandle, labels_path: Path | None) -> Any:
    from cg_gate.families import labels_digest

    info = sae.info
    if labels_path is not None:
        info = info.model_copy(update={"labels_source": str(labels_path),
                                       "labels_digest": labels_digest(labels_path)})
    return info


def _policy_info(policy: Any, config: RunConfig) -> PolicyInfo:
    import hashlib

    waivers_digest = None
    if config.waivers is not None:
        waivers_digest = hashlib.sha256(Path(config.waivers).read_bytes()).hexdigest()
    return PolicyInfo(
        path=_display_path(Path(config.policy)), name=policy.name, version=policy.metadata.version,
        owner=policy.metadata.owner,
        digest=hashlib.sha256(Path(config.policy).read_bytes()).hexdigest(),
        waivers_path=str(config.waivers) if config.waivers else None,
        waivers_digest=waivers_digest,
    )


def _display_path(path: Path) -> str:
    """`path` relative to the working directory when it lies below it (SARIF and annotations
    locate rules relative to the repository root), else as given."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _generation(config: RunConfig, cand: SideResult, items: Sequence[Item],
                judge: Any) -> GenerationSettings:
    from cg_gate.scoring import judge_digests

    imported = all(it.response is not None or it.score is not None for it in items)
    mode = "imported" if imported else ("generate" if cand.generated else "none")
    digests = judge_digests(items)
    return config.generation.model_copy(update={
        "mode": mode, "judge_model": config.judge if judge is not None else None,
        "judge_rubric_digest": next(iter(digests), None),
    })


__all__ = ["run_gate", "save_activations", "load_baseline_results", "ACTIVATIONS_FILE"]
