//! The brute-force oracle: for each reweighting scheme, materialise every
//! resampled panel (a cluster drawn k times becomes k units with their own
//! fixed effects; continuous weights become weighted least squares), apply
//! the fixed effects from scratch, refit each equation by least squares
//! (Householder QR, no Gram matrices; for the wild bootstrap, refit each
//! equation on fitted values plus v_g times residuals), and compare with the fast path
//! (weights x per-cluster statistics, then the replicate solver) replicate by
//! replicate to 1e-9 relative. The same checks run against every engine
//! (`common::engines`): the CPU engine, and the GPU engine in f64 (1e-9
//! relative) and f32 (1e-4 of each statistic's spread) where there is an
//! adapter and it runs the scheme.

mod common;

use medsim::internals::data::synthetic::{SyntheticParams, generate};
use medsim::internals::model::design::Design;
use medsim::internals::model::estimate::fit_system;
use medsim::internals::model::mediation::equations;
use medsim::internals::model::panel::Panel;
use medsim::internals::model::spec::default_spec;
use medsim::internals::model::spec::{FixedEffects, ModelSpec};
use medsim::internals::resample::engine::{CpuEngine, Engine};
use medsim::internals::resample::permutation::{Exchange, PermutationEngine};
use medsim::internals::resample::scheme::{Scheme, WeightPlan, WildWeights};

/// One observation of a materialised resample.
struct Row {
    unit: usize,
    time: usize,
    /// The group of `unit+GROUP^time` effects (0 without them).
    group: usize,
    weight: f64,
    /// The cluster's raw weight (the wild bootstrap's v).
    v: f64,
    values: Vec<f64>, // treatment, controls, mediators, outcome
}

/// Statistics (a_j, b_j, a_j b_j, c, c', indirect, proportion, suppression
/// share, then the contrasts a_j b_j - a_k b_k) of a materialised panel,
/// refitted from raw rows.
#[allow(clippy::too_many_arguments)]
fn refit(
    rows: &[Row],
    n_units: usize,
    n_periods: usize,
    p: usize,
    m: usize,
    n_med_inst: usize,
    fe: FixedEffects,
    wild: Option<&[f64]>,
) -> Vec<f64> {
    let n = rows.len();
    let n_vals = rows[0].values.len();
    // Column 0..n_vals: the variables; then period dummies (or the intercept).
    let mut cols: Vec<Vec<f64>> = (0..n_vals)
        .map(|v| rows.iter().map(|r| r.values[v]).collect())
        .collect();
    let mut nuisance: Vec<Vec<f64>> = match fe {
        FixedEffects::None => vec![vec![1.0; n]],
        FixedEffects::Unit => vec![],
        FixedEffects::UnitTime => (1..n_periods)
            .map(|t| {
                rows.iter()
                    .map(|r| if r.time == t { 1.0 } else { 0.0 })
                    .collect()
            })
            .collect(),
        // A dummy per (group, period) cell of the materialised rows, but
        // each group's first period (the unit dummies span it).
        FixedEffects::UnitGroupTime => {
            let mut cells: Vec<(usize, usize)> = rows.iter().map(|r| (r.group, r.time)).collect();
            cells.sort_unstable();
            cells.dedup();
            cells
                .iter()
                .enumerate()
                .filter(|&(k, &(g, _))| k > 0 && cells[k - 1].0 == g)
                .map(|(_, &(g, t))| {
                    rows.iter()
                        .map(|r| {
                            if r.group == g && r.time == t {
                                1.0
                            } else {
                                0.0
                            }
                        })
                        .collect()
                })
                .collect()
        }
    };
    if fe.has_unit() {
        for col in cols.iter_mut().chain(nuisance.iter_mut()) {
            let mut sum = vec![0.0; n_units];
            let mut wsum = vec![0.0; n_units];
            for (r, v) in rows.iter().zip(col.iter()) {
                sum[r.unit] += r.weight * v;
                wsum[r.unit] += r.weight;
            }
            for (r, v) in rows.iter().zip(col.iter_mut()) {
                *v -= sum[r.unit] / wsum[r.unit];
            }
        }
    }
    let sw: Vec<f64> = rows.iter().map(|r| r.weight.sqrt()).collect();
    let weigh = |c: &Vec<f64>| -> Vec<f64> { c.iter().zip(&sw).map(|(v, s)| v * s).collect() };
    let base: Vec<Vec<f64>> = (0..1 + p)
        .map(|v| weigh(&cols[v]))
        .chain(nuisance.iter().map(weigh))
        .collect();
    // Instrument columns follow the mediators, the treatment's then the
    // mediators': an equation with an endogenous regressor is fitted by
    // two-stage least squares, literally: each regressor regressed on the
    // instruments (an instrumented treatment replaced by its excluded
    // instruments, in every equation; instrumented mediators by theirs, in
    // the outcome equation), the dependent variable on the fitted
    // regressors.
    let n_inst = n_vals - p - m - 2 - n_med_inst;
    let k0 = base.len();
    let x_inst: Vec<Vec<f64>> = (0..n_inst).map(|k| weigh(&cols[1 + p + m + k])).collect();
    let m_inst: Vec<Vec<f64>> = (0..n_med_inst)
        .map(|k| weigh(&cols[1 + p + m + n_inst + k]))
        .collect();
    let solve = |x: &Vec<Vec<f64>>, dep: Vec<f64>| -> Vec<f64> {
        let mediators_endogenous = n_med_inst > 0 && x.len() > k0;
        if n_inst == 0 && !mediators_endogenous {
            return common::qr_least_squares(x.clone(), dep);
        }
        let mut inst = match n_inst {
            0 => vec![x[0].clone()],
            _ => x_inst.clone(),
        };
        inst.extend(x[1..k0].iter().cloned());
        match mediators_endogenous {
            true => inst.extend(m_inst.iter().cloned()),
            false => inst.extend(x[k0..].iter().cloned()),
        }
        let fitted: Vec<Vec<f64>> = x
            .iter()
            .map(|col| {
                let g = common::qr_least_squares(inst.clone(), col.clone());
                (0..n)
                    .map(|i| inst.iter().zip(&g).map(|(c, b)| c[i] * b).sum())
                    .collect()
            })
            .collect();
        common::qr_least_squares(fitted, dep)
    };
    // The wild bootstrap (fixed regressors) replaces each equation's
    // dependent variable by fitted + v * residual, v the row's cluster
    // weight (residuals of 2SLS with the regressors themselves).
    let star = |x: &Vec<Vec<f64>>, dep: Vec<f64>| -> Vec<f64> {
        let Some(v) = wild else { return dep };
        let beta = solve(x, dep.clone());
        (0..n)
            .map(|i| {
                let fitted: f64 = x.iter().zip(&beta).map(|(col, b)| col[i] * b).sum();
                fitted + v[i] * (dep[i] - fitted)
            })
            .collect()
    };
    let y = weigh(&cols[n_vals - 1]);
    let c = solve(&base, star(&base, y.clone()))[0];
    let a: Vec<f64> = (0..m)
        .map(|j| solve(&base, star(&base, weigh(&cols[1 + p + j])))[0])
        .collect();
    let mut full = base.clone();
    full.extend((0..m).map(|j| weigh(&cols[1 + p + j])));
    let y_out = star(&full, y);
    let beta = solve(&full, y_out);
    let b: Vec<f64> = (0..m).map(|j| beta[k0 + j]).collect();
    let ab: Vec<f64> = (0..m).map(|j| a[j] * b[j]).collect();
    let indirect: f64 = ab.iter().sum();
    let mut out = a.clone();
    out.extend(&b);
    out.extend(&ab);
    out.extend([
        c,
        beta[0],
        indirect,
        indirect / c,
        (indirect / beta[0]).abs(),
    ]);
    // Pairwise contrasts of the specific indirect effects, j < k.
    for j in 0..m {
        for k in j + 1..m {
            out.push(ab[j] - ab[k]);
        }
    }
    out
}

