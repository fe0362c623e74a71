//! The estimator against pyfixest (feols, CRV1 by the cluster variable) on the
//! panels and expected values written by tests/fixtures/make_fixtures.py:
//! coefficients to 1e-8 relative, cluster-robust SEs to 1e-6 relative, the
//! Sobel SEs from the joint covariance rebuilt from pyfixest's scores and
//! bread, and the identity c = c' + a*b to 1e-10.

use std::path::PathBuf;

use medsim::run::{DataSource, RunPlan, execute};
use medsim::spec::{FixedEffects, InferenceSpec, ModelSpec};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn rel_err(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-300)
}

/// An effect against pyfixest's `[estimate, se]`: estimate to 1e-8, SE to
/// 1e-6 relative.
fn assert_matches(label: &str, got: &medsim::mediation::Effect, want: &Value) {
    let (we, ws) = (want[0].as_f64().unwrap(), want[1].as_f64().unwrap());
    assert!(
        rel_err(got.estimate, we) < 1e-8,
        "{label}: {} vs pyfixest {we}",
        got.estimate
    );
    assert!(
        rel_err(got.se.unwrap(), ws) < 1e-6,
        "{label}: SE {:?} vs pyfixest {ws}",
        got.se
    );
}

#[test]
fn every_pyfixest_case_matches() {
    let text = std::fs::read_to_string(fixtures().join("pyfixest_expected.json")).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 14, "fixture file lost cases");
    let mut compared = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let model = ModelSpec {
            unit: case["unit"].as_str().unwrap().into(),
            time: case["time"].as_str().unwrap().into(),
            outcome: case["outcome"].as_str().unwrap().into(),
            treatment: case["treatment"].as_str().unwrap().into(),
            mediators: strings(&case["mediators"]),
            controls: strings(&case["controls"]),
            instruments: vec![],
            groups: vec![],
            cluster: case["cluster"].as_str().unwrap().into(),
            fixed_effects: FixedEffects::parse(case["fixed_effects"].as_str().unwrap()).unwrap(),
        };
        let plan = RunPlan {
            name: "fixture".into(),
            data: DataSource::Csv(fixtures().join(case["csv"].as_str().unwrap())),
            model,
            inference: InferenceSpec {
                mc_draws: 2000,
                ..InferenceSpec::default()
            },
            resampling: None,
            group_by: vec![],
        };
        let summary = execute(&plan, &|_, _| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            summary.data.observations as u64,
            case["observations"].as_u64().unwrap(),
            "{name}: observations"
        );
        let want_eqs = case["equations"].as_array().unwrap();
        assert_eq!(summary.equations.len(), want_eqs.len(), "{name}");
        for (got, want) in summary.equations.iter().zip(want_eqs) {
            assert_eq!(got.dependent, want["dependent"].as_str().unwrap(), "{name}");
            let want_coefs = want["coefficients"].as_object().unwrap();
            assert_eq!(
                got.coefficients.len(),
                want_coefs.len(),
                "{name} {}: coefficient count",
                got.name
            );
            for c in &got.coefficients {
                let w = want_coefs
                    .get(&c.name)
                    .unwrap_or_else(|| panic!("{name}: pyfixest has no coefficient {}", c.name));
                let (we, ws) = (w[0].as_f64().unwrap(), w[1].as_f64().unwrap());
                assert!(
                    rel_err(c.estimate, we) < 1e-8,
                    "{name} {} {}: estimate {} vs pyfixest {we}",
                    got.name,
                    c.name,
                    c.estimate
                );
                assert!(
                    rel_err(c.se, ws) < 1e-6,
                    "{name} {} {}: SE {} vs pyfixest {ws}",
                    got.name,
                    c.name,
                    c.se
                );
                compared += 1;
            }
        }
        for (key, want) in case["sobel"].as_object().unwrap() {
            let got = summary
                .effect(key)
                .unwrap_or_else(|| panic!("{name}: no effect {key}"));
            assert_matches(&format!("{name} {key}"), &got, want);
            compared += 1;
        }
        let c = summary.effect("c").unwrap().estimate;
        let c_prime = summary.effect("c_prime").unwrap().estimate;
        let indirect = summary.effect("indirect").unwrap().estimate;
        assert!(
            (c - (c_prime + indirect)).abs() <= 1e-10 * c.abs().max(1.0),
            "{name}: c = {c} but c' + ab = {}",
            c_prime + indirect
        );
    }
    assert!(compared > 100, "only {compared} coefficients compared");
}

/// `--group`: each group's model equals pyfixest fitted on the group's rows
/// (a, b, c, c' and the Sobel indirect effects, estimates to 1e-8 and SEs
/// to 1e-6 relative), with missing cells, unbalanced panels, unit or
/// unit + time effects, and two mediators.
#[test]
fn every_group_model_matches_pyfixest_on_the_subgroup() {
    let text = std::fs::read_to_string(fixtures().join("pyfixest_expected.json")).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    let cases = expected["group_cases"].as_array().unwrap();
    assert!(cases.len() >= 3, "fixture file lost group cases");
    let mut compared = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let column = case["group"].as_str().unwrap().to_string();
        let model = ModelSpec {
            unit: "unit".into(),
            time: "time".into(),
            outcome: "y".into(),
            treatment: "x".into(),
            mediators: strings(&case["mediators"]),
            controls: strings(&case["controls"]),
            instruments: vec![],
            groups: vec![column.clone()],
            cluster: case["cluster"].as_str().unwrap().into(),
            fixed_effects: FixedEffects::parse(case["fixed_effects"].as_str().unwrap()).unwrap(),
        };
        let plan = RunPlan {
            name: "groups".into(),
            data: DataSource::Csv(fixtures().join(case["csv"].as_str().unwrap())),
            model,
            inference: InferenceSpec {
                mc_draws: 1000,
                ..InferenceSpec::default()
            },
            resampling: None,
            group_by: vec![column.clone()],
        };
        let summary = execute(&plan, &|_, _| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
        let levels = case["levels"].as_object().unwrap();
        assert_eq!(summary.groups.len(), levels.len(), "{name}: groups");
        for (level, effects) in levels {
            let group = &summary.groups[&format!("{column}={level}")];
            for (key, want) in effects.as_object().unwrap() {
                let got = group
                    .effects
                    .get(key)
                    .unwrap_or_else(|| panic!("{name} {level}: no {key}"));
                assert_matches(&format!("{name} {level} {key}"), got, want);
                compared += 1;
            }
        }
    }
    assert!(compared >= 57, "only {compared} effects compared");
}
