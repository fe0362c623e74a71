//! Serial mediation (PROCESS model 6) against references: lavaan's
//! defined parameters without fixed effects (every path, the total and
//! every difference, chains of two to four), pyfixest's equations
//! (coefficients and CR1 SEs) with two-way fixed effects, both from
//! tests/fixtures/make_serial_fixtures.py and make_serial_lavaan.R on
//! serial.csv; the replicate solver against a brute-force refit of
//! materialised pairs resamples, replicate by replicate; and the refused
//! combinations.

mod common;

use medsim::internals::data::table::{Table, read_csv};
use medsim::internals::model::replicate::StatLayout;
use medsim::internals::model::spec::{FixedEffects, ModelSpec};
use medsim::internals::resample::engine::{CpuEngine, Engine};
use medsim::internals::resample::scheme::{Scheme, WeightPlan, WildWeights};
use medsim::{DataSource, InferenceSpec, ResampleSpec, RunPlan};
use serde_json::Value;

fn rel_err(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-300)
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture(name)).unwrap()).unwrap()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// The serial model through `chain` with the fixture's controls.
fn spec(chain: &[String], fe: FixedEffects) -> ModelSpec {
    ModelSpec {
        mediators: chain.to_vec(),
        controls: vec!["c1".into(), "c2".into()],
        serial: true,
        ..ModelSpec::xmy("unit", "time", &[], fe)
    }
}

fn run(model: ModelSpec) -> medsim::internals::study::summary::Summary {
    let plan = RunPlan {
        inference: InferenceSpec {
            mc_draws: 2000,
            ..InferenceSpec::default()
        },
        group_by: vec![],
        mediator_sets: vec![],
        ..RunPlan::new(
            "serial",
            DataSource::file(common::fixture("serial.csv")),
            model,
        )
    };
    medsim::run(&plan, &|_, _| Ok(())).unwrap()
}

/// Keys of the effects a chain adds or changes: every path's, its links,
/// the differences, the paths and the total.
fn chain_key(k: &str) -> bool {
    ["a:", "b:", "d:", "indirect", "contrast:"]
        .iter()
        .any(|p| k.starts_with(p))
}

#[test]
fn every_lavaan_case_matches() {
    let fixture = json("serial_lavaan.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let chain = names(&case["chain"]);
        let summary = run(spec(&chain, FixedEffects::None));
        let effects = case["effects"].as_object().unwrap();
        for (key, want) in effects {
            let got = summary
                .effect(key)
                .unwrap_or_else(|| panic!("{chain:?}: no effect {key}"));
            let want = want.as_f64().unwrap();
            assert!(
                rel_err(got.estimate, want) < 1e-8,
                "{chain:?} {key}: {} vs lavaan {want}",
                got.estimate
            );
        }
        // Every path, link and difference medsim reports is one lavaan
        // checked, and the serial block lists exactly those.
        let reported: Vec<&String> = summary.effects.keys().filter(|k| chain_key(k)).collect();
        assert_eq!(reported.len(), effects.len() - 1, "{chain:?}");
        let block = summary.serial.as_ref().unwrap();
        assert_eq!(block.chain, chain);
        let m = chain.len();
        assert_eq!(block.paths.len(), (1 << m) - 1);
        assert_eq!(block.links.len(), m * (m - 1) / 2);
        assert_eq!(
            block.contrasts.len(),
            block.paths.len() * (block.paths.len() - 1) / 2
        );
        for key in block
            .links
            .iter()
            .chain(&block.contrasts)
            .chain(block.paths.iter().map(|p| &p.key))
        {
            assert!(effects.contains_key(key), "{chain:?}: {key}");
        }
        // The total is the sum of the paths, and the proportion mediated
        // and suppression share divide it.
        let total = summary.effect("indirect").unwrap().estimate;
        let c = summary.effect("c").unwrap().estimate;
        let share = summary.effect("proportion_mediated").unwrap().estimate;
        assert!(rel_err(share, total / c) < 1e-12);
    }
}