/// Every reweighting scheme, and the wild bootstrap with Rademacher weights.
const REWEIGHTING: [Scheme; 5] = [
    Scheme::Pairs,
    Scheme::Bayes,
    Scheme::Poisson,
    Scheme::Jackknife,
    Scheme::Wild(WildWeights::Rademacher),
];

/// The synthetic panel at 30 cities x 5 years: small enough to refit often.
fn small_panel() -> medsim::internals::data::table::Table {
    generate(SyntheticParams {
        cities: 30,
        years: 5,
        seed: 3,
        ..SyntheticParams::default()
    })
}

/// The oracle's statistics of one replicate of `panel` with cluster weights
/// `w`: integer weights copy a cluster's rows into new units, continuous
/// weights weight them, wild weights multiply the residuals; then refit.
fn materialise_and_refit(panel: &Panel, spec: &ModelSpec, scheme: Scheme, w: &[f64]) -> Vec<f64> {
    let g = w.len();
    let (p, m) = (panel.n_controls, panel.n_mediators);
    // Materialise: integer weights copy the cluster's rows into new units,
    // continuous weights weight them.
    let wild = matches!(scheme, Scheme::Wild(_));
    let integer = !wild && w.iter().all(|v| v.fract() == 0.0);
    let mut rows = Vec::new();
    let mut n_units = 0;
    for cl in 0..g {
        let copies = if integer { w[cl] as usize } else { 1 };
        let weight = if integer || wild { 1.0 } else { w[cl] };
        for _ in 0..copies {
            let mut unit_map = std::collections::HashMap::new();
            for i in (0..panel.n_obs()).filter(|&i| panel.cluster.codes[i] as usize == cl) {
                let next = n_units + unit_map.len();
                let unit = *unit_map.entry(panel.unit.codes[i]).or_insert(next);
                rows.push(Row {
                    unit,
                    time: panel.time.codes[i] as usize,
                    group: panel.cell_group.as_ref().map_or(0, |f| f.codes[i] as usize),
                    weight,
                    v: w[cl],
                    values: panel.columns.iter().map(|c| c[i]).collect(),
                });
            }
            n_units += unit_map.len();
        }
    }
    let v: Vec<f64> = rows.iter().map(|r| r.v).collect();
    refit(
        &rows,
        n_units,
        panel.time.len(),
        p,
        m,
        panel.n_mediator_instruments,
        spec.fixed_effects,
        wild.then_some(&v[..]),
    )
}

