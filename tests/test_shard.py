"""Sharded runs and `cg-gate merge`: the merged record is the unsharded run's, bit for bit."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from builders import build_tiny_model, build_tiny_sae
from cg_gate.cli import cli
from cg_gate.errors import ConfigError
from cg_gate.pipeline import ShardSpec, parse_shard, shard_indices
from cg_gate.record import read_results, read_shard, write_shard
from cg_gate.suites import load_suites

_PROMPTS = [
    "What is the capital of France?", "The quick brown fox jumps over the lazy dog.",
    "Please summarise the following paragraph in one sentence.", "I cannot help with that.",
    "What is the capital of Spain? Madrid.", "Tell me about the lazy dog and the brown fox.",
    "Write a haiku about autumn leaves falling.", "def add(a, b): return a + b",
    "How many legs does a spider have?", "Translate 'good morning' into French.",
    "List three prime numbers.", "Why is the sky blue?", "Name a colour.",
    "Explain recursion to a child in two sentences.",
]


def _suite(name: str, prompts: list[str], pattern: str) -> str:
    rows = "\n".join(
        f'  - {{id: {name}{i}, input: "{p}", category: {"facts" if i % 2 else "chat"}}}'
        for i, p in enumerate(prompts))
    return (f"apiVersion: cg-gate/v1\nkind: Suite\nmetadata: {{name: {name}, version: \"1\"}}\n"
            f"defaults: {{scorer: {{name: regex, args: {{must_include: [\"{pattern}\"]}}}}}}\n"
            "categories:\n  facts: {purpose: Facts, severity: high}\n"
            "  chat: {purpose: Small talk, severity: low}\n"
            f"items:\n{rows}\n")


POLICY = """\
apiVersion: cg-gate/v1
kind: GatePolicy
metadata: {name: shard-policy, version: 0.1.0, owner: qa}
analysis: {min_support: 2, bootstrap: {samples: 200, seed: 3}, stability: {repeats: 8}}
concepts:
  early:
    title: The first sixteen features
    match: {ids: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]}
  late:
    title: Features 200 to 231
    match: {ids: [%s]}
rules:
  - {id: R1, concept: early, check: coverage, min_covered_fraction: 0.1, severity: error}
  - {id: R2, concept: early, check: performance, min: %s, severity: error}
  - {id: R3, concept: late, check: regression, max_drop: 0.5, severity: warn}
