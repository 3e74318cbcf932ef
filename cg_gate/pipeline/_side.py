"""One checkpoint's pass over the suites: responses & scores, then concept activations.

Each stage reads the run cache first and loads the checkpoint (and SAE) only when an
entry is missing, so a warm re-run imports no torch and loads no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from cg_gate._progress import progress_scope
from cg_gate.errors import ConfigError
from cg_gate.pipeline._config import RunConfig
from cg_gate.pipeline._handles import Checkpoint, SAEHandle
from cg_gate.record import GenerationSettings, ModelInfo, RunCache, TokenPolicy
from cg_gate.sae import Extraction, ExtractionInput, cached_extraction
from cg_gate.suites import Item

Log = Callable[[str], None]


@dataclass
class Responses:
    """The responses & scores stage: one entry per item, in item order."""

    texts: list[str | None]
    scores: np.ndarray  # (n,) float64, NaN = unscored
    reasons: list[str | None]
    generated: int = 0  # items whose response was generated on this side


@dataclass
class SideResult:
    """Everything one checkpoint contributes to the record."""

    info: ModelInfo
    responses: Responses
    activations: Extraction
    exemplars: dict[str, sp.csr_matrix] = field(default_factory=dict)


def needs_generation(item: Item, *, candidate: bool) -> bool:
    """Whether the item needs a response generated on this side."""
    if candidate and (item.response is not None or item.score is not None):
        return False
    return bool(item.scorers)


def _generate(ckpt: Checkpoint, items: Sequence[Item], settings: GenerationSettings,
              cache: RunCache, *, progress: bool) -> list[str]:
    """One response per item, from the cache when all are there, else generated."""
    from cg_gate.models import cached_responses, generate

    if not items:
        return []
    if ckpt.cached_info is not None:
        texts = cached_responses(cache.responses, ckpt.cached_info, settings, items)
        if texts is not None:
            return texts
    return generate(ckpt.load(), items, settings, cache=cache.responses, progress=progress)


def responses_and_scores(ckpt: Checkpoint, items: Sequence[Item], config: RunConfig,
                         cache: RunCache, *, candidate: bool, judge: Any, log: Log) -> Responses:
    """Responses (imported, cached or generated) and each item's score."""
    from cg_gate.scoring import score_items

    gen_idx = [i for i, it in enumerate(items) if needs_generation(it, candidate=candidate)]
    texts: list[str | None] = [it.response if candidate else None for it in items]
    if gen_idx and config.generation.max_new_tokens > 0:
        log(f"responses for {len(gen_idx)} items")
        generated = _generate(ckpt, [items[i] for i in gen_idx], config.generation, cache,
                              progress=config.progress)
        for i, text in zip(gen_idx, generated):
            texts[i] = text
    scored = items if candidate else [it.model_copy(update={"score": None, "reason": None,
                                                            "response": None}) for it in items]
    scores = score_items(scored, texts, judge=judge)
    return Responses(texts=texts,
                     scores=np.array([np.nan if s.value is None else float(s.value) for s in scores]),
                     reasons=[s.reason for s in scores], generated=len(gen_idx))


def read_activations(ckpt: Checkpoint, sae: SAEHandle, inputs: Sequence[ExtractionInput],
                     policy: TokenPolicy, cache: RunCache, *, batch_size: int,
                     progress: bool) -> Extraction:
    """Activations for `inputs`, from the cache when every entry is there, else extracted."""
    if ckpt.cached_info is not None and sae.cached_info is not None:
        hit = cached_extraction(cache.activations, ckpt.cached_info, sae.cached_info, inputs, policy)
        if hit is not None:
            return hit
    from cg_gate.sae import extract

    return extract(ckpt.load(), sae.load(), inputs, token_policy=policy, cache=cache.activations,
                   batch_size=batch_size, progress=progress)


def item_activations(ckpt: Checkpoint, sae: SAEHandle, items: Sequence[Item],
                     responses: Responses, config: RunConfig, cache: RunCache,
                     log: Log) -> Extraction:
    """The activations stage: each item as the token policy reads it."""
    policy = config.token_policy
    reads_response = policy.text != "prompt"
    if reads_response and any(r is None for r in responses.texts):
        missing = sum(r is None for r in responses.texts)
        raise ConfigError(f"token policy '{policy.text}' reads responses, but {missing} items have none",
                          fix="use --token-text prompt, or give those items scorers or responses")
    inputs = [ExtractionInput.for_item(it, responses.texts[i] if reads_response else None)
              for i, it in enumerate(items)]
    log(f"concepts for {len(items)} items")
    return read_activations(ckpt, sae, inputs, policy, cache, batch_size=config.batch_size,
                            progress=config.progress)


def exemplar_activations(ckpt: Checkpoint, sae: SAEHandle, texts: Sequence[str],
                         config: RunConfig, cache: RunCache, log: Log) -> dict[str, sp.csr_matrix]:
    """One saliency row per exemplar or reference text (prompt tokens only)."""
    if not texts:
        return {}
    uniq = list(dict.fromkeys(texts))
    log(f"concepts for {len(uniq)} exemplar and reference texts")
    policy = TokenPolicy(text="prompt", exclude_special=config.token_policy.exclude_special,
                         chat_template=config.token_policy.chat_template)
    ex = read_activations(ckpt, sae, [ExtractionInput.for_text(t) for t in uniq], policy, cache,
                          batch_size=config.batch_size, progress=config.progress)
    rows = ex.saliency.tocsr()
    return {text: rows[i] for i, text in enumerate(uniq)}


def run_side(ckpt: Checkpoint, sae: SAEHandle, items: Sequence[Item], config: RunConfig,
             cache: RunCache, *, candidate: bool, judge: Any, exemplar_texts: Sequence[str] = (),
             log: Log) -> SideResult:
    """Responses → scores → activations (and exemplar activations) for one checkpoint."""
    with progress_scope("candidate" if candidate else "baseline"):
        responses = responses_and_scores(ckpt, items, config, cache, candidate=candidate,
                                         judge=judge, log=log)
        acts = item_activations(ckpt, sae, items, responses, config, cache, log)
        exemplars = exemplar_activations(ckpt, sae, exemplar_texts, config, cache, log)
    return SideResult(info=ckpt.info, responses=responses, activations=acts, exemplars=exemplars)
