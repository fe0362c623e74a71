//! Config files end to end: every shipped config runs with the README's
//! command and writes what the contract says; `medsim run` is
//! `configs/paper.toml`; flags override a file; a relative csv is the
//! config's folder's; sweep points equal single runs; and every kind of
//! malformed config is refused with its file, line and key, exit code 2
//! and nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `medsim ARGS` run in `cwd`.
fn medsim(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_medsim"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn summary(path: &Path) -> Value {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let strip = |v: &mut Value| {
        if let Some(r) = v.get_mut("resampling").and_then(Value::as_object_mut) {
            r.remove("seconds");
            r.remove("replicates_per_second");
        }
    };
    strip(&mut v);
    v
}

fn csv_rows(path: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect()
}

/// A run that finds the study's mechanism: a, b and the indirect effect
/// positive, its percentile interval above zero, masking part of a
/// negative direct effect.
fn assert_finds_the_mechanism(s: &Value, label: &str) {
    let estimate = |key: &str| s["effects"][key]["estimate"].as_f64().unwrap();
    assert!(
        estimate("a") > 0.0 && estimate("b") > 0.0 && estimate("c_prime") < 0.0,
        "{label}: {}",
        s["effects"]
    );
    let lower = s["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["effect"] == "indirect" && i["method"] == "percentile")
        .unwrap()["lower"]
        .as_f64()
        .unwrap();
    assert!(lower > 0.0, "{label}: the indirect effect's interval");
}

/// The shipped configs, run from a copy of the repository's configs/ with
/// the commands the README gives, write their contract's outputs.
#[test]
fn every_shipped_config_runs_and_writes_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    std::fs::create_dir(cwd.join("configs")).unwrap();
    for entry in std::fs::read_dir(repo().join("configs")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, cwd.join("configs").join(p.file_name().unwrap())).unwrap();
    }
    let names: Vec<String> = std::fs::read_dir(cwd.join("configs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for want in [
        "paper.toml",
        "heterogeneity.toml",
        "identification.toml",
        "moderation.toml",
        "robustness.toml",
        "sensitivity.toml",
        "sweep_effect_size.toml",
        "threshold.toml",
    ] {
        assert!(names.iter().any(|n| n == want), "configs/{want} is missing");
    }
    // paper: the embedded default.
    ok(&medsim(cwd, &["run", "configs/paper.toml", "-q"]));
    let paper = summary(&cwd.join("results/paper/summary.json"));
    assert_eq!(paper["resampling"]["replicates"], 10000);
    assert!(paper["groups"]["region=west"].is_object());
    assert!(paper["mediator_models"]["agglom_sec+agglom_ter"].is_object());
    // heterogeneity: groups, contrasts, parallel mediators, studentized.
    ok(&medsim(cwd, &["run", "configs/heterogeneity.toml", "-q"]));
    let h = summary(&cwd.join("results/heterogeneity/summary.json"));
    assert_eq!(h["groups"].as_object().unwrap().len(), 5);
    // Every effect, for 3 region pairs and 1 size pair.
    let n_effects = h["effects"].as_object().unwrap().len();
    assert_eq!(h["contrasts"].as_array().unwrap().len(), 4 * n_effects);
    assert!(
        h["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["method"] == "studentized")
    );
    // moderation: PROCESS model 58 by density, its conditional effects at
    // three percentiles with bootstrap intervals, the difference.
    ok(&medsim(cwd, &["run", "configs/moderation.toml", "-q"]));
    let md = summary(&cwd.join("results/moderation/summary.json"));
    assert_eq!(md["moderation"]["process_model"], 58);
    assert_eq!(md["moderation"]["values"].as_array().unwrap().len(), 3);
    let difference = &md["effects"]["indirect_difference"];
    assert!(difference["bootstrap"]["sd"].as_f64().unwrap() > 0.0);
    assert!(
        md["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["effect"] == "conditional_indirect:2" && i["method"] == "bca")
    );
    // sensitivity: the curve for the pooled model and each region.
    ok(&medsim(cwd, &["run", "configs/sensitivity.toml", "-q"]));
    let s = summary(&cwd.join("results/sensitivity/summary.json"));
    assert_eq!(s["sensitivity"]["curve"].as_array().unwrap().len(), 37);
    assert!(s["groups"]["region=east"]["sensitivity"].is_object());
    let rows = csv_rows(&cwd.join("results/sensitivity/sensitivity.csv"));
    // 4 models x 37 rho x 2 methods.
    assert_eq!(rows.len(), 4 * 37 * 2);
    // robustness: six zipped points.
    let printed = ok(&medsim(cwd, &["sweep", "configs/robustness.toml", "-q"]));
    assert!(printed.contains("6 points"), "{printed}");
    let rows = csv_rows(&cwd.join("results/robustness/sweep.csv"));
    let points: std::collections::BTreeSet<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(points.len(), 6);
    for k in 1..=6 {
        // Every check supports the finding, the lagged treatment's (2)
        // too: a, b and the indirect effect positive, its percentile
        // interval above zero, masking part of a negative direct effect.
        let s = summary(&cwd.join(format!("results/robustness/points/{k:03}/summary.json")));
        assert_finds_the_mechanism(&s, &format!("robustness point {k}"));
    }
    // identification: the file's model asks all four checks at once; its
    // sweep each alone beside the baseline, and every point finds the
    // mechanism.
    ok(&medsim(cwd, &["run", "configs/identification.toml", "-q"]));
    let id = summary(&cwd.join("results/identification/summary.json"));
    assert_eq!(id["model"]["fixed_effects"], "unit+province^time");
    assert_eq!(id["model"]["mediator_instruments"][0], "iv_agglom");
    assert!(
        id["mediator_iv"]["agglom"]["first_stage_f"]
            .as_f64()
            .unwrap()
            > 100.0
    );
    // The lag drops each city's first year.
    assert_eq!(id["data"]["dropped_missing"], 278);
    let paths = id["confounding"]["paths"].as_array().unwrap();
    assert_eq!(
        paths.len(),
        1,
        "b and c' are instrumented: only a has bounds"
    );
    assert!(paths[0]["rv"].as_f64().unwrap() > 0.1);
    assert_eq!(paths[0]["bounds"].as_array().unwrap().len(), 3);
    ok(&medsim(
        cwd,
        &["sweep", "configs/identification.toml", "-q"],
    ));
    for k in 1..=5 {
        let s = summary(&cwd.join(format!("results/identification/points/{k:03}/summary.json")));
        assert_finds_the_mechanism(&s, &format!("identification point {k}"));
    }
    // sweep_effect_size: 3 x 3; the indirect effect's interval narrows as
    // cities grow, and the estimate grows with b.
    ok(&medsim(
        cwd,
        &["sweep", "configs/sweep_effect_size.toml", "-q"],
    ));
    let rows = csv_rows(&cwd.join("results/sweep_effect_size/sweep.csv"));
    let indirect = |cities: &str, b: &str| -> (f64, f64) {
        let r = rows
            .iter()
            .find(|r| {
                &r[1] == cities
                    && &r[2] == b
                    && &r[3] == "pooled"
                    && &r[4] == "indirect"
                    && &r[9] == "percentile"
            })
            .unwrap();
        let est: f64 = r[5].parse().unwrap();
        let width = r[12].parse::<f64>().unwrap() - r[11].parse::<f64>().unwrap();
        (est, width)
    };
    for b in ["0.0145", "0.029", "0.058"] {
        let (w100, w278, w1000) = (
            indirect("100", b).1,
            indirect("278", b).1,
            indirect("1000", b).1,
        );
        assert!(w100 > w278 && w278 > w1000, "b {b}: {w100} {w278} {w1000}");
    }
    assert!(indirect("278", "0.0145").0 < indirect("278", "0.058").0);
    // threshold: the synthetic panel's documented threshold (dei's slope
    // steeper by -0.05 where agglom > 2.5) found, the single threshold
    // test rejecting and the double not; the LR plots written.
    let printed = ok(&medsim(cwd, &["threshold", "configs/threshold.toml", "-q"]));
    assert!(printed.contains("single"), "{printed}");
    let t = summary(&cwd.join("results/threshold/threshold.json"));
    let steps = t["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    let first = &steps[0]["thresholds"][0];
    let estimate = first["estimate"].as_f64().unwrap();
    assert!((estimate - 2.5).abs() < 0.05, "threshold {estimate}");
    assert!(first["lower"].as_f64().unwrap() > 2.4 && first["upper"].as_f64().unwrap() < 2.6);
    assert!(steps[0]["p_value"].as_f64().unwrap() < 0.01);
    assert!(steps[1]["p_value"].as_f64().unwrap() > 0.05);
    let slopes: Vec<f64> = (0..2)
        .map(|r| steps[0]["coefficients"][r]["estimate"].as_f64().unwrap())
        .collect();
    let (below, above) = (C_PRIME, C_PRIME - 0.05);
    assert!(
        (slopes[0] - below).abs() < 0.005 && (slopes[1] - above).abs() < 0.005,
        "{slopes:?}"
    );
    for k in 1..=3 {
        assert!(cwd.join(format!("results/threshold/lr_{k}.svg")).is_file());
    }
    for file in ["threshold.txt", "summary.md", "tables.tex"] {
        assert!(cwd.join("results/threshold").join(file).is_file(), "{file}");
    }
    let md = std::fs::read_to_string(cwd.join("results/threshold/summary.md")).unwrap();
    assert!(
        md.contains("| Single |") && md.contains("dei, regime 2"),
        "{md}"
    );
}

/// dei's direct effect in the synthetic panel.
const C_PRIME: f64 = medsim::internals::data::synthetic::C_PRIME;

/// `medsim threshold` refuses a config without its section, a threshold
/// variable that is the outcome, and regime-dependent mediation with two
/// mediators, by key, writing nothing.
#[test]
fn threshold_configs_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let paper = std::fs::read_to_string(repo().join("configs/paper.toml")).unwrap();
    std::fs::write(dir.path().join("plain.toml"), &paper).unwrap();
    let o = medsim(dir.path(), &["threshold", "plain.toml", "-q"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("[threshold]"), "{err}");
    let bad = paper.clone() + "\n[threshold]\nvariable = \"log_ci\"\n";
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let o = medsim(dir.path(), &["threshold", "bad.toml", "-q"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("threshold.variable") && err.contains("outcome"),
        "{err}"
    );
    // Regime-dependent mediation takes one mediator.
    let two = paper.replace(
        "mediators = [\"agglom\"]",
        "mediators = [\"agglom_sec\", \"agglom_ter\"]",
    ) + "\n[threshold]\nvariable = \"agglom\"\nmediation = true\n";
    assert!(
        two.contains("agglom_sec"),
        "configs/paper.toml names its mediators so"
    );
    std::fs::write(dir.path().join("two.toml"), two).unwrap();
    let o = medsim(dir.path(), &["threshold", "two.toml", "-q"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("model.mediators") && err.contains("one mediator"),
        "{err}"
    );
    // The mediation's regimes come from a model the sequence estimates,
    // and only with regime mediation.
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/threshold.toml"
    ))
    .unwrap();
    let regimes = |extra: &str| {
        shipped
            .replace("thresholds = 3", "thresholds = 2")
            .replace("level = 0.95", &format!("level = 0.95\n{extra}"))
    };
    for (extra, want) in [
        (
            "mediation = true\nmediation_thresholds = 3\n",
            "1 to threshold.thresholds = 2; got 3",
        ),
        ("mediation = true\nmediation_thresholds = 0\n", "got 0"),
        (
            "mediation_thresholds = 2\n",
            "applies only with regime-dependent mediation",
        ),
    ] {
        std::fs::write(dir.path().join("k.toml"), regimes(extra)).unwrap();
        let o = medsim(dir.path(), &["threshold", "k.toml", "-q"]);
        assert_eq!(o.status.code(), Some(2), "{extra}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("threshold.mediation_thresholds") && err.contains(want),
            "{extra}: {err}"
        );
    }
    assert!(!dir.path().join("results").exists());
}

/// `medsim run` is `medsim run configs/paper.toml`: the same summary.
#[test]
fn the_default_run_is_configs_paper() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let paper = repo().join("configs/paper.toml");
    let common = ["-B", "499", "-q", "--mc-draws", "2000", "--out"];
    ok(&medsim(
        dir.path(),
        &[&["run"], &common[..], &[a.to_str().unwrap()]].concat(),
    ));
    ok(&medsim(
        dir.path(),
        &[
            &["run", paper.to_str().unwrap()],
            &common[..],
            &[b.to_str().unwrap()],
        ]
        .concat(),
    ));
    assert_eq!(
        summary(&a.join("summary.json")),
        summary(&b.join("summary.json"))
    );
}

/// A config in another folder reads its csv relative to itself; flags
/// override its values (and the flag's own relative path is the working
/// directory's).
#[test]
fn relative_csv_paths_and_flag_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("study");
    std::fs::create_dir(&data).unwrap();
    ok(&medsim(
        &data,
        &[
            "generate",
            "--out",
            "panel.csv",
            "--cities",
            "40",
            "--years",
            "5",
        ],
    ));
    std::fs::write(
        data.join("small.toml"),
        "name = \"small\"\n[data]\ncsv = \"panel.csv\"\n[resampling]\nreplicates = 500\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    ok(&medsim(
        dir.path(),
        &[
            "run",
            "study/small.toml",
            "-q",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let s = summary(&out.join("summary.json"));
    assert_eq!(s["name"], "small");
    assert_eq!(s["resampling"]["replicates"], 500);
    assert_eq!(s["data"]["units"], 40);
    ok(&medsim(
        dir.path(),
        &[
            "run",
            "study/small.toml",
            "-q",
            "-B",
            "300",
            "--scheme",
            "bayes",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let s = summary(&out.join("summary.json"));
    assert_eq!(s["resampling"]["replicates"], 300);
    assert_eq!(s["resampling"]["scheme"], "bayes");
    // A flag's bad value names the flag, not the file.
    let o = medsim(dir.path(), &["run", "study/small.toml", "--scheme", "boot"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--scheme") && err.contains("'boot'"), "{err}");
}

/// A sweep point's summary is the single run of the config with the
/// point's values, bit for bit; flags may not set a swept key.
#[test]
fn sweep_points_are_single_runs() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name = \"pts\"\n[data]\nsynthetic = { cities = 60, years = 6 }\n\
                [resampling]\nreplicates = 400\n[inference]\nmc_draws = 2000\n";
    std::fs::write(
        dir.path().join("sweep.toml"),
        format!(
            "{base}[sweep]\n\"model.controls\" = [[\"ln_gdp\"], [\"ln_gdp\", \"fdi\"]]\n\"resampling.scheme\" = [\"pairs\", \"poisson\"]\n"
        ),
    )
    .unwrap();
    ok(&medsim(dir.path(), &["sweep", "sweep.toml", "-q"]));
    // Point 3 of the grid: controls [ln_gdp, fdi], pairs.
    std::fs::write(
        dir.path().join("single.toml"),
        base.replace(
            "[data]",
            "[model]\ncontrols = [\"ln_gdp\", \"fdi\"]\n[data]",
        )
        .replace("\"pts\"", "\"single\""),
    )
    .unwrap();
    ok(&medsim(dir.path(), &["run", "single.toml", "-q"]));
    assert_eq!(
        summary(&dir.path().join("results/pts/points/003/summary.json")),
        {
            let mut s = summary(&dir.path().join("results/single/summary.json"));
            s["name"] = "pts".into();
            s
        }
    );
    let rows = csv_rows(&dir.path().join("results/pts/sweep.csv"));
    assert!(
        rows.iter()
            .any(|r| &r[0] == "3" && &r[1] == "ln_gdp+fdi" && &r[2] == "pairs")
    );
    let o = medsim(dir.path(), &["sweep", "sweep.toml", "--scheme", "bayes"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("the sweep varies"));
}

/// A sweep over a moderated model's keys (which paths are moderated,
/// centring) and over serial mediation: each point's summary is the single
/// run of the config with the point's values, and sweep.csv holds each
/// point's own effects (the index where one path is moderated, the
/// difference where both are, a chain's paths).
#[test]
fn sweeps_over_moderation_and_serial_keys_are_single_runs() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name = \"mod\"\n[data]\nsynthetic = { cities = 60, years = 6 }\n\
                [model]\ncontrols = [\"ln_gdp\", \"fdi\"]\ngroups = []\nalso_mediators = []\n\
                moderator = \"ln_pop_density\"\n\
                [resampling]\nreplicates = 300\n[inference]\nmc_draws = 2000\n";
    std::fs::write(
        dir.path().join("sweep.toml"),
        format!(
            "{base}[sweep]\n\"model.moderated\" = [[\"a\"], [\"a\", \"b\"]]\n\"model.center\" = [false, true]\n"
        ),
    )
    .unwrap();
    ok(&medsim(dir.path(), &["sweep", "sweep.toml", "-q"]));
    // Point 4 of the grid (points count from 1): a and b moderated, centred.
    std::fs::write(
        dir.path().join("single.toml"),
        base.replace(
            "moderator = ",
            "moderated = [\"a\", \"b\"]\ncenter = true\nmoderator = ",
        )
        .replace("\"mod\"", "\"single\""),
    )
    .unwrap();
    ok(&medsim(dir.path(), &["run", "single.toml", "-q"]));
    assert_eq!(
        summary(&dir.path().join("results/mod/points/004/summary.json")),
        {
            let mut s = summary(&dir.path().join("results/single/summary.json"));
            s["name"] = "mod".into();
            s
        }
    );
    let rows = csv_rows(&dir.path().join("results/mod/sweep.csv"));
    let has = |point: &str, effect: &str| {
        rows.iter()
            .any(|r| &r[0] == point && r.iter().any(|c| c == effect))
    };
    for point in ["1", "2"] {
        assert!(has(point, "index_moderated_mediation"), "{point}");
        assert!(!has(point, "indirect_difference"), "{point}");
    }
    for point in ["3", "4"] {
        assert!(has(point, "indirect_difference"), "{point}");
        assert!(!has(point, "index_moderated_mediation"), "{point}");
    }
    // Serial mediation swept on and off.
    let serial = "name = \"ser\"\n[data]\nsynthetic = { cities = 60, years = 6 }\n\
                  [model]\nmediators = [\"agglom_sec\", \"agglom_ter\"]\ngroups = []\n\
                  also_mediators = []\n[resampling]\nreplicates = 300\n\
                  [inference]\nmc_draws = 2000\n[sweep]\n\"model.serial\" = [false, true]\n";
    std::fs::write(dir.path().join("serial.toml"), serial).unwrap();
    ok(&medsim(dir.path(), &["sweep", "serial.toml", "-q"]));
    let rows = csv_rows(&dir.path().join("results/ser/sweep.csv"));
    let chain = |point: &str| {
        rows.iter()
            .any(|r| &r[0] == point && r.iter().any(|c| c == "indirect:agglom_sec>agglom_ter"))
    };
    assert!(!chain("1") && chain("2"));
}

/// Each malformed config: exit code 2, an error naming the file, line and
/// key (and what was expected), and no results folder.
#[test]
fn malformed_configs_are_refused_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "unknown key",
            "name = \"x\"\n[model]\ncontrosl = [\"gdp\"]\n",
            &["bad.toml:3:", "model.controsl", "did you mean 'controls'"],
        ),
        (
            "unknown section",
            "name = \"x\"\n[resampeling]\nreplicates = 10\n",
            &["bad.toml:2:", "did you mean 'resampling'"],
        ),
        (
            "unknown key in an inline table",
            "[data]\nsynthetic = { citys = 10 }\n",
            &["bad.toml:2:", "did you mean 'cities'"],
        ),
        (
            "wrong type",
            "[resampling]\nreplicates = \"many\"\n",
            &["bad.toml:2:", "resampling.replicates", "invalid type"],
        ),
        (
            "zero replicates",
            "[resampling]\n\nreplicates = 0\n",
            &["bad.toml:3:", "resampling.replicates", "at least 1"],
        ),
        (
            "level outside (0, 1)",
            "[inference]\nlevels = [0.95, 1.5]\n",
            &["bad.toml:2:", "inference.levels", "1.5"],
        ),
        (
            "unknown scheme",
            "[resampling]\nscheme = \"boot\"\n",
            &["bad.toml:2:", "resampling.scheme", "'boot'"],
        ),
        (
            "unknown wild weights, even with pairs",
            "[resampling]\nscheme = \"pairs\"\nweights = \"gauss\"\n",
            &["bad.toml:3:", "resampling.weights", "'gauss'"],
        ),
        (
            "rho of 1",
            "[sensitivity]\nrho = { from = -0.5, to = 1.0, step = 0.1 }\n",
            &["bad.toml:2:", "sensitivity.rho.to", "between -1 and 1"],
        ),
        (
            "too few cities",
            "[data]\nsynthetic = { cities = 1 }\n",
            &["bad.toml:2:", "data.synthetic.cities", "at least 2"],
        ),
        (
            "winsorising backwards",
            "[data]\nwinsorize = [99, 1]\n",
            &["bad.toml:2:", "data.winsorize", "low < high"],
        ),
        (
            "a lag of zero",
            "[data]\nlag = { dei = 0 }\n",
            &["bad.toml:2:", "data.lag", "'dei' = 0 shifts nothing"],
        ),
        (
            "a lead of the time column",
            "[data]\nlead = { year = 1 }\n",
            &["bad.toml:2:", "data.lead", "unit or time column"],
        ),
        (
            "a column lagged and led",
            "[data]\nlag = { ln_gdp = 1 }\nlead = { ln_gdp = 1 }\n",
            &["data.lead", "also in data.lag"],
        ),
        (
            "the treatment lagged twice",
            "[data]\nlag_treatment = true\nlag = { dei = 2 }\n",
            &["data.lag_treatment", "give its lag there only"],
        ),
        (
            "a lag of no column",
            "[data]\nlag = { nope = 1 }\n",
            &["nope", "data.lag"],
        ),
        (
            "csv and synthetic",
            "[data]\ncsv = \"p.csv\"\nsynthetic = {}\n",
            &["bad.toml:2:", "data.csv", "not both"],
        ),
        (
            "missing csv",
            "[data]\ncsv = \"nowhere.csv\"\n",
            &["nowhere.csv", "cannot open"],
        ),
        (
            "bad name",
            "name = \"a/b\"\n",
            &["bad.toml:1:", "name", "results folder"],
        ),
        ("not TOML", "name = \"x\n", &["bad.toml:1:"]),
        (
            "sweep key that does not exist",
            "[sweep]\n\"model.controsl\" = [[\"gdp\"]]\n",
            &[
                "bad.toml:2:",
                "sweep.\"model.controsl\"",
                "did you mean 'controls'",
            ],
        ),
        (
            "sweep value of the wrong type",
            "[sweep]\n\"resampling.replicates\" = [100, \"x\"]\n",
            &["bad.toml:2:", "invalid type"],
        ),
        (
            "swept value out of range",
            "[sweep]\n\"resampling.replicates\" = [100, 0]\n",
            &[
                "bad.toml:2:",
                "sweep.\"resampling.replicates\"",
                "at least 1",
            ],
        ),
        (
            "zipped lists of different lengths",
            "[sweep]\ncombine = \"zip\"\n\"resampling.replicates\" = [100, 200, 300]\n\"resampling.seed\" = [1, 2]\n",
            &["bad.toml:4:", "one value or 3; this has 2"],
        ),
        (
            "sweep without lists",
            "[sweep]\n\"resampling.seed\" = 3\n",
            &["bad.toml:2:", "list of values"],
        ),
    ];
    for (what, text, needles) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let command = if text.contains("[sweep]") {
            "sweep"
        } else {
            "run"
        };
        let o = medsim(dir.path(), &[command, "bad.toml", "-q"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        for n in *needles {
            assert!(err.contains(n), "{what}: '{n}' not in: {err}");
        }
        assert!(
            !dir.path().join("results").exists(),
            "{what}: wrote results"
        );
    }
    // A config file that does not exist.
    let o = medsim(dir.path(), &["run", "absent.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("absent.toml"));
    // sweep without a [sweep] table.
    std::fs::write(dir.path().join("plain.toml"), "name = \"p\"\n").unwrap();
    let o = medsim(dir.path(), &["sweep", "plain.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("[sweep] table"));
}

/// The robustness options act on the table the model sees: a period range,
/// the lagged treatment and dropped rows give the summary of the same
/// model on a CSV edited by hand that way (bit for bit but the source
/// name), and winsorising at [0, 100] changes nothing.
#[test]
fn robustness_options_equal_hand_edited_data() {
    use medsim::internals::data::synthetic::{SyntheticParams, generate};
    use medsim::internals::data::table::{Table, write_csv};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let table = generate(SyntheticParams {
        cities: 50,
        years: 6,
        ..SyntheticParams::default()
    });
    write_csv(&table, &d.join("panel.csv")).unwrap();
    let col = |name: &str| table.column(name).unwrap();
    let (city, year, dei, size) = (col("city"), col("year"), col("dei"), col("size"));
    let edited = |name: &str, f: &dyn Fn(&Table) -> Table| {
        write_csv(&f(&table), &d.join(name)).unwrap();
    };
    edited("periods.csv", &|t| t.filter_rows(|r| r[year] != "2016"));
    edited("dropped.csv", &|t| {
        t.filter_rows(|r| r[size] != "large" && r[city] != "C003")
    });
    edited("lagged.csv", &|t| {
        let mut t = t.clone();
        let previous: std::collections::HashMap<(String, String), String> = t
            .rows
            .iter()
            .map(|r| {
                let next = (r[year].parse::<i32>().unwrap() + 1).to_string();
                ((r[city].clone(), next), r[dei].clone())
            })
            .collect();
        for r in &mut t.rows {
            r[dei] = previous
                .get(&(r[city].clone(), r[year].clone()))
                .cloned()
                .unwrap_or_default();
        }
        t
    });
    let run = |name: &str, csv: &str, data: &str| -> Value {
        let cfg = format!(
            "name = \"{name}\"\n[data]\ncsv = \"{csv}\"\n{data}\n[resampling]\nreplicates = 300\n[inference]\nmc_draws = 2000\n"
        );
        std::fs::write(d.join(format!("{name}.toml")), cfg).unwrap();
        ok(&medsim(d, &["run", &format!("{name}.toml"), "-q"]));
        let mut s = summary(&d.join(format!("results/{name}/summary.json")));
        s["name"] = "".into();
        s["data"]["source"] = "".into();
        s
    };
    assert_eq!(
        run("a", "panel.csv", "periods = { to = 2015 }"),
        run("b", "periods.csv", "")
    );
    assert_eq!(
        run(
            "c",
            "panel.csv",
            "drop_units = [\"C003\"]\ndrop = { size = [\"large\"] }"
        ),
        run("d", "dropped.csv", "")
    );
    assert_eq!(
        run("e", "panel.csv", "lag_treatment = true"),
        run("f", "lagged.csv", "")
    );
    assert_eq!(
        run("g", "panel.csv", "winsorize = [0, 100]"),
        run("h", "panel.csv", "")
    );
    // Lags and leads of any column, K periods within the city, across a
    // city's missing year (C001 has no 2013: its 2015 lag of two is
    // missing, and its 2012 lead of one).
    let gappy = table.filter_rows(|r| !(r[city] == "C001" && r[year] == "2013"));
    write_csv(&gappy, &d.join("gappy.csv")).unwrap();
    let shifted = |t: &Table, column: &str, by: i32| -> Table {
        let c = t.column(column).unwrap();
        let mut t = t.clone();
        let value: std::collections::HashMap<(String, i32), String> = t
            .rows
            .iter()
            .map(|r| ((r[city].clone(), r[year].parse().unwrap()), r[c].clone()))
            .collect();
        for r in &mut t.rows {
            let source = r[year].parse::<i32>().unwrap() - by;
            r[c] = value
                .get(&(r[city].clone(), source))
                .cloned()
                .unwrap_or_default();
        }
        t
    };
    edited("shifted.csv", &|_| {
        let t = shifted(&gappy, "ln_gdp", 2);
        let t = shifted(&t, "dei", 1);
        shifted(&t, "log_ci", -1)
    });
    let by_config = run(
        "k",
        "gappy.csv",
        "lag = { ln_gdp = 2, dei = 1 }\nlead = { log_ci = 1 }",
    );
    assert!(by_config["data"]["dropped_missing"].as_u64().unwrap() > 3 * 50);
    assert_eq!(by_config, run("l", "shifted.csv", ""));
    // The flags set the same keys.
    let cfg = "name = \"m\"\n[data]\ncsv = \"gappy.csv\"\n[resampling]\nreplicates = 300\n[inference]\nmc_draws = 2000\n";
    std::fs::write(d.join("m.toml"), cfg).unwrap();
    ok(&medsim(
        d,
        &[
            "run",
            "m.toml",
            "-q",
            "--lag",
            "ln_gdp:2,dei",
            "--lead",
            "log_ci",
        ],
    ));
    let mut flags = summary(&d.join("results/m/summary.json"));
    flags["name"] = "".into();
    flags["data"]["source"] = "".into();
    assert_eq!(flags, by_config);
    // lag_treatment is the treatment's lag of one.
    assert_eq!(
        run("n", "panel.csv", "lag_treatment = true"),
        run("o", "panel.csv", "lag = { dei = 1 }")
    );
    // Winsorising does change a run.
    assert_ne!(
        run("i", "panel.csv", "winsorize = [5, 95]"),
        run("j", "panel.csv", "")
    );
}
