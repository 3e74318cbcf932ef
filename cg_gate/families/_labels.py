"""Concept labels: feature id → human label (and optional top examples), read from local files.

Formats, recognised by content (never guessed from a name substring):

- JSON mapping `{"0": "label", "1": "label", ...}` (a value may also be an object with
  `label` and `examples`);
- JSON `{"features": [{"id": 0, "label": "...", "examples": ["..."]}, ...]}`;
- JSONL, one `{"id": 0, "label": "...", "examples": [...]}` per line (cg-gate's own files
  may add `detection`, the label's measured quality, which is kept);
- Neuronpedia explanation exports: JSONL (optionally `.gz`) or a JSON array of objects
  with `index` and `description` (other fields such as `modelId`, `layer`,
  `explanationModelName` are kept out of the way). When an index has several
  explanations, the first one is the label.

Any of these may be gzip-compressed (detected by its magic bytes).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cg_gate.errors import ConfigError
from cg_gate.jsonl import jsonl_rows

_FIX = ('write {"<id>": "<label>"}, {"features": [{"id", "label"}]}, JSONL lines with "id" and '
        '"label", or a Neuronpedia export with "index" and "description"')


@dataclass(frozen=True)
class Labels:
    """Feature labels of one SAE."""

    labels: dict[int, str]
    """Feature id → label."""
    examples: dict[int, list[str]] = field(default_factory=dict)
    """Feature id → top activating examples, where the file has them."""
    detection: dict[int, float] = field(default_factory=dict)
    """Feature id → how well its label tells where it fires on held-out text (AUROC: 0.5 says
    nothing, 1 exactly), where the file has it (`detection` of cg-gate's labels JSONL)."""
    source: str | None = None
    """File the labels were read from."""
    digest: str | None = None
    """sha256 of that file's bytes."""
    format: str = "memory"
    """'json-map', 'json-features', 'jsonl', 'neuronpedia' or 'memory'."""

    def __len__(self) -> int:
        return len(self.labels)

    def get(self, feature: int) -> str | None:
        """The label of a feature, None when it has none."""
        return self.labels.get(int(feature))

    def items(self) -> Iterator[tuple[int, str]]:
        """(id, label) pairs in id order."""
        for key in sorted(self.labels):
            yield key, self.labels[key]


def compile_label_pattern(pattern: str) -> Any:
    """A family's label regex, compiled by RE2: matching takes time linear in the label,
    whatever the pattern (no catastrophic backtracking, so no label can stall the gate).

    RE2 reads Python's syntax except back-references and look-around, which it cannot run
    in linear time; those, and anything else that does not compile, raise `ValueError`
    with RE2's reason. `.search(label)` on the result works like `re.search`.
    """
    import re2

    options = re2.Options()
    options.log_errors = False  # the reason goes into the error, not onto stderr
    options.max_mem = _PATTERN_MEMORY
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None


_PATTERN_MEMORY = 8 << 20
"""Bytes RE2 may use for one compiled label pattern (a pattern needing more is refused)."""


def labels_digest(path: str | Path) -> str:
    """sha256 of a labels file's bytes, as stored (compressed files are not decompressed)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_text(path: Path) -> tuple[str, bytes]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("labels file not found", path=path, fix="check the path") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the labels file ({exc.strerror})", path=path,
                          fix="check the path and its permissions") from None
    data = raw
    if raw[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ConfigError(f"corrupt gzip labels file ({exc})", path=path,
                              fix="re-download or re-compress the file") from None
    try:
        return data.decode("utf-8-sig"), raw
    except UnicodeDecodeError:
        raise ConfigError("labels file is not UTF-8 text", path=path, fix=_FIX) from None


def _feature_id(value: Any, path: Path, line: int | None) -> int:
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise ConfigError(f"feature id {value!r} is not a non-negative integer", path=path,
                          line=line, fix=_FIX)
    return value


def _examples(value: Any, path: Path, line: int | None) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError("'examples' must be a list", path=path, line=line, fix=_FIX)
    out = []
    for ex in value:
        if isinstance(ex, str):
            out.append(ex)
        elif isinstance(ex, dict) and isinstance(ex.get("text"), str):
            out.append(ex["text"])
        elif isinstance(ex, dict) and isinstance(ex.get("tokens"), list):
            out.append("".join(str(t) for t in ex["tokens"]))
        else:
            raise ConfigError("an example must be a string or an object with 'text'",
                              path=path, line=line, fix=_FIX)
    return out


class _Builder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.labels: dict[int, str] = {}
        self.examples: dict[int, list[str]] = {}
        self.detection: dict[int, float] = {}
        self.kinds: set[str] = set()

    def record(self, obj: Any, line: int | None) -> None:
        if not isinstance(obj, dict):
            raise ConfigError("expected an object per feature", path=self.path, line=line, fix=_FIX)
        if "index" in obj and "description" in obj:
            self.kinds.add("neuronpedia")
            fid, label = _feature_id(obj["index"], self.path, line), obj["description"]
        elif "id" in obj and "label" in obj:
            self.kinds.add("features")
            fid, label = _feature_id(obj["id"], self.path, line), obj["label"]
        else:
            keys = ", ".join(sorted(map(str, obj))) or "none"
            raise ConfigError(f"a feature record needs 'id' and 'label' (or Neuronpedia 'index' "
                              f"and 'description'); found keys: {keys}", path=self.path,
                              line=line, fix=_FIX)
        self.add(fid, label, obj.get("examples"), line, first_wins=True, detection=obj.get("detection"))

    def add(self, fid: int, label: Any, examples: Any, line: int | None, *, first_wins: bool,
            detection: Any = None) -> None:
        if label is None:
            return
        if not isinstance(label, str):
            raise ConfigError(f"label of feature {fid} is not text", path=self.path, line=line,
                              fix=_FIX)
        if fid in self.labels and first_wins:
            return
        self.labels[fid] = label.strip()
        ex = _examples(examples, self.path, line)
        if ex:
            self.examples[fid] = ex
        if isinstance(detection, (int, float)) and not isinstance(detection, bool) and 0 <= detection <= 1:
            self.detection[fid] = float(detection)


def load_labels(path: str | Path, *, d_sae: int | None = None) -> Labels:
    """Read a labels file in any supported format (see the module docstring).

    With `d_sae`, ids at or beyond the SAE's width are an error. Raises `ConfigError`
    naming the file (and line, for JSONL) and the accepted formats.
    """
    src = Path(path)
    text, raw = _read_text(src)
    b = _Builder(src)
    stripped = text.lstrip()
    fmt: str
    parsed: Any = None
    if stripped.startswith(("{", "[")):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None  # several JSON objects: JSONL
    if isinstance(parsed, dict) and "features" in parsed:
        feats = parsed["features"]
        if not isinstance(feats, list):
            raise ConfigError("'features' must be a list", path=src, fix=_FIX)
        for obj in feats:
            b.record(obj, None)
        fmt = "neuronpedia" if b.kinds == {"neuronpedia"} else "json-features"
    elif isinstance(parsed, dict):
        for key, value in parsed.items():
            fid = _feature_id(key, src, None)
            if isinstance(value, dict):
                b.add(fid, value.get("label"), value.get("examples"), None, first_wins=False)
            else:
                b.add(fid, value, None, None, first_wins=False)
        fmt = "json-map"
    elif isinstance(parsed, list):
        for obj in parsed:
            b.record(obj, None)
        fmt = "neuronpedia" if b.kinds == {"neuronpedia"} else "json-features"
    else:
        for n, obj in jsonl_rows(text, src, error=ConfigError,
                                 message="line is not valid JSON ({msg})", fix=_FIX):
            b.record(obj, n)
        fmt = "neuronpedia" if b.kinds == {"neuronpedia"} else "jsonl"
    if not b.labels:
        raise ConfigError("the labels file holds no labels", path=src, fix=_FIX)
    if d_sae is not None:
        too_big = [i for i in b.labels if i >= d_sae]
        if too_big:
            raise ConfigError(f"feature id {max(too_big)} is beyond the SAE's {d_sae} features",
                              path=src, fix="use the labels file made for this SAE")
    return Labels(labels=b.labels, examples=b.examples, detection=b.detection, source=str(src),
                  digest=hashlib.sha256(raw).hexdigest(), format=fmt)
