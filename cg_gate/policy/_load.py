"""Load policies and waiver files with errors that point at the offending line.

The YAML is composed with node positions kept (`_yaml.load_yaml`); pydantic validates
the plain data; each pydantic error's `loc` is walked back to the YAML node it came
from. Cross-checks that pydantic cannot make (unknown families, duplicate rule ids,
regexes, exemplar files, waivers for unknown rules) are made here, also with lines.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from cg_gate.errors import PolicyError
from cg_gate.families import (
    DEFAULT_REFERENCE,
    compile_label_pattern,
    load_texts,
    resolve_text_path,
)
from cg_gate.policy._schema import (
    ConsistencyRule,
    FidelityRule,
    JudgeAgreementRule,
    PerformanceRule,
    Policy,
    RegressionRule,
    Waiver,
    WaiverSet,
)
from cg_gate._yaml import Marks, PathKey, Position, YamlDocument, load_yaml
from cg_gate.record import Location

_FIX_SCHEMA = "see policies/default.yaml for a complete example of the schema"


# --------------------------------------------------------------------------- error mapping


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is Union or origin is types.UnionType


def _unwrap(tp: Any) -> Any:
    """Strip `Annotated[...]` and `X | None` down to the type that validates the value."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if _is_union(tp):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that validates the object at `loc` (None if unsure)."""
    tp: Any = root
    for el in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(el) if isinstance(el, str) else None
            if field is None:
                return None
            tp = field.annotation
        elif origin in (list, tuple):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        elif _is_union(tp):
            # a discriminated union: pydantic puts the tag (the rule's `check`) in `loc`
            tp = next((m for m in map(_unwrap, typing.get_args(tp))
                       if "check" in getattr(m, "model_fields", {})
                       and el in typing.get_args(m.model_fields["check"].annotation)), None)
            if tp is None:
                return None
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _data_path(data: Any, loc: tuple[Any, ...]) -> PathKey:
    """Walk pydantic's `loc` through the data; the deepest path that exists in it
    (union tags in `loc` are skipped)."""
    path: PathKey = ()
    cur = data
    for el in loc:
        if isinstance(cur, dict) and el in cur:
            path += (el,)
            cur = cur[el]
        elif isinstance(cur, list) and isinstance(el, int) and 0 <= el < len(cur):
            path += (el,)
            cur = cur[el]
        elif isinstance(cur, dict) and isinstance(el, str) and cur.get("check") == el:
            continue  # discriminated-union tag
        else:
            break
    return path


def _dotted(path: PathKey, data: Any = None) -> str:
    """`rules[2].min` — with the rule id or waived rule, when known: `rules[2] (CG003).min`."""
    out = ""
    cur = data
    for depth, el in enumerate(path):
        out += f"[{el}]" if isinstance(el, int) else (f".{el}" if out else str(el))
        if isinstance(cur, (dict, list)):
            try:
                cur = cur[el]
            except (KeyError, IndexError, TypeError):
                cur = None
            if depth == 1 and isinstance(el, int) and isinstance(cur, dict):
                name = cur.get("id") if path[0] == "rules" else cur.get("rule")
                if isinstance(name, (str, int)) and path[0] in ("rules", "waivers"):
                    out += f" ({name})"
    return out or "(top level)"


