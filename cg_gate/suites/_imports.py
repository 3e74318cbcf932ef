"""Imports of per-item results produced elsewhere: lm-evaluation-harness, inspect_ai, OpenAI Evals,
HELM, garak, promptfoo and plain JSONL.

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
- OpenAI Evals (`oaieval --record_path`): a JSONL log whose first line is `{"spec": …}`
  (eval_name, base_eval, completion_fns, run_id), then events `{run_id, event_id, sample_id,
  type, data, created_at}` — `sampling` (data.prompt: text or chat messages, data.sampled),
  `match` (data.correct, expected, picked) and `metrics` (model-graded: data.score, choice) —
  and a `{"final_report": …}` line.
- HELM (`helm-run`): a run directory `benchmark_output/runs/<suite>/<run>/` with
  `run_spec.json`, `scenario_state.json` (request_states: instance, request.prompt,
  result.completions) or `instances.json` + `display_predictions.json` (+ `display_requests.json`),
  and `per_instance_stats.json` (stats per instance and trial: name.name, mean).
- garak: `garak.<run>.report.jsonl`, lines with `entry_type` — `start_run setup` (`_config.version`,
  plugins), `init` (garak_version), `attempt` (uuid, seq, status, probe_classname, prompt,
  outputs, detector_results {detector: [score per output]}, goal), `eval`, `completion`.
  A detector score ≥ 0.5 is a hit (the attack succeeded); the item score is 1 when no
  detector hit, 0 when one did.
- promptfoo (`promptfoo eval -o results.json`): `{evalId, results: {version, timestamp,
  results: [{testIdx, promptIdx, testCase: {vars, description, metadata}, prompt: {raw,
  label}, provider: {id}, response: {output}, success, score, gradingResult: {pass, score,
  reason}, namedScores}], prompts, stats}, config, metadata: {promptfooVersion}}`, or
  `-o results.jsonl` with one of those results a line.
- plain JSONL: `{id, input, response, score}` per line (optional `reason`, `target`,
  `category`), which is the project's JSONL with results filled in; other keys go to metadata.

Every importer records `tool` and `tool_version` (None where the tool does not write it) in
`Suite.provenance`.
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
from cg_gate.suites._load import _ITEM_KEYS, _build, _jsonl_suite_rows

ImportSource = Literal["lm-eval", "inspect", "openai-evals", "helm", "garak", "promptfoo", "jsonl"]
IMPORTERS: tuple[str, ...] = ("lm-eval", "inspect", "openai-evals", "helm", "garak", "promptfoo", "jsonl")

# metric fields of lm-eval samples that are per-item scores in [0, 1], in order of preference
_LM_EVAL_METRICS = ("exact_match", "acc", "acc_norm", "em", "pass@1", "mc1", "mc2", "f1")
_INSPECT_VALUES = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}


def import_results(path: str | Path, *, source: ImportSource, name: str | None = None, **options: Any) -> Suite:
    """Import per-item results from `source` (one of `IMPORTERS`) as a suite."""
    readers = {"lm-eval": import_lm_eval, "inspect": import_inspect, "openai-evals": import_openai_evals,
               "helm": import_helm, "garak": import_garak, "promptfoo": import_promptfoo, "jsonl": import_jsonl}
    if source in readers:
        return readers[source](path, name=name, **options)
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
    if not math.isfinite(score):
        raise SuiteError(f"{what} {value!r} is not a finite number", path=path, line=line,
                         fix="import a per-item metric that lies in [0, 1] (accuracy, exact match)")
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
                 provenance={"importer": "lm-eval", "tool": "lm-eval", "tool_version": None, "task": task,
                             "model": model, "filter": chosen_filter})


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
        provenance={"importer": "inspect", "tool": "inspect_ai",
                    "tool_version": (ev.get("packages") or {}).get("inspect_ai"), "task": task, "model": model, "run_id": ev.get("run_id"),
                    "created": ev.get("created"), "status": header.get("status"),
                    "scorer": scorer or (items[0].metadata["provenance"]["scorer"])},
    )


# ----------------------------------------------------------------------------- plain JSONL


def import_jsonl(path: str | Path, *, name: str | None = None) -> Suite:
    """Read `{id, input, response, score}` lines (the project's JSONL with results). Keys the
    project's JSONL does not know go into the item's `metadata` instead of failing."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError("results file not found", path=path)

    def unknown_keys_to_metadata(obj: dict[str, Any], lineno: int) -> dict[str, Any]:
        extra = {k: obj.pop(k) for k in [k for k in obj if k not in _ITEM_KEYS]}
        if extra:
            meta = obj.get("metadata")
            if meta is not None and not isinstance(meta, dict):
                raise SuiteError("`metadata` must be an object", path=path, line=lineno)
            obj["metadata"] = {**extra, **(meta or {})}
        return obj

    header, rows = _jsonl_suite_rows(path.read_text(encoding="utf-8"), path, unknown_keys_to_metadata)
    suite = _build(path, header, rows, name=name, default_scorer=None, source=str(path))
    for item in suite.items:
        if item.score is not None and not 0.0 <= item.score <= 1.0:
            raise SuiteError(f"item {item.id!r}: score {item.score} is outside [0, 1]", path=path,
                             fix="scores must lie in [0, 1]")
        item.metadata.setdefault("provenance", {"importer": "jsonl", "task": suite.name, "model": None})
    suite.provenance.setdefault("importer", "jsonl")
    return suite


# ----------------------------------------------------------------------------- shared


def _messages(prompt: Any, path: Path, line: int | None, what: str) -> list[ChatMessage]:
    """Text, or chat messages `[{role, content}]`, as chat turns (unknown roles read as user)."""
    if isinstance(prompt, str):
        return [ChatMessage(role="user", content=prompt)]
    if isinstance(prompt, list) and prompt and all(isinstance(m, dict) for m in prompt):
        return [ChatMessage(role=m.get("role") if m.get("role") in ("system", "user", "assistant") else "user",
                            content=_text(m.get("content")) if m.get("content") is not None else "")
                for m in prompt]
    raise SuiteError(f"{what} has no prompt (text or chat messages)", path=path, line=line)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SuiteError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno, column=exc.colno) from None
    except UnicodeDecodeError:
        raise SuiteError("not UTF-8 text", path=path) from None


