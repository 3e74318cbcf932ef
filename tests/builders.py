"""Tiny, seeded, offline builders for tests: tokenizer, decoder models of six families, SAEs.

Everything here runs on CPU in well under a second per artefact and never touches a hub.
"""

from __future__ import annotations

from pathlib import Path

CHAT_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>", "<s>"]
DEFAULT_SYSTEM = "You are a tiny test assistant."

# ChatML, with a default system turn when the conversation has none (as SmolLM2's has):
# that turn is template boilerplate the model reads but cg-gate never counts.
CHATML_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\n" + DEFAULT_SYSTEM + "<|im_end|>\n' }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? Paris is the capital of France.",
    "I cannot help with that request, but I can suggest a safer alternative.",
    "Please summarise the following paragraph in one sentence.",
    "The meeting is at 10:30 on Tuesday, 4 March 2025.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100 2024.",
    "You are a helpful assistant. Answer briefly and politely.",
    "user assistant system hello world yes no maybe sorry thanks",
    "def add(a, b): return a + b  # code, symbols: {}[]()<>!?;:'\"",
]


def build_tiny_tokenizer(directory: Path, *, vocab_size: int = 400):
    """A byte-level BPE fast tokenizer with ChatML special tokens and chat template.

    Trained deterministically on a small built-in corpus; any text tokenizes (byte
    fallback), offsets are exact. Saved with `save_pretrained(directory)`; returned too.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=CHAT_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        additional_special_tokens=["<|im_start|>", "<|endoftext|>"],
    )
    fast.chat_template = CHATML_TEMPLATE
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(directory)
    return fast


FAMILIES = ("llama", "mistral", "qwen2", "gemma2", "gpt2", "gpt_neox")


def tiny_config(family: str, *, vocab: int, hidden: int = 64, layers: int = 4,
                bos_id: int = 0, eos_id: int = 0, pad_id: int = 0):
    """A transformers config for a tiny model of `family`."""
    import transformers as tf

    heads = max(2, hidden // 16)
    common = dict(vocab_size=vocab, bos_token_id=bos_id, eos_token_id=eos_id, pad_token_id=pad_id)
    if family in ("llama", "mistral", "qwen2"):
        cls = {"llama": tf.LlamaConfig, "mistral": tf.MistralConfig, "qwen2": tf.Qwen2Config}[family]
        return cls(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                   num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                   max_position_embeddings=512, tie_word_embeddings=False, **common)
    if family == "gemma2":
        return tf.Gemma2Config(hidden_size=hidden, intermediate_size=2 * hidden,
                               num_hidden_layers=layers, num_attention_heads=heads,
                               num_key_value_heads=max(1, heads // 2), head_dim=hidden // heads,
                               max_position_embeddings=512, sliding_window=512, **common)
    if family == "gpt2":
        return tf.GPT2Config(n_embd=hidden, n_layer=layers, n_head=heads, n_positions=512, **common)
    if family == "gpt_neox":
        return tf.GPTNeoXConfig(hidden_size=hidden, intermediate_size=2 * hidden,
                                num_hidden_layers=layers, num_attention_heads=heads,
                                max_position_embeddings=512, **common)
    raise ValueError(f"unknown family {family!r}; one of {FAMILIES}")


def build_tiny_model(directory: Path, family: str = "llama", hidden: int = 64, layers: int = 4,
                     *, seed: int = 0) -> Path:
    """A random tiny causal LM of `family` plus the tiny tokenizer, saved as safetensors."""
    import torch
    from transformers import AutoModelForCausalLM

    directory = Path(directory)
    tok = build_tiny_tokenizer(directory)
    cfg = tiny_config(family, vocab=len(tok), hidden=hidden, layers=layers,
                      bos_id=tok.bos_token_id, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    # Residual-scale embeddings so hidden states are O(1), as in trained models.
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        emb.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(seed))
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def build_tiny_sae(directory: Path, d_in: int = 64, d_sae: int = 256,
                   hook: str = "blocks.2.hook_resid_post", architecture: str = "standard",
                   *, k: int = 8, seed: int = 0) -> Path:
    """A seeded random sae-lens SAE (`standard` or `topk`) saved with `save_model(directory)`."""
    import torch
    from sae_lens import StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    meta = SAEMetadata(hook_name=hook, model_name="tiny", hook_head_index=None)
    if architecture == "standard":
        sae = StandardSAE(StandardSAEConfig(d_in=d_in, d_sae=d_sae, metadata=meta))
    elif architecture == "topk":
        sae = TopKSAE(TopKSAEConfig(d_in=d_in, d_sae=d_sae, k=k, metadata=meta))
    else:
        raise ValueError(f"unknown architecture {architecture!r}")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        w = torch.randn(d_in, d_sae, generator=gen) / d_in**0.5
        sae.W_enc.copy_(w)
        sae.W_dec.copy_(w.T / (w.T.norm(dim=1, keepdim=True) + 1e-8))
        sae.b_enc.copy_(-0.5 * torch.rand(d_sae, generator=gen))
        sae.b_dec.zero_()
    sae.save_model(Path(directory))
    return Path(directory)


# A six-item suite in two categories, scored by one regex (`%(pattern)s`): "." passes every
# response, a pattern no response holds fails them all.
TINY_SUITE = """\
apiVersion: cg-gate/v1
kind: Suite
metadata: {name: tiny, version: "1"}
defaults: {scorer: {name: regex, args: {must_include: ["%(pattern)s"]}}}
categories:
  facts: {purpose: Facts, severity: high}
  chat: {purpose: Small talk, severity: low}
items:
  - {id: q1, input: "What is the capital of France?", category: facts}
  - {id: q2, input: "The quick brown fox jumps over the lazy dog.", category: chat}
  - {id: q3, input: "Please summarise the following paragraph in one sentence.", category: chat}
  - {id: q4, input: "I cannot help with that request.", category: facts}
  - {id: q5, input: "What is the capital of Spain? Madrid.", category: facts}
  - {id: q6, input: "Tell me about the lazy dog and the brown fox.", category: chat}
"""
