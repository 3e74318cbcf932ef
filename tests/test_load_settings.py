"""Load settings are decided once, at the CLI edge: an impossible device is exit 2 up front."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cg_gate.cli import cli
from cg_gate.errors import ConfigError
from cg_gate.models import LoadSettings


def test_mps_is_refused_before_anything_is_read(tmp_path) -> None:
    res = CliRunner().invoke(cli, ["run", "--device", "mps", "--out", str(tmp_path / "out"),
                                   "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 2, res.output
    assert "'mps' is not one of 'cpu', 'cuda', 'auto'" in res.output
    assert not (tmp_path / "cache").exists()
    with pytest.raises(ConfigError, match="--device cpu, cuda or auto"):
        LoadSettings.resolve(device="mps")


def test_cpu_needs_no_torch_and_stays_cpu() -> None:
    s = LoadSettings.resolve(device="cpu", dtype="float32", offline=True)
    assert s.device == "cpu" and s.dtype == "float32" and s.spec_fields()["device"] == "cpu"


def test_auto_is_made_concrete(monkeypatch) -> None:
    import cg_gate.models._settings as settings

    monkeypatch.setattr(settings, "_cuda_available", lambda: False)
    assert LoadSettings.resolve(device="auto").device == "cpu"
    with pytest.raises(ConfigError, match="no CUDA device"):
        LoadSettings.resolve(device="cuda")
    monkeypatch.setattr(settings, "_cuda_available", lambda: True)
    assert LoadSettings.resolve(device="auto").device == "cuda"
