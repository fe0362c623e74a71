//! The panel threshold model (Hansen 1999) against the brute-force fixture
//! of tests/fixtures/make_threshold_fixtures.py: every candidate refitted
//! by least squares on explicitly within-transformed columns, the regime
//! coefficients and CR1 SEs from pyfixest.

use medsim::FixedEffects;
use medsim::internals::data::table::read_csv;
use medsim::internals::model::threshold::{Grid, Prepared, Search, ThresholdSpec, estimate};
use serde_json::Value;

mod common;

fn expected() -> Value {
    let text = std::fs::read_to_string(common::fixture("threshold_expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn spec_of(case: &Value) -> ThresholdSpec {
    let mut spec = ThresholdSpec::new("unit", "time", "y", &["x"], case["q"].as_str().unwrap());
    spec.controls = case["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    if case["two_way"].as_bool().unwrap() {
        spec.fixed_effects = FixedEffects::UnitTime;
    }
    spec.max_thresholds = case["max_thresholds"].as_u64().unwrap() as usize;
    spec.grid = case["grid"].as_u64().unwrap() as usize;
    spec.trim = case["trim"].as_f64().unwrap();
    spec
}

fn close(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        (got - want).abs() <= rel * want.abs().max(1.0),
        "{what}: {got} against {want}"
    );
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn check_search(got: &Search, want: &Value, what: &str) {
    assert_eq!(got.fixed, numbers(&want["fixed"]), "{what}: fixed");
    assert_eq!(
        got.estimate,
        want["estimate"].as_f64().unwrap(),
        "{what}: estimate"
    );
    close(
        got.ssr,
        want["ssr"].as_f64().unwrap(),
        1e-10,
        &format!("{what}: ssr"),
    );
    let lr = want["lr"].as_array().unwrap();
    assert_eq!(got.lr.len(), lr.len(), "{what}: allowed candidates");
    for (g, w) in got.lr.iter().zip(lr) {
        assert_eq!(g.0, w[0].as_f64().unwrap(), "{what}: candidate");
        // LR is an SSR difference over sigma2: 1e-8 of the SSR's scale.
        assert!(
            (g.1 - w[1].as_f64().unwrap()).abs() <= 1e-7,
            "{what}: LR at {}: {} against {}",
            g.0,
            g.1,
            w[1]
        );
    }
    let interval = numbers(&want["interval"]);
    assert_eq!(
        [got.interval.0, got.interval.1],
        [interval[0], interval[1]],
        "{what}: interval"
    );
}

#[test]
fn thresholds_f_lr_and_regimes_equal_the_brute_force_fixture() {
    let all = expected();
    for (name, case) in all.as_object().unwrap() {
        let table = read_csv(&common::fixture(&format!("threshold_{name}.csv"))).unwrap();
        let spec = spec_of(case);
        let prepared = Prepared::new(&table, &spec).unwrap();
        assert_eq!(
            prepared.candidates,
            numbers(&case["candidates"]),
            "{name}: candidates"
        );
        assert_eq!(
            prepared.min_regime as u64,
            case["min_regime"].as_u64().unwrap()
        );
        let grid = Grid::new(&prepared).unwrap();
        let fit = estimate(&prepared, &grid).unwrap();
        close(
            fit.ssr_linear,
            case["ssr_linear"].as_f64().unwrap(),
            1e-10,
            name,
        );
        let steps = case["steps"].as_array().unwrap();
        assert_eq!(fit.steps.len(), steps.len(), "{name}: steps");
        for (k, (got, want)) in fit.steps.iter().zip(steps).enumerate() {
            let what = format!("{name}, {} threshold(s)", k + 1);
            assert_eq!(
                got.thresholds,
                numbers(&want["thresholds"]),
                "{what}: thresholds"
            );
            close(
                got.f_stat,
                want["f_stat"].as_f64().unwrap(),
                1e-8,
                &format!("{what}: F"),
            );
            close(
                got.ssr_before,
                want["ssr_before"].as_f64().unwrap(),
                1e-10,
                &what,
            );
            let searches = want["searches"].as_array().unwrap();
            assert_eq!(got.searches.len(), searches.len());
            for (s, w) in got.searches.iter().zip(searches) {
                check_search(s, w, &what);
            }
            let regimes = &want["regimes"];
            let sizes: Vec<usize> = regimes["regime_sizes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(got.regimes.regime_sizes, sizes, "{what}: regime sizes");
            let coefs = regimes["coefficients"].as_array().unwrap();
            assert_eq!(
                got.regimes.coefficients.len(),
                coefs.len(),
                "{what}: coefficients"
            );
            for (c, w) in got.regimes.coefficients.iter().zip(coefs) {
                close(c.estimate, w["estimate"].as_f64().unwrap(), 1e-8, &c.name);
                close(
                    c.se,
                    w["se"].as_f64().unwrap(),
                    1e-6,
                    &format!("{} SE", c.name),
                );
            }
        }
    }
}

/// Every replicate's F statistic of every test, and the p-values, equal the
/// fixture's brute-force bootstrap with the same draws: Hansen's residual
/// bootstrap (balanced panels) and the wild bootstrap with Rademacher
/// multipliers. The threads do not change them.
#[test]
fn bootstrap_f_statistics_equal_the_brute_force_fixture() {
    use medsim::internals::resample::scheme::WildWeights;
    use medsim::internals::resample::threshold::{Null, ThresholdScheme, f_tests};
    let all = expected();
    for (name, case) in all.as_object().unwrap() {
        let table = read_csv(&common::fixture(&format!("threshold_{name}.csv"))).unwrap();
        let prepared = Prepared::new(&table, &spec_of(case)).unwrap();
        let grid = Grid::new(&prepared).unwrap();
        let fit = estimate(&prepared, &grid).unwrap();
        let boot = &case["bootstrap"];
        let seed = boot["seed"].as_u64().unwrap();
        let replicates = boot["replicates"].as_u64().unwrap() as usize;
        let mut schemes = vec![(
            "wild_rademacher",
            ThresholdScheme::Wild(WildWeights::Rademacher),
        )];
        if boot.get("residual").is_some() {
            schemes.push(("residual", ThresholdScheme::Residual));
        } else {
            let refused = Null::new(&prepared, &grid, &fit, 1, ThresholdScheme::Residual, seed);
            assert!(
                refused.is_err(),
                "{name}: an unbalanced panel's residual bootstrap"
            );
        }
        for (key, scheme) in schemes {
            let tests = boot[key].as_array().unwrap();
            for threads in [1, 2] {
                let got = f_tests(
                    &prepared,
                    &grid,
                    &fit,
                    scheme,
                    replicates,
                    seed,
                    threads,
                    &|_, _| Ok(()),
                )
                .unwrap();
                assert_eq!(got.len(), tests.len());
                for (g, w) in got.iter().zip(tests) {
                    assert_eq!(g.p_value, w["p_value"].as_f64().unwrap(), "{name} {key} p");
                }
            }
            // Progress reaches every test's replicates; its error stops the work.
            let last = std::cell::Cell::new((0, 0));
            f_tests(
                &prepared,
                &grid,
                &fit,
                scheme,
                replicates,
                seed,
                1,
                &|done, total| {
                    last.set((done, total));
                    Ok(())
                },
            )
            .unwrap();
            let all = (replicates * tests.len()) as u64;
            assert_eq!(last.get(), (all, all));
            let stop = |_, _| Err(medsim::Error::Interrupted("stopped".into()));
            assert!(f_tests(&prepared, &grid, &fit, scheme, replicates, seed, 1, &stop).is_err());
            for (k, test) in tests.iter().enumerate() {
                let null = Null::new(&prepared, &grid, &fit, k + 1, scheme, seed).unwrap();
                for (r, want) in numbers(&test["replicate_f"]).into_iter().enumerate() {
                    let what = format!("{name} {key}, F_{} replicate {r}", k + 1);
                    close(null.f_stat(r as u64), want, 1e-8, &what);
                }
            }
        }
    }
}

/// Each fixture case fitted: its name, sample, grid and fit.
fn fitted_cases() -> Vec<(
    String,
    Prepared,
    Grid,
    medsim::internals::model::threshold::ThresholdFit,
)> {
    let all = expected();
    all.as_object()
        .unwrap()
        .iter()
        .map(|(name, case)| {
            let table = read_csv(&common::fixture(&format!("threshold_{name}.csv"))).unwrap();
            let prepared = Prepared::new(&table, &spec_of(case)).unwrap();
            let grid = Grid::new(&prepared).unwrap();
            let fit = estimate(&prepared, &grid).unwrap();
            (name.clone(), prepared, grid, fit)
        })
        .collect()
}

/// The wild bootstrap with each of `weights`, and Hansen's residual one
/// where the panel is balanced.
fn schemes_for(
    fit: &medsim::internals::model::threshold::ThresholdFit,
    weights: &[medsim::internals::resample::scheme::WildWeights],
) -> Vec<medsim::internals::resample::threshold::ThresholdScheme> {
    use medsim::internals::resample::threshold::ThresholdScheme;
    let mut schemes: Vec<ThresholdScheme> =
        weights.iter().map(|&w| ThresholdScheme::Wild(w)).collect();
    if fit.balanced {
        schemes.push(ThresholdScheme::Residual);
    }
    schemes
}

/// The replicates' searches are linear in their residual draw (the form
/// the GPU engine computes: a GEMM of the wild weights with per-unit
/// blocks, or a gather of per-unit-pair blocks): put together from the
/// products, every replicate's F equals the direct computation's, every
/// case, scheme (Webb's weights, whose squares are not 1, too) and test.
#[test]
fn a_replicates_f_from_its_linear_products_equals_the_direct_one() {
    use medsim::internals::resample::scheme::WildWeights;
    use medsim::internals::resample::threshold::Null;
    let mut compared = 0;
    for (name, prepared, grid, fit) in fitted_cases() {
        let weights = [WildWeights::Rademacher, WildWeights::Webb];
        for scheme in schemes_for(&fit, &weights) {
            for k in 1..=fit.steps.len() {
                let null = Null::new(&prepared, &grid, &fit, k, scheme, 7).unwrap();
                let form = null.linear_form();
                for r in 0..40 {
                    let (lin, quad) = null.products(&form, r);
                    let want = null.f_stat(r);
                    let got = null.f_stat_from(&form, &lin, quad);
                    let what = format!("{name} {scheme:?} F_{k} replicate {r}");
                    assert_eq!(got.is_nan(), want.is_nan(), "{what}");
                    if !want.is_nan() {
                        close(got, want, 1e-9, &what);
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 500, "{compared} replicates compared");
}

/// The GPU engine's F statistics equal the CPU engine's replicate for
/// replicate (every fixture case, both bootstraps, Webb's and the normal
/// weights too, every test): in f64 to 1e-12 of the replicates' SD, in f32
/// to 1e-4 of it; degenerate replicates (NaN) alike; batches of 64 from an
/// odd start, so batch edges and the stream's start are exercised.
#[cfg(feature = "gpu")]
#[test]
fn gpu_and_cpu_threshold_replicates_agree() {
    use medsim::internals::gpu::threshold::GpuThreshold;
    use medsim::internals::resample::engine::Precision;
    use medsim::internals::resample::scheme::WildWeights;
    use medsim::internals::resample::threshold::{Null, ThresholdEngine};
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let mut precisions = vec![(Precision::F32, 1e-4)];
    if ctx.has_f64() {
        precisions.push((Precision::F64, 1e-12));
    }
    let (start, count) = (37u64, 150usize);
    for (name, prepared, grid, fit) in fitted_cases() {
        let weights = [
            WildWeights::Rademacher,
            WildWeights::Webb,
            WildWeights::Normal,
        ];
        for scheme in schemes_for(&fit, &weights) {
            for k in 1..=fit.steps.len() {
                let null = Null::new(&prepared, &grid, &fit, k, scheme, 11).unwrap();
                let cpu: Vec<f64> = (0..count as u64).map(|r| null.f_stat(start + r)).collect();
                let finite: Vec<f64> = cpu.iter().copied().filter(|v| v.is_finite()).collect();
                let mean = finite.iter().sum::<f64>() / finite.len() as f64;
                let sd = (finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                    / (finite.len() - 1) as f64)
                    .sqrt();
                for &(precision, tol) in &precisions {
                    let engine = GpuThreshold::new(ctx, &null, precision, 64).unwrap();
                    let mut gpu = vec![0.0; count];
                    engine.compute(start, &mut gpu).unwrap();
                    let mut worst: f64 = 0.0;
                    for (r, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
                        let what = format!("{name} {scheme:?} {precision:?} F_{k} replicate {r}");
                        assert_eq!(g.is_nan(), c.is_nan(), "{what}: {g} vs {c}");
                        if c.is_finite() {
                            worst = worst.max((g - c).abs() / sd);
                        }
                    }
                    eprintln!("{name} {scheme:?} {precision:?} F_{k}: worst {worst:.2e} SD");
                    assert!(
                        worst <= tol,
                        "{name} {scheme:?} {precision:?} F_{k}: {worst:e} SD"
                    );
                }
            }
        }
    }
}

/// `medsim threshold --backend gpu` gives the CPU engine's tests: the
/// shipped config (the default panel, grid 300, three tests, Hansen's
/// residual bootstrap and the wild one), the p-values equal and the
/// critical values within 1e-9 in f64; threshold.json names the engine.
#[cfg(feature = "gpu")]
#[test]
fn medsim_threshold_on_the_gpu_equals_the_cpu() {
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let precision = if ctx.has_f64() { "f64" } else { "f32" };
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/threshold.toml"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for scheme in ["residual", "wild"] {
        let text = shipped.replace(
            "bootstrap = \"residual\"",
            &format!("bootstrap = \"{scheme}\""),
        );
        std::fs::write(dir.path().join(format!("{scheme}.toml")), text).unwrap();
    }
    let run = |name: &str, scheme: &str, extra: &[&str]| -> Value {
        let out = dir.path().join(name);
        let config = format!("{scheme}.toml");
        let mut args = vec![
            "threshold",
            &config,
            "-q",
            "-B",
            "100",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = common::medsim(dir.path(), &args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_str(&std::fs::read_to_string(out.join("threshold.json")).unwrap()).unwrap()
    };
    for scheme in ["residual", "wild"] {
        let cpu = run(&format!("cpu-{scheme}"), scheme, &["--backend", "cpu"]);
        let gpu = run(
            &format!("gpu-{scheme}"),
            scheme,
            &["--backend", "gpu", "--precision", precision],
        );
        assert!(
            gpu["model"]["bootstrap"]
                .as_str()
                .unwrap()
                .starts_with(scheme),
            "{}",
            gpu["model"]["bootstrap"]
        );
        assert_eq!(cpu["model"]["backend"]["backend"], "cpu");
        assert_eq!(gpu["model"]["backend"]["backend"], "gpu");
        assert_eq!(gpu["model"]["backend"]["precision"], precision);
        for (c, g) in cpu["steps"]
            .as_array()
            .unwrap()
            .iter()
            .zip(gpu["steps"].as_array().unwrap())
        {
            let (pc, pg) = (
                c["p_value"].as_f64().unwrap(),
                g["p_value"].as_f64().unwrap(),
            );
            match precision {
                "f64" => assert_eq!(pc, pg, "{scheme} k = {}", c["k"]),
                _ => assert!((pc - pg).abs() <= 0.02, "{scheme}: {pc} vs {pg}"),
            }
            let tol = if precision == "f64" { 1e-9 } else { 1e-3 };
            for (a, b) in numbers(&c["critical_values"])
                .iter()
                .zip(numbers(&g["critical_values"]))
            {
                assert!(
                    (a - b).abs() <= tol * a.abs().max(1.0),
                    "{scheme}: {a} vs {b}"
                );
            }
        }
    }
}

/// Regime-dependent mediation on the shipped config: the regimes of the
/// single threshold moderate a, b and c' in one pooled model, and every
/// path, conditional indirect effect and contrast in threshold.json equals
/// an independent least-squares fit of that model (the regime indicator
/// built here from the reported threshold, explicit unit demeaning and
/// period dummies) to 1e-8; the intervals are the run's own
/// (mediation/summary.json). The synthetic threshold (dei's direct effect
/// steeper by 0.05 above agglom 2.5) shows in the c' contrast.
#[test]
fn regime_mediation_is_the_pooled_model_moderated_by_the_regime() {
    use medsim::internals::data::synthetic::{SyntheticParams, generate};
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/threshold.toml"
    ))
    .unwrap();
    // The synthetic panel of the config, for the model by hand.
    let mut table = generate(SyntheticParams {
        cities: 278,
        years: 10,
        seed: 1,
        threshold_effect: -0.05,
        threshold_at: 2.5,
        ..SyntheticParams::default()
    });
    for h in table.headers.iter_mut() {
        match h.as_str() {
            "city" => *h = "unit".into(),
            "year" => *h = "time".into(),
            _ => {}
        }
    }
    // The config's [model] controls: the synthetic panel's six.
    let controls = medsim::internals::data::synthetic::CONTROLS;
    let mut names = vec!["dei", "agglom", "log_ci"];
    names.extend(controls);
    let data = common::Materialised::new(&table, &names, &[1.0; 278]);
    let (x, m, y) = (
        data.column("dei"),
        data.column("agglom"),
        data.column("log_ci"),
    );
    let z: Vec<Vec<f64>> = controls.iter().map(|c| data.column(c)).collect();
    let f = |v: &Value| v.as_f64().unwrap();

    // The single threshold's two regimes (the default), then the double
    // threshold model's three.
    for (extra, k) in [("", 1usize), ("\nmediation_thresholds = 2", 2)] {
        let dir = tempfile::tempdir().unwrap();
        let text = shipped.replace(
            "level = 0.95",
            &format!("level = 0.95\nmediation = true{extra}"),
        );
        std::fs::write(dir.path().join("t.toml"), text).unwrap();
        let o = common::medsim(dir.path(), &["threshold", "t.toml", "-q", "-B", "199"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let printed = String::from_utf8_lossy(&o.stdout);
        assert!(printed.contains("Regime-dependent mediation"), "{printed}");
        let folder = dir.path().join("results/threshold");
        let read = |p: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(folder.join(p)).unwrap()).unwrap()
        };
        let t = read("threshold.json");
        let run = read("mediation/summary.json");
        let md = &t["mediation"];
        let gammas: Vec<f64> = md["thresholds"].as_array().unwrap().iter().map(f).collect();
        // The k-threshold model's estimates, increasing.
        let mut want: Vec<f64> = t["steps"][k - 1]["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| f(&g["estimate"]))
            .collect();
        want.sort_by(f64::total_cmp);
        assert_eq!(gammas, want);
        assert_eq!(md["moderator"], "agglom_regime");
        assert_eq!(run["moderation"]["moderator"], "agglom_regime");
        assert_eq!(run["moderation"]["categorical"], true);

        // The model by hand: regime r's indicator D_r (r = 1..k), its
        // products with dei and agglom.
        let regime: Vec<usize> = m
            .iter()
            .map(|&v| gammas.iter().filter(|&&g| v > g).count())
            .collect();
        let d: Vec<Vec<f64>> = (1..=k)
            .map(|r| {
                regime
                    .iter()
                    .map(|&g| f64::from(u8::from(g == r)))
                    .collect()
            })
            .collect();
        let times =
            |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(a, b)| a * b).collect() };
        let xd: Vec<Vec<f64>> = d.iter().map(|d| times(&x, d)).collect();
        let md_: Vec<Vec<f64>> = d.iter().map(|d| times(&m, d)).collect();
        // M ~ X + D + X*D + Z;  Y ~ X + D + X*D + M + M*D + Z.
        let mut regs: Vec<&[f64]> = vec![&x];
        regs.extend(d.iter().chain(&xd).map(Vec::as_slice));
        regs.extend(z.iter().map(Vec::as_slice));
        let a = data.fit(&m, &regs);
        let mut regs: Vec<&[f64]> = vec![&x];
        regs.extend(d.iter().chain(&xd).map(Vec::as_slice));
        regs.push(&m);
        regs.extend(md_.iter().map(Vec::as_slice));
        regs.extend(z.iter().map(Vec::as_slice));
        let out = data.fit(&y, &regs);
        let (a1, c1, b1) = (a[0], out[0], out[1 + 2 * k]);
        let a3: Vec<f64> = (0..k).map(|t| a[1 + k + t]).collect();
        let c3: Vec<f64> = (0..k).map(|t| out[1 + k + t]).collect();
        let b3: Vec<f64> = (0..k).map(|t| out[2 + 2 * k + t]).collect();
        // Regime r's path: the lowest's plus r's interaction.
        let at = |base: f64, inter: &[f64], r: usize| base + if r > 0 { inter[r - 1] } else { 0.0 };
        let regimes = md["regimes"].as_array().unwrap();
        assert_eq!(regimes.len(), k + 1);
        for (r, got) in regimes.iter().enumerate() {
            let what = format!("{k} threshold(s), regime {r}");
            let (ar, br, cr) = (at(a1, &a3, r), at(b1, &b3, r), at(c1, &c3, r));
            close(f(&got["a"]), ar, 1e-8, &format!("{what} a"));
            close(f(&got["b"]), br, 1e-8, &format!("{what} b"));
            close(f(&got["c_prime"]), cr, 1e-8, &format!("{what} c'"));
            close(
                f(&got["indirect"]["estimate"]),
                ar * br,
                1e-8,
                &format!("{what} a*b"),
            );
            close(
                f(&got["suppression_share"]),
                (ar * br / cr).abs(),
                1e-8,
                &format!("{what} share"),
            );
            assert!(f(&got["indirect"]["lower"]) < f(&got["indirect"]["upper"]));
        }
        let contrasts = md["contrasts"].as_array().unwrap();
        assert_eq!(contrasts.len(), 4 * k);
        let method = md["interval_method"].as_str().unwrap();
        for r in 1..=k {
            let contrast = |path: &str| {
                contrasts
                    .iter()
                    .find(|c| c["path"] == path && c["regime"] == regimes[r]["regime"])
                    .unwrap()["estimate"]
                    .clone()
            };
            let what = format!("{k} threshold(s), regime {r} less the lowest");
            close(
                f(&contrast("a")["estimate"]),
                a3[r - 1],
                1e-8,
                &format!("{what}: a"),
            );
            close(
                f(&contrast("b")["estimate"]),
                b3[r - 1],
                1e-8,
                &format!("{what}: b"),
            );
            close(
                f(&contrast("c_prime")["estimate"]),
                c3[r - 1],
                1e-8,
                &format!("{what}: c'"),
            );
            let diff = at(a1, &a3, r) * at(b1, &b3, r) - a1 * b1;
            close(
                f(&contrast("indirect")["estimate"]),
                diff,
                1e-8,
                &format!("{what}: a*b"),
            );
            // The contrasts' intervals are the run's intervals of a3, b3,
            // c3' and the indirect effects' difference, from its replicates.
            let suffix = if r == 1 {
                String::new()
            } else {
                format!("_{r}")
            };
            for (path, key) in [
                ("a", format!("a3{suffix}")),
                ("c_prime", format!("c3_prime{suffix}")),
                ("indirect", format!("indirect_difference{suffix}")),
            ] {
                let ci = run["intervals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|i| i["effect"] == key.as_str() && i["method"] == method)
                    .unwrap();
                assert_eq!(contrast(path)["lower"], ci["lower"], "{what}: {path}");
                assert_eq!(contrast(path)["upper"], ci["upper"], "{what}: {path}");
            }
        }
        if k == 1 {
            // The documented threshold in dei's direct effect.
            assert!((c3[0] + 0.05).abs() < 0.005, "c' contrast {}", c3[0]);
            let c = contrasts.iter().find(|c| c["path"] == "c_prime").unwrap();
            assert!(f(&c["estimate"]["upper"]) < 0.0);
        }
    }
}

/// A panel of `units` x `periods` with unit effects, x and q, and (when
/// `change` is not 0) x's slope larger by `change` where q > 0.5.
fn simulated(seed: u64, units: usize, periods: usize, change: f64) -> medsim::Table {
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let mut rows = Vec::new();
    for i in 0..units {
        let mu: f64 = rng.sample(StandardNormal);
        for t in 0..periods {
            let x: f64 = rng.sample::<f64, _>(StandardNormal) + 0.5 * mu;
            let q: f64 = rng.random();
            let e: f64 = rng.sample(StandardNormal);
            let slope = 1.0 + if q > 0.5 { change } else { 0.0 };
            let y = mu + slope * x + e;
            rows.push(vec![
                format!("u{i:03}"),
                (2000 + t).to_string(),
                format!("{x:?}"),
                format!("{q:?}"),
                format!("{y:?}"),
            ]);
        }
    }
    let headers = ["unit", "time", "x", "q", "y"].map(String::from).to_vec();
    medsim::Table::new("<simulated>", headers, rows)
}

/// A simulation study of the test and the interval: with no threshold, the
/// 5 % single-threshold test (Hansen's residual bootstrap, 199 replicates)
/// rejects within Monte Carlo error of 5 %; with one at 0.5, the 95 % LR
/// confidence set covers it (in the thresholds that split the sample as
/// its candidates do) at about the nominal rate.
#[test]
fn the_f_test_has_its_size_and_the_lr_set_its_coverage() {
    use medsim::internals::resample::threshold::{ThresholdScheme, f_tests};
    let datasets = 300;
    let mut spec = ThresholdSpec::new("unit", "time", "y", &["x"], "q");
    spec.grid = 50;
    spec.trim = 0.1;
    let mut rejected = 0;
    let mut covered = 0;
    for d in 0..datasets {
        let table = simulated(1000 + d, 40, 5, 0.0);
        let prepared = Prepared::new(&table, &spec).unwrap();
        let grid = Grid::new(&prepared).unwrap();
        let fit = estimate(&prepared, &grid).unwrap();
        let test = &f_tests(
            &prepared,
            &grid,
            &fit,
            ThresholdScheme::Residual,
            199,
            d,
            2,
            &|_, _| Ok(()),
        )
        .unwrap()[0];
        rejected += usize::from(test.p_value < 0.05);

        let table = simulated(5000 + d, 40, 5, 0.6);
        let prepared = Prepared::new(&table, &spec).unwrap();
        let grid = Grid::new(&prepared).unwrap();
        let fit = estimate(&prepared, &grid).unwrap();
        let (lower, upper) = fit.steps[0].searches[0].interval;
        // The thresholds that split the sample as [lower, upper]'s
        // candidates do run up to the next value of q above upper.
        let column = table.column("q").unwrap();
        let next = table
            .rows
            .iter()
            .map(|r| r[column].parse::<f64>().unwrap())
            .filter(|&v| v > upper)
            .fold(f64::INFINITY, f64::min);
        covered += usize::from(lower <= 0.5 && 0.5 < next);
    }
    let size = rejected as f64 / datasets as f64;
    let coverage = covered as f64 / datasets as f64;
    eprintln!("size {size}, coverage {coverage}");
    // Three Monte Carlo SDs: sqrt(0.05 0.95 / 300) = 0.0126.
    assert!((size - 0.05).abs() <= 0.038, "the 5 % test rejects {size}");
    assert!(
        (coverage - 0.95).abs() <= 0.038,
        "the 95 % LR set covers {coverage}"
    );
}