fn check(spec: &ModelSpec, scheme: Scheme, strata: Option<&str>, replicates: u64) {
    check_on(&small_panel(), spec, scheme, strata, replicates);
}

fn check_on(
    table: &medsim::internals::data::table::Table,
    spec: &ModelSpec,
    scheme: Scheme,
    strata: Option<&str>,
    replicates: u64,
) {
    let panel = Panel::from_table(table, spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    let g = design.n_clusters;
    let strata_codes: Option<Vec<u32>> = strata.map(|s| {
        let f = panel.groups.iter().find(|f| f.name == s).unwrap();
        let mut codes = vec![0; g];
        for (&c, &v) in panel.cluster.codes.iter().zip(&f.codes) {
            codes[c as usize] = v;
        }
        codes
    });
    let plan = WeightPlan::new(scheme, 42, g, strata_codes.as_deref());
    let fit = fit_system(&design, &equations(&design)).unwrap();
    let engines = common::engines(&design, &fit, &plan, false);
    let n_stats = engines[0].1.layout().len();
    let mut oracles = Vec::new();
    let mut w = vec![0.0; g];
    for r in 0..replicates {
        let total = plan.fill(r, &mut w);
        let sum: f64 = w.iter().sum();
        assert!(
            (total - sum).abs() <= 1e-12 * g as f64,
            "total weight {total} vs {sum}"
        );
        let oracle = materialise_and_refit(&panel, spec, scheme, &w);
        assert_eq!(oracle.len(), n_stats);
        oracles.extend(oracle);
    }
    // The shared suite: every engine against the oracle.
    for (label, engine, tol) in &engines {
        let mut fast = vec![0.0; replicates as usize * n_stats];
        assert_eq!(
            engine.compute(0, &mut fast).unwrap(),
            0,
            "{label}: degenerate replicates"
        );
        common::assert_close(
            &format!("{label} {scheme:?}"),
            &fast,
            &oracles,
            n_stats,
            *tol,
        );
    }
    // The batch `medsim bench --stages` profiles is the same computation.
    if scheme != Scheme::Permutation {
        let cpu =
            CpuEngine::new(&design, &fit, plan.clone(), replicates as usize, 1, false).unwrap();
        let (mut profiled, mut computed) = (vec![0.0; oracles.len()], vec![0.0; oracles.len()]);
        let times = cpu.profile_batch(0, &mut profiled);
        cpu.compute(0, &mut computed).unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&profiled), bits(&computed), "{scheme:?}");
        assert!(times.gemm > 0.0 && times.solve > 0.0, "{times:?}");
    }
}

#[test]
fn pairs_matches_the_oracle() {
    check(&default_spec(), Scheme::Pairs, None, 25);
}

#[test]
fn stratified_pairs_matches_the_oracle() {
    check(&default_spec(), Scheme::Pairs, Some("region"), 15);
}

#[test]
fn bayes_matches_the_oracle() {
    check(&default_spec(), Scheme::Bayes, None, 15);
}

#[test]
fn poisson_matches_the_oracle() {
    check(&default_spec(), Scheme::Poisson, None, 15);
}

#[test]
fn jackknife_matches_the_oracle() {
    check(&default_spec(), Scheme::Jackknife, None, 30);
}

#[test]
fn wild_matches_the_oracle_for_every_weight_distribution() {
    for w in [
        WildWeights::Rademacher,
        WildWeights::Mammen,
        WildWeights::Webb,
        WildWeights::Normal,
    ] {
        check(&default_spec(), Scheme::Wild(w), None, 8);
    }
    let mut spec = default_spec();
    spec.mediators = vec!["agglom_sec".into(), "agglom_ter".into()];
    spec.fixed_effects = FixedEffects::None;
    spec.cluster = "province".into();
    check(&spec, Scheme::Wild(WildWeights::Webb), None, 8);
}

#[test]
fn other_fixed_effects_and_two_mediators_match_the_oracle() {
    let mut spec = default_spec();
    spec.mediators = vec!["agglom_sec".into(), "agglom_ter".into()];
    for fe in [
        FixedEffects::None,
        FixedEffects::Unit,
        FixedEffects::UnitTime,
    ] {
        spec.fixed_effects = fe;
        check(&spec, Scheme::Pairs, None, 10);
    }
    spec.cluster = "province".into();
    check(&spec, Scheme::Bayes, None, 10);
}

