"""Shared helpers of the Python package's tests: the CLI binary (for the
parity tests), CSVs read exactly, the synthetic panel."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def medsim_bin() -> Path:
    """The CLI built from the same source (MEDSIM_BIN, else the release
    build `cargo build --release` makes); a missing binary fails the test."""
    path = Path(os.environ.get("MEDSIM_BIN", ROOT / "target" / "release" / "medsim"))
    if not path.exists():
        pytest.fail(f"the medsim CLI is not at {path}: run `cargo build --release` or set MEDSIM_BIN")
    return path


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run([str(medsim_bin()), *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"medsim {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return done


def read_csv_exact(path: Path, labels: tuple[str, ...]) -> pd.DataFrame:
    """A CSV with every numeric cell parsed by Python's float() (correctly
    rounded, as medsim parses it), the `labels` columns kept as text."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {}
    for name in rows[0].keys():
        values = [r[name] for r in rows]
        if name in labels:
            columns[name] = values
        else:
            columns[name] = [float(v) if v not in ("", "NA", "NaN", ".") else float("nan") for v in values]
    return pd.DataFrame(columns)


@pytest.fixture(scope="session")
def panel_csv(tmp_path_factory) -> Path:
    """The synthetic panel written by `medsim generate`."""
    path = tmp_path_factory.mktemp("panel") / "panel.csv"
    cli("generate", "--out", str(path))
    return path


@pytest.fixture(scope="session")
def panel(panel_csv) -> pd.DataFrame:
    return read_csv_exact(panel_csv, ("city", "province", "region", "size"))
