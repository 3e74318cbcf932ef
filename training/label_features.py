"""Label every feature of the default SAE from its top-activating contexts in the corpus.

Reads the activations cached by train_sae.py (training/work/activations.npz and
train_tokens.json), encodes them with the shipped SAE, and for each feature keeps the top
contexts (up to 8, ±5 tokens, the max token marked with ⟦ ⟧, at most one per conversation,
fewer when the file would pass 5 MB), the tokens carrying most of its activation, its
density (share of tokens where it fires), and the corpus category and chat segment
(system / user / assistant) where it is most over-represented. The label is written from
those fields by `cg_gate.default.feature_label` (cg_gate/default/_label_text.py), e.g.
`“refund” (“a refund for”), “charge” — in billing-support requests (user turn)`; nothing
of the evaluation suites goes into it. Writes cg_gate/data/default/sae/labels.jsonl, one
line per feature; dead features: "dead". Then measure the labels on held-out text with
relabel.py (it writes `detection` into each row and labels.meta.json).

    nice -n 19 python training/label_features.py
    nice -n 19 python training/relabel.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from _common import DATA, WORK

from cg_gate.default import feature_label, write_label_rows

N_EXAMPLES = 8
MAX_BYTES = 5 * 1000 * 1000  # labels.jsonl ships inside the wheel; fewer examples if it would be larger
DETECTION_RESERVE = 300_000  # room for the `detection` fields relabel.py adds
N_CANDIDATES = 48
WINDOW = 5
N_TOP_TOKENS = 5
SEGMENTS = ["system", "user", "assistant"]


def segment_of(tokens: list[int], start_id: int) -> np.ndarray:
    """Chat segment per position: 0 system, 1 user, 2 assistant (by <|im_start|> count)."""
    starts = np.cumsum(np.asarray(tokens) == start_id) - 1
    return np.clip(starts, 0, 2)


def context(tokenizer, tokens: list[int], pos: int) -> str:
    """±WINDOW tokens around `pos`, the token at `pos` wrapped in ⟦ ⟧."""
    left = tokenizer.decode(tokens[max(0, pos - WINDOW):pos])
    mid = tokenizer.decode(tokens[pos:pos + 1])
    right = tokenizer.decode(tokens[pos + 1:pos + 1 + WINDOW])
    return (left + "⟦" + mid + "⟧" + right).replace("\n", "⏎")


def scan(sae, acts: np.ndarray, chunk: int = 4096):
    """Top candidate activations per feature and the sparse (token, feature, value) triples."""
    import torch

    with torch.no_grad():
        return _scan(torch, sae, acts, chunk)


def _scan(torch, sae, acts: np.ndarray, chunk: int):
    d_sae = sae.cfg.d_sae
    top_vals = torch.zeros((N_CANDIDATES, d_sae))
    top_idx = torch.full((N_CANDIDATES, d_sae), -1, dtype=torch.long)
    rows, feats, vals = [], [], []
    for first in range(0, acts.shape[0], chunk):
        f = sae.encode(torch.from_numpy(acts[first:first + chunk]).float())
        r, c = f.nonzero(as_tuple=True)
        rows.append((r + first).numpy().astype(np.int64))
        feats.append(c.numpy().astype(np.int64))
        vals.append(f[r, c].numpy())
        idx = torch.arange(first, first + f.shape[0])[:, None].expand_as(f)
        all_vals = torch.cat([top_vals, f])
        all_idx = torch.cat([top_idx, idx])
        best = all_vals.topk(N_CANDIDATES, dim=0)
        top_vals, top_idx = best.values, torch.gather(all_idx, 0, best.indices)
    return top_vals.numpy(), top_idx.numpy(), np.concatenate(rows), np.concatenate(feats), np.concatenate(vals)


def grouped_sum(keys: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    """Sum of weights per key in [0, size)."""
    return np.bincount(keys, weights=weights, minlength=size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sae", type=Path, default=DATA / "sae")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=DATA / "sae" / "labels.jsonl")
    args = parser.parse_args()

    import torch
    from sae_lens import SAE

    torch.set_num_threads(2)
    t0 = time.time()
    sae = SAE.load_from_disk(args.sae)
    stored = np.load(args.work / "activations.npz", allow_pickle=False)
    acts, conv, pos = stored["acts"], stored["conv"], stored["pos"]
    meta = json.loads((args.work / "train_tokens.json").read_text(encoding="utf-8"))
    token_lists, categories = meta["tokens"], meta["categories"]
    _, tokenizer = load_model_tokenizer_only()
    start_id = tokenizer.convert_tokens_to_ids("<|im_start|>")

    n_tokens = acts.shape[0]
    token_ids = np.array([token_lists[c][p] for c, p in zip(conv, pos)], dtype=np.int64)
    cat_names = sorted(set(categories))
    cat_of_conv = np.array([cat_names.index(c) for c in categories])
    segments = {c: segment_of(token_lists[c], start_id) for c in set(conv.tolist())}
    seg_of_token = np.array([segments[c][p] for c, p in zip(conv, pos)], dtype=np.int64)
    cat_of_token = cat_of_conv[conv]

    top_vals, top_idx, rows, feats, vals = scan(sae, acts)
    d_sae = sae.cfg.d_sae
    density = np.bincount(feats, minlength=d_sae) / n_tokens
    cat_mass = grouped_sum(feats * len(cat_names) + cat_of_token[rows], vals, d_sae * len(cat_names))
    cat_mass = cat_mass.reshape(d_sae, len(cat_names))
    cat_share = np.bincount(cat_of_token, minlength=len(cat_names)) / n_tokens
    seg_mass = grouped_sum(feats * 3 + seg_of_token[rows], vals, d_sae * 3).reshape(d_sae, 3)
    seg_share = np.bincount(seg_of_token, minlength=3) / n_tokens

    # activation mass per (feature, token id), top tokens per feature
    key = feats * (token_ids.max() + 1) + token_ids[rows]
    unique, inverse = np.unique(key, return_inverse=True)
    mass = np.bincount(inverse, weights=vals)
    by_feature = unique // (token_ids.max() + 1)
    token_of = unique % (token_ids.max() + 1)
    order = np.lexsort((-mass, by_feature))
    top_tokens: dict[int, list[int]] = {}
    for i in order:
        lst = top_tokens.setdefault(int(by_feature[i]), [])
        if len(lst) < N_TOP_TOKENS:
            lst.append(int(token_of[i]))

    out_rows = []
    for feature in range(d_sae):
        if density[feature] == 0:
            out_rows.append({"id": feature, "label": "dead", "examples": [], "top_tokens": [], "density": 0.0})
            continue
        examples, used = [], set()
        for value, index in zip(top_vals[:, feature], top_idx[:, feature]):
            if value <= 0 or index < 0 or len(examples) >= N_EXAMPLES:
                break
            c = int(conv[index])
            if c in used:
                continue
            used.add(c)
            text = context(tokenizer, token_lists[c], int(pos[index]))
            if text not in examples:
                examples.append(text)
        lift = (cat_mass[feature] / cat_mass[feature].sum()) / np.maximum(cat_share, 1e-12)
        seg_lift = (seg_mass[feature] / seg_mass[feature].sum()) / np.maximum(seg_share, 1e-12)
        best_cat = int(np.argmax(lift))
        row = {
            "id": feature,
            "label": "",
            "examples": examples,
            "top_tokens": [tokenizer.decode([t]) for t in top_tokens.get(feature, [])],
            "density": significant(density[feature]),
            "category": cat_names[best_cat],
            "category_lift": round(float(lift[best_cat]), 3),
            "segment": SEGMENTS[int(np.argmax(seg_lift))],
        }
        row["label"] = feature_label(row)
        out_rows.append(row)
    shrink(out_rows, MAX_BYTES - DETECTION_RESERVE)
    write_label_rows(out_rows, args.out)
    live = sum(row["label"] != "dead" for row in out_rows)
    print(f"{live} live features labelled, {d_sae - live} dead, {time.time() - t0:.0f}s; "
          f"{args.out.stat().st_size / 1e6:.2f} MB", flush=True)


def significant(value: float, digits: int = 4) -> float:
    """`value` to `digits` significant digits (densities are counts over ~370k tokens)."""
    return float(f"{float(value):.{digits}g}")


def encoded_size(rows: list[dict]) -> int:
    """Bytes of `rows` as written by `write_label_rows` (compact JSONL, UTF-8)."""
    return sum(len(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode("utf-8")) + 1 for row in rows)


def shrink(rows: list[dict], max_bytes: int) -> None:
    """Drop trailing examples of every feature (in place) until the rows fit in `max_bytes`."""
    keep = max((len(row.get("examples") or []) for row in rows), default=0)
    while encoded_size(rows) > max_bytes and keep > 1:
        keep -= 1
        for row in rows:
            row["examples"] = (row.get("examples") or [])[:keep]
        print(f"  labels file too large: kept {keep} examples per feature", flush=True)


def load_model_tokenizer_only():
    """The tokenizer of the default model (no model weights)."""
    from transformers import AutoTokenizer

    from cg_gate.default import default_model_path

    path = default_model_path()
    return None, AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


if __name__ == "__main__":
    main()
