//! What several test files share: the GPU context (a failure under CI when
//! there is no adapter, a skip elsewhere) and the list of engines that the
//! shared suite runs, one trait, two implementations.

#![allow(dead_code)]

#[cfg(feature = "gpu")]
use medsim::internals::gpu::engine::{GpuEngine, GpuOptions};
#[cfg(feature = "gpu")]
use medsim::internals::gpu::{GpuContext, shared_context};
use medsim::internals::model::design::Design;
use medsim::internals::model::estimate::SystemFit;
use medsim::internals::model::panel::Panel;
#[cfg(feature = "gpu")]
use medsim::internals::resample::engine::Precision;
use medsim::internals::resample::engine::{CpuEngine, Engine};
use medsim::internals::resample::permutation::PermutationEngine;
use medsim::internals::resample::scheme::WeightPlan;

/// The process's GPU context, or None (with a note) where there is no
/// adapter; under CI (CI=true) a missing adapter is a failure.
#[cfg(feature = "gpu")]
pub fn gpu_context() -> Option<&'static GpuContext> {
    match shared_context(None).expect("the adapter opens") {
        Some(ctx) => {
            eprintln!(
                "GPU adapter: {} ({:?}, {:?})",
                ctx.info.name, ctx.info.device_type, ctx.info.backend
            );
            Some(ctx)
        }
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("no GPU adapter found under CI: install mesa-vulkan-drivers (lavapipe)")
        }
        None => {
            eprintln!("SKIPPED: no GPU adapter (install mesa-vulkan-drivers for lavapipe)");
            None
        }
    }
}

/// A context of the test's own, for tests that switch a kernel choice
/// (`set_generated_solves`, `set_subgroup_gemm`, `set_draw_weights`): on the
/// shared one the switch would change the kernels of tests running beside
/// them, and kernels that agree only to rounding on hardware (a driver may
/// fuse a*b+c differently in two codes) would then differ there. None as
/// `gpu_context` says.
#[cfg(feature = "gpu")]
pub fn private_gpu_context() -> Option<GpuContext> {
    gpu_context()?;
    GpuContext::new(None).expect("the adapter opens")
}

/// Whether the tests have a GPU adapter (see `gpu_context`; never in a
/// build without the `gpu` feature).
pub fn has_gpu() -> bool {
    #[cfg(feature = "gpu")]
    return gpu_context().is_some();
    #[cfg(not(feature = "gpu"))]
    false
}

/// How close an engine's replicates must be to the exact ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// Relative to the value (f64 engines).
    Relative(f64),
    /// Relative to the statistic's spread over the replicates (f32).
    SdFraction(f64),
}

/// An engine under test, with how close to the exact replicates it must be.
pub type Labelled<'a> = (String, Box<dyn Engine + 'a>, Tolerance);

/// `cpu` (exact to 1e-9), then on a GPU the engine `gpu` builds in f64
/// (where the adapter has it) and f32, with batches of 16 replicates so
/// several are in flight.
#[cfg(feature = "gpu")]
fn with_gpu_variants<'a>(
    cpu: Box<dyn Engine + 'a>,
    studentize: bool,
    gpu: impl Fn(&'static GpuContext, GpuOptions) -> GpuEngine<'a>,
) -> Vec<Labelled<'a>> {
    let mut out: Vec<Labelled<'a>> = vec![("cpu".into(), cpu, Tolerance::Relative(1e-9))];
    let Some(ctx) = gpu_context() else {
        return out;
    };
    let mut precisions = vec![(Precision::F32, Tolerance::SdFraction(1e-4))];
    if ctx.has_f64() {
        precisions.insert(0, (Precision::F64, Tolerance::Relative(1e-9)));
    }
    for (precision, tol) in precisions {
        let options = GpuOptions {
            precision,
            max_batch: 16,
            studentize,
            ..GpuOptions::default()
        };
        out.push((
            format!("gpu {precision:?}"),
            Box::new(gpu(ctx, options)),
            tol,
        ));
    }
    out
}

/// Every engine that can run `plan` here (see `with_gpu_variants`);
/// `studentize` adds each replicate's own SEs.
pub fn engines<'a>(
    design: &'a Design,
    fit: &'a SystemFit,
    plan: &WeightPlan,
    studentize: bool,
) -> Vec<Labelled<'a>> {
    let cpu = CpuEngine::new(design, fit, plan.clone(), 7, 2, studentize).unwrap();
    #[cfg(not(feature = "gpu"))]
    return vec![("cpu".into(), Box::new(cpu), Tolerance::Relative(1e-9))];
    #[cfg(feature = "gpu")]
    with_gpu_variants(Box::new(cpu), studentize, |ctx, options| {
        GpuEngine::new(ctx, design, fit, plan.clone(), options).unwrap()
    })
}

