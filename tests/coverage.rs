//! Coverage smoke test: on 300 simulated panels (40 units x 5 periods, unit
//! and period effects, errors correlated within unit, known a = 0.4, b = 0.4)
//! the 95 % percentile interval of the pairs cluster bootstrap (B = 399)
//! covers a*b = 0.16 at a rate consistent with 0.95. With 300 panels the
//! rate's standard error is 0.0126, so [0.90, 0.99] allows about four of them.

use medsim::internals::data::table::Table;
use medsim::internals::model::design::Design;
use medsim::internals::model::mediation::analyse;
use medsim::internals::model::panel::Panel;
use medsim::internals::model::spec::{FixedEffects, InferenceSpec, ModelSpec};
use medsim::internals::resample::intervals::Method;
use medsim::internals::resample::scheme::Scheme;
use medsim::internals::resample::spec::ResampleSpec;
use medsim::internals::study::resampling::resample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use rand_distr::StandardNormal;

const A: f64 = 0.4;
const B: f64 = 0.4;

fn panel(seed: u64) -> Table {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut z = || rng.sample::<f64, _>(StandardNormal);
    let (units, periods) = (40, 5);
    let lam: Vec<f64> = (0..periods).map(|_| z()).collect();
    let mut rows = Vec::new();
    for i in 0..units {
        let alpha = z();
        let (mut em, mut ey) = (z(), z());
        for t in 0..periods {
            if t > 0 {
                em = 0.5 * em + 0.75f64.sqrt() * z();
                ey = 0.5 * ey + 0.75f64.sqrt() * z();
            }
            let x = alpha + lam[t] + z();
            let m = A * x + alpha + lam[t] + em;
            let y = 0.2 * x + B * m + alpha - lam[t] + ey;
            rows.push(vec![
                i.to_string(),
                t.to_string(),
                x.to_string(),
                m.to_string(),
                y.to_string(),
            ]);
        }
    }
    Table::new(
        "sim",
        ["u", "t", "x", "m", "y"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        rows,
    )
}

#[test]
fn percentile_interval_covers_the_true_indirect_effect() {
    let spec = ModelSpec::xmy("u", "t", &[], FixedEffects::UnitTime);
    let inference = InferenceSpec {
        mc_draws: 1000,
        ..InferenceSpec::default()
    };
    let boot = ResampleSpec {
        scheme: Scheme::Pairs,
        replicates: 399,
        methods: vec![Method::Percentile],
        threads: 1,
        ..ResampleSpec::default()
    };
    let datasets = 300;
    let mut covered = 0;
    for d in 0..datasets {
        let p = Panel::from_table(&panel(1000 + d), &spec).unwrap();
        let design = Design::build(&p, spec.fixed_effects).unwrap();
        let analysis = analyse(&design, &inference).unwrap();
        let result = resample(
            &design,
            &p,
            &analysis,
            &boot,
            d,
            &[0.95],
            &|_, _| Ok(()),
            None,
            0,
        )
        .unwrap();
        let i = result
            .intervals
            .iter()
            .find(|i| i.effect == "indirect" && i.method == "percentile")
            .unwrap();
        covered += (i.lower <= A * B && A * B <= i.upper) as u32;
    }
    let rate = covered as f64 / datasets as f64;
    eprintln!("percentile coverage of a*b over {datasets} panels: {rate}");
    assert!((0.90..=0.99).contains(&rate), "coverage {rate}");
}