def _describe_error(err: dict[str, Any], data: Any, marks: Marks, root: type[BaseModel]
                    ) -> tuple[Position, str, str]:
    loc = tuple(err["loc"])
    kind = err["type"]
    path = _data_path(data, loc)
    where = _dotted(path, data)
    if kind == "extra_forbidden":
        key = loc[-1]
        parent_loc = loc[:-1]
        model = _model_at(root, parent_loc)
        allowed = sorted(model.model_fields) if model is not None else []
        close = difflib.get_close_matches(str(key), allowed, n=1)
        fix = f"did you mean '{close[0]}'?" if close else "remove it"
        if allowed:
            fix += f" Allowed keys here: {', '.join(allowed)}"
        parent = _dotted(path[:-1], data)
        return marks.key(path), f"unknown key '{key}' in {parent}", fix
    if kind == "missing":
        model = _model_at(root, loc[:-1])
        field = model.model_fields.get(loc[-1]) if model is not None else None
        hint = f" ({field.description})" if field is not None and field.description else ""
        return (marks.value(path), f"{where}: required key '{loc[-1]}' is missing{hint}",
                f"add '{loc[-1]}:' here; {_FIX_SCHEMA}")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag_path = path + ("check",)
        pos = marks.value(tag_path) if tag_path in marks.values else marks.value(path)
        expected = ", ".join(sorted(_rule_kinds()))
        if kind == "union_tag_not_found":
            return pos, f"{where}: rule has no 'check'", f"add 'check:' with one of {expected}"
        value = data
        for el in tag_path:
            value = value[el]
        return pos, f"{where}: unknown check '{value}'", f"use one of {expected}"
    pos = marks.value(path)
    if kind == "finite_number":
        return (pos, f"{where}: must be a number (NaN and infinity are not numbers here)",
                f"write a finite number; {_FIX_SCHEMA}")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return (pos, f"{where}: must be a mapping of keys to values, not {_kind(err.get('input'))}",
                f"write it as indented 'key: value' lines or {{key: value}}; {_FIX_SCHEMA}")
    if kind == "list_type":
        return (pos, f"{where}: must be a list, not {_kind(err.get('input'))}",
                f"write it as '- item' lines or [a, b]; {_FIX_SCHEMA}")
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    return pos, f"{where}: {msg}", f"correct the value; {_FIX_SCHEMA}"


