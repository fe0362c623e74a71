//! Moderated mediation (PROCESS models 7, 14, 58, 59) against references:
//! lavaan's defined parameters without fixed effects, pyfixest's equations
//! (coefficients and CR1 SEs) with two-way fixed effects, both from
//! tests/fixtures/make_moderation_fixtures.py and make_moderation_lavaan.R
//! on moderated.csv; and the replicate solver against a brute-force refit
//! of materialised pairs resamples, replicate by replicate.

mod common;

use medsim::internals::data::table::{Table, read_csv};
use medsim::internals::model::design::Design;
use medsim::internals::model::spec::{
    FixedEffects, Interaction, ModelSpec, Moderation, ModeratorValues,
};
use medsim::internals::resample::engine::{CpuEngine, Engine};
use medsim::internals::resample::scheme::{Scheme, WeightPlan, WildWeights};
use medsim::{DataSource, InferenceSpec, RunPlan};
use serde_json::Value;

fn rel_err(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-300)
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(common::fixture(name)).unwrap()).unwrap()
}

/// The fixture's model with `moderation`.
fn spec(fe: FixedEffects, moderation: Moderation) -> ModelSpec {
    ModelSpec {
        controls: vec!["c1".into(), "c2".into()],
        moderation: Some(moderation),
        ..ModelSpec::xmy("unit", "time", &[], fe)
    }
}

/// The fixture's model with two-way effects, `moderator` moderating the
/// given paths, evaluated at its mean and one SD either side.
fn moderated(a: bool, b: bool, direct: bool, center: bool, moderator: &str) -> ModelSpec {
    spec(
        FixedEffects::UnitTime,
        Moderation {
            moderator: moderator.into(),
            a,
            b,
            direct,
            center,
            at: ModeratorValues::MeanSd,
        },
    )
}

/// The fixture with two categorical columns: `level`, three levels (1, 2,
/// 5) by w's terciles, varying within units, and `tier`, the unit's size
/// tercile (0, 1, 2), which the unit effects absorb.
fn with_levels(table: &Table) -> Table {
    let mut out = table.clone();
    let (w, size) = (table.column("w").unwrap(), table.column("size").unwrap());
    out.headers
        .extend(["level".to_string(), "tier".to_string()]);
    for row in &mut out.rows {
        let (w, size): (f64, f64) = (row[w].parse().unwrap(), row[size].parse().unwrap());
        let level = if w < 2.5 {
            "1"
        } else if w < 3.46 {
            "2"
        } else {
            "5"
        };
        let tier = if size < 0.64 {
            "0"
        } else if size < 1.23 {
            "1"
        } else {
            "2"
        };
        row.extend([level.to_string(), tier.to_string()]);
    }
    out
}

/// `moderated`'s model with a categorical moderator: its levels.
fn categorical(a: bool, b: bool, direct: bool, moderator: &str) -> ModelSpec {
    let mut model = moderated(a, b, direct, false, moderator);
    if let Some(m) = model.moderation.as_mut() {
        m.at = ModeratorValues::Levels;
    }
    model
}

/// A fixture case's moderation (moderator `w` unless it names another).
fn moderation_of(case: &Value) -> Moderation {
    let paths: Vec<&str> = case["moderated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    Moderation {
        moderator: case
            .get("moderator")
            .and_then(Value::as_str)
            .unwrap_or("w")
            .into(),
        a: paths.contains(&"a"),
        b: paths.contains(&"b"),
        direct: paths.contains(&"direct"),
        center: case["center"].as_bool().unwrap(),
        at: ModeratorValues::default(),
    }
}

/// A fixture case's model: the interaction model (at its contrast), or a
/// moderated one; with the case's mediators when it names them (of c1
/// and c2, the others stay controls).
fn model_of(case: &Value, fe: FixedEffects) -> ModelSpec {
    let model = one_mediator_model_of(case, fe);
    match case.get("mediators") {
        Some(m) => with_mediators(model, m),
        None => model,
    }
}

/// `model` with the mediators a fixture lists.
fn with_mediators(model: ModelSpec, mediators: &Value) -> ModelSpec {
    let mediators: Vec<String> = mediators
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    ModelSpec {
        controls: model
            .controls
            .into_iter()
            .filter(|c| !mediators.contains(c))
            .collect(),
        mediators,
        ..model
    }
}

fn one_mediator_model_of(case: &Value, fe: FixedEffects) -> ModelSpec {
    if case["interaction"].as_bool() == Some(true) {
        let contrast = case
            .get("contrast")
            .map(|c| common::floats(c))
            .map(|c| (c[0], c[1]));
        return ModelSpec {
            controls: vec!["c1".into(), "c2".into()],
            interaction: Some(Interaction { contrast }),
            ..ModelSpec::xmy("unit", "time", &[], fe)
        };
    }
    spec(fe, moderation_of(case))
}

fn run(model: ModelSpec) -> medsim::internals::study::summary::Summary {
    run_on(DataSource::file(common::fixture("moderated.csv")), model)
}

/// `model` fitted on `data` (analytic inference only).
fn run_on(data: DataSource, model: ModelSpec) -> medsim::internals::study::summary::Summary {
    let plan = RunPlan {
        inference: InferenceSpec {
            mc_draws: 2000,
            ..InferenceSpec::default()
        },
        group_by: vec![],
        mediator_sets: vec![],
        ..RunPlan::new("moderation", data, model)
    };
    medsim::run(&plan, &|_, _| Ok(())).unwrap()
}

/// `model` on the fixture resampled as `resampling` asks (no groups, no
/// other mediator sets).
fn resampled(
    name: &str,
    model: ModelSpec,
    resampling: medsim::ResampleSpec,
) -> medsim::internals::study::summary::Summary {
    let plan = RunPlan {
        resampling: Some(resampling),
        group_by: vec![],
        mediator_sets: vec![],
        ..RunPlan::new(
            name,
            DataSource::file(common::fixture("moderated.csv")),
            model,
        )
    };
    medsim::run(&plan, &|_, _| Ok(())).unwrap()
}

#[test]
fn every_lavaan_case_matches() {
    check_lavaan("moderation_lavaan.json", 6);
}

/// Two mediators, each with its own moderated paths (or its own X*M_j),
/// and the totals over them.
#[test]
fn every_parallel_lavaan_case_matches() {
    check_lavaan("parallel_moderation_lavaan.json", 5);
}

