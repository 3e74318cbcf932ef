"""Benchmark: resolving and scoring the release policy's six families on a warm cache.

Target: family resolution for 6 families well under a second. The saliency is random with
the shape of the embedded default's (8,192 concepts, ~600 non-zeros per text): 6 × 84
exemplars and 640 reference texts, 300 suite items in 12 categories, a baseline, 1,000
bootstrap resamples. Prints the time of resolution (selection + held-out AUROC), of family
scoring with purity, attribution and scoped figures, and its ratio to scoring without
categories (the cost purity and attribution add), measured in one run.

    python benchmarks/bench_families.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_metrics import random_saliency  # noqa: E402

from cg_gate.families import BaselineSide, family_result, resolve_families  # noqa: E402
from cg_gate.metrics import compute  # noqa: E402
from cg_gate.policy import load_policy  # noqa: E402

K = 8192
POLICY = Path(__file__).resolve().parents[1] / "policies" / "default.yaml"


def best_of(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    policy = load_policy(POLICY)
    a = policy.analysis.to_settings()
    texts: dict[str, int] = {}

    def saliency_fn(batch: list[str]):
        rows = [texts.setdefault(t, len(texts)) for t in batch]
        return pool[rows]

    pool = random_saliency(6 * 84 + 640 + 10, K, 600, seed=0).tocsr()
    resolve = lambda: resolve_families(policy.concepts, labels=None, d_sae=K,  # noqa: E731
                                       exemplar_saliency=saliency_fn, max_density=a.max_density)
    families = resolve()
    t_resolve = best_of(resolve)

    n = 300
    sal = random_saliency(n, K, 600, seed=1)
    rng = np.random.default_rng(2)
    scores = (rng.random(n) < 0.7).astype(float)
    ids = [f"q{i}" for i in range(n)]
    suites = ["starter"] * n
    cats = [f"cat{i % 12}" for i in range(n)]
    metrics = compute(sal, suites, scores, n_boot=1)
    base = BaselineSide(saliency=sal, scores=np.clip(scores + 0.1, 0, 1), item_ids=ids,
                        suites=suites)

    def score(with_categories: bool) -> None:
        for key, spec in policy.concepts.items():
            family_result(families[key], metrics=metrics, saliency=sal, scores=scores,
                          item_ids=ids, suites=suites, n_boot=a.bootstrap_samples, baseline=base,
                          categories=cats if with_categories else None,
                          intended=["cat0"] if with_categories else ())

    t_plain = best_of(lambda: score(False))
    t_full = best_of(lambda: score(True))
    print(f"resolve 6 families (selection + held-out AUROC): {t_resolve:.3f} s")
    print(f"score 6 families, pooled only:                    {t_plain:.3f} s")
    print(f"score 6 families + purity, attribution, scoped:  {t_full:.3f} s")
    print(f"ratio full / pooled only: {t_full / t_plain:.2f}")
    print(f"resolution + scoring: {t_resolve + t_full:.3f} s (target: well under 1 s for resolution)")


if __name__ == "__main__":
    main()
