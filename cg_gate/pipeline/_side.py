"""One checkpoint's pass over the suites: responses & scores, then concept activations.

Each stage reads the run cache first and loads the checkpoint (and SAE) only when an
entry is missing, so a warm re-run imports no torch and loads no model.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp

from cg_gate._progress import progress_scope
from cg_gate.errors import ConfigError
from cg_gate.pipeline._config import RunConfig
from cg_gate.pipeline._handles import Checkpoint, SAEHandle
from cg_gate.record import ModelInfo, RunCache, StageCost, TokenPolicy
from cg_gate.sae import Extraction, ExtractionInput, cached_extraction
from cg_gate.suites import Item

Log = Callable[[str], None]


PASS = 0.5
"""A sample passes at s ≥ 0.5 (the same line the category breakdown counts failures at)."""


@dataclass
class Responses:
    """The responses & scores stage: one entry per item, in item order.

    With N samples per item, `samples[i]` holds the item's N responses (empty for an item
    whose response was imported), `sample_scores[i]` their scores, and `scores[i]` is the
    mean of its scored samples; `texts[i]` is the first response.
    """

    texts: list[str | None]
    scores: np.ndarray  # (n,) float64, NaN = unscored
    reasons: list[str | None]
    generated: int = 0  # items whose response was generated on this side
    samples: list[list[str]] = field(default_factory=list)
    sample_scores: list[list[float | None]] = field(default_factory=list)
    sample_reasons: list[list[str | None]] = field(default_factory=list)
    sample_tokens: list[list[int | None]] = field(default_factory=list)
    costs: list[StageCost] = field(default_factory=list)

    def pass_rate(self, i: int) -> float | None:
        """Share of item i's scored samples with s ≥ 0.5; None with fewer than two scored."""
        scored = [v for v in self.sample_scores[i] if v is not None] if self.sample_scores else []
        return sum(v >= PASS for v in scored) / len(scored) if len(scored) >= 2 else None

    def flaky(self, i: int) -> bool:
        """Item i's samples disagree: some pass, some fail."""
        rate = self.pass_rate(i)
        return rate is not None and 0.0 < rate < 1.0


@dataclass
class SideResult:
    """Everything one checkpoint contributes to the record."""

    info: ModelInfo
    responses: Responses
    activations: Extraction
    exemplars: dict[str, sp.csr_matrix] = field(default_factory=dict)
    costs: list[StageCost] = field(default_factory=list)


def needs_generation(item: Item, *, candidate: bool) -> bool:
    """Whether the item needs a response generated on this side."""
    if candidate and (item.response is not None or item.score is not None):
        return False
    return bool(item.scorers)


def stage_cost(stage: str, side: str, wall_s: float, *, items: int, computed: int = 0,
               tokens_in: int = 0, tokens_out: int = 0) -> StageCost:
    """One row of the run's cost table."""
    return StageCost(stage=stage, side=side, wall_s=round(wall_s, 3), items=items,
                     computed=computed, tokens_in=int(tokens_in), tokens_out=int(tokens_out),
                     items_per_s=round(items / wall_s, 3) if wall_s > 0 and items else None)


def _mean_score(values: Sequence[float | None]) -> float:
    scored = [v for v in values if v is not None]
    return float(np.mean(scored)) if scored else float("nan")


def _item_reason(values: Sequence[float | None], reasons: Sequence[str | None]) -> str | None:
    if len(values) == 1:
        return reasons[0]
    scored = [v for v in values if v is not None]
    passed = sum(v >= PASS for v in scored)
    first = next((r for r in reasons if r), None)
    head = f"{passed}/{len(scored)} scored samples pass"
    if len(scored) < len(values):
        head += f" ({len(values) - len(scored)} unscored)"
    return f"{head}; first: {first}" if first else head


