"""What every cg-gate command shares: --quiet/--verbose, and hidden deprecated spellings.

Older option spellings stay as hidden aliases for a release; using one prints a note to
stderr and feeds the parameter it stands for. Imports nothing but click (and, for a detail
line, the terminal-safe echo).
"""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

_VERBOSITY = "cg_gate.verbosity"
_EXPLICIT = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


# --------------------------------------------------------------------------- verbosity


def verbosity(ctx: click.Context) -> int:
    """-1 with --quiet, 1 with --verbose, else 0 (given before or after the command name)."""
    return int(ctx.meta.get(_VERBOSITY, 0))


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value:
        return
    level = -1 if param.name == "quiet" else 1
    if ctx.meta.get(_VERBOSITY, level) != level:
        raise click.UsageError("--quiet and --verbose contradict each other; pass one", ctx=ctx)
    ctx.meta[_VERBOSITY] = level


def verbosity_options() -> list[click.Option]:
    """`--quiet/-q` and `--verbose/-v`, accepted by the root command and by every subcommand."""
    return [
        click.Option(["--quiet", "-q"], is_flag=True, expose_value=False, callback=_set_verbosity,
                     help="Only errors, warnings and the verdict: no progress, no summaries."),
        click.Option(["--verbose", "-v"], is_flag=True, expose_value=False,
                     callback=_set_verbosity,
                     help="Also stage timings, cache use and other detail (on stderr)."),
    ]


def detail(ctx: click.Context, message: str) -> None:
    """A detail line on stderr, printed only under --verbose; it may quote inputs (suite names,
    paths), so control characters are shown as text and no line can start a workflow command."""
    if verbosity(ctx) > 0:
        from cg_gate._terminal import clean, echo

        echo(clean(message), err=True)


# --------------------------------------------------------------------------- command classes


class DeprecatedAlias(click.Option):
    """A hidden, older spelling of another option of the same command.

    It converts its value exactly as the option it stands for; `Command` then hands the value
    to that option's parameter and prints a deprecation note.
    """

    def __init__(self, param_decls: list[str], *, replaces: str, replacement_flag: str,
                 **kwargs: Any) -> None:
        flag = param_decls[0]
        super().__init__([flag, "_alias_" + flag.lstrip("-").replace("-", "_")], hidden=True,
                         **kwargs)
        self.flag = flag
        self.replaces = replaces
        self.replacement_flag = replacement_flag


def alias(flag: str, *, replaces: str, replacement_flag: str, **kwargs: Any):
    """Decorator: a hidden deprecated spelling `flag` of the parameter named `replaces`."""
    return click.option(flag, cls=DeprecatedAlias, replaces=replaces,
                        replacement_flag=replacement_flag, **kwargs)


class Command(click.Command):
    """A cg-gate command: takes --quiet/--verbose after its name, resolves deprecated aliases."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.extend(verbosity_options())

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)
        for param in self.params:
            if not isinstance(param, DeprecatedAlias):
                continue
            value = ctx.params.pop(param.name, None)
            if ctx.get_parameter_source(param.name) not in _EXPLICIT:
                continue
            if ctx.get_parameter_source(param.replaces) in _EXPLICIT:
                raise click.UsageError(
                    f"{param.flag} is the old spelling of {param.replacement_flag}; "
                    f"pass only {param.replacement_flag}", ctx=ctx)
            click.echo(f"note: {param.flag} is deprecated and will be removed; "
                       f"use {param.replacement_flag}", err=True)
            ctx.params[param.replaces] = value
            ctx.set_parameter_source(param.replaces, ParameterSource.COMMANDLINE)
        return rest


class Group(click.Group):
    """A command group whose subcommands are `Command`s (and subgroups `Group`s)."""

    command_class = Command
    group_class = type


# --------------------------------------------------------------------------- --json


def json_option(f: Any) -> Any:
    """`--json`: the command's result as one JSON object on stdout, nothing else there."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object on stdout (documented in the README) "
                             "instead of text.")(f)


def emit_json(kind: str, payload: dict[str, Any]) -> None:
    """One JSON object on stdout: `{"kind": "cg-gate/<kind>", "version": 1, ...payload}`.

    Control characters in strings from input files are escaped by JSON itself."""
    import json

    click.echo(json.dumps({"kind": f"cg-gate/{kind}", "version": 1, **payload}, indent=2,
                          ensure_ascii=False))


def error_json(exc: Exception) -> dict[str, Any]:
    """A GateError as data: message, path, line, column, fix."""
    return {"message": getattr(exc, "message", str(exc)), "path": getattr(exc, "path", None),
            "line": getattr(exc, "line", None), "column": getattr(exc, "column", None),
            "fix": getattr(exc, "fix", None)}
