"""Imports of per-item results produced elsewhere: lm-evaluation-harness, inspect_ai, plain JSONL.

Imported items keep their original ids, carry `response`, `score` and `reason`, and record
where they came from in `item.metadata["provenance"]` (importer, task, model) and in
`Suite.provenance`. The files are parsed with `json` and `zipfile`; neither tool is needed.

- lm-evaluation-harness `--log_samples` writes `samples_<task>_<timestamp>.jsonl`, one line per
  document and filter: `doc_id`, `doc`, `target`, `arguments` (the requests: the prompt is
  the first argument of the first request), `resps` / `filtered_resps`, `filter`, `metrics`
  (names of the metric fields) and the metric values themselves (`acc`, `exact_match`, ...).
  Generation tasks have one request whose filtered response is the text; log-likelihood tasks
  have one request per choice, and the response is the continuation with the highest
  log-likelihood.
- inspect_ai logs: `.json` (one object with `eval` and `samples`) or `.eval` (a zip archive with
  `header.json` and one `samples/<id>_epoch_<n>.json` per sample). A sample has `id`, `epoch`,
  `input` (text or chat messages), `target`, `output` (`completion`, or `choices[0].message`),
  and `scores` {scorer: {value, answer, explanation}}; values C/I/P/N read as 1/0/0.5/0 like
  inspect's own `value_to_float`.
- plain JSONL: `{id, input, response, score}` per line (optional `reason`, `target`,
  `category`), which is the project's JSONL with results filled in.
"""

from __future__ import annotations

import json
import math
import re
import zipfile
from pathlib import Path
from typing import Any, Literal

from cg_gate.errors import SuiteError
from cg_gate.items import ChatMessage, Item, Suite
from cg_gate.jsonl import jsonl_rows
from cg_gate.suites._load import _load_jsonl

ImportSource = Literal["lm-eval", "inspect", "jsonl"]
IMPORTERS: tuple[str, ...] = ("lm-eval", "inspect", "jsonl")

# metric fields of lm-eval samples that are per-item scores in [0, 1], in order of preference
_LM_EVAL_METRICS = ("exact_match", "acc", "acc_norm", "em", "pass@1", "mc1", "mc2", "f1")
_INSPECT_VALUES = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}


def import_results(path: str | Path, *, source: ImportSource, name: str | None = None, **options: Any) -> Suite:
    """Import per-item results from `source` ('lm-eval', 'inspect' or 'jsonl') as a suite."""
    if source == "lm-eval":
        return import_lm_eval(path, name=name, **options)
    if source == "inspect":
        return import_inspect(path, name=name, **options)
    if source == "jsonl":
        return import_jsonl(path, name=name, **options)
    raise SuiteError(f"unknown import source {source!r}", fix=f"use one of {', '.join(IMPORTERS)}")


