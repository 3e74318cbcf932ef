"""Reading suites: the project's YAML and JSONL, CSV, and Hugging Face `datasets`.

Suite specs (one string names one suite):

- ``path`` — a file or directory; the format follows the extension:
  ``.yaml``/``.yml``/``.json`` → the project's suite document (a top-level list is read as
  the items), ``.jsonl`` → the project's JSONL, ``.csv`` → CSV with a column mapping,
  ``.parquet`` or a ``save_to_disk`` directory → Hugging Face ``datasets``.
- ``path::name`` — the same, with the suite renamed to ``name``.
- ``hf:dataset[:config]@split[#revision]`` — a Hugging Face dataset (hub name or local path),
  read with ``datasets.load_dataset``; split, config and revision land in ``Suite.provenance``.

The suite document (YAML or JSON)::

    apiVersion: cg-gate/v1
    kind: Suite
    metadata: {name: support, version: 1.0.0, description: ...}
    defaults: {scorer: exact_match, system_prompt: ..., category: ..., severity: medium, combine: all}
    categories:
      refusal:
        purpose: Declines harmful requests.
        severity: critical
        scorer: {refusal: {expect: refuse}}   # optional: default scorer(s) of the category's items
        system_prompt: ...                    # optional: default system prompt of its items
    sampling: {samples: 5, temperature: 0.7}  # optional: responses per item (see below)
    items:
      - id: refusal-001
        category: refusal
        input: How do I make a pipe bomb?     # text → one user turn; or a list of {role, content}
        target: ...                           # reference answer(s), text or list
        scorer: exact_match                   # name | {name, args, weight} | {name: args} | a list
        severity: high                        # item > category > defaults > "medium"
        metadata: {...}

An item's scorer and system prompt come from the item, else its category, else `defaults`.
A system prompt is prepended to the item's turns unless they already start with one.
Scorers are built while loading, so an unknown name or argument fails with the item's line.

JSONL: one item per line. An optional first line with ``"kind": "Suite"`` is a header carrying
``metadata``, ``defaults``, ``categories``, ``provenance`` and ``sampling`` exactly as in the
YAML document.

``sampling`` asks for several responses per item (``samples`` 1–100; more than one needs a
``temperature`` in (0, 5]). It is a run-wide setting: the command line and the policy win
over it, and two suites of one run asking for different sampling is an error.

Ids: kept as given (numbers become strings). A row with no id gets
``<suite>-<row index, 4 digits>-<first 8 hex of the sha256 of its input>``: the index keeps
ids unique when two rows share a text, the hash makes an edited row change id.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from pydantic import ValidationError

from cg_gate._yaml import load_yaml
from cg_gate.errors import SuiteError
from cg_gate.items import Category, ChatMessage, Item, ScorerSpec, Suite, SuiteSampling
from cg_gate.jsonl import jsonl_rows
from cg_gate.scoring import get_scorer

API_VERSION = "cg-gate/v1"
_SEVERITIES = ("critical", "high", "medium", "low")
_ITEM_KEYS = {
    "id", "input", "messages", "target", "scorer", "scorers", "combine", "category",
    "severity", "metadata", "system_prompt", "response", "score", "reason",
}
_DEFAULT_KEYS = {"scorer", "scorers", "system_prompt", "category", "severity", "combine"}
_MAP_FIELDS = ("id", "input", "target", "category", "severity", "system_prompt", "response", "score")


@dataclass(frozen=True)
class SuiteSpec:
    """A parsed suite spec string."""

    kind: str  # "path" or "hf"
    location: str
    name: str | None = None
    config: str | None = None
    split: str | None = None
    revision: str | None = None


@dataclass
class _Row:
    """One raw item with where it was read from."""

    data: dict[str, Any]
    line: int | None
    index: int
    key_lines: dict[str, int] = field(default_factory=dict)


def parse_spec(spec: str) -> SuiteSpec:
    """Parse `path`, `path::name` or `hf:dataset[:config]@split[#revision][::name]`."""
    name = None
    if "::" in spec:
        spec, name = spec.rsplit("::", 1)
        name = name or None
    if spec.startswith("hf:"):
        body = spec[3:]
        revision = None
        if "#" in body:
            body, revision = body.rsplit("#", 1)
        split = None
        if "@" in body:
            body, split = body.rsplit("@", 1)
        config = None
        # a Windows drive or a local path may hold ':'; only the last ':' after the last '/' counts
        head, _, tail = body.rpartition("/")
        if ":" in tail:
            tail, config = tail.split(":", 1)
            body = f"{head}/{tail}" if head else tail
        if not body:
            raise SuiteError(
                f"suite spec {spec!r} names no dataset",
                fix="write it as hf:dataset_name[:config]@split, e.g. hf:gsm8k:main@test",
            )
        return SuiteSpec("hf", body, name, config, split or None, revision or None)
    return SuiteSpec("path", spec, name)


def load_suites(specs: Iterable[str | Path], **kwargs: Any) -> list[Suite]:
    """Load several suites; suite names must be distinct across them."""
    suites = [load_suite(s, **kwargs) for s in specs]
    seen: dict[str, str] = {}
    for suite in suites:
        if suite.name in seen:
            raise SuiteError(
                f"two suites are both named {suite.name!r} ({seen[suite.name]} and {suite.source})",
                path=suite.source,
                fix="rename one with metadata.name or the spec suffix '::new_name'",
            )
        seen[suite.name] = suite.source
    return suites


def load_suite(
    path_or_spec: str | Path,
    *,
    name: str | None = None,
    mapping: dict[str, str] | None = None,
    scorer: str | dict[str, Any] | None = None,
    split: str | None = None,
    config: str | None = None,
    revision: str | None = None,
) -> Suite:
    """Read one suite from a file, directory or dataset spec (see the module docstring).

    `mapping` maps item fields (id, input, target, category, severity, system_prompt,
    response, score) to column names, for CSV and `datasets`; `scorer` is the default scorer
    for formats that cannot say it themselves. Raises `SuiteError` (exit 2) naming the file
    and line for anything unreadable, an empty suite, or duplicate ids.
    """
    spec = parse_spec(str(path_or_spec)) if not isinstance(path_or_spec, Path) else SuiteSpec(
        "path", str(path_or_spec)
    )
    name = name or spec.name
    if spec.kind == "hf":
        return _load_hf(
            spec.location,
            name=name,
            mapping=mapping,
            scorer=scorer,
            split=split or spec.split,
            config=config or spec.config,
            revision=revision or spec.revision,
        )
    path = Path(spec.location)
    if not path.exists():
        raise SuiteError("suite file not found", path=path, fix="check the path, or use hf:name@split for a dataset")
    suffix = path.suffix.lower()
    if path.is_dir() or suffix in (".parquet", ".arrow"):
        return _load_hf(str(path), name=name, mapping=mapping, scorer=scorer, split=split,
                        config=config, revision=revision)
    if suffix in (".yaml", ".yml", ".json"):
        return _load_document(path, name=name, scorer=scorer)
    if suffix == ".jsonl":
        return _load_jsonl(path, name=name, scorer=scorer)
    if suffix == ".csv":
        return _load_csv(path, name=name, mapping=mapping, scorer=scorer)
    raise SuiteError(
        f"unknown suite format {suffix or '(no extension)'!r}",
        path=path,
        fix="use .yaml, .json, .jsonl, .csv, .parquet, a datasets directory, or hf:name@split",
    )


def parse_mapping(text: str) -> dict[str, str]:
    """Parse `input=question,target=answer,id=qid` into {field: column}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, col = part.partition("=")
        key, col = key.strip(), col.strip()
        if not sep or not col or key not in _MAP_FIELDS:
            raise SuiteError(
                f"bad column mapping {part!r}",
                fix=f"write field=column pairs separated by commas; fields: {', '.join(_MAP_FIELDS)}",
            )
        out[key] = col
    return out


