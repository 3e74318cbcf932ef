"""Hostile strings, and a record whose every free-text field carries them.

`with_strings(run, strings)` puts the strings, in turn, into every string field of the
record that the schema lets hold any text (ids, titles, messages, labels, paths, names,
digests, timestamps, URLs; not enumerations such as statuses), so a renderer test covers
every field a renderer reads without listing them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from cg_gate.record import GateRun

HOSTILE = [
    "[click](https://evil.example/x)",
    "![pixel](http://evil.example/p.png)",
    "<http://evil.example/auto>",
    "javascript:alert(1)",
    "[js](javascript:alert(document.cookie))",
    "@octocat and @acme/security-team please look",
    "fixes #123 and acme/repo#7",
    "`code` ``double`` ``` end",
    "<img src=x onerror=alert(1)>",
    "<!-- hidden --> <details open>",
    "a | b | c",
    "\x1b[31mred\x1b[0m \x1b]8;;http://evil.example\x07link\x1b]8;;\x07",
    "\r\n## heading\n- item\n> quote",
    "**PASS** _ok_ ~~strike~~ $x^2$",
    "www.evil.example and https://evil.example/bare and //evil.example/pr",
    "mail user@evil.example",
    "\\](http://evil.example) \\\\[x](http://evil.example)",
    "&lt;script&gt; &#x5b;x&#x5d;(http://evil.example)",
    "<script>alert(1)</script>",
    "NUL\x00 bell\x07 lone\ud800 surrogate ]]> \"quotes\" 'single'",
    "[ref]: http://evil.example",
    "]]><![CDATA[x]]>",
    "approved \u202egnp.exe\u202c by \u2066bidi\u2069",
]


def _leaves(data: Any, path: tuple = ()) -> Iterator[tuple[tuple, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _leaves(value, (*path, i))
    elif isinstance(data, str):
        yield path, data


def _set(data: Any, path: tuple, value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


@cache
def _free_paths(record_json: str) -> tuple[tuple, ...]:
    """Paths of string fields that take any text (probed one by one against the model)."""
    import json

    data = json.loads(record_json)
    free = []
    for path, _ in _leaves(data):
        probe = json.loads(record_json)
        _set(probe, path, "free text probe")
        try:
            GateRun.model_validate(probe)
        except ValueError:
            continue
        free.append(path)
    return tuple(free)


def with_strings(run: GateRun, strings: Iterable[str]) -> GateRun:
    """A copy of `run` with `strings`, cycled, in every free-text field."""
    record_json = run.model_dump_json()
    data = run.model_dump(mode="json")
    for path, text in zip(_free_paths(record_json), itertools.cycle(list(strings))):
        _set(data, path, text)
    return GateRun.model_validate(data)


def free_path_count(run: GateRun) -> int:
    """How many free-text fields `with_strings` fills in `run`."""
    return len(_free_paths(run.model_dump_json()))
