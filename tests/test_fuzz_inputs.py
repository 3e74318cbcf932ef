"""Property-based fuzzing of the input side: policies, waiver files and suites built from
strategies that mix valid structure with hostile values (wrong types, huge, NaN and infinite
numbers, impossible dates, control characters, unicode, deep nesting, unknown keys).

Every generated document goes through the real command (`policy validate`, `suite
validate`) in-process. The property: the exit code is 0 or 2, nothing escapes as an
unexpected exception (an "internal error" is a traceback), and no output line could start a
GitHub workflow command. Runs are derandomised and keep no example database, so CI sees the
same documents every time; the counts add up to more than 5,000 documents per run.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cg_gate.cli import cli

POLICIES = 1500
WAIVER_FILES = 1000
YAML_SUITES = 1000
JSONL_SUITES = 1000
CSV_SUITES = 600
assert POLICIES + WAIVER_FILES + YAML_SUITES + JSONL_SUITES + CSV_SUITES >= 5000


def _examples(n: int) -> int:
    """`n` generated inputs, scaled by FUZZ_SCALE."""
    return int(n * float(os.environ.get("FUZZ_SCALE", "1")))


def _settings(n: int):
    return settings(max_examples=_examples(n), deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


# --------------------------------------------------------------------------- hostile values

CONTROL = "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x7f\x85\u2028\u2029\ufeff"
HOSTILE_TEXTS = [
    "::error file=a,line=1::x", "\n::stop-commands::t", "a\r::warning::b", "##[error]x",
    "2027-02-30", "9999-12-31", "(a+)+$", "^(\\w+\\s?)+$", "(?<=x)y", "(", "../../etc/passwd",
    "/etc/passwd", "pkg:../../x", "~/x", " ", "", "nan", "inf", "-1", "1e11", "true", "null",
    "\u202eevil", "💥", "a" * 300,
]

texts = st.one_of(
    st.sampled_from(HOSTILE_TEXTS),
    st.text(alphabet=st.one_of(st.sampled_from(CONTROL), st.characters()), max_size=12),
)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 0.5, 1e11, 10**12, float("nan"), float("inf"), -float("inf")]),
)
scalars = st.one_of(texts, numbers, st.booleans(), st.none(), st.dates().map(str))


def _deep(levels: int):
    value: object = "bottom"
    for i in range(levels):
        value = {f"k{i}": value} if i % 2 else [value]
    return value


# Hostile structures drawn whole (one draw is far cheaper than building them piece by piece)
POOL = [
    [], {}, [None], {"a": None}, [[[]]], {"": ""}, [float("nan"), float("inf")],
    {"name": ["x"]}, ["::error::x", "\r::warning::y"], {"\n::error::k": "v"},
    {"id": {"nested": [1, 2]}}, [1, "two", 3.0, None, True], _deep(70), _deep(10),
    {"path": "../../x"}, {"texts": []}, {"labels": ["(a+)+$"]}, 10**40, -(10**40), 10**400,
]
values = st.one_of(scalars, st.sampled_from(POOL),
                   st.lists(scalars, max_size=3), st.dictionaries(texts, scalars, max_size=2))

# A deep nest beyond the YAML reader's depth limit, and a date YAML parses but Python cannot hold
RAW_FRAGMENTS = [
    "2027-02-30", "2027-13-01", ".nan", ".inf", "-.inf", "1.0e+11", "0x1F", "!!binary aGk=",
    "[" * 80 + "]" * 80, "{a: {b: {c: [1, [2, [3]]]}}}", "&a [*a]", "*nope", "'unterminated",
    "\"\\x1b[31m::error::x\"", "!!python/object:os.system ls",
    "9" * 5000, "1e400", "-0.0",
]


_ONE_IN_THREE = st.integers(0, 2).map(lambda n: n == 0)


def _hostile(draw, base):
    """`base` or, one time in three, a hostile replacement."""
    return draw(values) if draw(_ONE_IN_THREE) else base


@st.composite
def waiver(draw):
    w = {"rule": _hostile(draw, draw(st.sampled_from(["R1", "R2", "R9"]))),
         "reason": _hostile(draw, "known gap"), "approved_by": _hostile(draw, "A. Chen"),
         "expires": _hostile(draw, draw(st.sampled_from(["2026-12-01", "2020-01-01",
                                                         "9999-12-31"])))}
    if draw(st.booleans()):
        w["ticket"] = draw(values)
    if draw(st.integers(0, 5)) == 0:
        w["scope"] = {"family": _hostile(draw, "fam"), "suite": _hostile(draw, "s")}
    if draw(st.integers(0, 6)) == 0:
        w[draw(texts)] = draw(values)
    return w


@st.composite
def policy(draw):
    match = draw(st.sampled_from([
        {"ids": [1, 2]}, {"labels": ["(?i)refus"]},
        {"exemplars": {"path": "pkg:exemplars/refusal.jsonl"}},
        {"exemplars": {"texts": ["I cannot help with that."]}},
    ]))
    match = {k: _hostile(draw, v) for k, v in match.items()}
    analysis = {k: _hostile(draw, v) for k, v in draw(st.sampled_from([
        {}, {"min_support": 20}, {"tau_under": 0.1, "tau_over": 10},
        {"bootstrap": {"samples": 1000, "confidence": 0.95, "seed": 0}},
        {"stability": {"repeats": 100, "drop": 0.2}}, {"eps": 0.0, "max_density": 0.5},
    ])).items()}
    rules = [
        {"id": "R1", "concept": "fam", "check": "coverage", "min_covered_fraction": 0.5},
        {"id": "R2", "concept": "fam", "check": "performance", "min": 0.6, "severity": "warn"},
    ]
    rule_fields = draw(st.lists(st.sampled_from(
        ["min", "max_drop", "min_covered_fraction", "confidence", "severity", "mode", "title",
         "id", "check", "concept", "tags", "scope", "max_std"]), max_size=3))
    for name in rule_fields:
        rules[draw(st.integers(0, 1))][name] = draw(values)
    doc = {
        "apiVersion": _hostile(draw, "cg-gate/v1"), "kind": "GatePolicy",
        "metadata": _hostile(draw, {"name": _hostile(draw, "p"), "owner": draw(texts)}),
        "analysis": analysis,
        "concepts": {draw(texts) if draw(st.integers(0, 4)) == 0 else "fam":
                     {"title": draw(texts), "match": match,
                      "categories": _hostile(draw, ["refusal"])}},
        "rules": _hostile(draw, rules),
        "waivers": draw(st.lists(waiver(), max_size=2)),
    }
    if draw(st.integers(0, 4)) == 0:
        doc["waiver_policy"] = {"max_days": draw(values)}
    if draw(st.integers(0, 6)) == 0:
        doc[draw(texts)] = draw(values)
    return doc


@st.composite
def suite(draw):
    items = []
    for i in range(draw(st.integers(0, 3))):
        item = {"id": _hostile(draw, f"q{i}"), "input": _hostile(draw, "What is 2+2?"),
                "category": _hostile(draw, "math")}
        for name in draw(st.lists(st.sampled_from(
                ["score", "target", "scorer", "severity", "metadata", "response", "messages",
                 "combine", "system_prompt", "unknown"]), max_size=3)):
            item[name] = draw(values)
        items.append(item)
    doc = {"apiVersion": "cg-gate/v1", "kind": "Suite",
           "metadata": _hostile(draw, {"name": "s", "version": draw(values)}),
           "categories": _hostile(draw, {"math": _hostile(draw, {"purpose": "sums",
                                                                "severity": "low"})}),
           "defaults": _hostile(draw, {"scorer": "exact_match"}),
           "items": _hostile(draw, items)}
    return doc


def _yaml_text(draw, doc) -> str:
    """The document as YAML; sometimes with a raw fragment spliced in as a scalar's text."""
    text = yaml.safe_dump(doc, allow_unicode=draw(st.booleans()), sort_keys=False)
    if draw(st.integers(0, 3)) == 0:
        lines = text.splitlines()
        spots = [i for i, ln in enumerate(lines) if re.search(r": \S", ln)]
        if spots:
            i = draw(st.sampled_from(spots))
            key = lines[i][: lines[i].index(": ") + 2]
            lines[i] = key + draw(st.sampled_from(RAW_FRAGMENTS))
            text = "\n".join(lines) + "\n"
    if draw(st.integers(0, 9)) == 0:
        text = "\ufeff" + text
    return text