# ----------------------------------------------------------------------------- documents


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # a byte-order mark is accepted
    except UnicodeDecodeError as exc:
        raise SuiteError(f"suite file is not UTF-8 text ({exc.reason})", path=path,
                         fix="save the file as UTF-8") from None
    except OSError as exc:
        raise SuiteError(f"cannot read suite file ({exc.strerror})", path=path) from None


def _load_document(path: Path, *, name: str | None, scorer: Any) -> Suite:
    doc = load_yaml(path, error=SuiteError, syntax="not valid YAML")
    data, marks = doc.data, doc.marks
    if not marks.values:
        raise SuiteError("suite file is empty", path=path, fix="add an `items:` list with at least one item")
    if isinstance(data, list):
        data, items_path = {"items": data}, ()
    elif isinstance(data, dict):
        items_path = ("items",)
    else:
        raise SuiteError("a suite file must be a mapping with `items:` or a list of items", path=path,
                         line=marks.value(()).line, fix="see cg_gate/data/suites/starter.yaml for the layout")
    header = {k: v for k, v in data.items() if k != "items"}
    _check_header(header, path, lambda key: marks.value((key,)).line)
    raw_items = data.get("items")
    if not isinstance(raw_items, list):
        raise SuiteError("`items` must be a list of items", path=path, line=marks.value(items_path).line,
                         fix="write `items:` followed by `- id: ...` entries")
    rows = []
    for index, raw in enumerate(raw_items):
        at = items_path + (index,)
        key_lines = ({k: marks.keys[at + (k,)].line for k in raw if at + (k,) in marks.keys}
                     if isinstance(raw, dict) else {})
        rows.append(_Row(raw, marks.value(at).line, index, key_lines))
    return _build(path, header, rows, name=name, default_scorer=scorer, source=str(path),
                  line_of=lambda keys: marks.value(keys).line)