/// The instrumented model (`--instrument`): every reweighting scheme's
/// replicates equal the literal two-stage refit of the materialised
/// resample, with one mediator and two, one instrument and two, up to the
/// study's ten years; every engine (CPU, GPU f64 and f32).
#[test]
fn instrumented_models_match_the_two_stage_oracle() {
    let mut spec = default_spec();
    spec.instruments = vec!["iv_post1984".into()];
    for scheme in REWEIGHTING {
        check(&spec, scheme, None, 8);
    }
    check(&spec, Scheme::Pairs, Some("region"), 8);
    // Ten years, as the study: the two-stage systems reach 17 columns.
    let ten_years = generate(SyntheticParams {
        cities: 40,
        years: 10,
        seed: 3,
        ..SyntheticParams::default()
    });
    check_on(&ten_years, &spec, Scheme::Pairs, None, 8);
    spec.mediators = vec!["agglom_sec".into(), "agglom_ter".into()];
    check_on(&ten_years, &spec, Scheme::Poisson, None, 8);
    spec.fixed_effects = FixedEffects::Unit;
    check(&spec, Scheme::Bayes, None, 8);
    // Two instruments and two mediators: the pyfixest IV fixture panel.
    let table =
        medsim::internals::data::table::read_csv(&common::fixture("instrumented_two.csv")).unwrap();
    let two = ModelSpec {
        unit: "unit".into(),
        time: "time".into(),
        outcome: "y".into(),
        treatment: "x".into(),
        mediators: vec!["m1".into(), "m2".into()],
        controls: vec!["c1".into(), "c2".into()],
        instruments: vec!["z1".into(), "z2".into()],
        mediator_instruments: vec![],
        groups: vec![],
        cluster: "unit".into(),
        fixed_effects: FixedEffects::UnitTime,
        cell_group: None,
        moderation: None,
        interaction: None,
        serial: false,
    };
    check_on(&table, &two, Scheme::Pairs, None, 8);
    check_on(&table, &two, Scheme::Wild(WildWeights::Webb), None, 8);
}

/// The instrumented-mediator model (`--mediator-instrument`): every
/// reweighting scheme's replicates equal the literal two-stage refit of the
/// materialised resample (the outcome equation's mediators on their
/// instruments), alone and with the treatment instrumented too, with one
/// mediator and two; every engine (CPU, GPU f64 and f32).
#[test]
fn instrumented_mediator_models_match_the_two_stage_oracle() {
    let mut spec = default_spec();
    spec.mediator_instruments = vec!["iv_agglom".into()];
    for scheme in REWEIGHTING {
        check(&spec, scheme, None, 8);
    }
    check(&spec, Scheme::Pairs, Some("region"), 8);
    spec.instruments = vec!["iv_post1984".into()];
    check(&spec, Scheme::Pairs, None, 8);
    check(&spec, Scheme::Wild(WildWeights::Webb), None, 8);
    spec.fixed_effects = FixedEffects::Unit;
    check(&spec, Scheme::Bayes, None, 8);
    // Two mediators, two instruments (and the treatment's): the pyfixest
    // fixture panel of the instrumented mediators.
    let table =
        medsim::internals::data::table::read_csv(&common::fixture("mediator_iv.csv")).unwrap();
    let mut two = ModelSpec {
        mediators: vec!["m1".into(), "m2".into()],
        controls: vec!["c1".into(), "c2".into()],
        mediator_instruments: vec!["zm1".into(), "zm2".into()],
        ..ModelSpec::xmy("unit", "time", &[], FixedEffects::UnitTime)
    };
    check_on(&table, &two, Scheme::Pairs, None, 8);
    check_on(&table, &two, Scheme::Poisson, None, 8);
    two.instruments = vec!["z1".into()];
    check_on(&table, &two, Scheme::Pairs, None, 8);
}