def responses_and_scores(ckpt: Checkpoint, items: Sequence[Item], config: RunConfig,
                         cache: RunCache, *, candidate: bool, judge: Any, log: Log,
                         refusal: Any = None) -> Responses:
    """Responses (imported, cached or generated; N per item with samples) and scores.

    Every sample is scored; an item's score is the mean of its scored samples (NaN when
    none is scored). With a `refusal` detector, every response a `refusal` scorer reads goes
    through it in one batch.
    """
    from cg_gate.scoring import score_items

    side = "candidate" if candidate else "baseline"
    settings = config.generation
    gen_idx = [i for i, it in enumerate(items) if needs_generation(it, candidate=candidate)]
    per_item: list[list[str | None]] = [[it.response if candidate else None] for it in items]
    tokens: list[list[int | None]] = [[None] for _ in items]
    costs: list[StageCost] = []
    if gen_idx and settings.max_new_tokens > 0:
        from cg_gate.models import generate_samples

        n = settings.samples_per_item
        log(f"responses for {len(gen_idx)} items" + (f" × {n} samples" if n > 1 else ""))
        t0 = time.perf_counter()
        made = generate_samples(ckpt.load, ckpt.cached_info, [items[i] for i in gen_idx],
                                settings, cache=cache.responses, progress=config.progress)
        for j, i in enumerate(gen_idx):
            per_item[i] = list(made.texts[j])
            tokens[i] = list(made.tokens[j])
        costs.append(stage_cost("generate", side, time.perf_counter() - t0,
                                items=len(gen_idx) * n, computed=made.computed,
                                tokens_in=made.tokens_in, tokens_out=made.tokens_out))
    t0 = time.perf_counter()
    scored = items if candidate else [it.model_copy(update={"score": None, "reason": None,
                                                            "response": None}) for it in items]
    flat_items = [scored[i] for i, texts in enumerate(per_item) for _ in texts]
    flat_texts = [t for texts in per_item for t in texts]
    flat = score_items(flat_items, flat_texts, judge=judge, refusal=refusal)
    costs.append(stage_cost("score", side, time.perf_counter() - t0, items=len(flat),
                            computed=len(flat)))
    values: list[list[float | None]] = []
    reasons: list[list[str | None]] = []
    pos = 0
    for texts in per_item:
        part = flat[pos:pos + len(texts)]
        pos += len(texts)
        values.append([None if s.value is None else float(s.value) for s in part])
        reasons.append([s.reason for s in part])
    generated = set(gen_idx) if settings.max_new_tokens > 0 else set()
    return Responses(
        texts=[texts[0] for texts in per_item],
        scores=np.array([_mean_score(v) for v in values]),
        reasons=[_item_reason(v, r) for v, r in zip(values, reasons)],
        generated=len(generated),
        samples=[[t or "" for t in per_item[i]] if i in generated else [] for i in range(len(items))],
        sample_scores=values, sample_reasons=reasons, sample_tokens=tokens, costs=costs,
    )


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
    if reads_response and any(len(s) > 1 for s in responses.samples):
        return _per_sample_activations(ckpt, sae, items, responses, config, cache, log)
    inputs = [ExtractionInput.for_item(it, responses.texts[i] if reads_response else None)
              for i, it in enumerate(items)]
    log(f"concepts for {len(items)} items")
    return read_activations(ckpt, sae, inputs, policy, cache, batch_size=config.batch_size,
                            progress=config.progress)


