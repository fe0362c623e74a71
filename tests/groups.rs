//! `--group`: each group of clusters gets its own model, resampled with the
//! pooled run's weights. A group holding every cluster reproduces the
//! pooled model to the bit (same sample, same draws); unknown columns are
//! refused with a message.

use std::process::Command;

use medsim::internals::data::synthetic::{SyntheticParams, generate};
use medsim::internals::data::table::write_csv;
use medsim::internals::model::spec::default_spec;
use medsim::internals::resample::intervals::Method;
use medsim::internals::resample::scheme::{Scheme, WildWeights};
use medsim::internals::resample::spec::{BackendChoice, ResampleSpec};
use medsim::internals::study::run::{DataSource, RunPlan, execute};

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
            data: DataSource::file(csv.clone()),
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
            mediator_sets: vec![],
            robustness: Default::default(),
            sensitivity: None,
            confounding: None,
            keep_replicates: false,
        };
        let s = execute(&plan, &|_, _| Ok(())).unwrap();
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

/// The label-permutation test has the right size: splitting the cities of
/// 200 simulated panels by a coin unrelated to the model (the generator's
/// heterogeneity runs by region and size), the p-values of the difference
/// in the indirect effect (and in c') are uniform: Kolmogorov-Smirnov
/// distance below its 1 % critical value, and the 5 % test rejects in
/// 1-10 % of the panels (binomial sd 1.5 %).
#[test]
fn the_label_permutation_test_has_the_right_size() {
    use medsim::internals::model::design::Design;
    use medsim::internals::model::panel::Panel;
    use medsim::internals::resample::label_test::LabelPermutation;
    let spec = default_spec();
    let panels = 200;
    let mut p_indirect = Vec::new();
    let mut p_direct = Vec::new();
    for seed in 0..panels {
        let table = generate(SyntheticParams {
            cities: 40,
            years: 5,
            seed: 1000 + seed,
            ..SyntheticParams::default()
        });
        let panel = Panel::from_table(&table, &spec).unwrap();
        let design = Design::build(&panel, spec.fixed_effects).unwrap();
        // A coin per city, from a hash unrelated to the generator's draws.
        let coin = |name: &str| {
            name.bytes()
                .fold(seed.wrapping_mul(0x9e37_79b9), |h, b| {
                    h.wrapping_mul(31).wrapping_add(b as u64)
                })
                .wrapping_mul(0x2545_f491_4f6c_dd1d)
                >> 63
        };
        let (first, second): (Vec<usize>, Vec<usize>) =
            (0..panel.cluster.len()).partition(|&c| coin(&panel.cluster.levels[c]) == 0);
        let test = LabelPermutation::new(&design, &first, &second, seed).unwrap();
        let p = test.cpu_p_values(199, 256, 2).unwrap();
        let layout = test.layout();
        p_indirect.push(p[layout.indirect()].unwrap());
        p_direct.push(p[layout.c_prime()].unwrap());
    }
    for (name, mut p) in [("indirect", p_indirect), ("c'", p_direct)] {
        p.sort_by(f64::total_cmp);
        let n = p.len() as f64;
        let ks = p
            .iter()
            .enumerate()
            .map(|(i, &x)| ((i + 1) as f64 / n - x).abs().max((x - i as f64 / n).abs()))
            .fold(0.0, f64::max);
        let reject = p.iter().filter(|&&x| x <= 0.05).count() as f64 / n;
        eprintln!(
            "{name}: KS distance {ks:.3}, 5 % rejections {:.1} %",
            100.0 * reject
        );
        assert!(ks < 1.63 / n.sqrt(), "{name}: KS {ks}");
        assert!((0.01..=0.10).contains(&reject), "{name}: rejects {reject}");
    }
}

