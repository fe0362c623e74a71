//! `medsim bench`: a fixed suite of workloads on every engine of the
//! machine (the CPU engine, each GPU adapter) and a refit-per-replicate
//! baseline, in one run so the ratios are fair. Each workload is warmed up
//! once, then repeated; it reports the median and range of replicates per
//! second, the achieved FLOP/s from a stated per-replicate count, and its
//! fraction of the engine's measured peak. The panel threshold model's
//! single-threshold F test runs on every engine (the CPU's `Grid`
//! searches, the GPU's GEMM and search stages) beside its refit baseline
//! (the replicate's outcome refitted by least squares at each of the 300
//! candidates).
//!
//! Per-replicate work of a reweighting scheme: the weights times the
//! per-cluster statistics, `2 G w` flops, w the columns the engine's GEMM
//! multiplies: on the GPU all `p = q (q + 1) / 2` packed Gram entries (q
//! columns: treatment, controls, period dummies, mediators, outcome; a
//! moderated model's three equations' systems side by side, each factored:
//! `resample::whiten`), on the
//! CPU those that differ between clusters (`engine::split_columns`; a
//! balanced panel's period-dummy block is the same in every cluster); then
//! a Cholesky factorisation of the regressors (`q^3 / 3`) and a back
//! substitution per equation (`(m + 2) q^2`), counted as stated rather than
//! as executed (they are a few percent of the GEMM). Wild: the weights
//! times the cluster influences of the 2m + 2 coefficients, `2 G (2m + 2)`.
//!
//! Peaks are measured, not taken from data sheets: the CPU's f64 GEMM on
//! every worker thread (the CPU engine's own GEMM library), each GPU
//! adapter's f32 fused multiply-add throughput (`shaders/peak.wgsl`). The
//! fraction of peak is the achieved rate over that ceiling; it says how
//! much of the arithmetic the device can do the workload uses, not whether
//! the workload is bound by memory instead (see the README's roofline
//! note).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::synthetic::{SyntheticParams, generate};
use crate::data::table::Table;
use crate::error::{Error, Result};
use crate::model::design::Design;
use crate::model::mediation::analyse;
use crate::model::panel::Panel;
use crate::model::spec::default_spec;
use crate::model::spec::{InferenceSpec, ModelSpec};
use crate::model::threshold::{Grid, Prepared, ThresholdFit, ThresholdSpec, estimate};
use crate::resample::intervals::Method;
use crate::resample::scheme::{Scheme, WeightPlan, WildWeights};
use crate::resample::spec::{BackendChoice, ResampleSpec};
use crate::resample::threshold::{Null, ThresholdScheme, f_test};
use crate::study::backend::{ThresholdBackend, threshold_engine};
use crate::study::resampling::resample;
use crate::study::stages::{cpu_flops, cpu_peak, system_flops};

/// Where a workload runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Engine {
    Cpu,
    /// A GPU adapter, by name.
    Gpu(String),
    /// Rebuilding the resampled panel and refitting the model per
    /// replicate, as a user of a general-purpose package does.
    Refit,
}

impl Engine {
    pub fn label(&self) -> String {
        match self {
            Engine::Cpu => "cpu".into(),
            Engine::Gpu(name) => format!("gpu: {name}"),
            Engine::Refit => "refit baseline".into(),
        }
    }
}

/// One measured workload on one engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub workload: String,
    pub engine: String,
    pub replicates: u64,
    pub repeats: usize,
    pub median_replicates_per_second: f64,
    pub min_replicates_per_second: f64,
    pub max_replicates_per_second: f64,
    /// Flops per replicate (see the module doc), if stated.
    pub flops_per_replicate: Option<f64>,
    pub gflops: Option<f64>,
    /// `gflops` over the engine's measured peak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction_of_peak: Option<f64>,
}

/// A measured arithmetic ceiling of one engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Peak {
    /// The engine, as the rows name it.
    pub engine: String,
    pub gflops: f64,
    /// What was measured.
    pub measured: String,
}