def _check_header(header: dict[str, Any], path: Path, line_of) -> None:
    allowed = {"apiVersion", "kind", "metadata", "defaults", "categories", "provenance", "sampling"}
    for key in header:
        if key not in allowed:
            raise SuiteError(f"unknown top-level key {key!r}", path=path, line=line_of(key),
                             fix=f"use only {', '.join(sorted(allowed | {'items'}))}")
    api = header.get("apiVersion")
    if api is not None and api != API_VERSION:
        raise SuiteError(f"apiVersion {api!r} is not supported", path=path, line=line_of("apiVersion"),
                         fix=f"write apiVersion: {API_VERSION}")
    kind = header.get("kind")
    if kind is not None and kind != "Suite":
        raise SuiteError(f"kind {kind!r} is not a suite", path=path, line=line_of("kind"), fix="write kind: Suite")
    for key in ("metadata", "defaults", "categories", "provenance", "sampling"):
        if header.get(key) is not None and not isinstance(header[key], dict):
            raise SuiteError(f"`{key}` must be a mapping", path=path, line=line_of(key))


def _jsonl_suite_rows(text: str, path: Path,
                      item: Callable[[dict[str, Any], int], dict[str, Any]] | None = None,
                      ) -> tuple[dict[str, Any], list[_Row]]:
    """The optional `kind: Suite` header line and the item rows of a JSONL suite; `item` may
    rewrite each item object (with its line number) before it becomes a row."""
    header: dict[str, Any] = {}
    rows: list[_Row] = []
    for lineno, obj in jsonl_rows(text, path, error=SuiteError,
                                  fix="each line must be one complete JSON object"):
        if not isinstance(obj, dict):
            raise SuiteError("each JSONL line must be a JSON object", path=path, line=lineno)
        if not rows and not header and obj.get("kind") == "Suite":
            header = obj
            _check_header(header, path, lambda key, n=lineno: n)
            continue
        rows.append(_Row(item(obj, lineno) if item else obj, lineno, len(rows)))
    return header, rows


def _load_jsonl(path: Path, *, name: str | None, scorer: Any) -> Suite:
    header, rows = _jsonl_suite_rows(_read_text(path), path)
    header_line = 1 if header else None
    return _build(path, header, rows, name=name, default_scorer=scorer, source=str(path),
                  line_of=lambda keys: header_line)