/// Every case of a lavaan fixture, with the fixture's mediators when it
/// names them (the other columns but w stay controls), against medsim's
/// point estimates; and every moderation effect medsim reports is one
/// lavaan checked.
fn check_lavaan(fixture: &str, count: usize) {
    let fixture = json(fixture);
    let values = common::floats(&fixture["values"]);
    let cases = fixture["cases"].as_array().unwrap();
    assert_eq!(cases.len(), count);
    for case in cases {
        let name = format!("model {} center {}", case["process_model"], case["center"]);
        let model = model_of(case, FixedEffects::None);
        let model = match fixture.get("mediators") {
            Some(m) => with_mediators(model, m),
            None => model,
        };
        let summary = run(model);
        if let Some(md) = summary.moderation.as_ref() {
            assert_eq!(
                u64::from(md.process_model),
                case["process_model"].as_u64().unwrap()
            );
            // The 16th, 50th and 84th percentiles, as R's quantile gives them.
            assert_eq!(md.values.len(), 3);
            for (got, want) in md.values.iter().zip(&values) {
                assert!(
                    rel_err(got.value, *want) < 1e-14,
                    "{name}: {} vs {want}",
                    got.value
                );
            }
        }
        let effects = case["effects"].as_object().unwrap();
        for (key, want) in effects {
            let got = summary
                .effect(key)
                .unwrap_or_else(|| panic!("{name}: no effect {key}"));
            let want = want.as_f64().unwrap();
            assert!(
                rel_err(got.estimate, want) < 1e-8,
                "{name} {key}: {} vs lavaan {want}",
                got.estimate
            );
        }
        // Every moderation effect medsim reports is one lavaan checked.
        let base = |k: &String| k.split(':').next().unwrap_or_default().to_string();
        let reported = summary
            .effects
            .keys()
            .filter(|k| {
                [
                    "a3",
                    "b3",
                    "c3_prime",
                    "conditional_indirect",
                    "conditional_direct",
                    "index_moderated_mediation",
                    "indirect_difference",
                    "interaction",
                    "natural_direct",
                    "natural_indirect",
                ]
                .contains(&base(k).as_str())
            })
            .count();
        let checked = effects
            .keys()
            .filter(|k| !["a", "b", "c_prime"].contains(&base(k).as_str()))
            .count();
        assert_eq!(reported, checked, "{name}");
    }
}

#[test]
fn every_pyfixest_case_matches() {
    let fixture = json("moderation_pyfixest.json");
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let summary = run(model_of(case, FixedEffects::UnitTime));
        if let Some(md) = summary.moderation.as_ref() {
            assert_eq!(md.moderator_absorbed, md.moderator == "size", "{name}");
        }
        let want_eqs = case["equations"].as_array().unwrap();
        assert_eq!(summary.equations.len(), want_eqs.len(), "{name}");
        for (got, want) in summary.equations.iter().zip(want_eqs) {
            assert_eq!(got.dependent, want["dependent"].as_str().unwrap(), "{name}");
            let want = want["coefficients"].as_object().unwrap();
            assert_eq!(got.coefficients.len(), want.len(), "{name} {}", got.name);
            for c in &got.coefficients {
                let w = common::floats(&want[&c.name]);
                assert!(
                    rel_err(c.estimate, w[0]) < 1e-8,
                    "{name} {} {}: {} vs pyfixest {}",
                    got.name,
                    c.name,
                    c.estimate,
                    w[0]
                );
                assert!(
                    rel_err(c.se, w[1]) < 1e-6,
                    "{name} {} {}: SE {} vs pyfixest {}",
                    got.name,
                    c.name,
                    c.se,
                    w[1]
                );
            }
        }
    }
}

