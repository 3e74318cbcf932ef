"""The results digest: the same for a cold run and a fully cached re-run of the same inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from builders import build_tiny_model, build_tiny_sae
from cg_gate.cli import cli
from cg_gate.record import DIGEST_EXCLUDED_MANIFEST, read_results
from fixtures.make_run import make_run
from test_pipeline import POLICY, SUITE


def test_runtime_fields_are_outside_the_digest_and_findings_inside():
    run = make_run()
    before = run.deterministic_digest()
    m = run.manifest
    varied = run.model_copy(update={"manifest": m.model_copy(update={
        "run_id": "other", "started_at": "2030-01-01T00:00:00Z",
        "finished_at": "2030-01-01T00:01:00Z", "wall_time_s": 999.0,
        "stage_times_s": {"candidate": 1.0}, "tokens_processed": m.tokens_processed + 12345,
        "cache_hits": m.cache_hits + 7, "arguments": {"passed": {"out": "elsewhere"}}})})
    assert varied.deterministic_digest() == before
    assert {"tokens_processed", "cache_hits", "wall_time_s"} <= set(DIGEST_EXCLUDED_MANIFEST)
    # what the run found is covered: one verdict's message, the items processed
    verdict = run.verdicts[0].model_copy(update={"message": run.verdicts[0].message + "!"})
    assert run.model_copy(update={"verdicts": [verdict, *run.verdicts[1:]]}
                          ).deterministic_digest() != before
    more = run.model_copy(update={"manifest": m.model_copy(
        update={"items_processed": m.items_processed + 1})})
    assert more.deterministic_digest() != before


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_cold_and_warm_runs_have_the_same_digest_and_verdicts(tmp_path: Path):
    build_tiny_model(tmp_path / "model", seed=0)
    build_tiny_sae(tmp_path / "sae", d_in=64, d_sae=256, hook="blocks.2.hook_resid_post")
    (tmp_path / "suite.yaml").write_text(SUITE % {"pattern": "."})
    (tmp_path / "policy.yaml").write_text(POLICY % {"min": "0.0"})

    def run(out: str):
        res = CliRunner().invoke(cli, [
            "run", "--model", str(tmp_path / "model"), "--sae", str(tmp_path / "sae"),
            "--suite", str(tmp_path / "suite.yaml"), "--policy", str(tmp_path / "policy.yaml"),
            "--out", str(tmp_path / out), "--cache-dir", str(tmp_path / "cache"),
            "--max-new-tokens", "4", "--batch-size", "4", "--no-progress", "--formats", "json"],
            catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return read_results(tmp_path / out / "results.json")

    cold, warm = run("cold"), run("warm")
    # the second run really was served by the cache: nothing went through the model
    assert (cold.manifest.cache_hits, warm.manifest.cache_hits) == (0, 6)
    assert cold.manifest.tokens_processed > 0 and warm.manifest.tokens_processed == 0
    assert [(v.stable_id, v.status, v.message) for v in cold.verdicts] == \
        [(v.stable_id, v.status, v.message) for v in warm.verdicts]
    assert cold.digest == warm.digest == warm.deterministic_digest()
