"""Sample real answers of the default model, with and without the shipped adapter, for labelling.

The refusal detector is measured on responses written for the purpose (tests/data/refusal/);
a gate reads the answers of real, often small, models, whose failures look different
(repetition, half-sentences, rambling compliance). This script draws prompts from the labelled
set and the starter suite and writes what SmolLM2-135M-Instruct and the demo's fine-tuned
candidate (the same model with the billing-support LoRA adapter) answer, greedy, as JSONL
(`id`, `prompt`, `response`, `source`) to be labelled by the set's rules.

    python training/sample_real_responses.py --prompts 360 --out training/work/real_unlabelled.jsonl

A second set, on requests the first did not use (batches A–G), without the starter suite:

    python training/sample_real_responses.py --prompts 300 --batches ABCDEFG --no-starter \
        --exclude tests/data/refusal/real.jsonl --id-prefix s --out training/work/real2_unlabelled.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from _common import REPO, read_jsonl
from train_refusal import batch_of

from cg_gate.default import default_adapter_dir
from cg_gate.models import ModelSpec, default_model_spec, load_model
from cg_gate.models._generate import _generate_texts, _length_order, _prompt_text
from cg_gate.suites import load_suite, starter_suite_path

WRITTEN = [REPO / "tests" / "data" / "refusal" / n for n in ("labelled.jsonl", "heldout_g.jsonl")]


def prompts(n: int, seed: int, *, batches: str = "ABCDE", starter: bool = True,
            exclude: frozenset[str] = frozenset()) -> list[str]:
    """`n` distinct requests of the written `batches` (seeded draw; none of `exclude`), then
    the starter suite's (with `starter`). The defaults are how real.jsonl was drawn."""
    seen: dict[str, None] = {}
    for path in WRITTEN:
        for row in read_jsonl(path):
            if batch_of(row["id"]) in batches and row["prompt"] not in exclude:
                seen.setdefault(row["prompt"], None)
    drawn = random.Random(seed).sample(sorted(seen), n)
    more = [item.prompt for item in load_suite(starter_suite_path()).items] if starter else []
    return list(dict.fromkeys(drawn + more))


def answer(spec: ModelSpec, texts: list[str], max_new_tokens: int, batch: int) -> list[str]:
    loaded = load_model(spec)
    chats = [_prompt_text(loaded.tokenizer, [{"role": "user", "content": t}]) for t in texts]
    order = _length_order(loaded.tokenizer, chats)
    out: dict[int, str] = {}
    for lo in range(0, len(order), batch):
        idx = order[lo:lo + batch]
        for i, text in zip(idx, _generate_texts(loaded, [chats[i] for i in idx], max_new_tokens=max_new_tokens,
                                                temperature=0.0, top_p=1.0, seed=0)):
            out[i] = text.strip()
        print(f"{spec.adapter and 'adapter' or 'base'}: {len(out)}/{len(texts)}", flush=True)
    return [out[i] for i in range(len(texts))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=360)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", default="ABCDE", help="written batches to draw requests from")
    parser.add_argument("--no-starter", action="store_true", help="leave out the starter suite's requests")
    parser.add_argument("--exclude", type=Path, nargs="*", default=[],
                        help="JSONL files whose requests are not drawn again")
    parser.add_argument("--id-prefix", default="", help="prefix of the ids: s → s-base-000")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    exclude = frozenset(row["prompt"] for path in args.exclude for row in read_jsonl(path))
    texts = prompts(args.prompts, args.seed, batches=args.batches, starter=not args.no_starter,
                    exclude=exclude)
    base = default_model_spec().model_copy(update={"device": "cpu", "dtype": "float32"})
    sides = {"base": base, "adapter": base.model_copy(update={"adapter": str(default_adapter_dir())})}
    rows = []
    for name, spec in sides.items():
        for k, (prompt, response) in enumerate(zip(texts, answer(spec, texts, args.max_new_tokens,
                                                                  args.batch_size))):
            rows.append({"id": f"{args.id_prefix}-{name}-{k:03d}" if args.id_prefix else f"{name}-{k:03d}",
                         "prompt": prompt, "response": response,
                         "source": f"SmolLM2-135M-Instruct{' + billing-support adapter' if name == 'adapter' else ''}, "
                                   f"greedy, {args.max_new_tokens} new tokens"})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} responses to {args.out}")


if __name__ == "__main__":
    main()
