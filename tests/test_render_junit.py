"""junit.xml: exact output for a small run, XML escaping, and outcome per status."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from cg_gate.render._junit import render_junit_text
from fixtures.make_run import make_run
from published_schemas import junit_problems


def _small_run():
    full = make_run()
    return make_run(verdicts=[full.verdicts[0], full.verdicts[2], full.verdicts[6]])


EXPECTED_SMALL = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="cg-gate" tests="3" failures="1" errors="0" time="192.4">
  <testsuite name="support-assistant-release" tests="3" failures="1" errors="0" skipped="1" time="192.4" timestamp="2026-11-24T02:03:12Z">
    <properties>
      <property name="run_id" value="20261124T020000Z-3f2a9c" />
      <property name="schema_version" value="1.2.0" />
      <property name="model" value="acme/support-assistant-1.4" />
      <property name="model_digest" value="a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0" />
      <property name="verdict" value="fail" />
      <property name="fail_on" value="error" />
    </properties>
    <testcase name="CG001: Refusal concepts are covered by the suites" classname="support-assistant-release.coverage" time="0" />
    <testcase name="CG003: Refusal must not regress against the baseline" classname="support-assistant-release.regression" time="0">
      <failure message="drop of 0.22 [0.08, 0.35] beyond tolerance 0.02 at 95%" type="fail">support-assistant-release/CG003 at policies/support-assistant.yaml:25
drop of 0.22 [0.08, 0.35] beyond tolerance 0.02 at 95%
delta=-0.22, low=-0.35, high=-0.08, max_drop=0.02</failure>
      <system-out>FAIL (error, enforce): support-assistant-release/CG003 at policies/support-assistant.yaml:25
drop of 0.22 [0.08, 0.35] beyond tolerance 0.02 at 95%
delta=-0.22, low=-0.35, high=-0.08, max_drop=0.02</system-out>
    </testcase>
    <testcase name="CG007: No uncertainty member may be missing" classname="support-assistant-release.missing" time="0">
      <skipped message="waived by A. Rivera until 2027-03-31: Known tokenizer change; re-labelling in progress" type="waived" />
      <system-out>WAIVED (error, enforce): support-assistant-release/CG007 at policies/support-assistant.yaml:41
1 member under-represented (655)
under_ids=[655]</system-out>
    </testcase>
  </testsuite>
</testsuites>
"""


def test_small_run_exact_output():
    assert render_junit_text(_small_run()) == EXPECTED_SMALL


def _cases(run):
    root = ET.fromstring(render_junit_text(run).encode("utf-8"))
    return root, {c.get("name").split(":")[0]: c for c in root.iter("testcase")}


# rule id → child element the testcase must carry (None: passes with no outcome element)
OUTCOMES = [
    ("CG001", None),                 # pass
    ("CG002", None),                 # warn below fail_on=error: passes, message in system-out
    ("CG003", "failure"),            # enforced error-severity fail
    ("CG006", "skipped"),            # insufficient data
    ("CG007", "skipped"),            # waived
    ("CG008", None),                 # audit-mode fail never fails the build
]


@pytest.mark.parametrize("rule, outcome", OUTCOMES)
def test_outcome_per_status(rule, outcome):
    _, cases = _cases(make_run())
    case = cases[rule]
    tags = {child.tag for child in case} - {"system-out"}
    assert tags == (set() if outcome is None else {outcome})


def test_counts_match_the_exit_code_view():
    root, cases = _cases(make_run())
    assert root.get("tests") == "8"
    assert root.get("failures") == "1"
    assert root.find("testsuite").get("skipped") == "2"
    assert len(cases) == 8


def test_error_status_becomes_error_element():
    full = make_run()
    broken = full.verdicts[0].model_copy(update={"status": "error", "raw_status": "error",
                                                  "message": "family 'refusal' has no members"})
    _, cases = _cases(make_run(verdicts=[broken]))
    assert [child.tag for child in cases["CG001"]][0] == "error"


def test_markup_in_messages_is_escaped_and_round_trips():
    full = make_run()
    nasty = 'χ < 0.5 & "quoted" <script>alert(1)</script> ]]>'
    v = full.verdicts[2].model_copy(update={"message": nasty, "title": "A <b>bold</b> rule"})
    text = render_junit_text(make_run(verdicts=[v]))
    assert "<script>" not in text and "<b>" not in text
    _, cases = _cases(make_run(verdicts=[v]))
    case = cases["CG003"]
    assert case.get("name") == "CG003: A <b>bold</b> rule"
    assert case.find("failure").get("message") == nasty


def test_full_fixture_validates_against_the_published_junit_schema():
    from cg_gate.render._junit import render_junit

    assert junit_problems(render_junit(make_run())) == []


def test_schema_check_catches_attributes_the_schema_does_not_declare():
    text = render_junit_text(_small_run()).replace('time="0"', 'time="0" line="3"', 1)
    assert any("line" in p for p in junit_problems(text.encode("utf-8")))


def test_control_characters_become_visible_and_the_file_stays_well_formed():
    from cg_gate.render._junit import render_junit

    full = make_run()
    v = full.verdicts[2].model_copy(update={
        "title": "bell\x07 and ESC\x1b[2J", "message": "NUL\x00 surrogate\ud800 ]]> \"q\""})
    data = render_junit(make_run(verdicts=[v]))
    assert junit_problems(data) == []  # lxml parses it strictly, then the schema
    _, cases = _cases(make_run(verdicts=[v]))
    case = cases["CG003"]
    assert case.get("name") == "CG003: bell\\x07 and ESC\\x1b[2J"
    assert case.find("failure").get("message") == "NUL\\x00 surrogate\\ud800 ]]> \"q\""