/// The oracle: one pairs replicate materialised (a cluster drawn k times
/// is k units), its products formed from the rows with the full sample's
/// shift, the two-way effects applied from scratch (unit demeaning and
/// period dummies), each equation refitted by QR; theta's functions
/// written out here, for each of the model's mediators and their totals.
fn oracle(table: &Table, model: &ModelSpec, design: &Design, w: &[f64]) -> Vec<(String, f64)> {
    let (w_shift, moderator, center) = match (&design.moderation, &model.moderation) {
        (Some(md), Some(spec)) => (md.w_shift, spec.moderator.as_str(), spec.center),
        _ => (0.0, "w", false),
    };
    let mediators = &model.mediators;
    let mut names = vec!["x", "y", "w", "size"];
    if !names.contains(&moderator) {
        names.push(moderator);
    }
    names.extend(mediators.iter().chain(&model.controls).map(String::as_str));
    let x_mean: f64 = table
        .rows
        .iter()
        .map(|r| r[table.column("x").unwrap()].parse::<f64>().unwrap())
        .sum::<f64>()
        / table.rows.len() as f64;
    let x_shift = if center { x_mean } else { 0.0 };
    let r = common::Materialised::new(table, &names, w);
    let (x, y, wv) = (r.column("x"), r.column("y"), r.column(moderator));
    let ms: Vec<Vec<f64>> = mediators.iter().map(|m| r.column(m)).collect();
    let cs: Vec<Vec<f64>> = model.controls.iter().map(|c| r.column(c)).collect();
    let (n, nc, nm) = (x.len(), cs.len(), ms.len());
    // With one mediator its keys are the totals'; with more, each named.
    let named = |base: &str, j: usize| format!("{base}:{}", mediators[j]);
    let key = |base: &str, j: usize| {
        if nm == 1 {
            base.to_string()
        } else {
            named(base, j)
        }
    };
    let fit = |dep: &[f64], regs: &[&[f64]]| r.fit(dep, regs);
    let first: Vec<&[f64]> = std::iter::once(&x).chain(&cs).map(Vec::as_slice).collect();
    if let Some(i) = &design.interaction {
        // Y ~ X + controls + M_j + X*M_j: the natural effects at the full
        // sample's means.
        let xm: Vec<Vec<f64>> = ms
            .iter()
            .map(|m| (0..n).map(|k| x[k] * m[k]).collect())
            .collect();
        let mut out = first.clone();
        out.extend(ms.iter().chain(&xm).map(Vec::as_slice));
        let by = fit(&y, &out);
        let c_prime = by[0];
        let delta = i.x1 - i.x0;
        let mut stats = vec![("c_prime".to_string(), c_prime)];
        let (mut nde, mut nie) = (c_prime, 0.0);
        for j in 0..nm {
            let a = fit(&ms[j], &first)[0];
            let (b, d) = (by[1 + nc + j], by[1 + nc + nm + j]);
            nde += d * (i.m_mean[j] + a * (i.x0 - i.x_mean));
            let nie_j = a * (b + d * i.x1) * delta;
            nie += nie_j;
            stats.extend([
                (key("a", j), a),
                (key("b", j), b),
                (key("interaction", j), d),
            ]);
            if nm > 1 {
                stats.push((named("natural_indirect", j), nie_j));
            }
        }
        stats.push(("natural_direct".into(), nde * delta));
        stats.push(("natural_indirect".into(), nie));
        return stats;
    }
    let md = design.moderation.as_ref().unwrap();
    let spec = model.moderation.as_ref().unwrap();
    // The moderator terms: W less its shift, or a categorical W's level
    // indicators (against the lowest), each with whether the fixed effects
    // absorb it; where the effects are evaluated, in the terms' coordinates.
    let (terms, u): (Vec<Vec<f64>>, Vec<Vec<f64>>) = match md.categorical() {
        true => {
            let levels: Vec<f64> = md.values.iter().map(|(_, v)| *v).collect();
            let terms = levels[1..]
                .iter()
                .map(|&l| wv.iter().map(|&v| f64::from(u8::from(v == l))).collect())
                .collect();
            let t = levels.len() - 1;
            let u = (0..levels.len())
                .map(|k| (0..t).map(|i| f64::from(u8::from(i + 1 == k))).collect())
                .collect();
            (terms, u)
        }
        false => (
            vec![wv.iter().map(|v| v - w_shift).collect()],
            md.values
                .iter()
                .map(|(_, v)| vec![v - md.w_shift])
                .collect(),
        ),
    };
    let nt = terms.len();
    // A term's key: `a3`, then `a3_2`, ...
    let termed = |base: &str, t: usize| match t {
        0 => base.to_string(),
        t => format!("{base}_{}", t + 1),
    };
    let xw: Vec<Vec<f64>> = terms
        .iter()
        .map(|w| (0..n).map(|i| (x[i] - x_shift) * w[i]).collect())
        .collect();
    let own: Vec<&[f64]> = terms
        .iter()
        .zip(&md.terms)
        .filter(|(_, term)| term.w.is_some())
        .map(|(w, _)| w.as_slice())
        .collect();
    let mut med = first.clone();
    if spec.a {
        med.extend(&own);
        med.extend(xw.iter().map(Vec::as_slice));
    }
    let mut out = first.clone();
    out.extend(ms.iter().map(Vec::as_slice));
    if spec.b || spec.direct {
        out.extend(&own);
    }
    let b3_at = out.len();
    // Each term's M_j * W, term by term.
    let mw: Vec<Vec<f64>> = terms
        .iter()
        .flat_map(|w| {
            ms.iter()
                .map(move |m| (0..n).map(|i| m[i] * w[i]).collect())
        })
        .collect();
    if spec.b {
        out.extend(mw.iter().map(Vec::as_slice));
    }
    if spec.direct {
        out.extend(xw.iter().map(Vec::as_slice));
    }
    let by = fit(&y, &out);
    let c_prime = by[0];
    let c3: Vec<f64> = (0..nt)
        .map(|t| match spec.direct {
            true => by[out.len() - nt + t],
            false => 0.0,
        })
        .collect();
    let dot = |c: &[f64], u: &[f64]| c.iter().zip(u).map(|(c, u)| c * u).sum::<f64>();
    let mut stats = vec![("c_prime".to_string(), c_prime)];
    if spec.direct {
        for (t, &c3) in c3.iter().enumerate() {
            stats.push((termed("c3_prime", t), c3));
        }
        for (k, v) in u.iter().enumerate() {
            stats.push((format!("conditional_direct:{k}"), c_prime + dot(&c3, v)));
        }
    }
    // (later, earlier) moderator values of each difference.
    let differences: Vec<(usize, usize)> = match md.categorical() {
        true => (1..u.len()).map(|k| (k, 0)).collect(),
        false => vec![(u.len() - 1, 0)],
    };
    let mut omega_total = vec![0.0; u.len()];
    let mut index_total = vec![0.0; nt];
    let mut difference_total = vec![0.0; differences.len()];
    for j in 0..nm {
        let bm = fit(&ms[j], &med);
        let (a1, b1) = (bm[0], by[1 + nc + j]);
        let a3: Vec<f64> = (0..nt)
            .map(|t| if spec.a { bm[med.len() - nt + t] } else { 0.0 })
            .collect();
        let b3: Vec<f64> = (0..nt)
            .map(|t| if spec.b { by[b3_at + t * nm + j] } else { 0.0 })
            .collect();
        let omega = |u: &[f64]| (a1 + dot(&a3, u)) * (b1 + dot(&b3, u));
        stats.extend([(key("a", j), a1), (key("b", j), b1)]);
        for t in 0..nt {
            if spec.a {
                stats.push((key(&termed("a3", t), j), a3[t]));
            }
            if spec.b {
                stats.push((key(&termed("b3", t), j), b3[t]));
            }
        }
        for (k, v) in u.iter().enumerate() {
            omega_total[k] += omega(v);
            if nm > 1 {
                stats.push((named(&format!("conditional_indirect:{k}"), j), omega(v)));
            }
        }
        if spec.a != spec.b {
            for t in 0..nt {
                let index = if spec.a { a3[t] * b1 } else { a1 * b3[t] };
                index_total[t] += index;
                if nm > 1 {
                    stats.push((named(&termed("index_moderated_mediation", t), j), index));
                }
            }
        }
        if spec.a && spec.b {
            for (d, &(later, earlier)) in differences.iter().enumerate() {
                let difference = omega(&u[later]) - omega(&u[earlier]);
                difference_total[d] += difference;
                if nm > 1 {
                    stats.push((named(&termed("indirect_difference", d), j), difference));
                }
            }
        }
    }
    for (k, total) in omega_total.into_iter().enumerate() {
        stats.push((format!("conditional_indirect:{k}"), total));
    }
    if spec.a != spec.b {
        for (t, total) in index_total.into_iter().enumerate() {
            stats.push((termed("index_moderated_mediation", t), total));
        }
    }
    if spec.a && spec.b {
        for (d, total) in difference_total.into_iter().enumerate() {
            stats.push((termed("indirect_difference", d), total));
        }
    }
    stats
}

