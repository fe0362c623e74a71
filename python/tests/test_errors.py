"""Errors are MedsimError (a ValueError) with the CLI's message: the
column, the row, the keyword and what was expected."""

from __future__ import annotations

import pytest

import medsim as ms

MODEL = dict(outcome="log_ci", treatment="dei", mediator="agglom", unit="city", time="year")


def test_medsim_error_is_a_value_error():
    assert issubclass(ms.MedsimError, ValueError)


def test_a_missing_column_is_named_with_what_the_data_have(panel):
    with pytest.raises(ms.MedsimError, match="no column named 'nope'.*they have: city, year"):
        ms.mediate(panel, **{**MODEL, "mediator": "nope"})


def test_a_bad_option_names_the_keyword(panel):
    with pytest.raises(ms.MedsimError, match="scheme="):
        ms.mediate(panel, **MODEL, scheme="pear")
    with pytest.raises(ms.MedsimError, match="level="):
        ms.mediate(panel, **MODEL, reps=100, level=1.5)
    with pytest.raises(ms.MedsimError, match="fixed_effects="):
        ms.mediate(panel, **MODEL, fixed_effects="unit+year")


def test_a_duplicate_unit_period_is_reported_with_its_rows(panel):
    import pandas as pd

    df = pd.concat([panel, panel.iloc[[5]]], ignore_index=True)
    with pytest.raises(ms.MedsimError, match=r"duplicate \(unit, time\) pair \(C001, 2016\)"):
        ms.mediate(df, **MODEL)


def test_not_a_data_frame():
    with pytest.raises(ms.MedsimError, match="data must be a data frame"):
        ms.mediate([1, 2, 3], **MODEL)


def test_a_config_file_error_names_its_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[resampling]\nscheme = "pairs"\nreplicates = "many"\n')
    with pytest.raises(ms.MedsimError, match=r"bad.toml:3"):
        ms.run(path)


def test_intervals_not_computed_are_refused_with_what_there_is(panel):
    fit = ms.mediate(panel, **MODEL, reps=200, ci="percentile")
    with pytest.raises(ms.MedsimError, match="no bca intervals.*percentile 0.95"):
        fit.confint(method="bca")
    with pytest.raises(ms.MedsimError, match="kept no replicates"):
        fit.replicates()
