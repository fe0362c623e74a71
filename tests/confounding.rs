//! The omitted-variable bounds of each path (Cinelli and Hazlett 2020)
//! against PySensemakr (tests/fixtures/make_confounding_fixtures.py) on a
//! cross-sectional model and an unbalanced panel with unit and period
//! effects (sensemakr fits them as dummies), the cluster-robust intervals'
//! own identities, the config, flags and report, and the refusals.

use medsim::internals::math::stats::t_quantile;
use medsim::internals::model::confounding::{Coefficient, ConfoundingSpec, ConfoundingSummary};
use medsim::internals::model::spec::{FixedEffects, ModelSpec};
use medsim::internals::study::run::{DataSource, RunPlan, execute};
use medsim::internals::study::summary::Summary;
use serde_json::Value;

mod common;

fn expected() -> Value {
    let path = common::fixture("confounding_expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture case's model, with both controls as benchmarks.
fn run_case(case: &Value) -> Summary {
    let fe = match case["fixed_effects"].as_str().unwrap() {
        "none" => FixedEffects::None,
        "unit" => FixedEffects::Unit,
        _ => FixedEffects::UnitTime,
    };
    let plan = RunPlan {
        confounding: Some(ConfoundingSpec {
            benchmarks: vec!["c1".into(), "c2".into()],
            kd: vec![1.0, 2.0, 3.0],
            replicates: false,
        }),
        ..RunPlan::new(
            "confounding",
            DataSource::file(common::fixture(case["csv"].as_str().unwrap())),
            ModelSpec::xmy("id", "period", &["c1", "c2"], fe),
        )
    };
    execute(&plan, &|_, _| Ok(())).unwrap()
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * want.abs().max(1.0),
        "{what}: {got:.15e} vs {want:.15e}"
    );
}

/// Every path's estimate, classical SE, degrees of freedom, partial
/// R-squared, robustness values, and each benchmark's bounds, adjusted
/// estimate, SE, t and interval are sensemakr's (the interval measures
/// taken with the classical SE and t on dof - 1, as sensemakr does).
#[test]
fn every_path_matches_sensemakr() {
    let want = expected();
    let mut compared = 0;
    for case in want["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let s = run_case(case);
        assert_eq!(
            s.data.observations as u64,
            case["observations"].as_u64().unwrap()
        );
        let bounds: &ConfoundingSummary = s.confounding.as_ref().unwrap();
        assert_eq!(bounds.paths.len(), 3, "{name}: a, b and c'");
        for w in case["paths"].as_array().unwrap() {
            let key = w["path"].as_str().unwrap();
            let what = |field: &str| format!("{name} {key} {field}");
            let p = bounds.path(key).unwrap();
            assert_eq!(p.regressor, w["regressor"].as_str().unwrap());
            assert_eq!(p.dependent, w["dependent"].as_str().unwrap());
            assert_eq!(p.dof, w["dof"].as_f64().unwrap(), "{}", what("dof"));
            let f = |field: &str| w[field].as_f64().unwrap();
            close(p.estimate, f("estimate"), 1e-10, &what("estimate"));
            close(p.se_classical, f("se_classical"), 1e-9, &what("se"));
            close(p.partial_r2, f("partial_r2"), 1e-10, &what("partial R2"));
            close(p.rv, f("rv"), 1e-10, &what("RV"));
            let c = Coefficient {
                estimate: p.estimate,
                se_classical: p.se_classical,
                dof: p.dof,
            };
            let t_ols = t_quantile(0.975, p.dof - 1.0);
            let rv_alpha = c.rv_interval(1.0, p.se_classical, t_ols);
            close(rv_alpha, f("rv_alpha_005"), 1e-9, &what("RV alpha"));
            compared += 6;
            let wb = w["bounds"].as_array().unwrap();
            assert_eq!(p.bounds.len(), wb.len());
            for (b, wb) in p.bounds.iter().zip(wb) {
                let what =
                    |field: &str| format!("{name} {key} {} kd={} {field}", b.benchmark, b.kd);
                assert_eq!(b.benchmark, wb["benchmark"].as_str().unwrap());
                assert_eq!(b.kd, wb["kd"].as_f64().unwrap());
                if wb["impossible"].as_bool().unwrap() {
                    assert!(b.r2dz_x.is_none() && b.adjusted_estimate.is_none());
                    assert!(b.intervals.is_empty(), "{}", what("interval"));
                    compared += 1;
                    continue;
                }
                let g = |field: &str| wb[field].as_f64().unwrap();
                let (r2d, r2y) = (b.r2dz_x.unwrap(), b.r2yz_dx.unwrap());
                close(r2d, g("r2dz_x"), 1e-10, &what("r2dz_x"));
                close(r2y, g("r2yz_dx"), 1e-10, &what("r2yz_dx"));
                let adjusted = b.adjusted_estimate.unwrap();
                close(adjusted, g("adjusted_estimate"), 1e-10, &what("estimate"));
                let se = c.adjusted_se(p.se_classical, r2d, r2y);
                close(se, g("adjusted_se"), 1e-9, &what("SE"));
                match wb["adjusted_t"].as_f64() {
                    Some(t) => close(adjusted / se, t, 1e-9, &what("t")),
                    None => assert_eq!(se, 0.0, "{}", what("SE")),
                }
                close(adjusted - t_ols * se, g("lower"), 1e-9, &what("lower"));
                close(adjusted + t_ols * se, g("upper"), 1e-9, &what("upper"));
                compared += 7;
            }
        }
    }
    assert!(compared > 150, "{compared} values compared");
}

/// The run's own intervals take the cluster-robust SE of `effects`, scaled
/// as sensemakr scales the classical one, with t on clusters - 1; the
/// interval's robustness value is where that interval reaches zero.
#[test]
fn cluster_robust_intervals_are_consistent() {
    let want = expected();
    let case = &want["cases"][1];
    let s = run_case(case);
    let t_cr = t_quantile(0.975, s.data.clusters as f64 - 1.0);
    for p in &s.confounding.as_ref().unwrap().paths {
        let effect = s.effect(&p.path).unwrap();
        assert_eq!(
            p.se,
            effect.se.unwrap(),
            "{}: the CR1 SE of effects",
            p.path
        );
        assert_eq!(p.estimate, effect.estimate);
        let c = Coefficient {
            estimate: p.estimate,
            se_classical: p.se_classical,
            dof: p.dof,
        };
        let rv = p.rv_interval[0];
        assert_eq!(rv.level, 0.95);
        assert_eq!(rv.value, c.rv_interval(1.0, p.se, t_cr));
        if rv.value > 0.0 {
            // Not the extreme scenario's bound: equal strengths reach zero.
            let reach = c.adjusted_estimate(rv.value, rv.value).abs()
                - t_cr * c.adjusted_se(p.se, rv.value, rv.value);
            assert!(reach.abs() < 1e-12, "{}: {reach}", p.path);
        } else {
            // The CR1 interval already includes zero.
            assert!(p.estimate.abs() < t_cr * p.se * (p.dof / (p.dof - 1.0)).sqrt());
        }
        for b in p.bounds.iter().filter(|b| b.adjusted_estimate.is_some()) {
            let (r2d, r2y) = (b.r2dz_x.unwrap(), b.r2yz_dx.unwrap());
            let se = c.adjusted_se(p.se, r2d, r2y);
            assert_eq!(b.adjusted_se, Some(se));
            let i = b.intervals[0];
            let est = b.adjusted_estimate.unwrap();
            assert_eq!((i.lower, i.upper), (est - t_cr * se, est + t_cr * se));
        }
    }
}

/// A config's `[sensitivity] confounding = true` and the flags give the same
/// block; the report prints it; confounding alone adds no rho curve.
#[test]
fn config_flags_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let csv = common::fixture("confounding_panel.csv");
    std::fs::write(
        dir.path().join("c.toml"),
        format!(
            "name = \"c\"\n[data]\ncsv = {:?}\nunit = \"id\"\ntime = \"period\"\n\
             [model]\noutcome = \"y\"\ntreatment = \"x\"\nmediators = [\"m\"]\n\
             controls = [\"c1\", \"c2\"]\ngroups = []\nalso_mediators = []\n\
             [resampling]\nscheme = \"none\"\n\
             [sensitivity]\nconfounding = true\nbenchmark = [\"c1\"]\nkd = [1, 2]\n",
            csv.to_str().unwrap()
        ),
    )
    .unwrap();
    let by_config = common::medsim(
        dir.path(),
        &["run", "c.toml", "-q", "--no-plots", "--out", "a"],
    );
    assert!(
        by_config.status.success(),
        "{}",
        String::from_utf8_lossy(&by_config.stderr)
    );
    let printed = String::from_utf8_lossy(&by_config.stdout);
    assert!(
        printed.contains("omitted-variable bounds (Cinelli-Hazlett 2020)"),
        "{printed}"
    );
    assert!(printed.contains("c1"), "{printed}");
    let by_flags = common::medsim(
        dir.path(),
        &[
            "run",
            "--data",
            csv.to_str().unwrap(),
            "--unit",
            "id",
            "--time",
            "period",
            "--outcome",
            "y",
            "--treatment",
            "x",
            "--mediator",
            "m",
            "--controls",
            "c1,c2",
            "--scheme",
            "none",
            "--confounding",
            "--benchmark",
            "c1",
            "--kd",
            "1,2",
            "-q",
            "--no-plots",
            "--out",
            "b",
            "--name",
            "c",
        ],
    );
    assert!(
        by_flags.status.success(),
        "{}",
        String::from_utf8_lossy(&by_flags.stderr)
    );
    let read = |d: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(d).join("summary.json")).unwrap(),
        )
        .unwrap()
    };
    let (a, b) = (read("a"), read("b"));
    assert_eq!(a["confounding"], b["confounding"]);
    assert!(
        a.get("sensitivity").is_none(),
        "confounding alone draws no rho curve"
    );
    let kd: Vec<f64> = a["confounding"]["paths"][0]["bounds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["kd"].as_f64().unwrap())
        .collect();
    assert_eq!(kd, [1.0, 2.0]);
    // A file's benchmarks without confounding = true are refused by key,
    // and nothing is written.
    let text = std::fs::read_to_string(dir.path().join("c.toml")).unwrap();
    std::fs::write(
        dir.path().join("d.toml"),
        text.replace("confounding = true\n", ""),
    )
    .unwrap();
    let refused = common::medsim(dir.path(), &["run", "d.toml", "-q", "--out", "d"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("d.toml:") && stderr.contains("sensitivity.benchmark"),
        "{stderr}"
    );
    assert!(
        stderr.contains("which sensitivity.confounding = true asks for"),
        "{stderr}"
    );
    assert!(!dir.path().join("d").exists());
}

/// Settings the bounds do not cover are refused by key, before any output.
#[test]
fn refusals_name_the_key() {
    common::assert_refused(
        &common::fixture("instrumented.csv"),
        &[
            (
                &["--confounding", "--instrument", "z1"],
                "sensitivity.confounding",
            ),
            (
                &["--confounding", "--moderator", "z1"],
                "sensitivity.confounding",
            ),
            (
                &["--confounding", "--benchmark", "c3"],
                "'c3' is not one of model.controls",
            ),
            (
                &["--confounding", "--kd", "0"],
                "0 is not a positive multiple",
            ),
        ],
    );
}

/// The embedded default asks for the bounds of whatever model the flags
/// make: an instrumented one goes without them, with a note; the bounds of
/// the default model are in its summary.
#[test]
fn the_embedded_default_leaves_them_out_where_undefined() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str], out: &str| {
        let mut args = vec!["run", "--scheme", "none", "-q", "--no-plots", "--out", out];
        args.extend(extra);
        let done = common::medsim(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&done.stderr).into_owned();
        assert!(done.status.success(), "{stderr}");
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(out).join("summary.json")).unwrap(),
        )
        .unwrap();
        let printed = String::from_utf8_lossy(&done.stdout).into_owned();
        (summary, stderr, printed)
    };
    let (plain, _, printed) = run(&[], "plain");
    let paths: Vec<&str> = plain["confounding"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["a", "b", "c_prime"]);
    // The report's identification section: no instrument, the bounds.
    let section = printed.split("\nidentification\n").nth(1).expect(&printed);
    assert!(section.starts_with("  instrumented   none: every path by least squares"));
    assert!(section.contains("omitted-variable bounds (Cinelli-Hazlett 2020)"));
    let (iv, stderr, printed) = run(&["--instrument", "iv_post1984"], "iv");
    assert!(iv.get("confounding").is_none());
    assert!(
        stderr.contains("omitted-variable bounds are left out"),
        "{stderr}"
    );
    // The section names the instrument and its first-stage F.
    let f = iv["iv"]["first_stage_f"].as_f64().unwrap();
    let line =
        format!("  instrumented   dei by iv_post1984 in every equation: first-stage F = {f:.1}\n");
    assert!(
        printed.contains(&format!("\nidentification\n{line}")),
        "{printed}"
    );
}

