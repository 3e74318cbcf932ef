"""Cold and warm timings of the embedded demo (DESIGN §6: cold < 5 min, warm < 3 s, no model).

Runs `cg-gate demo` in subprocesses on one fresh cache: cold, then warm with an edited
policy (a threshold changed), with and without the PDF, and prints the wall times and
whether a warm run loaded a model. Then splits the warm run: `cg-gate report` re-renders the warm record as
the PDF alone and as the other formats alone, and the pipeline's own wall time is read
from the record's manifest. The cold run's stage times (load, candidate, baseline, ...)
show where a cold demo spends its time.

    python benchmarks/bench_demo.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], cwd: Path) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cg_gate", *args], cwd=cwd, capture_output=True,
                          text=True)
    return time.perf_counter() - t0, proc.returncode, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="Work in this directory and keep it.")
    opts = parser.parse_args()
    work = opts.keep or Path(tempfile.mkdtemp(prefix="cg-gate-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "cache", ignore_errors=True)
    policy = (ROOT / "policies" / "default.yaml").read_text()
    edited = work / "edited.yaml"
    edited.write_text(policy.replace("version: 1.0.0", "version: 1.0.1-bench"))

    cold, rc1, out1 = _run(["demo", "--out", str(work / "cold"), "--cache-dir",
                            str(work / "cache"), "--no-progress"], work)
    warm, rc2, out2 = _run(["demo", "--out", str(work / "warm"), "--cache-dir",
                            str(work / "cache"), "--policy", str(edited), "--no-progress"], work)
    nopdf, rc3, out3 = _run(["demo", "--out", str(work / "warm-nopdf"), "--cache-dir",
                             str(work / "cache"), "--policy", str(edited), "--formats", "html,md,junit,sarif",
                             "--no-progress"], work)
    loaded = "loading model" in out2 or "loading model" in out3
    results = work / "warm" / "results.json"
    pdf_only, _, _ = _run(["report", str(results), "--format", "pdf", "--out", str(work / "pdf")], work)
    others, _, _ = _run(["report", str(results), "--format", "html,md,junit,sarif,json",
                         "--out", str(work / "others")], work)
    empty, _, _ = _run(["--version"], work)
    pipeline = json.loads(results.read_text())["manifest"]["wall_time_s"] if results.exists() else float("nan")
    cold_results = work / "cold" / "results.json"
    stages = json.loads(cold_results.read_text())["manifest"]["stage_times_s"] if cold_results.exists() else {}
    print(f"cold demo:  {cold:7.1f} s  (exit {rc1}; target < 300 s)")
    print(f"warm demo:  {warm:7.1f} s  (exit {rc2}; target < 3 s; model loaded: {loaded})")
    print(f"warm demo without the PDF: {nopdf:5.1f} s  (exit {rc3}; target < 3 s)")
    print(f"warm / cold: {warm / cold:.4f}")
    print("cold run, the record's stage times: "
          + ", ".join(f"{name} {secs:.1f} s" for name, secs in stages.items()))
    print("warm run, split (each a separate process):")
    print(f"  interpreter + CLI start (cg-gate --version): {empty:5.2f} s")
    print(f"  pipeline, cached activations (manifest):     {pipeline:5.2f} s")
    print(f"  cg-gate report --format pdf:                 {pdf_only:5.2f} s")
    print(f"  cg-gate report --format html,md,junit,sarif,json: {others:5.2f} s")
    if rc1 not in (0, 1) or rc2 not in (0, 1) or rc3 not in (0, 1):
        print(out1[-3000:], out2[-3000:], out3[-3000:], sep="\n----\n")
        sys.exit(1)
    if not opts.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
