"""`cg-gate policy validate|explain` through CliRunner, and the import budget."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from cg_gate.cli import cli

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: demo, version: 2.0.0, owner: gov}
concepts:
  refusal:
    title: Refusing harmful requests
    match:
      labels: ['(?i)refus']
rules:
  - {id: R1, concept: refusal, check: coverage, min_covered_fraction: 0.8, tags: [euai:annex-iv-2g]}
  - {id: R2, concept: refusal, check: performance, min: 0.6, severity: warn}
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_validate_good_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    res = invoke("policy", "validate", str(path))
    assert res.exit_code == 0, res.output
    assert "refusal" in res.output and "R1" in res.output and "R2" in res.output
    assert "valid (1 families, 2 rules, 0 waivers, 0 expired)" in res.output


def test_validate_shipped_default() -> None:
    res = invoke("policy", "validate", str(ROOT / "policies" / "default.yaml"))
    assert res.exit_code == 0, res.output
    assert "CG030" in res.output and "professional-boundaries" in res.output


def test_typo_key_exit_2_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("min: 0.6", "minimum: 0.6"))
    res = invoke("policy", "validate", str(path))
    assert res.exit_code == 2
    assert f"{path}:11:" in res.output
    assert "unknown key 'minimum'" in res.output and "Fix:" in res.output
    assert "Traceback" not in res.output


def test_unknown_concept_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("concept: refusal, check: performance",
                                        "concept: boundaries, check: performance"))
    res = invoke("policy", "validate", str(path))
    assert res.exit_code == 2
    assert f"{path}:11:" in res.output and "'boundaries' is not a declared family" in res.output


def test_expired_waiver_reported(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    waivers = write(tmp_path, """\
apiVersion: cg-gate/v1
kind: WaiverSet
waivers:
  - rule: R2
    reason: accepted for the pilot
    ticket: GOV-7
    approved_by: Ana
    expires: 2026-01-31
""", "w.yaml")
    args = ["policy", "validate", str(path), "--waivers", str(waivers)]
    res = invoke(*args, "--today", "2026-02-01")
    assert res.exit_code == 0
    assert f"{waivers}:4:" in res.output and "expired on 2026-01-31" in res.output
    assert "WAIVER-EXPIRED:R2" in res.output and "1 expired" in res.output
    res = invoke(*args, "--today", "2026-02-01", "--fail-on-expired")
    assert res.exit_code == 1
    res = invoke(*args, "--today", "2026-01-31", "--fail-on-expired")
    assert res.exit_code == 0 and "0 expired" in res.output


def test_explain_in_words(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    res = invoke("policy", "explain", str(path))
    assert res.exit_code == 0, res.output
    assert "R1: requires that at least 80% of family 'refusal' features are covered" in res.output
    assert "fails the build when violated" in res.output
    assert "fails only with --fail-on warn" in res.output
    assert "euai:annex-iv-2g" in res.output


def test_explain_with_a_run_says_how_each_family_resolved() -> None:
    root = Path(__file__).resolve().parents[1]
    res = invoke("policy", "explain", str(root / "policies" / "default.yaml"), "--results",
                 str(root / "tests" / "fixtures" / "results_v1.1.json"))
    assert res.exit_code == 0, res.output
    # the fixture's refusal family: 310 candidates, rejections by reason, held-out AUROC
    assert ("in this run: 4 members of 310 candidates; rejected 120 dense, 90 rare, "
            "80 unspecific, 15 imprecise, 3 beyond top k") in res.output
    assert "unspecific candidates fired as much on: over-refusal (50), reference (30)" in res.output
    assert "held-out AUROC 0.84 (20 held-out exemplars vs 160 negatives)" in res.output
    assert "purity: 70% of its saliency on refusal (judged)" in res.output
    assert "meant for items of refusal" in res.output


def test_missing_file_is_usage_error(tmp_path: Path) -> None:
    res = invoke("policy", "validate", str(tmp_path / "absent.yaml"))
    assert res.exit_code == 2


def test_import_budget_policy_validate() -> None:
    code = textwrap.dedent(f"""
        import sys, json
        from cg_gate.cli import main
        try:
            main(["policy", "validate", {str(ROOT / "policies" / "default.yaml")!r}])
        except SystemExit as exc:
            code = exc.code
        heavy = [m for m in ("torch", "transformers", "sae_lens", "scipy") if m in sys.modules]
        print(json.dumps({{"code": code, "heavy": heavy}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "heavy": []}, out.stderr


def test_json_schema_accepts_shipped_policy_and_rejects_typos() -> None:
    import jsonschema
    import yaml

    res = invoke("policy", "schema")
    assert res.exit_code == 0
    schema = json.loads(res.output)
    data = yaml.safe_load((ROOT / "policies" / "strict.yaml").read_text())
    data["waivers"] = [{"rule": "CG001", "reason": "r", "approved_by": "a",
                        "expires": "2030-01-01"}]
    jsonschema.validate(data, schema)
    data["rules"][0]["min_coverd_fraction"] = 0.5
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        assert "min_coverd_fraction" in exc.message
    else:
        raise AssertionError("a typo'd key passed the JSON Schema")
    res = invoke("policy", "schema", "--kind", "WaiverSet")
    assert res.exit_code == 0 and "WaiverSet" in res.output
