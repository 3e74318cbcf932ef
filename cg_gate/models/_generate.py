"""Generating responses: greedy by default, seeded, batched with left padding, cached.

Each item is rendered with the tokenizer's chat template (generation prompt added; the
run's system prompt prepended when the item has none), generated in left-padded batches
and truncated at the first stop string. Responses are cached by (model digest, chat
template digest, settings, item digest), so a re-run regenerates only what changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from cg_gate._progress import progress as progress_bar
from cg_gate.errors import ConfigError
from cg_gate.record import GenerationSettings, ModelInfo, ResponseCache

if TYPE_CHECKING:  # pragma: no cover
    from cg_gate.models._load import LoadedModel
    from cg_gate.items import Item

def _response_keys(info: ModelInfo, settings: GenerationSettings, items: Sequence[Item]) -> list[str]:
    return ResponseCache.keys_for(info.digest, info.chat_template_digest, settings,
                                  [it.input_digest() for it in items])


def cached_responses(cache: ResponseCache, info: ModelInfo, settings: GenerationSettings,
                     items: Sequence[Item]) -> list[str] | None:
    """Every item's response from the cache (no model needed), or None if any is missing."""
    out = []
    for key in _response_keys(info, settings, items):
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


def _generate_texts(loaded: LoadedModel, prompts: list[str], *, max_new_tokens: int,
                    temperature: float, top_p: float, seed: int) -> list[str]:
    """One left-padded batch through `model.generate`; the decoded continuations."""
    import torch

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
    device = loaded.device
    with torch.inference_mode():
        out = loaded.model.generate(
            input_ids=enc["input_ids"].to(device),
            attention_mask=enc["attention_mask"].to(device),
            max_new_tokens=max_new_tokens,
            pad_token_id=tok.pad_token_id,
            **kwargs,
        )
    new = out[:, enc["input_ids"].shape[1]:]
    return [tok.decode(row, skip_special_tokens=True) for row in new]


def generate(
    loaded: LoadedModel,
    items: Sequence[Item],
    settings: GenerationSettings,
    *,
    cache: ResponseCache | None,
    progress: bool = True,
) -> list[str]:
    """One response per item, in item order (greedy when temperature is 0).

    Cached responses are reused; the rest are generated in batches of
    `settings.batch_size`, each batch seeded with `settings.seed`.
    """
    if settings.max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be at least 1 to generate (got {settings.max_new_tokens})",
                          fix="set generation.max_new_tokens, e.g. 128")
    keys = _response_keys(loaded.info, settings, items)
    out: list[str | None] = [cache.get(k) if cache is not None else None for k in keys]
    todo = [i for i, r in enumerate(out) if r is None]
    bar = progress_bar("generate", len(items), done=len(items) - len(todo), enabled=progress)
    batch = max(1, settings.batch_size)
    try:
        for lo in range(0, len(todo), batch):
            idx = todo[lo:lo + batch]
            prompts = [_prompt_text(loaded.tokenizer, _messages(items[i], settings.system_prompt))
                       for i in idx]
            texts = _generate_texts(loaded, prompts, max_new_tokens=settings.max_new_tokens,
                                    temperature=settings.temperature, top_p=settings.top_p,
                                    seed=settings.seed)
            for i, text in zip(idx, texts):
                text = truncate_at_stop(text, settings.stop)
                out[i] = text
                if cache is not None:
                    cache.put(keys[i], text)
            bar.update(len(idx))
    finally:
        bar.close()
    return [r if r is not None else "" for r in out]


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
