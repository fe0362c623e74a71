//! Interval formulas against R's boot::boot.ci on stored draws, replicate
//! standard errors and jackknife values (tests/fixtures/make_interval_fixtures.R writes the fixture),
//! and BCa's jackknife read where the replicates' statistics are.

use medsim::internals::resample::intervals::{Draws, Method, Order, jackknife_acceleration};
use serde_json::Value;

mod common;

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn intervals_match_boot_ci() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/boot_ci_expected.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut compared = 0;
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut t = floats(&case["t"]);
        let t0 = case["t0"].as_f64().unwrap();
        let mut z: Vec<f64> = t
            .iter()
            .zip(floats(&case["se"]))
            .map(|(t, s)| (t - t0) / s)
            .collect();
        z.sort_by(f64::total_cmp);
        t.sort_by(f64::total_cmp);
        let jack = floats(&case["jack"]);
        let raw = floats(&case["t"]);
        let mut draws = Draws::in_memory(t0, &raw, &t, Some(jackknife_acceleration(&jack)));
        draws.studentized = Some((case["se0"].as_f64().unwrap(), z.len(), Order::Sorted(&z)));
        let levels = floats(&case["levels"]);
        for (method, key) in [
            (Method::Normal, "normal"),
            (Method::Basic, "basic"),
            (Method::Percentile, "percentile"),
            (Method::Bca, "bca"),
            (Method::Bc, "bc"),
            (Method::Studentized, "studentized"),
        ] {
            for (k, &level) in levels.iter().enumerate() {
                let want = floats(&case[key][k]);
                let (lo, hi) = draws.interval(method, level);
                let tol = 1e-9 * (want[1] - want[0]).abs();
                assert!(
                    (lo - want[0]).abs() <= tol && (hi - want[1]).abs() <= tol,
                    "{name} {key} {level}: [{lo}, {hi}] vs boot.ci [{}, {}]",
                    want[0],
                    want[1]
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 54);
}

/// BCa's acceleration comes from a jackknife with the replicates' layout:
/// asking for studentized intervals too (whose replicate SEs sit before a
/// chain's statistics, the sensitivity curve and the robustness values)
/// leaves every BCa interval as it was, with region groups and their
/// contrasts. Before, the jackknife had no SE slots, so every statistic
/// after them was read from the wrong column, or past the row's end.
#[test]
fn bca_does_not_move_when_studentized_intervals_are_asked_too() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "run",
        "-B",
        "300",
        "--serial",
        "agglom_sec,agglom_ter",
        "--also-mediators",
        "",
        "--group",
        "region",
        "--rv-replicates",
        "--backend",
        "cpu",
    ];
    let mut runs = Vec::new();
    for (ci, out) in [("bca", "one"), ("bca,studentized", "two")] {
        let args = [&base[..], &["--ci", ci, "--out", out]].concat();
        let done = common::medsim(dir.path(), &args);
        assert!(
            done.status.success(),
            "{}",
            String::from_utf8_lossy(&done.stderr)
        );
        let s: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(out).join("summary.json")).unwrap(),
        )
        .unwrap();
        runs.push(s);
    }
    let bca = |s: &Value, key: &str| -> Vec<Value> {
        let mut all: Vec<Value> = s[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["method"] == "bca")
            .cloned()
            .collect();
        for g in s["groups"].as_object().unwrap().values() {
            all.extend(
                g["intervals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|i| i["method"] == "bca")
                    .cloned(),
            );
        }
        all
    };
    let (one, two) = (bca(&runs[0], "intervals"), bca(&runs[1], "intervals"));
    assert!(one.len() > 10);
    assert_eq!(one, two);
    let rv = |s: &Value| s["confounding"]["paths"].clone();
    assert!(rv(&runs[0])[0]["rv_bootstrap"].is_object());
    assert_eq!(rv(&runs[0]), rv(&runs[1]));
}
