//! Simulation studies: the sizes and coverages the mediation-methods
//! literature reports, within Monte Carlo error; the sample-size search;
//! determinism; the shipped study configs; CPU and GPU engines alike.

use std::path::Path;
use std::process::Command;

use medsim::internals::resample::spec::{BackendChoice, ResampleSpec};
use medsim::internals::study::simulate::{Cell, CellResult, Dgp, Study, run};

mod common;

fn study(dgp: Dgp, cells: Vec<Cell>, datasets: u64, replicates: u64, methods: &[&str]) -> Study {
    Study {
        dgp,
        cells,
        datasets,
        methods: methods.iter().map(|m| m.parse().unwrap()).collect(),
        levels: vec![0.95],
        seed: 11,
        mc_draws: 2000,
        resampling: ResampleSpec {
            replicates,
            backend: BackendChoice::Cpu,
            wild_tests: false,
            ..Default::default()
        },
        target: None,
    }
}

fn cell(n: u64, a: f64, b: f64) -> Cell {
    Cell {
        n,
        a,
        b,
        c_prime: 0.0,
        a3: None,
        b3: None,
    }
}

fn rate(r: &CellResult, method: &str) -> (f64, f64) {
    let m = &r.methods[method];
    (m.rejection_rate.unwrap(), m.mc_se.unwrap())
}

/// Type I error on the iid model. With a = b = 0 every test of a*b is far
/// below its level (MacKinnon et al. 2002, 2004: the product's tests are
/// conservative when both paths are zero); the joint test's size is then
/// alpha^2 = 0.0025 (two independent t tests), and the percentile
/// bootstrap's stays within four Monte Carlo SEs of that. With one path
/// zero and the other large (a = 0, b = 0.59, n = 100), the percentile
/// bootstrap is close to its nominal 5 % and the bias-corrected bootstrap
/// rejects more often (Fritz, Taylor and MacKinnon 2012), on the same
/// datasets, while the permutation test (X permuted across units) is exact
/// there. (medsim's SEs are cluster-robust, here HC1 with each
/// observation its own cluster, so the t-based tests run a little above
/// the classical OLS tests of the literature at n = 100.)
#[test]
fn type_one_error_of_the_tests_of_the_indirect_effect() {
    let d = 2000;
    let s = study(
        Dgp::Iid,
        vec![cell(100, 0.0, 0.0), cell(100, 0.0, 0.59)],
        d,
        499,
        &["sobel", "joint", "percentile", "bc", "permutation"],
    );
    let (results, _, seconds) = run(&s, 0, &|_, _| Ok(())).unwrap();
    eprintln!("{} datasets x 499 replicates in {seconds:.1} s", 2 * d);
    let bound = |p: f64| p + 4.0 * (p * (1.0 - p) / d as f64).sqrt();
    let zero = &results[0];
    for m in ["sobel", "joint", "percentile", "bc"] {
        eprintln!("a = b = 0: {m} rejects {:.4}", rate(zero, m).0);
    }
    assert!(rate(zero, "joint").0 <= bound(0.0025));
    assert!(rate(zero, "percentile").0 <= bound(0.0025));
    assert!(rate(zero, "sobel").0 <= rate(zero, "percentile").0 + 1e-12);
    let one = &results[1];
    // With a = c' = 0, X is independent of (M, Y): the permutation test is
    // exact, its size 5 %.
    let (perm, se) = rate(one, "permutation");
    assert!(
        (perm - 0.05).abs() <= 4.0 * se.max(0.0049),
        "permutation {perm}"
    );
    for m in ["sobel", "joint", "percentile", "bc", "permutation"] {
        eprintln!(
            "a = 0, b = 0.59: {m} rejects {:.4} ({:.4})",
            rate(one, m).0,
            rate(one, m).1
        );
    }
    let (p, se) = rate(one, "percentile");
    assert!((p - 0.05).abs() <= 4.0 * se.max(0.0049), "percentile {p}");
    assert!(rate(one, "bc").0 >= p + 0.01, "bc {:?}", rate(one, "bc"));
    // With one path large, Sobel's test is about the other path's t test:
    // near its level, unlike at a = b = 0.
    let (sobel, se) = rate(one, "sobel");
    assert!(
        (sobel - 0.05).abs() <= 4.0 * se.max(0.0049),
        "sobel {sobel}"
    );
}

