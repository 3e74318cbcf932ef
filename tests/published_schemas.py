"""Validation against the published SARIF 2.1.0 and JUnit schemas vendored in tests/data/schemas."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).parent / "data" / "schemas"


@cache
def _sarif_validator():
    import jsonschema

    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema)


@cache
def _junit_schema():
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(SCHEMAS / "junit-10.xsd")))


def sarif_problems(log: dict[str, Any]) -> list[str]:
    """Where `log` breaks the OASIS SARIF 2.1.0 schema, plus the one cross-reference the
    schema cannot state (a result's ruleIndex must point at its ruleId)."""
    problems = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in _sarif_validator().iter_errors(log)]
    for run in log.get("runs", []) if isinstance(log, dict) else []:
        rules = run.get("tool", {}).get("driver", {}).get("rules", [])
        for res in run.get("results", []):
            index = res.get("ruleIndex")
            if isinstance(index, int) and (index >= len(rules)
                                           or rules[index].get("id") != res.get("ruleId")):
                problems.append(f"result {res.get('ruleId')}: ruleIndex {index} points elsewhere")
    return problems


def junit_problems(data: bytes) -> list[str]:
    """Parse junit.xml bytes strictly (lxml) and list where it breaks Jenkins' junit-10.xsd."""
    from lxml import etree

    doc = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    schema = _junit_schema()
    if schema.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