/// A serial chain's links are paths too: each `d:FROM:TO` is bounded with
/// its equation's coefficient and CR1 SE.
#[test]
fn a_chains_links_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::fixture("serial.csv");
    let mut args = common::fixture_run(data.to_str().unwrap());
    args.extend([
        "--serial",
        "m1,m2",
        "--controls",
        "c1",
        "--scheme",
        "none",
        "--benchmark",
        "c1",
        "-q",
        "--no-plots",
        "--out",
        "o",
    ]);
    let done = common::medsim(dir.path(), &args);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("o/summary.json")).unwrap())
            .unwrap();
    let paths = s["confounding"]["paths"].as_array().unwrap();
    let keys: Vec<&str> = paths.iter().map(|p| p["path"].as_str().unwrap()).collect();
    assert_eq!(keys, ["a:m1", "b:m1", "a:m2", "b:m2", "d:m1:m2", "c_prime"]);
    for p in paths {
        let key = p["path"].as_str().unwrap();
        let effect = &s["effects"][key];
        assert_eq!(p["estimate"], effect["estimate"], "{key}");
        assert_eq!(p["se"], effect["se"], "{key}");
        let c = Coefficient {
            estimate: p["estimate"].as_f64().unwrap(),
            se_classical: p["se_classical"].as_f64().unwrap(),
            dof: p["dof"].as_f64().unwrap(),
        };
        assert_eq!(p["partial_r2"].as_f64().unwrap(), c.partial_r2(), "{key}");
        assert_eq!(p["bounds"].as_array().unwrap().len(), 3, "{key}");
    }
    // The link's equation: m2 on x, m1 and c1.
    let d = &paths[4];
    assert_eq!(
        (d["regressor"].as_str(), d["dependent"].as_str()),
        (Some("m1"), Some("m2"))
    );
}

