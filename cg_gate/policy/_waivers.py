"""Waivers: who accepted which rule's failure, why, and until when.

Expiry is decided in exactly one place, `is_expired`. An expired waiver waives nothing
and is itself reported as a violation: a synthetic verdict `WAIVER-EXPIRED:<rule>`
(status fail, severity error, enforced) located at the waiver's line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from cg_gate.policy._schema import Policy, Waiver
from cg_gate.record import Verdict, WaiverRecord

WAIVABLE = ("fail", "warn", "insufficient_data", "error")
"""Statuses a waiver can turn into 'waived' (a pass needs no waiver)."""


def is_expired(waiver: Waiver, today: dt.date) -> bool:
    """True when `today` is after the waiver's `expires` date (the date itself still counts)."""
    return today > waiver.expires


def waiver_record(waiver: Waiver, today: dt.date) -> WaiverRecord:
    """The run record's copy of a waiver, with its expiry evaluated for `today`."""
    scope = {k: v for k, v in (("family", waiver.scope.family), ("suite", waiver.scope.suite)) if v}
    return WaiverRecord(
        rule=waiver.rule, scope=scope, reason=waiver.reason, ticket=waiver.ticket,
        approved_by=waiver.approved_by, expires=waiver.expires.isoformat(),
        expired=is_expired(waiver, today), location=waiver.location,
    )


def waiver_applies(waiver: Waiver, verdict: Verdict) -> bool:
    """Whether a (live) waiver covers this verdict.

    The rule id must match. A family scope must equal the rule's family. A suite scope
    waives only a failure confined to that suite: the verdict's evidence must list
    `failing_suites` and all of them must be the scoped suite.
    """
    if waiver.rule != verdict.rule_id:
        return False
    if waiver.scope.family is not None and waiver.scope.family != verdict.concept:
        return False
    if waiver.scope.suite is not None:
        failing = verdict.evidence.get("failing_suites") or []
        if not failing or any(s != waiver.scope.suite for s in failing):
            return False
    return True


@dataclass
class WaiverOutcome:
    """Verdicts after waivers, plus the synthetic verdicts of expired waivers."""

    verdicts: list[Verdict]
    records: list[WaiverRecord] = field(default_factory=list)


def expired_verdict(policy: Policy, waiver: Waiver, record: WaiverRecord) -> Verdict:
    """The violation an expired waiver stands for."""
    rule_id = f"WAIVER-EXPIRED:{waiver.rule}"
    ticket = f" ({waiver.ticket})" if waiver.ticket else ""
    return Verdict(
        rule_id=rule_id, stable_id=policy.stable_id(rule_id),
        title=f"waiver for rule {waiver.rule} is still valid",
        check="waiver", concept=waiver.scope.family, severity="error", mode="enforce",
        status="fail", raw_status="fail",
        message=(f"the waiver for rule {waiver.rule}{ticket}, approved by {waiver.approved_by}, "
                 f"expired on {waiver.expires.isoformat()}; it no longer waives anything — "
                 "renew it with a new date or fix the rule's failure"),
        evidence={"rule": waiver.rule, "expires": waiver.expires.isoformat(),
                  "approved_by": waiver.approved_by, "ticket": waiver.ticket},
        location=waiver.location, tags=["waiver"], waiver=record,
    )


def apply_waivers(policy: Policy, verdicts: Sequence[Verdict], today: dt.date) -> WaiverOutcome:
    """Apply the policy's waivers (inline and separate file) to rule verdicts.

    The first live waiver that applies to a non-passing verdict turns its status into
    'waived' (raw_status keeps the outcome). Every expired waiver adds a failing
    `WAIVER-EXPIRED:<rule>` verdict after the rule verdicts, in waiver order.
    """
    waivers = policy.all_waivers()
    records = [waiver_record(w, today) for w in waivers]
    out: list[Verdict] = []
    for verdict in verdicts:
        applied = None
        if verdict.raw_status in WAIVABLE:
            for waiver, record in zip(waivers, records):
                if not record.expired and waiver_applies(waiver, verdict):
                    applied = record
                    break
        if applied is not None:
            verdict = verdict.model_copy(update={"status": "waived", "waiver": applied})
        out.append(verdict)
    for waiver, record in zip(waivers, records):
        if record.expired:
            out.append(expired_verdict(policy, waiver, record))
    return WaiverOutcome(verdicts=out, records=records)