/// On the panel DGP (fixed effects, AR(1) errors within city, clustered
/// SEs) every interval covers the true a*b at its nominal 95 % within four
/// Monte Carlo SEs, and power rises with the number of cities.
#[test]
fn coverage_of_a_known_indirect_effect_on_the_panel() {
    let d = 300;
    let panel = Dgp::Panel {
        years: 6,
        rho: 0.5,
        heterogeneity: 0.0,
    };
    let s = study(
        panel,
        vec![
            Cell {
                n: 100,
                a: 0.19,
                b: 0.029,
                c_prime: -0.097,
                a3: None,
                b3: None,
            },
            Cell {
                n: 30,
                a: 0.19,
                b: 0.01,
                c_prime: -0.097,
                a3: None,
                b3: None,
            },
            Cell {
                n: 120,
                a: 0.19,
                b: 0.01,
                c_prime: -0.097,
                a3: None,
                b3: None,
            },
        ],
        d,
        399,
        &["sobel", "monte_carlo", "percentile", "bca", "studentized"],
    );
    let (results, _, _) = run(&s, 0, &|_, _| Ok(())).unwrap();
    let se = (0.95 * 0.05 / d as f64).sqrt();
    for (name, m) in &results[0].methods {
        let c = m.coverage.unwrap();
        eprintln!(
            "panel: {name} covers {c:.3}, width {:.5}",
            m.mean_width.unwrap()
        );
        assert!((c - 0.95).abs() <= 4.0 * se, "{name}: coverage {c}");
        assert_eq!(m.failed, 0);
    }
    for m in ["sobel", "percentile"] {
        assert!(rate(&results[2], m).0 > rate(&results[1], m).0, "{m}");
    }
}

/// The sample-size search: for each method, the reported n reaches the
/// target and n - 1 (evaluated) does not; the evaluated sizes are cells.
#[test]
fn sample_size_search_brackets_the_target() {
    let mut s = study(
        Dgp::Iid,
        vec![cell(20, 0.39, 0.39), cell(160, 0.39, 0.39)],
        300,
        199,
        &["sobel", "joint", "percentile"],
    );
    s.target = Some(0.8);
    let (cells, sizes, _) = run(&s, 0, &|_, _| Ok(())).unwrap();
    assert_eq!(sizes.len(), 3);
    let power = |n: u64, m: &str| {
        cells
            .iter()
            .find(|c| c.parameters.n == n)
            .map(|c| c.methods[m].rejection_rate.unwrap())
    };
    for size in &sizes {
        let n = size.n.unwrap();
        assert!(power(n, &size.method).unwrap() >= 0.8, "{size:?}");
        assert!(power(n - 1, &size.method).unwrap() < 0.8, "{size:?}");
        eprintln!(
            "{}: n = {n} [{:?}, {:?}]",
            size.method, size.n_low, size.n_high
        );
    }
    // Sobel needs more observations than the joint test (Fritz and
    // MacKinnon 2007).
    let n_of = |m: &str| sizes.iter().find(|s| s.method == m).unwrap().n.unwrap();
    assert!(n_of("sobel") > n_of("joint"));
}

fn medsim(cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_medsim"))
        .current_dir(cwd)
        .args(args)
        .output()
        .unwrap()
}

fn without_timings(path: &Path) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let o = v.as_object_mut().unwrap();
    for k in ["seconds", "fits_per_second", "replicates_per_second"] {
        o.remove(k);
    }
    v
}

/// The shipped study configs run (reduced with flags), write
/// simulation.json and simulation.csv, and give the same results whatever
/// the thread count.
#[test]
fn shipped_study_configs_run_and_are_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let repo = env!("CARGO_MANIFEST_DIR");
    for (config, cells) in [
        ("power_iid", 36),
        ("coverage_panel", 1),
        ("sobel_mackinnon2002", 20),
        ("power_moderated", 9),
    ] {
        let path = format!("{repo}/configs/{config}.toml");
        let mut outs = Vec::new();
        for threads in ["1", "2"] {
            let out = dir.path().join(format!("{config}-{threads}"));
            let o = medsim(
                dir.path(),
                &[
                    "simulate",
                    &path,
                    "--datasets",
                    "8",
                    "-B",
                    "99",
                    "--threads",
                    threads,
                    "-q",
                    "--out",
                    out.to_str().unwrap(),
                ],
            );
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let s = without_timings(&out.join("simulation.json"));
            assert_eq!(s["cells"].as_array().unwrap().len(), cells);
            let csv = std::fs::read_to_string(out.join("simulation.csv")).unwrap();
            let methods = s["cells"][0]["methods"].as_object().unwrap().len();
            assert_eq!(csv.lines().count(), 1 + cells * methods);
            outs.push(s);
        }
        assert_eq!(outs[0], outs[1], "{config}");
    }
    // The zipped study's cells are the zipped values.
    let zipped = without_timings(&dir.path().join("sobel_mackinnon2002-1/simulation.json"));
    let p = &zipped["cells"][7]["parameters"];
    assert_eq!((p["n"].as_u64(), p["a"].as_f64()), (Some(200), Some(0.14)));
    // A bad [simulation] value: file, line, key, exit 2.
    std::fs::write(
        dir.path().join("bad.toml"),
        "name = \"b\"\n[simulation]\nmethods = [\"sobol\"]\n",
    )
    .unwrap();
    let o = medsim(dir.path(), &["simulate", "bad.toml"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml:3:") && err.contains("'sobol'"),
        "{err}"
    );
}

