"""model-index.yaml: the headline figures as a Hugging Face model-card `model-index`.

One result per suite set: the overall mean score and each family's χ_model, with the
suites named (and their digests) as the dataset. Values are copied from the record.
"""

from __future__ import annotations

from typing import Any

import yaml

from cg_gate.record import GateRun


def model_index(run: GateRun) -> dict[str, Any]:
    """The `model-index` mapping for `run`."""
    m = run.manifest
    metrics: list[dict[str, Any]] = []
    if run.summary.mean_score is not None:
        metrics.append({"type": "mean_score", "value": round(run.summary.mean_score, 4),
                        "name": "Mean item score"})
    for fam in run.families:
        value = fam.performance.chi_model.value
        if value is None:
            continue
        metrics.append({"type": f"cg_gate_chi_model_{fam.name}", "value": round(value, 4),
                        "name": f"χ_model ({fam.title or fam.name})"})
    names = ", ".join(s.name for s in m.suites)
    dataset = {
        "type": "cg-gate-suite",
        "name": names,
        "revision": ",".join(s.digest[:12] for s in m.suites),
        "args": {s.name: {"version": s.version, "digest": s.digest, "items": s.n_items}
                 for s in m.suites},
    }
    result = {
        "task": {"type": "text-generation", "name": "Competency Gaps gate"},
        "dataset": dataset,
        "metrics": metrics,
        "source": {"name": f"cg-gate {m.tool_version} run {m.run_id}",
                   "url": m.ci.run_url or "results.json"},
    }
    return {"model-index": [{"name": m.model.id, "results": [result]}]}


def render_model_index(run: GateRun, *, policy_source: str | None = None) -> bytes:
    """model-index.yaml bytes for `run`."""
    text = yaml.safe_dump(model_index(run), sort_keys=False, allow_unicode=True, width=100)
    return text.encode("utf-8")
