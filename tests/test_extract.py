"""Extraction: saliency against a direct computation, counted tokens, padding, fidelity."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from builders import DEFAULT_SYSTEM
from cg_gate.models import find_decoder_layers
from cg_gate.record import TokenPolicy
from cg_gate.sae import ExtractionInput, ZeroTokenWarning, extract, render
from cg_gate.suites import ChatMessage


def _inp(key: str, content: str, response: str | None = None) -> ExtractionInput:
    return ExtractionInput(key=key, messages=[ChatMessage(role="user", content=content)],
                           response=response)


def _manual(loaded, sae_dir, content: str):
    """Residuals at blocks.2.hook_resid_post of the content's own tokens, and their SAE codes."""
    tok = loaded.tokenizer
    text = tok.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                   add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    cids = tok(content, add_special_tokens=False)["input_ids"]
    starts = [i for i in range(len(ids) - len(cids) + 1) if ids[i:i + len(cids)] == cids]
    start = starts[-1]  # the user turn comes after the default system turn
    with torch.inference_mode():
        hs = loaded.model(torch.tensor([ids]), output_hidden_states=True).hidden_states[3][0]
    x = hs[start:start + len(cids)]
    w = load_file(sae_dir / "sae_weights.safetensors")
    f = torch.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"])
    x_hat = f @ w["W_dec"] + w["b_dec"]
    return x.double(), f.double(), x_hat.double()


