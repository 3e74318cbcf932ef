"""Hostile input: nothing a policy, waiver, suite, label or record says reaches a CI runner as
a workflow command, and every failure that is not an enforced rule exits 2 with one line
naming the file and line — never 1, never a traceback."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from builders import build_tiny_sae
from cg_gate._terminal import clean, safe_lines
from cg_gate.cli import cli
from cg_gate.errors import PolicyError, SuiteError

# Each piece would start or smuggle a GitHub workflow command if printed raw.
HOSTILE = ("x\n::error file=README.md,line=1::pwned\r::stop-commands::tok\r\n  ::warning::w"
           "\x1b[2K\x07\u2028::notice::n ##[error]legacy")


def _lines(text: str) -> list[str]:
    return re.split(r"[\r\n]", text)


def assert_inert(text: str) -> None:
    """No line (split on LF and CR, as the runner does) is a workflow command."""
    for line in _lines(text):
        assert not line.lstrip().startswith("::"), repr(line)
        assert "##[" not in line, repr(line)
        assert "\x1b" not in line and "\x07" not in line, repr(line)


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(cli, list(args), **kwargs)


def assert_clean_exit(res, code: int) -> None:
    assert res.exit_code == code, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output and "Traceback" not in res.stderr
    assert_inert(res.stdout)
    assert_inert(res.stderr)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def yq(text: str) -> str:
    """A YAML double-quoted scalar holding `text` exactly (JSON strings are valid YAML)."""
    return json.dumps(text)


# --------------------------------------------------------------------------- the neutraliser


@pytest.mark.parametrize(("raw", "expected"), [
    ("plain", "plain"),
    ("a\nb", "a\\nb"),
    ("a\rb", "a\\rb"),
    ("tab\there", "tab\\there"),
    ("\x1b[31mred", "\\x1b[31mred"),
    ("\x7f\x85", "\\x7f\\x85"),
    ("line\u2028sep", "line\\u2028sep"),
    ("\ufeffbom", "\\ufeffbom"),
    ("see ##[error]x", "see #\\#[error]x"),
    ("::error::x", "::error::x"),  # inside a line it is inert; safe_lines guards line starts
])
def test_clean_escapes_every_control_character(raw, expected):
    assert clean(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("::error::x", "\\::error::x"),
    ("  ::add-mask::y", "  \\::add-mask::y"),
    ("ok\n::set-output name=a::b", "ok\n\\::set-output name=a::b"),
    ("a\r::error::b", "a\\r::error::b"),
    ("a: b :: c", "a: b :: c"),
    ("x ##[group]y", "x #\\#[group]y"),
    ("tab\tkept\nlf kept", "tab\tkept\nlf kept"),
])
def test_safe_lines_keeps_own_line_feeds_and_guards_line_starts(raw, expected):
    assert safe_lines(raw) == expected


# --------------------------------------------------------------------------- hostile documents

POLICY_HEAD = """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {{name: hostile, owner: {owner}, description: {desc}}}
concepts:
  early:
    title: {title}
    description: {desc}
    match: {{ids: [0, 1, 2, 3, 4, 5, 6, 7], labels: [{label}]}}
rules:
  - {{id: R1, concept: early, check: coverage, min_covered_fraction: 0.0, title: {title},
     tags: [{title}], description: {desc}}}
  - {{id: R2, concept: early, check: performance, min: 0.99, title: {title}}}
waivers:
  - {{rule: R2, reason: {desc}, ticket: {title}, approved_by: {owner}, expires: {expires}}}
