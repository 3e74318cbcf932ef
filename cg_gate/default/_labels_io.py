"""Reading and writing cg-gate's labels JSONL (one feature per line).

A line: `{"id": int, "label": str, "examples": [str, ...], "top_tokens": [str, ...],
"density": float | null}`, plus optional fields that are kept as they are: `heuristic_label`,
`source`, and for the shipped default `category`, `category_lift`, `segment` (where the
feature is most over-represented in the training corpus) and `detection`, `detection_n`
(how well the label's tokens tell where it fires on held-out text; training/relabel.py).
Dead features carry the label "dead".
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from cg_gate.errors import ConfigError
from cg_gate.jsonl import jsonl_rows

_FIX = 'each line must be a JSON object with "id" (integer) and "label" (text)'


def read_label_rows(path: str | Path) -> list[dict[str, Any]]:
    """All rows of a cg-gate labels JSONL file, in file order, other fields kept."""
    src = Path(path)
    try:
        text = src.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("labels file not found", path=src, fix="check the path") from None
    except UnicodeDecodeError:
        raise ConfigError("labels file is not UTF-8 text", path=src, fix=_FIX) from None
    rows = []
    for number, row in jsonl_rows(text, src, error=ConfigError,
                                  message="line is not valid JSON ({msg})", fix=_FIX):
        if not isinstance(row, dict) or not isinstance(row.get("id"), int) or isinstance(row.get("id"), bool) \
                or not isinstance(row.get("label"), str):
            raise ConfigError("a labels line needs an integer 'id' and a text 'label'", path=src,
                              line=number, fix=_FIX)
        rows.append(row)
    return rows


def write_label_rows(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write rows as compact JSONL (UTF-8, no spaces) atomically: temp file in the same folder, then rename."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def import_neuronpedia(export: str | Path, out: str | Path) -> int:
    """Convert a Neuronpedia explanations export (JSONL/JSON, optionally gzip) to labels JSONL.

    `index` → `id`, `description` → `label` (the first explanation of an index wins);
    density is unknown (null). Returns the number of features written.
    """
    from cg_gate.families import load_labels

    labels = load_labels(export)
    if labels.format != "neuronpedia":
        raise ConfigError(
            f"not a Neuronpedia export (read as {labels.format}: no 'index'/'description' records)",
            path=export, fix="pass a Neuronpedia explanations export, or use this file directly as --labels",
        )
    rows = [
        {"id": fid, "label": label, "examples": labels.examples.get(fid, []), "top_tokens": [],
         "density": None, "source": "neuronpedia"}
        for fid, label in labels.items()
    ]
    write_label_rows(rows, out)
    return len(rows)
