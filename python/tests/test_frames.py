"""Data frames of every kind the community hands around: ids as strings,
categoricals or integers; missing values; polars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import medsim as ms

MODEL = dict(outcome="log_ci", treatment="dei", mediator="agglom", controls=["ln_gdp", "fdi"], unit="city", time="year")


def _core(fit):
    d = fit.to_dict()
    return d["effects"], d["equations"], d["intervals"]


@pytest.fixture(scope="module")
def base(panel):
    return ms.mediate(panel, **MODEL, reps=400, seed=9, ci="percentile")


def test_ids_of_any_dtype_give_the_same_fit(panel, base):
    codes = {c: i for i, c in enumerate(sorted(set(panel["city"])))}
    for city in (
        panel["city"].astype("category"),
        panel["city"].map(codes).astype("int64"),
        panel["city"].map(codes).astype("int32"),
        panel["city"].astype(object),
    ):
        df = panel.assign(city=city, year=panel["year"].astype("int64"))
        fit = ms.mediate(df, **MODEL, reps=400, seed=9, ci="percentile")
        # Integer codes order the clusters differently from the names, so
        # the draws differ: the estimates and analytic SEs do not.
        if city.dtype.kind in "iu":
            for key, e in fit.effects.items():
                assert e["estimate"] == pytest.approx(base.effects[key]["estimate"], rel=1e-12)
                want = base.effects[key]["se"]
                assert (e["se"] is None and want is None) or e["se"] == pytest.approx(want, rel=1e-10)
        else:
            assert _core(fit) == _core(base)


def test_missing_values_are_dropped_and_counted_as_the_cli_counts_them(panel, tmp_path):
    from conftest import cli, read_csv_exact
    import json

    df = panel.copy()
    df.loc[[3, 40, 41], "ln_gdp"] = np.nan
    df.loc[7, "agglom"] = np.nan
    df.loc[100, "city"] = ""
    path = tmp_path / "holes.csv"
    df.to_csv(path, index=False, na_rep="")
    out = tmp_path / "cli"
    cli("run", "--data", str(path), "--controls", "ln_gdp,fdi", "--scheme", "none", "-q", "--no-plots",
        "--out", str(out))
    want = json.loads((out / "summary.json").read_text())
    exact = read_csv_exact(path, ("city", "province", "region", "size"))
    fit = ms.mediate(exact, **MODEL, name="holes")
    got = fit.to_dict()
    assert got["data"]["dropped_missing"] == 5
    got["data"]["source"] = want["data"]["source"]
    assert got == want
    # pandas' own missing markers: None in an object column, pd.NA.
    df2 = exact.copy()
    df2["city"] = df2["city"].astype(object)
    df2.loc[100, "city"] = None
    df2["ln_gdp"] = df2["ln_gdp"].astype("Float64")
    df2.loc[[3, 40, 41], "ln_gdp"] = pd.NA
    assert ms.mediate(df2, **MODEL, name="holes").to_dict()["effects"] == got["effects"]


def test_polars_frames_are_read_like_pandas(panel, base):
    pl = pytest.importorskip("polars", reason="polars is in the test extras")
    frame = pl.DataFrame({name: panel[name].tolist() for name in panel.columns})
    fit = ms.mediate(frame, **MODEL, reps=400, seed=9, ci="percentile")
    assert _core(fit) == _core(base)
    # A polars null is a missing value, as NaN is in pandas.
    holes = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("fdi")).alias("fdi")
    )
    assert ms.mediate(holes, **MODEL).to_dict()["data"]["dropped_missing"] == 1


def test_a_column_of_text_where_numbers_are_needed_is_named_with_its_row(panel):
    df = panel.copy()
    df["fdi"] = df["fdi"].astype(object)
    df.loc[12, "fdi"] = "n/a?"
    with pytest.raises(ms.MedsimError, match=r"column 'fdi': row 12 .*'n/a\?' is not a number"):
        ms.mediate(df, **MODEL)
