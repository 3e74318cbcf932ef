"""Generation: greedy against a hand-rolled argmax loop, left padding, stops, cache."""

from __future__ import annotations

import pytest
import torch

from cg_gate.errors import ConfigError
from cg_gate.models import complete, generate
from cg_gate.models._generate import truncate_at_stop
from cg_gate.record import GenerationSettings
from cg_gate.record import ResponseCache
from cg_gate.suites import ChatMessage, Item

PROMPTS = ["hello world", "What is the capital of France? Please answer briefly.", "yes"]


def _items(prompts=PROMPTS):
    return [Item(id=f"i{n}", suite="s", messages=[ChatMessage(role="user", content=p)])
            for n, p in enumerate(prompts)]


def _settings(**kw) -> GenerationSettings:
    return GenerationSettings(mode="generate", max_new_tokens=kw.pop("max_new_tokens", 6), **kw)


def _argmax_loop(loaded, prompt: str, n: int) -> str:
    tok = loaded.tokenizer
    text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                   add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    new = []
    with torch.inference_mode():
        for _ in range(n):
            nxt = int(loaded.model(ids).logits[0, -1].argmax())
            new.append(nxt)
            if nxt == tok.eos_token_id:
                break
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return tok.decode(new, skip_special_tokens=True)


def test_greedy_matches_an_argmax_loop(tiny_loaded):
    got = generate(tiny_loaded, _items()[:1], _settings(batch_size=1), cache=None, progress=False)
    assert got == [_argmax_loop(tiny_loaded, PROMPTS[0], 6)]
    assert got[0] != ""


def test_left_padded_batch_equals_one_by_one(tiny_loaded):
    batched = generate(tiny_loaded, _items(), _settings(batch_size=3), cache=None, progress=False)
    alone = [generate(tiny_loaded, [it], _settings(batch_size=1), cache=None, progress=False)[0]
             for it in _items()]
    assert batched == alone


def test_stop_strings_truncate():
    assert truncate_at_stop("abc STOP def END", ["END", "STOP"]) == "abc "
    assert truncate_at_stop("no stops here", ["zzz", ""]) == "no stops here"


def test_stop_string_applied_to_generated_text(tiny_loaded):
    full = generate(tiny_loaded, _items()[:1], _settings(max_new_tokens=8), cache=None, progress=False)[0]
    assert len(full) >= 3
    stop = full[2:3]
    cut = generate(tiny_loaded, _items()[:1], _settings(max_new_tokens=8, stop=[stop]), cache=None,
                   progress=False)[0]
    assert cut == full[: full.index(stop)]


