"""`cg-gate suite validate | show | import` through click's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from cg_gate.cli import cli
from cg_gate.suites import load_suite, starter_suite_path

GOOD = """\
apiVersion: cg-gate/v1
kind: Suite
metadata: {name: mini, version: "0.1"}
categories:
  math: {purpose: Sums., severity: high}
  geo: {purpose: Capitals., severity: low}
items:
  - {id: m1, category: math, input: "2+2?", target: "4", scorer: numeric}
  - {id: g1, category: geo, input: "Capital of France?", target: Paris, scorer: exact_match}
"""


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_validate_prints_counts_and_digest(tmp_path):
    p = tmp_path / "mini.yaml"
    p.write_text(GOOD)
    result = invoke("suite", "validate", str(p), str(starter_suite_path()))
    assert result.exit_code == 0, result.output
    digest = load_suite(p).digest()
    assert f"sha256:{digest}" in result.output
    assert "items: 2" in result.output and "categories: 2 (geo=1, math=1)" in result.output
    assert "items: 300" in result.output


def test_validate_bad_file_exits_2_with_file_and_line_and_no_traceback(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(GOOD + "  - {id: m1, input: again, scorer: numeric}\n")
    result = invoke("suite", "validate", str(p))
    assert result.exit_code == 2
    assert f"{p}:10" in result.output and "duplicate item id 'm1'" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_validate_syntax_error_exits_2_with_line(tmp_path):
    p = tmp_path / "syntax.yaml"
    p.write_text("items:\n  - id: a\n    input: [oops\n")
    result = invoke("suite", "validate", str(p))
    assert result.exit_code == 2 and f"{p}:" in result.output and "not valid YAML" in result.output
    assert "Traceback" not in result.output


def test_validate_duplicate_key_exits_2_with_file_and_line(tmp_path):
    p = tmp_path / "dup.yaml"
    p.write_text("items:\n  - id: a\n    input: first\n    input: second\n    scorer: exact_match\n")
    result = invoke("suite", "validate", str(p))
    assert result.exit_code == 2
    assert f"{p}:4" in result.output and "duplicate key 'input'" in result.output
    assert "Traceback" not in result.output


def test_validate_missing_file_exits_2(tmp_path):
    result = invoke("suite", "validate", str(tmp_path / "none.yaml"))
    assert result.exit_code == 2 and "not found" in result.output


def test_validate_csv_with_map(tmp_path):
    p = tmp_path / "qa.csv"
    p.write_text("qid,question,answer\n1,2+2?,4\n")
    result = invoke("suite", "validate", str(p), "--map", "input=question,target=answer,id=qid", "--scorer", "numeric")
    assert result.exit_code == 0, result.output
    assert "items: 1" in result.output
    bad = invoke("suite", "validate", str(p), "--map", "input")
    assert bad.exit_code == 2 and "bad column mapping" in bad.output


def test_show_table_and_category_filter(tmp_path):
    p = tmp_path / "mini.yaml"
    p.write_text(GOOD)
    result = invoke("suite", "show", str(p))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "CATEGORY", "SEVERITY", "SCORER", "PROMPT"]
    assert lines[1].split()[:4] == ["m1", "math", "high", "numeric"]
    assert lines[2].split()[:4] == ["g1", "geo", "low", "exact_match"]
    only = invoke("suite", "show", str(p), "--category", "geo")
    assert only.exit_code == 0 and "g1" in only.output and "m1" not in only.output
    assert "1 item(s)" in only.output
    missing = invoke("suite", "show", str(p), "--category", "nope")
    assert missing.exit_code == 2 and "geo, math" in missing.output


def test_import_each_source_writes_a_loadable_suite(tmp_path):
    lm = tmp_path / "samples_demo_2025-01-01T00-00-00.jsonl"
    lm.write_text(json.dumps({
        "doc_id": 5, "doc": {"q": "1+1"}, "target": "2",
        "arguments": {"gen_args_0": {"arg_0": "Q: 1+1\nA:", "arg_1": {"until": ["\n"]}}},
        "resps": [["2"]], "filtered_resps": ["2"], "filter": "none", "metrics": ["exact_match"],
        "exact_match": 1.0}) + "\n")
    insp = tmp_path / "log.json"
    insp.write_text(json.dumps({
        "version": 2, "status": "success", "eval": {"task": "t", "model": "m/x", "run_id": "r"},
        "samples": [{"id": "s1", "epoch": 1, "input": "hi", "target": "hello",
                     "output": {"completion": "hello"}, "scores": {"match": {"value": "C"}}}]}))
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"id": "p1", "input": "x", "response": "y", "score": 0.5}) + "\n")
    for source, path, item_id, score in (("lm-eval", lm, "5", 1.0), ("inspect", insp, "s1", 1.0),
                                         ("jsonl", plain, "p1", 0.5)):
        out = tmp_path / f"{source}.jsonl"
        result = invoke("suite", "import", "--from", source, str(path), "--out", str(out))
        assert result.exit_code == 0, result.output
        assert "imported 1 item(s)" in result.output
        s = load_suite(out)
        assert [(i.id, i.score) for i in s.items] == [(item_id, score)]
        assert s.items[0].metadata["provenance"]["importer"] == source


def test_import_bad_file_exits_2(tmp_path):
    bad = tmp_path / "samples_x_2025-01-01T00-00-00.jsonl"
    bad.write_text('{"doc_id": 1}\n{oops\n')
    result = invoke("suite", "import", "--from", "lm-eval", str(bad), "--out", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 2 and f"{bad}:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_suite_commands_do_not_import_heavy_libraries(tmp_path):
    code = (
        "import sys\n"
        "from cg_gate.cli import main\n"
        "try:\n"
        f"    main(['suite', 'validate', {str(starter_suite_path())!r}])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'sae_lens', 'datasets') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
