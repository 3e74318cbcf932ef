"""Generation throughput: cg-gate's `generate()` against the best plain `model.generate` loop.

Both sides get the same prompts (the first N starter-suite items that need a response,
rendered with the model's chat template), the same batch size, the same cap on new
tokens and greedy decoding, on the same loaded model. The plain loop is the best
straightforward batched loop: batches ordered by prompt length, left padding, KV cache,
`inference_mode`, decoding until every sequence hit EOS or the cap. The two run
interleaved (A B A B ...) so a shared machine's changing load hits both alike; each
repetition prints items/s of both and their ratio, then the medians.

Responses are compared too: greedy decoding of the same prompts must give the same
texts on both sides, else the ratio would compare different work.

    python benchmarks/bench_generate.py [--items 96] [--batch-size 32] [--max-new-tokens 40]
                                        [--repeats 3] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def plain_generate(loaded, prompts: list[str], batch_size: int, max_new_tokens: int) -> list[str]:
    """The baseline: length-ordered left-padded batches through `model.generate`, greedy."""
    import torch

    tok = loaded.tokenizer
    order = sorted(range(len(prompts)), key=lambda i: len(tok(prompts[i], add_special_tokens=False)["input_ids"]))
    out: list[str] = [""] * len(prompts)
    with torch.inference_mode():
        for lo in range(0, len(order), batch_size):
            idx = order[lo:lo + batch_size]
            enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, padding_side="left",
                      add_special_tokens=False)
            ids = loaded.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                        temperature=None, top_p=None, top_k=None,
                                        pad_token_id=tok.pad_token_id, use_cache=True)
            for i, row in zip(idx, ids[:, enc["input_ids"].shape[1]:]):
                out[i] = tok.decode(row, skip_special_tokens=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=96, help="first N starter items that need a response")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3, help="A B pairs to run")
    ap.add_argument("--model-dir", type=Path, help="a local checkpoint instead of the embedded GGUF")
    args = ap.parse_args()

    import torch

    from cg_gate.models import ModelSpec, default_model_spec, generate, load_model
    from cg_gate.models._generate import _messages, _prompt_text
    from cg_gate.pipeline._side import needs_generation
    from cg_gate.record import GenerationSettings
    from cg_gate.suites import load_suite, starter_suite_path

    spec = (ModelSpec(id=str(args.model_dir), device="cpu") if args.model_dir
            else default_model_spec().model_copy(update={"device": "cpu"}))
    t0 = time.perf_counter()
    loaded = load_model(spec)
    load_s = time.perf_counter() - t0
    items = [it for it in load_suite(starter_suite_path()).items if needs_generation(it, candidate=False)]
    items = items[:args.items]
    settings = GenerationSettings(mode="generate", max_new_tokens=args.max_new_tokens,
                                  batch_size=args.batch_size)
    prompts = [_prompt_text(loaded.tokenizer, _messages(it, settings.system_prompt)) for it in items]
    print(f"model {loaded.info.architecture} ({loaded.info.dtype}, loaded in {load_s:.1f} s) | "
          f"{len(items)} items, batch {args.batch_size}, {args.max_new_tokens} new tokens, greedy | "
          f"torch threads {torch.get_num_threads()}")

    def project() -> list[str]:
        return generate(loaded, items, settings, cache=None, progress=False)

    def plain() -> list[str]:
        return plain_generate(loaded, prompts, args.batch_size, args.max_new_tokens)

    # Warm-up: allocator, kernels, first-call overheads (not timed).
    plain_generate(loaded, prompts[:4], 4, 4)

    rates: dict[str, list[float]] = {"cg-gate": [], "plain": []}
    texts: dict[str, list[str]] = {}
    print(f"{'rep':>3} {'cg-gate items/s':>16} {'plain items/s':>14} {'ratio':>6}")
    for rep in range(args.repeats):
        for name, fn in (("cg-gate", project), ("plain", plain)) if rep % 2 == 0 else \
                (("plain", plain), ("cg-gate", project)):
            t0 = time.perf_counter()
            texts[name] = fn()
            rates[name].append(len(items) / (time.perf_counter() - t0))
        a, b = rates["cg-gate"][-1], rates["plain"][-1]
        print(f"{rep + 1:>3} {a:>16.2f} {b:>14.2f} {a / b:>6.2f}", flush=True)
    ratios = [a / b for a, b in zip(rates["cg-gate"], rates["plain"])]
    same = sum(x == y for x, y in zip(texts["cg-gate"], texts["plain"]))
    print(f"median: cg-gate {statistics.median(rates['cg-gate']):.2f} items/s, "
          f"plain {statistics.median(rates['plain']):.2f} items/s, "
          f"ratio {statistics.median(ratios):.2f}x (cg-gate / plain)")
    print(f"identical responses: {same}/{len(items)}")


if __name__ == "__main__":
    main()