#[test]
fn replicates_match_a_refit_of_the_materialised_resamples() {
    let table = read_csv(&common::fixture("moderated.csv")).unwrap();
    let cases = [
        (true, false, false, false, "w"),
        (false, true, false, false, "w"),
        (true, true, true, true, "w"),
        (true, false, false, false, "size"),
    ];
    for (a, b, direct, center, moderator) in cases {
        let model = moderated(a, b, direct, center, moderator);
        check_replicates(&table, &model);
    }
    // A categorical W: three levels within units (models 59, 7 and 14),
    // and absorbed by the unit effects.
    let levels = with_levels(&table);
    for model in [
        categorical(true, true, true, "level"),
        categorical(true, false, false, "level"),
        categorical(false, true, false, "level"),
        categorical(true, true, true, "tier"),
        parallel(categorical(true, true, false, "level")),
    ] {
        check_replicates(&levels, &model);
    }
    let interaction = ModelSpec {
        moderation: None,
        interaction: Some(Interaction::default()),
        ..spec(
            FixedEffects::UnitTime,
            moderation_of(&serde_json::json!({"moderated": ["a"], "center": false})),
        )
    };
    check_replicates(&table, &interaction);
    // Two mediators, each with its own moderated paths or X*M_j.
    for model in [
        moderated(true, true, false, false, "w"),
        moderated(true, true, true, true, "w"),
        moderated(false, true, false, false, "size"),
        interaction,
    ] {
        check_replicates(&table, &parallel(model));
    }
}

/// `model` with a second mediator, c2 (a control otherwise).
fn parallel(model: ModelSpec) -> ModelSpec {
    with_mediators(model, &serde_json::json!(["m", "c2"]))
}

/// Six pairs replicates of `model` against the oracle's refit.
fn check_replicates(table: &Table, model: &ModelSpec) {
    {
        let (_panel, design, fit) = common::fitted(&table, model);
        let g = design.n_clusters;
        let plan = WeightPlan::new(Scheme::Pairs, 42, g, None);
        let engine = CpuEngine::new(&design, &fit, plan.clone(), 7, 2, false).unwrap();
        let layout = engine.layout();
        let replicates = 6;
        let mut fast = vec![0.0; replicates * layout.len()];
        assert_eq!(engine.compute(0, &mut fast).unwrap(), 0);
        let mut w = vec![0.0; g];
        for r in 0..replicates {
            plan.fill(r as u64, &mut w);
            let row = &fast[r * layout.len()..(r + 1) * layout.len()];
            let want = oracle(table, model, &design, &w);
            // The oracle gives every statistic the model adds.
            for key in layout.moderation.keys(&model.mediators) {
                let key = key.to_string();
                assert!(want.iter().any(|(k, _)| *k == key), "{model:?}: no {key}");
            }
            for (key, want) in want {
                let i = layout.index_of(&key, &model.mediators).unwrap();
                assert!(
                    rel_err(row[i], want) < 1e-9,
                    "{model:?} replicate {r} {key}: {} vs {want}",
                    row[i]
                );
            }
        }
    }
}

/// The permutation test of moderated and interaction models: replicate r
/// is the full analysis of the data with unit u's treatment series
/// replaced by unit donors(r)[u]'s, its products with the treatment (X*W,
/// X*M) formed anew from the rows; the oracle refits it by QR. Models 59
/// centred, 7 by a moderator the unit effects absorb, 14 (no product with
/// X: only the treatment's row moves) and the interaction model, on the
/// balanced fixture and with the last year of ten units missing.
#[test]
fn permutation_replicates_are_refits_of_the_permuted_data() {
    let full = read_csv(&common::fixture("moderated.csv")).unwrap();
    let unbalanced = unbalanced(&full);
    let interaction = ModelSpec {
        moderation: None,
        interaction: Some(Interaction::default()),
        ..moderated(true, false, false, false, "w")
    };
    let models = [
        moderated(true, true, true, true, "w"),
        moderated(true, false, false, false, "size"),
        moderated(false, true, false, false, "w"),
        interaction,
        categorical(true, true, true, "level"),
        categorical(true, false, true, "tier"),
    ];
    let (full, unbalanced) = (with_levels(&full), with_levels(&unbalanced));
    for table in [&full, &unbalanced] {
        for model in &models {
            check_permutation(table, model);
            check_permutation(table, &parallel(model.clone()));
        }
    }
}

/// `full` without the last year of its first ten units (two blocks of
/// units observed in the same periods).
fn unbalanced(full: &Table) -> Table {
    let mut unbalanced = full.clone();
    let (unit, time) = (full.column("unit").unwrap(), full.column("time").unwrap());
    let last = full.rows.iter().map(|r| r[time].clone()).max().unwrap();
    let units: std::collections::BTreeSet<String> =
        full.rows.iter().map(|r| r[unit].clone()).collect();
    let short: Vec<String> = units.into_iter().take(10).collect();
    let keep: Vec<bool> = full
        .rows
        .iter()
        .map(|r| !(r[time] == last && short.contains(&r[unit])))
        .collect();
    unbalanced.rows = full
        .rows
        .iter()
        .zip(&keep)
        .filter(|p| *p.1)
        .map(|p| p.0.clone())
        .collect();
    unbalanced.lines = full
        .lines
        .iter()
        .zip(&keep)
        .filter(|p| *p.1)
        .map(|p| *p.0)
        .collect();
    unbalanced
}

/// Eight permutation replicates of `model` on `table` against the
/// oracle's refit of the permuted data.
fn check_permutation(table: &Table, model: &ModelSpec) {
    use medsim::internals::resample::permutation::PermutationEngine;
    let (panel, design, _fit) = common::fitted(table, model);
    let engine = PermutationEngine::new(&design, &panel, 11, 3, 2).unwrap();
    let layout = engine.layout();
    let replicates = 8;
    let mut fast = vec![0.0; replicates * layout.len()];
    assert_eq!(engine.compute(0, &mut fast).unwrap(), 0);
    let [unit, time, x] = ["unit", "time", "x"].map(|c| table.column(c).unwrap());
    let row_of: std::collections::HashMap<(String, String), usize> = table
        .rows
        .iter()
        .enumerate()
        .map(|(i, r)| ((r[unit].clone(), r[time].clone()), i))
        .collect();
    let code = |label: &str| panel.unit.levels.iter().position(|l| l == label).unwrap();
    let ones = vec![1.0; design.n_clusters];
    let mut moved = 0;
    for r in 0..replicates {
        let donors = engine.donors(r as u64);
        let mut permuted = table.clone();
        for row in permuted.rows.iter_mut() {
            let donor = &panel.unit.levels[donors[code(&row[unit])] as usize];
            moved += usize::from(*donor != row[unit]);
            row[x] = table.rows[row_of[&(donor.clone(), row[time].clone())]][x].clone();
        }
        let got = &fast[r * layout.len()..(r + 1) * layout.len()];
        for (key, want) in oracle(&permuted, model, &design, &ones) {
            let i = layout.index_of(&key, &model.mediators).unwrap();
            assert!(
                (got[i] - want).abs() < 1e-9 * want.abs().max(1e-3),
                "{model:?} permutation {r} {key}: {} vs {want}",
                got[i]
            );
        }
    }
    assert!(moved > 0, "no unit was ever permuted");
}

