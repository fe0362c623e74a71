//! The estimator against pyfixest (feols, CRV1 by the cluster variable) on the
//! panels and expected values written by tests/fixtures/make_fixtures.py:
//! coefficients to 1e-8 relative, cluster-robust SEs to 1e-6 relative, the
//! Sobel SEs from the joint covariance rebuilt from pyfixest's scores and
//! bread, and the identity c = c' + a*b to 1e-10.

use std::path::PathBuf;

use medsim::internals::model::spec::{FixedEffects, InferenceSpec, ModelSpec};
use medsim::internals::study::run::{DataSource, RunPlan, execute};
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
fn assert_matches(label: &str, got: &medsim::internals::model::mediation::Effect, want: &Value) {
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

/// The model of a fixture case (instruments where it has them).
fn model_of(case: &Value) -> ModelSpec {
    let (unit, time) = (
        case["unit"].as_str().unwrap(),
        case["time"].as_str().unwrap(),
    );
    let (fixed_effects, cell_group) =
        FixedEffects::parse_with_group(case["fixed_effects"].as_str().unwrap(), unit, time)
            .unwrap();
    ModelSpec {
        unit: case["unit"].as_str().unwrap().into(),
        time: case["time"].as_str().unwrap().into(),
        outcome: case["outcome"].as_str().unwrap().into(),
        treatment: case["treatment"].as_str().unwrap().into(),
        mediators: strings(&case["mediators"]),
        controls: strings(&case["controls"]),
        instruments: case.get("instruments").map(strings).unwrap_or_default(),
        mediator_instruments: case
            .get("mediator_instruments")
            .map(strings)
            .unwrap_or_default(),
        groups: vec![],
        cluster: case["cluster"].as_str().unwrap().into(),
        fixed_effects,
        cell_group,
        moderation: None,
        interaction: None,
        serial: false,
    }
}

/// Run a fixture case and compare its sample size, every reported
/// coefficient and SE of every equation, and the Sobel effects with
/// pyfixest's; the number of values compared.
fn check_case(case: &Value) -> (medsim::internals::study::summary::Summary, usize) {
    let name = case["name"].as_str().unwrap();
    let plan = RunPlan {
        name: "fixture".into(),
        data: DataSource::file(fixtures().join(case["csv"].as_str().unwrap())),
        model: model_of(case),
        inference: InferenceSpec {
            mc_draws: 2000,
            ..InferenceSpec::default()
        },
        resampling: None,
        group_by: vec![],
        mediator_sets: vec![],
        robustness: Default::default(),
        sensitivity: None,
        confounding: None,
        keep_replicates: false,
    };
    let summary = execute(&plan, &|_, _| Ok(())).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        summary.data.observations as u64,
        case["observations"].as_u64().unwrap(),
        "{name}: observations"
    );
    let mut compared = 0;
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
        // The within R-squared (the centred one without fixed effects;
        // none for two-stage least squares, which pyfixest gives as NaN),
        // where the fixture gives it.
        if want.get("r2_within").is_none() {
            continue;
        }
        match (got.r2_within, want["r2_within"].as_f64()) {
            (Some(g), Some(w)) => assert!(
                rel_err(g, w) < 1e-8,
                "{name} {}: R2 within {g} vs pyfixest {w}",
                got.name
            ),
            (g, w) => assert!(
                g.is_none() && w.is_none() && case["instruments"].is_array(),
                "{name} {}: R2 within {g:?} vs pyfixest {w:?}",
                got.name
            ),
        }
        compared += 1;
    }
    for (key, want) in case["sobel"].as_object().unwrap() {
        let got = summary
            .effect(key)
            .unwrap_or_else(|| panic!("{name}: no effect {key}"));
        assert_matches(&format!("{name} {key}"), &got, want);
        compared += 1;
    }
    (summary, compared)
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
        let (summary, n) = check_case(case);
        compared += n;
        assert!(
            summary.iv.is_none(),
            "{name}: least squares has no iv block"
        );
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

/// `--instrument`: every equation by two-stage least squares equals
/// pyfixest's IV (`dep ~ exog | fe | x ~ z`) to the same tolerances, the
/// Sobel effects from the joint covariance of the 2SLS influences, and the
/// first-stage F is pyfixest's cluster-robust first-stage F (1e-6), its
/// p-value scipy's F(instruments, clusters - 1) tail.
#[test]
fn every_instrumented_case_matches_pyfixest_iv() {
    let text = std::fs::read_to_string(fixtures().join("pyfixest_expected.json")).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    let cases = expected["iv_cases"].as_array().unwrap();
    assert!(cases.len() >= 5, "fixture file lost IV cases");
    let mut compared = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (summary, n) = check_case(case);
        compared += n;
        let iv = summary
            .iv
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no iv block"));
        assert_eq!(iv.instruments, strings(&case["instruments"]), "{name}");
        let want_f = case["first_stage_f"].as_f64().unwrap();
        assert!(
            rel_err(iv.first_stage_f, want_f) < 1e-6,
            "{name}: first-stage F {} vs pyfixest {want_f}",
            iv.first_stage_f
        );
        // F(instruments, clusters - 1), from scipy (pyfixest's own p-value
        // is the asymptotic chi2 one).
        let want_p = case["first_stage_p_value"].as_f64().unwrap();
        assert!(
            (iv.first_stage_p_value - want_p).abs() < 1e-9 + 1e-6 * want_p,
            "{name}: first-stage p {} vs pyfixest {want_p}",
            iv.first_stage_p_value
        );
    }
    assert!(compared > 40, "only {compared} IV values compared");
}

