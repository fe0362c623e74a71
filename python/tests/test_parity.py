"""The package and the CLI give the same summary, value for value (one
library underneath): summary.json equals fit.to_dict()."""

from __future__ import annotations

import json

import numpy as np
import pytest

import medsim as ms
from conftest import cli


def test_the_embedded_default_equals_medsim_run(tmp_path):
    out = tmp_path / "cli"
    cli("run", "-B", "2000", "-q", "--no-plots", "--out", str(out))
    want = json.loads((out / "summary.json").read_text())
    fit = ms.run({"resampling": {"replicates": 2000}})
    got = fit.to_dict()
    # The embedded default: five groups, their contrasts, a second
    # mediator set, BCa: every part of the summary is compared.
    assert want["groups"] and want["contrasts"] and want["mediator_models"]
    assert got == want


def test_a_csv_with_groups_equals_medsim_run(tmp_path, panel_csv, panel):
    out = tmp_path / "cli"
    cli(
        "run", "--data", str(panel_csv), "--controls", "ln_gdp,industry,fdi", "--group", "region",
        "--scheme", "bayes", "-B", "3000", "--seed", "5", "--ci", "percentile,bca,studentized",
        "-q", "--no-plots", "--out", str(out),
    )
    want = json.loads((out / "summary.json").read_text())
    fit = ms.mediate(
        panel, outcome="log_ci", treatment="dei", mediator="agglom",
        controls=["ln_gdp", "industry", "fdi"], unit="city", time="year", group="region",
        scheme="bayes", reps=3000, seed=5, ci=["percentile", "bca", "studentized"], name="panel",
    )
    got = fit.to_dict()
    assert got["data"]["source"] == "DataFrame"
    got["data"]["source"] = want["data"]["source"]
    assert got == want
    # The same numbers in the tables made from it.
    tidy = fit.tidy()
    assert tidy.loc["indirect", "Estimate"] == want["effects"]["indirect"]["estimate"]
    assert tidy.loc["indirect", "Boot. SE"] == want["effects"]["indirect"]["bootstrap"]["sd"]
    bca = [i for i in want["intervals"] if i["effect"] == "indirect" and i["method"] == "bca"][0]
    assert (tidy.loc["indirect", "2.5%"], tidy.loc["indirect", "97.5%"]) == (bca["lower"], bca["upper"])
    groups = fit.groups
    assert set(groups["group"]) == {"region=east", "region=central", "region=west"}
    contrasts = fit.contrasts
    assert len(contrasts) == len(want["contrasts"])
    assert np.isfinite(contrasts["boot_se"]).all()


def test_the_formula_form_is_the_keyword_form(panel):
    by_formula = ms.mediate(
        "log_ci ~ dei + ln_gdp + industry | city + year", data=panel, treatment="dei", mediator="agglom",
    )
    by_keywords = ms.mediate(
        panel, outcome="log_ci", treatment="dei", mediator="agglom", controls=["ln_gdp", "industry"],
        unit="city", time="year",
    )
    assert by_formula.to_dict() == by_keywords.to_dict()


def test_bootstrap_is_mediate_with_resampling_keywords(panel):
    base = ms.mediate(panel, outcome="log_ci", treatment="dei", mediator="agglom", unit="city", time="year")
    assert "resampling" not in base.to_dict()
    a = base.bootstrap(scheme="wild", reps=999, seed=3, ci="percentile", weights_type="webb")
    b = ms.mediate(panel, outcome="log_ci", treatment="dei", mediator="agglom", unit="city", time="year",
                   scheme="wild", reps=999, seed=3, ci="percentile", weights_type="webb")
    assert a.to_dict() == b.to_dict()
    assert a.to_dict()["resampling"]["weights"] == "webb"


def test_generate_is_the_cli_panel(panel):
    df = ms.generate()
    assert list(df.columns) == list(panel.columns)
    for name in df.columns:
        if df[name].dtype.kind in "fi":
            assert np.array_equal(df[name].to_numpy(float), panel[name].to_numpy(float)), name
        else:
            assert [str(v) for v in df[name]] == [str(v) for v in panel[name]], name


def test_replicates_are_the_draws_the_intervals_came_from(panel):
    fit = ms.mediate(panel, outcome="log_ci", treatment="dei", mediator="agglom", unit="city", time="year",
                     reps=500, seed=2, ci="percentile", keep_replicates=True)
    draws = fit.replicates()
    assert draws.shape == (500,)
    assert "indirect" in draws.dtype.names
    boot = fit.effects["indirect"]["bootstrap"]
    assert np.isclose(draws["indirect"].mean(), boot["mean"], rtol=0, atol=1e-15)
    assert np.isclose(draws["indirect"].std(ddof=1), boot["sd"], rtol=1e-12)


