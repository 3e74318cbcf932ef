"""Labels files in every supported format, written by hand."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from cg_gate.errors import ConfigError
from cg_gate.families import labels_digest, load_labels


def test_json_map(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text('{"0": "refusal to help", "7": "dates and times", "3": "numbers"}')
    labels = load_labels(path)
    assert labels.format == "json-map"
    assert labels.labels == {0: "refusal to help", 7: "dates and times", 3: "numbers"}
    assert [i for i, _ in labels.items()] == [0, 3, 7]
    assert labels.get(5) is None and labels.get(7) == "dates and times"
    assert labels.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert labels_digest(path) == labels.digest


def test_json_features_with_examples(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"features": [
        {"id": 2, "label": "declining requests", "examples": ["I can't help with that", "Sorry"]},
        {"id": 9, "label": "arithmetic"},
    ]}))
    labels = load_labels(path)
    assert labels.format == "json-features"
    assert labels.labels == {2: "declining requests", 9: "arithmetic"}
    assert labels.examples == {2: ["I can't help with that", "Sorry"]}


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"id": 1, "label": "time", "examples": [{"text": "at noon"}]}\n\n'
                    '{"id": 4, "label": "  weekdays "}\n')
    labels = load_labels(path)
    assert labels.format == "jsonl"
    assert labels.labels == {1: "time", 4: "weekdays"}
    assert labels.examples == {1: ["at noon"]}


def test_jsonl_keeps_the_measured_detection_of_a_label(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"id": 1, "label": "a", "detection": 0.83, "detection_n": 40}\n'
                    '{"id": 2, "label": "b", "detection": null}\n'
                    '{"id": 3, "label": "c", "detection": true}\n'
                    '{"id": 4, "label": "d", "detection": 7}\n'
                    '{"id": 5, "label": "e"}\n')
    labels = load_labels(path)
    assert labels.detection == {1: 0.83}
    assert labels.labels == {1: "a", 2: "b", 3: "c", 4: "d", 5: "e"}


NEURONPEDIA = [
    {"modelId": "gemma-2-2b", "layer": "20-gemmascope-res-16k", "index": "12",
     "description": " refusals of harmful requests", "explanationModelName": "gpt-4o-mini",
     "typeName": "oai_token-act-pair"},
    {"modelId": "gemma-2-2b", "layer": "20-gemmascope-res-16k", "index": "3",
     "description": "calendar dates", "explanationModelName": "gpt-4o-mini"},
    {"modelId": "gemma-2-2b", "layer": "20-gemmascope-res-16k", "index": "12",
     "description": "a second explanation of 12", "explanationModelName": "claude"},
]


def test_neuronpedia_jsonl_gz(tmp_path: Path) -> None:
    path = tmp_path / "explanations.jsonl.gz"
    path.write_bytes(gzip.compress("\n".join(json.dumps(r) for r in NEURONPEDIA).encode()))
    labels = load_labels(path, d_sae=16384)
    assert labels.format == "neuronpedia"
    assert labels.labels == {12: "refusals of harmful requests", 3: "calendar dates"}
    assert labels.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_neuronpedia_json_array(tmp_path: Path) -> None:
    path = tmp_path / "explanations.json"
    path.write_text(json.dumps(NEURONPEDIA))
    labels = load_labels(path)
    assert labels.format == "neuronpedia" and labels.get(3) == "calendar dates"


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"id": 1, "label": "a"}\n{"id": 2, "lable": "b"}\n')
    with pytest.raises(ConfigError) as err:
        load_labels(path)
    assert err.value.line == 2 and "lable" in err.value.message and err.value.path == str(path)
    path.write_text('{"id": 1, "label": "a"}\n{"id": -3, "label": "b"}\n')
    with pytest.raises(ConfigError) as err:
        load_labels(path)
    assert err.value.line == 2
    path.write_text('{"id": 1, "label": "a"}\n{oops\n')
    with pytest.raises(ConfigError) as err:
        load_labels(path)
    assert err.value.line == 2
    path.write_text('{"5": "x", "70": "y"}')
    with pytest.raises(ConfigError) as err:
        load_labels(path, d_sae=64)
    assert "70" in err.value.message
    with pytest.raises(ConfigError):
        load_labels(tmp_path / "absent.json")
    path.write_text("{}")
    with pytest.raises(ConfigError):
        load_labels(path)