/// The machine a suite ran on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub threads: usize,
    pub adapters: Vec<String>,
    pub medsim: String,
    /// The git revision medsim was built from (empty in older reports).
    #[serde(default)]
    pub revision: String,
}

/// The suite's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub machine: Machine,
    pub quick: bool,
    /// Each engine's measured peak.
    #[serde(default)]
    pub peaks: Vec<Peak>,
    pub rows: Vec<Row>,
    /// With `--stages`: each GPU workload's stages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<crate::study::stages::StageProfile>,
    /// With `--stages`: the CPU engine's, on one thread.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_stages: Vec<crate::study::stages::CpuStageProfile>,
}

/// This machine: the CPU model (from /proc/cpuinfo where there is one),
/// worker threads and the GPU adapters wgpu lists.
pub fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    Machine {
        cpu,
        threads: rayon::current_num_threads(),
        adapters: crate::study::backend::adapters()
            .iter()
            .map(|a| format!("{} ({}, {})", a.name, a.device_type, a.driver))
            .collect(),
        medsim: env!("CARGO_PKG_VERSION").into(),
        revision: crate::provenance::GIT_REVISION.into(),
    }
}

/// A problem: the data and the model.
struct Problem {
    design: Design,
    panel: Panel,
    analysis: crate::model::mediation::Analysis,
}

impl Problem {
    fn new(table: &Table, spec: &ModelSpec) -> Result<Problem> {
        let panel = Panel::from_table(table, spec)?;
        let design = Design::build(&panel, spec.fixed_effects)?;
        let analysis = analyse(
            &design,
            &InferenceSpec {
                mc_draws: 1000,
                ..Default::default()
            },
        )?;
        Ok(Problem {
            design,
            panel,
            analysis,
        })
    }

    /// The GPU's GEMM width, system size and systems per replicate.
    fn gpu_systems(&self) -> (usize, usize, usize) {
        let q = self.design.q();
        let plain = (crate::math::linalg::packed_len(q), q, 1);
        #[cfg(feature = "gpu")]
        if let Ok(w) = crate::resample::whiten::Whitened::new(&self.design, &self.analysis.fit) {
            return (w.stats.len() / self.design.n_clusters, w.q, w.sets);
        }
        plain
    }

    /// Flops per replicate of `scheme` on `engine` (see the module doc).
    fn flops(&self, engine: &Engine, scheme: Scheme) -> f64 {
        match (engine, scheme) {
            (Engine::Cpu, _) | (_, Scheme::Wild(_)) => {
                let (gemm, solve) = cpu_flops(&self.design, scheme);
                gemm + solve
            }
            // The GPU solves in whitened systems: the design's, or each
            // equation's of a moderated model (`Whitened::sets`), side by
            // side in the GEMM's output.
            _ => {
                let (width, q, systems) = self.gpu_systems();
                solve_flops(&self.design, width, q, systems)
            }
        }
    }
}

/// A reweighting replicate's flops on the GPU: a GEMM `width` wide over the
/// clusters, and `systems` systems of q columns.
fn solve_flops(design: &Design, width: usize, q: usize, systems: usize) -> f64 {
    let g = design.n_clusters as f64;
    2.0 * g * width as f64 + systems as f64 * system_flops(q, design.layout.n_mediators)
}

/// The synthetic panel with `extra` more controls (independent normal
/// noise, deterministic in the seed) named `z1, z2, ...`.
fn panel_table(cities: usize, years: usize, extra: usize) -> Table {
    let mut t = generate(SyntheticParams {
        cities,
        years,
        ..SyntheticParams::default()
    });
    for k in 0..extra {
        t.headers.push(format!("z{}", k + 1));
        let mut z = vec![0.0; t.rows.len()];
        crate::math::rng::normals(7, k as u64, crate::math::rng::STREAM_SIMULATION, &mut z);
        for (row, v) in t.rows.iter_mut().zip(z) {
            row.push(format!("{v}"));
        }
    }
    t
}