def test_a_config_file_equals_medsim_run_of_it(tmp_path, panel_csv):
    import shutil

    shutil.copy(panel_csv, tmp_path / "panel.csv")
    config = tmp_path / "study.toml"
    config.write_text(
        'name = "study"\n[data]\ncsv = "panel.csv"\n[model]\ncontrols = ["ln_gdp"]\ngroups = ["size"]\n'
        "also_mediators = []\n[resampling]\nscheme = \"poisson\"\nreplicates = 1500\nseed = 11\n"
    )
    out = tmp_path / "cli"
    # From another folder: the CSV is the config's folder's.
    cli("run", str(config), "-q", "--no-plots", "--out", str(out), cwd=tmp_path.parent)
    want = json.loads((out / "summary.json").read_text())
    got = ms.run(config).to_dict()
    assert got == want
    assert got["groups"] and got["resampling"]["scheme"] == "poisson"


def test_a_config_runs_on_a_data_frame_in_place_of_its_csv(tmp_path, panel):
    config = tmp_path / "study.toml"
    config.write_text('name = "s"\n[data]\ncsv = "elsewhere.csv"\n[model]\ncontrols = ["ln_gdp"]\n'
                      'groups = []\nalso_mediators = []\n[resampling]\nscheme = "none"\n')
    on_frame = ms.run(config, data=panel).to_dict()
    assert on_frame["data"]["source"] == "DataFrame"
    # The file has no [sensitivity]; mediate() has the embedded default's
    # omitted-variable bounds unless confounding=False.
    by_keywords = ms.mediate(panel, outcome="log_ci", treatment="dei", mediator="agglom", controls="ln_gdp",
                             unit="city", time="year", name="s", confounding=False).to_dict()
    assert on_frame == by_keywords


def test_a_moderated_model_equals_medsim_run(tmp_path, panel_csv, panel):
    # PROCESS model 58, centred, at mean -/+ 1 SD, with groups: the
    # moderation block and every conditional effect as the CLI gives them.
    out = tmp_path / "cli"
    cli(
        "run", "--data", str(panel_csv), "--controls", "ln_gdp,industry,fdi",
        "--moderator", "ln_pop_density", "--moderated", "a,b", "--center", "--at", "mean-sd",
        "--group", "region", "-B", "1000", "-q", "--no-plots", "--out", str(out),
    )
    want = json.loads((out / "summary.json").read_text())
    fit = ms.mediate(
        panel, outcome="log_ci", treatment="dei", mediator="agglom",
        controls=["ln_gdp", "industry", "fdi"], unit="city", time="year", group="region",
        moderator="ln_pop_density", moderated=["a", "b"], center=True, at="mean-sd",
        reps=1000, name="panel",
    )
    got = fit.to_dict()
    got["data"]["source"] = want["data"]["source"]
    assert want["moderation"]["process_model"] == 58
    assert "conditional_indirect:2" in want["effects"] and "indirect_difference" in want["effects"]
    assert got == want
    assert "indirect_difference" in fit.tidy().index


def test_the_interaction_model_equals_medsim_run(tmp_path, panel_csv, panel):
    # Two parallel mediators, each with its own X*M_j.
    out = tmp_path / "cli"
    cli(
        "run", "--data", str(panel_csv), "--mediator", "agglom_sec,agglom_ter",
        "--controls", "ln_gdp,industry,fdi", "--interaction", "--contrast", "0.5,1.5",
        "--group", "", "-B", "1000", "-q", "--no-plots", "--out", str(out),
    )
    want = json.loads((out / "summary.json").read_text())
    fit = ms.mediate(
        panel, outcome="log_ci", treatment="dei", mediator=["agglom_sec", "agglom_ter"],
        controls=["ln_gdp", "industry", "fdi"], unit="city", time="year",
        interaction=True, contrast=(0.5, 1.5), reps=1000, name="panel",
    )
    got = fit.to_dict()
    got["data"]["source"] = want["data"]["source"]
    assert want["interaction"]["x0"] == 0.5
    for key in ["natural_indirect", "natural_indirect:agglom_ter", "interaction:agglom_sec"]:
        assert key in want["effects"], key
    assert got == want


def test_the_serial_model_equals_medsim_run(tmp_path, panel_csv, panel):
    out = tmp_path / "cli"
    cli(
        "run", "--data", str(panel_csv), "--controls", "ln_gdp,industry,fdi",
        "--serial", "agglom_sec,agglom_ter", "--group", "", "-B", "1000", "-q", "--no-plots",
        "--out", str(out),
    )
    want = json.loads((out / "summary.json").read_text())
    fit = ms.mediate(
        panel, outcome="log_ci", treatment="dei", mediator=["agglom_sec", "agglom_ter"],
        controls=["ln_gdp", "industry", "fdi"], unit="city", time="year",
        serial=True, reps=1000, name="panel",
    )
    got = fit.to_dict()
    got["data"]["source"] = want["data"]["source"]
    assert want["serial"]["chain"] == ["agglom_sec", "agglom_ter"]
    assert "indirect:agglom_sec>agglom_ter" in want["effects"]
    assert got == want
    assert "d:agglom_sec:agglom_ter" in fit.tidy().index


