"""Concept extraction: item saliency a_c(x) = (1/T_x) Σ_t f_c(x,t) over counted tokens.

What the model reads and what is counted (DESIGN §2.1, token policy):

* The model reads the item as it would in use: the chat template applied to the item's
  messages (with the generation prompt for text='prompt'; with the response as the
  assistant turn for 'response'/'both'). Without a chat template (or with
  `chat_template=False`) the text is the contents joined by newlines.
* Counted tokens are those whose character span lies entirely inside the contents the
  item itself wrote: its own messages for 'prompt', the response for 'response', both for
  'both' (spans from the fast tokenizer's offset mapping on the templated string).
  Template boilerplate — role headers, a default system prompt the template inserts — is
  read by the model, so it shapes the residual stream, but is never counted.
* With `exclude_special` (default) special tokens (BOS, padding, <|im_start|>, ...) are
  never counted. Without it, special tokens other than padding are counted as well.

The forward pass is truncated at the SAE's hook; the SAE runs on counted tokens only;
per-item sums are segment sums on the batch; only sparse rows are kept, so memory does not
grow with suite size beyond the output itself.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import scipy.sparse as sp

from cg_gate._progress import progress as progress_bar
from cg_gate.errors import ConfigError
from cg_gate.models import capture_at_hook
from cg_gate.record import ActivationCache, Entry, ModelInfo, SAEInfo, TokenPolicy
from cg_gate.sae._adapter import LoadedSAE, check_compatible
from cg_gate.items import ChatMessage

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from cg_gate.models import LoadedModel

_MARK = re.compile("\ue000(\\d+)\ue001")
_SAE_CHUNK_FLOATS = 1 << 25  # bound on tokens × d_sae held at once by the SAE encode


class ZeroTokenWarning(UserWarning):
    """Some items have no counted token; their saliency row is empty (T_x = 0)."""


@dataclass(frozen=True)
class ExtractionInput:
    """One item to read: its digest (cache key part), its messages and optional response."""

    key: str
    messages: list[ChatMessage]
    response: str | None = None

    @classmethod
    def for_item(cls, item: Any, response: str | None = None) -> ExtractionInput:
        """A suite item as the model reads it: its messages, and `response` when counted."""
        key = item.input_digest()
        if response is not None:  # what the model reads includes the response
            key = hashlib.sha256(f"{key}|{response}".encode()).hexdigest()
        return cls(key=key, messages=list(item.messages), response=response)

    @classmethod
    def for_text(cls, text: str) -> ExtractionInput:
        """A bare user text (exemplars, reference sets)."""
        key = hashlib.sha256(json.dumps({"text": text}).encode()).hexdigest()
        return cls(key=key, messages=[ChatMessage(role="user", content=text)])


@dataclass(frozen=True)
class RenderedText:
    """The text the model reads and the character spans whose tokens are counted."""

    text: str
    spans: list[tuple[int, int]]
    templated: bool


@dataclass
class Extraction:
    """Saliency rows (input order) and the SAE fidelity sums of one extraction."""

    keys: list[str]
    saliency: sp.csr_matrix  # (n_items, d_sae) float32
    n_tokens: np.ndarray  # (n,) int64, T_x
    sse: np.ndarray  # (n,) float64, Σ_t ‖x − x̂‖²
    sum_sq: np.ndarray  # (n,) float64, Σ_t ‖x‖²
    sum_x: np.ndarray  # (n, d_in) float64, Σ_t x
    l0_sum: np.ndarray  # (n,) float64, Σ_t #active features
    tokens_processed: int = 0
    cache_hits: int = 0
    zero_token_keys: list[str] = field(default_factory=list)

    def _mask(self, mask: np.ndarray | None) -> np.ndarray:
        if mask is None:
            return np.ones(len(self.keys), dtype=bool)
        return np.asarray(mask, dtype=bool)

    def fve(self, mask: np.ndarray | None = None) -> float | None:
        """Fraction of variance explained over the counted tokens of the masked items.

        1 − Σ sse / (Σ sum_sq − ‖Σ sum_x‖² / N); None with no tokens or no variance.
        """
        m = self._mask(mask)
        n = float(self.n_tokens[m].sum())
        if n <= 0:
            return None
        total = float(self.sum_sq[m].sum()) - float(np.square(self.sum_x[m].sum(axis=0)).sum()) / n
        if total <= 0:
            return None
        return 1.0 - float(self.sse[m].sum()) / total

    def mean_l0(self, mask: np.ndarray | None = None) -> float | None:
        """Mean number of active features per counted token; None with no tokens."""
        m = self._mask(mask)
        n = float(self.n_tokens[m].sum())
        return None if n <= 0 else float(self.l0_sum[m].sum()) / n

    @property
    def fired(self) -> np.ndarray:
        """(d_sae,) bool: the feature fired on at least one counted token of any item."""
        return np.asarray(self.saliency.getnnz(axis=0) > 0)


# --------------------------------------------------------------------------- text


def _contents_spans(pieces: list[str]) -> tuple[str, list[tuple[int, int]]]:
    spans, pos = [], 0
    for i, piece in enumerate(pieces):
        if i:
            pos += 1
        spans.append((pos, pos + len(piece)))
        pos += len(piece)
    return "\n".join(pieces), spans


def render(tokenizer: Any, inp: ExtractionInput, policy: TokenPolicy) -> RenderedText:
    """The text the model reads for `inp` and the spans of the counted contents."""
    messages = [{"role": m.role, "content": m.content} for m in inp.messages]
    if policy.text in ("response", "both"):
        if inp.response is None:
            raise ConfigError(
                f"token policy text='{policy.text}' needs a response, and item {inp.key[:12]} has none",
                fix="generate or import responses, or use text='prompt'",
            )
        messages.append({"role": "assistant", "content": inp.response})
    n_item = len(inp.messages)
    counted = {
        "prompt": list(range(n_item)),
        "response": [n_item],
        "both": list(range(n_item + 1)),
    }[policy.text]

    if not (policy.chat_template and getattr(tokenizer, "chat_template", None)):
        text, spans = _contents_spans([m["content"] for m in messages])
        return RenderedText(text=text, spans=[spans[i] for i in counted], templated=False)

    gen_prompt = policy.text == "prompt"
    real = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen_prompt)
    marked_msgs = [{**m, "content": f"\ue000{i}\ue001"} for i, m in enumerate(messages)]
    marked = tokenizer.apply_chat_template(marked_msgs, tokenize=False, add_generation_prompt=gen_prompt)
    # Put the contents back where the markers are, noting where each one lands.
    out, spans_by_msg, last = [], {}, 0
    length = 0
    for m in _MARK.finditer(marked):
        chunk = marked[last:m.start()]
        out.append(chunk)
        length += len(chunk)
        idx = int(m.group(1))
        content = messages[idx]["content"]
        spans_by_msg.setdefault(idx, (length, length + len(content)))
        out.append(content)
        length += len(content)
        last = m.end()
    out.append(marked[last:])
    if "".join(out) == real and all(i in spans_by_msg for i in counted):
        return RenderedText(text=real, spans=[spans_by_msg[i] for i in counted], templated=True)
    # The template rewrites contents (e.g. strips them): find them in order instead.
    spans, cursor = [], 0
    for i, msg in enumerate(messages):
        content = msg["content"]
        pos = real.find(content, cursor)
        if pos < 0 and content.strip():
            content = content.strip()
            pos = real.find(content, cursor)
        if pos < 0:
            continue
        if i in counted:
            spans.append((pos, pos + len(content)))
        cursor = pos + len(content)
    return RenderedText(text=real, spans=spans, templated=True)


def counted_mask(offsets: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
    """(seq,) bool: tokens whose character span lies inside one of `spans`.

    Tokenizers that trim offsets give a whitespace-only token an empty span just after
    its whitespace; such a token is counted when that point is inside a span (after its
    start). Padding has no span and is never counted.
    """
    import torch

    start, end = offsets[:, 0], offsets[:, 1]
    mask = torch.zeros(offsets.shape[0], dtype=torch.bool)
    nonempty = end > start
    for cs, ce in spans:
        mask |= nonempty & (start >= cs) & (end <= ce)
        mask |= ~nonempty & (start > cs) & (start <= ce)
    return mask


# --------------------------------------------------------------------------- batch


@dataclass
class _BatchResult:
    entries: list[Entry]
    tokens: int


def _special_ids(tokenizer: Any) -> list[int]:
    ids = set(tokenizer.all_special_ids)
    for tid, tok in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(tok, "special", False):
            ids.add(int(tid))
    return sorted(ids)


def _run_batch(model: LoadedModel, sae: LoadedSAE, hook: Any, batch: list[ExtractionInput],
               policy: TokenPolicy, special: Any) -> _BatchResult:
    import torch

    tok = model.tokenizer
    rendered = [render(tok, inp, policy) for inp in batch]
    templated = rendered[0].templated
    kwargs: dict[str, Any] = {}
    max_len = getattr(model.model.config, "max_position_embeddings", None)
    if isinstance(max_len, int) and max_len > 0:
        kwargs.update(truncation=True, max_length=max_len)
    enc = tok([r.text for r in rendered], return_offsets_mapping=True, padding=True,
              padding_side="right", add_special_tokens=not templated, return_tensors="pt", **kwargs)
    ids, attn = enc["input_ids"], enc["attention_mask"]
    counted = torch.stack([counted_mask(enc["offset_mapping"][i], r.spans)
                           for i, r in enumerate(rendered)])
    is_special = torch.isin(ids, special)
    if policy.exclude_special:
        counted &= ~is_special
    else:
        counted |= is_special
    counted &= attn.bool()
    if tok.pad_token_id is not None:
        counted &= ~((ids == tok.pad_token_id) & ~attn.bool())

    device = model.device
    hidden = capture_at_hook(model.model, hook, ids.to(device), attn.to(device))
    # The hook's block may run on another device than the inputs (a model spread with
    # --device auto): select where the residual is, compute where the SAE is.
    sel = counted.to(hidden.device)
    x = hidden[sel].to(device=sae.device, dtype=torch.float32)  # (N, d_in)
    rows = sel.nonzero()[:, 0].to(sae.device)  # item of each counted token
    n_items, d_sae = len(batch), sae.info.d_sae
    sums = torch.zeros(n_items, d_sae, dtype=torch.float32, device=sae.device)
    sse = torch.zeros(n_items, dtype=torch.float64, device=sae.device)
    l0 = torch.zeros(n_items, dtype=torch.float64, device=sae.device)
    chunk = max(1, _SAE_CHUNK_FLOATS // d_sae)
    for lo in range(0, x.shape[0], chunk):
        xs, rs = x[lo:lo + chunk], rows[lo:lo + chunk]
        f = sae.encode(xs)
        x_hat = sae.decode(f).to(torch.float32)
        f = f.to(torch.float32)
        sums.index_add_(0, rs, f)
        sse.index_add_(0, rs, (xs - x_hat).square().sum(-1).double())
        l0.index_add_(0, rs, (f != 0).sum(-1).double())
    xd = x.double()
    sum_sq = torch.zeros(n_items, dtype=torch.float64, device=sae.device).index_add_(
        0, rows, xd.square().sum(-1))
    sum_x = torch.zeros(n_items, x.shape[1], dtype=torch.float64, device=sae.device).index_add_(
        0, rows, xd)
    n_tok = counted.sum(1)
    sal = sums / n_tok.clamp(min=1).to(sums.device, torch.float32)[:, None]

    sal_np, sse_np, sq_np = sal.cpu().numpy(), sse.cpu().numpy(), sum_sq.cpu().numpy()
    sx_np, l0_np, nt_np = sum_x.cpu().numpy(), l0.cpu().numpy(), n_tok.numpy()
    entries = []
    for i in range(n_items):
        nz = np.flatnonzero(sal_np[i]).astype(np.int32)
        entries.append(Entry(indices=nz, values=sal_np[i, nz].astype(np.float32),
                             n_tokens=int(nt_np[i]), sse=float(sse_np[i]), sum_sq=float(sq_np[i]),
                             sum_x=sx_np[i].copy(), l0_sum=float(l0_np[i])))
    return _BatchResult(entries=entries, tokens=int(attn.sum()))


# --------------------------------------------------------------------------- extract


def extract(
    model: LoadedModel,
    sae: LoadedSAE,
    inputs: Sequence[ExtractionInput],
    *,
    token_policy: TokenPolicy,
    cache: ActivationCache | None,
    batch_size: int = 8,
    progress: bool = True,
) -> Extraction:
    """Saliency rows for `inputs` (in input order), reading the cache first.

    Items are sorted by text length into a fixed batch plan; batches with a cache miss
    run (right-padded, attention-masked, forward truncated at the hook) and their new
    rows are written to the cache as they complete, so a run killed halfway resumes where
    it stopped and yields the same bytes.
    """
    import torch

    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1 (got {batch_size})", fix="pass --batch-size 8")
    check_compatible(sae, model)
    hook = model.hook(sae.info.hook)
    keys = _activation_keys(model.info, sae.info, token_policy, inputs)
    entries: list[Entry | None] = [cache.get(k) if cache is not None else None for k in keys]
    hits = sum(e is not None for e in entries)
    # A fixed batch plan over the whole input list (by length, then position). A batch with
    # any miss is recomputed whole, so every row is computed in exactly the batch it was
    # first computed in: a resumed run is byte-identical to an uninterrupted one.
    order = sorted(range(len(inputs)), key=lambda i: (
        sum(len(m.content) for m in inputs[i].messages) + len(inputs[i].response or ""), i))
    plan = [order[lo:lo + batch_size] for lo in range(0, len(order), batch_size)]
    special = torch.tensor(_special_ids(model.tokenizer), dtype=torch.long)

    tokens = 0
    todo = [idx for idx in plan if any(entries[i] is None for i in idx)]
    bar = progress_bar("concepts", len(inputs), done=len(inputs) - sum(map(len, todo)),
                       enabled=progress)
    try:
        with torch.inference_mode():
            for idx in todo:
                result = _run_batch(model, sae, hook, [inputs[i] for i in idx], token_policy, special)
                tokens += result.tokens
                for i, entry in zip(idx, result.entries):
                    if entries[i] is None:
                        entries[i] = entry
                        if cache is not None:
                            cache.put(keys[i], entry)
                bar.update(len(idx))
    finally:
        bar.close()
    return assemble(inputs, [e for e in entries if e is not None], sae.info.d_sae,
                     sae.info.d_in, tokens, hits)


def _activation_keys(model: ModelInfo, sae: SAEInfo, policy: TokenPolicy,
                     inputs: Sequence[ExtractionInput]) -> list[str]:
    return ActivationCache.keys_for(model.compute_digest, sae.digest, sae.hook, policy,
                                    [inp.key for inp in inputs])


def cached_extraction(cache: ActivationCache, model: ModelInfo, sae: SAEInfo,
                      inputs: Sequence[ExtractionInput], token_policy: TokenPolicy) -> Extraction | None:
    """The Extraction from the cache alone (no model, no torch), or None if any entry is missing."""
    entries = []
    for key in _activation_keys(model, sae, token_policy, inputs):
        entry = cache.get(key)
        if entry is None:
            return None
        entries.append(entry)
    return assemble(inputs, entries, sae.d_sae, sae.d_in, tokens=0, hits=len(entries))


def assemble(inputs: Sequence[ExtractionInput], entries: list[Entry], d_sae: int, d_in: int,
             tokens: int, hits: int) -> Extraction:
    """An Extraction from one cache entry per input, in input order (no model needed)."""
    n = len(entries)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(e.indices) for e in entries], out=indptr[1:])
    indices = np.concatenate([e.indices for e in entries]) if n else np.zeros(0, np.int32)
    values = np.concatenate([e.values for e in entries]) if n else np.zeros(0, np.float32)
    saliency = sp.csr_matrix((values.astype(np.float32), indices.astype(np.int32), indptr),
                             shape=(n, d_sae))
    n_tokens = np.array([e.n_tokens for e in entries], dtype=np.int64)
    zero = [inputs[i].key for i in range(n) if n_tokens[i] == 0]
    if zero:
        warnings.warn(f"{len(zero)} item(s) have no counted tokens under the token policy; their "
                      f"saliency rows are empty (first: {zero[0][:12]})", ZeroTokenWarning,
                      stacklevel=3)
    return Extraction(
        keys=[inp.key for inp in inputs],
        saliency=saliency,
        n_tokens=n_tokens,
        sse=np.array([e.sse for e in entries], dtype=np.float64),
        sum_sq=np.array([e.sum_sq for e in entries], dtype=np.float64),
        sum_x=np.stack([e.sum_x for e in entries]) if n else np.zeros((0, d_in)),
        l0_sum=np.array([e.l0_sum for e in entries], dtype=np.float64),
        tokens_processed=tokens,
        cache_hits=hits,
        zero_token_keys=zero,
    )