/// `unit+GROUP^time` effects (city + province^year): every reweighting
/// scheme's replicates, whose Gram partials out the replicate's own cell
/// effects, equal the literal refit of the materialised resample with a
/// dummy per (province, year) cell; two mediators; clusters by province
/// too (the cells then nest in the clusters). The CPU engine (the GPU
/// engine has no cell stage yet).
#[test]
fn interacted_fixed_effects_match_the_oracle() {
    let mut spec = default_spec();
    spec.fixed_effects = FixedEffects::UnitGroupTime;
    spec.cell_group = Some("province".into());
    // Enough cities per province that a resample keeps the cells' effects
    // apart from the units' (30 cities spread over some 30 provinces leave
    // most provinces one city, whose every column the effects absorb).
    let panel = generate(SyntheticParams {
        cities: 90,
        years: 5,
        seed: 3,
        ..SyntheticParams::default()
    });
    for scheme in REWEIGHTING {
        check_on(&panel, &spec, scheme, None, 6);
    }
    check_on(&panel, &spec, Scheme::Pairs, Some("region"), 6);
    spec.mediators = vec!["agglom_sec".into(), "agglom_ter".into()];
    check_on(&panel, &spec, Scheme::Poisson, None, 6);
    spec.cluster = "province".into();
    check_on(&panel, &spec, Scheme::Pairs, None, 6);
    // Unbalanced, with missing cells and singleton cells dropped (the
    // pyfixest fixture): groups whose units are observed in different
    // periods take the general path, a factorisation per replicate.
    let table =
        medsim::internals::data::table::read_csv(&common::fixture("interacted.csv")).unwrap();
    let mut unbalanced = ModelSpec {
        controls: vec!["c1".into(), "c2".into()],
        mediators: vec!["m1".into()],
        fixed_effects: FixedEffects::UnitGroupTime,
        cell_group: Some("province".into()),
        ..ModelSpec::xmy("unit", "time", &[], FixedEffects::UnitGroupTime)
    };
    let design = Design::build(
        &Panel::from_table(&table, &unbalanced).unwrap(),
        FixedEffects::UnitGroupTime,
    )
    .unwrap();
    let cells = design.cells.as_ref().unwrap();
    assert!(
        cells.uniform.iter().any(|&u| !u),
        "no group takes the general path"
    );
    for scheme in [Scheme::Pairs, Scheme::Bayes, Scheme::Jackknife] {
        check_on(&table, &unbalanced, scheme, None, 6);
    }
    // A province of two cities, one of them (u000) missing the province's
    // first year: in the jackknife replicate without the other (u004) the
    // city's own effect spans one of its cells, whose effect the engines
    // drop, as the refit (no dummy for the first year the replicate
    // observes) does. Every jackknife replicate, and pairs draws that keep
    // u000 alone.
    let text = std::fs::read_to_string(common::fixture("interacted.csv"))
        .unwrap()
        .replace("p0,u000,", "px,u000,")
        .replace("p0,u004,", "px,u004,");
    let two_cities =
        medsim::internals::data::table::parse_csv("two cities", text.as_bytes()).unwrap();
    let units = Panel::from_table(&two_cities, &unbalanced)
        .unwrap()
        .unit
        .len();
    check_on(
        &two_cities,
        &unbalanced,
        Scheme::Jackknife,
        None,
        units as u64,
    );
    check_on(&two_cities, &unbalanced, Scheme::Pairs, None, 40);
    unbalanced.cluster = "province".into();
    check_on(&table, &unbalanced, Scheme::Pairs, None, 6);
}

/// Permutation: unit u takes the treatment series of unit donors[u]; refit
/// the materialised panel and compare. Also on an unbalanced panel, where
/// units are only exchanged within blocks of identical periods.
fn check_permutation(table: &medsim::internals::data::table::Table, replicates: u64) {
    let spec = default_spec();
    let (panel, design, fit) = common::fitted(&table, &spec);
    let engine = PermutationEngine::new(&design, &panel, 5, 3, 2).unwrap();
    let n_stats = engine.layout().len();
    let (p, m) = (panel.n_controls, panel.n_mediators);
    let mut oracles = Vec::new();
    // Row of (unit, period).
    let mut at = std::collections::HashMap::new();
    for i in 0..panel.n_obs() {
        at.insert((panel.unit.codes[i], panel.time.codes[i]), i);
    }
    let mut moved = 0;
    for r in 0..replicates {
        let donors = engine.donors(r);
        let rows: Vec<Row> = (0..panel.n_obs())
            .map(|i| {
                let (u, t) = (panel.unit.codes[i], panel.time.codes[i]);
                let d = donors[u as usize];
                moved += (d != u) as usize;
                let mut values: Vec<f64> = panel.columns.iter().map(|c| c[i]).collect();
                values[0] = panel.columns[0][at[&(d, t)]];
                Row {
                    unit: u as usize,
                    time: t as usize,
                    group: 0,
                    weight: 1.0,
                    v: 1.0,
                    values,
                }
            })
            .collect();
        let oracle = refit(
            &rows,
            panel.unit.len(),
            panel.time.len(),
            p,
            m,
            0,
            spec.fixed_effects,
            None,
        );
        oracles.extend(oracle);
    }
    assert!(moved > 0, "no unit was ever permuted");
    // The table of donor rows and the rows formed as replicates go: the
    // same sums in the same order, so the same bits.
    let untabled = PermutationEngine::with_table_budget(&design, &panel, 5, 3, 2, 0).unwrap();
    let mut tabled_stats = vec![0.0; replicates as usize * n_stats];
    let mut untabled_stats = tabled_stats.clone();
    engine.compute(0, &mut tabled_stats).unwrap();
    untabled.compute(0, &mut untabled_stats).unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&tabled_stats), bits(&untabled_stats));
    // The shared suite: the CPU and GPU permutation engines against it.
    // Permuting the treatment drives c* and c'* to about 0, so the
    // proportion mediated (indirect / c*) and the suppression share
    // (|indirect / c'*|) have no finite spread to scale an f32
    // tolerance by: it is checked relative to its value there (1e-4; seen
    // 4e-5, the f32 error of c* divided by a c* near 0). No output uses it:
    // a permutation run gives it no p-value and no interval.
    let layout = engine.layout();
    // The two ratios with c* or c'* (both near 0) below.
    let ratios = [layout.proportion(), layout.suppression_share()];
    for (label, engine, tol) in common::permutation_engines(&design, &fit, &panel, 5) {
        let mut fast = vec![0.0; replicates as usize * n_stats];
        assert_eq!(engine.compute(0, &mut fast).unwrap(), 0, "{label}");
        let label = format!("{label} permutation");
        let (mut got, mut want) = (Vec::new(), Vec::new());
        for r in 0..replicates as usize {
            for k in (0..n_stats).filter(|k| !ratios.contains(k)) {
                got.push(fast[r * n_stats + k]);
                want.push(oracles[r * n_stats + k]);
            }
            for k in ratios {
                let (g, o) = (fast[r * n_stats + k], oracles[r * n_stats + k]);
                let rel = match tol {
                    common::Tolerance::Relative(t) => t,
                    common::Tolerance::SdFraction(_) => 1e-4,
                };
                assert!(
                    (g - o).abs() <= rel * o.abs(),
                    "{label} replicate {r} ratio statistic {k}: {g} vs {o}"
                );
            }
        }
        common::assert_close(&label, &got, &want, n_stats - ratios.len(), tol);
    }
}