def _per_sample_activations(ckpt: Checkpoint, sae: SAEHandle, items: Sequence[Item],
                            responses: Responses, config: RunConfig, cache: RunCache,
                            log: Log) -> Extraction:
    """Each (item, sample) read on its own, then one row per item.

    An item's saliency is the mean of its samples' saliency rows: a_c(x) = (1/N') Σ_k a_c(x, k)
    over the N' samples with counted tokens (an empty response has no saliency to average,
    not a zero one), each a_c(x, k) already normalised by that sample's own token count, so a
    long sample does not outweigh a short one. Token counts and the fidelity sums (squared error, Σx, L0) add
    up over samples, so FVE and L0 stay token-weighted over every token read.
    """
    texts = [responses.samples[i] or [responses.texts[i]] for i in range(len(items))]
    inputs = [ExtractionInput.for_item(it, t) for it, ts in zip(items, texts) for t in ts]
    log(f"concepts for {len(items)} items ({len(inputs)} samples)")
    ex = read_activations(ckpt, sae, inputs, config.token_policy, cache,
                          batch_size=config.batch_size, progress=config.progress)
    bounds, pos = [], 0
    for ts in texts:
        bounds.append((pos, pos + len(ts)))
        pos += len(ts)
    n, m = len(items), len(inputs)
    owner = np.repeat(np.arange(n), [b - a for a, b in bounds])  # item of each input row
    summed = sp.csr_matrix((np.ones(m), (owner, np.arange(m))), shape=(n, m))
    counted = (ex.n_tokens > 0).astype(np.float64)
    per_item = np.asarray(summed @ counted).ravel()
    mean = sp.diags(np.divide(1.0, per_item, out=np.zeros(n), where=per_item > 0)) @ (
        summed @ sp.diags(counted))
    saliency = (mean @ ex.saliency.astype(np.float64)).astype(np.float32).tocsr()

    def add(x: np.ndarray) -> np.ndarray:
        return np.asarray(summed @ x)

    keys = [hashlib.sha256("|".join(ex.keys[a:b]).encode()).hexdigest() for a, b in bounds]
    return Extraction(keys=keys, saliency=saliency,
                      n_tokens=add(ex.n_tokens.astype(np.float64)).round().astype(np.int64),
                      sse=add(ex.sse), sum_sq=add(ex.sum_sq), sum_x=add(ex.sum_x),
                      l0_sum=add(ex.l0_sum), tokens_processed=ex.tokens_processed,
                      cache_hits=ex.cache_hits, zero_token_keys=list(ex.zero_token_keys))


def exemplar_activations(ckpt: Checkpoint, sae: SAEHandle, texts: Sequence[str],
                         config: RunConfig, cache: RunCache, log: Log, *,
                         costs: list[StageCost] | None = None,
                         side: str = "candidate") -> dict[str, sp.csr_matrix]:
    """One saliency row per exemplar or reference text (prompt tokens only); the stage's cost
    is appended to `costs` when given."""
    if not texts:
        return {}
    t0 = time.perf_counter()
    uniq = list(dict.fromkeys(texts))
    log(f"concepts for {len(uniq)} exemplar and reference texts")
    policy = TokenPolicy(text="prompt", exclude_special=config.token_policy.exclude_special,
                         chat_template=config.token_policy.chat_template)
    ex = read_activations(ckpt, sae, [ExtractionInput.for_text(t) for t in uniq], policy, cache,
                          batch_size=config.batch_size, progress=config.progress)
    rows = ex.saliency.tocsr()
    if costs is not None:
        costs.append(stage_cost("exemplars", side, time.perf_counter() - t0, items=len(uniq),
                                computed=len(uniq) - int(ex.cache_hits),
                                tokens_in=ex.tokens_processed))
    return {text: rows[i] for i, text in enumerate(uniq)}


def run_side(ckpt: Checkpoint, sae: SAEHandle, items: Sequence[Item], config: RunConfig,
             cache: RunCache, *, candidate: bool, judge: Any, exemplar_texts: Sequence[str] = (),
             log: Log, refusal: Any = None) -> SideResult:
    """Responses → scores → activations (and exemplar activations) for one checkpoint."""
    side = "candidate" if candidate else "baseline"
    with progress_scope(side):
        responses = responses_and_scores(ckpt, items, config, cache, candidate=candidate,
                                         judge=judge, log=log, refusal=refusal)
        t0 = time.perf_counter()
        acts = item_activations(ckpt, sae, items, responses, config, cache, log)
        # Texts read: one per item for the prompt; one per sample when responses are read.
        per_sample = config.token_policy.text != "prompt"
        reads = sum(max(1, len(s)) for s in responses.samples) if per_sample else len(items)
        costs = [*responses.costs,
                 stage_cost("activations", side, time.perf_counter() - t0, items=reads,
                            computed=reads - int(acts.cache_hits), tokens_in=acts.tokens_processed)]
        exemplars = exemplar_activations(ckpt, sae, exemplar_texts, config, cache, log,
                                         costs=costs, side=side)
    return SideResult(info=ckpt.info, responses=responses, activations=acts, exemplars=exemplars,
                      costs=costs)