/// The permutation engines: the CPU's and the GPU's.
pub fn permutation_engines<'a>(
    design: &'a Design,
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))] fit: &'a SystemFit,
    panel: &'a Panel,
    seed: u64,
) -> Vec<Labelled<'a>> {
    let cpu = PermutationEngine::new(design, panel, seed, 3, 2).unwrap();
    #[cfg(not(feature = "gpu"))]
    return vec![("cpu".into(), Box::new(cpu), Tolerance::Relative(1e-9))];
    #[cfg(feature = "gpu")]
    with_gpu_variants(Box::new(cpu), false, |ctx, options| {
        GpuEngine::permutation(ctx, design, fit, panel, seed, options).unwrap()
    })
}

/// The model of tests/fixtures/wild_panel.csv (the wildboottest fixture).
pub fn wild_panel_spec() -> medsim::internals::model::spec::ModelSpec {
    medsim::internals::model::spec::ModelSpec::xmy(
        "unit",
        "year",
        &["c1"],
        medsim::internals::model::spec::FixedEffects::UnitTime,
    )
}

/// A test fixture's path.
pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Check `got` against `want` (replicate-major, `n_stats` per replicate)
/// within `tol`; `label` names the engine in failures.
pub fn assert_close(label: &str, got: &[f64], want: &[f64], n_stats: usize, tol: Tolerance) {
    let count = want.len() / n_stats;
    for s in 0..n_stats {
        let col: Vec<f64> = (0..count).map(|r| want[r * n_stats + s]).collect();
        let mean = col.iter().sum::<f64>() / count as f64;
        let sd = (col.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()
            / (count as f64 - 1.0).max(1.0))
        .sqrt();
        for r in 0..count {
            let (g, w) = (got[r * n_stats + s], want[r * n_stats + s]);
            let (err, bound) = match tol {
                Tolerance::Relative(t) => ((g - w).abs(), t * w.abs().max(1e-12)),
                Tolerance::SdFraction(t) => ((g - w).abs(), t * sd),
            };
            assert!(
                err <= bound,
                "{label}: replicate {r} statistic {s}: {g} vs {w} (|diff| {err:.3e} > {bound:.3e})"
            );
        }
    }
}

/// `spec`'s estimation sample of `table`, its design and its full-sample
/// fit: every engine test's set-up.
pub fn fitted(
    table: &medsim::internals::data::table::Table,
    spec: &medsim::internals::model::spec::ModelSpec,
) -> (Panel, Design, SystemFit) {
    let panel = Panel::from_table(table, spec).unwrap();
    let design = Design::build(&panel, spec.fixed_effects).unwrap();
    let eqs = medsim::internals::model::mediation::equations(&design);
    let fit = medsim::internals::model::estimate::fit_system(&design, &eqs).unwrap();
    (panel, design, fit)
}

/// Every engine of `engines` against the first (the CPU's): the same
/// layout, no degenerate replicate, replicates `0..count` within each
/// engine's tolerance, every statistic but those in `skip`.
pub fn engines_agree(engines: Vec<Labelled<'_>>, count: usize, what: &str, skip: &[usize]) {
    let n = engines[0].1.layout().len();
    let mut want = vec![0.0; count * n];
    engines[0].1.compute(0, &mut want).unwrap();
    let kept = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(&(i % n)))
            .map(|(_, x)| *x)
            .collect()
    };
    for (label, engine, tol) in &engines[1..] {
        assert_eq!(engine.layout(), engines[0].1.layout(), "{label}");
        let mut got = vec![0.0; count * n];
        assert_eq!(engine.compute(0, &mut got).unwrap(), 0, "{what} {label}");
        let label = format!("{what} {label}");
        assert_close(&label, &kept(&got), &kept(&want), n - skip.len(), *tol);
    }
    eprintln!("{what}: {} engines agree", engines.len());
}

/// `medsim run` on the fixture `data`'s columns unit, time, y (outcome)
/// and x (treatment): the arguments the rest follow.
pub fn fixture_run(data: &str) -> Vec<&str> {
    vec![
        "run",
        "--data",
        data,
        "--unit",
        "unit",
        "--time",
        "time",
        "--outcome",
        "y",
        "--treatment",
        "x",
    ]
}

/// `medsim run` on `data` (columns unit, time, x, y; no groups, no other
/// mediator sets) with each case's flags (and `--controls c1,c2` unless
/// it names controls, `--mediator m` unless it names mediators): each must
/// exit 2 with its message and write nothing.
pub fn assert_refused(data: &std::path::Path, cases: &[(&[&str], &str)]) {
    let dir = tempfile::tempdir().unwrap();
    for (k, (extra, message)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("r{k}"));
        let mut args = fixture_run(data.to_str().unwrap());
        args.extend([
            "--group",
            "",
            "--also-mediators",
            "",
            "-q",
            "--no-plots",
            "--out",
            out.to_str().unwrap(),
        ]);
        if !extra.contains(&"--controls") {
            args.extend(["--controls", "c1,c2"]);
        }
        let names_mediators = ["--mediator", "--serial"].iter().any(|f| extra.contains(f));
        if !names_mediators {
            args.extend(["--mediator", "m"]);
        }
        args.extend(extra.iter());
        let done = medsim(dir.path(), &args);
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
        assert!(!out.exists(), "{extra:?} wrote {}", out.display());
    }
}