/// The GPU engine's permutation replicates (f64, f32) of moderated and
/// interaction models are the CPU engine's: the products with the
/// treatment re-formed from each permuted series (tabulated per donor and
/// recipient, `crate::gpu::permute`), with unit effects (demeaned within
/// the recipient) and without (centred over all rows: a change of mean),
/// one mediator and two, on a balanced and an unbalanced panel. Permuting
/// the treatment drives c and c' to about
/// zero, so each engine is held to a fraction of each statistic's spread
/// (f64 1e-9, f32 1e-4), and the two ratios over c and c' are left out.
#[test]
fn every_engine_gives_the_cpu_engines_permutation_replicates() {
    let table = read_csv(&common::fixture("moderated.csv")).unwrap();
    let interaction = |fe| ModelSpec {
        controls: vec!["c1".into(), "c2".into()],
        interaction: Some(Interaction::default()),
        ..ModelSpec::xmy("unit", "time", &[], fe)
    };
    let without = |mut spec: ModelSpec| {
        spec.fixed_effects = FixedEffects::None;
        spec
    };
    let models = [
        ("model 58", moderated(true, true, false, false, "w")),
        (
            "model 59 centred, pooled",
            without(moderated(true, true, true, true, "w")),
        ),
        (
            "model 7 absorbed",
            moderated(true, false, false, false, "size"),
        ),
        ("model 14", moderated(false, true, false, false, "w")),
        ("interaction", interaction(FixedEffects::UnitTime)),
        ("interaction, pooled", interaction(FixedEffects::None)),
        (
            "model 59, two mediators",
            parallel(moderated(true, true, true, false, "w")),
        ),
        (
            "interaction, two mediators",
            parallel(interaction(FixedEffects::UnitTime)),
        ),
        (
            "model 59 categorical",
            categorical(true, true, true, "level"),
        ),
    ];
    let table = with_levels(&table);
    // And on an unbalanced panel: two blocks of units exchange series.
    let short = unbalanced(&table);
    let cases = models
        .iter()
        .map(|(name, spec)| (name.to_string(), spec, &table))
        .chain(std::iter::once((
            "model 59 centred, pooled, unbalanced".to_string(),
            &models[1].1,
            &short,
        )))
        .chain(std::iter::once((
            "interaction, unbalanced".to_string(),
            &models[4].1,
            &short,
        )));
    for (name, spec, table) in cases {
        let (panel, design, fit) = common::fitted(table, spec);
        let engines = common::permutation_engines(&design, &fit, &panel, 9)
            .into_iter()
            .map(|(label, engine, tol)| {
                let tol = match tol {
                    common::Tolerance::Relative(t) => common::Tolerance::SdFraction(t),
                    sd => sd,
                };
                (label, engine, tol)
            })
            .collect();
        let layout = medsim::internals::model::replicate::StatLayout::of(&design);
        let ratios = [layout.proportion(), layout.suppression_share()];
        common::engines_agree(engines, 200, &name, &ratios);
    }
}

/// A permutation run of a moderated and of an interaction model (backend
/// auto: the CPU engine) tests what permuting the treatment nulls: the
/// conditional effects, the index or difference, a3, c3', the interaction
/// and the natural effects; not b or b3 (M*W), which it leaves be.
#[test]
fn permutation_runs_test_what_permuting_the_treatment_nulls() {
    let interaction = ModelSpec {
        moderation: None,
        interaction: Some(Interaction::default()),
        ..moderated(true, false, false, false, "w")
    };
    for model in [moderated(true, true, true, false, "w"), interaction] {
        let resampling = medsim::ResampleSpec {
            scheme: Scheme::Permutation,
            replicates: 199,
            methods: vec![],
            ..medsim::ResampleSpec::default()
        };
        let summary = resampled("permutation", model.clone(), resampling);
        let resampling = summary.resampling.as_ref().unwrap();
        assert_eq!(resampling.engine.backend, "cpu");
        let p = |key: &str| summary.effect(key).unwrap().bootstrap.unwrap().p_value;
        let (tested, untested): (&[&str], &[&str]) = match model.interaction {
            Some(_) => (
                &[
                    "indirect",
                    "interaction",
                    "natural_direct",
                    "natural_indirect",
                ],
                &["b"],
            ),
            None => (
                &[
                    "a3",
                    "c3_prime",
                    "conditional_indirect:0",
                    "conditional_direct:2",
                    "indirect_difference",
                ],
                &["b", "b3"],
            ),
        };
        for key in tested {
            let p = p(key).unwrap_or_else(|| panic!("{key} has no permutation p-value"));
            assert!(p > 0.0 && p <= 1.0, "{key}: {p}");
        }
        for key in untested {
            assert_eq!(p(key), None, "{key}");
        }
    }
}