"""


def hostile_policy(tmp_path: Path, expires: str = "2026-12-01", analysis: str = "",
                   expired_too: bool = False) -> Path:
    text = POLICY_HEAD.format(owner=yq(HOSTILE), desc=yq(HOSTILE), title=yq("T " + HOSTILE),
                              label=yq("(?i)" + re.escape("::error")), expires=expires)
    if expired_too:
        text += (f"  - {{rule: R1, reason: {yq(HOSTILE)}, ticket: {yq(HOSTILE)}, "
                 f"approved_by: {yq(HOSTILE)}, expires: 2020-01-01}}\n")
    return write(tmp_path / "policy.yaml", text + analysis)


HOSTILE_SUITE = {
    "apiVersion": "cg-gate/v1", "kind": "Suite",
    "metadata": {"name": "hostile", "version": HOSTILE},
    "categories": {HOSTILE: {"purpose": HOSTILE, "severity": "high"}},
    "items": [{"id": f"{HOSTILE}-{i}", "input": f"{HOSTILE} question {i}", "category": HOSTILE,
               "scorer": {"name": "regex", "args": {"must_include": ["zzz-never-zzz"]}}}
              for i in range(6)],
}


def test_policy_validate_and_explain_print_hostile_values_inert(tmp_path):
    path = hostile_policy(tmp_path)
    for args in (["policy", "validate", str(path), "--today", "2026-11-01"],
                 ["policy", "explain", str(path)]):
        res = invoke(*args)
        assert_clean_exit(res, 0)
        assert "pwned" in res.output  # the value is shown, only inert


def test_an_expired_hostile_waiver_warning_is_inert_and_fail_on_expired_still_exits_1(tmp_path):
    path = hostile_policy(tmp_path, expires="2026-01-01")
    res = invoke("policy", "validate", str(path), "--today", "2026-02-01", "--fail-on-expired")
    assert_clean_exit(res, 1)
    assert "expired on 2026-01-01" in res.stderr


def test_error_messages_that_quote_hostile_keys_are_inert(tmp_path):
    bad_key = write(tmp_path / "p.yaml", "apiVersion: cg-gate/v1\nkind: GatePolicy\n"
                    f"metadata: {{name: p}}\n{yq(HOSTILE)}: 1\n")
    bad_family = write(tmp_path / "q.yaml", "apiVersion: cg-gate/v1\nkind: GatePolicy\n"
                       f"metadata: {{name: p}}\nconcepts:\n  {yq(HOSTILE)}: {{match: {{ids: [1]}}}}\n")
    for path in (bad_key, bad_family):
        res = invoke("policy", "validate", str(path))
        assert_clean_exit(res, 2)
        assert "pwned" in res.stderr and f"{path}:" in res.stderr


def test_suite_validate_and_show_print_hostile_ids_and_categories_inert(tmp_path):
    yaml_suite = write(tmp_path / "s.json", json.dumps(HOSTILE_SUITE))
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text("\n".join(json.dumps({"id": HOSTILE + str(i), "input": HOSTILE,
                                           "category": HOSTILE, "score": 1})
                               for i in range(3)) + "\n")
    for args in (["suite", "validate", str(yaml_suite), str(jsonl)],
                 ["suite", "show", str(yaml_suite)],
                 ["suite", "show", str(jsonl), "--category", HOSTILE],
                 ["suite", "show", str(jsonl), "--category", "nope" + HOSTILE]):
        res = invoke(*args)
        assert_clean_exit(res, 2 if "nope" in args[-1] else 0)
        assert "pwned" in res.output


def _hostile_record(tmp_path: Path) -> Path:
    from fixtures.make_run import make_run

    from cg_gate.record import dump_results

    run = make_run()
    verdicts = [v.model_copy(update={"rule_id": v.rule_id + HOSTILE, "message": HOSTILE,
                                     "title": HOSTILE}) for v in run.verdicts]
    families = [f.model_copy(update={"members": [m.model_copy(update={"label": HOSTILE})
                                                 for m in f.members]}) for f in run.families]
    run = run.model_copy(update={"verdicts": verdicts, "families": families})
    path = tmp_path / "results.json"
    path.write_text(dump_results(run), encoding="utf-8")
    return path


def test_report_and_explain_with_a_hostile_record_are_inert(tmp_path):
    results = _hostile_record(tmp_path)
    out = tmp_path / ("out" + "\n::error::dir")
    res = invoke("report", str(results), "--format", "md,json", "--out", str(out))
    assert_clean_exit(res, 1)  # the fixture run fails an enforced rule
    assert (out / "summary.md").is_file()
    policy = hostile_policy(tmp_path)
    res = invoke("policy", "explain", str(policy), "--results", str(results))
    assert_clean_exit(res, 0)


# --------------------------------------------------------------------------- run on a tiny model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model_dir) -> Path:
    root = tmp_path_factory.mktemp("hostile-run")
    build_tiny_sae(root / "sae", d_in=64, d_sae=256, hook="blocks.2.hook_resid_post")
    (root / "sae" / "labels.jsonl").write_text("\n".join(
        json.dumps({"id": i, "label": f"{HOSTILE} {i}"}) for i in range(256)) + "\n")
    write(root / "suite.json", json.dumps(HOSTILE_SUITE))
    return root


def _run_args(tiny: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--model", str(model), "--sae", str(tiny / "sae"), "--suite",
            str(tiny / "suite.json"), "--out", str(out), "--cache-dir", str(tiny / "cache"),
            "--max-new-tokens", "3", "--batch-size", "6", "--no-progress", "--formats", "json",
            "--no-validity",
            *extra]


def test_run_verdict_table_with_hostile_waiver_rule_and_labels_is_inert(tiny, tiny_model_dir,
                                                                        tmp_path):
    policy = hostile_policy(tmp_path, expires=(dt.date.today() + dt.timedelta(days=30)).isoformat(),
                            analysis="analysis: {min_support: 1, bootstrap: {samples: 50}, "
                                     "stability: {repeats: 2}}\n", expired_too=True)
    res = invoke(*_run_args(tiny, tiny_model_dir, tmp_path / "out", "--policy", str(policy)))
    # R2 fails but is waived, R1 passes; the expired waiver is an enforced violation: exit 1
    assert_clean_exit(res, 1)
    assert re.search(r"^R2 +WAIVED", res.stdout, re.M)
    assert re.search(r"^WAIVER-EXPIRED:R1 +FAIL", res.stdout, re.M)
    assert "R1 (x\\n::error file=README.md,line=1::pwned\\r::stop" in res.stdout  # escaped
    record = json.loads((tmp_path / "out" / "results.json").read_text())
    assert record["waivers"][0]["approved_by"] == HOSTILE.strip()  # kept as written


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell files apart")
def test_full_cache_exits_2_with_the_cause_and_leaves_no_partial_entry(tiny, tiny_model_dir,
                                                                      tmp_path, monkeypatch):
    import cg_gate.record._io as io_module

    class FullDisk:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def fsync(fd):
            # the disk fills up when the first cache entry (a file in a shard folder) is written
            target = Path(os.readlink(f"/proc/self/fd/{fd}"))
            if re.fullmatch(r"[0-9a-f]{2}", target.parent.name):
                written.append(target)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return os.fsync(fd)

    written: list[str] = []
    monkeypatch.setattr(io_module, "os", FullDisk())
    cache = tmp_path / "cache"
    args = _run_args(tiny, tiny_model_dir, tmp_path / "out")
    args[args.index("--cache-dir") + 1] = str(cache)
    res = invoke(*args)
    assert_clean_exit(res, 2)
    assert "no space left on the device" in res.stderr
    assert "internal error" not in res.stderr
    leftovers = [p for p in cache.rglob("*") if p.is_file() and p.name.endswith(".tmp")]
    assert leftovers == []
    assert not (tmp_path / "out" / "results.json").exists()
    assert written and all(re.fullmatch(r"[0-9a-f]{2}", p.parent.name) for p in written)
    entries = [p for p in cache.rglob("*") if p.is_file()
               and re.fullmatch(r"[0-9a-f]{2}", p.parent.name)]
    assert entries == []  # the entry whose write failed was never put in place, no temp left


# --------------------------------------------------------------------------- the exit-code contract


def _boom(*_a, **_k):
    raise AssertionError("no model may load before the inputs are checked")


@pytest.fixture
def no_model(monkeypatch):
    import cg_gate.models
    import cg_gate.sae

    monkeypatch.setattr(cg_gate.models, "load_model", _boom)
    monkeypatch.setattr(cg_gate.sae, "load_sae", _boom)


def test_an_unexpected_exception_exits_2_with_one_line_and_a_traceback_log(tmp_path, monkeypatch):
    import cg_gate.policy

    def crash(*_a, **_k):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(cg_gate.policy, "load_policy", crash)
    policy = hostile_policy(tmp_path)
    res = invoke("policy", "validate", str(policy))
    assert_clean_exit(res, 2)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: internal error: RuntimeError: "
                                                   "something broke;")
    log = Path(re.search(r"the traceback is in (\S+);", lines[0]).group(1))
    try:
        text = log.read_text()
        assert "Traceback" in text and "crash" in text and "second line" in text
    finally:
        log.unlink()
    res = invoke("--debug", "policy", "validate", str(policy))
    assert res.exit_code == 2 and "Traceback" in res.stderr and "in crash" in res.stderr
    Path(re.search(r"the traceback is in (\S+);", res.stderr).group(1)).unlink()


def test_usage_errors_keep_exit_2_and_a_failing_gate_keeps_exit_1(tmp_path):
    assert invoke("policy", "validate").exit_code == 2
    assert invoke("no-such-command").exit_code == 2
    results = _hostile_record(tmp_path)
    assert invoke("report", str(results), "--format", "json", "--out",
                  str(tmp_path / "o")).exit_code == 1


POLICY_OK = """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: p}
concepts:
  fam: {match: {ids: [1]}}