/// The default problem with a and b moderated by its sixth control,
/// log population density (PROCESS model 58): five controls, W, X*W, M*W.
fn moderated_spec() -> ModelSpec {
    let mut spec = spec_with(5, &["agglom"]);
    spec.moderation = Some(crate::model::spec::Moderation {
        moderator: "ln_pop_density".into(),
        a: true,
        b: true,
        direct: false,
        center: false,
        at: Default::default(),
    });
    spec
}

fn spec_with(controls: usize, mediators: &[&str]) -> ModelSpec {
    let mut spec = ModelSpec {
        groups: vec!["region".into()],
        ..default_spec()
    };
    spec.mediators = mediators.iter().map(|s| s.to_string()).collect();
    let base = spec.controls.clone();
    spec.controls = (0..controls)
        .map(|k| {
            base.get(k)
                .cloned()
                .unwrap_or_else(|| format!("z{}", k + 1 - base.len()))
        })
        .collect();
    spec
}

/// The threshold test's rows: name and bootstrap.
const THRESHOLD_SCHEMES: [(&str, ThresholdScheme); 2] = [
    (
        "threshold F test (residual), grid 300",
        ThresholdScheme::Residual,
    ),
    (
        "threshold F test (wild), grid 300",
        ThresholdScheme::Wild(WildWeights::Rademacher),
    ),
];

/// The single-threshold model of the default panel: log_ci on dei by
/// regimes of agglom (also a control), the six controls, city and year
/// effects, 300 candidates.
fn threshold_problem(table: &Table) -> Result<(Prepared, Grid, ThresholdFit)> {
    let mut spec = ThresholdSpec::new("city", "year", "log_ci", &["dei"], "agglom");
    spec.controls = default_spec().controls;
    spec.controls.push("agglom".into());
    spec.fixed_effects = crate::model::spec::FixedEffects::UnitTime;
    let prepared = Prepared::new(table, &spec)?;
    let grid = Grid::new(&prepared)?;
    let fit = estimate(&prepared, &grid)?;
    Ok((prepared, grid, fit))
}

/// Time `f` (which does `replicates` replicates) `repeats` times after a
/// warm-up (none from ten million replicates on: such a run warms itself);
/// the row.
fn measure(
    workload: &str,
    engine: &Engine,
    replicates: u64,
    repeats: usize,
    flops: Option<f64>,
    f: &mut dyn FnMut() -> Result<()>,
) -> Result<Row> {
    if replicates < 10_000_000 {
        f()?;
    }
    let mut rates: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f().map(|()| replicates as f64 / t.elapsed().as_secs_f64().max(1e-9))
        })
        .collect::<Result<_>>()?;
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    Ok(Row {
        workload: workload.into(),
        engine: engine.label(),
        replicates,
        repeats,
        median_replicates_per_second: median,
        min_replicates_per_second: rates[0],
        max_replicates_per_second: rates[rates.len() - 1],
        flops_per_replicate: flops,
        gflops: flops.map(|f| f * median / 1e9),
        fraction_of_peak: None,
    })
}

/// The resampling settings of `engine`.
fn spec_for(engine: &Engine, scheme: Scheme, replicates: u64) -> ResampleSpec {
    let (backend, adapter) = match engine {
        Engine::Gpu(name) => (BackendChoice::Gpu, Some(name.clone())),
        _ => (BackendChoice::Cpu, None),
    };
    ResampleSpec {
        scheme,
        replicates,
        methods: vec![Method::Percentile],
        wild_tests: false,
        backend,
        adapter,
        ..Default::default()
    }
}

/// One resampling run of `problem`.
fn resample_once(problem: &Problem, spec: &ResampleSpec) -> Result<()> {
    resample(
        &problem.design,
        &problem.panel,
        &problem.analysis,
        spec,
        1,
        &[0.95],
        &|_, _| Ok(()),
        None,
        0,
    )
    .map(|_| ())
}

