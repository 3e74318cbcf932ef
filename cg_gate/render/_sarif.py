"""results.sarif (SARIF 2.1.0): failing rules as code-scanning alerts on the policy file.

One rule descriptor per verdict (id = the stable id `policy-name/rule-id`), one result per
rule whose status is fail, error or warn: level `error` when it fails the build, `warning`
otherwise. Each result sits at the rule's line in the policy file, with a path relative to
the repository root, and carries the stable id as its partial fingerprint so code scanning
tracks the finding across runs.

The log validates against the OASIS SARIF 2.1.0 schema (the tests check it) for any record:
tags are de-duplicated (the schema wants unique items), and every string is passed through
`visible_controls`, so control characters and lone surrogates, which JSON could escape but
UTF-8 cannot encode, are written out as visible escapes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from cg_gate.record import GateRun, Verdict
from cg_gate.render._format import visible_controls

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

FINGERPRINT_KEY = "cgGateStableId/v1"
REPORTED = ("fail", "error", "warn")

_DEFAULT_LEVEL = {"error": "error", "warn": "warning", "info": "note"}
_SURROGATE = re.compile("[\ud800-\udfff]")


def repo_relative(path: str, root: Path | None = None) -> str:
    """`path` as a forward-slash URI relative to the repository root (cwd by default).

    A lone surrogate (a file name no file system can hold, e.g. from a hand-edited record)
    becomes U+FFFD, so the path can still be resolved and written."""
    path = _SURROGATE.sub("\ufffd", path)
    p = Path(path)
    if p.is_absolute():
        base = (root or Path.cwd()).resolve()
        try:
            p = p.resolve().relative_to(base)
        except ValueError:
            return p.as_uri()
    text = PurePosixPath(*p.parts).as_posix() if p.parts else str(p)
    return text.replace(os.sep, "/").removeprefix("./")


def _uri(v: Verdict, run: GateRun, policy_source: str | None) -> str | None:
    if v.location is None:
        return None
    policy = run.manifest.policy
    if policy_source and policy is not None and v.location.path == policy.path:
        return repo_relative(policy_source)
    return repo_relative(v.location.path)


def _descriptor(v: Verdict) -> dict[str, Any]:
    help_text = (f"{v.title}. Check: {v.check}"
                 + (f" on concept family '{v.concept}'" if v.concept else "")
                 + f"; severity {v.severity}, mode {v.mode}. Defined in the cg-gate policy"
                 + (f" at {v.location.path}:{v.location.line}." if v.location else "."))
    descriptor: dict[str, Any] = {
        "id": v.stable_id,
        "name": v.rule_id,
        "shortDescription": {"text": v.title},
        "fullDescription": {"text": help_text},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": _DEFAULT_LEVEL[v.severity]},
        # unique after cleaning, as the schema wants
        "properties": {"tags": list(dict.fromkeys(
            visible_controls(t) for t in ["cg-gate", v.check, *v.tags]))},
    }
    return descriptor


def _result(v: Verdict, index: int, run: GateRun, policy_source: str | None) -> dict[str, Any]:
    level = "error" if v.fails(run.summary.fail_on) else "warning"
    result: dict[str, Any] = {
        "ruleId": v.stable_id,
        "ruleIndex": index,
        "level": level,
        "message": {"text": f"{v.rule_id} {v.title}: {v.message}"},
        "partialFingerprints": {FINGERPRINT_KEY: v.stable_id},
        "properties": {"status": v.status, "mode": v.mode, "evidence": v.evidence},
    }
    uri = _uri(v, run, policy_source)
    if uri is not None:
        result["locations"] = [{
            "physicalLocation": {
                "artifactLocation": {"uri": uri, "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": v.location.line, "startColumn": v.location.column},
            }
        }]
    return result


def sarif_log(run: GateRun, *, policy_source: str | None = None) -> dict[str, Any]:
    """The SARIF log as a dict."""
    m = run.manifest
    rules = [_descriptor(v) for v in run.verdicts]
    results = [_result(v, i, run, policy_source) for i, v in enumerate(run.verdicts)
               if v.status in REPORTED]
    sarif_run: dict[str, Any] = {
        "tool": {"driver": {"name": "cg-gate", "version": m.tool_version,
                            "rules": rules}},
        "automationDetails": {"id": f"cg-gate/{m.policy.name if m.policy else 'metrics'}/{m.run_id}"},
        "results": results,
        "properties": {"schema_version": run.schema_version, "run_id": m.run_id,
                       "verdict": run.summary.verdict, "model_digest": m.model.digest},
    }
    if m.git.sha and m.git.remote:
        provenance: dict[str, Any] = {"repositoryUri": m.git.remote, "revisionId": m.git.sha}
        if m.git.branch:
            provenance["branch"] = m.git.branch
        sarif_run["versionControlProvenance"] = [provenance]
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [sarif_run]}


def _clean(value: Any) -> Any:
    """`value` with `visible_controls` applied to every string in it, keys included."""
    if isinstance(value, str):
        return visible_controls(value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def render_sarif(run: GateRun, *, policy_source: str | None = None) -> bytes:
    """results.sarif bytes for `run`."""
    log = _clean(sarif_log(run, policy_source=policy_source))
    text = json.dumps(log, indent=2, ensure_ascii=False)
    return (text + "\n").encode("utf-8")