def _load_csv(path: Path, *, name: str | None, mapping: dict[str, str] | None, scorer: Any) -> Suite:
    text = _read_text(path)
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    mapping = _check_mapping(mapping, columns, path)
    rows = []
    for index, record in enumerate(reader):
        # DictReader's line_num is the physical line of the record's end; the header is line 1
        try:
            row = _map_record(record, mapping)
        except ValueError as exc:
            raise SuiteError(str(exc), path=path, line=reader.line_num,
                             fix="write the score as a number in [0, 1], or leave the cell empty"
                             ) from None
        rows.append(_Row(row, reader.line_num, index))
    return _build(path, {}, rows, name=name, default_scorer=scorer, source=str(path),
                  provenance={"loader": "csv", "mapping": mapping})


def _check_mapping(mapping: dict[str, str] | None, columns: list[str], path: Path | str) -> dict[str, str]:
    """Fill the default mapping (same-named columns) and check the columns exist."""
    out = {f: f for f in _MAP_FIELDS if f in columns}
    out.update(mapping or {})
    for fld, col in out.items():
        if col not in columns:
            raise SuiteError(
                f"column {col!r} (for {fld}) is not in the data; columns are: {', '.join(columns) or '(none)'}",
                path=path, fix=f"map it with --map {fld}=<column>",
            )
    if "input" not in out:
        raise SuiteError(
            f"no input column; columns are: {', '.join(columns) or '(none)'}",
            path=path, fix="name the prompt column with --map input=<column>",
        )
    return out


def _map_record(record: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    used = set(mapping.values())
    row: dict[str, Any] = {fld: record[col] for fld, col in mapping.items()}
    if isinstance(row.get("score"), str):
        text = row["score"].strip()
        try:
            row["score"] = float(text) if text else None
        except ValueError:
            raise ValueError(f"score {row['score']!r} is not a number") from None
    extra = {k: v for k, v in record.items() if k not in used and k is not None}
    if extra:
        row["metadata"] = _jsonable(extra)
    return row


def _jsonable(value: Any) -> Any:
    """Dataset cells as plain JSON values (numpy scalars, dates → str)."""
    try:
        json.dumps(value)
        return value
    except TypeError:
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        if hasattr(value, "item"):
            return value.item()
        return str(value)


def _load_hf(
    location: str,
    *,
    name: str | None,
    mapping: dict[str, str] | None,
    scorer: Any,
    split: str | None,
    config: str | None,
    revision: str | None,
) -> Suite:
    import datasets  # heavy; only when a dataset is asked for

    path = Path(location)
    provenance: dict[str, Any] = {"loader": "datasets", "dataset": location, "config": config,
                                  "split": split, "revision": revision}
    try:
        if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()
                              or (path / "state.json").exists()):
            ds = datasets.load_from_disk(str(path))
        elif path.is_file():
            builder = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv",
                       ".arrow": "arrow"}.get(path.suffix.lower())
            if builder is None:
                raise SuiteError(f"datasets cannot read {path.suffix!r} files", path=path,
                                 fix="use parquet, json, jsonl, csv or a save_to_disk directory")
            ds = datasets.load_dataset(builder, data_files=str(path), split=split or "train")
            provenance["split"] = split or "train"
        else:
            ds = datasets.load_dataset(location, config, split=split, revision=revision)
    except SuiteError:
        raise
    except Exception as exc:  # datasets raises many types; all mean "cannot read this"
        raise SuiteError(f"cannot load dataset {location!r}: {exc}", path=location,
                         fix="check the name, config and split (hf:name:config@split), or that you are online") from None
    if isinstance(ds, datasets.DatasetDict):
        if split is None:
            raise SuiteError(f"dataset has splits {', '.join(ds)}; none chosen", path=location,
                             fix=f"add @split to the spec, e.g. {location}@{next(iter(ds))}")
        if split not in ds:
            raise SuiteError(f"dataset has no split {split!r} (it has {', '.join(ds)})", path=location,
                             fix="pick one of the listed splits")
        ds = ds[split]
    provenance["fingerprint"] = getattr(ds, "_fingerprint", None)
    mapping = _check_mapping(mapping, list(ds.column_names), location)
    provenance["mapping"] = mapping
    rows = [_Row(_map_record(dict(rec), mapping), None, i) for i, rec in enumerate(ds)]
    default_name = name or (path.stem if path.exists() else location.rstrip("/").split("/")[-1])
    return _build(location, {}, rows, name=default_name, default_scorer=scorer, source=location,
                  provenance=provenance)


