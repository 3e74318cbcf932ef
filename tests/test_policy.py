"""Policy schema, loader (line numbers), cross-checks, and rule evaluation."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from cg_gate.errors import PolicyError
from cg_gate.policy import evaluate, load_policy
from cg_gate.record import FamilyResult
from cg_gate.record import (
    FamilyCoverage,
    FamilyPerformance,
    FamilyRegression,
    FidelitySummary,
    Interval,
    StabilitySummary,
)

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
TODAY = dt.date(2026, 6, 1)

HEAD = """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: t}
concepts:
  refusal:
    match:
      labels: ['(?i)refus']
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(path.read_text().splitlines(), start=1) if needle in line]
    return hits[nth - 1]


# --------------------------------------------------------------------------- shipped policies


@pytest.mark.parametrize("name", ["default.yaml", "strict.yaml", "audit.yaml"])
def test_shipped_policies_validate(name: str) -> None:
    path = POLICIES / name
    pol = load_policy(path)
    assert pol.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert set(pol.concepts) == {"refusal", "professional-boundaries", "over-refusal",
                                 "uncertainty", "time", "arithmetic"}
    for key, spec in pol.concepts.items():
        ex = spec.match.exemplars
        assert ex is not None and ex.resolved_path is not None and ex.resolved_path.is_file()
        n = sum(1 for line in ex.resolved_path.read_text().splitlines() if line.strip())
        assert n >= 50, key  # large enough to mean something, split fit/held-out
    checks = {r.check for r in pol.rules}
    assert {"coverage", "missing", "performance", "regression", "fidelity"} <= checks
    fid = [r for r in pol.rules if r.check == "fidelity"]
    assert fid and fid[0].min_fve >= 0.7
    assert any("euai:annex-iv-2g" in r.tags for r in pol.rules)


def test_shipped_policy_flavours() -> None:
    default = load_policy(POLICIES / "default.yaml")
    strict = load_policy(POLICIES / "strict.yaml")
    audit = load_policy(POLICIES / "audit.yaml")
    assert all(r.mode == "audit" for r in audit.rules)
    assert [r.id for r in audit.rules] == [r.id for r in default.rules]
    assert any(r.check == "stability" for r in strict.rules)
    by_id = {r.id: r for r in default.rules}
    for rule in strict.rules:
        if rule.id in by_id and rule.check == "coverage":
            assert rule.min_covered_fraction > by_id[rule.id].min_covered_fraction
        if rule.id in by_id and rule.check == "regression":
            assert rule.max_drop <= by_id[rule.id].max_drop
    n_error = lambda p: sum(r.severity == "error" for r in p.rules)  # noqa: E731
    assert n_error(strict) > n_error(default)


def test_rules_remember_their_line() -> None:
    path = POLICIES / "default.yaml"
    pol = load_policy(path)
    rule = pol.rule("CG030")
    assert rule.location.line == line_of(path, "- id: CG030")
    assert rule.location.path == str(path)
    assert pol.concepts["time"].location.line == line_of(path, "  time:") + 1


# --------------------------------------------------------------------------- errors with lines


def test_typo_key_names_line_column_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
rules:
  - id: R1
    concept: refusal
    check: coverage
    min_coverd_fraction: 0.8
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    e = err.value
    assert (e.line, e.column) == (line_of(path, "min_coverd_fraction"), 5)
    assert "min_coverd_fraction" in e.message and "R1" in e.message
    assert "min_covered_fraction" in e.fix
    assert e.path == str(path)


def test_unknown_concept_points_at_concept(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
rules:
  - {id: R1, concept: refusl, check: missing}
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "refusl")
    assert "refusl" in err.value.message and "refusal" in err.value.fix


def test_duplicate_rule_id(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
rules:
  - {id: R1, concept: refusal, check: missing}
  - {id: R2, concept: refusal, check: missing}
  - {id: R1, concept: refusal, check: overrepresented}
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "overrepresented")
    assert f"line {line_of(path, 'id: R1')}" in err.value.message


def test_bad_regex_points_at_regex_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: t}
concepts:
  refusal:
    match:
      labels:
        - '(?i)ok'
        - 'broken(['
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert (err.value.line, err.value.column) == (line_of(path, "broken"), 11)
    assert "does not compile" in err.value.message


