"""Options shared by `run`, `analyze` and `demo`, converted and checked at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import click

from cg_gate.errors import ConfigError
from cg_gate.render import DEFAULT_FORMATS, RENDERERS
from cg_gate.render import parse_formats as parse_format_names

FORMATS = tuple(RENDERERS)


def parse_formats(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str]:
    """`html,pdf` → ['json', 'html', 'pdf'] checked against the renderer registry; an unknown
    format is a usage error (exit 2). results.json is always written."""
    if value is None:
        return list(DEFAULT_FORMATS)
    if not value.replace(",", "").strip():
        return ["json"]
    try:
        formats = parse_format_names(value)
    except ConfigError as exc:
        raise click.BadParameter(f"{exc.message}; choose from {', '.join(FORMATS)}") from None
    if "json" not in formats:
        formats.insert(0, "json")
    return formats


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
        click.option("--out", type=click.Path(path_type=Path, file_okay=False),
                     default=Path("cg-gate-out"), show_default=True, help="Output directory."),
        click.option("--cache-dir", type=click.Path(path_type=Path, file_okay=False),
                     default=Path(".cg-gate-cache"), show_default=True,
                     help="Content-addressed cache of responses and activations."),
        click.option("--device", default="cpu", show_default=True,
                     type=click.Choice(["cpu", "cuda", "mps", "auto"]), help="Torch device."),
        click.option("--dtype", default="auto", show_default=True,
                     type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
                     help="Weights dtype."),
        click.option("--batch-size", default=16, show_default=True,
                     type=click.IntRange(1, 4096), help="Items per batch."),
        click.option("--max-new-tokens", default=48, show_default=True,
                     type=click.IntRange(1, 8192), help="Generation length cap."),
        click.option("--temperature", default=0.0, show_default=True,
                     type=click.FloatRange(0.0, 5.0), help="0 = greedy."),
        click.option("--seed", default=0, show_default=True, type=int,
                     help="Seed for generation and every resampling."),
        click.option("--system-prompt", help="System prompt for items that set none."),
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
        click.option("--no-progress", is_flag=True, help="No progress bars."),
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
        click.option("--formats", callback=parse_formats,
                     help=f"Comma-separated report formats from {', '.join(FORMATS)} "
                          "[default: all but model-index]."),
        click.option("--fail-on", default="error", show_default=True,
                     type=click.Choice(["error", "warn"]),
                     help="Lowest rule severity that fails the build."),
        click.option("--no-validity", is_flag=True,
                     help="Skip stability, ablation and overlap checks."),
        click.option("--approver", help="Sign-off: approver name."),
        click.option("--role", help="Sign-off: approver role."),
        click.option("--decision", type=click.Choice(["approve", "reject", "approve-with-conditions"]),
                     help="Sign-off: decision."),
        click.option("--signoff-date", help="Sign-off: date (YYYY-MM-DD)."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_config(params: dict[str, Any], *, with_gate: bool):
    """Turn checked click parameters into a RunConfig; the load settings are decided here, once
    (an impossible device is refused with exit 2 before anything is read)."""
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
    signoff = SignOff(approver=params.get("approver"), role=params.get("role"),
                      decision=params.get("decision"), date=params.get("signoff_date"))
    return RunConfig(
        candidate=SideConfig(model=params.get("model"), revision=params.get("revision"),
                             gguf_file=params.get("gguf_file"),
                             adapter=str(params["adapter"]) if params.get("adapter") else None),
        baseline=baseline,
        baseline_results=baseline_results,
        sae=params.get("sae"),
        labels=params.get("labels"),
        suites=list(params.get("suites") or []),
        policy=params.get("policy") if with_gate else None,
        waivers=params.get("waivers") if with_gate else None,
        out=params["out"],
        formats=params.get("formats") or ["json"],
        fail_on=params.get("fail_on", "error"),
        cache_dir=params["cache_dir"],
        load=LoadSettings.resolve(
            device=params["device"], dtype=params["dtype"], offline=params["offline"],
            allow_pickle=params["allow_pickle"], trust_remote_code=params["trust_remote_code"],
        ),
        batch_size=params["batch_size"],
        generation=GenerationSettings(
            mode="generate", temperature=params["temperature"],
            max_new_tokens=params["max_new_tokens"], seed=params["seed"],
            system_prompt=params.get("system_prompt"), batch_size=params["batch_size"],
        ),
        token_policy=TokenPolicy(text=params["token_text"],
                                 exclude_special=not params["include_special"]),
        signoff=signoff,
        progress=not params["no_progress"],
        validity=not params.get("no_validity", False),
    )