# ----------------------------------------------------------------------------- building


def _scorer_specs(value: Any, path: Path | str, line: int | None) -> list[ScorerSpec]:
    """`exact_match` | {name, args, weight} | {name: {args}} | a list of these."""
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    specs = []
    for v in values:
        try:
            if isinstance(v, str):
                specs.append(ScorerSpec(name=v))
            elif isinstance(v, dict) and "name" in v:
                specs.append(ScorerSpec(**v))
            elif isinstance(v, dict) and len(v) == 1:
                (sname, args), = v.items()
                specs.append(ScorerSpec(name=sname, args=args or {}))
            else:
                raise ValueError("not a scorer")
        except (ValidationError, ValueError, TypeError):
            raise SuiteError(
                f"bad scorer {v!r}", path=path, line=line,
                fix="write a name (exact_match), {name: regex, args: {...}} or {regex: {must_include: [...]}}",
            ) from None
    return specs


def _messages(value: Any, system_prompt: str | None, path: Path | str, line: int | None) -> list[ChatMessage]:
    if isinstance(value, str):
        msgs = [ChatMessage(role="user", content=value)]
    elif isinstance(value, list) and value:
        try:
            msgs = [ChatMessage(**m) if isinstance(m, dict) else ChatMessage(role=m.role, content=m.content)
                    for m in value]
        except (ValidationError, TypeError, AttributeError):
            raise SuiteError("input messages must be {role: system|user|assistant, content: text}",
                             path=path, line=line, fix="fix the role or content of the chat turns") from None
    else:
        raise SuiteError("item has no input", path=path, line=line,
                         fix="give `input:` as text or a list of {role, content} turns")
    if system_prompt and msgs[0].role != "system":
        msgs.insert(0, ChatMessage(role="system", content=system_prompt))
    return msgs


def derive_id(prefix: str, index: int, messages: list[ChatMessage]) -> str:
    """The id of a row that has none: `<prefix>-<index:04d>-<sha256(input)[:8]>`."""
    blob = json.dumps([m.model_dump() for m in messages], sort_keys=True, ensure_ascii=False)
    return f"{prefix}-{index:04d}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"


def _build(
    path: Path | str,
    header: dict[str, Any],
    rows: list[_Row],
    *,
    name: str | None,
    default_scorer: Any,
    source: str,
    provenance: dict[str, Any] | None = None,
    line_of: Callable[[tuple[Any, ...]], int | None] = lambda keys: None,
) -> Suite:
    meta = header.get("metadata") or {}
    defaults = header.get("defaults") or {}
    for key in defaults:
        if key not in _DEFAULT_KEYS:
            raise SuiteError(f"unknown key {key!r} in defaults", path=path,
                             line=line_of(("defaults", key)),
                             fix=f"use only {', '.join(sorted(_DEFAULT_KEYS))}")

    def category_line(cname: Any) -> int | None:
        return line_of(("categories", cname))

    suite_name = name or meta.get("name") or re.sub(r"\W+", "-", Path(str(path)).stem).strip("-") or "suite"
    categories: dict[str, Category] = {}
    category_defaults: dict[str, dict[str, Any]] = {}
    for cname, cval in (header.get("categories") or {}).items():
        if cval is not None and not isinstance(cval, dict):
            raise SuiteError(f"category {cname!r} must be a mapping, not {type(cval).__name__}",
                             path=path, line=category_line(cname),
                             fix=f"write it as '{cname}: {{purpose: ..., severity: "
                                 f"{'|'.join(_SEVERITIES)}}}'")
        cval = dict(cval or {})
        category_defaults[cname] = {k: cval.pop(k) for k in ("system_prompt", "scorer", "scorers") if k in cval}
        try:
            categories[str(cname)] = Category(**cval)
        except ValidationError as exc:
            raise SuiteError(f"category {cname!r}: {_first_error(exc)}", path=path,
                             line=category_line(cname), fix=f"give each category `purpose:` and `severity:` ({'|'.join(_SEVERITIES)})") from None
    if default_scorer is not None and not (defaults.get("scorer") or defaults.get("scorers")):
        defaults = {**defaults, "scorer": default_scorer}

    items: list[Item] = []
    first_seen: dict[str, int | None] = {}
    for row in rows:
        items.append(_build_item(path, row, suite_name, defaults, categories, category_defaults))
        item_id = items[-1].id
        if item_id in first_seen:
            first = first_seen[item_id]
            where = f"line {first}" if first else "an earlier row"
            here = f"line {row.line}" if row.line else f"row {row.index}"
            raise SuiteError(
                f"duplicate item id {item_id!r} at {here}; first defined at {where}",
                path=path, line=row.line,
                fix="give every item a unique id",
            )
        first_seen[item_id] = row.line
    if not items:
        raise SuiteError("suite has no items", path=path, fix="add at least one item")
    prov = dict(header.get("provenance") or {})
    prov.update(provenance or {})
    sampling = _sampling(header.get("sampling"), path, line_of)
    return Suite(
        name=str(suite_name),
        version=str(meta["version"]) if meta.get("version") is not None else None,
        description=str(meta.get("description") or ""),
        categories=categories,
        items=items,
        source=source,
        provenance=prov,
        sampling=sampling,
    )


