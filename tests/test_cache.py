"""Content-addressed caches: exact resume, corruption detected and recomputed, keys."""

from __future__ import annotations

import numpy as np
import pytest

from cg_gate.record import TokenPolicy
from cg_gate.record._cache import (
    ActivationCache,
    CacheCorruptionWarning,
    Entry,
    ResponseCache,
    activation_key,
    response_key,
)
from cg_gate.sae import ExtractionInput, extract
from cg_gate.suites import ChatMessage

TEXTS = ["hello world", "What is the capital of France?", "The quick brown fox", "yes",
         "Please summarise the following paragraph in one sentence.", "Numbers: 1 2 3",
         "I cannot help with that request", "def add(a, b): return a + b"]


def _inputs():
    return [ExtractionInput(key=f"{i:02d}" * 32, messages=[ChatMessage(role="user", content=t)])
            for i, t in enumerate(TEXTS)]


def _entry() -> Entry:
    return Entry(indices=np.array([1, 5, 9], np.int32), values=np.array([0.5, 1.25, 3.0], np.float32),
                 n_tokens=4, sse=1.5, sum_sq=10.0, sum_x=np.arange(4, dtype=np.float64), l0_sum=12.0)


def _files(root):
    return sorted(root.rglob("*" + ActivationCache.suffix))