/// The engines (CPU, and the GPU in f64 where the adapter has it and in
/// f32) give the same replicates of moderated models (PROCESS 7, 14, 58
/// and 59 centred, 7 by a moderator the unit effects absorb: the GPU
/// solves each equation as a system of its own) and of the interaction
/// model, for every reweighting scheme and wild.
#[test]
fn every_engine_gives_the_cpu_engines_moderated_and_interaction_replicates() {
    let table = read_csv(&common::fixture("moderated.csv")).unwrap();
    let model = ModelSpec {
        controls: vec!["c1".into(), "c2".into()],
        interaction: Some(Interaction::default()),
        ..ModelSpec::xmy("unit", "time", &[], FixedEffects::UnitTime)
    };
    let wild = Scheme::Wild(WildWeights::Webb);
    let models = [
        ("model 7", moderated(true, false, false, false, "w")),
        ("model 14", moderated(false, true, false, false, "w")),
        ("model 58", moderated(true, true, false, false, "w")),
        ("model 59 centred", moderated(true, true, true, true, "w")),
        (
            "model 7 absorbed",
            moderated(true, false, false, false, "size"),
        ),
        ("interaction", model.clone()),
        (
            "model 58, two mediators",
            parallel(moderated(true, true, false, false, "w")),
        ),
        (
            "model 59 centred, two mediators",
            parallel(moderated(true, true, true, true, "w")),
        ),
        ("interaction, two mediators", parallel(model.clone())),
        (
            "model 59 categorical",
            categorical(true, true, true, "level"),
        ),
        (
            "model 7 categorical absorbed, two mediators",
            parallel(categorical(true, false, false, "tier")),
        ),
    ];
    let table = with_levels(&table);
    for (name, spec) in &models {
        let (_panel, design, fit) = common::fitted(&table, spec);
        let schemes = [
            Scheme::Pairs,
            Scheme::Bayes,
            Scheme::Poisson,
            Scheme::Jackknife,
            wild,
        ];
        for scheme in schemes {
            let plan = WeightPlan::new(scheme, 3, design.n_clusters, None);
            let count = match scheme {
                Scheme::Jackknife => design.n_clusters,
                _ => 200,
            };
            // Studentized too (not wild): each replicate's own SEs.
            let studentized: &[bool] = match scheme {
                Scheme::Wild(_) => &[false],
                _ => &[false, true],
            };
            for &studentize in studentized {
                let what = format!("{name} {scheme:?} studentized {studentize}");
                // In f32, the two ratios (the proportion mediated, the
                // suppression share) are left out: their numerators and
                // denominators are checked, but model 14's c' (the direct
                // effect at W = 0, outside W's range) comes near 0 in a
                // replicate, where a ratio's f32 error grows as 1/c'^2.
                let (f32, exact): (Vec<_>, Vec<_>) =
                    common::engines(&design, &fit, &plan, studentize)
                        .into_iter()
                        .partition(|e| e.0.contains("F32"));
                common::engines_agree(exact, count, &what, &[]);
                if !f32.is_empty() {
                    let cpu =
                        CpuEngine::new(&design, &fit, plan.clone(), 7, 2, studentize).unwrap();
                    let mut engines: Vec<common::Labelled> = vec![(
                        "cpu".into(),
                        Box::new(cpu),
                        common::Tolerance::Relative(1e-9),
                    )];
                    engines.extend(f32);
                    let lay = engines[0].1.layout();
                    let ratios = [lay.proportion(), lay.suppression_share()];
                    common::engines_agree(engines, count, &what, &ratios);
                }
            }
        }
    }
    let (_panel, design, fit) = common::fitted(&table, &model);
    // The wild scheme's restricted test of the interaction coefficient is
    // that of X*M in the outcome equation.
    let resampling = medsim::ResampleSpec {
        scheme: wild,
        replicates: 299,
        methods: vec![],
        wild_tests: true,
        backend: medsim::internals::resample::spec::BackendChoice::Cpu,
        ..medsim::ResampleSpec::default()
    };
    let summary = resampled("interaction", model, resampling);
    let xm = design.interaction.as_ref().unwrap().xm[0];
    let seed = summary.inference.seed;
    let want = common::wcr_p_value(&design, &fit, 2, xm, wild, seed, 299);
    let got = summary
        .effect("interaction")
        .unwrap()
        .bootstrap
        .unwrap()
        .p_value;
    assert_eq!(got, Some(want));
}

/// The wild (score) bootstrap of PROCESS model 59: each replicate's
/// coefficients are the full sample's plus the cluster influences weighted
/// by its multipliers (a3, b3, c3' too), its conditional effects those
/// coefficients' functions; the restricted test of a3 is that of X*W in
/// the mediator equation. (The GPU's wild replicates are held to the
/// CPU's by `every_engine_gives_the_cpu_engines_moderated_and_interaction_replicates`.)
#[test]
fn the_wild_bootstrap_resamples_a_moderated_model() {
    let table = read_csv(&common::fixture("moderated.csv")).unwrap();
    let moderation = Moderation {
        moderator: "w".into(),
        a: true,
        b: true,
        direct: true,
        center: true,
        at: ModeratorValues::MeanSd,
    };
    let model = spec(FixedEffects::UnitTime, moderation);
    let (_panel, design, fit) = common::fitted(&table, &model);
    let g = design.n_clusters;
    let wild = Scheme::Wild(WildWeights::Mammen);
    let plan = WeightPlan::new(wild, 8, g, None);
    let engine = CpuEngine::new(&design, &fit, plan.clone(), 16, 2, false).unwrap();
    let layout = engine.layout();
    let (n, count) = (layout.len(), 40);
    let mut out = vec![0.0; count * n];
    assert_eq!(engine.compute(0, &mut out).unwrap(), 0);
    let md = design.moderation.as_ref().unwrap();
    let (x, m, xw, mw) = (
        design.layout.treatment(),
        design.layout.mediator(0),
        md.terms[0].xw.unwrap(),
        md.terms[0].mw[0],
    );
    let u: Vec<f64> = md.values.iter().map(|(_, v)| v - md.w_shift).collect();
    let mut v = vec![0.0; g];
    let mediators = ["m".to_string()];
    for r in 0..count {
        plan.fill(r as u64, &mut v);
        let star = |e: usize, col: usize| {
            let i = fit.index(e, col);
            let moved: f64 = (0..g).map(|c| v[c] * fit.influence[c * fit.dim + i]).sum();
            fit.coef(e, col) + moved
        };
        // Equations: total, mediator, outcome.
        let (a1, a3) = (star(1, x), star(1, xw));
        let (b1, b3, cp, c3) = (star(2, m), star(2, mw), star(2, x), star(2, xw));
        let row = &out[r * n..(r + 1) * n];
        let mut want = vec![
            ("a".to_string(), a1),
            ("a3".into(), a3),
            ("b3".into(), b3),
            ("c3_prime".into(), c3),
        ];
        for (k, &w) in u.iter().enumerate() {
            want.push((
                format!("conditional_indirect:{k}"),
                (a1 + a3 * w) * (b1 + b3 * w),
            ));
            want.push((format!("conditional_direct:{k}"), cp + c3 * w));
        }
        for (key, want) in want {
            let got = row[layout.index_of(&key, &mediators).unwrap()];
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1e-3),
                "replicate {r} {key}: {got} vs {want}"
            );
        }
    }
    let resampling = medsim::ResampleSpec {
        scheme: wild,
        replicates: 299,
        methods: vec![],
        wild_tests: true,
        backend: medsim::internals::resample::spec::BackendChoice::Cpu,
        ..medsim::ResampleSpec::default()
    };
    let summary = resampled("wild", model, resampling);
    let seed = summary.inference.seed;
    let want = common::wcr_p_value(&design, &fit, 1, xw, wild, seed, 299);
    let got = summary.effect("a3").unwrap().bootstrap.unwrap().p_value;
    assert_eq!(got, Some(want));
    // The Johnson-Neyman region is drawn from the wild replicates too.
    assert!(summary.moderation.unwrap().johnson_neyman.is_some());
}