#[test]
fn permutation_matches_the_oracle() {
    let table = small_panel();
    check_permutation(&table, 12);
    // Unbalanced: the first ten cities lack their last year.
    let year = table.column("year").unwrap();
    let city = table.column("city").unwrap();
    let unbalanced = table.filter_rows(|r| !(r[year] == "2015" && r[city].as_str() <= "C010"));
    check_permutation(&unbalanced, 12);
    // And one city, alone in missing its first year, exchanges with none.
    let alone = unbalanced.filter_rows(|r| !(r[year] == "2011" && r[city] == "C011"));
    let (panel, design, _) = common::fitted(&alone, &default_spec());
    let exchange = Exchange::new(&design, &panel).unwrap();
    let exchanging: usize = exchange.blocks.iter().map(Vec::len).sum();
    assert_eq!(exchanging + 1, panel.unit.len());
    check_permutation(&alone, 12);
}

#[test]
fn permutation_refuses_a_panel_where_no_units_share_periods() {
    let table = generate(SyntheticParams {
        cities: 12,
        years: 12,
        ..SyntheticParams::default()
    });
    // City k misses year 2010 + k only: no two share a period set.
    let (year, city) = (table.column("year").unwrap(), table.column("city").unwrap());
    let staggered = table.filter_rows(|r| {
        let k: i32 = r[city][1..].parse().unwrap();
        let y: i32 = r[year].parse().unwrap();
        y != 2010 + k
    });
    let spec = default_spec();
    let panel = Panel::from_table(&staggered, &spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    let err = PermutationEngine::new(&design, &panel, 1, 8, 1)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("no two units are"), "{err}");
}

/// Studentized bootstrap: a pairs replicate's own CR1 SEs of each a_j b_j,
/// the indirect effect and the contrasts (and of a serial chain's longer
/// paths and their contrasts, and of a moderated model's conditional
/// effects, index and difference) equal the delta-method SEs of a full
/// analysis of the materialised resample (a cluster drawn k times becomes
/// k cities); the panel is balanced, so the small-sample factors agree
/// too. With one mediator and with two, with the treatment instrumented,
/// a chain of three, and PROCESS models 59 and 14 at given moderator
/// values (uncentred: a resample's own percentiles and means would move
/// the evaluation point); every engine's.
#[test]
fn replicate_standard_errors_match_a_reanalysis_of_the_resample() {
    use medsim::internals::model::spec::{Moderation, ModeratorValues};
    let mut two = default_spec();
    two.mediators = vec!["agglom_sec".into(), "agglom_ter".into()];
    // Instrumented: the replicate's 2SLS influence functionals against the
    // full 2SLS analysis of the resample.
    let mut iv = two.clone();
    iv.instruments = vec!["iv_post1984".into()];
    // Instrumented mediator: the outcome equation's 2SLS functionals.
    let mut mediator_iv = default_spec();
    mediator_iv.mediator_instruments = vec!["iv_agglom".into()];
    let mut chain = default_spec();
    chain.mediators = ["agglom_sec", "agglom_ter", "industry"]
        .map(String::from)
        .to_vec();
    chain.controls.retain(|c| c != "industry");
    chain.serial = true;
    let moderated = |a: bool, b: bool, direct: bool| {
        let mut spec = default_spec();
        spec.controls.retain(|c| c != "ln_pop_density");
        spec.moderation = Some(Moderation {
            moderator: "ln_pop_density".into(),
            a,
            b,
            direct,
            center: false,
            at: ModeratorValues::Values(vec![5.5, 6.5]),
        });
        spec
    };
    for spec in [
        default_spec(),
        two,
        iv,
        mediator_iv,
        chain,
        moderated(true, true, true),
        moderated(false, true, false),
    ] {
        check_replicate_standard_errors(&spec);
    }
}