#[test]
fn every_pyfixest_case_matches() {
    let fixture = json("serial_pyfixest.json");
    for case in fixture["cases"].as_array().unwrap() {
        let chain = names(&case["chain"]);
        let summary = run(spec(&chain, FixedEffects::UnitTime));
        let want_eqs = case["equations"].as_array().unwrap();
        assert_eq!(summary.equations.len(), want_eqs.len(), "{chain:?}");
        for (got, want) in summary.equations.iter().zip(want_eqs) {
            assert_eq!(got.name, want["name"].as_str().unwrap(), "{chain:?}");
            assert_eq!(got.dependent, want["dependent"].as_str().unwrap());
            let want = want["coefficients"].as_object().unwrap();
            assert_eq!(got.coefficients.len(), want.len(), "{chain:?} {}", got.name);
            for c in &got.coefficients {
                let w = common::floats(&want[&c.name]);
                assert!(
                    rel_err(c.estimate, w[0]) < 1e-8,
                    "{chain:?} {} {}: {} vs pyfixest {}",
                    got.name,
                    c.name,
                    c.estimate,
                    w[0]
                );
                assert!(
                    rel_err(c.se, w[1]) < 1e-6,
                    "{chain:?} {} {}: SE {} vs pyfixest {}",
                    got.name,
                    c.name,
                    c.se,
                    w[1]
                );
            }
        }
        // The links are the mediator equations' coefficients.
        for (j, to) in chain.iter().enumerate().skip(1) {
            let eq = &summary.equations[1 + j];
            for from in &chain[..j] {
                let coef = eq.coefficients.iter().find(|c| &c.name == from).unwrap();
                let d = summary.effect(&format!("d:{from}:{to}")).unwrap();
                assert_eq!(d.estimate, coef.estimate);
                assert!(rel_err(d.se.unwrap(), coef.se) < 1e-12);
            }
        }
    }
}

/// The oracle: one pairs replicate materialised (a cluster drawn k times
/// is k units), the two-way effects applied from scratch (unit demeaning
/// and period dummies), each equation refitted by QR, and the chain of
/// three's seven paths written out by hand.
fn oracle(table: &Table, w: &[f64]) -> Vec<(String, f64)> {
    let names = ["x", "m1", "m2", "m3", "y", "c1", "c2"];
    let r = common::Materialised::new(table, &names, w);
    let [x, m1, m2, m3, y, c1, c2] = names.map(|n| r.column(n));
    let fit = |dep: &[f64], regs: Vec<&[f64]>| r.fit(dep, &regs);
    let c = fit(&y, vec![&x, &c1, &c2])[0];
    let e1 = fit(&m1, vec![&x, &c1, &c2]);
    let e2 = fit(&m2, vec![&x, &c1, &c2, &m1]);
    let e3 = fit(&m3, vec![&x, &c1, &c2, &m1, &m2]);
    let ey = fit(&y, vec![&x, &c1, &c2, &m1, &m2, &m3]);
    let (a1, a2, a3) = (e1[0], e2[0], e3[0]);
    let (d21, d31, d32) = (e2[3], e3[3], e3[4]);
    let (b1, b2, b3, c_prime) = (ey[3], ey[4], ey[5], ey[0]);
    let paths = [
        ("m1", a1 * b1),
        ("m2", a2 * b2),
        ("m3", a3 * b3),
        ("m1>m2", a1 * d21 * b2),
        ("m1>m3", a1 * d31 * b3),
        ("m2>m3", a2 * d32 * b3),
        ("m1>m2>m3", a1 * d21 * d32 * b3),
    ];
    let total: f64 = paths.iter().map(|p| p.1).sum();
    let mut out: Vec<(String, f64)> = vec![
        ("a:m1".into(), a1),
        ("a:m2".into(), a2),
        ("a:m3".into(), a3),
        ("b:m1".into(), b1),
        ("b:m2".into(), b2),
        ("b:m3".into(), b3),
        ("d:m1:m2".into(), d21),
        ("d:m1:m3".into(), d31),
        ("d:m2:m3".into(), d32),
        ("c".into(), c),
        ("c_prime".into(), c_prime),
        ("indirect".into(), total),
        ("proportion_mediated".into(), total / c),
        ("suppression_share".into(), (total / c_prime).abs()),
    ];
    for (name, v) in paths {
        out.push((format!("indirect:{name}"), v));
    }
    for (p, (first, vp)) in paths.iter().enumerate() {
        for (second, vq) in &paths[p + 1..] {
            out.push((format!("contrast:{first}:{second}"), vp - vq));
        }
    }
    out
}