def _kind(value: Any) -> str:
    """How a YAML reader would name a value's type."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:39] + "…"
        return f"the text {shown!r}"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    return type(value).__name__


def _rule_kinds() -> list[str]:
    from cg_gate.policy._schema import RULE_KINDS

    return list(RULE_KINDS)


def _validate(model: type[BaseModel], doc: YamlDocument) -> Any:
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors()
        described = [_describe_error(e, doc.data, doc.marks, model) for e in errors]
        described.sort(key=lambda d: (d[0].line, d[0].column))
        pos, msg, fix = described[0]
        if len(described) > 1:
            more = "; ".join(f"line {p.line}: {m}" for p, m, _ in described[1:4])
            extra = len(described) - 4
            msg += f" (also {more}{f'; and {extra} more' if extra > 0 else ''})"
        raise PolicyError(msg, path=doc.path, line=pos.line, column=pos.column, fix=fix) from None


def _error_at(doc: YamlDocument, path: PathKey, message: str, fix: str, *, key: bool = False
              ) -> PolicyError:
    pos = doc.marks.key(path) if key else doc.marks.value(path)
    return PolicyError(message, path=doc.path, line=pos.line, column=pos.column, fix=fix)


def _location(doc: YamlDocument, path: PathKey) -> Location:
    pos = doc.marks.value(path)
    return Location(path=str(doc.path), line=pos.line, column=pos.column)


def _check_kind(doc: YamlDocument, expected: str) -> None:
    if not isinstance(doc.data, dict):
        raise _error_at(doc, (), f"the file must be a mapping with kind: {expected}",
                        f"start the file with 'apiVersion: cg-gate/v1' and 'kind: {expected}'")
    kind = doc.data.get("kind")
    if kind == "WaiverSet" and expected == "GatePolicy":
        raise _error_at(doc, ("kind",), "this is a waiver file, not a policy",
                        "pass it with --waivers next to the policy file")
    if kind == "GatePolicy" and expected == "WaiverSet":
        raise _error_at(doc, ("kind",), "this is a policy, not a waiver file",
                        "give a file with 'kind: WaiverSet', or write the waivers in the policy")


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class _WaiverFile:
    waivers: WaiverSet
    doc: YamlDocument


def _read_waivers(path: str | Path) -> _WaiverFile:
    doc = load_yaml(path)
    _check_kind(doc, "WaiverSet")
    ws: WaiverSet = _validate(WaiverSet, doc)
    ws._path = Path(path)
    ws._digest = hashlib.sha256(doc.raw).hexdigest()
    for i, waiver in enumerate(ws.waivers):
        waiver._location = _location(doc, ("waivers", i))
    return _WaiverFile(ws, doc)


def load_waivers(path: str | Path) -> WaiverSet:
    """Read a separate waiver file (`kind: WaiverSet`), each waiver located by line.

    Rule ids are checked against a policy only by `load_policy(..., waivers=path)`.
    """
    return _read_waivers(path).waivers


def load_policy(path: str | Path, *, waivers: str | Path | None = None,
                today: dt.date | None = None, allow_external_paths: bool = False) -> Policy:
    """Read, validate and cross-check a policy file (and optionally a waiver file).

    Raises `PolicyError` with file, line and column of the offending node and the fix.
    Rules, families and waivers remember where they are written (`.location`).
    A waiver may expire at most `waiver_policy.max_days` after `today` (default: today,
    UTC). Exemplar and reference files must lie in the policy file's directory tree or be
    shipped `pkg:` files, unless `allow_external_paths`.
    """
    day = today or dt.datetime.now(dt.timezone.utc).date()
    doc = load_yaml(path)
    _check_kind(doc, "GatePolicy")
    policy: Policy = _validate(Policy, doc)
    policy._path = Path(path)
    policy._digest = hashlib.sha256(doc.raw).hexdigest()

    for key, concept in policy.concepts.items():
        concept._location = _location(doc, ("concepts", key))
        concept.match._location = _location(doc, ("concepts", key, "match"))
        _check_family(doc, key, concept, allow_external_paths)
    _check_rules(doc, policy)
    for i, waiver in enumerate(policy.waivers):
        waiver._location = _location(doc, ("waivers", i))
        _check_waiver(doc, ("waivers", i), waiver, policy, day)

    if waivers is not None:
        wf = _read_waivers(waivers)
        for i, waiver in enumerate(wf.waivers.waivers):
            _check_waiver(wf.doc, ("waivers", i), waiver, policy, day)
        policy._waiver_set = wf.waivers
    return policy


def _check_family(doc: YamlDocument, key: str, concept: Any, allow_external: bool) -> None:
    base = ("concepts", key, "match")
    for i, pattern in enumerate(concept.match.labels):
        try:
            compile_label_pattern(pattern)
        except ValueError as exc:
            raise _error_at(doc, base + ("labels", i),
                            f"family '{key}': label regex {pattern!r} does not compile (RE2: {exc})",
                            "write an RE2 pattern: Python's syntax without back-references or "
                            "look-around, which cannot run in linear time; quote it in YAML"
                            ) from None
    ex = concept.match.exemplars
    if ex is None:
        return
    ex._location = _location(doc, base + ("exemplars",))
    policy_dir = doc.path.parent
    if ex.path is not None:
        resolved = _text_path(doc, base + ("exemplars", "path"), key, ex.path, allow_external)
        if not resolved.is_file():
            raise _error_at(doc, base + ("exemplars", "path"),
                            f"family '{key}': exemplar file '{ex.path}' not found (looked for {resolved.absolute()})",
                            "give a path relative to the policy file, or 'pkg:exemplars/<name>.jsonl' "
                            "for the files shipped in cg_gate/data")
        load_texts(resolved)
        ex._resolved_path = resolved
    ref_spec = ex.reference or DEFAULT_REFERENCE
    ref = _text_path(doc, base + ("exemplars", "reference"), key, ref_spec, allow_external)
    if not ref.is_file():
        raise _error_at(doc, base + ("exemplars", "reference"),
                        f"family '{key}': reference file '{ref_spec}' not found (looked for {ref.absolute()})",
                        "give a path relative to the policy file, or leave 'reference' out to use "
                        "the shipped neutral set")
    load_texts(ref)
    ex._resolved_reference = ref


def _text_path(doc: YamlDocument, at: PathKey, key: str, spec: str, allow_external: bool) -> Path:
    try:
        return resolve_text_path(spec, doc.path.parent, allow_external=allow_external)
    except ValueError as exc:
        raise _error_at(doc, at, f"family '{key}': {exc}; a policy reads only files in its own "
                                 "directory tree or shipped 'pkg:' files",
                        "copy the file next to the policy and give a relative path, or pass "
                        "--allow-external-paths if this policy is trusted") from None


def _check_rules(doc: YamlDocument, policy: Policy) -> None:
    seen: dict[str, int] = {}
    families = sorted(policy.concepts)
    conf = policy.analysis.bootstrap.confidence
    for i, rule in enumerate(policy.rules):
        rpath = ("rules", i)
        rule._location = _location(doc, rpath)
        if rule.id in seen:
            first = doc.marks.value(("rules", seen[rule.id]))
            raise _error_at(doc, rpath + ("id",),
                            f"duplicate rule id '{rule.id}' (first used on line {first.line})",
                            "give every rule its own id; verdicts and waivers refer to rules by id")
        seen[rule.id] = i
        if isinstance(rule, (FidelityRule, JudgeAgreementRule)):
            if rule.concept is not None:
                about = "the SAE" if isinstance(rule, FidelityRule) else "the rubric judge"
                raise _error_at(doc, rpath + ("concept",),
                                f"rule {rule.id}: a {rule.check} rule is about {about}, not a family",
                                "remove 'concept' from this rule")
            continue
        if isinstance(rule, ConsistencyRule) and rule.concept is None:
            continue
        if rule.concept not in policy.concepts:
            close = difflib.get_close_matches(str(rule.concept), families, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            declared = ", ".join(families) if families else "none"
            raise _error_at(doc, rpath + ("concept",),
                            f"rule {rule.id}: concept '{rule.concept}' is not a declared family",
                            f"{hint}declare it under 'concepts:' or use one of: {declared}")
        if isinstance(rule, (PerformanceRule, RegressionRule)) and rule.confidence is not None:
            if abs(rule.confidence - conf) > 1e-9:
                raise _error_at(doc, rpath + ("confidence",),
                                f"rule {rule.id}: confidence {rule.confidence:g} differs from "
                                f"analysis.bootstrap.confidence {conf:g}; family intervals are "
                                "computed once, at the analysis level",
                                f"set confidence: {conf:g} here, or change analysis.bootstrap.confidence")


def _check_waiver(doc: YamlDocument, path: PathKey, waiver: Waiver, policy: Policy,
                  today: dt.date) -> None:
    waiver._location = _location(doc, path)
    ids = [r.id for r in policy.rules]
    if waiver.rule not in ids:
        close = difflib.get_close_matches(waiver.rule, ids, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise _error_at(doc, path + ("rule",),
                        f"waiver for unknown rule '{waiver.rule}'",
                        f"{hint}a waiver must name a rule id of the policy "
                        f"({', '.join(ids) if ids else 'it has none'})")
    fam = waiver.scope.family
    if fam is not None:
        rule = policy.rule(waiver.rule)
        if fam not in policy.concepts:
            raise _error_at(doc, path + ("scope", "family"),
                            f"waiver scope names unknown family '{fam}'",
                            f"use one of: {', '.join(sorted(policy.concepts))}")
        if rule.concept != fam:
            raise _error_at(doc, path + ("scope", "family"),
                            f"waiver scope family '{fam}' never matches rule {rule.id}, "
                            f"which is about '{rule.concept}'",
                            "scope the waiver to the rule's family, or drop the scope")
    horizon = policy.waiver_policy.max_days
    latest = today + dt.timedelta(days=horizon)
    if waiver.expires > latest:
        raise _error_at(doc, path + ("expires",),
                        f"waiver for rule '{waiver.rule}' expires on {waiver.expires.isoformat()}, "
                        f"more than {horizon} days after {today.isoformat()}",
                        f"set expires on or before {latest.isoformat()} and renew the waiver when "
                        "it runs out, or raise waiver_policy.max_days in the policy")
