"""Coefficients and CR1 SEs equal pyfixest's on a real panel: the
wage_panel of Vella and Verbeek (1998), 545 men over 1980-1987, saved with
pyfixest's results by fixtures/make_fixtures.py."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import medsim as ms
from conftest import FIXTURES


def test_every_equation_equals_pyfixest_feols():
    want = json.loads((FIXTURES / "wage_panel_pyfixest.json").read_text())["equations"]
    df = pd.read_csv(FIXTURES / "wage_panel.csv")
    fit = ms.mediate(
        "lwage ~ union + expersq + married | nr + year", data=df, treatment="union", mediator="hours",
    )
    got = {e["name"]: e for e in fit.to_dict()["equations"]}
    assert set(got) == set(want)
    for name, eq in want.items():
        assert got[name]["dependent"] == eq["dependent"]
        coefficients = {c["name"]: c for c in got[name]["coefficients"]}
        assert set(coefficients) == set(eq["coefficients"]), name
        for key, (estimate, se) in eq["coefficients"].items():
            assert coefficients[key]["estimate"] == pytest.approx(estimate, rel=1e-8, abs=1e-12), (name, key)
            assert coefficients[key]["se"] == pytest.approx(se, rel=1e-6), (name, key)
    # The paths of the mediation model are those coefficients.
    effects = fit.effects
    a = want["mediator hours"]["coefficients"]["union"][0]
    b = want["outcome"]["coefficients"]["hours"][0]
    assert effects["a"]["estimate"] == pytest.approx(a, rel=1e-8)
    assert effects["b"]["estimate"] == pytest.approx(b, rel=1e-8)
    assert effects["indirect"]["estimate"] == pytest.approx(a * b, rel=1e-8)
    assert effects["c"]["estimate"] == pytest.approx(want["total"]["coefficients"]["union"][0], rel=1e-8)
