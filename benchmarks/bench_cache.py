"""Reading activation cache entries: cg-gate's raw layout against the same arrays as an .npz.

A warm run reads one entry per item and side. This writes `--entries` entries of a realistic
size (the default SAE's 8,192 features, `--nnz` non-zeros, d_in 576) to a temporary cache and
times `ActivationCache.get` over all of them (read, checksum, parse), then the same files'
arrays stored as an in-memory .npz and read back with `np.load`, and prints the ratio.

    python benchmarks/bench_cache.py [--entries 600] [--nnz 1500]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np

from cg_gate.record import ActivationCache, Entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=600)
    parser.add_argument("--nnz", type=int, default=1500)
    opts = parser.parse_args()
    rng = np.random.default_rng(0)
    entries = [
        Entry(indices=np.sort(rng.choice(8192, opts.nnz, replace=False)).astype(np.int32),
              values=rng.random(opts.nnz, dtype=np.float32), n_tokens=30, sse=1.0, sum_sq=2.0,
              sum_x=rng.random(576), l0_sum=900.0)
        for _ in range(opts.entries)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        cache = ActivationCache(Path(tmp) / "raw")
        keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(opts.entries)]
        for key, entry in zip(keys, entries):
            cache.put(key, entry)
        npz_dir = Path(tmp) / "npz"
        npz_dir.mkdir()
        for key, entry in zip(keys, entries):
            buf = io.BytesIO()
            np.savez(buf, indices=entry.indices, values=entry.values, sum_x=entry.sum_x,
                     scalars=np.array([entry.sse, entry.sum_sq, entry.l0_sum]))
            body = buf.getvalue()
            (npz_dir / key).write_bytes(hashlib.sha256(body).digest() + body)

        t0 = time.perf_counter()
        for key in keys:
            assert cache.get(key) is not None
        raw = time.perf_counter() - t0

        t0 = time.perf_counter()
        for key in keys:
            data = (npz_dir / key).read_bytes()
            assert hashlib.sha256(data[32:]).digest() == data[:32]
            with np.load(io.BytesIO(data[32:]), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            assert len(arrays) == 4
        npz = time.perf_counter() - t0

    print(f"{opts.entries} entries of {opts.nnz} non-zeros, read + verify + parse:")
    print(f"  raw layout (ActivationCache.get): {raw:.3f} s")
    print(f"  same arrays as .npz (np.load):    {npz:.3f} s")
    print(f"  raw / npz: {raw / npz:.3f}")


if __name__ == "__main__":
    main()