def test_wrong_value_type_and_enum(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
rules:
  - id: R1
    concept: refusal
    check: performance
    min: high
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "min: high")
    assert "number" in err.value.message
    path = write(tmp_path, HEAD + """\
rules:
  - id: R1
    concept: refusal
    check: missing
    severity: fatal
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "fatal")
    assert "'error', 'warn' or 'info'" in err.value.message


def test_unknown_check_and_missing_field(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
rules:
  - id: R1
    concept: refusal
    check: covrage
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "covrage")
    assert "coverage" in err.value.fix
    path = write(tmp_path, HEAD + """\
rules:
  - id: R1
    concept: refusal
    check: regression
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "- id: R1")
    assert "max_drop" in err.value.message


def test_family_needs_a_selector_and_coverage_a_threshold(tmp_path: Path) -> None:
    path = write(tmp_path, """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: t}
concepts:
  refusal:
    title: nothing selects me
    match: {}
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "match: {}")
    assert "at least one selector" in err.value.message
    path = write(tmp_path, HEAD + "rules:\n  - {id: R1, concept: refusal, check: coverage}\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "min_covered_fraction" in err.value.message


def test_duplicate_yaml_key_and_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
rules:
  - id: R1
    concept: refusal
    check: missing
    check: coverage
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "check: coverage")
    assert "duplicate key 'check'" in err.value.message
    path = write(tmp_path, "apiVersion: cg-gate/v1\nkind: GatePolicy\nmetadata: {name: t\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "YAML syntax" in err.value.message and err.value.line is not None


def test_exemplar_paths(tmp_path: Path) -> None:
    (tmp_path / "ex").mkdir()
    (tmp_path / "ex" / "mine.jsonl").write_text(json.dumps({"text": "hello"}) + "\n")
    path = write(tmp_path, """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: t}
concepts:
  a:
    match:
      exemplars: {path: ex/mine.jsonl, min_ratio: 2}
  b:
    match:
      exemplars: {path: "pkg:exemplars/time.jsonl"}
""")
    pol = load_policy(path)
    assert pol.concepts["a"].match.exemplars.resolved_path == tmp_path / "ex" / "mine.jsonl"
    b = pol.concepts["b"].match.exemplars
    assert b.resolved_path.name == "time.jsonl" and b.resolved_path.parent.name == "exemplars"
    assert b.resolved_reference.name == "neutral.jsonl"
    path = write(tmp_path, """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: t}
concepts:
  a:
    match:
      exemplars: {path: ex/absent.jsonl}
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "absent.jsonl")
    assert "pkg:" in err.value.fix


