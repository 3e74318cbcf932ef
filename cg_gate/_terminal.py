"""Terminal text that no input can turn into a CI runner's command.

GitHub's runner reads every line a step prints: a line that starts with `::` (after
leading whitespace) is a workflow command (`::error`, `::add-mask`, `::stop-commands`),
and the older form `##[command]` is honoured anywhere in a line. Policy keys, waiver
fields, suite ids, labels and record strings come from files an attacker may write, so
everything the CLI prints passes through here:

- `clean(text)` is for one input-derived string placed inside a line: every control
  character (CR and LF included) is written as a visible escape (`\\r`, `\\n`, `\\x1b`),
  so the string can never start a line of its own.
- `safe_lines(text)` is the last guard on whole lines about to be printed: carriage
  returns and other control characters are escaped (line feeds are kept, they are the
  CLI's own), a line that would start a workflow command gets a backslash in front of
  its first colon, and `##[` is broken up.
- `echo` / `secho` are `click.echo` / `click.secho` with `safe_lines` applied first.
"""

from __future__ import annotations

import re
from typing import Any

import click

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and BOM
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_CONTROL_KEEP_LF_TAB = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff]")
_COMMAND_START = re.compile(r"^(\s*):")
_LEGACY = "##["


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def clean(text: Any) -> str:
    """One input-derived value as inert text for a terminal line (no control characters)."""
    s = text if isinstance(text, str) else str(text)
    s = _CONTROL.sub(_escape, s)
    return s.replace(_LEGACY, "#\\#[")


def _safe_line(line: str) -> str:
    line = _CONTROL_KEEP_LF_TAB.sub(_escape, line)
    if line.lstrip().startswith("::"):
        line = _COMMAND_START.sub(lambda m: m.group(1) + "\\:", line, count=1)
    return line.replace(_LEGACY, "#\\#[")


def safe_lines(text: Any) -> str:
    """Whole output text with no line a CI runner would read as a workflow command."""
    s = text if isinstance(text, str) else str(text)
    return "\n".join(_safe_line(line) for line in s.split("\n"))


def starts_workflow_command(line: str) -> bool:
    """Whether GitHub's runner would read this one line as a workflow command."""
    return line.lstrip().startswith("::") or _LEGACY in line


def echo(message: Any = None, **kwargs: Any) -> None:
    """`click.echo` with every line made safe (`safe_lines`)."""
    click.echo(None if message is None else safe_lines(message), **kwargs)


def secho(message: Any = None, **kwargs: Any) -> None:
    """`click.secho` with every line made safe before colour codes are added."""
    click.secho(None if message is None else safe_lines(message), **kwargs)