def _check_score(value: Any, path: Path, line: int | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise SuiteError(f"{what} {value!r} is not a number", path=path, line=line) from None
    if math.isnan(score):
        return None
    if not 0.0 <= score <= 1.0:
        raise SuiteError(f"{what} {score} is outside [0, 1]", path=path, line=line,
                         fix="import a per-item metric that lies in [0, 1] (accuracy, exact match)")
    return score


def _target(value: Any) -> str | list[str] | None:
    """A reference answer as text (or a list of texts); other JSON values as their JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return json.dumps(value, ensure_ascii=False)


# ----------------------------------------------------------------------------- lm-eval


def _lm_eval_requests(arguments: Any) -> list[list[Any]]:
    """Requests as lists of arguments, from either the dict or the list layout."""
    if isinstance(arguments, dict):  # {"gen_args_0": {"arg_0": ctx, "arg_1": ...}, ...}
        def order(key: str) -> int:
            m = re.search(r"(\d+)$", key)
            return int(m.group(1)) if m else 0

        out = []
        for key in sorted(arguments, key=order):
            req = arguments[key]
            if isinstance(req, dict):
                out.append([req[k] for k in sorted(req, key=order)])
            else:
                out.append(list(req) if isinstance(req, (list, tuple)) else [req])
        return out
    if isinstance(arguments, list):
        return [list(r) if isinstance(r, (list, tuple)) else [r] for r in arguments]
    return []


def _lm_eval_response(requests: list[list[Any]], filtered: Any) -> str | None:
    if isinstance(filtered, list) and filtered and all(isinstance(r, (list, tuple)) for r in filtered) \
            and len(filtered) == len(requests) and len(requests) > 1:
        # log-likelihood choices: [[logprob, is_greedy], ...] → the most likely continuation
        try:
            best = max(range(len(filtered)), key=lambda i: float(filtered[i][0]))
        except (TypeError, ValueError, IndexError):
            return None
        cont = requests[best][1] if len(requests[best]) > 1 else None
        return str(cont).strip() if cont is not None else None
    while isinstance(filtered, list) and filtered:
        filtered = filtered[0]
    return filtered if isinstance(filtered, str) else None


def import_lm_eval(
    path: str | Path,
    *,
    name: str | None = None,
    task: str | None = None,
    model: str | None = None,
    metric: str | None = None,
    filter: str | None = None,
) -> Suite:
    """Read an lm-evaluation-harness `samples_<task>_*.jsonl` file (`--log_samples`).

    `metric` picks the score field (default: the first of exact_match, acc, acc_norm, ... that
    the sample lists); `filter` picks one filter's rows when the task has several (default:
    the first seen). Item ids are the harness's `doc_id`s.
    """
    path = Path(path)
    if not path.is_file():
        raise SuiteError("lm-eval samples file not found", path=path)
    if task is None:
        m = re.match(r"samples_(.+?)_\d{4}-\d{2}-\d{2}T", path.name)
        task = m.group(1) if m else path.stem
    items: list[Item] = []
    seen: dict[str, int] = {}
    chosen_filter = filter
    for lineno, row in jsonl_rows(path.read_text(encoding="utf-8"), path, error=SuiteError):
        if not isinstance(row, dict) or "doc_id" not in row:
            raise SuiteError("not an lm-eval sample (no doc_id)", path=path, line=lineno,
                             fix="pass the samples_<task>_<date>.jsonl file written with --log_samples")
        row_filter = row.get("filter")
        if chosen_filter is None:
            chosen_filter = row_filter
        if row_filter != chosen_filter:
            continue
        requests = _lm_eval_requests(row.get("arguments"))
        prompt = requests[0][0] if requests and requests[0] else None
        if not isinstance(prompt, str):
            raise SuiteError("sample has no prompt in `arguments`", path=path, line=lineno)
        response = _lm_eval_response(requests, row.get("filtered_resps", row.get("resps")))
        names = [metric] if metric else [m for m in _LM_EVAL_METRICS if m in row] + list(row.get("metrics") or [])
        used = next((m for m in names if m in row and isinstance(row[m], (int, float))), None)
        if metric and used is None:
            raise SuiteError(f"sample has no metric {metric!r}", path=path, line=lineno,
                             fix=f"pick one of {', '.join(row.get('metrics') or []) or '(none listed)'}")
        score = _check_score(row[used], path, lineno, f"metric {used}") if used else None
        item_id = str(row["doc_id"])
        if item_id in seen:
            raise SuiteError(f"duplicate doc_id {item_id!r} at line {lineno}; first at line {seen[item_id]}",
                             path=path, line=lineno, fix="import one task and one filter per file")
        seen[item_id] = lineno
        items.append(Item(
            id=item_id,
            suite=name or task,
            messages=[ChatMessage(role="user", content=prompt)],
            target=_target(row.get("target")),
            category=task,
            response=response,
            score=score,
            reason=f"lm-eval {used}" if used else None,
            metadata={"provenance": {"importer": "lm-eval", "task": task, "model": model,
                                     "filter": row_filter, "metric": used},
                      "doc": row.get("doc")},
        ))
    if not items:
        raise SuiteError("no samples in the file" + (f" for filter {chosen_filter!r}" if filter else ""),
                         path=path, fix="pass a non-empty samples file")
    return Suite(name=name or task, items=items, source=str(path),
                 provenance={"importer": "lm-eval", "task": task, "model": model, "filter": chosen_filter})


# ----------------------------------------------------------------------------- inspect_ai


def _text(content: Any) -> str:
    """inspect message content: text, or a list of content parts with `text`."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content
                       if isinstance(part, dict) and part.get("type", "text") == "text")
    return ""