/// The restricted (WCR) wild p-value of equation `e`'s coefficient on
/// column `col`, over replicates `0..replicates` of `scheme` drawn with
/// `seed`: what a run with `wild_tests` reports for it.
pub fn wcr_p_value(
    design: &Design,
    fit: &SystemFit,
    e: usize,
    col: usize,
    scheme: medsim::internals::resample::scheme::Scheme,
    seed: u64,
    replicates: u64,
) -> f64 {
    let eqs = medsim::internals::model::mediation::equations(design);
    let test = medsim::internals::resample::wild::RestrictedTest::new(design, fit, e, &eqs[e], col)
        .unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let plan = WeightPlan::new(scheme, seed, design.n_clusters, None);
    test.p_value(&plan, replicates, 64, &pool)
}

/// One pairs replicate of `table` (columns `unit`, `time` and the numeric
/// `names`) materialised: a unit drawn k times (weight k) is k units. Its
/// equations refit from scratch with two-way effects (unit demeaning and
/// period dummies) by QR: the oracle of the replicate solvers.
pub struct Materialised {
    /// Each row's replicate unit and period.
    rows: Vec<(usize, usize)>,
    units: usize,
    periods: usize,
    names: Vec<String>,
    values: Vec<Vec<f64>>,
}

impl Materialised {
    pub fn new(table: &medsim::internals::data::table::Table, names: &[&str], w: &[f64]) -> Self {
        let col = |name: &str| table.column(name).unwrap();
        let sorted = |name: &str| {
            let mut v: Vec<String> = table.rows.iter().map(|r| r[col(name)].clone()).collect();
            v.sort();
            v.dedup();
            v
        };
        let (units, periods) = (sorted("unit"), sorted("time"));
        let mut rows = Vec::new();
        let mut values = vec![Vec::new(); names.len()];
        let mut next = 0;
        for (g, unit) in units.iter().enumerate() {
            for _ in 0..w[g] as usize {
                for r in table.rows.iter().filter(|r| &r[col("unit")] == unit) {
                    let t = periods.iter().position(|p| *p == r[col("time")]).unwrap();
                    rows.push((next, t));
                    for (v, n) in values.iter_mut().zip(names) {
                        v.push(r[col(n)].parse::<f64>().unwrap());
                    }
                }
                next += 1;
            }
        }
        Materialised {
            rows,
            units: next,
            periods: periods.len(),
            names: names.iter().map(|n| n.to_string()).collect(),
            values,
        }
    }

    /// Column `name` over the replicate's rows.
    pub fn column(&self, name: &str) -> Vec<f64> {
        let k = self.names.iter().position(|n| n == name).unwrap();
        self.values[k].clone()
    }

    /// The coefficients of `dep` on `regs` with unit and period effects.
    pub fn fit(&self, dep: &[f64], regs: &[&[f64]]) -> Vec<f64> {
        let demean = |c: &[f64]| -> Vec<f64> {
            let mut sum = vec![0.0; self.units];
            let mut count = vec![0.0; self.units];
            for (r, v) in self.rows.iter().zip(c) {
                sum[r.0] += v;
                count[r.0] += 1.0;
            }
            self.rows
                .iter()
                .zip(c)
                .map(|(r, v)| v - sum[r.0] / count[r.0])
                .collect()
        };
        let mut cols: Vec<Vec<f64>> = regs.iter().map(|c| demean(c)).collect();
        for t in 1..self.periods {
            let dummy: Vec<f64> = self
                .rows
                .iter()
                .map(|r| f64::from(u8::from(r.1 == t)))
                .collect();
            cols.push(demean(&dummy));
        }
        qr_least_squares(cols, demean(dep))
    }
}

/// A JSON array of numbers.
pub fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The medsim binary run in `dir` with `args` (NO_COLOR set).
pub fn medsim(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_medsim"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

/// Least squares by Householder QR: coefficients of y on the columns of x
/// (column-major, n rows).
pub fn qr_least_squares(mut x: Vec<Vec<f64>>, mut y: Vec<f64>) -> Vec<f64> {
    let n = y.len();
    let k = x.len();
    for j in 0..k {
        let norm = x[j][j..].iter().map(|v| v * v).sum::<f64>().sqrt();
        let alpha = if x[j][j] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = x[j][j..].to_vec();
        v[0] -= alpha;
        let vnorm2: f64 = v.iter().map(|a| a * a).sum();
        if vnorm2 == 0.0 {
            continue;
        }
        let reflect = |col: &mut [f64]| {
            let dot: f64 = col[j..].iter().zip(&v).map(|(a, b)| a * b).sum();
            let f = 2.0 * dot / vnorm2;
            for (c, vi) in col[j..].iter_mut().zip(&v) {
                *c -= f * vi;
            }
        };
        for col in x.iter_mut().skip(j) {
            reflect(col);
        }
        reflect(&mut y);
    }
    let mut beta = vec![0.0; k];
    for i in (0..k).rev() {
        let mut s = y[i];
        for j in i + 1..k {
            s -= x[j][i] * beta[j];
        }
        beta[i] = s / x[i][i];
    }
    let _ = n;
    beta
}