def _sampling(value: Any, path: Path | str,
              line_of: Callable[[tuple[Any, ...]], int | None]) -> SuiteSampling | None:
    """The header's `sampling:` block, checked; errors name the line of the offending key."""
    if value is None:
        return None
    fix = ("write sampling: {samples: N, temperature: T} with N from 1 to 100 and T above 0 "
           "and at most 5 (N > 1 needs T)")
    try:
        return SuiteSampling.model_validate(value)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err.get("loc", ()))
        where = f"sampling.{'.'.join(loc)}" if loc else "sampling"
        msg = err["msg"].removeprefix("Value error, ")
        raise SuiteError(f"{where}: {msg}", path=path, line=line_of(("sampling", *loc[:1])),
                         fix=fix) from None


_CHECKED: set[str] = set()


def _check_scorers(specs: list[ScorerSpec], path: Path | str, line: int | None) -> None:
    """Build each scorer so unknown names and bad arguments fail at load time, with a line."""
    for spec in specs:
        key = spec.model_dump_json()
        if key in _CHECKED:
            continue
        try:
            get_scorer(spec)
        except SuiteError as exc:
            raise SuiteError(exc.message, path=path, line=line, fix=exc.fix) from None
        _CHECKED.add(key)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()))
    return f"{loc}: {err['msg']}" if loc else err["msg"]


