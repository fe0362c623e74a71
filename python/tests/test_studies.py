"""Sweeps and simulation studies from Python equal the CLI's tables."""

from __future__ import annotations

import io

import pandas as pd

import medsim as ms
from conftest import cli

SWEEP = """name = "sw"
[data]
synthetic = { cities = 60, years = 6, seed = 2 }
[model]
groups = []
also_mediators = []
[resampling]
replicates = 300
[inference]
methods = ["percentile"]
[sweep]
"model.controls" = [["ln_gdp"], ["ln_gdp", "fdi"]]
"resampling.scheme" = ["pairs", "wild"]
"""

SIMULATION = """name = "sim"
[simulation]
dgp = "iid"
n = [40, 80]
a = 0.39
b = [0.0, 0.39]
datasets = 30
replicates = 99
methods = ["sobel", "percentile"]
seed = 4
"""


def _csv(path):
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def _by_cli(tmp_path, command: str, text: str, table: str):
    """The config `text` saved, and the table `medsim COMMAND` writes for it."""
    config = tmp_path / f"{command}.toml"
    config.write_text(text)
    out = tmp_path / "cli"
    cli(command, str(config), "-q", "--no-plots", "--out", str(out))
    return config, _csv(out / table)


def test_sweep_is_medsim_sweep(tmp_path):
    config, want = _by_cli(tmp_path, "sweep", SWEEP, "sweep.csv")
    got = ms.sweep(config)
    assert set(got["point"]) == {1, 2, 3, 4}
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_simulate_is_medsim_simulate(tmp_path):
    config, want = _by_cli(tmp_path, "simulate", SIMULATION, "simulation.csv")
    got = ms.simulate(config, threads=1)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.attrs["summary"]["name"] == "sim"


def test_threshold_is_medsim_threshold(tmp_path):
    """ms.threshold gives medsim threshold's threshold.json (the bootstrap
    p-values and critical values exactly) and its regime mediation."""
    import json
    from conftest import ROOT

    config = tmp_path / "t.toml"
    text = (ROOT / "configs" / "threshold.toml").read_text()
    text = text.replace("level = 0.95", "level = 0.95\nmediation = true")
    text = text.replace("[resampling]\nseed = 1", '[resampling]\nseed = 1\nbackend = "cpu"')
    assert 'backend = "cpu"' in text
    config.write_text(text)
    cli("threshold", str(config), "-q", "-B", "99", "--out", str(tmp_path / "out"), cwd=tmp_path)
    want = json.loads((tmp_path / "out" / "threshold.json").read_text())
    got = ms.threshold(config, replicates=99)
    summary = got.attrs["summary"]
    assert summary == want
    assert list(got["k"]) == [1, 2, 3]
    assert list(got["p_value"]) == [s["p_value"] for s in want["steps"]]
    assert got.attrs["summary"]["mediation"]["moderator"] == "agglom_regime"
    assert "Regime-dependent mediation" in got.attrs["report"]
    assert "c3_prime" in got.attrs["mediation"]["effects"]
