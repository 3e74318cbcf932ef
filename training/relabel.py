"""Rewrite the default SAE's labels in readable form and measure them on held-out text.

Reads cg_gate/data/default/sae/labels.jsonl, rewrites every live feature's `label` from the
row's own fields with `cg_gate.default.feature_label` (tokens in words, the corpus category
and chat segment where the feature is most over-represented; see
cg_gate/default/_label_text.py), drops `starter_category`, then measures each label:

**Detection.** The shipped model and SAE read texts neither of them saw — the neutral
reference set and the family exemplars under cg_gate/data/ (each a user message, chat
template applied, counted tokens as in extraction: the message's own tokens, no special
tokens). Every counted token gets a score against a feature's label: 2 when the token is one
the label names (compared case-folded, without surrounding spaces, whitespace by kind), 1
when such a token is within ±2 counted tokens of it in the same text, else 0. A feature's
`detection` is the AUROC of that score for telling the tokens where the feature fires (f > 0)
from all held-out tokens where it does not: 1.0 a label that picks out exactly where the
feature fires, 0.5 a label that says nothing. It is null when the feature fires on fewer
than `--min-activations` held-out tokens or in fewer than `--min-texts` texts;
`detection_n` is the number of held-out tokens it fires on.

The summary (features scored, mean/median detection, share ≥ 0.7, the same for two
comparisons — each label scored against another feature's tokens, and labels naming the three
tokens with the most activation mass — the texts and their digests, the date) goes to
labels.meta.json beside the labels (`cg_gate.default.label_quality()`).

    nice -n 19 python training/relabel.py                  # relabel + measure (~2 min on CPU)
    python training/relabel.py --no-detection               # relabel only, no model
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import DATA, REPO, sha256_file, versions
from label_features import MAX_BYTES, shrink, significant

from cg_gate.default import label_tokens, read_label_rows, relabel_row, token_key, write_label_rows

HELD_OUT = [REPO / "cg_gate" / "data" / "reference" / "neutral.jsonl",
            *sorted((REPO / "cg_gate" / "data" / "exemplars").glob("*.jsonl"))]
MIN_ACTIVATIONS = 10
MIN_TEXTS = 3
WINDOW = 2
GOOD = 0.7
SEED = 0


# --------------------------------------------------------------------------- scoring


@dataclass
class HeldOut:
    """Counted tokens of the held-out texts, flattened in text order, and the SAE on them."""

    keys: np.ndarray
    """(N,) int: id of each token's `token_key` in `vocab`."""
    text: np.ndarray
    """(N,) int: index of the text each token belongs to."""
    acts: object
    """(N, d_sae) scipy.sparse CSC matrix of feature activations."""
    vocab: dict[str, int]
    """token_key → id."""