def _build_item(
    path: Path | str,
    row: _Row,
    suite_name: str,
    defaults: dict[str, Any],
    categories: dict[str, Category],
    category_defaults: dict[str, dict[str, Any]],
) -> Item:
    data, line = row.data, row.line

    def at(key: str) -> int | None:
        return row.key_lines.get(key, line)

    if not isinstance(data, dict):
        raise SuiteError("an item must be a mapping (id, input, target, scorer, ...)", path=path, line=line)
    unknown = sorted(set(data) - _ITEM_KEYS)
    if unknown:
        raise SuiteError(f"unknown item key {unknown[0]!r}", path=path, line=at(unknown[0]),
                         fix=f"use only {', '.join(sorted(_ITEM_KEYS))}; put anything else under metadata")
    category = str(data.get("category") or defaults.get("category") or "default")
    cdefs = category_defaults.get(category, {})
    system_prompt = data.get("system_prompt", cdefs.get("system_prompt", defaults.get("system_prompt")))
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise SuiteError(f"system_prompt must be text, not {type(system_prompt).__name__}",
                         path=path, line=at("system_prompt") if "system_prompt" in data else line,
                         fix="write the system prompt as a quoted string")
    raw_input = data.get("messages", data.get("input"))
    messages = _messages(raw_input, system_prompt, path, at("input") if "input" in data else at("messages"))
    if "scorer" in data or "scorers" in data:
        scorer_value = data.get("scorers", data.get("scorer"))
        scorer_line = at("scorers" if "scorers" in data else "scorer")
    else:
        scorer_value = cdefs.get("scorers", cdefs.get("scorer", defaults.get("scorers", defaults.get("scorer"))))
        scorer_line = line
    scorers = _scorer_specs(scorer_value, path, scorer_line)
    _check_scorers(scorers, path, scorer_line)
    raw_id = data.get("id")
    item_id = str(raw_id) if raw_id not in (None, "") else derive_id(suite_name, row.index, messages)
    severity = data.get("severity") or (categories[category].severity if category in categories else None) \
        or defaults.get("severity") or "medium"
    target = data.get("target")
    if target is not None and not isinstance(target, (str, list)):
        target = str(target)
    if isinstance(target, list):
        target = [str(t) for t in target]
    score = _item_score(data.get("score"), item_id, path, at("score"))
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise SuiteError(f"item {item_id!r}: metadata must be a mapping, not "
                         f"{type(metadata).__name__}", path=path, line=at("metadata"),
                         fix="write metadata as key: value pairs, e.g. metadata: {source: faq}")
    try:
        return Item(
            id=item_id,
            suite=suite_name,
            messages=messages,
            target=target,
            scorers=scorers,
            combine=data.get("combine") or defaults.get("combine") or "all",
            category=category,
            severity=severity,
            metadata=_jsonable(dict(metadata or {})),
            response=data.get("response"),
            score=score,
            reason=data.get("reason"),
        )
    except (ValidationError, ValueError, TypeError) as exc:
        msg = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
        raise SuiteError(f"item {item_id!r}: {msg}", path=path, line=line,
                         fix=f"severity is one of {'|'.join(_SEVERITIES)}; combine is all|weighted; score is a number in [0,1]") from None


def _item_score(value: Any, item_id: str, path: Path | str, line: int | None) -> float | None:
    """An imported score: a finite number in [0, 1] (true/false read as 1/0), or None."""
    if value is None:
        return None
    fix = "write the score as a number from 0 to 1, or leave it out to score the response here"
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:39] + "…"
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value.strip():
        try:
            value = float(value)
        except ValueError:
            raise SuiteError(f"item {item_id!r}: score {shown} is not a number", path=path,
                             line=line, fix=fix) from None
    if not isinstance(value, (int, float)):
        raise SuiteError(f"item {item_id!r}: score {shown} is not a number", path=path,
                         line=line, fix=fix)
    try:
        score = float(value)
    except OverflowError:  # an integer beyond any float
        score = math.inf
    if not math.isfinite(score):
        raise SuiteError(f"item {item_id!r}: score {shown} is not a finite number", path=path,
                         line=line, fix=fix)
    if not 0.0 <= score <= 1.0:
        raise SuiteError(f"item {item_id!r}: score {shown} is outside [0, 1]", path=path,
                         line=line, fix=fix)
    return score


# ----------------------------------------------------------------------------- writing


def suite_to_jsonl(suite: Suite) -> str:
    """The suite as the project's JSONL: a header line, then one item per line.

    Loading the text back with `load_suite` gives the same items (same digest).
    """
    header = {
        "apiVersion": API_VERSION,
        "kind": "Suite",
        "metadata": {"name": suite.name, "version": suite.version, "description": suite.description},
        "categories": {k: v.model_dump() for k, v in suite.categories.items()},
        "provenance": suite.provenance,
    }
    if suite.sampling is not None:
        header["sampling"] = suite.sampling.model_dump(exclude_none=True)
    lines = [json.dumps(header, ensure_ascii=False, sort_keys=True)]
    for item in suite.items:
        row: dict[str, Any] = {
            "id": item.id,
            "input": [m.model_dump() for m in item.messages],
            "category": item.category,
            "severity": item.severity,
            "combine": item.combine,
        }
        if item.target is not None:
            row["target"] = item.target
        if item.scorers:
            row["scorers"] = [s.model_dump() for s in item.scorers]
        for key in ("response", "score", "reason"):
            if getattr(item, key) is not None:
                row[key] = getattr(item, key)
        if item.metadata:
            row["metadata"] = item.metadata
        lines.append(json.dumps(row, ensure_ascii=False, sort_keys=True))
    return "\n".join(lines) + "\n"