@st.composite
def as_yaml(draw, documents):
    return _yaml_text(draw, draw(documents))


# --------------------------------------------------------------------------- the property


def _check(res) -> None:
    assert res.exit_code in (0, 2), (res.exit_code, res.output, res.exception)
    assert isinstance(res.exception, SystemExit) or res.exception is None, repr(res.exception)
    assert "internal error" not in res.stderr, res.stderr
    assert "Traceback" not in res.output
    for line in re.split(r"[\r\n]", res.stdout + "\n" + res.stderr):
        assert not line.lstrip().startswith("::"), repr(line)
        assert "##[" not in line, repr(line)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """Thousands of small rewrites: in memory (/dev/shm) where the system has it."""
    import shutil
    import tempfile

    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="cg-gate-fuzz-", dir=shm))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("fuzz")


def _run(counter: list[int], *args: str) -> None:
    counter[0] += 1
    _check(CliRunner().invoke(cli, list(args)))


def test_fuzzed_policies_exit_0_or_2(workdir):
    path = workdir / "policy.yaml"
    ran = [0]

    @_settings(POLICIES)
    @given(as_yaml(policy()))
    def check(text):
        path.write_text(text, encoding="utf-8")
        _run(ran, "policy", "validate", str(path), "--today", "2026-11-01")

    check()
    assert ran[0] >= _examples(POLICIES)