/// Every engine's (CPU, GPU f64 and f32) replicate SEs of `spec` against
/// the reanalysis of the materialised resample.
fn check_replicate_standard_errors(spec: &ModelSpec) {
    let table = small_panel();
    let (panel, design, fit) = common::fitted(&table, spec);
    let g = design.n_clusters;
    let plan = WeightPlan::new(Scheme::Pairs, 8, g, None);
    let engines = common::engines(&design, &fit, &plan, true);
    let layout = engines[0].1.layout();
    let replicates = 6;
    let runs: Vec<(String, Vec<f64>, f64, bool)> = engines
        .iter()
        .map(|(label, engine, tol)| {
            assert_eq!(engine.layout(), layout);
            let mut fast = vec![0.0; replicates * layout.len()];
            engine.compute(0, &mut fast).unwrap();
            // Six replicates give no spread to scale an f32 tolerance by:
            // 1e-5 relative there (seen: about 1e-7), and of the
            // re-analysis's SE for an estimate near zero (f32's error in a
            // coefficient is a share of its spread, not of its value).
            let (tol, f32) = match tol {
                common::Tolerance::Relative(t) => (*t, false),
                common::Tolerance::SdFraction(_) => (1e-5, true),
            };
            (label.clone(), fast, tol, f32)
        })
        .collect();
    let names = &spec.mediators;
    let city = table.column("city").unwrap();
    let mut w = vec![0.0; g];
    for r in 0..replicates {
        plan.fill(r as u64, &mut w);
        let mut rows = Vec::new();
        for (cl, &count) in w.iter().enumerate() {
            let name = &panel.cluster.levels[cl];
            for copy in 0..count as usize {
                for row in table.rows.iter().filter(|row| &row[city] == name) {
                    let mut row = row.clone();
                    row[city] = format!("{name}#{copy}");
                    rows.push(row);
                }
            }
        }
        let resample =
            medsim::internals::data::table::Table::new("resample", table.headers.clone(), rows);
        let p = Panel::from_table(&resample, spec).unwrap();
        let d = Design::build(&p, spec.fixed_effects).unwrap();
        let a = medsim::internals::model::mediation::analyse(
            &d,
            &medsim::internals::model::spec::InferenceSpec {
                mc_draws: 1000,
                ..Default::default()
            },
        )
        .unwrap();
        // Every effect whose statistic has an SE of its own, once.
        let mut checked = 0;
        for (key, effect) in &a.effects {
            let Some(stat) = layout.index_of(key, names) else {
                continue;
            };
            let Some(se) = layout.se_of(stat) else {
                continue;
            };
            checked += 1;
            let (want, want_est) = (effect.se.unwrap(), effect.estimate);
            for (label, fast, tol, f32) in &runs {
                let got = fast[r * layout.len() + se];
                assert!(
                    (got - want).abs() <= tol * want,
                    "{label} replicate {r} {key}: SE {got} vs re-analysis {want}"
                );
                let est = fast[r * layout.len() + stat];
                let scale = match f32 {
                    true => want_est.abs().max(want),
                    false => want_est.abs(),
                };
                assert!(
                    (est - want_est).abs() <= tol * scale,
                    "{label} {key}: {est} vs {want_est} (SE {want})"
                );
            }
        }
        // (One mediator's a b is the indirect effect, reported once.)
        let one = usize::from(names.len() == 1);
        assert_eq!(checked, layout.studentized_stats().len() - one, "{spec:?}");
    }
}

