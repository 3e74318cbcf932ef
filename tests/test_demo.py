"""The embedded demo on the real default model, SAE and adapter, cut to one item per category."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cg_gate.cli import cli
from cg_gate.cli._demo import shipped_policy
from cg_gate.record import read_results

pytestmark = pytest.mark.slow


def test_demo_runs_offline_and_writes_a_judged_report(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    res = CliRunner().invoke(cli, ["demo", "--limit", "1", "--max-new-tokens", "8",
                                   "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                                   "--no-progress"])
    assert res.exit_code in (0, 1), res.output
    for name in ("results.json", "report.html", "report.pdf", "summary.md"):
        assert (out / name).is_file(), name
    run = read_results(out / "results.json")
    categories = {it.category for it in run.items}
    assert len(run.items) == len(categories) >= 12
    assert run.manifest.model.adapter is not None and run.manifest.baseline is not None
    assert run.manifest.model.digest != run.manifest.baseline.digest
    assert run.manifest.sae.d_sae == 8192 and run.manifest.sae.hook == "blocks.20.hook_resid_post"
    # Every rule of the shipped policy is judged; with 12 items most lack support.
    assert run.verdicts and {v.rule_id for v in run.verdicts}
    refusal = next(f for f in run.families if f.name == "refusal")
    assert refusal.members, "the refusal family resolves to SAE features on the default SAE"
    assert run.fidelity.fve is not None and run.fidelity.fve > 0.5
    assert f"Demo finished" in res.output

    # A re-run with an edited policy reads everything from the cache: no model, no SAE.
    import cg_gate.models
    import cg_gate.sae

    def boom(*_a, **_k):
        raise AssertionError("a warm demo re-run must not load a model or an SAE")

    monkeypatch.setattr(cg_gate.models, "load_model", boom)
    monkeypatch.setattr(cg_gate.sae, "load_sae", boom)
    policy = (shipped_policy("default")).read_text(encoding="utf-8")
    assert "version: 1.0.0" in policy
    edited = tmp_path / "edited.yaml"
    edited.write_text(policy.replace("version: 1.0.0", "version: 1.0.1-edited"), encoding="utf-8")
    again = CliRunner().invoke(cli, ["demo", "--limit", "1", "--max-new-tokens", "8",
                                     "--out", str(tmp_path / "again"), "--cache-dir", str(tmp_path / "cache"),
                                     "--policy", str(edited), "--format", "md", "--no-progress"])
    assert again.exit_code == res.exit_code, again.output
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == [
        "activations.npz", "results.json", "summary.md"]
    rerun = read_results(tmp_path / "again" / "results.json")
    assert rerun.manifest.policy.version == "1.0.1-edited"
    assert [v.status for v in rerun.verdicts] == [v.status for v in run.verdicts]
