//! `--group`: each group of clusters gets its own model, resampled with the
//! pooled run's weights. A group holding every cluster reproduces the
//! pooled model to the bit (same sample, same draws); unknown columns and
//! the GPU backend are refused with a message.

use std::process::Command;

use medsim::bootstrap::{BackendChoice, ResampleSpec};
use medsim::intervals::Method;
use medsim::run::{DataSource, RunPlan, execute};
use medsim::scheme::{Scheme, WildWeights};
use medsim::synthetic::{SyntheticParams, default_spec, generate};
use medsim::table::write_csv;

/// The default panel with a column `all` that is "x" on every row.
fn panel_with_one_group(dir: &std::path::Path) -> std::path::PathBuf {
    let mut table = generate(SyntheticParams {
        cities: 60,
        ..SyntheticParams::default()
    });
    table.headers.push("all".into());
    for row in &mut table.rows {
        row.push("x".into());
    }
    let path = dir.join("panel.csv");
    write_csv(&table, &path).unwrap();
    path
}

#[test]
fn a_group_of_every_cluster_reproduces_the_pooled_model() {
    let dir = tempfile::tempdir().unwrap();
    let csv = panel_with_one_group(dir.path());
    for scheme in [
        Scheme::Pairs,
        Scheme::Bayes,
        Scheme::Wild(WildWeights::Rademacher),
    ] {
        let mut model = default_spec();
        model.groups = vec!["all".into()];
        let methods = if matches!(scheme, Scheme::Wild(_)) {
            vec![Method::Percentile, Method::Bca]
        } else {
            vec![Method::Percentile, Method::Bca, Method::Studentized]
        };
        let plan = RunPlan {
            name: "groups".into(),
            data: DataSource::Csv(csv.clone()),
            model,
            inference: Default::default(),
            resampling: Some(ResampleSpec {
                scheme,
                replicates: 999,
                methods,
                backend: BackendChoice::Cpu,
                wild_tests: false,
                ..ResampleSpec::default()
            }),
            group_by: vec!["all".into()],
        };
        let s = execute(&plan, &|_, _| {}).unwrap();
        let g = &s.groups["all=x"];
        assert_eq!(g.clusters, s.data.clusters);
        assert_eq!(g.effects, s.effects, "{scheme:?}");
        assert_eq!(g.intervals, s.intervals, "{scheme:?}");
    }
}

#[test]
fn group_options_that_cannot_work_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_medsim"))
            .args(["run", "-q", "-B", "200", "--out"])
            .arg(dir.path().join("out"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--group", "continent"]);
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("continent"), "{e}");
    let out = run(&["--group", "region", "--backend", "gpu"]);
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("group models") && e.contains("CPU engine"),
        "{e}"
    );
    assert!(
        !dir.path().join("out").exists(),
        "a refused run wrote results"
    );
    let out = run(&["--group", "region,size"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/summary.json")).unwrap(),
    )
    .unwrap();
    // Every pair of groups within a column, every effect, first minus second.
    let contrasts = s["contrasts"].as_array().unwrap();
    let effects = s["effects"].as_object().unwrap().len();
    assert_eq!(contrasts.len(), (3 + 1) * effects);
    for c in contrasts {
        let [g1, g2] = [&c["between"][0], &c["between"][1]].map(|v| v.as_str().unwrap());
        assert_eq!(g1.split('=').next(), g2.split('=').next(), "{c}");
        let effect = c["effect"].as_str().unwrap();
        let est = |g: &str| {
            s["groups"][g]["effects"][effect]["estimate"]
                .as_f64()
                .unwrap()
        };
        // serde_json's default float parsing may be an ulp off each value.
        let want = est(g1) - est(g2);
        let got = c["estimate"].as_f64().unwrap();
        let ulps = 1e-15 * est(g1).abs().max(est(g2).abs());
        assert!((got - want).abs() <= ulps, "{c}");
        assert!(c["bootstrap"]["sd"].as_f64().unwrap() > 0.0);
        assert!(!c["intervals"].as_array().unwrap().is_empty());
    }
    let keys: Vec<&String> = s["groups"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "region=central",
            "region=east",
            "region=west",
            "size=large",
            "size=small-medium"
        ]
    );
}