def test_lags_and_leads_equal_medsim_run(tmp_path, panel_csv, panel):
    # The treatment lagged one period, a control two, the outcome led one.
    out = tmp_path / "cli"
    cli(
        "run", "--data", str(panel_csv), "--controls", "ln_gdp,industry,fdi",
        "--lag", "dei,ln_gdp:2", "--lead", "log_ci", "--group", "", "-B", "200", "-q",
        "--no-plots", "--out", str(out),
    )
    want = json.loads((out / "summary.json").read_text())
    fit = ms.mediate(
        panel, outcome="log_ci", treatment="dei", mediator="agglom",
        controls=["ln_gdp", "industry", "fdi"], unit="city", time="year",
        lag={"dei": 1, "ln_gdp": 2}, lead={"log_ci": 1}, reps=200, name="panel",
    )
    got = fit.to_dict()
    got["data"]["source"] = want["data"]["source"]
    # Three periods of each city are lost: two to the lag of two, one to the lead.
    assert want["data"]["dropped_missing"] > 0
    assert got == want
    with pytest.raises(ms.MedsimError, match="lag="):
        ms.mediate(panel, outcome="log_ci", treatment="dei", mediator="agglom",
                   unit="city", time="year", lag=["dei"])


def test_omitted_variable_bounds_equal_medsim_run(tmp_path, panel_csv, panel):
    # The bounds of a, b and c' with ln_gdp as the benchmark, twice and
    # three times as strong: the keywords give the CLI's block.
    out = tmp_path / "cli"
    cli(
        "run", "--data", str(panel_csv), "--controls", "ln_gdp,industry,fdi",
        "--benchmark", "ln_gdp", "--kd", "2,3", "--group", "", "--scheme", "none", "-q",
        "--no-plots", "--out", str(out),
    )
    want = json.loads((out / "summary.json").read_text())
    fit = ms.mediate(
        panel, outcome="log_ci", treatment="dei", mediator="agglom",
        controls=["ln_gdp", "industry", "fdi"], unit="city", time="year",
        benchmark="ln_gdp", kd=[2, 3], name="panel",
    )
    got = fit.to_dict()
    assert [p["path"] for p in got["confounding"]["paths"]] == ["a", "b", "c_prime"]
    assert [b["kd"] for b in got["confounding"]["paths"][0]["bounds"]] == [2.0, 3.0]
    assert got["confounding"] == want["confounding"]
    plain = ms.mediate(panel, outcome="log_ci", treatment="dei", mediator="agglom",
                       unit="city", time="year", confounding=False)
    assert "confounding" not in plain.to_dict()
    with pytest.raises(ms.MedsimError, match="benchmark="):
        ms.mediate(panel, outcome="log_ci", treatment="dei", mediator="agglom",
                   controls=["ln_gdp"], unit="city", time="year", benchmark="fdi")
    with pytest.raises(ms.MedsimError, match="two-stage least squares"):
        ms.mediate(panel, outcome="log_ci", treatment="dei", mediator="agglom",
                   unit="city", time="year", instrument="iv_post1984", benchmark=[])


def test_resampled_robustness_values_equal_medsim_run(tmp_path, panel_csv, panel):
    # rv_replicates=True is --rv-replicates: each path's RV resampled.
    out = tmp_path / "cli"
    cli(
        "run", "--data", str(panel_csv), "--controls", "ln_gdp", "--rv-replicates",
        "-B", "200", "--group", "", "-q", "--no-plots", "--backend", "cpu", "--out", str(out),
    )
    want = json.loads((out / "summary.json").read_text())
    fit = ms.mediate(
        panel, outcome="log_ci", treatment="dei", mediator="agglom", controls=["ln_gdp"],
        unit="city", time="year", rv_replicates=True, reps=200, backend="cpu", name="panel",
    )
    got = fit.to_dict()["confounding"]
    assert all(p["rv_bootstrap"]["sd"] > 0 and p["rv_intervals"] for p in got["paths"])
    assert got == want["confounding"]
    with pytest.raises(ms.MedsimError, match="rv_replicates="):
        ms.mediate(panel, outcome="log_ci", treatment="dei", mediator="agglom",
                   unit="city", time="year", confounding=False, rv_replicates=True)


