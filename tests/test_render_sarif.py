"""results.sarif: valid against the OASIS SARIF 2.1.0 schema; levels, locations, escaping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cg_gate.render._sarif import render_sarif, repo_relative, sarif_log
from fixtures.make_run import make_run
from published_schemas import sarif_problems

def test_the_schema_check_catches_broken_logs():
    assert sarif_problems({"version": "2.0.0", "runs": []})
    bad = sarif_log(make_run())
    bad["runs"][0]["results"][0]["level"] = "fatal"
    del bad["runs"][0]["results"][0]["message"]
    bad["runs"][0]["results"][1]["ruleIndex"] = 0
    problems = sarif_problems(bad)
    assert len(problems) == 3, problems
    assert any("'fatal' is not one of" in p for p in problems)
    assert any("'message' is a required property" in p for p in problems)


def test_fixture_log_validates_against_the_sarif_2_1_0_schema():
    log = json.loads(render_sarif(make_run()))
    assert sarif_problems(log) == []
    assert log["$schema"].endswith("sarif-2.1.0.json")


def test_one_rule_descriptor_per_verdict_with_stable_ids_and_help():
    rules = sarif_log(make_run())["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [f"support-assistant-release/CG00{i}" for i in range(1, 9)]
    assert rules[2]["help"]["text"].startswith("Refusal must not regress against the baseline.")
    assert rules[1]["defaultConfiguration"]["level"] == "warning"  # severity warn


def test_tags_stay_unique_and_control_characters_become_visible():
    v = make_run().verdicts[2].model_copy(update={
        "tags": ["regression", "cg-gate", "a\x1b[31m", "a\x1b[31m"],
        "message": "lone \ud800 surrogate and \x00 NUL"})
    data = render_sarif(make_run(verdicts=[v]))
    log = json.loads(data)
    rule = log["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["properties"]["tags"] == ["cg-gate", "regression", "a\\x1b[31m"]
    assert log["runs"][0]["results"][0]["message"]["text"].endswith(
        "lone \\ud800 surrogate and \\x00 NUL")
    assert sarif_problems(log) == []


# Expected results for the fixture: failing/warning rules only, in policy order.
EXPECTED_RESULTS = [
    # (stable id, level, line)
    ("support-assistant-release/CG002", "warning", 23),  # warn, does not fail at fail_on=error
    ("support-assistant-release/CG003", "error", 25),    # enforced fail
    ("support-assistant-release/CG008", "warning", 45),  # audit-mode fail
]


def test_results_are_the_failing_rules_at_their_policy_lines():
    results = sarif_log(make_run())["runs"][0]["results"]
    got = [(r["ruleId"], r["level"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in results]
    assert got == EXPECTED_RESULTS
    for r in results:
        loc = r["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] == "policies/support-assistant.yaml"
        assert loc["region"]["startColumn"] == 5
        assert r["partialFingerprints"] == {"cgGateStableId/v1": r["ruleId"]}


def test_policy_source_overrides_the_recorded_path():
    results = sarif_log(make_run(), policy_source="./config/gate.yaml")["runs"][0]["results"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {"config/gate.yaml"}


@pytest.mark.parametrize("path, expected", [
    ("policies/a.yaml", "policies/a.yaml"),
    ("./policies/a.yaml", "policies/a.yaml"),
])
def test_repo_relative(path, expected):
    assert repo_relative(path) == expected


def test_absolute_path_under_root_is_made_relative(tmp_path):
    target = tmp_path / "policies" / "gate.yaml"
    assert repo_relative(str(target), root=tmp_path) == "policies/gate.yaml"
    outside = Path("/elsewhere/gate.yaml")
    assert repo_relative(str(outside), root=tmp_path) == "file:///elsewhere/gate.yaml"


def test_all_passing_run_has_no_results():
    full = make_run()
    log = sarif_log(make_run(verdicts=[full.verdicts[0], full.verdicts[3]]))
    assert log["runs"][0]["results"] == []
    assert sarif_problems(log) == []


def test_repo_relative_keeps_a_path_no_file_system_can_hold(tmp_path):
    # a lone surrogate cannot be encoded for the OS; the location still renders, marked
    assert repo_relative("/\ud800", root=tmp_path) == "file:///%EF%BF%BD"
    assert repo_relative("pol\udc80.yaml") == "pol\ufffd.yaml"