def match_scores(keys: np.ndarray, text: np.ndarray, wanted: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Per token: 2 if its key is wanted, 1 if a wanted key is within ±window tokens of the same text, else 0."""
    exact = np.isin(keys, wanted)
    near = np.zeros_like(exact)
    n = len(keys)
    for shift in range(1, window + 1):
        if shift >= n:
            break
        same = text[shift:] == text[:-shift]
        near[shift:] |= exact[:-shift] & same
        near[:-shift] |= exact[shift:] & same
    return np.where(exact, 2, np.where(near, 1, 0)).astype(np.int8)


def auroc(positive: np.ndarray, negative: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    """P(score of a random positive > a random negative), ties counted half; None if a side is empty.

    With `weights`, positives are drawn in proportion to them (e.g. their activation).
    """
    if len(positive) == 0 or len(negative) == 0:
        return None
    values = np.union1d(positive, negative)
    pos = np.bincount(np.searchsorted(values, positive), weights=weights, minlength=len(values)).astype(float)
    neg = np.bincount(np.searchsorted(values, negative), minlength=len(values)).astype(float)
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    return float((pos * (below + 0.5 * neg)).sum() / (pos.sum() * neg.sum()))


def balanced_accuracy(positive: np.ndarray, negative: np.ndarray, threshold: int = 2) -> float | None:
    """Mean of the hit rate on positives and the correct-rejection rate on negatives of score ≥ threshold."""
    if len(positive) == 0 or len(negative) == 0:
        return None
    return float(((positive >= threshold).mean() + (negative < threshold).mean()) / 2)


@dataclass(frozen=True)
class Detection:
    """How well one label's tokens tell where its feature fires on held-out text."""

    n: int
    """Held-out tokens where the feature fires."""
    texts: int
    """Held-out texts where it fires."""
    auroc: float | None
    """Against every held-out token where it does not fire; None when too few activations."""
    auroc_same_texts: float | None
    """Against the non-firing tokens of the texts where it fires."""
    balanced_accuracy: float | None
    """Of the token-only rule "this token is one the label names"."""
    auroc_weighted: float | None = None
    """As `auroc`, firing tokens weighted by their activation."""
    auroc_strong: float | None = None
    """As `auroc`, positives only the tokens where the feature reaches half its held-out maximum."""


def detect(data: HeldOut, feature: int, wanted_keys: Sequence[str], *, min_activations: int = MIN_ACTIVATIONS,
           min_texts: int = MIN_TEXTS, window: int = WINDOW) -> Detection:
    """Detection of one feature by the tokens its label names (see the module docstring)."""
    column = data.acts[:, feature]
    value = np.zeros(len(data.keys))
    value[column.indices] = column.data
    fires = value > 0
    n, texts = int(fires.sum()), len(np.unique(data.text[fires]))
    if n < min_activations or texts < min_texts:
        return Detection(n=n, texts=texts, auroc=None, auroc_same_texts=None, balanced_accuracy=None)
    wanted = np.array([data.vocab[k] for k in wanted_keys if k in data.vocab], dtype=np.int64)
    scores = match_scores(data.keys, data.text, wanted, window)
    same = np.isin(data.text, data.text[fires]) & ~fires
    strong = value >= 0.5 * value.max()
    return Detection(n=n, texts=texts, auroc=auroc(scores[fires], scores[~fires]),
                     auroc_same_texts=auroc(scores[fires], scores[same]),
                     balanced_accuracy=balanced_accuracy(scores[fires], scores[~fires]),
                     auroc_weighted=auroc(scores[fires], scores[~fires], weights=value[fires]),
                     auroc_strong=auroc(scores[strong], scores[~fires]))


def summary(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Count, mean, median, 10th/90th percentile and share ≥ GOOD of the non-null values."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if not len(v):
        return {"features": 0, "mean": None, "median": None, "p10": None, "p90": None, f"share_ge_{GOOD}": None}
    return {"features": int(len(v)), "mean": round(float(v.mean()), 4), "median": round(float(np.median(v)), 4),
            "p10": round(float(np.percentile(v, 10)), 4), "p90": round(float(np.percentile(v, 90)), 4),
            f"share_ge_{GOOD}": round(float((v >= GOOD).mean()), 4)}


# --------------------------------------------------------------------------- held-out activations


def read_texts(paths: Sequence[Path]) -> list[tuple[Path, list[str]]]:
    """The `text` of every record of each JSONL file."""
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            out.append((path, [json.loads(line)["text"] for line in handle if line.strip()]))
    return out


def held_out_activations(texts: list[str], batch_size: int = 16) -> tuple[HeldOut, dict[str, str]]:
    """Run the shipped model and SAE over `texts`; counted tokens and activations, and what ran."""
    import scipy.sparse as sp
    import torch

    from cg_gate.default import default_sae_dir
    from cg_gate.models import capture_at_hook, default_model_spec, load_model
    from cg_gate.record import TokenPolicy
    from cg_gate.sae import ExtractionInput, SAESpec, counted_mask, load_sae, render
    from cg_gate.suites import ChatMessage

    torch.set_num_threads(1)
    model = load_model(default_model_spec())
    sae = load_sae(SAESpec(path=default_sae_dir(), device="cpu"))
    tok = model.tokenizer
    hook = model.hook(sae.info.hook)
    policy = TokenPolicy()
    special_ids = set(tok.all_special_ids) | {int(i) for i, t in getattr(tok, "added_tokens_decoder", {}).items()
                                              if getattr(t, "special", False)}
    special = torch.tensor(sorted(special_ids), dtype=torch.long)
    vocab: dict[str, int] = {}
    decoded: dict[int, int] = {}
    keys, text_of, blocks = [], [], []
    with torch.inference_mode():
        for first in range(0, len(texts), batch_size):
            batch = texts[first:first + batch_size]
            rendered = [render(tok, ExtractionInput(key=str(first + i), messages=[ChatMessage(role="user", content=t)]),
                               policy) for i, t in enumerate(batch)]
            enc = tok([r.text for r in rendered], return_offsets_mapping=True, padding=True, padding_side="right",
                      add_special_tokens=not rendered[0].templated, return_tensors="pt")
            ids, attn = enc["input_ids"], enc["attention_mask"]
            counted = torch.stack([counted_mask(enc["offset_mapping"][i], r.spans) for i, r in enumerate(rendered)])
            counted &= ~torch.isin(ids, special) & attn.bool()
            hidden = capture_at_hook(model.model, hook, ids, attn)
            f = sae.encode(hidden[counted].float()).float()
            blocks.append(sp.csr_matrix(f.numpy()))
            rows, cols = counted.nonzero(as_tuple=True)
            for r, c in zip(rows.tolist(), cols.tolist()):
                token_id = int(ids[r, c])
                if token_id not in decoded:
                    decoded[token_id] = vocab.setdefault(token_key(tok.decode([token_id])), len(vocab))
                keys.append(decoded[token_id])
                text_of.append(first + r)
    acts = sp.vstack(blocks).tocsc()
    ran = {"model": Path(model.info.id).name, "model_digest": model.info.digest,
           "sae": str(default_sae_dir().relative_to(REPO)), "sae_digest": sae.info.digest, "hook": sae.info.hook}
    return HeldOut(keys=np.array(keys, dtype=np.int64), text=np.array(text_of, dtype=np.int64), acts=acts,
                   vocab=vocab), ran


# --------------------------------------------------------------------------- main


def compact(row: dict) -> dict:
    """The row with its density to four significant digits."""
    if isinstance(row.get("density"), float) and row["density"] > 0:
        row["density"] = significant(row["density"])
    return row


def score_rows(rows: list[dict], data: HeldOut, *, min_activations: int, min_texts: int) -> dict:
    """Write `detection` / `detection_n` into every live row; the summary figures."""
    live = [row for row in rows if row["label"] != "dead"]
    shown = {row["id"]: [token_key(t) for t in label_tokens(row.get("top_tokens") or [], row.get("examples") or [])]
             for row in live}
    by_mass = {row["id"]: [token_key(t) for t in (row.get("top_tokens") or [])[:3]] for row in live}
    results = {}
    for row in live:
        res = detect(data, row["id"], shown[row["id"]], min_activations=min_activations, min_texts=min_texts)
        results[row["id"]] = res
        row["detection"] = None if res.auroc is None else round(res.auroc, 3)
        row["detection_n"] = res.n
    scored = [fid for fid, res in results.items() if res.auroc is not None]
    rng = np.random.default_rng(SEED)
    others = rng.permutation(scored)
    shift = {fid: int(o) if int(o) != fid else int(others[(i + 1) % len(others)]) for i, (fid, o)
             in enumerate(zip(scored, others))}
    shuffled = [detect(data, fid, shown[shift[fid]], min_activations=min_activations, min_texts=min_texts).auroc
                for fid in scored]
    mass = [detect(data, fid, by_mass[fid], min_activations=min_activations, min_texts=min_texts).auroc
            for fid in scored]
    return {
        "live_features": len(live),
        "scored": summary([results[f].auroc for f in scored]),
        "same_texts": summary([results[f].auroc_same_texts for f in scored]),
        "activation_weighted": summary([results[f].auroc_weighted for f in scored]),
        "strong_activations": summary([results[f].auroc_strong for f in scored]),
        "token_only_balanced_accuracy": summary([results[f].balanced_accuracy for f in scored]),
        "shuffled_labels": summary(shuffled),
        "top_mass_tokens": summary(mass),
        "too_few_activations": len(live) - len(scored),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=Path, default=DATA / "sae" / "labels.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="default: overwrite --labels")
    parser.add_argument("--meta", type=Path, default=None, help="default: labels.meta.json beside --out")
    parser.add_argument("--texts", type=Path, nargs="+", default=HELD_OUT, help="held-out JSONL files with 'text'")
    parser.add_argument("--min-activations", type=int, default=MIN_ACTIVATIONS)
    parser.add_argument("--min-texts", type=int, default=MIN_TEXTS)
    parser.add_argument("--no-detection", action="store_true", help="relabel only; no model, no meta file")
    args = parser.parse_args()
    out = args.out or args.labels
    meta_path = args.meta or out.with_name("labels.meta.json")

    t0 = time.time()
    rows = [compact(relabel_row(row)) for row in read_label_rows(args.labels)]
    if args.no_detection:
        shrink(rows, MAX_BYTES)
        write_label_rows(rows, out)
        print(f"relabelled {sum(r['label'] != 'dead' for r in rows)} features -> {out}", flush=True)
        return
    sources = read_texts(args.texts)
    texts = [t for _, ts in sources for t in ts]
    data, ran = held_out_activations(texts)
    print(f"held-out: {len(texts)} texts, {len(data.keys)} counted tokens, {time.time() - t0:.0f}s", flush=True)
    figures = score_rows(rows, data, min_activations=args.min_activations, min_texts=args.min_texts)
    shrink(rows, MAX_BYTES)
    write_label_rows(rows, out)
    meta = {
        "labels": out.name,
        "labels_sha256": sha256_file(out),
        "measured": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
        "metric": "detection",
        "how": ("Per counted token of the held-out texts (user message, chat template applied, the message's own "
                "tokens, no special tokens): score 2 if the token is one the label names (case-folded, stripped; "
                f"whitespace by kind), 1 if such a token is within ±{WINDOW} counted tokens in the same text, else 0. "
                "detection = AUROC of that score, tokens where the feature fires (f > 0) against all held-out "
                "tokens where it does not; ties count half. Scored when the feature fires on at least "
                f"{args.min_activations} held-out tokens in at least {args.min_texts} texts. The label's corpus "
                "category and segment are not tested (the held-out texts carry no corpus category)."),
        "comparisons": {
            "same_texts": "the same score against only the non-firing tokens of the texts where the feature fires",
            "activation_weighted": "firing tokens weighted by their activation (as saliency weighs them)",
            "strong_activations": "positives only the tokens where the feature reaches half its held-out maximum",
            "token_only_balanced_accuracy": ("balanced accuracy of the token-only rule (score 2) against all "
                                             "non-firing tokens"),
            "shuffled_labels": f"each scored feature judged by another scored feature's label tokens (seed {SEED})",
            "top_mass_tokens": "labels naming the three tokens with most activation mass (the previous label format)",
        },
        "figures": figures,
        "good_threshold": GOOD,
        "min_activations": args.min_activations,
        "min_texts": args.min_texts,
        "window": WINDOW,
        "held_out": {"texts": len(texts), "counted_tokens": int(len(data.keys)),
                     "files": [{"path": str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p),
                                "texts": len(ts), "sha256": sha256_file(p)} for p, ts in sources],
                     "texts_sha256": hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()},
        "ran": ran,
        "wall_time_s": round(time.time() - t0, 1),
        "versions": versions(),
    }
    tmp = meta_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(meta_path)
    s = figures["scored"]
    print(f"{s['features']} of {figures['live_features']} live features scored: detection mean {s['mean']}, "
          f"median {s['median']}, share ≥ {GOOD} {s[f'share_ge_{GOOD}']}; shuffled labels mean "
          f"{figures['shuffled_labels']['mean']}; {out.stat().st_size / 1e6:.2f} MB; {time.time() - t0:.0f}s",
          flush=True)


if __name__ == "__main__":
    main()
