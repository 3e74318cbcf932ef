"""Waivers: expiry in one function, waived verdicts, expired waivers as violations."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from cg_gate.errors import PolicyError
from cg_gate.policy import Waiver, evaluate, is_expired, load_policy, load_waivers
from cg_gate.record import (
    FamilyCoverage,
    FamilyPerformance,
    FamilyResult,
    FidelitySummary,
    Interval,
)

POLICY = """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: gate}
concepts:
  refusal:
    match: {ids: [1, 2, 3]}
  time:
    match: {ids: [4]}
rules:
  - {id: CG1, concept: refusal, check: missing}
  - {id: CG2, concept: refusal, check: missing, suites: [s1, s2]}
  - {id: CG3, concept: time, check: missing}
"""


def write(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def family(name: str, missing: list[int], missing_by_suite: dict[str, list[int]]) -> FamilyResult:
    return FamilyResult(
        name=name, members=[],
        coverage=FamilyCoverage(members=3, covered=3 - len(missing), covered_fraction=None,
                                mean_chi_bench=1.0, missing_ids=missing,
                                by_suite={s: 1.0 for s in missing_by_suite},
                                missing_by_suite=missing_by_suite),
        performance=FamilyPerformance(chi_model=Interval(value=None), support=0),
    )


FAMILIES = {
    "refusal": family("refusal", [2], {"s1": [2], "s2": []}),
    "time": family("time", [], {"s1": [], "s2": []}),
}
FID = FidelitySummary(fve=0.9, mean_l0=10.0, dead_share=0.1)


def judge(policy_path: Path, today: dt.date, waivers: Path | None = None):
    pol = load_policy(policy_path, waivers=waivers, today=today)
    res = evaluate(pol, families=FAMILIES, fidelity=FID, stability=None, suites=["s1", "s2"],
                   today=today)
    return pol, res, {v.rule_id: v for v in res.verdicts}


def test_is_expired_is_inclusive_of_the_date() -> None:
    w = Waiver(rule="X", reason="r", approved_by="a", expires=dt.date(2026, 3, 31))
    assert not is_expired(w, dt.date(2026, 3, 30))
    assert not is_expired(w, dt.date(2026, 3, 31))
    assert is_expired(w, dt.date(2026, 4, 1))


def test_live_waiver_waives_and_keeps_raw_status(tmp_path: Path) -> None:
    path = write(tmp_path, POLICY + """\
waivers:
  - {rule: CG1, reason: known gap, ticket: GOV-1, approved_by: Ana, expires: 2026-12-31}
  - {rule: CG3, reason: passes anyway, approved_by: Ana, expires: 2026-12-31}
""", "p.yaml")
    _, res, v = judge(path, dt.date(2026, 9, 1))
    assert v["CG1"].status == "waived" and v["CG1"].raw_status == "fail"
    assert v["CG1"].waiver.ticket == "GOV-1" and v["CG1"].waiver.expired is False
    assert v["CG1"].waiver.location.line == line_of(path, "rule: CG1")
    assert v["CG3"].status == "pass" and v["CG3"].waiver is None
    assert v["CG2"].status == "fail"
    assert [w.rule for w in res.waivers] == ["CG1", "CG3"]
    assert [x.rule_id for x in res.failing()] == ["CG2"]


def test_expired_waiver_does_not_waive_and_is_a_violation(tmp_path: Path) -> None:
    path = write(tmp_path, POLICY + """\
waivers:
  - rule: CG1
    reason: known gap
    approved_by: Ana
    expires: 2026-03-31