""" % (", ".join(str(i) for i in range(200, 232)), "%s")


@pytest.fixture(scope="module", autouse=True)
def few_references():
    """The first 24 neutral reference texts instead of all 640 (feature density needs some;
    every run and shard 1 read them): the runs stay seconds long."""
    import cg_gate.families as families

    texts = families.reference_texts()[:24]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(families, "reference_texts", lambda spec=None: list(texts))
        yield


@pytest.fixture(scope="module")
def art(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shard")
    build_tiny_model(root / "model", seed=0)
    build_tiny_model(root / "base", seed=1)
    build_tiny_sae(root / "sae", d_in=64, d_sae=256, hook="blocks.2.hook_resid_post")
    # Two suites: every response passes one's regex and fails the other's.
    (root / "a.yaml").write_text(_suite("alpha", _PROMPTS[:8], "."))
    (root / "b.yaml").write_text(_suite("beta", _PROMPTS[::-1][:6], "zzz-never-zzz"))
    (root / "policy.yaml").write_text(POLICY % "0.0")
    (root / "policy2.yaml").write_text(POLICY % "0.9")
    return root


def _invoke(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def _args(art: Path, out: Path, cache: Path, policy: str = "policy.yaml") -> list[str]:
    return ["--model", str(art / "model"), "--baseline", str(art / "base"),
            "--sae", str(art / "sae"), "--suite", str(art / "a.yaml"),
            "--suite", str(art / "b.yaml"), "--policy", str(art / policy),
            "--out", str(out), "--cache-dir", str(cache), "--max-new-tokens", "2",
            "--batch-size", "3", "--no-progress", "--formats", "json,md,junit,sarif"]


@pytest.fixture(scope="module")
def unsharded(art: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole")
    res = _invoke(["run", *_args(art, out, out / "cache")])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def shards(art: Path, tmp_path_factory) -> list[Path]:
    """Three shard runs, each with its own cache: nothing is shared with the unsharded run."""
    paths = []
    for i in (1, 2, 3):
        out = tmp_path_factory.mktemp(f"shard{i}")
        res = _invoke(["run", *_args(art, out, out / "cache"), "--shard", f"{i}/3"])
        assert res.exit_code == 0, res.output
        assert f"shard {i}/3:" in res.output
        assert not (out / "results.json").exists()
        paths.append(out / f"cg-gate-shard-{i}-of-3.npz")
    return paths


def _normalised(text: str, run) -> str:
    """A report with the run's id, timestamps and throughput blanked (they differ between any
    two runs)."""
    m = run.manifest
    for volatile in (m.run_id, m.started_at, m.finished_at):
        text = text.replace(volatile, "<volatile>")
    text = re.sub(r'time="[\d.]+"', 'time="<t>"', text)
    text = re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?( UTC|Z)?", "<when>", text)
    text = re.sub(r"[\d,]+(\.\d+)? items/s", "<rate>", text)
    return re.sub(r"\d+(\.\d+)? ?s\b", "<t>", text)


def test_merged_shards_give_the_unsharded_digest_verdicts_and_reports(art, unsharded, shards,
                                                                       tmp_path):
    out = tmp_path / "merged"
    res = _invoke(["merge", *map(str, reversed(shards)), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    whole, merged = read_results(unsharded / "results.json"), read_results(out / "results.json")
    # The three shards really split the items, and both sides ran per shard.
    records = [read_shard(p) for p in shards]
    assert [len(r.item_keys) for r in records] == [len(r.baseline.texts) for r in records]
    assert sum(len(r.item_keys) for r in records) == len(whole.items) == 14
    assert all(0 < len(r.item_keys) < 14 for r in records)
    # Shard 1 alone reads the reference texts (on the baseline side, as the unsharded run).
    assert records[0].baseline.exemplars.shape[0] == 24 and records[0].candidate.exemplars is None
    assert all(r.baseline.exemplars is None for r in records[1:])
    assert 0 < whole.summary.mean_score < 1
    assert merged.digest == whole.digest == merged.deterministic_digest()
    assert merged.manifest.run_id != whole.manifest.run_id
    assert [(v.rule_id, v.status) for v in merged.verdicts] == \
        [(v.rule_id, v.status) for v in whole.verdicts]
    perf = merged.families[0].performance
    assert merged.stability is not None and perf.stability_std is not None
    assert perf.chi_model.low is not None and merged.families[1].regression is not None
    assert merged.manifest.tokens_processed == whole.manifest.tokens_processed > 0
    assert merged.manifest.arguments["shards"]["count"] == 3
    assert merged.manifest.arguments["sampling"] == whole.manifest.arguments["sampling"] == {
        "samples": 1, "temperature": 0.0, "samples_from": "default", "temperature_from": "default"}
    with np.load(unsharded / "activations.npz") as a, np.load(out / "activations.npz") as b:
        for key in ("data", "indices", "indptr", "scores", "item_ids"):
            assert np.array_equal(a[key], b[key], equal_nan=key == "scores")
    for name in ("summary.md", "junit.xml"):
        assert _normalised((out / name).read_text(), merged) == \
            _normalised((unsharded / name).read_text(), whole)


def test_a_failing_rule_makes_merge_exit_1_and_foreign_shards_exit_2(art, shards, tmp_path):
    # A run whose policy fails R2 (χ_model ≥ 0.9 while the beta items all fail): its merge
    # exits 1; its shard merged with the other policy's shards is named, with what differs.
    other = tmp_path / "other"
    res = _invoke(["run", *_args(art, other, other / "cache", "policy2.yaml"), "--shard", "1/1"])
    assert res.exit_code == 0, res.output
    strict = _invoke(["merge", str(other), "--out", str(tmp_path / "m"), "--no-progress",
                      "--formats", "json"])
    assert strict.exit_code == 1, strict.output
    run = read_results(tmp_path / "m" / "results.json")
    assert {v.rule_id: v.status for v in run.verdicts}["R2"] == "fail"
    assert not (tmp_path / "m" / "summary.md").exists()

    foreign = other / "cg-gate-shard-1-of-1.npz"
    mixed = _invoke(["merge", str(shards[0]), str(foreign), "--out", str(tmp_path / "x")])
    assert mixed.exit_code == 2
    assert str(foreign) in mixed.output and "split 1 ways" in mixed.output
    record = read_shard(foreign)
    record.count, record.index = 3, 2
    write_shard(tmp_path / "cg-gate-shard-2-of-3.npz", record)
    mixed = _invoke(["merge", str(shards[0]), str(tmp_path / "cg-gate-shard-2-of-3.npz"),
                     str(shards[2]), "--out", str(tmp_path / "x")])
    assert mixed.exit_code == 2
    assert "cg-gate-shard-2-of-3.npz" in mixed.output and "policy" in mixed.output


def test_missing_duplicate_and_unreadable_shards_exit_2_naming_the_file(shards, tmp_path):
    missing = _invoke(["merge", str(shards[0]), str(shards[2]), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2
    assert "2/3 missing" in missing.output and "Traceback" not in missing.output

    dup = _invoke(["merge", *map(str, shards), str(shards[1]), "--out", str(tmp_path / "x")])
    assert dup.exit_code == 2
    assert "given twice" in dup.output and shards[1].name in dup.output

    junk = tmp_path / "cg-gate-shard-1-of-1.npz"
    junk.write_bytes(b"not a shard")
    bad = _invoke(["merge", str(junk), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and str(junk) in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "x" / "results.json").exists()


def test_merge_refuses_suites_edited_after_the_shards_ran(art, tmp_path):
    suite = tmp_path / "a.yaml"
    suite.write_text((art / "a.yaml").read_text())
    args = [a if a != str(art / "a.yaml") else str(suite) for a in _args(art, tmp_path / "s",
                                                                           tmp_path / "cache")]
    assert _invoke(["run", *args, "--shard", "1/1"]).exit_code == 0
    suite.write_text(suite.read_text().replace("France?", "Italy?"))
    res = _invoke(["merge", str(tmp_path / "s"), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2
    assert "suites" in res.output and "cg-gate-shard-1-of-1.npz" in res.output


def test_shards_take_whole_extraction_batches_and_cover_every_item_once(art):
    items = [it for s in load_suites([str(art / "a.yaml"), str(art / "b.yaml")]) for it in s.items]
    n, batch = len(items), 3
    # The extraction plan, written out: by read length, then suite position, cut every 3.
    order = sorted(range(n), key=lambda i: (len(items[i].messages[0].content), i))
    batches = [frozenset(order[lo:lo + batch]) for lo in range(0, n, batch)]
    for count in (1, 2, 3, 5):
        parts = [shard_indices(items, ShardSpec(index=i, count=count), batch_size=batch)
                 for i in range(1, count + 1)]
        assert sorted(i for p in parts for i in p) == list(range(n))
        for p in parts:
            assert p == sorted(p) and p
            assert all(b <= set(p) or not (b & set(p)) for b in batches)
    with pytest.raises(ConfigError, match="too few for 6 shards"):
        shard_indices(items, ShardSpec(index=1, count=6), batch_size=batch)


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a/b", "2", ""])
def test_a_bad_shard_spec_exits_2(art, tmp_path, text):
    with pytest.raises(ConfigError):
        parse_shard(text)
    res = _invoke(["run", *_args(art, tmp_path, tmp_path / "c"), "--shard", text])
    assert res.exit_code == 2 and "--shard" in res.output and "Traceback" not in res.output
    assert parse_shard(" 2 / 3 ") == ShardSpec(index=2, count=3)
