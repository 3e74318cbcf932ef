"""Readable labels from a labels row, their detection score, and concept contexts as safe HTML."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from markupsafe import Markup

from cg_gate.default import (
    default_labels_path,
    feature_label,
    label_quality,
    label_tokens,
    read_label_rows,
    readable_token,
    relabel_row,
    token_key,
)
from cg_gate.render._contexts import context_html, contexts_html, split_marked

TRAINING = Path(__file__).resolve().parent.parent / "training"


# --------------------------------------------------------------------------- tokens


@pytest.mark.parametrize(("token", "word_piece", "shown"), [
    (" refund", False, "“refund”"),
    ("Refund", False, "“Refund”"),
    ("elling", True, "“…elling”"),
    ("elling", False, "“elling”"),
    (" 42", False, "“42”"),
    ("'s", False, "“'s”"),
    ("\n", False, "newline"),
    ("\n\n", False, "blank line"),
    ("\n   ", False, "newline and indent"),
    (" ", False, "space"),
    ("   ", False, "run of spaces"),
    ("\t", False, "tab"),
    (",", False, "comma"),
    (" (", False, "opening parenthesis"),
    ("```", False, "code fence"),
    ("--", False, "hyphen ×2"),
    ("],", False, "“],”"),
    ("<|im_end|>", False, "end-of-turn marker"),
    ("\ufffd", False, "non-ASCII byte"),
    (" \ufffd", False, "non-ASCII byte"),
])
def test_readable_token(token: str, word_piece: bool, shown: str) -> None:
    assert readable_token(token, word_piece=word_piece) == shown


@pytest.mark.parametrize(("a", "b", "same"), [
    (" Refund", "refund", True),
    ("\n", " \n", True),
    ("\n", "\n\n", False),
    (" (", "(", True),
    (" refund", " refunds", False),
])
def test_token_key(a: str, b: str, same: bool) -> None:
    assert (token_key(a) == token_key(b)) is same


def test_label_tokens_prefer_tokens_that_are_both_heavy_and_marked() -> None:
    top = [",", " dream", " idea", " true", " that"]
    examples = ["It's a fitting⟦ choice⟧ for", "a fantastic⟦ idea⟧. Here", "a fitting⟦ choice⟧ for a man",
                "ideal for this⟦ task⟧, as"]
    # " idea" is heavy and marked; " choice" is marked twice; then the heaviest tokens
    assert label_tokens(top, examples) == [" idea", " choice", ","]
    assert label_tokens(top, []) == [",", " dream", " idea"]
    assert label_tokens([" Tell", "Tell", "3"], ["⏎⟦Tell⟧ me"]) == ["Tell", "3"]


# --------------------------------------------------------------------------- labels

ROWS = [
    ({"id": 1, "label": "old", "top_tokens": [" refund", " charge", " invoice"],
      "examples": ["I want a⟦ refund⟧ for the", "why is there a⟦ charge⟧ on my", "get a⟦ refund⟧ now"],
      "density": 0.002, "category": "billing_support", "category_lift": 6.0, "segment": "user"},
     "“refund” (“a refund for”), “charge”, “invoice” — in billing-support requests (user turn)"),
    ({"id": 2, "label": "old", "top_tokens": ["\n", "-", " "],
      "examples": ["list:⏎⟦-⟧ apples", "⟦⏎⟧⏎Dear"],
      "density": 0.12, "category": "coding", "category_lift": 1.2, "segment": "assistant"},
     "newline, hyphen, space — across topics (assistant reply); fires on 12% of tokens"),
    ({"id": 3, "label": "old", "top_tokens": [" of", "elling", " cancel"],
      "examples": ["about canc⟦elling⟧ a service", "about canc⟦elling⟧ my plan"],
      "density": 0.003, "category": "harmful_request", "category_lift": 4.8, "segment": "assistant"},
     "“…elling” (“about cancelling a”), “of”, “cancel” — "
     "in harmful requests and refusals (assistant reply)"),
    ({"id": 4, "label": "old", "top_tokens": ["Tell"], "examples": ["<|im_start|>user⏎⟦Tell⟧ me about"],
      "density": 0.0002, "category": "some_new_category", "category_lift": 3.0, "segment": "system"},
     "“Tell” (“Tell me”) — in some new category (system prompt)"),
    ({"id": 5, "label": "explained", "top_tokens": [], "examples": [], "density": None},
     "no clear token — across topics"),
]


@pytest.mark.parametrize(("row", "label"), ROWS, ids=[str(r["id"]) for r, _ in ROWS])
def test_feature_label(row: dict, label: str) -> None:
    assert feature_label(row) == label


def test_relabel_row_drops_the_starter_category_and_keeps_the_rest() -> None:
    row = {**ROWS[0][0], "starter_category": "refusal", "examples": ROWS[0][0]["examples"]}
    out = relabel_row(row)
    assert "starter_category" not in out
    assert out["label"] == ROWS[0][1]
    assert {k: v for k, v in out.items() if k != "label"} == {k: v for k, v in row.items()
                                                             if k not in ("label", "starter_category")}
    assert relabel_row(out) == out  # idempotent
    dead = {"id": 9, "label": "dead", "examples": [], "top_tokens": [], "density": 0.0}
    assert relabel_row(dead) == dead


def test_label_module_imports_no_torch() -> None:
    import subprocess

    code = ("import sys, cg_gate.default, cg_gate.render._contexts; "
            "print(sorted(m for m in ('torch', 'transformers', 'sae_lens') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- detection


def _relabel():
    sys.path.insert(0, str(TRAINING))
    try:
        return importlib.import_module("relabel")
    finally:
        sys.path.remove(str(TRAINING))


def test_match_scores_exact_window_and_text_boundaries() -> None:
    relabel = _relabel()
    keys = np.array([0, 1, 2, 3, 4, 5, 1, 9])
    text = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    # wanted key 1 at positions 1 (text 0) and 6 (text 1); the window never crosses a text
    assert relabel.match_scores(keys, text, np.array([1]), window=2).tolist() == [1, 2, 1, 1, 0, 0, 2, 1]
    assert relabel.match_scores(keys, text, np.array([], dtype=int)).tolist() == [0] * 8


def test_auroc_by_hand() -> None:
    relabel = _relabel()
    pos, neg = np.array([2, 2, 1, 0]), np.array([0, 0, 1, 2])
    # pairs (16): pos 2 beats 3 negatives, ties 1 (×2); pos 1 beats 2, ties 1; pos 0 ties 2
    expected = (2 * (3 + 0.5) + (2 + 0.5) + (0 + 1.0)) / 16
    assert relabel.auroc(pos, neg) == pytest.approx(expected)
    assert relabel.auroc(np.array([2, 2]), np.array([0, 1])) == 1.0
    assert relabel.auroc(np.array([0]), np.array([0, 0])) == 0.5
    assert relabel.auroc(np.array([]), np.array([0])) is None
    assert relabel.balanced_accuracy(pos, neg) == pytest.approx((2 / 4 + 3 / 4) / 2)


def test_detect_on_a_tiny_held_out_set() -> None:
    import scipy.sparse as sp

    relabel = _relabel()
    vocab = {"refund": 0, "the": 1, "a": 2, "money": 3}
    #        text 0                 text 1           text 2
    keys = np.array([1, 0, 3, 2, 1, 0, 2, 3, 1, 2, 0])
    text = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    fires = [1, 5, 10, 7]  # the three "refund" tokens and one "money" two tokens after one
    acts = np.zeros((len(keys), 2))
    acts[fires, 0] = 1.0
    data = relabel.HeldOut(keys=keys, text=text, acts=sp.csc_matrix(acts), vocab=vocab)
    res = relabel.detect(data, 0, ["refund"], min_activations=3, min_texts=3)
    scores = relabel.match_scores(keys, text, np.array([0]))
    assert scores.tolist() == [1, 2, 1, 1, 0, 2, 1, 1, 1, 1, 2]
    assert res.n == 4 and res.texts == 3
    # positives score [2, 2, 2, 1]; the 7 negatives [1, 1, 1, 0, 1, 1, 1]. Each 2 beats all 7;
    # the 1 ("money", two tokens after a refund) beats the 0 and ties the six 1s
    assert res.auroc == pytest.approx((3 * 7 + 1 + 0.5 * 6) / (4 * 7))
    # the token-only rule: 3 of 4 positives hit, all 7 negatives rejected
    assert res.balanced_accuracy == pytest.approx((3 / 4 + 7 / 7) / 2)
    # weighted by activation: the "money" token fires at 3.0, the refunds at 1.0 (weight 6 in all)
    acts[7, 0] = 3.0
    data = relabel.HeldOut(keys=keys, text=text, acts=sp.csc_matrix(acts), vocab=vocab)
    res = relabel.detect(data, 0, ["refund"], min_activations=3, min_texts=3)
    assert res.auroc_weighted == pytest.approx((3 * 1.0 * 7 + 3.0 * (1 + 0.5 * 6)) / (6 * 7))
    # strong activations (≥ half the maximum 3.0): only "money", which ties six negatives, beats one
    assert res.auroc_strong == pytest.approx((1 + 0.5 * 6) / 7)
    assert relabel.detect(data, 1, ["refund"], min_activations=1).auroc is None  # never fires
    assert relabel.detect(data, 0, ["refund"], min_activations=5).auroc is None  # too few


# --------------------------------------------------------------------------- shipped labels


def test_shipped_labels_are_readable_and_carry_their_quality() -> None:
    rows = read_label_rows(default_labels_path())
    live = [row for row in rows if row["label"] != "dead"]
    assert all("starter_category" not in row for row in rows)
    assert all(row["label"] == feature_label(row) for row in live)
    assert all(" · " not in row["label"] for row in live)
    scored = [row["detection"] for row in live if row.get("detection") is not None]
    assert all(0.0 <= d <= 1.0 for d in scored)
    quality = label_quality()
    figures = quality["figures"]
    assert figures["scored"]["features"] == len(scored) > 1000
    assert abs(figures["scored"]["mean"] - float(np.mean(scored))) < 1e-3
    assert figures["shuffled_labels"]["mean"] < figures["scored"]["mean"]
    import hashlib

    assert quality["labels_sha256"] == hashlib.sha256(default_labels_path().read_bytes()).hexdigest()
    assert json.dumps(quality)  # plain JSON


# --------------------------------------------------------------------------- contexts as HTML


@pytest.mark.parametrize(("example", "html"), [
    ("a fitting⟦ choice⟧ for", "a fitting <mark>choice</mark> for"),
    ("<script>alert(1)</script>⟦<b>⟧&amp;",
     "&lt;script&gt;alert(1)&lt;/script&gt;<mark>&lt;b&gt;</mark>&amp;amp;"),
    ("say \"hi\" ⟦'x'⟧", "say &#34;hi&#34; <mark>&#39;x&#39;</mark>"),
    ("a⟦⟧b", "ab"),
    ("no marks at all", "no marks at all"),
    ("⟧stray⟦ open", "stray open"),
    ("open ⟦ never closed", "open  never closed"),
    ("a⟦b⟧c⟦d⟧e", "a<mark>b</mark>cde"),
    ("x⟦ ⟧y", "x<mark>␣</mark>y"),
    ("x⟦\t⟧y", "x<mark>⇥</mark>y"),
    ("line⟦⏎⟧next", "line<mark>⏎</mark>next"),
    ("a\nb⟦c\x00\x1b⟧", "a⏎b<mark>c</mark>"),
    ("", ""),
])
def test_context_html(example: str, html: str) -> None:
    out = context_html(example)
    assert isinstance(out, Markup)
    assert str(out) == html


def test_context_html_escapes_markup_passed_in() -> None:
    assert str(context_html(Markup("<b>⟦t⟧</b>"))) == "&lt;b&gt;<mark>t</mark>&lt;/b&gt;"


def test_context_html_clips_long_text_around_the_mark() -> None:
    out = str(context_html("L" * 500 + "⟦mid⟧" + "R" * 500, max_chars=40))
    assert out == "…" + "L" * 17 + "<mark>mid</mark>" + "R" * 18 + "…"
    assert len(out.replace("<mark>", "").replace("</mark>", "")) == 40
    # one short side gives its room to the other
    assert str(context_html("ab⟦c⟧" + "R" * 100, max_chars=10)) == "ab<mark>c</mark>RRRRRR…"
    # a huge token is clipped itself
    assert str(context_html("x⟦" + "T" * 100 + "⟧y", max_chars=5)) == "<mark>TTTT…</mark>"
    assert str(context_html("N" * 100, max_chars=5)) == "NNNN…"
    with pytest.raises(ValueError):
        context_html("x", max_chars=0)


def test_split_marked_and_contexts_html() -> None:
    assert split_marked("a⟦b⟧c") == ("a", "b", "c")
    assert split_marked("abc") == ("abc", "", "")
    out = contexts_html(["a⟦b⟧c", "", "⟦⟧", "d⟦e⟧f"], limit=4)
    assert [str(m) for m in out] == ["a<mark>b</mark>c", "d<mark>e</mark>f"]


def test_label_features_shares_the_label_format_and_imports_without_torch() -> None:
    import subprocess

    code = (f"import sys; sys.path.insert(0, {str(TRAINING)!r}); import label_features, relabel; "
            "from cg_gate.default import feature_label; "
            "assert label_features.feature_label is feature_label; "
            "print(sorted(m for m in ('torch', 'transformers', 'sae_lens') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_shrink_drops_trailing_examples_until_the_rows_fit() -> None:
    sys.path.insert(0, str(TRAINING))
    try:
        label_features = importlib.import_module("label_features")
    finally:
        sys.path.remove(str(TRAINING))
    rows = [{"id": i, "label": "x", "examples": ["e" * 100] * 4} for i in range(3)]
    full = label_features.encoded_size(rows)
    label_features.shrink(rows, full - 1)
    assert [len(r["examples"]) for r in rows] == [3, 3, 3]
    label_features.shrink(rows, 0)
    assert [len(r["examples"]) for r in rows] == [1, 1, 1]  # never below one example
    assert label_features.significant(0.0071695200894614985) == 0.00717
