//! The synthetic panel against the study it is calibrated to: the default
//! shows a total effect near -0.091, suppression of about 6 %, stronger in
//! small-medium and western cities; on a large panel the homogeneous true
//! parameters (b, c') are recovered.

use medsim::internals::data::synthetic::{B_AGGLOM, C_PRIME, SyntheticParams, generate};
use medsim::internals::data::table::Table;
use medsim::internals::model::design::Design;
use medsim::internals::model::mediation::{Analysis, analyse};
use medsim::internals::model::panel::Panel;
use medsim::internals::model::spec::InferenceSpec;
use medsim::internals::model::spec::default_spec;

fn analyse_table(t: &Table) -> Analysis {
    let spec = default_spec();
    let panel = Panel::from_table(t, &spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    analyse(
        &design,
        &InferenceSpec {
            mc_draws: 2000,
            ..InferenceSpec::default()
        },
    )
    .unwrap()
}

fn subset(t: &Table, column: &str, value: &str) -> Table {
    let c = t.column(column).unwrap();
    t.filter_rows(|r| r[c] == value)
}

#[test]
fn default_panel_matches_the_published_facts() {
    let a = analyse_table(&generate(SyntheticParams::default()));
    let c = a.effect("c").unwrap().estimate;
    assert!((-0.1..=-0.082).contains(&c), "total effect {c}");
    assert!(a.suppression.suppressing);
    let share = a.suppression.share;
    assert!((0.04..=0.08).contains(&share), "suppression share {share}");
    assert!(a.effect("a").unwrap().estimate > 0.0 && a.effect("b").unwrap().estimate > 0.0);
}

#[test]
fn suppression_is_stronger_in_small_medium_and_western_cities() {
    let t = generate(SyntheticParams::default());
    let share = |col: &str, v: &str| analyse_table(&subset(&t, col, v)).suppression.share;
    let (small, large) = (share("size", "small-medium"), share("size", "large"));
    assert!(small > large, "small-medium {small} vs large {large}");
    let (west, east) = (share("region", "west"), share("region", "east"));
    assert!(west > east, "west {west} vs east {east}");
}

#[test]
fn large_panel_recovers_the_homogeneous_true_parameters() {
    let a = analyse_table(&generate(SyntheticParams {
        cities: 3000,
        seed: 11,
        ..SyntheticParams::default()
    }));
    for (key, truth) in [("b", B_AGGLOM), ("c_prime", C_PRIME)] {
        let e = a.effect(key).unwrap();
        let z = (e.estimate - truth) / e.se.unwrap();
        assert!(
            z.abs() < 4.0,
            "{key}: {} vs true {truth} (z = {z})",
            e.estimate
        );
    }
}