/// The refit baseline's replicate r: the drawn clusters' rows (a cluster
/// drawn k times enters k times as k distinct units), the panel, design
/// and analysis rebuilt from the table, as a refit per draw does.
fn refit_once(table: &Table, spec: &ModelSpec, r: u64) -> Result<()> {
    let unit = table
        .column(&spec.unit)
        .ok_or_else(|| Error::Numerical("no unit column".into()))?;
    let mut units: Vec<&str> = table.rows.iter().map(|r| r[unit].as_str()).collect();
    units.sort();
    units.dedup();
    let plan = WeightPlan::new(Scheme::Pairs, 1, units.len(), None);
    let mut w = vec![0.0; units.len()];
    plan.fill(r, &mut w);
    let mut rows = Vec::new();
    for (c, &name) in units.iter().enumerate() {
        for copy in 0..w[c] as usize {
            for row in table.rows.iter().filter(|row| row[unit] == name) {
                let mut row = row.clone();
                row[unit] = format!("{name}#{copy}");
                rows.push(row);
            }
        }
    }
    let resampled = Table::new("<resample>", table.headers.clone(), rows);
    let spec = ModelSpec {
        cluster: spec.unit.clone(),
        ..spec.clone()
    };
    let panel = Panel::from_table(&resampled, &spec)?;
    let design = Design::build(&panel, spec.fixed_effects)?;
    analyse(
        &design,
        &InferenceSpec {
            mc_draws: 1000,
            ..Default::default()
        },
    )
    .map(|_| ())
}

/// Run the suite on `engines`; `quick` is the reduced suite (under a
/// minute here); `progress` hears each row's name before it runs.
pub fn run(
    engines: &[Engine],
    quick: bool,
    with_stages: bool,
    progress: &dyn Fn(&str),
) -> Result<Report> {
    let default_table = panel_table(278, 10, 0);
    let default_spec = spec_with(6, &["agglom"]);
    let suite = Suite {
        quick,
        repeats: if quick { 3 } else { 5 },
        default: Problem::new(&default_table, &default_spec)?,
        two: Problem::new(&default_table, &spec_with(6, &["agglom_sec", "agglom_ter"]))?,
        moderated: Problem::new(&default_table, &moderated_spec())?,
        serial: Problem::new(
            &default_table,
            &ModelSpec {
                serial: true,
                ..spec_with(6, &["agglom_sec", "agglom_ter"])
            },
        )?,
        province_year: Problem::new(
            &default_table,
            &ModelSpec {
                fixed_effects: crate::model::spec::FixedEffects::UnitGroupTime,
                cell_group: Some("province".into()),
                ..spec_with(6, &["agglom"])
            },
        )?,
        default_table,
        default_spec,
        progress,
    };
    // Stages first: their fresh context's start-up is the process's first.
    let mut stages = Vec::new();
    let mut cpu_stages = Vec::new();
    for engine in engines {
        if let (true, Engine::Cpu) = (with_stages, engine) {
            progress("stages of the CPU engine");
            let d = &suite.default;
            let problem = crate::study::stages::Problem {
                design: &d.design,
                fit: &d.analysis.fit,
                panel: &d.panel,
            };
            let batch = ResampleSpec::default().batch;
            cpu_stages =
                crate::study::stages::profile_cpu(&problem, batch, if quick { 21 } else { 101 })?;
        }
        if let (true, Engine::Gpu(name)) = (with_stages, engine) {
            progress(&format!("stages of {}", engine.label()));
            let d = &suite.default;
            let problem = crate::study::stages::Problem {
                design: &d.design,
                fit: &d.analysis.fit,
                panel: &d.panel,
            };
            let (batch, repeats) = if quick { (4096, 3) } else { (16384, 5) };
            stages.extend(crate::study::stages::profile(
                name, &problem, batch, repeats,
            )?);
        }
    }
    let mut rows = Vec::new();
    for engine in engines {
        if *engine == Engine::Refit {
            rows.push(suite.refit_row(engine)?);
            rows.extend(suite.threshold_refit_rows(engine)?);
        } else {
            rows.extend(suite.engine_rows(engine)?);
        }
    }
    let peaks = peaks(engines, progress)?;
    for r in &mut rows {
        r.fraction_of_peak = r
            .gflops
            .zip(peaks.iter().find(|p| p.engine == r.engine))
            .map(|(g, p)| g / p.gflops);
    }
    Ok(Report {
        machine: machine(),
        quick,
        peaks,
        rows,
        stages,
        cpu_stages,
    })
}

