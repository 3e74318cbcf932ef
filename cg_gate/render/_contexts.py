"""A concept's top-activating context as safe HTML, the activating token highlighted.

Label files mark the token where a feature fires most with ⟦ ⟧ and write newlines as ⏎
(`" a fitting⟦ choice⟧ for"`). `context_html` turns one such string into a Markup fragment:
every character of the text escaped, the marked token in `<mark>`, nothing else. It is
pure (no I/O, no state) and safe on any input:

* the first ⟦ with a ⟧ after it is the mark; every other ⟦ or ⟧ is dropped;
* an empty mark (⟦⟧) or none at all gives the escaped text without `<mark>`;
* a whitespace-only token is shown as a visible sign (␣ for spaces, ⇥ for a tab, ⏎ for a
  newline) so the highlight is never empty; a leading space stays outside the highlight;
* newlines become ⏎ and other control characters are dropped (they break PDF layout);
* long text is clipped to about `max_chars` characters around the mark, with … where cut.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

MARK_OPEN, MARK_CLOSE = "⟦", "⟧"
NEWLINE_SIGN = "⏎"
ELLIPSIS = "…"
MAX_CHARS = 160

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _clean(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", NEWLINE_SIGN)
    return _CONTROL.sub("", text)


def _visible(token: str) -> str:
    """A whitespace-only token as a sign; anything else as it is."""
    if token == "" or not token.isspace():
        return token
    return "".join("⇥" if ch == "\t" else NEWLINE_SIGN if ch == "\n" else "␣" for ch in token)


def split_marked(example: str) -> tuple[str, str, str]:
    """(left, marked token, right) of an example; ('text', '', '') when nothing is marked.

    The first ⟦ with a ⟧ after it delimits the token; stray markers elsewhere are dropped.
    Newlines are read as ⏎ and control characters dropped.
    """
    text = _clean(str(example))
    start = text.find(MARK_OPEN)
    end = text.find(MARK_CLOSE, start + 1) if start >= 0 else -1
    if start < 0 or end < 0:
        return _strip_marks(text), "", ""
    left, mid, right = text[:start], text[start + 1:end], text[end + 1:]
    return _strip_marks(left), _strip_marks(mid), _strip_marks(right)


def _strip_marks(text: str) -> str:
    return text.replace(MARK_OPEN, "").replace(MARK_CLOSE, "")


def _clip(left: str, mid: str, right: str, max_chars: int) -> tuple[str, str, str]:
    if len(mid) > max_chars:
        return "", mid[:max(1, max_chars - 1)] + ELLIPSIS, ""
    room = max_chars - len(mid)
    if len(left) + len(right) <= room:
        return left, mid, right
    # share the room, giving one side's unused part to the other
    half = room // 2
    keep_left = min(len(left), max(half, room - len(right)))
    keep_right = min(len(right), room - keep_left)
    if keep_left < len(left):
        left = ELLIPSIS + left[len(left) - max(0, keep_left - 1):] if keep_left > 0 else ""
    if keep_right < len(right):
        right = right[:max(0, keep_right - 1)] + ELLIPSIS if keep_right > 0 else ""
    return left, mid, right


def context_html(example: str, *, max_chars: int = MAX_CHARS) -> Markup:
    """One top-activating context as safe HTML: escaped text, the marked token in `<mark>`.

    `example` is a string from a labels row's `examples` (the token marked ⟦ ⟧). The result
    is at most about `max_chars` visible characters, clipped around the mark with ….
    """
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    left, mid, right = split_marked(example)
    if not mid:
        text = left + right
        if len(text) > max_chars:
            text = text[:max(0, max_chars - 1)] + ELLIPSIS
        return Markup(escape(text))
    lead = mid[:len(mid) - len(mid.lstrip(" "))] if mid.strip() else ""
    token = _visible(mid[len(lead):])
    left, token, right = _clip(left + lead, token, right, max_chars)
    return Markup("{}<mark>{}</mark>{}").format(left, token, right)


def contexts_html(examples: list[str], *, limit: int | None = None, max_chars: int = MAX_CHARS) -> list[Markup]:
    """`context_html` of each example (the first `limit` of them), skipping empty ones."""
    out = []
    for example in examples[:limit]:
        html = context_html(example, max_chars=max_chars)
        if str(html).strip():
            out.append(html)
    return out