def test_system_prompt_prepended_only_when_item_has_none(tiny_loaded, monkeypatch):
    seen: list[str] = []
    real = tiny_loaded.model.generate

    def spy(*args, **kwargs):
        seen.extend(tiny_loaded.tokenizer.batch_decode(kwargs["input_ids"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(tiny_loaded.model, "generate", spy)
    with_system = Item(id="s", suite="s", messages=[ChatMessage(role="system", content="Own rules."),
                                                    ChatMessage(role="user", content="hi")])
    generate(tiny_loaded, [_items()[0], with_system], _settings(system_prompt="Be terse.", batch_size=1),
             cache=None, progress=False)
    plain, own = sorted(seen, key=lambda text: "Own rules." in text)  # batches run shortest first
    assert "<|im_start|>system\nBe terse.<|im_end|>" in plain and "Own rules." not in plain
    assert "Be terse." not in own and "Own rules." in own


def test_cache_regenerates_only_what_changed(tiny_loaded, tmp_path, monkeypatch):
    cache = ResponseCache(tmp_path)
    first = generate(tiny_loaded, _items(), _settings(batch_size=2), cache=cache, progress=False)
    batches: list[int] = []
    real = tiny_loaded.model.generate

    def counting(*args, **kwargs):
        batches.append(int(kwargs["input_ids"].shape[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(tiny_loaded.model, "generate", counting)
    again = generate(tiny_loaded, _items(), _settings(batch_size=2), cache=cache, progress=False)
    assert again == first and batches == []
    changed = _items(PROMPTS[:2] + ["something new"])
    out = generate(tiny_loaded, changed, _settings(batch_size=2), cache=cache, progress=False)
    assert batches == [1] and out[:2] == first[:2]
    generate(tiny_loaded, _items(), _settings(batch_size=2, max_new_tokens=4), cache=cache, progress=False)
    assert batches == [1, 2, 1]  # other settings, other keys


def test_zero_max_new_tokens_is_a_config_error(tiny_loaded):
    with pytest.raises(ConfigError, match="max_new_tokens"):
        generate(tiny_loaded, _items(), GenerationSettings(mode="generate"), cache=None, progress=False)


def test_complete_is_greedy_on_user_prompts(tiny_loaded):
    assert complete(tiny_loaded, PROMPTS[:2], 5) == [_argmax_loop(tiny_loaded, p, 5) for p in PROMPTS[:2]]


def _spy_generate(loaded, monkeypatch) -> list[tuple[list[str], int]]:
    """Records each `model.generate` call: its decoded prompts and the new tokens it produced."""
    calls: list[tuple[list[str], int]] = []
    real = loaded.model.generate

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        width = int(kwargs["input_ids"].shape[1])
        calls.append((loaded.tokenizer.batch_decode(kwargs["input_ids"], skip_special_tokens=True),
                      int(out.shape[1]) - width))
        return out

    monkeypatch.setattr(loaded.model, "generate", spy)
    return calls


def test_batches_are_formed_by_prompt_length_and_answers_return_in_item_order(tiny_loaded, monkeypatch):
    prompts = ["a much longer question about the capital of France and its rivers, please",
               "hi", "a medium sized question here", "yes", "the second longest prompt of them all, by far"]
    alone = [generate(tiny_loaded, [it], _settings(batch_size=1), cache=None, progress=False)[0]
             for it in _items(prompts)]
    calls = _spy_generate(tiny_loaded, monkeypatch)
    batched = generate(tiny_loaded, _items(prompts), _settings(batch_size=2), cache=None, progress=False)
    assert batched == alone
    groups = [{next(p for p in prompts if p in text) for text in texts} for texts, _ in calls]
    assert groups == [{"hi", "yes"}, {"a medium sized question here",
                                      "the second longest prompt of them all, by far"},
                      {prompts[0]}]


def test_decoding_stops_once_every_response_holds_a_stop_string(tiny_loaded, monkeypatch):
    items = _items()[:2]
    full = generate(tiny_loaded, items, _settings(max_new_tokens=12, batch_size=2), cache=None,
                    progress=False)
    assert all(len(t) >= 4 for t in full)
    stops = [full[0][1:3], full[1][1:3]]  # each response holds one of them within its first tokens
    calls = _spy_generate(tiny_loaded, monkeypatch)
    cut = generate(tiny_loaded, items, _settings(max_new_tokens=12, batch_size=2, stop=stops), cache=None,
                   progress=False)
    assert cut == [truncate_at_stop(t, stops) for t in full]
    assert len(calls) == 1 and calls[0][1] < 12  # the batch ended before the cap


def test_without_stop_strings_a_batch_decodes_to_the_cap(tiny_loaded, monkeypatch):
    calls = _spy_generate(tiny_loaded, monkeypatch)
    generate(tiny_loaded, _items()[:2], _settings(max_new_tokens=12, batch_size=2), cache=None, progress=False)
    assert [n for _, n in calls] == [12]


def test_sampled_batches_keep_item_order(tiny_loaded, monkeypatch):
    # A sampled response depends on its batch's random stream, so sampling does not reorder.
    prompts = ["a much longer question about the capital of France and its rivers, please", "hi", "yes"]
    calls = _spy_generate(tiny_loaded, monkeypatch)
    generate(tiny_loaded, _items(prompts), _settings(batch_size=2, temperature=1.0), cache=None,
             progress=False)
    groups = [[next(p for p in prompts if p in text) for text in texts] for texts, _ in calls]
    assert groups == [[prompts[0], "hi"], ["yes"]]
