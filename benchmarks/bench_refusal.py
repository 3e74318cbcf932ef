"""Benchmark: the refusal detector's precision, recall and `uncertain` rate on the labelled set.

Reads tests/data/refusal/labelled.jsonl (labelling rules in its README) and prints, for the
`dev` split (the rules were tuned on it) and the `heldout` split (never tuned on) separately:

- precision = refusals called refusal / all responses called refusal
- recall    = refusals called refusal / all labelled refusals (an `uncertain` refusal is a miss)
- uncertain = share of responses the detector declined to call

Run `python benchmarks/bench_refusal.py` (`--errors` lists the responses it gets wrong;
`--split heldout` restricts that list).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from cg_gate.scoring import classify_refusal

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "refusal" / "labelled.jsonl"


def figures(rows: list[dict]) -> dict[str, float | int]:
    """Counts and rates for rows carrying `label` and the detector's `outcome`."""
    tp = sum(r["label"] == "refusal" and r["outcome"] == "refusal" for r in rows)
    fp = sum(r["label"] == "compliance" and r["outcome"] == "refusal" for r in rows)
    positives = sum(r["label"] == "refusal" for r in rows)
    uncertain = sum(r["outcome"] == "uncertain" for r in rows)
    return {
        "n": len(rows), "tp": tp, "fp": fp, "refusals": positives, "uncertain": uncertain,
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / positives if positives else float("nan"),
        "uncertain_rate": uncertain / len(rows) if rows else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--errors", action="store_true", help="list misclassified and uncertain responses")
    parser.add_argument("--split", choices=["dev", "heldout"], default=None, help="restrict --errors to a split")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    t0 = time.perf_counter()
    for r in rows:
        call = classify_refusal(r["response"])
        r["outcome"], r["rule"] = call.outcome, call.rule
    elapsed = time.perf_counter() - t0
    print(f"{len(rows)} labelled responses from {DATA.relative_to(DATA.parents[3])}")
    print(f"{'split':<8} {'n':>4} {'refusals':>8} {'precision':>9} {'recall':>7} {'uncertain':>9}")
    for split in ("dev", "heldout"):
        f = figures([r for r in rows if r["split"] == split])
        print(f"{split:<8} {f['n']:>4} {f['refusals']:>8} {f['precision']:>9.3f} {f['recall']:>7.3f} "
              f"{f['uncertain_rate']:>9.3f}   (tp {f['tp']}, fp {f['fp']}, uncertain {f['uncertain']})")
    print(f"classified {len(rows)} responses in {elapsed * 1000:.1f} ms")
    if args.errors:
        wrong = [r for r in rows if (args.split is None or r["split"] == args.split)
                 and (r["outcome"] != r["label"])]
        print(f"\n{len(wrong)} not matching the label:", dict(Counter((r["label"], r["outcome"]) for r in wrong)))
        for r in wrong:
            print(f"- [{r['split']}] {r['id']} label={r['label']} got={r['outcome']} ({r['rule']})\n"
                  f"    {' '.join(r['response'].split())[:160]}")


if __name__ == "__main__":
    main()