/// Replicate r of the label test is the refit of the two groups drawn by
/// its shuffle: the Fisher-Yates order of the Philox stream `(seed, r,
/// STREAM_LABELS)` over the clusters of both groups (group 1's first), the
/// first n_1 clusters one group, the rest the other, each fitted on its
/// own (`fit_system` on the clusters' design), differences of a, b, c, c'.
#[test]
fn a_label_test_replicate_is_the_refit_of_the_shuffled_groups() {
    use medsim::internals::math::rng::{STREAM_LABELS, WordStream};
    use medsim::internals::model::design::Design;
    use medsim::internals::model::estimate::fit_system;
    use medsim::internals::model::mediation::equations;
    use medsim::internals::model::panel::Panel;
    use medsim::internals::resample::engine::{CpuEngine, Engine};
    use medsim::internals::resample::label_test::LabelPermutation;
    let spec = default_spec();
    let table = generate(SyntheticParams {
        cities: 30,
        years: 6,
        ..SyntheticParams::default()
    });
    let panel = Panel::from_table(&table, &spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    let (first, second) = ([3, 7, 11, 12, 20, 25, 29], [0, 1, 2, 5, 8, 14, 17, 18, 22]);
    let seed = 4;
    let test = LabelPermutation::new(&design, &first, &second, seed).unwrap();
    let layout = test.layout();
    let n = layout.len();
    let sides = [false, true].map(|second| {
        CpuEngine::new(test.design(), test.fit(), test.plan(second), 8, 1, false).unwrap()
    });
    let count = 20;
    let (mut a, mut b) = (vec![0.0; count * n], vec![0.0; count * n]);
    sides[0].compute(0, &mut a).unwrap();
    sides[1].compute(0, &mut b).unwrap();
    let x = design.layout.treatment();
    let mediator = design.layout.mediator(0);
    for r in 0..count {
        let mut order: Vec<usize> = first.iter().chain(&second).copied().collect();
        let mut s = WordStream::new(seed, r as u64, STREAM_LABELS);
        for i in (1..order.len()).rev() {
            let j = s.below(i as u32 + 1) as usize;
            order.swap(i, j);
        }
        let refit = |clusters: &[usize]| {
            let d = design.subset(clusters);
            fit_system(&d, &equations(&d)).unwrap()
        };
        let (f1, f2) = (refit(&order[..first.len()]), refit(&order[first.len()..]));
        for (stat, (e, col)) in [
            (layout.a(0), (1, x)),
            (layout.b(0), (2, mediator)),
            (layout.c(), (0, x)),
            (layout.c_prime(), (2, x)),
        ] {
            let want = f1.coef(e, col) - f2.coef(e, col);
            let got = a[r * n + stat] - b[r * n + stat];
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1e-3),
                "replicate {r} statistic {stat}: {got} vs refit {want}"
            );
        }
    }
}

/// The permutation test's statistic with the observed labels is the
/// contrast of the two groups' own models (balanced panel, clusters nested
/// in groups: a group's Gram is the sum of its clusters' statistics).
#[test]
fn the_label_test_statistic_is_the_group_contrast() {
    use medsim::internals::model::design::Design;
    use medsim::internals::model::panel::Panel;
    use medsim::internals::resample::label_test::LabelPermutation;
    let spec = default_spec();
    let table = generate(SyntheticParams {
        cities: 80,
        ..SyntheticParams::default()
    });
    let panel = Panel::from_table(&table, &spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    let region = panel.groups.iter().find(|f| f.name == "region").unwrap();
    let level = |name: &str| region.levels.iter().position(|l| l == name).unwrap() as u32;
    let clusters_of = |code: u32| -> Vec<usize> {
        (0..panel.cluster.len())
            .filter(|&c| {
                let i = panel
                    .cluster
                    .codes
                    .iter()
                    .position(|&x| x as usize == c)
                    .unwrap();
                region.codes[i] == code
            })
            .collect()
    };
    let test = LabelPermutation::new(
        &design,
        &clusters_of(level("east")),
        &clusters_of(level("west")),
        1,
    )
    .unwrap();
    let observed = test.observed().unwrap();
    let layout = test.layout();
    // The same contrasts from the group models of a --group run.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("panel.csv");
    write_csv(&table, &csv).unwrap();
    let plan = RunPlan {
        name: "contrast".into(),
        data: DataSource::file(csv),
        model: spec.clone(),
        inference: Default::default(),
        resampling: None,
        group_by: vec!["region".into()],
        mediator_sets: vec![],
        robustness: Default::default(),
        sensitivity: None,
        confounding: None,
        keep_replicates: false,
    };
    let s = execute(&plan, &|_, _| Ok(())).unwrap();
    for (key, stat) in [
        ("a", layout.a(0)),
        ("c", layout.c()),
        ("c_prime", layout.c_prime()),
        ("indirect", layout.indirect()),
    ] {
        let c = s
            .contrasts
            .iter()
            .find(|c| c.effect == key && c.between == ["region=east", "region=west"])
            .unwrap();
        let got = observed[stat];
        assert!(
            (got - c.estimate).abs() <= 1e-9 * c.estimate.abs(),
            "{key}: label test {got} vs contrast {}",
            c.estimate
        );
    }
}

/// The jackknife of a group's model deletes each of the group's own
/// clusters: it equals the jackknife of a run on the group's rows alone
/// (a group's model drawing the run's deletions would leave most
/// replicates at the full-sample estimate).
#[test]
fn a_groups_jackknife_deletes_its_own_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let table = generate(SyntheticParams {
        cities: 60,
        ..SyntheticParams::default()
    });
    let all = dir.path().join("all.csv");
    write_csv(&table, &all).unwrap();
    let region = table.column("region").unwrap();
    let west = table.filter_rows(|r| r[region] == "west");
    let west_csv = dir.path().join("west.csv");
    write_csv(&west, &west_csv).unwrap();
    let plan = |data: std::path::PathBuf, group_by: Vec<String>| {
        let mut model = default_spec();
        model.groups = vec!["region".into()];
        RunPlan {
            name: "jackknife".into(),
            data: DataSource::file(data),
            model,
            inference: Default::default(),
            resampling: Some(ResampleSpec {
                scheme: Scheme::Jackknife,
                methods: vec![Method::Percentile],
                backend: BackendChoice::Cpu,
                ..ResampleSpec::default()
            }),
            group_by,
            mediator_sets: vec![],
            robustness: Default::default(),
            sensitivity: None,
            confounding: None,
            keep_replicates: false,
        }
    };
    let grouped = execute(&plan(all, vec!["region".into()]), &|_, _| Ok(())).unwrap();
    let alone = execute(&plan(west_csv, vec![]), &|_, _| Ok(())).unwrap();
    let g = &grouped.groups["region=west"];
    assert_eq!(g.clusters, alone.data.clusters);
    assert_eq!(g.effects, alone.effects);
    assert_eq!(g.intervals, alone.intervals);
}