/// `--mediator-instrument`: the outcome equation by two-stage least squares
/// with the mediators endogenous equals pyfixest's IV (`y ~ x + C | fe | m ~
/// z`; with two endogenous regressors, which pyfixest lacks, the fixture
/// script's own 2SLS, asserted there equal to pyfixest's wherever pyfixest
/// fits the equation), coefficients 1e-8 and CR1 SEs 1e-6; the Sobel
/// effects; each mediator's first-stage F (pyfixest's OLS first stage and
/// Wald F, and pyfixest's own first-stage F where it has one).
#[test]
fn every_instrumented_mediator_case_matches_pyfixest_iv() {
    let text = std::fs::read_to_string(fixtures().join("mediator_iv_expected.json")).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 5, "fixture file lost cases");
    let mut compared = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (summary, n) = check_case(case);
        compared += n;
        let want_fs = case["mediator_iv"].as_object().unwrap();
        assert_eq!(summary.mediator_iv.len(), want_fs.len(), "{name}");
        for (mediator, want) in want_fs {
            let got = &summary.mediator_iv[mediator];
            assert_eq!(got.instruments, strings(&want["instruments"]), "{name}");
            let want_f = want["first_stage_f"].as_f64().unwrap();
            assert!(
                rel_err(got.first_stage_f, want_f) < 1e-6,
                "{name} {mediator}: first-stage F {} vs {want_f}",
                got.first_stage_f
            );
            let want_p = want["first_stage_p_value"].as_f64().unwrap();
            assert!(
                (got.first_stage_p_value - want_p).abs() < 1e-12 + 1e-6 * want_p,
                "{name} {mediator}: first-stage p {} vs {want_p}",
                got.first_stage_p_value
            );
            compared += 1;
        }
        // The treatment's first stage only when it is instrumented too.
        assert_eq!(
            summary.iv.is_some(),
            !strings(&case["instruments"]).is_empty(),
            "{name}"
        );
        // The outcome equation's mediators are instrumented: its b differs
        // from least squares', so a solver that ignored the instruments
        // would fail the comparison above.
    }
    assert!(compared > 50, "only {compared} values compared");
}

/// `--fixed-effects unit+province^time`: unit effects and province-by-period
/// effects (the cells partialled out of the design) equal pyfixest's
/// `| unit + province^time`, on an unbalanced panel with missing cells and
/// singleton cells (dropped, as pyfixest drops them), clustered by unit and
/// by province (where the cells nest in the clusters, which changes the
/// small-sample factor), one mediator and two: every coefficient (1e-8),
/// CR1 SE (1e-6), within R-squared and the Sobel effects.
#[test]
fn every_interacted_fixed_effect_case_matches_pyfixest() {
    let text = std::fs::read_to_string(fixtures().join("interacted_expected.json")).unwrap();
    let expected: Value = serde_json::from_str(&text).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() >= 3, "fixture file lost cases");
    let mut compared = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (summary, n) = check_case(case);
        compared += n;
        assert_eq!(summary.model.fixed_effects, "unit+province^time", "{name}");
        assert_eq!(
            summary.data.dropped_singletons, 2,
            "{name}: singleton cells"
        );
    }
    assert!(compared > 30, "only {compared} values compared");
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
            mediator_instruments: vec![],
            groups: vec![column.clone()],
            cluster: case["cluster"].as_str().unwrap().into(),
            fixed_effects: FixedEffects::parse(case["fixed_effects"].as_str().unwrap()).unwrap(),
            cell_group: None,
            moderation: None,
            interaction: None,
            serial: false,
        };
        let plan = RunPlan {
            name: "groups".into(),
            data: DataSource::file(fixtures().join(case["csv"].as_str().unwrap())),
            model,
            inference: InferenceSpec {
                mc_draws: 1000,
                ..InferenceSpec::default()
            },
            resampling: None,
            group_by: vec![column.clone()],
            mediator_sets: vec![],
            robustness: Default::default(),
            sensitivity: None,
            confounding: None,
            keep_replicates: false,
        };
        let summary = execute(&plan, &|_, _| Ok(())).unwrap_or_else(|e| panic!("{name}: {e}"));
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
