//! Fuzz target: arbitrary bytes through the CSV reader, then (when they
//! parse) through the panel, design and fit a run would build from the
//! file's first five columns as unit, time, outcome, treatment and
//! mediator. Any input may be refused with an error; none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medsim::internals::model::spec::{FixedEffects, InferenceSpec, ModelSpec};

fuzz_target!(|data: &[u8]| {
    let Ok(table) = medsim::internals::data::table::parse_csv("fuzz.csv", data) else {
        return;
    };
    if table.headers.len() < 5 {
        return;
    }
    let h = &table.headers;
    let model = ModelSpec {
        unit: h[0].clone(),
        time: h[1].clone(),
        outcome: h[2].clone(),
        treatment: h[3].clone(),
        mediators: vec![h[4].clone()],
        controls: h[5..].to_vec(),
        instruments: vec![],
        groups: vec![],
        cluster: h[0].clone(),
        fixed_effects: FixedEffects::Unit,
        moderation: None,
        interaction: None,
        serial: false,
    };
    let Ok(panel) = medsim::internals::model::panel::Panel::from_table(&table, &model) else {
        return;
    };
    let Ok(design) = medsim::internals::model::design::Design::build(&panel, model.fixed_effects) else {
        return;
    };
    let _ = medsim::internals::model::mediation::analyse(&design, &InferenceSpec::default());
});