def test_an_instrumented_mediator_equals_medsim_run(tmp_path, panel_csv, panel):
    # agglom instrumented by iv_agglom in the outcome equation: the keyword
    # and the formula give the CLI's summary, first stage and bounds of a
    # (b and c' are two-stage least squares and have none).
    out = tmp_path / "cli"
    cli(
        "run", "--data", str(panel_csv), "--controls", "ln_gdp,industry,fdi",
        "--mediator-instrument", "iv_agglom", "--group", "", "-B", "300", "-q",
        "--no-plots", "--out", str(out),
    )
    want = json.loads((out / "summary.json").read_text())
    fit = ms.mediate(
        panel, outcome="log_ci", treatment="dei", mediator="agglom",
        controls=["ln_gdp", "industry", "fdi"], unit="city", time="year",
        mediator_instrument="iv_agglom", reps=300, name="panel",
    )
    got = fit.to_dict()
    got["data"]["source"] = want["data"]["source"]
    assert got == want
    assert want["model"]["mediator_instruments"] == ["iv_agglom"]
    assert want["mediator_iv"]["agglom"]["first_stage_f"] > 10
    assert "iv" not in want
    assert [p["path"] for p in want["confounding"]["paths"]] == ["a"]
    by_formula = ms.mediate(
        "log_ci ~ dei + ln_gdp + industry + fdi | city + year | agglom ~ iv_agglom",
        data=panel, treatment="dei", mediator="agglom", reps=300, name="panel",
    ).to_dict()
    by_formula["data"]["source"] = want["data"]["source"]
    assert by_formula == want
    with pytest.raises(ms.MedsimError, match="mediator_instrument="):
        ms.mediate(panel, outcome="log_ci", treatment="dei", mediator=["agglom_sec", "agglom_ter"],
                   unit="city", time="year", mediator_instrument="iv_agglom")


def test_province_by_year_effects_equal_medsim_run(tmp_path, panel_csv, panel):
    # city + province^year: the formula and the keyword give the CLI's run.
    out = tmp_path / "cli"
    cli(
        "run", "--data", str(panel_csv), "--controls", "ln_gdp,industry,fdi",
        "--fixed-effects", "city+province^year", "--group", "", "-B", "300", "-q",
        "--no-plots", "--out", str(out),
    )
    want = json.loads((out / "summary.json").read_text())
    assert want["model"]["fixed_effects"] == "unit+province^time"
    by_formula = ms.mediate(
        "log_ci ~ dei + ln_gdp + industry + fdi | city + province^year", data=panel,
        treatment="dei", mediator="agglom", reps=300, name="panel",
    ).to_dict()
    by_keyword = ms.mediate(
        panel, outcome="log_ci", treatment="dei", mediator="agglom",
        controls=["ln_gdp", "industry", "fdi"], unit="city", time="year",
        fixed_effects="unit+province^time", reps=300, name="panel",
    ).to_dict()
    for got in (by_formula, by_keyword):
        got["data"]["source"] = want["data"]["source"]
        assert got == want
    with pytest.raises(ms.MedsimError, match="unit \\+ group\\^period"):
        ms.mediate("log_ci ~ dei | province^year + city", data=panel, treatment="dei",
                   mediator="agglom")


def test_a_categorical_moderator_equals_medsim_run(tmp_path, panel):
    # PROCESS model 59 by a three-level W (at="levels"): a3, a3_2, ... and
    # the effects at every level, as the CLI gives them.
    data = panel.copy()
    data["tier"] = (data["ln_pop_density"] > data["ln_pop_density"].median()).astype(int) + (
        data["fdi"] > data["fdi"].median()
    ).astype(int)
    path = tmp_path / "tiers.csv"
    data.to_csv(path, index=False)
    out = tmp_path / "cli"
    cli(
        "run", "--data", str(path), "--controls", "ln_gdp,industry",
        "--moderator", "tier", "--moderated", "a,b,direct", "--at", "levels",
        "--group", "", "-B", "500", "-q", "--no-plots", "--out", str(out),
    )
    want = json.loads((out / "summary.json").read_text())
    fit = ms.mediate(
        data, outcome="log_ci", treatment="dei", mediator="agglom",
        controls=["ln_gdp", "industry"], unit="city", time="year",
        moderator="tier", moderated=["a", "b", "direct"], at="levels", reps=500, name="tiers",
    )
    got = fit.to_dict()
    got["data"]["source"] = want["data"]["source"]
    assert want["moderation"]["categorical"] is True
    assert [v["value"] for v in want["moderation"]["values"]] == [0, 1, 2]
    for key in ["a3_2", "b3_2", "c3_prime_2", "indirect_difference_2", "conditional_indirect:2"]:
        assert key in want["effects"], key
    assert got == want
