"""Progress of long stages (generation, concept extraction).

On a terminal a tqdm bar redraws in place. Anywhere else — a CI log, a file — a bar would
be either silent or thousands of carriage returns, so a plain line is printed instead, at
most every `INTERVAL_S` seconds and once when the stage ends:

    generate baseline: 120/300 items, 1.9 items/s, ETA 1m35s

The pipeline names the checkpoint a stage runs for with `progress_scope("baseline")`, so
the library code that reports progress needs to know only its own stage name.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Protocol, TextIO

INTERVAL_S = 10.0
"""Least time between two plain progress lines."""

_scope: ContextVar[str | None] = ContextVar("cg_gate_progress_scope", default=None)


class Progress(Protocol):
    """What a long stage calls: `update(n)` after n more items, `close()` at the end."""

    def update(self, n: int = 1) -> object: ...

    def close(self) -> None: ...


@contextmanager
def progress_scope(name: str) -> Iterator[None]:
    """Name what the progress reported inside belongs to (e.g. 'candidate', 'baseline')."""
    token = _scope.set(name)
    try:
        yield
    finally:
        _scope.reset(token)


def progress(stage: str, total: int, *, done: int = 0, enabled: bool = True,
             stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
             interval: float = INTERVAL_S) -> Progress:
    """Progress of `stage` over `total` items of which `done` are done already (cached).

    Disabled: nothing is printed. `stream` (default: stderr) a terminal: a tqdm bar.
    Otherwise plain lines, throttled to one per `interval` seconds of `clock`, and a last
    line on `close()`.
    """
    if not enabled:
        return _Silent()
    out = stream if stream is not None else sys.stderr
    scope = _scope.get()
    label = f"{stage} {scope}" if scope else stage
    if _is_terminal(out):
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=done, unit="item", desc=label, file=out, disable=False)
    return LineProgress(label, total, done=done, stream=out, clock=clock, interval=interval)


def quiet_library_bars(enabled: bool, stream: TextIO | None = None) -> None:
    """Turn transformers' and huggingface_hub's own bars ("Loading weights") off when our
    progress is off or `stream` (stderr) is no terminal, where they would print carriage
    returns into the log. Bars stay off for the rest of the process."""
    if enabled and _is_terminal(stream if stream is not None else sys.stderr):
        return
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when those libraries load
    # Bars that call tqdm directly (transformers' GGUF de-quantisation): tqdm reads TQDM_*
    # defaults when it is first imported, which the CLI has not done yet at this point.
    os.environ.setdefault("TQDM_DISABLE", "1")
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class LineProgress:
    """Plain progress lines for logs: at most one per `interval` seconds, and one at the end.

    The rate counts only items done since the stage started (cached items cost nothing and
    would make the ETA a promise the run cannot keep).
    """

    def __init__(self, label: str, total: int, *, done: int = 0, stream: TextIO,
                 clock: Callable[[], float] = time.monotonic, interval: float = INTERVAL_S) -> None:
        self.label = label
        self.total = total
        self.done = done
        self._start_done = done
        self._stream = stream
        self._clock = clock
        self._interval = interval
        self._t0 = clock()
        self._last = self._t0
        self._closed = False

    def update(self, n: int = 1) -> None:
        """`n` more items are done; print a line if the last one is `interval` seconds old."""
        self.done += n
        now = self._clock()
        if now - self._last >= self._interval and self.done < self.total:
            self._last = now
            self._print(self.line(now))

    def close(self) -> None:
        """Print the last line (once): the count, the rate and the time taken."""
        if self._closed:
            return
        self._closed = True
        self._print(self.line(self._clock(), final=True))

    def line(self, now: float, *, final: bool = False) -> str:
        """The progress line at time `now`."""
        elapsed = max(now - self._t0, 0.0)
        worked = self.done - self._start_done
        rate = worked / elapsed if elapsed > 0 and worked > 0 else None
        head = f"{self.label}: {self.done}/{self.total} items"
        if rate is not None:
            head += f", {format_rate(rate)} items/s"
        if final:
            cached = f", {self._start_done} cached" if self._start_done else ""
            if self.done < self.total:
                return f"{head}, stopped after {format_duration(elapsed)}{cached}"
            return f"{head}, done in {format_duration(elapsed)}{cached}"
        if rate is None:
            return f"{head}, ETA unknown"
        return f"{head}, ETA {format_duration((self.total - self.done) / rate)}"

    def _print(self, text: str) -> None:
        print(text, file=self._stream, flush=True)


def format_rate(rate: float) -> str:
    """Items per second with sensible precision: 0.05, 1.9, 24."""
    if rate >= 10:
        return f"{rate:.0f}"
    if rate >= 0.1:
        return f"{rate:.1f}"
    return f"{rate:.2f}"


def format_duration(seconds: float) -> str:
    """`42s`, `1m35s`, `2h05m`: whole seconds under an hour, whole minutes above."""
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"
