"""pyfixest's formula grammar: what it accepts and how it refuses."""

from __future__ import annotations

import pytest

import medsim as ms
from medsim._formula import parse


def test_good_formulas():
    f = parse("log_ci ~ dei + ln_gdp + industry | city + year")
    assert (f.outcome, f.regressors, f.fixed_effects) == ("log_ci", ["dei", "ln_gdp", "industry"], ["city", "year"])
    assert parse("y ~ x").fixed_effects == []
    assert parse("y~x|u").fixed_effects == ["u"]
    assert parse("y ~ x | 0").fixed_effects == []
    assert parse("y ~ 1 + x").regressors == ["x"]
    iv = parse("y ~ c1 + c2 | u + t | x ~ z1 + z2")
    assert (iv.regressors, iv.endogenous, iv.instruments) == (["c1", "c2"], "x", ["z1", "z2"])
    assert parse("y ~ 1 | u + t | x ~ z").regressors == []


@pytest.mark.parametrize(
    "formula, message",
    [
        ("y x", "one '~'"),
        ("~ x", "no outcome"),
        ("y ~ ", "no regressors"),
        ("y ~ x +", "empty term"),
        ("y ~ x | a + b + c", "at most two fixed effects"),
        ("y ~ x | u | z", "'x ~ z1 \\+ z2'"),
        ("y ~ log(x)", "not a column name"),
        ("y ~ x + x", "appears twice"),
        ("y ~ 0 + x", "no intercept"),
        ("y ~ x | u | a + b ~ z", "exactly one instrumented"),
        ("y ~ x | u + t | x ~ z | w", "at most three parts"),
    ],
)
def test_bad_formulas(formula, message):
    with pytest.raises(ms.MedsimError, match=message):
        parse(formula)


def test_formula_and_keywords_must_agree(panel):
    with pytest.raises(ms.MedsimError, match="treatment= names which"):
        ms.mediate("log_ci ~ dei | city + year", data=panel, mediator="agglom")
    with pytest.raises(ms.MedsimError, match="not among the formula's regressors"):
        ms.mediate("log_ci ~ dei | city + year", data=panel, treatment="x", mediator="agglom")
    with pytest.raises(ms.MedsimError, match="controls in the formula or as controls="):
        ms.mediate("log_ci ~ dei | city + year", data=panel, treatment="dei", mediator="agglom", controls="fdi")
    with pytest.raises(ms.MedsimError, match="time= .* required"):
        ms.mediate("log_ci ~ dei | city", data=panel, treatment="dei", mediator="agglom")


def test_one_fixed_effect_is_the_unit_and_0_is_none(panel):
    unit_only = ms.mediate("log_ci ~ dei | city", data=panel, treatment="dei", mediator="agglom", time="year")
    assert unit_only.to_dict()["model"]["fixed_effects"] == "unit"
    none = ms.mediate("log_ci ~ dei | 0", data=panel, treatment="dei", mediator="agglom", unit="city", time="year")
    assert none.to_dict()["model"]["fixed_effects"] == "none"


def test_the_iv_part_instruments_the_treatment(panel):
    fit = ms.mediate("log_ci ~ ln_gdp | city + year | dei ~ iv_post1984", data=panel, mediator="agglom")
    d = fit.to_dict()
    assert d["model"]["treatment"] == "dei"
    assert d["iv"]["instruments"] == ["iv_post1984"]
    same = ms.mediate(panel, outcome="log_ci", treatment="dei", mediator="agglom", controls="ln_gdp",
                      unit="city", time="year", instrument="iv_post1984")
    assert same.to_dict() == d
