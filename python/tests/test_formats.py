"""Data files read by path equal their CSV: the fixtures of tests/formats.rs
(one panel saved by pandas as Stata, Parquet and Excel), through
mediate(data=path), and the same as the CLI's --data run."""

from __future__ import annotations

import json

import pytest

import medsim as ms
from conftest import ROOT, cli

FIXTURES = ROOT / "tests" / "fixtures"
MODEL = dict(outcome="log_ci", treatment="dei", mediator="agglom", controls=["ln_gdp", "industry", "fdi"],
             unit="city", time="year", group="region", reps=300, seed=3, ci="percentile")


def _summary(path, **extra):
    d = ms.mediate(data=path, **MODEL, **extra).to_dict()
    d["data"].pop("source")
    return d


@pytest.fixture(scope="module")
def from_csv():
    return _summary(FIXTURES / "formats.csv")


@pytest.mark.parametrize(
    "file, sheet",
    [("formats.dta", None), ("formats_114.dta", None), ("formats.parquet", None),
     ("formats_zstd.parquet", None), ("formats.xlsx", "panel"), ("formats.xls", None),
     ("formats.ods", None)],
)
def test_each_file_reads_as_its_csv(file, sheet, from_csv):
    got = _summary(FIXTURES / file, **({"sheet": sheet} if sheet else {}))
    assert got == from_csv
    # Stata's value labels name the groups, as the CSV's text does.
    assert sorted(got["groups"]) == ["region=central", "region=east", "region=west"]


def test_a_stata_file_gives_the_clis_summary(tmp_path):
    out = tmp_path / "cli"
    cli("run", "--data", str(FIXTURES / "formats.dta"), "--controls", "ln_gdp,industry,fdi", "--group", "region",
        "-B", "300", "--seed", "3", "--ci", "percentile", "-q", "--no-plots", "--out", str(out))
    want = json.loads((out / "summary.json").read_text())
    got = ms.mediate(data=FIXTURES / "formats.dta", **MODEL, name="formats").to_dict()
    assert got == want


def test_a_wrong_sheet_is_named_with_the_sheets_there_are():
    with pytest.raises(ms.MedsimError, match="no sheet named 'data'; its sheets are: notes, panel"):
        ms.mediate(data=FIXTURES / "formats.xlsx", sheet="data", **MODEL)
    with pytest.raises(ms.MedsimError, match="sheet= picks a sheet"):
        ms.mediate(ms.generate(), sheet="panel", **MODEL)