#[test]
fn centring_moves_the_paths_not_the_conditional_effects() {
    let fit = |center: bool| {
        run(spec(
            FixedEffects::UnitTime,
            Moderation {
                moderator: "w".into(),
                a: true,
                b: true,
                direct: true,
                center,
                at: ModeratorValues::Values(vec![2.0, 3.5]),
            },
        ))
    };
    let (raw, centred) = (fit(false), fit(true));
    for key in [
        "a3",
        "b3",
        "c3_prime",
        "conditional_indirect:0",
        "conditional_indirect:1",
        "conditional_direct:1",
        "indirect_difference",
    ] {
        let (r, c) = (raw.effect(key).unwrap(), centred.effect(key).unwrap());
        assert!(
            rel_err(c.estimate, r.estimate) < 1e-9,
            "{key}: {} vs {}",
            c.estimate,
            r.estimate
        );
        assert!(rel_err(c.se.unwrap(), r.se.unwrap()) < 1e-7, "{key} SE");
    }
    // a is the effect at W's mean once centred: the conditional a there.
    let shift = centred.moderation.as_ref().unwrap().shift;
    let (a1, a3) = (
        raw.effect("a").unwrap().estimate,
        raw.effect("a3").unwrap().estimate,
    );
    let a = centred.effect("a").unwrap().estimate;
    assert!(
        rel_err(a, a1 + a3 * shift) < 1e-9,
        "{a} vs {}",
        a1 + a3 * shift
    );
}

/// A categorical W of two levels 0 and 1 is the continuous W evaluated at
/// 0 and 1: the same model, effect for effect; its report names the level.
#[test]
fn a_two_level_categorical_moderator_is_the_zero_one_moderator() {
    let table = with_levels(&read_csv(&common::fixture("moderated.csv")).unwrap());
    // high = 1 where level is 5, else 0.
    let mut binary = table.clone();
    let at = binary.column("level").unwrap();
    binary.headers.push("high".into());
    for row in &mut binary.rows {
        let high = if row[at] == "5" { "1" } else { "0" };
        row.push(high.into());
    }
    let continuous = ModelSpec {
        moderation: Some(Moderation {
            at: ModeratorValues::Values(vec![0.0, 1.0]),
            ..moderated(true, true, true, false, "high")
                .moderation
                .unwrap()
        }),
        ..moderated(true, true, true, false, "high")
    };
    let data = || DataSource::Table(binary.clone());
    let (one, two) = (
        run_on(data(), continuous),
        run_on(data(), categorical(true, true, true, "high")),
    );
    assert_eq!(
        one.effects.keys().collect::<Vec<_>>(),
        two.effects.keys().collect::<Vec<_>>()
    );
    for (key, e) in &one.effects {
        let other = &two.effects[key];
        assert!(
            rel_err(other.estimate, e.estimate) < 1e-12,
            "{key}: {} vs {}",
            other.estimate,
            e.estimate
        );
    }
    let md = two.moderation.as_ref().unwrap();
    assert!(md.categorical);
    assert_eq!(md.term_name(0), "high=1");
}

/// Groups of a model with a categorical W: each group's a3_2 is the same
/// level's as the run's, so a group without one of the levels is refused
/// by key; with every level in each group the run goes through.
#[test]
fn a_group_must_have_every_level_of_a_categorical_moderator() {
    let dir = tempfile::tempdir().unwrap();
    let mut table = with_levels(&read_csv(&common::fixture("moderated.csv")).unwrap());
    let (unit, level) = (
        table.column("unit").unwrap(),
        table.column("level").unwrap(),
    );
    table.headers.push("half".into());
    for row in &mut table.rows {
        let first = row[unit].as_str() < "u040";
        row.push(if first { "first" } else { "second" }.into());
    }
    let mut lacking = table.clone();
    for row in &mut lacking.rows {
        if row[row.len() - 1] == "first" && row[level] == "5" {
            row[level] = "2".into();
        }
    }
    let run = |t: &Table, file: &str| {
        medsim::internals::data::table::write_csv(t, &dir.path().join(file)).unwrap();
        let mut args = common::fixture_run(file);
        args.extend([
            "--mediator",
            "m",
            "--controls",
            "c1,c2",
            "--moderator",
            "level",
            "--at",
            "levels",
            "--moderated",
            "a,b",
            "--group",
            "half",
            "--also-mediators",
            "",
            "-B",
            "99",
            "-q",
            "--no-plots",
        ]);
        common::medsim(dir.path(), &args)
    };
    let ok = run(&table, "all.csv");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = run(&lacking, "lacking.csv");
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("half=first")
            && err.contains("takes the levels 1, 2 in this group, not the run's 1, 2, 5"),
        "{err}"
    );
}

#[test]
fn unsupported_and_wrong_options_are_refused_by_key() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["--moderated", "a"],
            "--moderated: applies only with a moderator (model.moderator, --moderator)",
        ),
        (
            &["--moderator", "w", "--moderated", "a,x"],
            "'x' is not a path",
        ),
        (
            &["--moderator", "w", "--at", "mid"],
            "'mid' is not a choice of moderator values",
        ),
        (
            &["--interaction", "--instrument", "c2", "--controls", "c1"],
            "the interaction model has no instrument; this one has 1 (model.instrument, --instrument)",
        ),
        (
            &["--interaction", "--moderator", "w"],
            "a treatment-mediator interaction with a moderator",
        ),
        (&["--contrast", "1,2"], "applies only with the interaction"),
        (
            &["--moderator", "w", "--at", "levels", "--center"],
            "invalid option --center: a categorical moderator (at = \"levels\") is coded as \
             indicators, which are not centred; set center = false",
        ),
        (
            &["--moderator", "w", "--at", "levels"],
            "the categorical moderator 'w' has 480 distinct values; at most 10 levels",
        ),
    ];
    common::assert_refused(&common::fixture("moderated.csv"), &cases);
}

