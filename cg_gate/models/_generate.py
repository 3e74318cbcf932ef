"""Generating responses: greedy by default, seeded, batched with left padding, cached.

Each item is rendered with the tokenizer's chat template (generation prompt added; the
run's system prompt prepended when the item has none), generated in left-padded batches
and truncated at the first stop string. Responses are cached by (model digest, chat
template digest, settings, item digest, sample index), so a re-run regenerates only what
changed.

With `settings.samples_per_item` = N > 1 (sampling, temperature > 0), `generate_samples`
makes N passes over the items; pass k is seeded with `settings.seed + k` and cached under
sample index k, so each sample is reproducible on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from cg_gate._progress import progress as progress_bar
from cg_gate.errors import ConfigError
from cg_gate.record import GenerationSettings, ModelInfo, ResponseCache

if TYPE_CHECKING:  # pragma: no cover
    from cg_gate.models._load import LoadedModel
    from cg_gate.items import Item

def _response_keys(info: ModelInfo, settings: GenerationSettings, items: Sequence[Item],
                   sample: int = 0) -> list[str]:
    return ResponseCache.keys_for(info.compute_digest, info.chat_template_digest, settings,
                                  [it.input_digest() for it in items], sample=sample)


def cached_responses(cache: ResponseCache, info: ModelInfo, settings: GenerationSettings,
                     items: Sequence[Item], *, sample: int = 0) -> list[str] | None:
    """Every item's response (its `sample`-th) from the cache (no model needed), or None if
    any is missing."""
    out = []
    for key in _response_keys(info, settings, items, sample):
        text = cache.get(key)
        if text is None:
            return None
        out.append(text)
    return out


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` cut at the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        if s:
            pos = text.find(s)
            if 0 <= pos < cut:
                cut = pos
    return text[:cut]


def _prompt_text(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "\n".join(m["content"] for m in messages) + "\n"


def _messages(item: Item, system_prompt: str | None) -> list[dict[str, str]]:
    msgs = [{"role": m.role, "content": m.content} for m in item.messages]
    if system_prompt and not any(m["role"] == "system" for m in msgs):
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs


class _StopStrings:
    """Stopping criterion: a row is done once its decoded continuation holds a stop string.

    `model.generate` already ends a row at EOS and the whole batch when every row is done;
    this adds the run's stop strings, so a batch stops decoding as soon as every response
    is cut anyway. Text before the first stop string never changes once it is generated,
    so `truncate_at_stop` gives the same response as decoding to the cap.
    """

    def __init__(self, tokenizer: Any, prompt_len: int, stop: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.stop = [s for s in stop if s]

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        new = input_ids[:, self.prompt_len:]
        texts = self.tokenizer.batch_decode(new, skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in texts], dtype=torch.bool,
                            device=input_ids.device)


def _generate_texts(loaded: LoadedModel, prompts: list[str], *, max_new_tokens: int,
                    temperature: float, top_p: float, seed: int,
                    stop: Sequence[str] = ()) -> list[str]:
    """One left-padded batch through `model.generate`; the decoded continuations.

    Decoding ends when every row has produced EOS or one of the `stop` strings (the texts
    are not cut here; `truncate_at_stop` does that).
    """
    import torch
    from transformers import StoppingCriteriaList

    tok = loaded.tokenizer
    templated = bool(getattr(tok, "chat_template", None))
    enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left",
              add_special_tokens=not templated)
    torch.manual_seed(seed)
    sampling = temperature > 0
    kwargs: dict[str, Any] = {"do_sample": sampling}
    if sampling:
        kwargs.update(temperature=temperature, top_p=top_p)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    prompt_len = enc["input_ids"].shape[1]
    if any(stop):
        kwargs["stopping_criteria"] = StoppingCriteriaList([_StopStrings(tok, prompt_len, stop)])
    device = loaded.device
    with torch.inference_mode():
        out = loaded.model.generate(
            input_ids=enc["input_ids"].to(device),
            attention_mask=enc["attention_mask"].to(device),
            max_new_tokens=max_new_tokens,
            pad_token_id=tok.pad_token_id,
            use_cache=True,
            **kwargs,
        )
    new = out[:, prompt_len:]
    return [tok.decode(row, skip_special_tokens=True) for row in new]


def _length_order(tokenizer: Any, prompts: Sequence[str]) -> list[int]:
    """Indices of `prompts` from the fewest tokens to the most (ties in input order).

    Batches of similar length carry little left padding, so less work per batch.
    """
    if not prompts:
        return []
    templated = bool(getattr(tokenizer, "chat_template", None))
    ids = tokenizer(list(prompts), add_special_tokens=not templated)["input_ids"]
    return sorted(range(len(prompts)), key=lambda i: (len(ids[i]), i))


def generate(
    loaded: LoadedModel,
    items: Sequence[Item],
    settings: GenerationSettings,
    *,
    cache: ResponseCache | None,
    progress: bool = True,
    sample: int = 0,
) -> list[str]:
    """One response per item, in item order (greedy when temperature is 0).

    Cached responses are reused; the rest are generated in batches of
    `settings.batch_size` (greedy: formed from prompts of similar token length, so little
    padding; sampling: in item order), each batch seeded with `settings.seed + sample`. `sample` picks which of an
    item's samples this pass makes (its cache key and its seed). A batch stops decoding
    once every response has reached EOS or a stop string.
    """
    if settings.max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be at least 1 to generate (got {settings.max_new_tokens})",
                          fix="set generation.max_new_tokens, e.g. 128")
    keys = _response_keys(loaded.info, settings, items, sample)
    out: list[str | None] = [cache.get(k) if cache is not None else None for k in keys]
    todo = [i for i, r in enumerate(out) if r is None]
    bar = progress_bar("generate", len(items), done=len(items) - len(todo), enabled=progress)
    batch = max(1, settings.batch_size)
    prompts = {i: _prompt_text(loaded.tokenizer, _messages(items[i], settings.system_prompt)) for i in todo}
    # Greedy responses do not depend on which prompts share a batch, so batches are formed by
    # length; a sampled response does (the batch's seeded random stream), so sampling keeps
    # item order and its batches stay the same as in any other run of these items.
    order = (todo if settings.temperature > 0 else
             [todo[j] for j in _length_order(loaded.tokenizer, [prompts[i] for i in todo])])
    try:
        for lo in range(0, len(order), batch):
            idx = order[lo:lo + batch]
            texts = _generate_texts(loaded, [prompts[i] for i in idx],
                                    max_new_tokens=settings.max_new_tokens,
                                    temperature=settings.temperature, top_p=settings.top_p,
                                    seed=settings.seed + sample, stop=settings.stop)
            for i, text in zip(idx, texts):
                text = truncate_at_stop(text, settings.stop)
                out[i] = text
                if cache is not None:
                    cache.put(keys[i], text, tokens=count_tokens(loaded.tokenizer, text))
            bar.update(len(idx))
    finally:
        bar.close()
    return [r if r is not None else "" for r in out]


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens of `text` alone (no special tokens): a response's length."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class Generated:
    """N responses per item and what making them cost."""

    texts: list[list[str]]  # [item][sample]
    tokens: list[list[int | None]]  # response length in tokens; None when unknown
    computed: int = 0  # (item, sample) pairs generated now rather than read from the cache
    tokens_in: int = 0  # prompt tokens of the pairs generated now
    tokens_out: int = 0  # response tokens of the pairs generated now


def generate_samples(
    load: Any,
    info: ModelInfo | None,
    items: Sequence[Item],
    settings: GenerationSettings,
    *,
    cache: ResponseCache,
    progress: bool = True,
) -> Generated:
    """`settings.samples_per_item` responses per item: one `generate` pass per sample.

    `load()` returns the `LoadedModel`; it is called only when some response is not cached
    (`info`, when known without loading, finds the cache entries). N > 1 needs sampling:
    temperature 0 would give N identical responses, so it is refused (ConfigError, exit 2).
    """
    n = settings.samples_per_item
    if n < 1:
        raise ConfigError(f"samples per item must be at least 1 (got {n})", fix="use --samples 1 or more")
    if n > 1 and settings.temperature <= 0:
        raise ConfigError(f"{n} samples per item need sampling, but temperature is "
                          f"{settings.temperature:g} (greedy decoding gives {n} identical responses)",
                          fix="pass --temperature above 0 (e.g. --temperature 0.7), or --samples 1")
    texts: list[list[str]] = [[] for _ in items]
    tokens: list[list[int | None]] = [[] for _ in items]
    out = Generated(texts=texts, tokens=tokens)
    for k in range(n):
        loaded = None
        if info is None:
            loaded = load()
            info = loaded.info
        keys = _response_keys(info, settings, items, k)
        made = [cache.get(key) for key in keys]
        missing = [i for i, text in enumerate(made) if text is None]
        if missing:
            loaded = loaded or load()
            made = generate(loaded, items, settings, cache=cache, progress=progress, sample=k)
            tok = loaded.tokenizer
            out.computed += len(missing)
            out.tokens_in += sum(count_tokens(tok, _prompt_text(tok, _messages(
                items[i], settings.system_prompt))) for i in missing)
        for i, (key, text) in enumerate(zip(keys, made)):
            texts[i].append(text or "")
            tokens[i].append(cache.tokens(key))
        out.tokens_out += sum(tokens[i][k] or 0 for i in missing)
    return out


def complete(loaded: LoadedModel, prompts: list[str], max_new_tokens: int, *,
             batch_size: int = 4) -> list[str]:
    """Greedy continuations of user prompts (chat template applied): e.g. a rubric judge."""
    out: list[str] = []
    for lo in range(0, len(prompts), max(1, batch_size)):
        chunk = [_prompt_text(loaded.tokenizer, [{"role": "user", "content": p}])
                 for p in prompts[lo:lo + batch_size]]
        out.extend(_generate_texts(loaded, chunk, max_new_tokens=max_new_tokens,
                                   temperature=0.0, top_p=1.0, seed=0))
    return out
