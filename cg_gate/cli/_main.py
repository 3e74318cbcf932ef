"""The `cg-gate` command group and the one place errors become exit codes.

Subcommands live in their own modules and are loaded lazily, so `cg-gate --help` and
`cg-gate policy validate` never import torch, transformers or sae_lens.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import sys
import tempfile
import traceback

import click

from cg_gate import __version__
from cg_gate._terminal import clean
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
    "merge": "cg_gate.cli._merge:merge",
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
    "merge": "Join the shard records of `run --shard I/N` and judge the whole run.",
}


# Top-level modules of the optional extras -> the extra that installs them.
_EXTRAS = {name: "model" for name in ("torch", "transformers", "sae_lens", "transformer_lens",
                                      "scipy", "safetensors", "gguf", "peft", "datasets", "tqdm",
                                      "accelerate")}
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
        except _PASS_THROUGH:
            raise
        except GateError as exc:
            _fail(ctx, exc.render(), exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted; cached work is kept and a re-run resumes.", err=True)
            ctx.exit(130)
        except ModuleNotFoundError as exc:
            extra = _EXTRAS.get((exc.name or "").split(".")[0])
            if extra is None:
                _fail(ctx, _unexpected(exc, debug=_debug(ctx)), 2)
            err = GateError(f"this command needs {exc.name}, which cg-gate's light install leaves out",
                            fix=f"pip install 'cg-gate[{extra}]'")
            _fail(ctx, err.render(), err.exit_code)
        except Exception as exc:  # the one place an unexpected failure becomes exit 2
            _fail(ctx, _unexpected(exc, debug=_debug(ctx)), 2)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             params=verbosity_options())
@click.version_option(__version__, "-V", "--version", prog_name="cg-gate")
@click.option("--debug", is_flag=True, envvar="CG_GATE_DEBUG",
              help="On an unexpected error, print the traceback too (it is always written to "
                   "a log file) [env: CG_GATE_DEBUG].")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """cg-gate: a Competency Gaps gate for fine-tuned language models.

    Exit codes: 0 every enforced rule passes; 1 an enforced rule fails;
    2 the run could not be judged (bad input, configuration or environment).
    NO_COLOR=1 turns colour off.
    """
    ctx.ensure_object(dict)["debug"] = debug


# click's own control flow: usage errors (exit 2), aborts and `ctx.exit(code)` pass unchanged
_PASS_THROUGH = (click.exceptions.Exit, click.ClickException, click.Abort)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(isinstance(root.obj, dict) and root.obj.get("debug"))


def _fail(ctx: click.Context, message: str, code: int) -> None:
    click.secho(f"error: {clean(message)}", err=True, fg="red")
    ctx.exit(code)


def _environment_message(exc: OSError) -> str | None:
    """A one-line cause for operating-system failures a user can act on (full disk, ...)."""
    where = exc.filename if exc.filename is not None else None
    target = f" ({where})" if where else ""
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return (f"no space left on the device{target}. Fix: free disk space or point --out / "
                "--cache-dir at a volume with room; cached entries already written stay valid")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"permission denied{target}: {exc.strerror}. Fix: choose a writable directory "
                "or change its permissions")
    if exc.errno == errno.ENOENT and where:
        return f"no such file or directory{target}. Fix: check the path"
    return None


def _unexpected(exc: BaseException, *, debug: bool) -> str:
    """One line naming the cause; the traceback goes to a log file (and stderr with --debug)."""
    if isinstance(exc, OSError):
        known = _environment_message(exc)
        if known is not None:
            return known
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    log = _write_log(text)
    if debug:
        click.echo(text, err=True)
    cause = f"{type(exc).__name__}: {exc}".strip().splitlines()[0] if str(exc) else type(exc).__name__
    if len(cause) > 300:
        cause = cause[:299] + "…"
    where = f"the traceback is in {log}" if log else "the traceback could not be saved"
    return (f"internal error: {cause}; {where}; re-run with --debug to see it. Nothing was "
            "judged (exit 2)")


def _write_log(text: str) -> str | None:
    try:
        fd, name = tempfile.mkstemp(prefix="cg-gate-error-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        return name
    except OSError:
        return None


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Commands end with `ctx.exit(code)`; `GateError` and every other
    failure become exit 2 with one line of cause (see `LazyGroup.invoke`)."""
    try:
        cli.main(args=argv, prog_name="cg-gate")
    except Exception as exc:  # a failure outside any command (should not happen)
        click.secho(f"error: {clean(_unexpected(exc, debug=bool(os.environ.get('CG_GATE_DEBUG'))))}",
                    err=True, fg="red")
        sys.exit(2)
