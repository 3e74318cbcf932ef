"""One JSONL reader for suites, result imports, exemplar texts and label files.

`jsonl_rows` yields `(line number, parsed value)` for every non-blank line and raises the
caller's error type, naming the file, line and column, on the first line that is not JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from cg_gate.errors import GateError


def jsonl_rows(text: str, path: Path | str, *, error: type[GateError],
               message: str = "not valid JSON: {msg}", fix: str | None = None,
               comments: bool = False) -> Iterator[tuple[int, object]]:
    """Parse `text` (read from `path`) one JSON value per line.

    Blank lines are skipped, and lines starting with `#` when `comments`. `message` is
    formatted with the decoder's `msg` for the error raised on an unparseable line. A
    leading byte-order mark is accepted, as in YAML and CSV files.
    """
    text = text.removeprefix("\ufeff")
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or (comments and stripped.startswith("#")):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(message.format(msg=exc.msg), path=path, line=lineno, column=exc.colno,
                        fix=fix) from None
        except ValueError as exc:  # e.g. an integer longer than Python converts
            raise error(message.format(msg=str(exc).split(";")[0]), path=path, line=lineno,
                        fix=fix) from None
        except RecursionError:
            raise error(message.format(msg="nested too deeply"), path=path, line=lineno,
                        fix=fix) from None
        yield lineno, value
