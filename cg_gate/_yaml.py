"""The one YAML loader of suites and policies: node positions kept, duplicate keys refused.

`load_yaml(path)` composes the document with the safe loader, rejects duplicate keys,
and returns the plain data together with a `Marks` table that maps a path inside the
data (`("rules", 2, "min")`) to the 1-based line and column of the node written there.
Errors are raised as the caller's `GateError` subclass (PolicyError, SuiteError).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cg_gate.errors import GateError, PolicyError

# libyaml's parser where PyYAML was built with it: the same nodes and marks, about 4x faster
SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PathKey = tuple[Any, ...]


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in a file."""

    line: int
    column: int


@dataclass
class Marks:
    """Where each node of a YAML document was written."""

    values: dict[PathKey, Position] = field(default_factory=dict)
    """Position of the value at a data path (mapping, sequence or scalar)."""
    keys: dict[PathKey, Position] = field(default_factory=dict)
    """Position of the key that introduces a data path (mappings only)."""

    def value(self, path: PathKey) -> Position:
        """Position of the node at `path`, or of its nearest written ancestor."""
        path = tuple(path)
        while path and path not in self.values:
            path = path[:-1]
        return self.values.get(path, Position(1, 1))

    def key(self, path: PathKey) -> Position:
        """Position of the key that introduces `path` (the value's position if none)."""
        path = tuple(path)
        if path in self.keys:
            return self.keys[path]
        return self.value(path)


@dataclass(frozen=True)
class YamlDocument:
    """Plain data of a YAML file, its node positions and its raw bytes."""

    path: Path
    data: Any
    marks: Marks
    raw: bytes


def _pos(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


_MAX_NODES = 200_000
_MAX_DEPTH = 64


def _build(node: yaml.Node, path: PathKey, loader: yaml.constructor.SafeConstructor, marks: Marks,
           src: Path, error: type[GateError]) -> Any:
    if len(marks.values) >= _MAX_NODES or len(path) > _MAX_DEPTH:
        p = _pos(node)
        raise error("the document is too large or too deeply nested (aliases expanding?)",
                    path=src, line=p.line, column=p.column,
                    fix=f"keep documents under {_MAX_NODES} values and {_MAX_DEPTH} levels")
    marks.values[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node, loader, src, error)
            if isinstance(key, (list, dict)):
                p = _pos(key_node)
                raise error("a mapping key must be a plain value", path=src, line=p.line,
                            column=p.column, fix="write the key as a word")
            if key in out:
                p = _pos(key_node)
                first = marks.keys.get(path + (key,), p)
                raise error(
                    f"duplicate key '{key}' (first written on line {first.line})",
                    path=src, line=p.line, column=p.column,
                    fix="remove one of the two entries; YAML would silently keep only the last",
                )
            marks.keys[path + (key,)] = _pos(key_node)
            out[key] = _build(value_node, path + (key,), loader, marks, src, error)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, path + (i,), loader, marks, src, error)
                for i, child in enumerate(node.value)]
    return _scalar(node, loader, src, error)


def _scalar(node: yaml.Node, loader: yaml.constructor.SafeConstructor, src: Path,
            error: type[GateError]) -> Any:
    """A scalar's value; a value YAML recognises but Python cannot hold (2027-02-30) is an
    error at its line, not a traceback."""
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:
        p = _pos(node)
        shown = str(node.value)
        shown = shown if len(shown) <= 40 else shown[:39] + "…"
        reason = str(exc).split(";")[0]
        if node.tag == "tag:yaml.org,2002:timestamp":
            raise error(f"'{shown}' looks like a date but is not one ({reason})", path=src,
                        line=p.line, column=p.column,
                        fix="write a real date as YYYY-MM-DD, or quote the value if it is text"
                        ) from None
        raise error(f"'{shown}' cannot be read ({reason})", path=src, line=p.line,
                    column=p.column, fix="correct the value, or quote it to keep it as text"
                    ) from None


def load_yaml(path: str | Path, *, error: type[GateError] = PolicyError,
              syntax: str = "YAML syntax error") -> YamlDocument:
    """Read one YAML (or JSON) document keeping node positions.

    Raises `error` naming the line for unreadable files, syntax errors (the message starts
    with `syntax`), several documents in one file and duplicate keys. An empty file has
    `data == {}` and no marks.
    """
    src = Path(path)
    try:
        raw = src.read_bytes()
    except FileNotFoundError:
        raise error("file not found", path=src, fix="check the path") from None
    except OSError as exc:
        raise error(f"cannot read the file ({exc.strerror})", path=src,
                    fix="check the path and its permissions") from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark is accepted, as in CSV and JSONL
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start})", path=src,
                    fix="save the file as UTF-8") from None
    loader = SafeLoader(text)
    try:
        node = loader.get_single_node()
        marks = Marks()
        data = {} if node is None else _build(node, (), loader, marks, src, error)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise error(f"{syntax}: {problem}", path=src, line=line, column=col,
                    fix="correct the YAML syntax at that position (indentation, quotes, colons)"
                    ) from None
    except yaml.YAMLError as exc:
        raise error(f"YAML error: {exc}", path=src, fix="correct the YAML syntax") from None
    finally:
        loader.dispose()
    return YamlDocument(path=src, data=data, marks=marks, raw=raw)