/// A moderated study (PROCESS model 7: M = (a + a3 W) X + e_M with a
/// standard normal moderator W): the percentile interval of the index of
/// moderated mediation covers a3 b within Monte Carlo error of 95 % (four
/// SEs: 0.039 at 500 datasets), the test of the index keeps its size at
/// a3 = 0 and has power at a3 = 0.2; the datasets carry W.
#[test]
fn coverage_of_the_index_of_moderated_mediation() {
    let d = 500;
    let moderated = |a3: f64| Cell {
        a3: Some(a3),
        ..cell(200, 0.4, 0.4)
    };
    let s = study(
        Dgp::Iid,
        vec![moderated(0.2), moderated(0.0)],
        d,
        399,
        &["sobel", "percentile"],
    );
    let (results, _, _) = run(&s, 0, &|_, _| Ok(())).unwrap();
    let se = (0.95 * 0.05 / d as f64).sqrt();
    assert!((results[0].true_indirect - 0.08).abs() < 1e-15);
    assert_eq!(results[1].true_indirect, 0.0);
    for r in &results {
        let cover = r.methods["percentile"].coverage.unwrap();
        eprintln!("a3 = {:?}: percentile covers {cover}", r.parameters.a3);
        assert!((cover - 0.95).abs() < 4.0 * se, "{cover}");
    }
    let (power, _) = rate(&results[0], "percentile");
    let (size, _) = rate(&results[1], "percentile");
    assert!(size <= 0.05 + 4.0 * se, "size {size}");
    assert!(power > 0.5, "power {power}");
    let table = medsim::internals::study::simulate::iid_table(11, 0, &moderated(0.2));
    assert_eq!(table.headers, ["id", "period", "x", "w", "m", "y"]);
}

/// A moderated study refuses what it cannot judge, naming the key.
#[test]
fn moderated_studies_refuse_by_key() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, key, message) in [
        (
            "a3 = 0.2\nb3 = 0.1\n",
            "simulation.b3",
            "give a3 or b3, not both",
        ),
        (
            "a3 = 0.2\ndgp = \"panel\"\n",
            "simulation.dgp",
            "by the iid process only",
        ),
        (
            "a3 = 0.2\nmethods = [\"joint\"]\n",
            "simulation.methods",
            "'joint' does not judge the index",
        ),
    ] {
        std::fs::write(
            dir.path().join("m.toml"),
            format!("name = \"m\"\n[simulation]\n{extra}"),
        )
        .unwrap();
        let o = medsim(dir.path(), &["simulate", "m.toml", "-q"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(key) && err.contains(message), "{err}");
        assert!(!dir.path().join("results").exists());
    }
}

