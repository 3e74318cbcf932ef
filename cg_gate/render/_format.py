"""Small, shared number and text formatting for every renderer.

"No value" is shown as an em dash, never as 0.
"""

from __future__ import annotations

import math
import re
from pathlib import PurePath
from typing import Any

from cg_gate.render._env import parse_utc

DASH = "—"

STATUS_LABELS: dict[str, str] = {
    "pass": "PASS",
    "warn": "WARN",
    "fail": "FAIL",
    "insufficient_data": "INSUFFICIENT DATA",
    "waived": "WAIVED",
    "error": "ERROR",
}

STATUS_ICONS: dict[str, str] = {
    "pass": "✔",
    "warn": "▲",
    "fail": "✖",
    "insufficient_data": "?",
    "waived": "◇",
    "error": "✖",
}

# Order in which statuses are listed in counts and summaries.
STATUS_ORDER = ("fail", "error", "warn", "insufficient_data", "waived", "pass")

SEVERITY_RANK: dict[str, int] = {"critical": 0, "error": 1, "high": 1, "warn": 2, "medium": 2,
                                 "low": 3, "info": 4}


def num(value: float | None, digits: int = 2) -> str:
    """`value` with `digits` decimals; an em dash for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:.{digits}f}"


def signed(value: float | None, digits: int = 2) -> str:
    """A difference with an explicit sign (minus sign, not hyphen); dash for None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    text = f"{value:+.{digits}f}"
    return text.replace("-", "−")


def interval(low: float | None, high: float | None, digits: int = 2) -> str:
    """`[low, high]`, or a dash when either end is unknown."""
    if low is None or high is None:
        return DASH
    return f"[{num(low, digits)}, {num(high, digits)}]".replace("-", "−")


def percent(value: float | None, digits: int = 0) -> str:
    """A share in [0, 1] as a percentage; dash for None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{100 * value:.{digits}f}%"


def short_digest(value: str | None, length: int = 12) -> str:
    """The first `length` characters of a digest (the full value belongs in a title)."""
    if not value:
        return DASH
    return value if len(value) <= length else value[:length]


def utc_display(stamp: str | None) -> str:
    """'2026-11-24 02:03 UTC' from the record's ISO timestamp (as given if unparseable)."""
    if not stamp:
        return DASH
    parsed = parse_utc(stamp)
    if parsed is None:
        return stamp
    return parsed.strftime("%Y-%m-%d %H:%M UTC")


def status_label(status: str) -> str:
    """Upper-case words for a verdict status."""
    return STATUS_LABELS.get(status, status.upper())


def evidence_text(evidence: dict, *, max_list: int = 8) -> str:
    """A verdict's evidence as 'key=value, …' (floats to 4 significant digits; long lists
    cut to their first `max_list` entries with a count of the rest; lists of records, which
    the verdict's message already puts in words, only counted)."""
    parts = []
    for key, value in evidence.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            # records (e.g. drivers): the message says them in words; results.json has them
            parts.append(f"{key}: {len(value)} (see results.json)")
        elif isinstance(value, float):
            parts.append(f"{key}={value:.4g}")
        elif isinstance(value, (list, tuple)) and len(value) > max_list:
            head = ", ".join(str(v) for v in value[:max_list])
            parts.append(f"{key}=[{head}, … +{len(value) - max_list} more]")
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def model_name(info: Any) -> str:
    """A short display name for a ModelInfo: hub ids as given, paths by their last part,
    with the adapter named after a '+'."""
    ident = str(info.id)
    looks_like_path = ident.startswith(("/", ".", "~")) or ident.count("/") != 1 \
        or ident.endswith((".gguf", ".safetensors"))
    name = PurePath(ident).name if looks_like_path else ident
    adapter = getattr(info, "adapter", None)
    if adapter:
        base = PurePath(str(adapter)).name
        name += " + adapter" + ("" if base in ("", "adapter") else f" {base}")
    return name


# Characters XML 1.0 does not allow at all (C0 controls but tab, LF and CR; lone surrogates;
# U+FFFE and U+FFFF), and others that are legal but let a string steer a terminal or hide
# text: other C0/C1 controls, DEL (ESC sequences) and the bidirectional embeddings,
# overrides and isolates that reorder what a reviewer sees.
_XML_ILLEGAL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
                         "\ud800-\udfff\ufffe\uffff]")


def _visible(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}" if ord(match.group()) < 0x100 else \
        f"\\u{ord(match.group()):04x}"


def visible_controls(text: str) -> str:
    """`text` with control characters, bidirectional overrides, lone surrogates and
    non-characters written out as visible escapes (`\\x1b`, `\\u202e`, `\\ud800`); tab, LF
    and CR are kept. The result is legal in XML 1.0 and encodes to UTF-8."""
    return _CONTROL_RE.sub(_visible, text)


def xml_legal(text: str) -> str:
    """`text` with every character XML 1.0 forbids written out as a visible escape."""
    return _XML_ILLEGAL_RE.sub(_visible, text)
