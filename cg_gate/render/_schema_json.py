"""The JSON Schema of results.json, generated from the `GateRun` model.

The committed copy lives at `cg_gate/data/schema/results.schema.json`; a test checks it
equals the generated one, so schema changes are deliberate. Regenerate it with
`python -m cg_gate.render._schema_json`.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from cg_gate.record import SCHEMA_VERSION, GateRun
from cg_gate.render._env import SCHEMA_PATH

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = f"urn:cg-gate:results:{SCHEMA_VERSION}"


def results_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a results.json record of the current schema version."""
    schema = GateRun.model_json_schema()
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": SCHEMA_ID, **schema}


def results_schema_text() -> str:
    """The schema as the committed file's text."""
    return json.dumps(results_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_results_schema() -> None:
    """Rewrite the committed schema file from the model."""
    from cg_gate.record import atomic_write_text

    atomic_write_text(SCHEMA_PATH, results_schema_text())


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    write_results_schema()
    sys.stdout.write(f"wrote {SCHEMA_PATH}\n")