/// The group of one region: its panel, design and where its clusters sit
/// among the pooled sample's.
fn region_group(
    table: &medsim::internals::data::table::Table,
    spec: &ModelSpec,
    pooled: &Panel,
    level: &str,
) -> (Panel, Design, Vec<usize>) {
    let region = table.column("region").unwrap();
    let rows = table.filter_rows(|r| r[region] == level);
    let panel = Panel::from_table(&rows, spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    let map = panel
        .cluster
        .levels
        .iter()
        .map(|n| pooled.cluster.levels.iter().position(|p| p == n).unwrap())
        .collect();
    (panel, design, map)
}

/// A group's model (`--group`): its replicate r takes the pooled run's
/// weights of its own clusters, and equals the oracle refit of the group's
/// rows materialised with those weights; for pairs (also stratified by the
/// grouping column, which keeps each group's size), Bayes and wild.
#[test]
fn group_models_match_the_oracle_with_the_pooled_weights() {
    use medsim::internals::resample::spec::{ResampleSpec, SharedWeights};
    let spec = default_spec();
    let table = small_panel();
    let pooled = Panel::from_table(&table, &spec).unwrap();
    let (panel, design, map) = region_group(&table, &spec, &pooled, "west");
    let fit = fit_system(&design, &equations(&design)).unwrap();
    assert!(map.len() < pooled.cluster.len());
    for (scheme, strata) in [
        (Scheme::Pairs, None),
        (Scheme::Pairs, Some("region")),
        (Scheme::Bayes, None),
        (Scheme::Wild(WildWeights::Webb), None),
    ] {
        let resample = ResampleSpec {
            scheme,
            strata: strata.map(String::from),
            ..ResampleSpec::default()
        };
        let shared = SharedWeights::new(&pooled, &resample, map.clone()).unwrap();
        let plan = WeightPlan::new(scheme, 42, shared.n_clusters, shared.strata.as_deref());
        let engine = CpuEngine::new(&design, &fit, plan.clone(), 5, 2, false)
            .unwrap()
            .with_cluster_map(map.clone())
            .unwrap();
        let n = engine.layout().len();
        let replicates = 8;
        let mut fast = vec![0.0; replicates * n];
        assert_eq!(engine.compute(0, &mut fast).unwrap(), 0);
        let mut all = vec![0.0; shared.n_clusters];
        let mut oracles = Vec::new();
        for r in 0..replicates {
            plan.fill(r as u64, &mut all);
            let w: Vec<f64> = map.iter().map(|&c| all[c]).collect();
            let oracle = materialise_and_refit(&panel, &spec, scheme, &w);
            for (k, (g, o)) in fast[r * n..(r + 1) * n].iter().zip(&oracle).enumerate() {
                assert!(
                    (g - o).abs() <= 1e-9 * o.abs().max(1e-12),
                    "{scheme:?} {strata:?} replicate {r} statistic {k}: {g} vs {o}"
                );
            }
            oracles.extend(oracle);
        }
        // The GPU engine's form: the group's statistics (and influences)
        // spread over the run's clusters, reweighted by the run's rows; the
        // shared suite (CPU, GPU f64, GPU f32) against the same oracle.
        let spread = design.on_clusters(&map, shared.n_clusters);
        let spread_fit = fit.on_clusters(&map, shared.n_clusters);
        for (label, engine, tol) in common::engines(&spread, &spread_fit, &plan, false) {
            let mut got = vec![0.0; replicates * n];
            assert_eq!(engine.compute(0, &mut got).unwrap(), 0, "{label}");
            let what = format!("spread {label} {scheme:?} {strata:?}");
            common::assert_close(&what, &got, &oracles, n, tol);
        }
    }
}

/// A between-group contrast's replicate r is the difference of the two
/// groups' oracle refits with the pooled run's weights of their clusters.
#[test]
fn group_contrasts_match_the_difference_of_the_oracles() {
    use medsim::internals::resample::contrast::ContrastEngine;
    let spec = default_spec();
    let table = small_panel();
    let pooled = Panel::from_table(&table, &spec).unwrap();
    let (sides, maps): (Vec<(Panel, Design)>, Vec<Vec<usize>>) = ["west", "east"]
        .iter()
        .map(|level| {
            let (panel, design, map) = region_group(&table, &spec, &pooled, level);
            ((panel, design), map)
        })
        .unzip();
    let fits: Vec<_> = sides
        .iter()
        .map(|(_, d)| fit_system(d, &equations(d)).unwrap())
        .collect();
    let plan = WeightPlan::new(Scheme::Pairs, 17, pooled.cluster.len(), None);
    let engine = |i: usize| -> Box<dyn Engine + '_> {
        Box::new(
            CpuEngine::new(&sides[i].1, &fits[i], plan.clone(), 3, 1, false)
                .unwrap()
                .with_cluster_map(maps[i].clone())
                .unwrap(),
        )
    };
    let contrast = ContrastEngine::new(engine(0), engine(1));
    let n = contrast.layout().len();
    let replicates = 6;
    let mut fast = vec![0.0; replicates * n];
    assert_eq!(contrast.compute(0, &mut fast).unwrap(), 0);
    let mut all = vec![0.0; pooled.cluster.len()];
    for r in 0..replicates {
        plan.fill(r as u64, &mut all);
        let oracle: Vec<Vec<f64>> = (0..2)
            .map(|i| {
                let w: Vec<f64> = maps[i].iter().map(|&c| all[c]).collect();
                materialise_and_refit(&sides[i].0, &spec, Scheme::Pairs, &w)
            })
            .collect();
        for k in 0..n {
            let want = oracle[0][k] - oracle[1][k];
            let got = fast[r * n + k];
            let scale = oracle[0][k].abs().max(oracle[1][k].abs()).max(1e-12);
            assert!(
                (got - want).abs() <= 1e-9 * scale,
                "replicate {r} statistic {k}: {got} vs {want}"
            );
        }
    }
}