/// The same study on the GPU engine (f32 and, where the adapter has it,
/// f64) gives the CPU engine's verdicts: every rejection and coverage rate
/// equal (a bound within f32 rounding of zero or of the truth could flip
/// one dataset: at most one), mean widths within 1e-5 relative. Both GPU
/// paths: the datasets stacked in one batch (pairs and wild without
/// studentized intervals) and one engine per dataset (studentized, and a
/// moderated study).
#[cfg(feature = "gpu")]
#[test]
fn gpu_and_cpu_studies_agree() {
    let Some(ctx) = common::gpu_context() else {
        return;
    };
    let cells = vec![cell(60, 0.39, 0.39), cell(60, 0.0, 0.39)];
    let wild = medsim::internals::resample::scheme::Scheme::Wild(
        medsim::internals::resample::scheme::WildWeights::Rademacher,
    );
    for (methods, scheme, stacked) in [
        (
            &["percentile", "bc", "bca", "studentized"][..],
            medsim::internals::resample::scheme::Scheme::Pairs,
            false,
        ),
        (
            &["percentile", "basic", "normal", "bc", "bca"][..],
            medsim::internals::resample::scheme::Scheme::Pairs,
            true,
        ),
        (&["percentile", "bc"][..], wild, true),
    ] {
        let mut cpu = study(Dgp::Iid, cells.clone(), 40, 199, methods);
        cpu.resampling.scheme = scheme;
        agree(ctx, &cpu, methods, stacked);
    }
    // A moderated study (its target the index a3 b): not stacked (each
    // equation is a system of its own), one GPU engine per dataset.
    let moderated = vec![Cell {
        a3: Some(0.2),
        ..cell(60, 0.39, 0.39)
    }];
    let methods = ["percentile", "bc", "bca"];
    let cpu = study(Dgp::Iid, moderated, 40, 199, &methods);
    agree(ctx, &cpu, &methods, false);
}

#[cfg(feature = "gpu")]
fn agree(
    ctx: &medsim::internals::gpu::GpuContext,
    cpu: &medsim::internals::study::simulate::Study,
    methods: &[&str],
    stacked: bool,
) {
    let (want, _, _) = run(cpu, 0, &|_, _| Ok(())).unwrap();
    let mut precisions = vec![medsim::internals::resample::engine::Precision::F32];
    if ctx.has_f64() {
        precisions.push(medsim::internals::resample::engine::Precision::F64);
    }
    for precision in precisions {
        let mut gpu = cpu.clone();
        gpu.resampling.backend = BackendChoice::Gpu;
        gpu.resampling.precision = Some(precision);
        assert_eq!(
            medsim::internals::study::simulate::stacks(&gpu).unwrap(),
            stacked
        );
        let (got, _, _) = run(&gpu, 2, &|_, _| Ok(())).unwrap();
        for (w, g) in want.iter().zip(&got) {
            for m in methods {
                let (a, b) = (&w.methods[*m], &g.methods[*m]);
                let one = 1.0 / 40.0 + 1e-12;
                assert!(
                    (a.rejection_rate.unwrap() - b.rejection_rate.unwrap()).abs() <= one,
                    "{precision:?} {m}"
                );
                assert!(
                    (a.coverage.unwrap() - b.coverage.unwrap()).abs() <= one,
                    "{precision:?} {m}"
                );
                let (x, y) = (a.mean_width.unwrap(), b.mean_width.unwrap());
                assert!(
                    (x - y).abs() <= 1e-5 * x,
                    "{precision:?} {m}: width {x} vs {y}"
                );
            }
        }
    }
}

/// Several levels judge every method on the same datasets: the level-0.95
/// results of a study with levels [0.9, 0.95] are those of the study with
/// 0.95 alone, bit for bit, and at 0.9 every interval method's intervals
/// are narrower, cover less and reject at least as often.
#[test]
fn several_levels_share_the_datasets() {
    let methods = ["sobel", "joint", "monte_carlo", "percentile", "bca"];
    let cells = vec![cell(80, 0.14, 0.39), cell(80, 0.39, 0.39)];
    let one = study(Dgp::Iid, cells.clone(), 60, 299, &methods);
    let mut both = one.clone();
    both.levels = vec![0.9, 0.95];
    let (alone, _, _) = run(&one, 0, &|_, _| Ok(())).unwrap();
    let (pair, _, _) = run(&both, 0, &|_, _| Ok(())).unwrap();
    assert_eq!(pair.len(), 2 * alone.len());
    for (k, at95) in alone.iter().enumerate() {
        let (low, high) = (&pair[2 * k], &pair[2 * k + 1]);
        assert_eq!((low.level, high.level), (0.9, 0.95));
        assert_eq!(high, at95);
        assert_eq!(low.parameters, at95.parameters);
        for m in methods {
            let (l, h) = (&low.methods[m], &high.methods[m]);
            assert!(
                l.rejection_rate.unwrap() >= h.rejection_rate.unwrap(),
                "{m}"
            );
            if m != "joint" {
                assert!(l.mean_width.unwrap() < h.mean_width.unwrap(), "{m}");
                assert!(l.coverage.unwrap() <= h.coverage.unwrap(), "{m}");
            }
        }
    }
}
