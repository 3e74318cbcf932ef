"""Progress of long stages: plain, throttled lines when stderr is not a terminal (CI logs)."""

from __future__ import annotations

import io

import pytest

from cg_gate._progress import (
    LineProgress,
    format_duration,
    format_rate,
    progress,
    progress_scope,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_lines_are_throttled_to_one_per_interval_and_formatted():
    clock, out = FakeClock(), io.StringIO()
    bar = progress("generate", 300, stream=out, clock=clock, interval=10.0)
    assert isinstance(bar, LineProgress)
    # 6 items every 3 s: 2 items/s. Updates at t = 3, 6, 9 print nothing (under 10 s).
    for _ in range(3):
        clock.now += 3
        bar.update(6)
    assert out.getvalue() == ""
    clock.now += 3  # t = 12 s, 24 done: 2 items/s, 276 left → 138 s
    bar.update(6)
    assert _lines(out) == ["generate: 24/300 items, 2.0 items/s, ETA 2m18s"]
    clock.now += 3  # t = 15 s: only 3 s after the last line
    bar.update(6)
    assert len(_lines(out)) == 1
    clock.now += 7  # t = 22 s, 10 s after the last line: 36 done → 36/22 items/s, 264 left → 161 s
    bar.update(6)
    assert _lines(out)[-1] == "generate: 36/300 items, 1.6 items/s, ETA 2m41s"


def test_the_last_line_comes_at_close_once_and_reports_the_time_taken():
    clock, out = FakeClock(), io.StringIO()
    bar = progress("concepts", 40, stream=out, clock=clock)
    clock.now += 4
    bar.update(40)  # the stage ends before any interval line
    bar.close()
    bar.close()
    assert _lines(out) == ["concepts: 40/40 items, 10 items/s, done in 4s"]


def test_cached_items_count_as_done_but_not_towards_the_rate():
    clock, out = FakeClock(), io.StringIO()
    bar = progress("generate", 300, done=200, stream=out, clock=clock, interval=10.0)
    clock.now += 20
    bar.update(10)  # 10 generated in 20 s: 0.5 items/s; 90 left → 180 s
    assert _lines(out) == ["generate: 210/300 items, 0.5 items/s, ETA 3m00s"]
    clock.now += 100
    bar.update(50)
    clock.now += 5
    bar.close()  # stopped at 260 of 300 (e.g. an error): said so, not "done"
    assert _lines(out)[-1] == \
        "generate: 260/300 items, 0.5 items/s, stopped after 2m05s, 200 cached"


def test_no_rate_yet_says_the_eta_is_unknown():
    clock, out = FakeClock(), io.StringIO()
    bar = LineProgress("generate", 10, stream=out, clock=clock, interval=10.0)
    assert bar.line(clock.now + 12) == "generate: 0/10 items, ETA unknown"


def test_the_scope_names_the_checkpoint():
    clock, out = FakeClock(), io.StringIO()
    with progress_scope("baseline"):
        bar = progress("generate", 300, stream=out, clock=clock)
    clock.now += 12
    bar.update(120)
    assert _lines(out) == ["generate baseline: 120/300 items, 10 items/s, ETA 18s"]
    assert progress("generate", 1, stream=out).label == "generate"  # scope has ended


def test_disabled_progress_prints_nothing():
    out = io.StringIO()
    bar = progress("generate", 5, enabled=False, stream=out)
    bar.update(5)
    bar.close()
    assert out.getvalue() == ""


def test_a_terminal_gets_a_redrawing_bar_not_lines():
    out = Terminal()
    bar = progress("generate", 5, stream=out)
    assert not isinstance(bar, LineProgress)
    bar.update(5)
    bar.close()
    text = out.getvalue()
    assert "generate" in text and "5/5" in text and "\r" in text


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.4, "0s"), (42, "42s"), (59.6, "1m00s"), (95, "1m35s"), (3599, "59m59s"),
    (3600, "1h00m"), (7500, "2h05m"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(("rate", "text"), [
    (0.048, "0.05"), (0.5, "0.5"), (1.94, "1.9"), (9.94, "9.9"), (10.4, "10"), (123.6, "124"),
])
def test_format_rate(rate, text):
    assert format_rate(rate) == text