def test_exemplar_file_errors_name_its_line(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"text": \n')
    path = write(tmp_path, """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: t}
concepts:
  a:
    match:
      exemplars: {path: bad.jsonl}
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.path == str(tmp_path / "bad.jsonl") and err.value.line == 2


def test_cross_checks(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
analysis: {bootstrap: {confidence: 0.9}}
rules:
  - {id: R1, concept: refusal, check: performance, min: 0.5, confidence: 0.95}
""")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert err.value.line == line_of(path, "confidence: 0.95")
    path = write(tmp_path, HEAD + "rules:\n  - {id: F1, check: fidelity, min_fve: 0.7, concept: refusal}\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "fidelity" in err.value.message
    path = write(tmp_path, HEAD.replace("GatePolicy", "WaiverSet"))
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "--waivers" in err.value.fix


def test_defaults_and_generated_title(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
rules:
  - {id: R1, concept: refusal, check: coverage, min_covered_fraction: 0.75}
  - {id: R2, concept: refusal, check: overrepresented}
""")
    pol = load_policy(path)
    r1, r2 = pol.rules
    assert r1.mode == "enforce" and r1.severity == "error" and r1.tags == []
    assert "75%" in r1.title and "refusal" in r1.title
    assert r2.max_over_fraction == 0.0
    assert pol.analysis.min_support == 20 and pol.analysis.bootstrap.samples == 1000
    settings = pol.analysis.to_settings()
    assert settings.bootstrap_samples == 1000 and settings.confidence == 0.95
    info = pol.policy_info()
    assert info.name == "t" and info.digest == hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- evaluation


def fam(name: str = "refusal", *, members: int = 10, covered: int = 9, mean_chi: float = 1.2,
        over: int = 0, chi: float | None = 0.8, low: float | None = 0.7,
        high: float | None = 0.9, support: int = 40, regression: FamilyRegression | None = None,
        by_suite: dict | None = None, missing_by_suite: dict | None = None,
        mean_by_suite: dict | None = None, stability_std: float | None = None) -> FamilyResult:
    missing = list(range(covered, members))
    return FamilyResult(
        name=name, members=[],
        coverage=FamilyCoverage(
            members=members, covered=covered,
            covered_fraction=covered / members if members else None,
            mean_chi_bench=mean_chi if members else None, missing_ids=missing,
            over_ids=list(range(over)), by_suite=by_suite or {},
            missing_by_suite=missing_by_suite or {}, mean_chi_bench_by_suite=mean_by_suite or {}),
        performance=FamilyPerformance(chi_model=Interval(value=chi, low=low, high=high),
                                      support=support, stability_std=stability_std),
        regression=regression,
    )


FID = FidelitySummary(fve=0.8, mean_l0=40.0, dead_share=0.3)


def run_rules(tmp_path: Path, rules: str, families: dict, *, fidelity: FidelitySummary = FID,
              stability: StabilitySummary | None = None, suites=("s1", "s2")):
    pol = load_policy(write(tmp_path, HEAD + "rules:\n" + textwrap.dedent(rules)))
    res = evaluate(pol, families=families, fidelity=fidelity, stability=stability,
                   suites=list(suites), today=TODAY)
    return pol, {v.rule_id: v for v in res.verdicts}, res


def test_coverage_and_severity_mapping(tmp_path: Path) -> None:
    rules = """\
  - {id: E, concept: refusal, check: coverage, min_covered_fraction: 0.95, severity: error}
  - {id: W, concept: refusal, check: coverage, min_covered_fraction: 0.95, severity: warn}
  - {id: I, concept: refusal, check: coverage, min_covered_fraction: 0.95, severity: info}
  - {id: P, concept: refusal, check: coverage, min_covered_fraction: 0.9, min_mean_chi_bench: 1.0}
  - {id: M, concept: refusal, check: coverage, min_mean_chi_bench: 1.5, tags: [x]}
"""
    pol, v, res = run_rules(tmp_path, rules, {"refusal": fam(covered=9, mean_chi=1.2)})
    assert v["E"].status == "fail" and v["E"].raw_status == "fail"
    assert v["W"].status == "warn"
    assert v["I"].status == "pass" and v["I"].evidence["violated"] is True
    assert v["I"].message.startswith("note:")
    assert v["P"].status == "pass" and "violated" not in v["P"].evidence
    assert v["M"].status == "fail" and v["M"].tags == ["x"]
    assert "90%" in v["E"].message and "95%" in v["E"].message
    assert v["E"].stable_id == "t/E" and v["E"].evidence["covered_fraction"] == 0.9
    assert v["E"].location.line == pol.rule("E").location.line
    assert res.exit_code() == 1 and res.exit_code("warn") == 1
    assert [x.rule_id for x in res.failing()] == ["E", "M"]


def test_empty_family_never_passes(tmp_path: Path) -> None:
    rules = """\
  - {id: C, concept: refusal, check: coverage, min_covered_fraction: 0.0}
  - {id: M, concept: refusal, check: missing}
  - {id: P, concept: refusal, check: performance, min: 0.0}
  - {id: R, concept: refusal, check: regression, max_drop: 0.5}
  - {id: O, concept: refusal, check: overrepresented}
  - {id: S, concept: refusal, check: stability, max_std: 1.0}
"""
    empty = fam(members=0, covered=0, chi=None, low=None, high=None, support=0)
    _, v, _ = run_rules(tmp_path, rules, {"refusal": empty})
    assert v["C"].status == "fail" and v["M"].status == "fail"
    assert "no features" in v["C"].message
    for rid in "PROS":
        assert v[rid].status == "insufficient_data", rid


def test_missing_rule(tmp_path: Path) -> None:
    rules = """\
  - {id: A, concept: refusal, check: missing}
  - {id: B, concept: refusal, check: missing, suites: [s1]}
  - {id: C, concept: refusal, check: missing, suites: [s2]}
  - {id: D, concept: refusal, check: missing, suites: [nope]}
"""
    f = fam(covered=10, by_suite={"s1": 1.0, "s2": 0.8},
            missing_by_suite={"s1": [], "s2": [3, 7]})
    _, v, _ = run_rules(tmp_path, rules, {"refusal": f})
    assert v["A"].status == "pass"
    assert v["B"].status == "pass"
    assert v["C"].status == "fail" and v["C"].evidence["failing_suites"] == ["s2"]
    assert v["C"].evidence["missing_by_suite"] == {"s2": [3, 7]}
    assert v["D"].status == "error" and "nope" in v["D"].message
    _, v, _ = run_rules(tmp_path, "  - {id: A, concept: refusal, check: missing}\n",
                        {"refusal": fam(covered=8)})
    assert v["A"].status == "fail" and v["A"].evidence["missing_ids"] == [8, 9]


def test_coverage_by_suite(tmp_path: Path) -> None:
    rules = """\
  - {id: A, concept: refusal, check: coverage, min_covered_fraction: 0.7, suites: [s1, s2]}
  - {id: B, concept: refusal, check: coverage, min_mean_chi_bench: 0.5, suites: [s1]}
"""
    f = fam(by_suite={"s1": 0.9, "s2": 0.6}, mean_by_suite={"s1": 0.4, "s2": 2.0})
    _, v, _ = run_rules(tmp_path, rules, {"refusal": f})
    assert v["A"].status == "fail" and v["A"].evidence["failing_suites"] == ["s2"]
    assert v["B"].status == "fail" and v["B"].evidence["failing_suites"] == ["s1"]


def test_overrepresented(tmp_path: Path) -> None:
    rules = """\
  - {id: A, concept: refusal, check: overrepresented}
  - {id: B, concept: refusal, check: overrepresented, max_over_fraction: 0.2}
"""
    _, v, _ = run_rules(tmp_path, rules, {"refusal": fam(over=2)})
    assert v["A"].status == "fail" and v["A"].evidence["over_fraction"] == 0.2
    assert v["B"].status == "pass"


def test_performance(tmp_path: Path) -> None:
    rules = """\
  - {id: A, concept: refusal, check: performance, min: 0.75}
  - {id: B, concept: refusal, check: performance, min: 0.75, confidence: 0.95}
  - {id: C, concept: refusal, check: performance, min: 0.85}
"""
    _, v, _ = run_rules(tmp_path, rules, {"refusal": fam(chi=0.8, low=0.7, high=0.9)})
    assert v["A"].status == "pass"
    assert v["B"].status == "fail" and v["B"].evidence["compared"] == 0.7
    assert v["C"].status == "fail"
    _, v, _ = run_rules(tmp_path, rules, {"refusal": fam(chi=None, low=None, high=None, support=5)})
    assert {x.status for x in v.values()} == {"insufficient_data"}
    assert "min_support" in v["A"].message


def test_regression_uses_upper_bound(tmp_path: Path) -> None:
    rules = "  - {id: R, concept: refusal, check: regression, max_drop: 0.02, confidence: 0.95}\n"

    def reg(value, low, high):
        return FamilyRegression(baseline_chi_model=0.9, delta=Interval(value=value, low=low, high=high),
                                paired_items=50, candidate_only=["x"], baseline_only=[])

    # drop of 0.06 but the interval reaches -0.01: not established at 95%
    _, v, _ = run_rules(tmp_path, rules, {"refusal": fam(regression=reg(-0.06, -0.11, -0.01))})
    assert v["R"].status == "pass"
    # interval entirely below -0.02
    _, v, _ = run_rules(tmp_path, rules, {"refusal": fam(regression=reg(-0.06, -0.09, -0.03))})
    assert v["R"].status == "fail" and v["R"].evidence["delta_high"] == -0.03
    assert "1 candidate-only" in v["R"].message
    # the upper bound exactly at -max_drop is not beyond it
    _, v, _ = run_rules(tmp_path, rules, {"refusal": fam(regression=reg(-0.05, -0.08, -0.02))})
    assert v["R"].status == "pass"
    _, v, _ = run_rules(tmp_path, rules, {"refusal": fam(regression=None)})
    assert v["R"].status == "insufficient_data" and "baseline" in v["R"].message
    _, v, _ = run_rules(tmp_path, rules, {"refusal": fam(regression=reg(None, None, None))})
    assert v["R"].status == "insufficient_data"


def test_fidelity_and_stability(tmp_path: Path) -> None:
    rules = """\
  - {id: F, check: fidelity, min_fve: 0.7}
  - {id: G, check: fidelity, min_fve: 0.7, max_dead_share: 0.2}
  - {id: S, concept: refusal, check: stability, max_std: 0.05}
"""
    stab = StabilitySummary(repeats=100, drop=0.2, median_std_chi_bench=None,
                            median_std_chi_model=None, families={"refusal": 0.08})
    _, v, _ = run_rules(tmp_path, rules, {"refusal": fam()}, stability=stab)
    assert v["F"].status == "pass" and v["G"].status == "fail" and v["S"].status == "fail"
    _, v, _ = run_rules(tmp_path, rules, {"refusal": fam(stability_std=0.01)},
                        fidelity=FidelitySummary(fve=None, mean_l0=None, dead_share=None))
    assert v["F"].status == "insufficient_data" and v["G"].status == "insufficient_data"
    assert v["S"].status == "pass"
    _, v, _ = run_rules(tmp_path, rules, {"refusal": fam()},
                        fidelity=FidelitySummary(fve=0.5, mean_l0=1.0, dead_share=0.1))
    assert v["F"].status == "fail" and "0.500" in v["F"].message
    assert v["S"].status == "insufficient_data"


def test_family_absent_from_run_is_error_and_audit_never_fails(tmp_path: Path) -> None:
    rules = """\
  - {id: A, concept: refusal, check: missing}
  - {id: B, concept: refusal, check: coverage, min_covered_fraction: 1.0, mode: audit}
"""
    _, v, res = run_rules(tmp_path, rules, {})
    assert v["A"].status == "error" and v["B"].status == "error"
    assert [x.rule_id for x in res.failing()] == ["A"]
    _, v, res = run_rules(tmp_path, rules[rules.index("  - {id: B"):], {"refusal": fam()})
    assert v["B"].status == "fail" and v["B"].mode == "audit" and res.exit_code() == 0


def test_end_to_end_with_computed_families(tmp_path: Path) -> None:
    """Policy → resolve → metrics → family results → verdicts, on a planted example."""
    import numpy as np
    import scipy.sparse as sp

    from cg_gate.families import BaselineSide, family_result, resolve_family
    from cg_gate.metrics import compute

    n, k = 60, 6
    dense = np.zeros((n, k))
    dense[:, 0] = 1.0            # feature 0 fires on every item
    dense[::2, 1] = 2.0          # feature 1 on even items only
    # feature 2 never fires: a planted gap
    scores = np.where(np.arange(n) % 2 == 0, 0.0, 1.0)   # the model fails where 1 fires
    suites = ["s1"] * 30 + ["s2"] * 30
    ids = [f"q{i}" for i in range(n)]
    path = write(tmp_path, """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: e2e}
analysis: {min_support: 10, bootstrap: {samples: 200}}
concepts:
  fam:
    match: {ids: [0, 1, 2]}
  good:
    match: {ids: [0]}
rules:
  - {id: COV, concept: fam, check: coverage, min_covered_fraction: 0.6}
  - {id: MIS, concept: fam, check: missing}
  - {id: PERF, concept: fam, check: performance, min: 0.5}
  - {id: GOOD, concept: good, check: performance, min: 0.5}
  - {id: REG, concept: fam, check: regression, max_drop: 0.05}
""")
    pol = load_policy(path)
    metrics = compute(sp.csr_matrix(dense), suites, scores, min_support=10, n_boot=50)
    baseline = BaselineSide(saliency=sp.csr_matrix(dense), scores=np.ones(n), item_ids=ids,
                            suites=suites)
    families = {}
    for key, concept in pol.concepts.items():
        resolved = resolve_family(key, concept, labels=None, d_sae=k, exemplar_saliency=None)
        families[key] = family_result(resolved, metrics=metrics, saliency=sp.csr_matrix(dense),
                                      scores=scores, item_ids=ids, suites=suites, n_boot=200,
                                      baseline=baseline)
    res = evaluate(pol, families=families, fidelity=FID, stability=None, suites=["s1", "s2"],
                   today=TODAY)
    v = {x.rule_id: x for x in res.verdicts}
    # 2 of 3 members covered (feature 2 never fires)
    assert v["COV"].status == "pass" and v["COV"].evidence["covered_fraction"] == pytest.approx(2 / 3)
    assert v["MIS"].status == "fail" and v["MIS"].evidence["missing_ids"] == [2]
    # by hand: den = 3 on even items (score 0), 1 on odd items (score 1) → χ = 30 / 120
    assert v["PERF"].evidence["chi_model"] == pytest.approx(0.25)
    assert v["PERF"].status == "fail"
    assert v["GOOD"].evidence["chi_model"] == pytest.approx(0.5) and v["GOOD"].status == "pass"
    # baseline scores every item 1 → Δ = 0.25 − 1 with every resample equal
    assert v["REG"].evidence["delta"] == pytest.approx(-0.75)
    assert v["REG"].status == "fail"


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert "too large" in err.value.message


def test_impure_family_is_not_judged_and_drivers_are_named(tmp_path: Path) -> None:
    from cg_gate.record._schema import CategoryAttribution, FamilyPurity

    rules = """\
  - {id: P, concept: refusal, check: performance, min: 0.9}
  - {id: R, concept: refusal, check: regression, max_drop: 0.02}
  - {id: C, concept: refusal, check: coverage, min_covered_fraction: 0.5}
"""
    reg = FamilyRegression(baseline_chi_model=0.9, delta=Interval(value=-0.3, low=-0.4, high=-0.2),
                           paired_items=50)
    impure = fam(regression=reg)
    impure.purity = FamilyPurity(intended=["refusal"], intended_share=0.2, min_purity=0.5,
                                 judged=False, reason="only 20 % of family 'refusal' ...")
    _, v, _ = run_rules(tmp_path, rules, {"refusal": impure})
    # a drop built on other categories is no refusal verdict: neither fail nor pass
    assert v["P"].status == v["R"].status == "insufficient_data"
    assert v["R"].message.startswith("only 20 %") and v["R"].evidence["intended_share"] == 0.2
    assert v["C"].status == "pass"  # coverage asks what the suites test, not gated

    pure = fam(regression=reg)
    pure.attribution = [
        CategoryAttribution(suite="s1", category="refusal", n_items=10, active_items=10,
                            mass_share=0.7, chi_model=0.5, delta_contribution=-0.24,
                            drop_share=0.8),
        CategoryAttribution(suite="s1", category="coding", n_items=10, active_items=4,
                            mass_share=0.3, chi_model=1.0, delta_contribution=-0.06,
                            drop_share=0.2),
    ]
    pure.purity = FamilyPurity(intended=["refusal"], intended_share=0.7, min_purity=0.5)
    _, v, _ = run_rules(tmp_path, rules, {"refusal": pure})
    assert v["R"].status == "fail"
    assert v["R"].message.endswith("over all items the drop comes from refusal 80%, coding 20%")
    assert [d["category"] for d in v["R"].evidence["drivers"]] == ["refusal", "coding"]
    assert v["R"].evidence["drivers"][0]["share_of_drop"] == pytest.approx(0.8)


def test_rules_judge_the_intended_categories_unless_told_otherwise(tmp_path: Path) -> None:
    from cg_gate.record._schema import FamilyPurity, FamilyScoped

    rules = """\
  - {id: R, concept: refusal, check: regression, max_drop: 0.02}
  - {id: RA, concept: refusal, check: regression, max_drop: 0.02, scope: all}
  - {id: P, concept: refusal, check: performance, min: 0.7}
"""
    pooled = FamilyRegression(baseline_chi_model=0.9,
                              delta=Interval(value=-0.3, low=-0.4, high=-0.2), paired_items=50)
    f = fam(regression=pooled, chi=0.5, low=0.4, high=0.6)
    f.purity = FamilyPurity(intended=["refusal"], intended_share=0.7, min_purity=0.5)
    f.scoped = FamilyScoped(categories=["refusal"], items=20, support=20,
                            chi_model=Interval(value=0.9, low=0.8, high=0.95),
                            baseline_chi_model=0.9,
                            delta=Interval(value=0.0, low=-0.01, high=0.01), paired_items=20)
    _, v, _ = run_rules(tmp_path, rules, {"refusal": f})
    # the pooled drop comes from other categories: the refusal items did not regress
    assert v["R"].status == "pass" and v["R"].evidence["scope"] == "intended"
    assert v["R"].evidence["pooled_delta"] == -0.3 and "judged on its categories" in v["R"].message
    assert v["RA"].status == "fail" and v["RA"].evidence["scope"] == "all"
    assert v["P"].status == "pass" and v["P"].evidence["chi_model"] == 0.9
    f.scoped = None  # no categories named: auto means all items
    f.purity = FamilyPurity()
    _, v, _ = run_rules(tmp_path, rules, {"refusal": f})
    assert v["R"].status == "fail" and v["R"].evidence["scope"] == "all"