def _same(a, b) -> None:
    assert a.saliency.data.tobytes() == b.saliency.data.tobytes()
    assert a.saliency.indices.tobytes() == b.saliency.indices.tobytes()
    assert a.saliency.indptr.tobytes() == b.saliency.indptr.tobytes()
    for name in ("n_tokens", "sse", "sum_sq", "sum_x", "l0_sum"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name


def test_entry_round_trip(tmp_path):
    cache = ActivationCache(tmp_path)
    key = "ab" + "0" * 62
    assert cache.get(key) is None
    cache.put(key, _entry())
    assert cache.path(key) == tmp_path / "ab" / f"{key}.act"
    got = cache.get(key)
    np.testing.assert_array_equal(got.indices, [1, 5, 9])
    np.testing.assert_array_equal(got.values, np.array([0.5, 1.25, 3.0], np.float32))
    assert (got.n_tokens, got.sse, got.sum_sq, got.l0_sum) == (4, 1.5, 10.0, 12.0)
    np.testing.assert_array_equal(got.sum_x, [0.0, 1.0, 2.0, 3.0])
    assert got.indices.dtype == np.int32 and got.values.dtype == np.float32
    assert got.indices.flags.writeable and got.values.flags.aligned  # copies, not views of the file
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupt_entry_is_deleted_and_missed(tmp_path, damage):
    cache = ActivationCache(tmp_path)
    key = "cd" + "1" * 62
    cache.put(key, _entry())
    path = cache.path(key)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray(b"not a cache entry at all")
    path.write_bytes(bytes(data))
    with pytest.warns(CacheCorruptionWarning):
        assert cache.get(key) is None
    assert not path.exists()


def test_a_body_whose_header_disagrees_with_its_size_is_rejected(tmp_path):
    """A consistent outer hash over a body whose declared lengths are wrong is still a miss."""
    import hashlib
    import struct

    cache = ActivationCache(tmp_path)
    key = "ef" + "2" * 62
    entry = _entry()
    cache.put(key, entry)
    raw = cache.path(key).read_bytes()
    head = raw.index(b"\n") + 1
    body = bytearray(raw[head + 32:])
    nnz = struct.unpack_from("<q", body)[0]
    assert nnz == len(entry.indices)  # the layout this test edits
    struct.pack_into("<q", body, 0, nnz + 1)  # claims one more non-zero than it holds
    cache.path(key).write_bytes(raw[:head] + hashlib.sha256(bytes(body)).digest() + bytes(body))
    with pytest.warns(CacheCorruptionWarning, match="lengths"):
        assert cache.get(key) is None


def test_killed_run_resumes_byte_identical(tiny_loaded, tiny_sae, tmp_path):
    cache = ActivationCache(tmp_path / "c")
    first = extract(tiny_loaded, tiny_sae, _inputs(), token_policy=TokenPolicy(), cache=cache,
                    batch_size=3, progress=False)
    files = _files(tmp_path / "c")
    assert len(files) == len(TEXTS) and first.cache_hits == 0
    for f in files[::2]:
        f.unlink()  # as if the run had stopped half way
    resumed = extract(tiny_loaded, tiny_sae, _inputs(), token_policy=TokenPolicy(), cache=cache,
                      batch_size=3, progress=False)
    assert resumed.cache_hits == len(TEXTS) // 2
    _same(first, resumed)
    warm = extract(tiny_loaded, tiny_sae, _inputs(), token_policy=TokenPolicy(), cache=cache,
                   batch_size=3, progress=False)
    assert warm.cache_hits == len(TEXTS) and warm.tokens_processed == 0
    _same(first, warm)


def test_corrupted_file_is_recomputed_to_the_same_result(tiny_loaded, tiny_sae, tmp_path):
    cache = ActivationCache(tmp_path / "c")
    first = extract(tiny_loaded, tiny_sae, _inputs(), token_policy=TokenPolicy(), cache=cache,
                    progress=False)
    victim = _files(tmp_path / "c")[3]
    data = bytearray(victim.read_bytes())
    data[-40] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.warns(CacheCorruptionWarning):
        again = extract(tiny_loaded, tiny_sae, _inputs(), token_policy=TokenPolicy(), cache=cache,
                        progress=False)
    assert again.cache_hits == len(TEXTS) - 1
    _same(first, again)
    assert victim.exists()  # rewritten


def test_token_policy_is_part_of_the_key(tiny_loaded, tiny_sae, tmp_path):
    cache = ActivationCache(tmp_path / "c")
    extract(tiny_loaded, tiny_sae, _inputs(), token_policy=TokenPolicy(), cache=cache, progress=False)
    other = extract(tiny_loaded, tiny_sae, _inputs(), token_policy=TokenPolicy(exclude_special=False),
                    cache=cache, progress=False)
    assert other.cache_hits == 0


def test_keys_depend_on_every_part():
    base = ("m" * 64, "s" * 64, "blocks.2.hook_resid_post", '{"text":"prompt"}', "i" * 64)
    keys = {activation_key(*base)}
    for pos in range(5):
        changed = list(base)
        changed[pos] = changed[pos] + "x"
        keys.add(activation_key(*changed))
    assert len(keys) == 6 and all(len(k) == 64 for k in keys)
    assert response_key("m", "t", "{}", "i") != response_key("m", None, "{}", "i")


def test_response_cache_round_trip_and_corruption(tmp_path):
    cache = ResponseCache(tmp_path)
    key = response_key("m", "t", "{}", "item")
    cache.put(key, "Paris — la capitale.")
    assert cache.get(key) == "Paris — la capitale."
    path = cache.path(key)
    path.write_text(path.read_text(encoding="utf-8").replace("Paris", "Lyon!"), encoding="utf-8")
    with pytest.warns(CacheCorruptionWarning):
        assert cache.get(key) is None
    assert not path.exists()


def test_cache_keys_follow_the_dtype_the_weights_ran_in():
    from cg_gate.models._generate import _response_keys
    from cg_gate.record import GenerationSettings, ModelInfo
    from cg_gate.suites import Item

    def info(dtype: str) -> ModelInfo:
        return ModelInfo(id="m", architecture="llama", num_layers=2, hidden_size=8, dtype=dtype,
                         device="cpu", digest="d" * 64, tokenizer_digest="t" * 64)

    items = [Item(id="a", suite="s", messages=[ChatMessage(role="user", content="hi")])]
    f32, bf16 = info("float32"), info("bfloat16")
    # float32 keeps the plain weight digest, so caches written before stay valid
    assert f32.compute_digest == "d" * 64
    settings = GenerationSettings(mode="generate", max_new_tokens=4)
    assert _response_keys(f32, settings, items) != _response_keys(bf16, settings, items)