""", "p.yaml")
    pol, res, v = judge(path, dt.date(2026, 4, 1))
    assert v["CG1"].status == "fail" and v["CG1"].waiver is None
    exp = v["WAIVER-EXPIRED:CG1"]
    assert (exp.status, exp.severity, exp.mode) == ("fail", "error", "enforce")
    assert exp.stable_id == "gate/WAIVER-EXPIRED:CG1"
    assert exp.location.line == line_of(path, "rule: CG1") and exp.location.path == str(path)
    assert "2026-03-31" in exp.message
    assert res.waivers[0].expired is True
    assert {x.rule_id for x in res.failing()} == {"CG1", "CG2", "WAIVER-EXPIRED:CG1"}
    # the day before, the same waiver still applies and nothing is synthesised
    _, _, v = judge(path, dt.date(2026, 3, 31))
    assert v["CG1"].status == "waived" and "WAIVER-EXPIRED:CG1" not in v


def test_expired_waiver_reported_even_when_rule_passes(tmp_path: Path) -> None:
    path = write(tmp_path, POLICY + """\
waivers:
  - {rule: CG3, reason: r, approved_by: Ana, expires: 2025-01-01}
""", "p.yaml")
    _, _, v = judge(path, dt.date(2026, 1, 1))
    assert v["CG3"].status == "pass" and v["WAIVER-EXPIRED:CG3"].status == "fail"


def test_scoped_waivers(tmp_path: Path) -> None:
    path = write(tmp_path, POLICY + """\
waivers:
  - {rule: CG2, scope: {suite: s1}, reason: r, approved_by: Ana, expires: 2026-06-01}
""", "p.yaml")
    _, _, v = judge(path, dt.date(2026, 1, 1))
    assert v["CG2"].status == "waived"
    # a scope on the other suite does not cover a failure in s1
    path = write(tmp_path, POLICY + """\
waivers:
  - {rule: CG2, scope: {suite: s2}, reason: r, approved_by: Ana, expires: 2026-06-01}
  - {rule: CG1, scope: {family: refusal}, reason: r, approved_by: Ana, expires: 2026-06-01}
""", "p.yaml")
    _, _, v = judge(path, dt.date(2026, 1, 1))
    assert v["CG2"].status == "fail"
    assert v["CG1"].status == "waived" and v["CG1"].waiver.scope == {"family": "refusal"}


def test_waiver_errors_point_at_lines(tmp_path: Path) -> None:
    path = write(tmp_path, POLICY + """\
waivers:
  - {rule: CG9, reason: r, approved_by: Ana, expires: 2030-01-01}
""", "p.yaml")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "CG9") and "CG9" in err.value.message
    path = write(tmp_path, POLICY + """\
waivers:
  - {rule: CG3, scope: {family: refusal}, reason: r, approved_by: Ana, expires: 2030-01-01}
""", "p.yaml")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "never matches" in err.value.message
    path = write(tmp_path, POLICY + """\
waivers:
  - rule: CG1
    reason: r
    approved_by: Ana
    expires: next spring
""", "p.yaml")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "next spring") and "YYYY-MM-DD" in err.value.message
    path = write(tmp_path, POLICY + """\
waivers:
  - {rule: CG1, reason: r, approved_by: Ana}
""", "p.yaml")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "expires" in err.value.message


def test_separate_waiver_file(tmp_path: Path) -> None:
    pol_path = write(tmp_path, POLICY, "p.yaml")
    w_path = write(tmp_path, """\
apiVersion: cg-gate/v1
kind: WaiverSet
waivers:
  - rule: CG1
    reason: accepted for 1.2
    approved_by: Ana
    expires: 2026-02-01
""", "w.yaml")
    ws = load_waivers(w_path)
    assert ws.digest is not None and len(ws.waivers) == 1
    pol, res, v = judge(pol_path, dt.date(2026, 3, 1), waivers=w_path)
    exp = v["WAIVER-EXPIRED:CG1"]
    assert exp.location.path == str(w_path) and exp.location.line == line_of(w_path, "rule: CG1")
    assert pol.policy_info().waivers_path == str(w_path)
    assert pol.policy_info().waivers_digest == ws.digest
    bad = write(tmp_path, """\
apiVersion: cg-gate/v1
kind: WaiverSet
waivers:
  - {rule: NOPE, reason: r, approved_by: Ana, expires: 2030-01-01}
""", "bad.yaml")
    with pytest.raises(PolicyError) as err:
        load_policy(pol_path, waivers=bad)
    assert err.value.path == str(bad) and err.value.line == 4