#[test]
fn replicates_match_a_refit_of_the_materialised_resamples() {
    let table = read_csv(&common::fixture("serial.csv")).unwrap();
    let chain: Vec<String> = ["m1", "m2", "m3"].map(String::from).to_vec();
    let model = spec(&chain, FixedEffects::UnitTime);
    let (_panel, design, fit) = common::fitted(&table, &model);
    let g = design.n_clusters;
    let plan = WeightPlan::new(Scheme::Pairs, 42, g, None);
    let engine = CpuEngine::new(&design, &fit, plan.clone(), 7, 2, false).unwrap();
    let layout = engine.layout();
    // a, b, a*b per mediator, c, c', total, proportion, share, 3 parallel
    // contrasts; 3 links, 4 longer paths, 18 more contrasts.
    assert_eq!(layout.len(), 9 + 5 + 3 + 3 + 4 + 18);
    let replicates = 5;
    let mut fast = vec![0.0; replicates * layout.len()];
    assert_eq!(engine.compute(0, &mut fast).unwrap(), 0);
    let mut w = vec![0.0; g];
    for r in 0..replicates {
        plan.fill(r as u64, &mut w);
        let row = &fast[r * layout.len()..(r + 1) * layout.len()];
        let want = oracle(&table, &w);
        assert_eq!(want.len(), 14 + 7 + 21);
        let mut seen = vec![false; layout.len()];
        for (key, want) in want {
            let i = layout.index_of(&key, &chain).unwrap();
            seen[i] = true;
            assert!(
                rel_err(row[i], want) < 1e-9,
                "replicate {r} {key}: {} vs {want}",
                row[i]
            );
        }
        // Every statistic was checked (a mediator's own path is its a*b).
        assert!(seen.iter().all(|&s| s), "unchecked statistics: {seen:?}");
    }
}

/// The engines (CPU, and the GPU in f64 where the adapter has it and in
/// f32) give the same replicates of a chain of three: every statistic, for
/// reweighting schemes and the permutation test. On the default panel
/// (agglomeration's two components, then industry), whose total effect is
/// far from zero: the proportion mediated divides by it, so near zero its
/// f32 error grows as 1/c^2 (on serial.csv, c = 0.06 with SE 0.06).
#[test]
fn every_engine_gives_the_cpu_engines_replicates() {
    use medsim::internals::data::synthetic::{SyntheticParams, generate};
    let mut model = medsim::internals::model::spec::default_spec();
    model.mediators = ["agglom_sec", "agglom_ter", "industry"]
        .map(String::from)
        .to_vec();
    model.controls.retain(|c| c != "industry");
    model.serial = true;
    let (panel, design, fit) = common::fitted(&generate(SyntheticParams::default()), &model);
    let count = 200;
    for scheme in [Scheme::Pairs, Scheme::Bayes, Scheme::Jackknife] {
        let plan = WeightPlan::new(scheme, 3, design.n_clusters, None);
        let count = if scheme == Scheme::Jackknife {
            design.n_clusters
        } else {
            count
        };
        // And with each replicate's own SEs of every path and contrast
        // (studentized intervals).
        for studentize in [false, true] {
            common::engines_agree(
                common::engines(&design, &fit, &plan, studentize),
                count,
                &format!("{scheme:?} studentized {studentize}"),
                &[],
            );
        }
    }
    // Permuting the treatment drives c* and c'* to about 0, where a
    // relative tolerance means nothing: the f64 engines are held to 1e-9
    // of each statistic's spread instead, and the two ratios over c* and
    // c'* (the proportion mediated and the suppression share, of which a
    // permutation run reports nothing) are left out: their numerators and
    // denominators are checked. The f32 engine is not compared here:
    // permuting the treatment hardly moves b (its spread is 0.5 % of its
    // value on this panel), so b's f32 rounding exceeds 1e-4 of that
    // spread, for the parallel model with these mediators as much as for
    // the chain.
    let engines = common::permutation_engines(&design, &fit, &panel, 9)
        .into_iter()
        .filter_map(|(label, engine, tol)| match tol {
            common::Tolerance::Relative(t) => {
                Some((label, engine, common::Tolerance::SdFraction(t)))
            }
            common::Tolerance::SdFraction(_) => None,
        })
        .collect();
    let layout = StatLayout::of(&design);
    let ratios = [layout.proportion(), layout.suppression_share()];
    common::engines_agree(engines, count, "permutation", &ratios);
}