/// Each replicate's robustness values are those of its resampled sample:
/// every jackknife replicate's equal the bounds of the panel without that
/// city, analysed from scratch (RV depends on the sample's Gram alone, so
/// a reweighting scheme's replicate is a sample like any other); with two
/// serial mediators, so a chain's link has one too. And a run gives each
/// path's replicate moments and intervals, the report its first interval.
#[test]
fn replicate_robustness_values_are_the_resampled_samples_own() {
    use medsim::internals::data::synthetic::{SyntheticParams, generate};
    use medsim::internals::model::confounding::replicate_orders;
    use medsim::internals::model::design::Design;
    use medsim::internals::model::mediation::analyse;
    use medsim::internals::model::panel::Panel;
    use medsim::internals::model::spec::{InferenceSpec, default_spec};
    use medsim::internals::resample::engine::{CpuEngine, Engine};
    use medsim::internals::resample::scheme::{Scheme, WeightPlan};

    let table = generate(SyntheticParams {
        cities: 24,
        years: 6,
        seed: 11,
        ..SyntheticParams::default()
    });
    let spec = ModelSpec {
        mediators: vec!["agglom_sec".into(), "agglom_ter".into()],
        serial: true,
        ..default_spec()
    };
    let bounds = |t: &medsim::internals::data::table::Table| -> Vec<f64> {
        let panel = Panel::from_table(t, &spec).unwrap();
        let design = Design::build(&panel, spec.fixed_effects).unwrap();
        let analysis = analyse(&design, &InferenceSpec::default()).unwrap();
        let s = medsim::internals::model::confounding::analyse(
            &design,
            &analysis,
            &ConfoundingSpec::default(),
            &[0.95],
        )
        .unwrap();
        s.paths.iter().map(|p| p.rv).collect()
    };
    let panel = Panel::from_table(&table, &spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    let analysis = analyse(&design, &InferenceSpec::default()).unwrap();
    let g = design.n_clusters;
    let plan = WeightPlan::new(Scheme::Jackknife, 1, g, None);
    let engine = CpuEngine::new(&design, &analysis.fit, plan, 7, 2, false)
        .unwrap()
        .with_robustness(replicate_orders(&design, &analysis.fit))
        .unwrap();
    let layout = engine.layout();
    let full = bounds(&table);
    assert_eq!(layout.robustness, full.len());
    assert_eq!(full.len(), 6, "a, b for two mediators, their link, c'");
    let mut stats = vec![0.0; g * layout.len()];
    assert_eq!(engine.compute(0, &mut stats).unwrap(), 0);
    let city = table.headers.iter().position(|h| h == "city").unwrap();
    for (c, level) in panel.cluster.levels.iter().enumerate() {
        let mut without = table.clone();
        without.rows.retain(|r| r[city] != *level);
        let want = bounds(&without);
        let got = &stats[c * layout.len()..(c + 1) * layout.len()];
        for (k, w) in want.iter().enumerate() {
            let v = got[layout.rv(k)];
            assert!(
                (v - w).abs() <= 1e-9 * w.abs().max(1e-3),
                "without {level}: path {k}: {v} vs {w}"
            );
        }
    }
}

/// `--rv-replicates` resamples each path's RV (its moments without a
/// p-value, an interval per method and level, the report's first); the
/// default run does not; the wild bootstrap, whose replicates have no Gram
/// matrix, is refused by the key.
#[test]
fn a_run_reports_the_resampled_robustness_values() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::medsim(
        dir.path(),
        &["run", "-B", "300", "--rv-replicates", "--out", "o"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("o/summary.json")).unwrap())
            .unwrap();
    // As many as each effect has (every method at every level).
    let per_effect = s["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["effect"] == "a")
        .count();
    assert!(per_effect > 0);
    let paths = s["confounding"]["paths"].as_array().unwrap();
    assert!(!paths.is_empty());
    for p in paths {
        let key = p["path"].as_str().unwrap();
        let boot = &p["rv_bootstrap"];
        assert!(boot["sd"].as_f64().unwrap() > 0.0, "{key}");
        assert!(boot["p_value"].is_null(), "{key}");
        let intervals = p["rv_intervals"].as_array().unwrap();
        assert_eq!(intervals.len(), per_effect, "{key}");
        for i in intervals {
            assert_eq!(i["effect"], format!("rv:{key}"));
            let (lo, hi) = (i["lower"].as_f64().unwrap(), i["upper"].as_f64().unwrap());
            assert!(0.0 <= lo && lo <= hi && hi <= 1.0, "{key}: [{lo}, {hi}]");
        }
    }
    // Only the bounds' block holds them.
    assert!(
        s["intervals"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| !i["effect"].as_str().unwrap().starts_with("rv:"))
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("(resampled)"), "{report}");
    let out = common::medsim(dir.path(), &["run", "-B", "99", "--out", "d"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("d/summary.json")).unwrap())
            .unwrap();
    for p in s["confounding"]["paths"].as_array().unwrap() {
        assert!(p.get("rv_bootstrap").is_none());
    }
    let out = common::medsim(
        dir.path(),
        &[
            "run",
            "-B",
            "99",
            "--scheme",
            "wild",
            "--rv-replicates",
            "--out",
            "w",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--rv-replicates") && err.contains("reweighting scheme"),
        "{err}"
    );
    assert!(!dir.path().join("w").exists());
}
