"""The `cg-gate` command group and the one place errors become exit codes.

Subcommands live in their own modules and are loaded lazily, so `cg-gate --help` and
`cg-gate policy validate` never import torch, transformers or sae_lens.
"""

from __future__ import annotations

import importlib.util
import os

import click

from cg_gate import __version__
from cg_gate.cli._command import Group, verbosity_options
from cg_gate.errors import GateError

# command name -> "module:attribute"
_COMMANDS: dict[str, str] = {
    "analyze": "cg_gate.cli._analyze:analyze",
    "run": "cg_gate.cli._run:run",
    "report": "cg_gate.cli._report:report",
    "policy": "cg_gate.cli._policy:policy",
    "suite": "cg_gate.cli._suite:suite",
    "suites": "cg_gate.cli._suite:suite",
    "labels": "cg_gate.cli._labels:labels",
    "ci": "cg_gate.cli._ci:ci",
    "demo": "cg_gate.cli._demo:demo",
    "judge": "cg_gate.cli._judge:judge",
}

_HELP = {
    "analyze": "Compute Competency Gaps metrics for a model, an SAE and suites.",
    "run": "Run the gate: suites → responses → concepts → verdicts → reports.",
    "report": "Re-render reports from a results.json without loading a model.",
    "policy": "Validate and inspect gate policies.",
    "suite": "Inspect, validate and import evaluation suites.",
    "suites": "The same as `suite` (list | show | validate | import).",
    "labels": "Build and import concept labels for an SAE.",
    "ci": "CI glue: GitHub outputs, job summary, annotations and PR comments.",
    "demo": "Run the embedded demo gate offline (SmolLM2-135M + its SAE).",
    "judge": "Calibrate the rubric judge against human labels (accuracy, Cohen's κ).",
}


# Top-level modules of the optional extras -> the extra that installs them.
_EXTRAS = {name: "model" for name in ("torch", "transformers", "sae_lens", "transformer_lens",
                                      "scipy", "safetensors", "gguf", "peft", "datasets", "tqdm")}
_EXTRAS["weasyprint"] = "pdf"


def no_color() -> bool:
    """NO_COLOR set to anything but the empty string turns colour off (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


class LazyGroup(Group):
    """A group whose subcommands are imported only when they are invoked."""

    def make_context(self, info_name, args, parent=None, **extra):
        if no_color():
            extra["color"] = False
        return super().make_context(info_name, args, parent=parent, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in _COMMANDS if self._available(name))

    @staticmethod
    def _available(name: str) -> bool:
        module = _COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in _COMMANDS or not self._available(name):
            return None
        module, attr = _COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            extra = _EXTRAS.get((exc.name or "").split(".")[0])
            if extra is None:
                raise
            err = GateError(f"this command needs {exc.name}, which cg-gate's light install leaves out",
                            fix=f"pip install 'cg-gate[{extra}]'")
            click.secho(f"error: {err.render()}", err=True, fg="red")
            ctx.exit(err.exit_code)
        except GateError as exc:
            click.secho(f"error: {exc.render()}", err=True, fg="red")
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted; cached work is kept and a re-run resumes.", err=True)
            ctx.exit(130)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             params=verbosity_options())
@click.version_option(__version__, "-V", "--version", prog_name="cg-gate")
def cli() -> None:
    """cg-gate: a Competency Gaps gate for fine-tuned language models.

    Exit codes: 0 every enforced rule passes; 1 an enforced rule fails;
    2 the run could not be judged (bad input, configuration or environment).
    NO_COLOR=1 turns colour off.
    """


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Commands end with `ctx.exit(code)`; `GateError` becomes exit 2."""
    cli.main(args=argv, prog_name="cg-gate")