/// The Johnson-Neyman curve and boundaries are the run's own percentile
/// intervals: asked for at a grid point, the conditional indirect effect's
/// interval is the curve's there, bit for bit; asked for at a boundary,
/// the interval's bound is zero (to the bisection's precision). On the
/// default panel, whose indirect effect fades with density (model 58).
#[test]
fn johnson_neyman_is_the_runs_percentile_interval() {
    let resampled = |at: Vec<f64>| {
        let mut model = medsim::default_spec();
        model.controls.retain(|c| c != "ln_pop_density");
        model.groups.clear();
        model.moderation = Some(Moderation {
            moderator: "ln_pop_density".into(),
            a: true,
            b: true,
            direct: false,
            center: true,
            at: ModeratorValues::Values(at),
        });
        let plan = RunPlan {
            resampling: Some(medsim::ResampleSpec {
                replicates: 999,
                methods: vec![medsim::internals::resample::intervals::Method::Percentile],
                backend: medsim::BackendChoice::Cpu,
                ..medsim::ResampleSpec::default()
            }),
            inference: InferenceSpec {
                mc_draws: 2000,
                levels: vec![0.9],
                ..InferenceSpec::default()
            },
            group_by: vec![],
            mediator_sets: vec![],
            ..RunPlan::new(
                "jn",
                DataSource::Synthetic(medsim::SyntheticParams::default()),
                model,
            )
        };
        medsim::run(&plan, &|_, _| Ok(())).unwrap()
    };
    let first = resampled(vec![6.0]);
    let jn = first
        .moderation
        .as_ref()
        .unwrap()
        .johnson_neyman
        .clone()
        .unwrap();
    assert_eq!((jn.method.as_str(), jn.level), ("percentile", 0.9));
    assert!(
        !jn.boundaries.is_empty(),
        "the fixture's effect crosses zero: {jn:?}"
    );
    let point = jn.curve[17];
    let mut at = vec![point.w];
    at.extend(&jn.boundaries);
    let again = resampled(at);
    let interval = |k: usize| {
        again
            .intervals
            .iter()
            .find(|i| i.effect == format!("conditional_indirect:{k}") && i.method == "percentile")
            .map(|i| (i.lower, i.upper))
            .unwrap()
    };
    assert_eq!(interval(0), (point.lower, point.upper));
    let spread = jn
        .curve
        .iter()
        .map(|p| p.upper - p.lower)
        .fold(0.0, f64::max);
    for k in 1..=jn.boundaries.len() {
        let (lo, hi) = interval(k);
        assert!(
            lo.abs().min(hi.abs()) < 1e-9 * spread,
            "boundary {k}: [{lo}, {hi}]"
        );
    }
}

/// Groups of a moderated run: each group's conditional effects are at the
/// run's moderator values (so groups and their contrasts compare the same
/// W), each is the group's own (a1 + a3 u)(b1 + b3 u) there, and each
/// group has its own Johnson-Neyman region, printed in the report.
#[test]
fn groups_share_the_runs_moderator_values_and_have_their_own_region() {
    let mut model = medsim::default_spec();
    model.controls.retain(|c| c != "ln_pop_density");
    model.groups = vec!["region".into()];
    model.moderation = Some(Moderation {
        moderator: "ln_pop_density".into(),
        a: true,
        b: true,
        direct: false,
        center: true,
        at: ModeratorValues::default(),
    });
    let plan = RunPlan {
        resampling: Some(medsim::ResampleSpec {
            replicates: 299,
            methods: vec![medsim::internals::resample::intervals::Method::Percentile],
            backend: medsim::BackendChoice::Cpu,
            ..medsim::ResampleSpec::default()
        }),
        inference: InferenceSpec {
            mc_draws: 2000,
            ..InferenceSpec::default()
        },
        group_by: vec!["region".into()],
        mediator_sets: vec![],
        ..RunPlan::new(
            "groups",
            DataSource::Synthetic(medsim::SyntheticParams::default()),
            model,
        )
    };
    let summary = medsim::run(&plan, &|_, _| Ok(())).unwrap();
    let run_values = &summary.moderation.as_ref().unwrap().values;
    assert_eq!(summary.groups.len(), 3);
    for (label, g) in &summary.groups {
        let md = g.moderation.as_ref().unwrap();
        assert_eq!(&md.values, run_values, "{label}");
        // Centred on the group's own mean.
        assert_ne!(md.shift, summary.moderation.as_ref().unwrap().shift);
        let e = |k: &str| g.effects[k].estimate;
        for (k, v) in md.values.iter().enumerate() {
            let u = v.value - md.shift;
            let want = (e("a") + e("a3") * u) * (e("b") + e("b3") * u);
            let got = e(&format!("conditional_indirect:{k}"));
            assert!(rel_err(got, want) < 1e-12, "{label} {k}: {got} vs {want}");
        }
        assert!(md.johnson_neyman.is_some(), "{label}");
    }
    let text = medsim::render_summary(&summary);
    for label in summary.groups.keys() {
        assert!(
            text.lines()
                .any(|l| l.starts_with(label.as_str()) && l.contains("interval of a*b")),
            "{label}: {text}"
        );
    }
}

/// The printed report names the interaction model's products, one per
/// mediator, and its natural effects per mediator.
#[test]
fn the_report_names_each_mediators_interaction() {
    let one = ModelSpec {
        controls: vec!["c1".into(), "c2".into()],
        interaction: Some(Interaction::default()),
        ..ModelSpec::xmy("unit", "time", &[], FixedEffects::UnitTime)
    };
    let text = medsim::render_summary(&run(one.clone()));
    let line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("inter "))
            .unwrap_or_else(|| panic!("no interaction line: {text}"))
            .to_string()
    };
    assert!(
        line(&text).starts_with("inter  y ~ x + m + x*m: natural effects of x from")
            && line(&text).contains("the mediator at its mean"),
        "{text}"
    );
    let text = medsim::render_summary(&run(parallel(one)));
    assert!(
        line(&text).starts_with("inter  y ~ x + m + c2 + x*m + x*c2: natural effects of x")
            && line(&text).contains("each mediator at its mean"),
        "{text}"
    );
    for want in ["NIE via m ", "NIE via c2 "] {
        assert!(text.lines().any(|l| l.starts_with(want)), "{want}: {text}");
    }
}