rules:
  - {id: R1, concept: fam, check: performance, min: 0.5}
"""


@pytest.mark.parametrize(("extra", "needle", "message"), [
    ("waivers:\n  - {rule: R1, reason: r, approved_by: a, expires: 2027-02-30}\n",
     "2027-02-30", "looks like a date but is not one"),
    ("analysis: {bootstrap: {samples: 1.0e+11}}\n", "samples", "less than or equal to 100000"),
    ("analysis: {bootstrap: {samples: 100000000000}}\n", "samples", "less than or equal"),
    ("analysis: {stability: {repeats: 1.0e+9}}\n", "repeats", "less than or equal"),
    ("analysis: {tau_over: .inf}\n", "tau_over", "must be a number"),
    ("analysis: {tau_under: .nan}\n", "tau_under", "must be a number"),
    ("analysis: {min_support: -3}\n", "min_support", "greater than or equal to 1"),
    ("waiver_policy: {max_days: 100000}\n", "max_days", "less than or equal"),
])
def test_bad_policy_values_exit_2_at_their_line(tmp_path, extra, needle, message):
    path = write(tmp_path / "p.yaml", POLICY_OK + extra)
    res = invoke("policy", "validate", str(path), "--today", "2026-11-01")
    assert_clean_exit(res, 2)
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if needle in t)
    assert f"{path}:{line}:" in res.stderr and message in res.stderr, res.stderr


def test_nan_threshold_says_it_must_be_a_number_not_a_bound(tmp_path):
    path = write(tmp_path / "p.yaml", POLICY_OK.replace("min: 0.5", "min: .nan"))
    res = invoke("policy", "validate", str(path))
    assert_clean_exit(res, 2)
    assert "rules[0] (R1).min: must be a number" in res.stderr and "≤" not in res.stderr


def test_metadata_written_as_text_gets_a_user_message(tmp_path):
    path = write(tmp_path / "p.yaml", POLICY_OK.replace("metadata: {name: p}", "metadata: hello"))
    res = invoke("policy", "validate", str(path))
    assert_clean_exit(res, 2)
    assert f"{path}:3:" in res.stderr
    assert "metadata: must be a mapping of keys to values, not the text 'hello'" in res.stderr
    assert "instance of" not in res.stderr


@pytest.mark.parametrize(("name", "body", "line", "message"), [
    ("date.yaml", "metadata: {name: s, created: 2027-02-30}\nitems:\n  - {id: a, input: hi}\n",
     1, "looks like a date but is not one"),
    ("cat.yaml", "categories:\n  refusal: Declines harmful requests\nitems:\n"
                 "  - {id: a, input: hi, category: refusal}\n", 2, "must be a mapping"),
    ("meta.yaml", "items:\n  - {id: a, input: hi}\n  - {id: b, input: hi, metadata: hello}\n",
     3, "metadata must be a mapping"),
    ("score.csv", "id,input,score\na,hi,0.5\nb,hi,abc\n", 3, "score 'abc' is not a number"),
    ("seven.jsonl", '{"id": "a", "input": "hi", "score": 0.5}\n{"id": "b", "input": "hi", '
                    '"score": 7}\n', 2, "score 7 is outside [0, 1]"),
    ("inf.jsonl", '{"id": "a", "input": "hi", "score": Infinity}\n', 1, "not a finite number"),
    ("nan.jsonl", '\n{"id": "a", "input": "hi", "score": NaN}\n', 2, "not a finite number"),
    ("inf.yaml", "items:\n  - {id: a, input: hi, score: .inf}\n", 2, "not a finite number"),
    ("deep.jsonl", "[" * 100_000 + "]" * 100_000 + "\n", 1, "nested too deeply"),
    ("big.jsonl", '{"id": "a", "input": "hi", "score": ' + "9" * 400 + "}\n", 1,
     "is not a finite number"),
    ("huge.jsonl", '{"id": "a", "input": "hi", "score": ' + "9" * 5000 + "}\n", 1,
     "not valid JSON: Exceeds the limit"),
    ("huge.yaml", "items:\n  - {id: a, input: hi, score: " + "9" * 5000 + "}\n", 2,
     "cannot be read (Exceeds the limit"),
    ("prompt.yaml", "items:\n  - {id: a, input: hi, system_prompt: 1}\n", 2,
     "system_prompt must be text"),
])
def test_bad_suites_exit_2_at_their_line_in_validate_and_in_run(tmp_path, no_model, name, body,
                                                                line, message):
    path = write(tmp_path / name, body)
    res = invoke("suite", "validate", str(path))
    assert_clean_exit(res, 2)
    assert f"{path}:{line}" in res.stderr and message in res.stderr, res.stderr
    res = invoke("run", "--suite", str(path), "--out", str(tmp_path / "o"), "--cache-dir",
                 str(tmp_path / "c"), "--no-progress")
    assert_clean_exit(res, 2)
    assert f"{path}:{line}" in res.stderr and message in res.stderr, res.stderr


def test_imported_results_reject_scores_outside_the_unit_interval(tmp_path):
    lm = write(tmp_path / "samples_t_2026-01-01T00.jsonl", json.dumps(
        {"doc_id": 0, "arguments": [["prompt"]], "resps": [["x"]], "filtered_resps": ["x"],
         "acc": float("nan")}) + "\n")
    res = invoke("suite", "import", "--from", "lm-eval", str(lm), "--out", str(tmp_path / "s.jsonl"))
    assert_clean_exit(res, 2)
    assert f"{lm}:1" in res.stderr and "not a finite number" in res.stderr


def test_a_byte_order_mark_is_accepted_in_yaml_csv_and_jsonl(tmp_path):
    from cg_gate.policy import load_policy
    from cg_gate.suites import load_suite

    bom = "\ufeff"
    csv_suite = write(tmp_path / "s.csv", bom + "id,input,score\na,hi,0.5\n")
    jsonl_suite = write(tmp_path / "s.jsonl", bom + '{"id": "a", "input": "hi", "score": 0.5}\n')
    yaml_suite = write(tmp_path / "s.yaml", bom + "items:\n  - {id: a, input: hi, score: 0.5}\n")
    for path in (csv_suite, jsonl_suite, yaml_suite):
        suite = load_suite(path)
        assert [(i.id, i.score) for i in suite.items] == [("a", 0.5)], path
    (tmp_path / "ex.jsonl").write_text(bom + '{"text": "I cannot help with that."}\n')
    policy = write(tmp_path / "p.yaml", bom + POLICY_OK.replace(
        "{match: {ids: [1]}}", "{match: {exemplars: {path: ex.jsonl}}}"))
    pol = load_policy(policy)
    from cg_gate.families import exemplar_texts

    assert exemplar_texts(pol.concepts["fam"].match.exemplars) == ["I cannot help with that."]


def test_impossible_dates_in_waiver_and_signoff_files_exit_2(tmp_path):
    policy = write(tmp_path / "p.yaml", POLICY_OK)
    waivers = write(tmp_path / "w.yaml", "apiVersion: cg-gate/v1\nkind: WaiverSet\nwaivers:\n"
                    "  - {rule: R1, reason: r, approved_by: a, expires: 2027-02-30}\n")
    res = invoke("policy", "validate", str(policy), "--waivers", str(waivers))
    assert_clean_exit(res, 2)
    assert f"{waivers}:4:" in res.stderr and "looks like a date but is not one" in res.stderr
    results = _hostile_record(tmp_path)
    signoff = write(tmp_path / "so.yaml", "approver: A. Chen\ndate: 2027-02-30\n")
    res = invoke("report", str(results), "--signoff-file", str(signoff), "--out",
                 str(tmp_path / "o"), "--format", "json")
    assert_clean_exit(res, 2)
    assert f"{signoff}:2:" in res.stderr
    quoted = write(tmp_path / "so2.yaml", "approver: A. Chen\ndate: '2027-02-30'\n")
    res = invoke("report", str(results), "--signoff-file", str(quoted), "--out",
                 str(tmp_path / "o"), "--format", "json")
    assert_clean_exit(res, 2)
    assert f"{quoted}:2:" in res.stderr and "2027-02-30" in res.stderr
    res = invoke("report", str(results), "--signoff-date", "2027-02-30", "--out",
                 str(tmp_path / "o"))
    assert_clean_exit(res, 2)
    assert "2027-02-30" in res.stderr


def test_a_binary_results_file_exits_2_naming_it(tmp_path):
    blob = tmp_path / "results.json"
    blob.write_bytes(bytes(range(256)) * 8)
    res = invoke("report", str(blob), "--out", str(tmp_path / "o"))
    assert_clean_exit(res, 2)
    assert f"{blob}: not UTF-8 JSON text" in res.stderr
    res = invoke("policy", "explain", str(write(tmp_path / "p.yaml", POLICY_OK)), "--results",
                 str(blob))
    assert_clean_exit(res, 2)
    assert f"{blob}: not UTF-8 JSON text" in res.stderr


# --------------------------------------------------------------------------- --out and --cache-dir


def test_out_under_a_file_is_refused_before_any_model_loads(tmp_path, no_model):
    blocker = write(tmp_path / "file", "x")
    res = invoke("run", "--out", str(blocker / "out"), "--cache-dir", str(tmp_path / "c"))
    assert_clean_exit(res, 2)
    assert f"{blocker / 'out'}: cannot create the output directory" in res.stderr
    res = invoke("run", "--out", str(tmp_path / "o"), "--cache-dir", str(blocker / "cache"))
    assert_clean_exit(res, 2)
    assert f"--cache-dir cannot be written (Not a directory in {blocker})" in res.stderr


def test_a_full_disk_under_out_is_found_before_any_model_loads(tmp_path, no_model, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # creating a file works on a full disk; writing fails
    res = invoke("run", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "c"))
    assert_clean_exit(res, 2)
    assert f"--out cannot be written (no space left on the device in {tmp_path})" in res.stderr
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # the probe file is gone


@pytest.mark.parametrize(("code", "cause"), [
    (errno.EACCES, "Permission denied"), (errno.EROFS, "Read-only file system"),
    (errno.ENOSPC, "no space left on the device"),
])
def test_unwritable_or_full_cache_dir_is_refused_before_any_model_loads(
        tmp_path, no_model, monkeypatch, code, cause):
    import tempfile

    real = tempfile.mkstemp
    cache = tmp_path / "cache"
    cache.mkdir()

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) == cache:
            raise OSError(code, os.strerror(code))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    res = invoke("run", "--out", str(tmp_path / "out"), "--cache-dir", str(cache))
    assert_clean_exit(res, 2)
    assert f"--cache-dir cannot be written ({cause} in {cache})" in res.stderr, res.stderr


# --------------------------------------------------------------------------- label patterns


def test_label_patterns_run_in_linear_time_and_match_like_search():
    from cg_gate.families import Labels, resolve_family
    from cg_gate.policy import ConceptSpec

    hostile = "a" * 200_000 + "!"
    words = ("word " * 40_000) + "!"
    labels = Labels(labels={0: hostile, 1: "aaaa", 2: words, 3: "two words", 4: "refusal"})
    nested = ConceptSpec.model_validate({"match": {"labels": ["(a+)+$"]}})
    fam = resolve_family("x", nested, labels=labels, d_sae=8, exemplar_saliency=None)
    assert [m.id for m in fam.members] == [1]
    words_rx = ConceptSpec.model_validate({"match": {"labels": [r"^(\w+\s?)+$"]}})
    fam = resolve_family("y", words_rx, labels=labels, d_sae=8, exemplar_saliency=None)
    assert [m.id for m in fam.members] == [1, 3, 4]


@pytest.mark.parametrize("pattern", [r"(?<=no )refusal", r"(a)\1", r"(?=x)y"])
def test_policy_validate_rejects_patterns_re2_cannot_run(tmp_path, pattern):
    path = write(tmp_path / "p.yaml", POLICY_OK.replace(
        "{match: {ids: [1]}}", f"{{match: {{labels: ['(?i)ok', {yq(pattern)}]}}}}"))
    res = invoke("policy", "validate", str(path))
    assert_clean_exit(res, 2)
    assert f"{path}:5:" in res.stderr and "does not compile (RE2" in res.stderr
    assert "absl" not in res.stderr  # RE2's own logging stays off the terminal


# --------------------------------------------------------------------------- waivers



class _Waived:
    @staticmethod
    def format(*, reason: str, who: str, expires: str) -> str:
        return POLICY_OK + ("waivers:\n  - {rule: R1, reason: %s, approved_by: %s, expires: %s}\n"
                            % (reason, who, expires))


WAIVED = _Waived()


@pytest.mark.parametrize(("reason", "who", "field"), [
    ('" "', "A. Chen", "reason"), ("known gap", '"\\t \\n"', "approved_by"), ('""', "x", "reason"),
])
def test_blank_waiver_reason_or_approver_is_refused(tmp_path, reason, who, field):
    path = write(tmp_path / "p.yaml", WAIVED.format(reason=reason, who=who, expires="2026-12-01"))
    res = invoke("policy", "validate", str(path), "--today", "2026-11-01")
    assert_clean_exit(res, 2)
    assert f"waivers[0] (R1).{field}" in res.stderr and f"{path}:9:" in res.stderr


def test_waiver_horizon_defaults_to_180_days_and_is_a_policy_setting(tmp_path):
    far = write(tmp_path / "p.yaml", WAIVED.format(reason="gap", who="a", expires="9999-12-31"))
    res = invoke("policy", "validate", str(far), "--today", "2026-11-01")
    assert_clean_exit(res, 2)
    assert ("expires on 9999-12-31, more than 180 days after 2026-11-01" in res.stderr
            and "on or before 2027-04-30" in res.stderr and f"{far}:9:" in res.stderr)
    edge = write(tmp_path / "e.yaml", WAIVED.format(reason="gap", who="a", expires="2027-04-30"))
    assert invoke("policy", "validate", str(edge), "--today", "2026-11-01").exit_code == 0
    over = write(tmp_path / "o.yaml", WAIVED.format(reason="gap", who="a", expires="2027-05-01"))
    assert invoke("policy", "validate", str(over), "--today", "2026-11-01").exit_code == 2
    longer = write(tmp_path / "l.yaml", "waiver_policy: {max_days: 365}\n" +
                   WAIVED.format(reason="gap", who="a", expires="2027-05-01"))
    assert invoke("policy", "validate", str(longer), "--today", "2026-11-01").exit_code == 0


# --------------------------------------------------------------------------- text paths


@pytest.fixture
def outside(tmp_path) -> Path:
    (tmp_path / "secret.jsonl").write_text('{"text": "outside the policy folder"}\n')
    (tmp_path / "pol" / "sub").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize("spec", [
    "{outside}/secret.jsonl", "../secret.jsonl", "sub/../../secret.jsonl", "pkg:../../x.jsonl",
    "~/secret.jsonl", "link/secret.jsonl",
])
@pytest.mark.parametrize("key", ["path", "reference"])
def test_exemplar_and_reference_paths_stay_in_the_policy_tree(outside, spec, key):
    (outside / "pol" / "link").symlink_to(outside)
    (outside / "pol" / "ex.jsonl").write_text('{"text": "inside"}\n')
    spec = spec.format(outside=outside)
    ex = f"{{path: {yq(spec)}}}" if key == "path" else f"{{path: ex.jsonl, reference: {yq(spec)}}}"
    path = write(outside / "pol" / "p.yaml",
                 POLICY_OK.replace("{match: {ids: [1]}}", f"{{match: {{exemplars: {ex}}}}}"))
    res = invoke("policy", "validate", str(path))
    assert_clean_exit(res, 2)
    assert f"{path}:5:" in res.stderr and "--allow-external-paths" in res.stderr, res.stderr
    if spec.startswith("pkg:"):
        return
    allowed = invoke("policy", "validate", str(path), "--allow-external-paths")
    if spec.startswith("~"):
        assert allowed.exit_code == 2 and "not found" in allowed.stderr  # no ~/secret.jsonl here
    else:
        assert_clean_exit(allowed, 0)


def test_relative_and_shipped_paths_inside_the_tree_are_read(outside):
    (outside / "pol" / "ex").mkdir()
    (outside / "pol" / "ex" / "a.jsonl").write_text('{"text": "inside"}\n')
    path = write(outside / "pol" / "p.yaml", POLICY_OK.replace(
        "{match: {ids: [1]}}",
        "{match: {exemplars: {path: ex/../ex/a.jsonl, reference: 'pkg:reference/neutral.jsonl'}}}"))
    assert_clean_exit(invoke("policy", "validate", str(path)), 0)


# --------------------------------------------------------------------------- checkpoints


def test_remote_code_refusal_names_the_flag(tmp_path, tiny_model_dir):
    from cg_gate.errors import ModelLoadError
    from cg_gate.models import ModelSpec, load_model

    model = tmp_path / "remote"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "config.json").read_text())
    config.update(model_type="custom-arch", auto_map={"AutoConfig": "code.Config",
                                                      "AutoModelForCausalLM": "code.Model"})
    (model / "config.json").write_text(json.dumps(config))
    tok = json.loads((model / "tokenizer_config.json").read_text())
    tok.pop("tokenizer_class", None)
    (model / "tokenizer_config.json").write_text(json.dumps(tok))
    (model / "code.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(ModelLoadError) as err:
        load_model(ModelSpec(id=str(model), device="cpu"))
    assert "--trust-remote-code" in err.value.fix and "auto_map" in err.value.message
    assert "tokenizer files" not in err.value.render()


def test_loader_errors_are_gate_errors_not_crashes(tmp_path):
    from cg_gate.policy import load_policy
    from cg_gate.suites import load_suite

    with pytest.raises(PolicyError):
        load_policy(write(tmp_path / "p.yaml", POLICY_OK + "analysis: {eps: .inf}\n"))
    with pytest.raises(SuiteError):
        load_suite(write(tmp_path / "s.jsonl", '{"id": "a", "input": "hi", "score": "7"}\n'))