def test_fuzzed_waiver_files_exit_0_or_2(workdir):
    pol = workdir / "base.yaml"
    pol.write_text(yaml.safe_dump({
        "apiVersion": "cg-gate/v1", "kind": "GatePolicy", "metadata": {"name": "p"},
        "concepts": {"fam": {"match": {"ids": [1]}}},
        "rules": [{"id": "R1", "concept": "fam", "check": "performance", "min": 0.5},
                  {"id": "R2", "concept": "fam", "check": "missing"}]}))
    path = workdir / "waivers.yaml"
    ran = [0]

    waiver_files = st.fixed_dictionaries({
        "apiVersion": st.sampled_from(["cg-gate/v1", "v0"]),
        "kind": st.sampled_from(["WaiverSet", "GatePolicy", "Suite"]),
        "waivers": st.lists(waiver(), max_size=3)})

    @_settings(WAIVER_FILES)
    @given(as_yaml(waiver_files))
    def check(text):
        path.write_text(text, encoding="utf-8")
        _run(ran, "policy", "validate", str(pol), "--waivers", str(path), "--today", "2026-11-01")

    check()
    assert ran[0] >= _examples(WAIVER_FILES)


def test_fuzzed_yaml_suites_exit_0_or_2(workdir):
    path = workdir / "suite.yaml"
    ran = [0]

    @_settings(YAML_SUITES)
    @given(as_yaml(suite()))
    def check(text):
        path.write_text(text, encoding="utf-8")
        _run(ran, "suite", "validate", str(path))

    check()
    assert ran[0] >= _examples(YAML_SUITES)


def _json_line(draw, value) -> str:
    text = json.dumps(value, ensure_ascii=draw(st.booleans()), default=str)
    if draw(st.integers(0, 5)) == 0:
        text = draw(st.sampled_from(["{", "[" * 5000 + "]" * 5000, "NaN", '{"id": 1,}',
                                     "\x00", '"just text"', "[1, 2]"]))
    return text


def test_fuzzed_jsonl_suites_exit_0_or_2(workdir):
    path = workdir / "suite.jsonl"
    ran = [0]

    @_settings(JSONL_SUITES)
    @given(st.data())
    def check(data):
        doc = data.draw(suite())
        rows = doc["items"] if isinstance(doc["items"], list) else [doc["items"]]
        lines = [_json_line(data.draw, row) for row in rows]
        if data.draw(st.booleans()):
            header = {k: v for k, v in doc.items() if k != "items"}
            lines.insert(0, _json_line(data.draw, header))
        text = "\n".join(lines) + "\n"
        if data.draw(st.integers(0, 9)) == 0:
            text = "\ufeff" + text
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _run(ran, "suite", "validate", str(path))

    check()
    assert ran[0] >= _examples(JSONL_SUITES)


def test_fuzzed_csv_suites_exit_0_or_2(workdir):
    import csv
    import io

    path = workdir / "suite.csv"
    ran = [0]
    columns = ["id", "input", "target", "category", "severity", "score", "extra"]

    @_settings(CSV_SUITES)
    @given(st.data())
    def check(data):
        header = data.draw(st.lists(st.sampled_from(columns), min_size=1, max_size=6,
                                    unique=True))
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        for _ in range(data.draw(st.integers(0, 3))):
            writer.writerow([str(data.draw(scalars)) for _ in header])
        text = out.getvalue()
        if data.draw(st.integers(0, 9)) == 0:
            text = "\ufeff" + text
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _run(ran, "suite", "validate", str(path))

    check()
    assert ran[0] >= _examples(CSV_SUITES)
