"""Reading results.json: what a bad file's own text can put into the error message."""

from __future__ import annotations

import json

import pytest

from cg_gate.errors import ResultsError
from cg_gate.record import read_results
from fixtures.make_run import make_run


def _written(tmp_path, data) -> str:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_an_unknown_schema_version_is_quoted_inert(tmp_path):
    data = make_run().model_dump(mode="json")
    data["schema_version"] = "9.0\n::error file=README.md,line=1::owned\r\x1b[2J"
    with pytest.raises(ResultsError) as err:
        read_results(_written(tmp_path, data))
    text = err.value.render()
    assert "\n" not in text and "\r" not in text and "\x1b" not in text
    assert "version '9.0\\n::error file=README.md,line=1::owned' is not" in text  # 40 chars
    assert err.value.exit_code == 2


def test_a_hostile_key_in_an_invalid_record_is_quoted_inert(tmp_path):
    data = make_run().model_dump(mode="json")
    data["concepts"][0]["chi_bench"] = {"\n::error::evil": "high"}
    with pytest.raises(ResultsError) as err:
        read_results(_written(tmp_path, data))
    text = err.value.render()
    assert "\n" not in text
    assert "invalid results record at 'concepts.0.chi_bench.\\n::error::evil'" in text


def test_a_binary_or_directory_results_path_is_a_clear_error(tmp_path):
    binary = tmp_path / "results.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(ResultsError, match="not UTF-8 JSON text") as err:
        read_results(binary)
    assert err.value.exit_code == 2 and err.value.path == str(binary)
    with pytest.raises(ResultsError, match="is a directory"):
        read_results(tmp_path)
