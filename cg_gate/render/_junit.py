"""junit.xml: one testcase per rule, so CI test tabs list the gate's rules.

A testcase fails exactly when its verdict fails the build (as the exit code does):
`fail` → <failure>, `error` → <error>; `waived` and `insufficient_data` → <skipped>;
warnings and audit-mode failures pass with their message in <system-out>. The rule's place
in the policy file is the first line of each outcome's text.

The file follows the JUnit schema Jenkins publishes (`junit-10.xsd`, which the tests
validate against), so it declares no attributes outside it (no per-testcase file/line).
It is well-formed XML whatever the record holds: markup is escaped by ElementTree, and
characters XML cannot carry (control characters such as ESC, lone surrogates) are written
out as visible escapes (`\\x1b`) in every text and attribute.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from cg_gate.record import GateRun, Verdict
from cg_gate.render._format import evidence_text, status_label, visible_controls


def _location_path(v: Verdict, policy_source: str | None, policy_path: str | None) -> str | None:
    if v.location is None:
        return None
    if policy_source and policy_path and v.location.path == policy_path:
        return policy_source
    return v.location.path


def _testcase(parent: ET.Element, v: Verdict, suite: str, fail_on: str,
              policy_source: str | None, policy_path: str | None) -> str:
    attrs = {"name": f"{v.rule_id}: {v.title}", "classname": f"{suite}.{v.check}", "time": "0"}
    case = ET.SubElement(parent, "testcase", attrs)
    path = _location_path(v, policy_source, policy_path)
    where = f" at {path}:{v.location.line}" if path is not None else ""
    detail = f"{v.stable_id}{where}\n{v.message}\n{evidence_text(v.evidence)}".rstrip()
    outcome = "passed"
    if v.fails(fail_on):
        tag = "error" if v.status == "error" else "failure"
        el = ET.SubElement(case, tag, {"message": v.message, "type": v.status})
        el.text = detail
        outcome = tag
    elif v.status in ("waived", "insufficient_data"):
        message = v.message
        if v.waiver is not None:
            message = (f"waived by {v.waiver.approved_by} until {v.waiver.expires}: "
                       f"{v.waiver.reason}")
        ET.SubElement(case, "skipped", {"message": message, "type": v.status})
        outcome = "skipped"
    if v.status != "pass" or v.mode == "audit":
        out = ET.SubElement(case, "system-out")
        out.text = f"{status_label(v.status)} ({v.severity}, {v.mode}): {detail}"
    return outcome


def _seconds(value: float) -> str:
    """Seconds as plain decimals (`192.4`, `0`): the schema's time pattern has no exponent."""
    text = f"{max(value, 0.0):.3f}".rstrip("0").rstrip(".")
    return text or "0"


def _legal(root: ET.Element) -> None:
    """Write out, in every text and attribute, the characters XML cannot carry."""
    for el in root.iter():
        if el.text:
            el.text = visible_controls(el.text)
        for key, value in el.attrib.items():
            el.attrib[key] = visible_controls(value)


def render_junit_text(run: GateRun, *, policy_source: str | None = None) -> str:
    """junit.xml as text."""
    m = run.manifest
    suite_name = m.policy.name if m.policy else "cg-gate"
    policy_path = m.policy.path if m.policy else None
    root = ET.Element("testsuites", {"name": "cg-gate"})
    suite = ET.SubElement(root, "testsuite", {"name": suite_name})
    props = ET.SubElement(suite, "properties")
    for name, value in (("run_id", m.run_id), ("schema_version", run.schema_version),
                        ("model", m.model.id), ("model_digest", m.model.digest),
                        ("verdict", run.summary.verdict), ("fail_on", run.summary.fail_on)):
        ET.SubElement(props, "property", {"name": name, "value": value})
    tally = {"failure": 0, "error": 0, "skipped": 0, "passed": 0}
    for v in run.verdicts:
        tally[_testcase(suite, v, suite_name, run.summary.fail_on, policy_source, policy_path)] += 1
    counts = {"tests": str(len(run.verdicts)), "failures": str(tally["failure"]),
              "errors": str(tally["error"]), "skipped": str(tally["skipped"]),
              "time": _seconds(m.wall_time_s)}
    for key, value in counts.items():
        suite.set(key, value)
        if key != "skipped":  # the schema has `skipped` on <testsuite> only
            root.set(key, value)
    suite.set("timestamp", m.finished_at)
    _legal(root)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_junit(run: GateRun, *, policy_source: str | None = None) -> bytes:
    """junit.xml bytes for `run`."""
    return render_junit_text(run, policy_source=policy_source).encode("utf-8")
