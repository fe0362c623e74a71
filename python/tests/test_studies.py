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