def _inspect_value(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if value in _INSPECT_VALUES:
            return _INSPECT_VALUES[value]
        if value.lower() in ("yes", "true"):
            return 1.0
        if value.lower() in ("no", "false"):
            return 0.0
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _inspect_item(sample: dict[str, Any], *, task: str, model: str | None, scorer: str | None,
                  multi_epoch: bool, path: Path, suite_name: str) -> Item:
    raw_input = sample.get("input")
    if isinstance(raw_input, str):
        messages = [ChatMessage(role="user", content=raw_input)]
    elif isinstance(raw_input, list) and raw_input:
        messages = [
            ChatMessage(role=m.get("role") if m.get("role") in ("system", "user", "assistant") else "user",
                        content=_text(m.get("content")))
            for m in raw_input if isinstance(m, dict)
        ]
    else:
        raise SuiteError(f"sample {sample.get('id')!r} has no input", path=path)
    output = sample.get("output") or {}
    response = output.get("completion")
    if not response and output.get("choices"):
        response = _text((output["choices"][0].get("message") or {}).get("content"))
    scores = sample.get("scores")
    if scores is None and sample.get("score") is not None:  # logs before scores became a dict
        scores = {"score": sample["score"]}
    scores = scores or {}
    if scorer is not None and scorer not in scores:
        raise SuiteError(f"sample {sample.get('id')!r} has no score {scorer!r} (it has {', '.join(scores) or 'none'})",
                         path=path, fix="pick one of the listed scorers")
    key = scorer or next(iter(scores), None)
    score, reason = None, None
    if key is not None:
        entry = scores[key] if isinstance(scores[key], dict) else {"value": scores[key]}
        score = _inspect_value(entry.get("value"))
        if score is not None and not 0.0 <= score <= 1.0:
            raise SuiteError(f"sample {sample.get('id')!r}: score {score} is outside [0, 1]", path=path,
                             fix="choose a scorer whose values are C/I/P/N or in [0, 1]")
        reason = entry.get("explanation") or f"inspect {key}: {entry.get('value')}"
        if score is None:
            reason = f"inspect {key}: value {entry.get('value')!r} is not a score"
    epoch = sample.get("epoch", 1)
    item_id = str(sample.get("id"))
    if multi_epoch:
        item_id = f"{item_id}_epoch_{epoch}"
    return Item(
        id=item_id,
        suite=suite_name,
        messages=messages,
        target=_target(sample.get("target")),
        category=task,
        response=response or None,
        score=score,
        reason=reason,
        metadata={"provenance": {"importer": "inspect", "task": task, "model": model, "scorer": key,
                                 "epoch": epoch, "original_id": sample.get("id")},
                  **({"sample_metadata": sample["metadata"]} if sample.get("metadata") else {})},
    )


def _read_inspect(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if path.suffix == ".eval":
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                header = json.loads(zf.read("header.json")) if "header.json" in names else {}
                if not header and "_journal/start.json" in names:
                    header = json.loads(zf.read("_journal/start.json"))
                sample_names = [n for n in names if re.fullmatch(r"samples/.+_epoch_\d+\.json", n)]
                samples = [json.loads(zf.read(n)) for n in sample_names]
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
            raise SuiteError(f"not a readable inspect .eval archive ({exc})", path=path,
                             fix="pass a log written by `inspect eval` (a zip with header.json and samples/)") from None
        return header, samples
    try:
        log = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SuiteError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno, column=exc.colno) from None
    if not isinstance(log, dict) or "eval" not in log:
        raise SuiteError("not an inspect log (no `eval` section)", path=path,
                         fix="pass a .json or .eval log written by `inspect eval`")
    return log, list(log.get("samples") or [])


def _natural(value: Any) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(value)))


def import_inspect(path: str | Path, *, name: str | None = None, scorer: str | None = None) -> Suite:
    """Read an inspect_ai log (`.json` or `.eval`); `scorer` picks which score to import."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError("inspect log not found", path=path)
    header, samples = _read_inspect(path)
    ev = header.get("eval") or {}
    task = str(ev.get("task") or path.stem)
    model = ev.get("model")
    samples.sort(key=lambda s: (_natural(s.get("id")), s.get("epoch", 1)))
    multi_epoch = any(s.get("epoch", 1) != 1 for s in samples)
    suite_name = name or task
    items = [_inspect_item(s, task=task, model=model, scorer=scorer, multi_epoch=multi_epoch,
                           path=path, suite_name=suite_name) for s in samples]
    if not items:
        raise SuiteError("inspect log has no samples", path=path,
                         fix="re-run inspect without --no-log-samples, or pass a log with samples")
    ids = {}
    for item in items:
        if item.id in ids:
            raise SuiteError(f"duplicate sample id {item.id!r}", path=path)
        ids[item.id] = True
    return Suite(
        name=suite_name,
        items=items,
        source=str(path),
        provenance={"importer": "inspect", "task": task, "model": model, "run_id": ev.get("run_id"),
                    "created": ev.get("created"), "status": header.get("status"),
                    "scorer": scorer or (items[0].metadata["provenance"]["scorer"])},
    )


# ----------------------------------------------------------------------------- plain JSONL


def import_jsonl(path: str | Path, *, name: str | None = None) -> Suite:
    """Read `{id, input, response, score}` lines (the project's JSONL with results)."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError("results file not found", path=path)
    suite = _load_jsonl(path, name=name, scorer=None)
    for item in suite.items:
        if item.score is not None and not 0.0 <= item.score <= 1.0:
            raise SuiteError(f"item {item.id!r}: score {item.score} is outside [0, 1]", path=path,
                             fix="scores must lie in [0, 1]")
        item.metadata.setdefault("provenance", {"importer": "jsonl", "task": suite.name, "model": None})
    suite.provenance.setdefault("importer", "jsonl")
    return suite
