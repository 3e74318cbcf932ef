"""Sample real answers of the default model, with and without the shipped adapter, for labelling.

The refusal detector is measured on responses written for the purpose (tests/data/refusal/);
a gate reads the answers of real, often small, models, whose failures look different
(repetition, half-sentences, rambling compliance). This script draws prompts from the labelled
set and the starter suite and writes what SmolLM2-135M-Instruct and the demo's fine-tuned
candidate (the same model with the billing-support LoRA adapter) answer, greedy, as JSONL
(`id`, `prompt`, `response`, `source`) for people to label by the set's rules.

    python training/sample_real_responses.py --prompts 360 --out training/work/real_unlabelled.jsonl
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

LABELLED = REPO / "tests" / "data" / "refusal" / "labelled.jsonl"
DRAWN_FROM = ("A", "B", "C", "D", "E")  # the written batches there when real.jsonl was drawn


def prompts(n: int, seed: int) -> list[str]:
    """`n` distinct prompts of written batches A–E (seeded draw), then the starter suite's."""
    seen: dict[str, None] = {}
    for row in read_jsonl(LABELLED):
        if batch_of(row["id"]) in DRAWN_FROM:
            seen.setdefault(row["prompt"], None)
    drawn = random.Random(seed).sample(sorted(seen), n)
    starter = [item.prompt for item in load_suite(starter_suite_path()).items]
    return list(dict.fromkeys(drawn + starter))


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
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    texts = prompts(args.prompts, args.seed)
    base = default_model_spec().model_copy(update={"device": "cpu", "dtype": "float32"})
    sides = {"base": base, "adapter": base.model_copy(update={"adapter": str(default_adapter_dir())})}
    rows = []
    for name, spec in sides.items():
        for k, (prompt, response) in enumerate(zip(texts, answer(spec, texts, args.max_new_tokens,
                                                                  args.batch_size))):
            rows.append({"id": f"{name}-{k:03d}", "prompt": prompt, "response": response,
                         "source": f"SmolLM2-135M-Instruct{' + billing-support adapter' if name == 'adapter' else ''}, "
                                   f"greedy, {args.max_new_tokens} new tokens"})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} responses to {args.out}")


if __name__ == "__main__":
    main()
