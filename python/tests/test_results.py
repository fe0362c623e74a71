"""Reading a fit: tidy, confint, effects, summary, plot."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import medsim as ms

MODEL = dict(outcome="log_ci", treatment="dei", mediator="agglom", unit="city", time="year")


@pytest.fixture(scope="module")
def fit(panel):
    return ms.mediate(panel, **MODEL, reps=2000, seed=4, ci=["percentile", "bca"], level=[0.9, 0.95])


def test_tidy_has_pyfixest_columns_and_the_summary_numbers(fit):
    tidy = fit.tidy()
    assert list(tidy.columns[:4]) == ["Estimate", "Std. Error", "t value", "Pr(>|t|)"]
    assert tidy.attrs["interval_method"] == "bca"
    d = fit.to_dict()
    for key, e in d["effects"].items():
        assert tidy.loc[key, "Estimate"] == e["estimate"]
    a = d["effects"]["a"]
    assert tidy.loc["a", "t value"] == a["estimate"] / a["se"]
    want = {(i["level"], i["effect"]): i for i in d["intervals"] if i["method"] == "bca"}
    assert tidy.loc["indirect", "5%"] == want[(0.9, "indirect")]["lower"]
    assert tidy.loc["indirect", "97.5%"] == want[(0.95, "indirect")]["upper"]
    percentile = fit.tidy(method="percentile")
    assert percentile.attrs["interval_method"] == "percentile"
    assert percentile.loc["indirect", "2.5%"] != tidy.loc["indirect", "2.5%"]


def test_confint_reads_one_method_and_level(fit):
    ci = fit.confint(method="sobel", level=0.95)
    assert list(ci.columns) == ["lower", "upper"]
    assert list(ci.index) == ["indirect"]
    both = fit.confint(method="percentile")
    assert sorted(set(both["level"])) == [0.9, 0.95]


def test_summary_prints_the_cli_table(fit, capsys):
    fit.summary()
    text = capsys.readouterr().out
    assert "a*b  indirect effect" in text and "verdict" in text
    assert str(fit) == text


def test_plot_draws_the_indirect_effects_distribution(fit):
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is in the test extras")
    matplotlib.use("Agg")
    ax = fit.plot()
    bars = ax.containers[0]  # the histogram's
    assert sum(b.get_height() for b in bars) == 2000  # every draw (up to 20,000) in the histogram
    assert ax.get_xlabel().startswith("indirect")


def test_plot_without_matplotlib_says_how_to_get_it(fit, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ms.MedsimError, match="pip install matplotlib"):
        fit.plot()


def test_sensitivity_adds_the_rho_curve(panel):
    fit = ms.mediate(panel, **MODEL).sensitivity(rho={"from": -0.5, "to": 0.5, "step": 0.25})
    s = fit.to_dict()["sensitivity"]
    assert [p["rho"] for p in s["curve"]] == [-0.5, -0.25, 0.0, 0.25, 0.5]
    # At rho = 0 the ACME is the estimate a*b (sequential ignorability).
    at_zero = [p for p in s["curve"] if p["rho"] == 0.0][0]
    assert at_zero["acme"] == pytest.approx(fit.effects["indirect"]["estimate"], rel=1e-10)
    assert -0.5 < s["rho_at_zero"] < 0.5


def test_devices_lists_adapters():
    for d in ms.devices():
        assert {"name", "device_type", "api", "driver", "hardware", "shader_f64"} <= set(d)