/// The wild (score) bootstrap of a chain: each replicate's coefficients
/// are the full-sample ones plus the cluster influences weighted by the
/// replicate's multipliers (a link's too), its paths their products; every
/// engine agrees; and a link's restricted (WCR) test is that of its own
/// coefficient in its mediator's equation.
#[test]
fn the_wild_bootstrap_resamples_the_links() {
    let table = read_csv(&common::fixture("serial.csv")).unwrap();
    let chain: Vec<String> = ["m1", "m2"].map(String::from).to_vec();
    let model = spec(&chain, FixedEffects::UnitTime);
    let (_panel, design, fit) = common::fitted(&table, &model);
    let g = design.n_clusters;
    let plan = WeightPlan::new(Scheme::Wild(WildWeights::Rademacher), 4, g, None);
    let engines = common::engines(&design, &fit, &plan, false);
    let layout = engines[0].1.layout();
    let (n, count) = (layout.len(), 50);
    let mut out = vec![0.0; count * n];
    engines[0].1.compute(0, &mut out).unwrap();
    let l = design.layout;
    let (x, m1, m2) = (l.treatment(), l.mediator(0), l.mediator(1));
    let mut v = vec![0.0; g];
    for r in 0..count {
        plan.fill(r as u64, &mut v);
        let star = |e: usize, col: usize| {
            let i = fit.index(e, col);
            let moved: f64 = (0..g).map(|c| v[c] * fit.influence[c * fit.dim + i]).sum();
            fit.coef(e, col) + moved
        };
        // Equations: total, m1, m2 (on x and m1), outcome.
        let (a1, a2, d) = (star(1, x), star(2, x), star(2, m1));
        let (b1, b2) = (star(3, m1), star(3, m2));
        let row = &out[r * n..(r + 1) * n];
        for (key, want) in [
            ("a:m1", a1),
            ("a:m2", a2),
            ("d:m1:m2", d),
            ("b:m2", b2),
            ("indirect:m1>m2", a1 * d * b2),
            ("indirect", a1 * b1 + a2 * b2 + a1 * d * b2),
            ("contrast:m2:m1>m2", a2 * b2 - a1 * d * b2),
        ] {
            let got = row[layout.index_of(key, &chain).unwrap()];
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1e-3),
                "replicate {r} {key}: {got} vs {want}"
            );
        }
    }
    common::engines_agree(engines, count, "wild", &[]);
    let plan_run = RunPlan {
        resampling: Some(ResampleSpec {
            scheme: Scheme::Wild(WildWeights::Rademacher),
            replicates: 399,
            methods: vec![],
            wild_tests: true,
            backend: medsim::internals::resample::spec::BackendChoice::Cpu,
            ..ResampleSpec::default()
        }),
        group_by: vec![],
        mediator_sets: vec![],
        ..RunPlan::new(
            "serial",
            DataSource::file(common::fixture("serial.csv")),
            model,
        )
    };
    let summary = medsim::run(&plan_run, &|_, _| Ok(())).unwrap();
    let seed = summary.inference.seed;
    let wcr = common::wcr_p_value(&design, &fit, 2, m1, plan.scheme, seed, 399);
    let got = summary
        .effect("d:m1:m2")
        .unwrap()
        .bootstrap
        .unwrap()
        .p_value;
    assert_eq!(got, Some(wcr));
}

#[test]
fn permutation_tests_the_paths_not_the_links() {
    let plan = RunPlan {
        resampling: Some(ResampleSpec {
            scheme: Scheme::Permutation,
            replicates: 199,
            methods: vec![],
            ..ResampleSpec::default()
        }),
        group_by: vec![],
        mediator_sets: vec![],
        ..RunPlan::new(
            "serial",
            DataSource::file(common::fixture("serial.csv")),
            spec(&["m1".into(), "m2".into()], FixedEffects::UnitTime),
        )
    };
    let summary = medsim::run(&plan, &|_, _| Ok(())).unwrap();
    let p = |key: &str| summary.effect(key).unwrap().bootstrap.unwrap().p_value;
    assert!(p("indirect:m1>m2").is_some());
    assert!(p("indirect").is_some());
    assert_eq!(p("d:m1:m2"), None);
    assert_eq!(p("b:m2"), None);
}

#[test]
fn unsupported_and_wrong_options_are_refused_by_key() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["--serial", "m1"],
            "invalid option --serial: a chain of mediators has 2 to 4",
        ),
        (
            &["--serial", "m1,m2,m3,m4,c2", "--controls", "c1"],
            "a chain of mediators has 2 to 4, in order; this one has 5",
        ),
        (
            &["--serial", "m1,m2", "--moderator", "c2", "--controls", "c1"],
            "serial mediators with a moderator",
        ),
        (
            &[
                "--serial",
                "m1,m2",
                "--instrument",
                "c2",
                "--controls",
                "c1",
            ],
            "with an instrumented treatment",
        ),
    ];
    common::assert_refused(&common::fixture("serial.csv"), &cases);
    let dir = tempfile::tempdir().unwrap();
    let data = common::fixture("serial.csv");
    // --serial and --mediator name the mediators twice.
    let out = dir.path().join("both");
    let args = [
        "run",
        "--data",
        data.to_str().unwrap(),
        "--serial",
        "m1,m2",
        "--mediator",
        "m1",
        "--out",
        out.to_str().unwrap(),
    ];
    let done = common::medsim(dir.path(), &args);
    assert_eq!(done.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&done.stderr).contains("cannot be used with"));
}