/// Studentized contrasts: for groups that share no cluster, replicate r of
/// the contrast holds the difference of the groups' statistics and, for
/// each SE target, `sqrt(se_1^2 + se_2^2)` of their own replicate SEs; a
/// run reports a studentized interval for every indirect-effect contrast.
#[test]
fn studentized_contrasts_combine_independent_standard_errors() {
    use medsim::internals::model::design::Design;
    use medsim::internals::model::estimate::fit_system;
    use medsim::internals::model::mediation::equations;
    use medsim::internals::model::panel::Panel;
    use medsim::internals::resample::contrast::ContrastEngine;
    use medsim::internals::resample::engine::{CpuEngine, Engine};
    use medsim::internals::resample::scheme::WeightPlan;
    let spec = default_spec();
    let table = generate(SyntheticParams {
        cities: 60,
        ..SyntheticParams::default()
    });
    let pooled = Panel::from_table(&table, &spec).unwrap();
    let region = table.column("region").unwrap();
    let plan = WeightPlan::new(Scheme::Pairs, 5, pooled.cluster.len(), None);
    let sides: Vec<(Design, Vec<usize>)> = ["east", "west"]
        .iter()
        .map(|level| {
            let rows = table.filter_rows(|r| r[region] == *level);
            let panel = Panel::from_table(&rows, &spec).unwrap();
            let map = panel
                .cluster
                .levels
                .iter()
                .map(|n| pooled.cluster.levels.iter().position(|p| p == n).unwrap())
                .collect();
            (Design::build(&panel, spec.fixed_effects).unwrap(), map)
        })
        .collect();
    let fits: Vec<_> = sides
        .iter()
        .map(|(d, _)| fit_system(d, &equations(d)).unwrap())
        .collect();
    let engine = |i: usize| -> Box<dyn Engine + '_> {
        Box::new(
            CpuEngine::new(&sides[i].0, &fits[i], plan.clone(), 8, 1, true)
                .unwrap()
                .with_cluster_map(sides[i].1.clone())
                .unwrap(),
        )
    };
    let layout = engine(0).layout();
    let (n, b) = (layout.len(), 20);
    let mut each = [vec![0.0; n * b], vec![0.0; n * b]];
    for (i, out) in each.iter_mut().enumerate() {
        engine(i).compute(0, out).unwrap();
    }
    let mut both = vec![0.0; n * b];
    ContrastEngine::new(engine(0), engine(1))
        .compute(0, &mut both)
        .unwrap();
    let se_from = layout.se_target(0);
    for r in 0..b {
        for k in 0..n {
            let (x, y) = (each[0][r * n + k], each[1][r * n + k]);
            let want = if k < se_from { x - y } else { x.hypot(y) };
            assert!(
                (both[r * n + k] - want).abs() <= 1e-15 * want.abs().max(1e-300),
                "replicate {r} statistic {k}"
            );
        }
    }
    // End to end: studentized intervals of the contrasts of the indirect
    // effect, around the estimate.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("panel.csv");
    write_csv(&table, &csv).unwrap();
    let mut model = default_spec();
    model.groups = vec!["region".into()];
    let s = execute(
        &RunPlan {
            name: "student".into(),
            data: DataSource::file(csv),
            model,
            inference: Default::default(),
            resampling: Some(ResampleSpec {
                scheme: Scheme::Pairs,
                replicates: 499,
                methods: vec![Method::Percentile, Method::Studentized],
                backend: BackendChoice::Cpu,
                ..ResampleSpec::default()
            }),
            group_by: vec!["region".into()],
            mediator_sets: vec![],
            robustness: Default::default(),
            sensitivity: None,
            confounding: None,
            keep_replicates: false,
        },
        &|_, _| Ok(()),
    )
    .unwrap();
    let mut seen = 0;
    for c in s.contrasts.iter().filter(|c| c.effect == "indirect") {
        let i = c
            .intervals
            .iter()
            .find(|i| i.method == "studentized")
            .expect("a studentized interval");
        assert!(i.lower < c.estimate && c.estimate < i.upper, "{c:?}");
        seen += 1;
    }
    assert_eq!(seen, 3);
}