/// The problems and settings every engine's rows share.
struct Suite<'a> {
    quick: bool,
    repeats: usize,
    default_table: Table,
    default_spec: ModelSpec,
    default: Problem,
    two: Problem,
    /// PROCESS model 58 on the default panel (CPU engine only, for now).
    moderated: Problem,
    /// The two mediators as a chain, PROCESS model 6 (CPU engine only).
    serial: Problem,
    /// The default model with city + province^year effects.
    province_year: Problem,
    progress: &'a dyn Fn(&str),
}

impl Suite<'_> {
    /// The refit baseline of the threshold test: each replicate's outcome
    /// (the same draws) refitted by least squares at every candidate, as a
    /// program that loops over candidates and bootstrap draws does.
    fn threshold_refit_rows(&self, engine: &Engine) -> Result<Vec<Row>> {
        let n = if self.quick { 1 } else { 3 };
        let (prepared, grid, fit) = threshold_problem(&self.default_table)?;
        THRESHOLD_SCHEMES
            .iter()
            .map(|&(name, scheme)| {
                (self.progress)(&format!("{name}, refit baseline"));
                let null = Null::new(&prepared, &grid, &fit, 1, scheme, 1)?;
                let ssr = |y: &[f64], ts: &[f64]| -> Result<f64> {
                    let (_, e) = prepared.fit_outcome(y, ts)?;
                    Ok(e.iter().map(|v| v * v).sum())
                };
                let mut r = 0;
                measure(name, engine, n, 1, None, &mut || {
                    for _ in 0..n {
                        let ystar = null.outcome(r);
                        let s0 = ssr(&ystar, &[])?;
                        let mut best = f64::INFINITY;
                        for &c in &prepared.candidates {
                            best = best.min(ssr(&ystar, &[c])?);
                        }
                        std::hint::black_box((s0 - best) / (best / prepared.df()));
                        r += 1;
                    }
                    Ok(())
                })
            })
            .collect()
    }

    /// The refit baseline: the default problem refitted once per draw.
    fn refit_row(&self, engine: &Engine) -> Result<Row> {
        let n = if self.quick { 3 } else { 10 };
        (self.progress)("refit baseline");
        let mut r = 0;
        measure("pairs, default problem", engine, n, 1, None, &mut || {
            for _ in 0..n {
                refit_once(&self.default_table, &self.default_spec, r)?;
                r += 1;
            }
            Ok(())
        })
    }

    /// A CPU or GPU engine's rows: each scheme on the default problem, a
    /// whole run with groups, scaling in B and in the problem's size, a
    /// simulation study.
    fn engine_rows(&self, engine: &Engine) -> Result<Vec<Row>> {
        // A software GPU adapter (lavapipe) runs a hundredth of the
        // replicates, to keep the suite short.
        let gpu_scale = match engine {
            Engine::Gpu(_)
                if crate::study::backend::adapters()
                    .iter()
                    .any(|a| !a.hardware && Engine::Gpu(a.name.clone()) == *engine) =>
            {
                100
            }
            _ => 1,
        };
        let b = (if self.quick { 5_000 } else { 100_000 }) / gpu_scale;
        let mut rows = Vec::new();
        let (default, two) = (&self.default, &self.two);
        for (name, problem, scheme, replicates) in [
            ("pairs, default problem", default, Scheme::Pairs, b),
            ("pairs, two mediators", two, Scheme::Pairs, b),
            (
                "wild (rademacher), default",
                default,
                Scheme::Wild(WildWeights::Rademacher),
                b,
            ),
            ("permutation, default", default, Scheme::Permutation, b / 10),
        ] {
            let flops = scheme != Scheme::Permutation;
            rows.push(self.row(
                engine,
                name,
                problem,
                spec_for(engine, scheme, replicates),
                flops,
            )?);
        }
        // Studentized intervals (each replicate's own CR1 SEs: the
        // influence GEMM and the meat) and the wild bootstrap's restricted
        // tests (WCR: a refit per null), counted as runs without flops.
        let mut studentized = spec_for(engine, Scheme::Pairs, b / 10);
        studentized.methods = vec![Method::Percentile, Method::Studentized];
        rows.push(self.row(engine, "pairs, studentized", default, studentized, false)?);
        let mut tests = spec_for(engine, Scheme::Wild(WildWeights::Rademacher), b);
        tests.wild_tests = true;
        rows.push(self.row(
            engine,
            "wild (rademacher) + restricted tests",
            default,
            tests,
            false,
        )?);
        let spec = spec_for(engine, Scheme::Pairs, b);
        rows.push(self.row(
            engine,
            "pairs, moderated (PROCESS 58)",
            &self.moderated,
            spec.clone(),
            true,
        )?);
        rows.push(self.row(
            engine,
            "pairs, two serial mediators (PROCESS 6)",
            &self.serial,
            spec.clone(),
            true,
        )?);
        // Each replicate partials its own cell effects out (no stated flop
        // count: the Schur step is not the GEMM's form).
        rows.push(self.row(
            engine,
            "pairs, city + province^year effects",
            &self.province_year,
            spec,
            false,
        )?);
        let mut sens = spec_for(engine, Scheme::Pairs, b);
        sens.sensitivity = Some((0..37).map(|k| -0.9 + 0.05 * k as f64).collect());
        rows.push(self.row(engine, "pairs + sensitivity (37 rho)", default, sens, true)?);
        rows.push(self.run_with_groups(engine, b)?);
        rows.extend(self.scaling_in_b(engine, gpu_scale)?);
        rows.extend(self.scaling_in_size(engine, b)?);
        rows.push(self.simulation(engine, gpu_scale)?);
        rows.extend(self.threshold_rows(engine)?);
        Ok(rows)
    }

    /// The single-threshold F test on the default panel (dei's slope by
    /// regimes of agglom, 300 candidates), each bootstrap, B = 1000:
    /// replicates per second of the whole test on the engine, its set-up
    /// (the null model, the GPU's linear form and buffers) included.
    fn threshold_rows(&self, engine: &Engine) -> Result<Vec<Row>> {
        let b = if self.quick { 200 } else { 1000 };
        let (prepared, grid, fit) = threshold_problem(&self.default_table)?;
        let choice = ThresholdBackend {
            backend: match engine {
                Engine::Gpu(_) => BackendChoice::Gpu,
                _ => BackendChoice::Cpu,
            },
            adapter: match engine {
                Engine::Gpu(name) => Some(name.clone()),
                _ => None,
            },
            precision: None,
            gpu_batch: 0,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .build()
            .map_err(|e| Error::Numerical(e.to_string()))?;
        THRESHOLD_SCHEMES
            .iter()
            .map(|&(name, scheme)| {
                (self.progress)(&format!("{name} on {}", engine.label()));
                measure(name, engine, b, self.repeats, None, &mut || {
                    let null = Null::new(&prepared, &grid, &fit, 1, scheme, 1)?;
                    let engine = threshold_engine(&choice, &null, &pool)?;
                    let f = fit.steps[0].f_stat;
                    f_test(engine.as_ref(), 1, f, b as usize, 0, b, &|_, _| Ok(())).map(|_| ())
                })
            })
            .collect()
    }

    /// One resampling of `problem` by `spec`, timed.
    fn row(
        &self,
        engine: &Engine,
        name: &str,
        problem: &Problem,
        spec: ResampleSpec,
        flops: bool,
    ) -> Result<Row> {
        (self.progress)(&format!("{name} on {}", engine.label()));
        let replicates = spec.replicates;
        let f = flops.then(|| problem.flops(engine, spec.scheme));
        measure(name, engine, replicates, self.repeats, f, &mut || {
            resample_once(problem, &spec)
        })
    }

    /// The whole run with two mediators and a model per region (three
    /// groups) and their contrasts and label tests: B replicates per
    /// model, counted once.
    fn run_with_groups(&self, engine: &Engine, b: u64) -> Result<Row> {
        let repeats = self.repeats;
        (self.progress)(&format!("run with groups on {}", engine.label()));
        let (config, origin) = crate::study::config::paper();
        let mut plan = config.plan(&origin)?;
        plan.group_by = vec!["region".into()];
        plan.model.groups = vec!["region".into()];
        plan.model.mediators = vec!["agglom_sec".into(), "agglom_ter".into()];
        plan.mediator_sets.clear();
        plan.inference.mc_draws = 1000;
        plan.resampling = Some(spec_for(engine, Scheme::Pairs, b / 10));
        measure(
            "run: two mediators, 3 region groups + contrasts",
            engine,
            b / 10,
            repeats,
            None,
            &mut || crate::study::run::execute(&plan, &|_, _| Ok(())).map(|_| ()),
        )
    }

    /// Scaling in B; B = 1e7 runs once (a minute on two cores).
    fn scaling_in_b(&self, engine: &Engine, gpu_scale: u64) -> Result<Vec<Row>> {
        let (quick, repeats, default) = (self.quick, self.repeats, &self.default);
        let mut rows = Vec::new();
        let bs: &[u64] = if quick {
            &[1_000, 10_000]
        } else {
            &[1_000, 10_000, 100_000, 1_000_000, 10_000_000]
        };
        for &n in bs {
            let name = format!("scaling B = {n}");
            (self.progress)(&format!("{name} on {}", engine.label()));
            let spec = spec_for(engine, Scheme::Pairs, (n / gpu_scale).max(100));
            rows.push(measure(
                &name,
                engine,
                spec.replicates,
                if n >= 10_000_000 { 1 } else { repeats },
                Some(default.flops(engine, Scheme::Pairs)),
                &mut || resample_once(&default, &spec),
            )?);
        }
        Ok(rows)
    }

    /// Scaling in the number of clusters, periods and controls.
    fn scaling_in_size(&self, engine: &Engine, b: u64) -> Result<Vec<Row>> {
        let quick = self.quick;
        let mut rows = Vec::new();
        let scale: &[(usize, usize, usize)] = if quick {
            &[
                (50, 10, 6),
                (1000, 10, 6),
                (278, 5, 6),
                (278, 20, 6),
                (278, 10, 2),
                (278, 10, 12),
            ]
        } else {
            &[
                (50, 10, 6),
                (500, 10, 6),
                (5000, 10, 6),
                (278, 5, 6),
                (278, 20, 6),
                (278, 40, 6),
                (278, 10, 2),
                (278, 10, 12),
                (278, 10, 20),
            ]
        };
        for &(cities, years, controls) in scale {
            let p = Problem::new(
                &panel_table(cities, years, controls.saturating_sub(6)),
                &spec_with(controls, &["agglom"]),
            )?;
            rows.push(self.row(
                engine,
                &format!("scaling G = {cities}, T = {years}, controls = {controls}"),
                &p,
                spec_for(engine, Scheme::Pairs, b / 5),
                true,
            )?);
        }
        Ok(rows)
    }

    /// A simulation study: iid, n = 200, datasets x 1000 replicates.
    fn simulation(&self, engine: &Engine, gpu_scale: u64) -> Result<Row> {
        let (quick, repeats) = (self.quick, self.repeats);
        let datasets = if quick { 20 } else { 100 };
        (self.progress)(&format!("simulation study on {}", engine.label()));
        let study = crate::study::simulate::Study {
            dgp: crate::study::simulate::Dgp::Iid,
            cells: vec![crate::study::simulate::Cell {
                n: 200,
                a: 0.39,
                b: 0.39,
                c_prime: 0.0,
                a3: None,
                b3: None,
            }],
            datasets,
            methods: vec![crate::study::simulate::Test::Interval(Method::Percentile)],
            levels: vec![0.95],
            seed: 1,
            mc_draws: 1000,
            resampling: spec_for(engine, Scheme::Pairs, 1000 / gpu_scale),
            target: None,
        };
        measure(
            &format!("simulation iid n = 200, {datasets} datasets"),
            engine,
            datasets * (1000 / gpu_scale),
            repeats,
            None,
            &mut || crate::study::simulate::run(&study, 0, &|_, _| Ok(())).map(|_| ()),
        )
    }
}