def _check_ids(items: list[Item], path: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise SuiteError(f"duplicate item id {item.id!r}", path=path)
        seen.add(item.id)


# ----------------------------------------------------------------------------- OpenAI Evals


def import_openai_evals(path: str | Path, *, name: str | None = None) -> Suite:
    """Read an OpenAI Evals run log (`oaieval … --record_path log.jsonl`).

    Each `sample_id` becomes an item: the prompt and first sampled completion from its
    `sampling` event, the score from its `match` event (correct → 1, else 0) or, for
    model-graded evals, from a `metrics` event's `score`. Keys a line has beyond the event
    fields go into the item's metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise SuiteError("OpenAI Evals log not found", path=path)
    spec: dict[str, Any] = {}
    final_report: Any = None
    samples: dict[str, dict[str, Any]] = {}
    event_keys = {"run_id", "event_id", "sample_id", "type", "data", "created_by", "created_at"}
    for lineno, row in jsonl_rows(path.read_text(encoding="utf-8"), path, error=SuiteError):
        if not isinstance(row, dict):
            raise SuiteError("each line must be a JSON object", path=path, line=lineno)
        if "spec" in row:
            spec = row["spec"] if isinstance(row["spec"], dict) else {}
            continue
        if "final_report" in row:
            final_report = row["final_report"]
            continue
        if "type" not in row:
            raise SuiteError("not an OpenAI Evals event (no `type`, `spec` or `final_report`)", path=path,
                             line=lineno, fix="pass the JSONL log written by `oaieval --record_path`")
        sid = row.get("sample_id")
        if sid is None:
            continue  # run-level events (errors, raw metrics)
        data = row.get("data") if isinstance(row.get("data"), dict) else {}
        rec = samples.setdefault(str(sid), {"line": lineno, "events": [], "extra": {}})
        rec["events"].append(row["type"])
        rec["extra"].update({k: v for k, v in row.items() if k not in event_keys})
        if row["type"] == "sampling" and "prompt" not in rec:
            rec["prompt"], rec["prompt_line"] = data.get("prompt"), lineno
            sampled = data.get("sampled")
            rec["response"] = sampled[0] if isinstance(sampled, list) and sampled else sampled
        elif row["type"] == "match":
            correct = data.get("correct")
            if not isinstance(correct, bool):
                raise SuiteError(f"match event for {sid!r}: `correct` is {correct!r}, not true/false",
                                 path=path, line=lineno)
            rec["score"], rec["score_line"] = float(correct), lineno
            rec["reason"] = f"openai-evals match: picked {data.get('picked')!r}, expected {data.get('expected')!r}"
            rec["target"] = data.get("expected")
        elif row["type"] == "metrics" and "score" in data and "match" not in rec["events"][:-1]:
            rec["score"] = _check_score(data["score"], path, lineno, "metrics score")
            rec["score_line"] = lineno
            rec["reason"] = f"openai-evals model-graded: choice {data.get('choice')!r}"
    if not samples:
        raise SuiteError("no sample events in the log", path=path,
                         fix="pass a log from a completed `oaieval` run (not a --dry-run)")
    eval_name = str(spec.get("eval_name") or path.stem)
    base = str(spec.get("base_eval") or eval_name.split(".")[0])
    models = spec.get("completion_fns") or []
    suite_name = name or base
    items = []
    for sid in sorted(samples, key=_natural):
        rec = samples[sid]
        if "prompt" not in rec:
            raise SuiteError(f"sample {sid!r} has no sampling event", path=path, line=rec["line"])
        response = rec.get("response")
        items.append(Item(
            id=sid, suite=suite_name,
            messages=_messages(rec["prompt"], path, rec["prompt_line"], f"sample {sid!r}"),
            target=_target(rec.get("target")), category=base,
            response=response if isinstance(response, str) else None,
            score=rec.get("score"), reason=rec.get("reason"),
            metadata={"provenance": {"importer": "openai-evals", "task": eval_name, "model": ",".join(models) or None,
                                     "events": rec["events"]}, **rec["extra"]},
        ))
    return Suite(name=suite_name, items=items, source=str(path), provenance={
        "importer": "openai-evals", "tool": "openai-evals", "tool_version": None, "task": eval_name,
        "model": ",".join(models) or None, "run_id": spec.get("run_id"), "created_at": spec.get("created_at"),
        "split": spec.get("split"), "final_report": final_report})


# ----------------------------------------------------------------------------- HELM

_HELM_METRICS = ("exact_match", "quasi_exact_match", "prefix_exact_match", "quasi_prefix_exact_match",
                 "exact_match@5", "f1_score", "rouge_l", "math_equiv", "math_equiv_chain_of_thought")


def _helm_stats(entries: Any) -> dict[tuple[str, int], dict[str, float]]:
    """{(instance_id, trial): {metric: mean}} for unperturbed stats of per_instance_stats.json."""
    out: dict[tuple[str, int], dict[str, float]] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("perturbation"):
            continue
        key = (str(entry.get("instance_id")), int(entry.get("train_trial_index") or 0))
        for stat in entry.get("stats") or []:
            nm = stat.get("name") or {}
            if nm.get("perturbation"):
                continue
            mean = stat.get("mean")
            if mean is None and stat.get("count"):
                mean = stat.get("sum", 0) / stat["count"]
            if isinstance(mean, (int, float)):
                out.setdefault(key, {})[str(nm.get("name"))] = float(mean)
    return out


def import_helm(path: str | Path, *, name: str | None = None, metric: str | None = None) -> Suite:
    """Read a HELM run directory (or any JSON file inside it): prompts and completions from
    `scenario_state.json`, or `instances.json` + `display_predictions.json`; scores from
    `per_instance_stats.json` (or the predictions' own stats). `metric` picks the stat
    (default: the first of exact_match, quasi_exact_match, … present). Trial 0, unperturbed."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    if not run_dir.is_dir():
        raise SuiteError("HELM run directory not found", path=path)
    spec_file = run_dir / "run_spec.json"
    run_spec = _read_json(spec_file) if spec_file.is_file() else {}
    run_name = str(run_spec.get("name") or run_dir.name)
    adapter = run_spec.get("adapter_spec") or {}
    model = adapter.get("model_deployment") or adapter.get("model")
    scenario = run_name.split(":")[0]
    rows: dict[str, dict[str, Any]] = {}
    state_file = run_dir / "scenario_state.json"
    if state_file.is_file():
        state = _read_json(state_file)
        if not isinstance(state, dict) or not isinstance(state.get("request_states"), list):
            raise SuiteError("not a HELM scenario state (no `request_states`)", path=state_file)
        for rs in state["request_states"]:
            inst = rs.get("instance") or {}
            if inst.get("perturbation") or int(rs.get("train_trial_index") or 0) != 0:
                continue
            completions = (rs.get("result") or {}).get("completions") or []
            rows[str(inst.get("id"))] = {
                "instance": inst, "prompt": (rs.get("request") or {}).get("prompt"),
                "response": completions[0].get("text") if completions else None,
                "mapping": rs.get("output_mapping")}
    else:
        inst_file, pred_file = run_dir / "instances.json", run_dir / "display_predictions.json"
        for f in (inst_file, pred_file):
            if not f.is_file():
                raise SuiteError(f"HELM run has neither scenario_state.json nor {f.name}", path=run_dir,
                                 fix="pass a run directory written by helm-run (benchmark_output/runs/<suite>/<run>)")
        instances = {str(i.get("id")): i for i in _read_json(inst_file) if isinstance(i, dict) and not i.get("perturbation")}
        req_file = run_dir / "display_requests.json"
        prompts = {(str(r.get("instance_id")), int(r.get("train_trial_index") or 0)): (r.get("request") or {}).get("prompt")
                   for r in (_read_json(req_file) if req_file.is_file() else []) if isinstance(r, dict)}
        for pred in _read_json(pred_file):
            if not isinstance(pred, dict) or pred.get("perturbation") or int(pred.get("train_trial_index") or 0) != 0:
                continue
            iid = str(pred.get("instance_id"))
            if iid not in instances:
                raise SuiteError(f"prediction for instance {iid!r}, which instances.json does not list", path=pred_file)
            rows[iid] = {"instance": instances[iid], "prompt": prompts.get((iid, 0)),
                         "response": pred.get("mapped_output") or pred.get("predicted_text"),
                         "stats": pred.get("stats") or {}}
    stats_file = run_dir / "per_instance_stats.json"
    stats = _helm_stats(_read_json(stats_file)) if stats_file.is_file() else {}
    if not rows:
        raise SuiteError("HELM run has no unperturbed instances", path=run_dir)
    suite_name = name or scenario
    items = []
    for iid in sorted(rows, key=_natural):
        row = rows[iid]
        inst = row["instance"]
        values = {**(row.get("stats") or {}), **stats.get((iid, 0), {})}
        names = [metric] if metric else [m for m in _HELM_METRICS if m in values]
        used = next((m for m in names if m in values), None)
        if metric and used is None:
            raise SuiteError(f"instance {iid!r} has no stat {metric!r}", path=stats_file,
                             fix=f"pick one of {', '.join(sorted(values)) or '(none)'}")
        score = _check_score(values[used], stats_file, None, f"stat {used}") if used else None
        refs = [r.get("output", {}).get("text") for r in inst.get("references") or []
                if "correct" in (r.get("tags") or [])]
        prompt = row.get("prompt") or (inst.get("input") or {}).get("text")
        if not isinstance(prompt, str):
            raise SuiteError(f"instance {iid!r} has no prompt", path=run_dir)
        response = row.get("response")
        if row.get("mapping") and isinstance(response, str) and response.strip() in row["mapping"]:
            response = row["mapping"][response.strip()]
        items.append(Item(
            id=iid, suite=suite_name, messages=[ChatMessage(role="user", content=prompt)],
            target=_target(refs[0] if len(refs) == 1 else (refs or None)),
            category=str(inst.get("sub_split") or scenario),
            response=response if isinstance(response, str) else None, score=score,
            reason=f"helm {used}" if used else None,
            metadata={"provenance": {"importer": "helm", "task": run_name, "model": model, "metric": used,
                                     "split": inst.get("split")}},
        ))
    return Suite(name=suite_name, items=items, source=str(run_dir), provenance={
        "importer": "helm", "tool": "helm", "tool_version": None, "task": run_name, "model": model,
        "scenario": (run_spec.get("scenario_spec") or {}).get("class_name"), "groups": run_spec.get("groups")})


# ----------------------------------------------------------------------------- garak

_GARAK_HIT = 0.5
_GARAK_ATTEMPT_KEYS = {"entry_type", "uuid", "seq", "status", "probe_classname", "probe_params", "targets",
                       "prompt", "outputs", "detector_results", "notes", "goal", "messages", "conversations",
                       "reverse_translation_outputs"}


def _garak_text(value: Any) -> str | None:
    """A garak prompt or output: text, a Message {text}, or a Conversation {turns: [{content}]}."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, dict):
        if "turns" in value:
            turns = [t for t in value.get("turns") or [] if isinstance(t, dict)]
            users = [t for t in turns if t.get("role", "user") == "user"]
            last = (users or turns or [{}])[-1]
            return _garak_text(last.get("content"))
        return value.get("text") if isinstance(value.get("text"), str) else None
    return None


def import_garak(path: str | Path, *, name: str | None = None) -> Suite:
    """Read a garak `report.jsonl`. Each evaluated attempt output is an item (id `<seq>`, or
    `<seq>_<n>` when the probe asked for several generations); its score is 1 when no detector
    scored it ≥ 0.5 (the model resisted), 0 when one did. Category: the probe module."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError("garak report not found", path=path)
    version, model, run_id = None, None, None
    attempts: dict[str, tuple[int, dict[str, Any]]] = {}
    for lineno, row in jsonl_rows(path.read_text(encoding="utf-8"), path, error=SuiteError):
        if not isinstance(row, dict) or "entry_type" not in row:
            raise SuiteError("not a garak report line (no `entry_type`)", path=path, line=lineno,
                             fix="pass the garak.<run>.report.jsonl file garak writes")
        kind = row["entry_type"]
        if kind == "start_run setup":
            version = version or row.get("_config.version")
            model = row.get("plugins.model_name") or row.get("plugins.target_name") or model
            run_id = row.get("transient.run_id") or run_id
        elif kind == "init":
            version = row.get("garak_version") or version
            run_id = row.get("run") or run_id
        elif kind == "attempt":
            if not isinstance(row.get("uuid"), str):
                raise SuiteError("attempt has no uuid", path=path, line=lineno)
            prior = attempts.get(row["uuid"])
            if prior is None or int(row.get("status") or 0) >= int(prior[1].get("status") or 0):
                attempts[row["uuid"]] = (lineno, row)  # status 2 (evaluated) replaces status 1
    if not attempts:
        raise SuiteError("no attempts in the garak report", path=path)
    suite_name = name or "garak"
    items = []
    for lineno, att in sorted(attempts.values(), key=lambda a: (str(a[1].get("probe_classname")), a[1].get("seq") or 0, a[0])):
        prompt = _garak_text(att.get("prompt"))
        if prompt is None:
            raise SuiteError("attempt has no prompt text", path=path, line=lineno)
        outputs = [_garak_text(o) for o in att.get("outputs") or []] or [None]
        detectors = att.get("detector_results") or {}
        probe = str(att.get("probe_classname") or "unknown")
        extra = {k: v for k, v in att.items() if k not in _GARAK_ATTEMPT_KEYS}
        for n, output in enumerate(outputs):
            per = {}
            for det, scores in detectors.items():
                if isinstance(scores, list) and n < len(scores) and isinstance(scores[n], (int, float)):
                    per[det] = float(scores[n])
            hits = sorted(d for d, v in per.items() if v >= _GARAK_HIT)
            score = None if not per else (0.0 if hits else 1.0)
            reason = (f"garak: hit by {', '.join(hits)}" if hits else "garak: no detector hit") if per else None
            base_id = f"{probe}#{att.get('seq', lineno)}"
            items.append(Item(
                id=base_id if len(outputs) == 1 else f"{base_id}_{n}", suite=suite_name,
                messages=[ChatMessage(role="user", content=prompt)], category=probe.split(".")[0],
                response=output, score=score, reason=reason,
                metadata={"provenance": {"importer": "garak", "task": probe, "model": model, "uuid": att["uuid"],
                                         "output": n},
                          "detector_scores": per, "goal": att.get("goal"), "probe": probe, **extra},
            ))
    _check_ids(items, path)
    return Suite(name=suite_name, items=items, source=str(path), provenance={
        "importer": "garak", "tool": "garak", "tool_version": version, "model": model, "run_id": run_id,
        "hit_threshold": _GARAK_HIT})


# ----------------------------------------------------------------------------- promptfoo


def import_promptfoo(path: str | Path, *, name: str | None = None, model: str | None = None) -> Suite:
    """Read a promptfoo results file (`promptfoo eval -o results.json`, summary version 2 or 3,
    or `-o results.jsonl`, one result a line).

    One provider's results are imported (`model`, required when the file has several); item
    ids are `t<testIdx>` (`t<testIdx>_p<promptIdx>` with several prompts); the score is the
    grading result's score (`success` when there is none). Category: the test's
    `metadata.category` or `metadata.pluginId`, else its description, else 'promptfoo'.
    """
    path = Path(path)
    if not path.is_file():
        raise SuiteError("promptfoo results file not found", path=path)
    if path.suffix == ".jsonl":  # `-o results.jsonl`: one result a line, no summary
        doc, summary, results = {}, {}, []
        for lineno, row in jsonl_rows(path.read_text(encoding="utf-8"), path, error=SuiteError):
            if not isinstance(row, dict) or not ("testCase" in row or "response" in row):
                raise SuiteError("not a promptfoo result line (no testCase or response)", path=path, line=lineno,
                                 fix="pass the file written by `promptfoo eval -o results.jsonl`")
            results.append(row)
    else:
        doc = _read_json(path)
        summary = doc.get("results") if isinstance(doc, dict) else None
        results = summary.get("results") if isinstance(summary, dict) else None
    if not isinstance(results, list):
        raise SuiteError("not a promptfoo results file (no results.results list)", path=path,
                         fix="pass the JSON written by `promptfoo eval -o results.json`")
    def provider_of(r: dict[str, Any]) -> str:
        p = r.get("provider")
        return str(p.get("label") or p.get("id")) if isinstance(p, dict) else str(p)
    providers = sorted({provider_of(r) for r in results if isinstance(r, dict)})
    if model is None and len(providers) > 1:
        raise SuiteError(f"the file has results from {len(providers)} providers: {', '.join(providers)}",
                         path=path, fix="choose one with --model PROVIDER")
    if model is not None and model not in providers:
        raise SuiteError(f"no results from provider {model!r}", path=path, fix=f"use one of {', '.join(providers)}")
    chosen = model or (providers[0] if providers else None)
    rows = [r for r in results if isinstance(r, dict) and provider_of(r) == chosen]
    multi_prompt = len({r.get("promptIdx") for r in rows}) > 1
    suite_name = name or str(doc.get("evalId") or path.stem)
    items = []
    for k, r in enumerate(rows):
        test = r.get("testCase") or {}
        vars_ = r.get("vars") or test.get("vars") or {}
        prompt = r.get("prompt")
        text = prompt.get("raw") if isinstance(prompt, dict) else prompt
        if not isinstance(text, str):
            raise SuiteError(f"result {k} (testIdx {r.get('testIdx')}) has no prompt.raw", path=path)
        try:
            chat = json.loads(text) if text.lstrip().startswith("[") else None
        except json.JSONDecodeError:
            chat = None
        messages = _messages(chat if isinstance(chat, list) else text, path, None, f"result {k}")
        response = r.get("response") or {}
        output = response.get("output") if isinstance(response, dict) else None
        if output is not None and not isinstance(output, str):
            output = json.dumps(output, ensure_ascii=False)
        grading = r.get("gradingResult") or {}
        raw_score = grading.get("score", r.get("score"))
        if raw_score is None and isinstance(r.get("success"), bool):
            raw_score = float(r["success"])
        score = _check_score(raw_score, path, None, f"result {k} score") if not r.get("error") or grading else None
        meta = test.get("metadata") or r.get("metadata") or {}
        category = meta.get("category") or meta.get("pluginId") or test.get("description") or "promptfoo"
        tidx, pidx = r.get("testIdx", k), r.get("promptIdx", 0)
        items.append(Item(
            id=f"t{tidx}_p{pidx}" if multi_prompt else f"t{tidx}", suite=suite_name, messages=messages,
            target=_target(vars_.get("expected")), category=str(category),
            response=output, score=score,
            reason=grading.get("reason") or (f"promptfoo error: {r['error']}" if r.get("error") else None),
            metadata={"provenance": {"importer": "promptfoo", "task": suite_name, "model": chosen,
                                     "prompt_label": prompt.get("label") if isinstance(prompt, dict) else None},
                      "vars": vars_, "named_scores": r.get("namedScores") or {}, "success": r.get("success"),
                      "description": test.get("description")},
        ))
    if not items:
        raise SuiteError("promptfoo results file has no results", path=path)
    _check_ids(items, path)
    meta = doc.get("metadata") or {}
    return Suite(name=suite_name, items=items, source=str(path), provenance={
        "importer": "promptfoo", "tool": "promptfoo", "tool_version": meta.get("promptfooVersion"),
        "summary_version": summary.get("version"), "eval_id": doc.get("evalId"), "model": chosen,
        "timestamp": summary.get("timestamp")})
