//! Restricted wild cluster bootstrap p-values against wildboottest (WCR11,
//! B = 99999) on tests/fixtures/wild_panel.csv, within Monte Carlo tolerance:
//! two independent estimates of the same p at B = 99999 differ by at most
//! sqrt(2 * 0.25 / 99999) ~ 0.0022 in standard deviation; 0.01 is 4.5 of them.
//! On the CPU engine and, where there is an adapter, the GPU's.

mod common;

use medsim::internals::model::spec::InferenceSpec;
use medsim::internals::resample::intervals::Method;
use medsim::internals::resample::scheme::{Scheme, WildWeights};
use medsim::internals::resample::spec::{BackendChoice, ResampleSpec};
use medsim::internals::study::run::{DataSource, RunPlan, execute};
use serde_json::Value;

#[test]
fn wcr_p_values_match_wildboottest() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(common::fixture("wild_expected.json")).unwrap(),
    )
    .unwrap();
    let model = common::wild_panel_spec();
    let mut backends = vec![BackendChoice::Cpu];
    if common::has_gpu() {
        backends.push(BackendChoice::Gpu);
    }
    for (backend, weights) in backends
        .iter()
        .flat_map(|&b| ["rademacher", "webb"].map(|w| (b, w)))
    {
        let plan = RunPlan {
            name: "wild".into(),
            data: DataSource::file(common::fixture("wild_panel.csv")),
            model: model.clone(),
            inference: InferenceSpec {
                mc_draws: 1000,
                ..InferenceSpec::default()
            },
            resampling: Some(ResampleSpec {
                scheme: Scheme::Wild(WildWeights::parse(weights).unwrap()),
                replicates: 99_999,
                methods: vec![Method::Percentile],
                backend,
                ..ResampleSpec::default()
            }),
            group_by: vec![],
            mediator_sets: vec![],
            robustness: Default::default(),
            sensitivity: None,
            confounding: None,
            keep_replicates: false,
        };
        let summary = execute(&plan, &|_, _| Ok(())).unwrap();
        let ran = &summary.resampling.as_ref().unwrap().engine.backend;
        assert_eq!(*ran == "gpu", backend == BackendChoice::Gpu);
        for case in expected["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["weights"] == weights)
        {
            let effect = case["effect"].as_str().unwrap();
            let want = case["p_value"].as_f64().unwrap();
            let got = summary
                .effect(effect)
                .unwrap()
                .bootstrap
                .unwrap()
                .p_value
                .unwrap();
            assert!(
                (got - want).abs() < 0.01,
                "{backend:?} {weights} {effect}: medsim {got} vs wildboottest {want}"
            );
        }
    }
}