/// The measured peak of each of `engines` (none for the refit baseline).
fn peaks(engines: &[Engine], progress: &dyn Fn(&str)) -> Result<Vec<Peak>> {
    let mut out = Vec::new();
    for engine in engines {
        if *engine != Engine::Refit {
            progress(&format!("peak of {}", engine.label()));
        }
        match engine {
            Engine::Cpu => out.push(Peak {
                engine: engine.label(),
                gflops: cpu_peak(),
                measured: format!(
                    "f64 GEMM (matrixmultiply) on {} threads",
                    rayon::current_num_threads()
                ),
            }),
            Engine::Gpu(name) => out.push(Peak {
                engine: engine.label(),
                gflops: crate::study::backend::gpu_peak(name)?,
                measured: "f32 fused multiply-add (shaders/peak.wgsl)".into(),
            }),
            Engine::Refit => {}
        }
    }
    Ok(out)
}

impl Report {
    /// The Markdown table: one row per workload and engine.
    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut o = format!(
            "### {} ({} threads){}, medsim {}{}{}\n\n{}| workload | engine | CPU (threads) | medsim | B | replicates/s (median) | range | GFLOP/s | of peak |\n|---|---|---|---|---|---|---|---|---|\n",
            m.cpu,
            m.threads,
            if m.adapters.is_empty() {
                String::new()
            } else {
                format!("; GPU: {}", m.adapters.join("; "))
            },
            m.medsim,
            match m.revision.get(..7) {
                Some(short) => format!(" ({short})"),
                None => String::new(),
            },
            if self.quick { " (--quick)" } else { "" },
            if self.peaks.is_empty() {
                String::new()
            } else {
                format!(
                    "Measured peaks: {}.\n\n",
                    self.peaks
                        .iter()
                        .map(|p| format!("{} {:.1} GFLOP/s ({})", p.engine, p.gflops, p.measured))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        );
        for r in &self.rows {
            // A GPU row names its adapter with its type and driver.
            let engine = match r.engine.strip_prefix("gpu: ") {
                Some(name) => m
                    .adapters
                    .iter()
                    .find(|a| a.starts_with(name))
                    .map_or(r.engine.clone(), |a| format!("gpu: {a}")),
                None => r.engine.clone(),
            };
            o.push_str(&format!(
                "| {} | {engine} | {} ({}) | {} | {} | {:.4e} | {:.3e} - {:.3e} | {} | {} |\n",
                r.workload,
                m.cpu,
                m.threads,
                m.medsim,
                r.replicates,
                r.median_replicates_per_second,
                r.min_replicates_per_second,
                r.max_replicates_per_second,
                r.gflops.map_or("-".into(), |g| format!("{g:.2}")),
                r.fraction_of_peak
                    .map_or("-".into(), |f| format!("{:.1} %", 100.0 * f))
            ));
        }
        if !self.cpu_stages.is_empty() {
            o.push('\n');
            o.push_str(&crate::study::stages::cpu_markdown(&self.cpu_stages));
        }
        if !self.stages.is_empty() {
            o.push('\n');
            o.push_str(&crate::study::stages::markdown(&self.stages));
        }
        o
    }

    /// The file name of this machine's results: its CPU model, and the
    /// first GPU adapter benchmarked, as a slug.
    pub fn slug(&self) -> String {
        let slug = |name: &str| -> String {
            let s: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            s.split('-')
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("-")
        };
        let gpu = self
            .rows
            .iter()
            .find_map(|r| r.engine.strip_prefix("gpu: "))
            .map(|g| format!("+{}", slug(g)));
        format!("{}{}", slug(&self.machine.cpu), gpu.unwrap_or_default())
    }
}