def test_saliency_matches_direct_computation(tiny_loaded, tiny_sae, tiny_sae_dir):
    contents = ["hello world", "What is the capital of France?"]
    ex = extract(tiny_loaded, tiny_sae, [_inp("a", contents[0]), _inp("b", contents[1])],
                 token_policy=TokenPolicy(), cache=None, progress=False)
    xs, fs, xh = zip(*(_manual(tiny_loaded, tiny_sae_dir, c) for c in contents))
    for row, f in enumerate(fs):
        assert ex.n_tokens[row] == f.shape[0]  # the default system prompt is not counted
        np.testing.assert_allclose(ex.saliency[row].toarray()[0], f.mean(0).numpy(), atol=1e-5)
    x, f, x_hat = torch.cat(xs), torch.cat(fs), torch.cat(xh)
    want_fve = 1 - ((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert ex.fve() == pytest.approx(float(want_fve), rel=1e-5)
    assert ex.mean_l0() == pytest.approx(float((f > 0).sum(-1).double().mean()), rel=1e-9)
    only_b = np.array([False, True])
    want_b = 1 - ((xs[1] - xh[1]) ** 2).sum() / ((xs[1] - xs[1].mean(0)) ** 2).sum()
    assert ex.fve(only_b) == pytest.approx(float(want_b), rel=1e-5)
    np.testing.assert_array_equal(ex.fired, (f > 0).any(0).numpy())
    assert ex.saliency.dtype == np.float32 and ex.saliency.shape == (2, 256)


def test_rendered_spans_cover_only_item_contents(tiny_loaded):
    r = render(tiny_loaded.tokenizer, _inp("k", "hi there", response="fine thanks"),
               TokenPolicy(text="both"))
    assert [r.text[a:b] for a, b in r.spans] == ["hi there", "fine thanks"]
    assert DEFAULT_SYSTEM in r.text and r.text.endswith("fine thanks<|im_end|>\n")
    plain = render(tiny_loaded.tokenizer, _inp("k", "hi there"), TokenPolicy(chat_template=False))
    assert (plain.text, plain.spans) == ("hi there", [(0, 8)])


def test_response_and_both_policies_count_the_right_tokens(tiny_loaded, tiny_sae):
    tok = tiny_loaded.tokenizer
    n_prompt = len(tok("hello world", add_special_tokens=False)["input_ids"])
    n_resp = len(tok("yes indeed", add_special_tokens=False)["input_ids"])
    inp = [_inp("k", "hello world", response="yes indeed")]
    counts = {text: int(extract(tiny_loaded, tiny_sae, inp, token_policy=TokenPolicy(text=text),
                                cache=None, progress=False).n_tokens[0])
              for text in ("prompt", "response", "both")}
    assert counts == {"prompt": n_prompt, "response": n_resp, "both": n_prompt + n_resp}


def test_special_tokens_counted_only_when_asked(tiny_loaded, tiny_sae):
    tok = tiny_loaded.tokenizer
    text = tok.apply_chat_template([{"role": "user", "content": "hello world"}], tokenize=False,
                                   add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    n_special = sum(i in set(tok.all_special_ids) for i in ids)
    assert n_special == 6  # <s>, 3 × <|im_start|>, 2 × <|im_end|>
    n_content = len(tok("hello world", add_special_tokens=False)["input_ids"])
    ex = extract(tiny_loaded, tiny_sae, [_inp("k", "hello world")],
                 token_policy=TokenPolicy(exclude_special=False), cache=None, progress=False)
    assert ex.n_tokens[0] == n_content + n_special


def test_no_chat_template_reads_plain_contents(tiny_loaded, tiny_sae):
    tok = tiny_loaded.tokenizer
    ex = extract(tiny_loaded, tiny_sae, [_inp("k", "hello world")],
                 token_policy=TokenPolicy(chat_template=False), cache=None, progress=False)
    assert ex.n_tokens[0] == len(tok("hello world", add_special_tokens=False)["input_ids"])


def test_padded_batch_equals_alone_and_keeps_input_order(tiny_loaded, tiny_sae):
    texts = ["The quick brown fox jumps over the lazy dog and then some more words follow.",
             "hi", "What is the capital of France?", "Numbers 1 2 3", "yes"]
    inputs = [_inp(f"k{i}", t) for i, t in enumerate(texts)]
    batched = extract(tiny_loaded, tiny_sae, inputs, token_policy=TokenPolicy(), cache=None,
                      batch_size=5, progress=False)
    assert batched.keys == [f"k{i}" for i in range(5)]
    for i, inp in enumerate(inputs):
        alone = extract(tiny_loaded, tiny_sae, [inp], token_policy=TokenPolicy(), cache=None,
                        progress=False)
        np.testing.assert_allclose(batched.saliency[i].toarray(), alone.saliency.toarray(), atol=1e-4)
        assert batched.n_tokens[i] == alone.n_tokens[0]
        assert batched.sse[i] == pytest.approx(alone.sse[0], rel=1e-4)


def test_item_with_no_counted_tokens_gives_an_empty_row(tiny_loaded, tiny_sae):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ex = extract(tiny_loaded, tiny_sae, [_inp("empty", ""), _inp("full", "hello")],
                     token_policy=TokenPolicy(), cache=None, progress=False)
    assert sum(issubclass(w.category, ZeroTokenWarning) for w in caught) == 1
    assert ex.n_tokens[0] == 0 and ex.saliency[0].nnz == 0
    assert ex.n_tokens[1] > 0 and ex.saliency[1].nnz > 0
    assert ex.zero_token_keys == ["empty"]


def test_extraction_never_runs_layers_above_the_hook(tiny_loaded, tiny_sae):
    layers = find_decoder_layers(tiny_loaded.model)
    calls = [0] * len(layers)
    handles = [layer.register_forward_hook(lambda *_a, i=i: calls.__setitem__(i, calls[i] + 1))
               for i, layer in enumerate(layers)]
    try:
        extract(tiny_loaded, tiny_sae, [_inp(f"k{i}", "hello world") for i in range(3)],
                token_policy=TokenPolicy(), cache=None, batch_size=2, progress=False)
    finally:
        for h in handles:
            h.remove()
    assert calls == [2, 2, 2, 0]  # two batches; the hook is blocks.2.hook_resid_post


def test_response_policy_without_response_is_a_config_error(tiny_loaded, tiny_sae):
    from cg_gate.errors import ConfigError

    with pytest.raises(ConfigError, match="needs a response"):
        extract(tiny_loaded, tiny_sae, [_inp("k", "hello")], token_policy=TokenPolicy(text="response"),
                cache=None, progress=False)
