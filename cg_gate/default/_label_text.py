"""Readable feature labels built from a labels row's own fields (no model, no torch).

A label names the tokens a feature fires on and where it is most over-represented, e.g.

    “refund” (“a refund for”), “charge” — in billing-support requests (user turn)
    newline, hyphen — across topics (assistant reply); fires on 12% of tokens

* **Tokens.** Up to three, chosen from the row's `top_tokens` (most activation mass) and the
  tokens marked ⟦ ⟧ in its top-activating `examples`: first the tokens in both lists (most
  often marked first), then tokens marked in at least two examples, then the rest of
  `top_tokens`. A word token is shown without its leading space; a piece of a word (the
  examples show it right after a letter or digit) as “…elling”; whitespace, punctuation,
  chat markers and byte fragments are named in words ("newline", "comma").
* **Context.** The first token gets the words around it in its first top example, when that
  token is a word or number: “art” (“The art of”).
* **Where.** The training-corpus category where the feature's activation mass is most
  over-represented (`category`, lift ≥ `MIN_LIFT`, in the words of `CATEGORY_WORDS`), or
  "across topics"; and the chat segment (`segment`) where it fires most.
* **Density.** Features that fire on at least `DENSE` of all tokens say so.

`label_tokens` returns the raw tokens a label names and `token_key` the form they are
compared in (case-folded, stripped; whitespace by kind), so a label's quality can be measured
by how well "this token is one the label names" predicts that the feature fires.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Any

MIN_LIFT = 1.5
"""Category lift below which a feature is labelled "across topics"."""
DENSE = 0.05
"""Density from which a label says how often the feature fires."""
N_TOKENS = 3
"""Tokens named in a label."""

CATEGORY_WORDS = {
    "everyday": "everyday how-to questions",
    "billing_support": "billing-support requests",
    "coding": "coding tasks",
    "arithmetic": "arithmetic problems",
    "dates_times": "date and time questions",
    "facts": "factual questions",
    "creative_writing": "creative-writing requests",
    "advice": "requests for personal advice",
    "harmful_request": "harmful requests and refusals",
    "sensitive_benign": "benign but sensitive-sounding questions",
    "uncertainty": "uncertain or unknowable questions",
    "human_handoff": "requests for a human agent",
    "multilingual_names": "questions about people's names",
    "foreign_language": "foreign-language messages",
    "medical_legal": "medical and legal questions",
    "account_privacy": "account and privacy requests",
    "summarize_transform": "passage summaries and rewrites",
    "tone_rewrite": "tone rewrites",
    "recommendations": "requests for recommendations",
    "explain_concepts": "requests to explain a concept",
    "travel": "travel planning",
    "email_drafting": "email drafting",
    "comparisons": "comparisons",
    "jailbreak": "jailbreak attempts",
    "assistant_self": "questions about the assistant itself",
    "unit_conversion": "unit conversions",
    "word_play": "word play (synonyms, rhymes)",
}
"""Training-corpus category (training/build_corpus.py) → words used in labels."""

SEGMENT_WORDS = {"system": "system prompt", "user": "user turn", "assistant": "assistant reply"}
"""Chat segment → words used in labels."""

MARK_OPEN, MARK_CLOSE = "⟦", "⟧"
NEWLINE_SIGN = "⏎"
"""Examples write newlines as ⏎ so each stays on one line."""

_PUNCT_NAMES = {
    ",": "comma", ".": "full stop", ":": "colon", ";": "semicolon", "?": "question mark",
    "!": "exclamation mark", "-": "hyphen", "–": "en dash", "—": "em dash", "'": "apostrophe",
    '"': "double quote", "“": "opening quote", "”": "closing quote", "‘": "opening quote",
    "’": "apostrophe", "(": "opening parenthesis", ")": "closing parenthesis",
    "[": "opening bracket", "]": "closing bracket", "{": "opening brace", "}": "closing brace",
    "<": "less-than sign", ">": "greater-than sign", "=": "equals sign", "+": "plus sign",
    "*": "asterisk", "/": "slash", "\\": "backslash", "_": "underscore", "#": "hash sign",
    "$": "dollar sign", "%": "percent sign", "&": "ampersand", "@": "at sign", "^": "caret",
    "`": "backtick", "|": "vertical bar", "~": "tilde", "°": "degree sign",
    "×": "multiplication sign", "€": "euro sign", "£": "pound sign", "…": "ellipsis",
    "...": "ellipsis", "```": "code fence", "**": "bold marker", "::": "double colon",
    "==": "double equals", "=>": "arrow", "->": "arrow", "://": "URL separator", "//": "double slash",
    "()": "empty parentheses", "[]": "empty brackets", "{}": "empty braces",
}
_CHAT_MARKERS = {
    "<|im_start|>": "start-of-turn marker",
    "<|im_end|>": "end-of-turn marker",
    "<|endoftext|>": "end-of-text marker",
}
_BYTE_FRAGMENT = "\ufffd"
_WORDLIKE = re.compile(r"\w", re.UNICODE)
_BREAK = re.compile(f"{NEWLINE_SIGN}|<\\|[^|]*\\|>")
_WORD = re.compile(r"[\w'’]+(?:[.:/-][\w'’]+)*")
"""A word in an example: letters and digits, with inner apostrophes, dots, colons, slashes, hyphens."""
_SENTENCE_END = re.compile(r"[.!?;]\s")
_EDGE_PUNCT = " .,;:!?()[]{}<>*_`\"'“”‘’"


def _whitespace_name(token: str) -> str:
    newlines = token.count("\n")
    if newlines >= 2:
        return "blank line"
    if newlines == 1:
        return "newline and indent" if token.split("\n")[1] else "newline"
    if "\t" in token:
        return "tab"
    return "space" if len(token) == 1 else "run of spaces"


def token_kind(token: str) -> str:
    """'space', 'marker', 'fragment', 'punct' or 'word' for one decoded token."""
    if token in _CHAT_MARKERS or (token.startswith("<|") and token.endswith("|>")):
        return "marker"
    if token == "" or token.isspace():
        return "space"
    if _BYTE_FRAGMENT in token:
        return "fragment"
    if not _WORDLIKE.search(token):
        return "punct"
    return "word"


def token_key(token: str) -> str:
    """The form in which a token is compared with a label's tokens.

    Words and punctuation: stripped of surrounding whitespace and case-folded
    (" Refund" and "refund" are the same). Whitespace tokens by kind ("newline", "blank line",
    "space", "tab"); every byte fragment is one key.
    """
    kind = token_kind(token)
    if kind == "space":
        return "␣" + _whitespace_name(token)
    if kind == "fragment":
        return _BYTE_FRAGMENT
    return unicodedata.normalize("NFC", token.strip()).casefold()


def readable_token(token: str, *, word_piece: bool = False) -> str:
    """One decoded token as a reader should see it in a label.

    " refund" → “refund”; "elling" with `word_piece` → “…elling”; "\\n" → newline;
    "," → comma; "<|im_end|>" → end-of-turn marker; a byte of a multi-byte character →
    non-ASCII byte.
    """
    kind = token_kind(token)
    if kind == "space":
        return _whitespace_name(token)
    if kind == "marker":
        return _CHAT_MARKERS.get(token, "chat marker")
    if kind == "fragment":
        return "non-ASCII byte"
    text = token.strip()
    if kind == "punct":
        if text in _PUNCT_NAMES:
            return _PUNCT_NAMES[text]
        if len(set(text)) == 1 and text[0] in _PUNCT_NAMES:
            return f"{_PUNCT_NAMES[text[0]]} ×{len(text)}"
        return f"“{text}”"
    if word_piece and not token[:1].isspace():
        return f"“…{text}”"
    return f"“{text}”"


def is_word_piece(token: str, examples: list[str]) -> bool:
    """Whether the top examples show `token` continuing a word ("canc⟦elling⟧").

    True when the first example that marks exactly this token has a letter or digit right
    before the mark and the token starts with one; without such an example, False.
    """
    if not token[:1].isalnum():
        return False
    for example in examples:
        start = example.find(MARK_OPEN)
        end = example.find(MARK_CLOSE, start + 1)
        if start >= 0 and end > start and example[start + 1:end] == token:
            return example[start - 1:start].isalnum()
    return False


def marked_tokens(examples: list[str]) -> list[str]:
    """The token marked ⟦ ⟧ in each example (⏎ read back as a newline), in example order."""
    out = []
    for example in examples:
        start = example.find(MARK_OPEN)
        end = example.find(MARK_CLOSE, start + 1)
        if start >= 0 and end > start:
            out.append(example[start + 1:end].replace(NEWLINE_SIGN, "\n"))
    return out


def label_tokens(top_tokens: list[str], examples: list[str], n: int = N_TOKENS) -> list[str]:
    """The raw tokens a label names (at most `n`, distinct by `token_key`).

    Tokens that carry the most activation mass *and* are marked in the top examples come
    first (most often marked first), then tokens marked in at least two examples, then the
    remaining top tokens in their order.
    """
    marks = marked_tokens(examples)
    mark_count = Counter(token_key(t) for t in marks)
    first_mark: dict[str, str] = {}
    for t in marks:
        first_mark.setdefault(token_key(t), t)
    top_keys = [token_key(t) for t in top_tokens]
    both = sorted((k for k in dict.fromkeys(top_keys) if mark_count[k] > 0),
                  key=lambda k: (-mark_count[k], top_keys.index(k)))
    repeated = [k for k, c in mark_count.most_common() if c >= 2]
    chosen: list[str] = []
    for key in [*both, *repeated, *top_keys]:
        if key not in chosen:
            chosen.append(key)
    raw = {**{token_key(t): t for t in reversed(top_tokens)}, **first_mark}  # the marked form first
    return [raw[k] for k in chosen[:n]]


def example_phrase(token: str, examples: list[str], max_chars: int = 32) -> str | None:
    """The words around `token` in the first example that marks it: "The art of".

    The word holding the marked token plus one word either side (with what lies between),
    cut at newlines, chat markers and sentence ends, surrounding punctuation dropped. None
    when no example marks the token, or the phrase would be the token alone or longer than
    `max_chars`.
    """
    key = token_key(token)
    for example in examples:
        start = example.find(MARK_OPEN)
        end = example.find(MARK_CLOSE, start + 1)
        if start < 0 or end <= start or token_key(example[start + 1:end].replace(NEWLINE_SIGN, "\n")) != key:
            continue
        left = _BREAK.split(example[:start])[-1]
        right = _BREAK.split(example[end + 1:])[0]
        mid = example[start + 1:end]
        text = left + mid + right
        core_start = len(left) + (len(mid) - len(mid.lstrip()))
        core_end = len(left) + len(mid.rstrip())
        words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        hit = [i for i, (a, b) in enumerate(words) if a < core_end and b > core_start]
        if not hit:
            return None
        first, last = max(0, hit[0] - 1), min(len(words) - 1, hit[-1] + 1)
        if first < hit[0] and _SENTENCE_END.search(text[words[first][1]:words[hit[0]][0]]):
            first = hit[0]  # the word before ends a sentence
        if last > hit[-1] and _SENTENCE_END.search(text[words[hit[-1]][1]:words[last][0]]):
            last = hit[-1]
        phrase = re.sub(r"\s+", " ", text[words[first][0]:words[last][1]]).strip(_EDGE_PUNCT)
        if not phrase or token_key(phrase) == key or len(phrase) > max_chars:
            return None
        return phrase
    return None


def feature_label(row: dict[str, Any]) -> str:
    """The readable label of one labels row (see the module docstring); "dead" for dead rows.

    Reads `top_tokens`, `examples`, `category`, `category_lift`, `segment` and `density`;
    any of them may be missing (a row without tokens is named by its examples alone).
    """
    if row.get("label") == "dead" and not row.get("examples") and not row.get("density"):
        return "dead"
    examples = list(row.get("examples") or [])
    tokens = label_tokens(list(row.get("top_tokens") or []), examples)
    shown = [readable_token(t, word_piece=is_word_piece(t, examples)) for t in tokens]
    if shown and token_kind(tokens[0]) == "word":
        phrase = example_phrase(tokens[0], examples)
        if phrase:
            shown[0] = f"{shown[0]} (“{phrase}”)"
    what = ", ".join(dict.fromkeys(shown)) or "no clear token"
    category, lift = row.get("category"), row.get("category_lift")
    if category and lift is not None and lift >= MIN_LIFT:
        where = "in " + CATEGORY_WORDS.get(category, category.replace("_", " "))
    else:
        where = "across topics"
    segment = SEGMENT_WORDS.get(row.get("segment") or "")
    label = f"{what} — {where}" + (f" ({segment})" if segment else "")
    density = row.get("density")
    if density is not None and density >= DENSE:
        label += f"; fires on {density:.0%} of tokens"
    return label


def relabel_row(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its label rewritten by `feature_label` and `starter_category` dropped."""
    out = {key: value for key, value in row.items() if key != "starter_category"}
    if row.get("label") != "dead":
        out["label"] = feature_label(row)
    return out
