//! Simulation studies: many datasets drawn from a known data-generating
//! process, each analysed with every method, to estimate each method's
//! rejection rate of H0: a*b = 0 (power, or Type I error when a*b = 0) and
//! its coverage of the true a*b. Nested Monte Carlo: D datasets, each with
//! B resampling replicates.
//!
//! # Data-generating processes
//!
//! * `iid`: the single-level single-mediator model, X ~ N(0, 1), M = a X +
//!   e_M, Y = c' X + b M + e_Y with standard normal errors; n observations,
//!   each its own cluster, no fixed effects. Dataset d's normals come from
//!   the Philox stream `(seed, d, STREAM_SIMULATION)`, observation i taking
//!   normals 3i (X), 3i + 1 (e_M), 3i + 2 (e_Y), so a dataset of n
//!   observations is the first n of a larger one (common random numbers
//!   across sample sizes).
//! * `panel`: the study-calibrated synthetic panel (`crate::data::synthetic`)
//!   with n cities and a_sec = a_ter = a (so a is the effect of dei on
//!   overall agglomeration), b, c', the within-city AR(1) coefficient and
//!   the heterogeneity of the a paths (0 by default, so a is every city's
//!   and the true a*b is exact); dataset d is the panel of seed `seed + d`,
//!   fitted with city and year effects and SEs clustered by city.
//!
//! # Methods
//!
//! `sobel` (normal test of a*b / its delta-method SE), `joint` (both a and
//! b significant: max(p_a, p_b) < 1 - level; no interval), `monte_carlo`
//! (the parametric interval), and the bootstrap intervals `percentile`,
//! `basic`, `normal`, `bc`, `bca`, `studentized` of the run's `scheme`
//! (every bootstrap method from the same replicates of a dataset), and
//! `permutation` (the treatment permuted across units, B permutations: an
//! exact test of no effect of X at all, so of a*b = 0 when c' = 0 too; no
//! interval). A method
//! rejects when its interval excludes zero, covers when it holds the true
//! a*b, misses left when it lies wholly below it, right when above. Every
//! method is judged at each of the study's levels, on the same datasets and
//! replicates.
//!
//! # Engines
//!
//! Datasets run in parallel on plain threads. On the CPU engine each
//! dataset resamples alone. On the GPU, the bootstrap of a chunk of
//! datasets runs stacked (`crate::gpu::stack`: one dispatch per stage for
//! many datasets, each with its own seed and statistics) where the scheme
//! allows (pairs, bayes, poisson, wild; no studentized intervals); the
//! permutation test and the other cases run one GPU engine per dataset.
//! Dataset d's replicates are the same computation either way.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::data::synthetic::{SyntheticParams, generate};
use crate::data::table::Table;
use crate::error::{Error, Result};
use crate::math::rng::{STREAM_SIMULATION, normals};
use crate::model::design::Design;
use crate::model::effect::EffectKey;
use crate::model::mediation::analyse;
use crate::model::panel::Panel;
use crate::model::replicate::StatLayout;
use crate::model::spec::default_spec;
use crate::model::spec::{FixedEffects, InferenceSpec, ModelSpec, Moderation, ModeratorValues};
use crate::resample::checkpoint::Store;
use crate::resample::engine::{Engine, Precomputed};
use crate::resample::intervals::Method;
use crate::resample::scheme::Scheme;
use crate::resample::spec::ResampleSpec;
use crate::study::backend::{GpuUse, wants_gpu};
use crate::study::resampling::resample_with;

/// The data-generating process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dgp {
    Iid,
    Panel {
        years: usize,
        rho: f64,
        heterogeneity: f64,
    },
}

/// One cell of a study: the true parameters and the sample size (the
/// number of observations, or of cities for the panel).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub n: u64,
    pub a: f64,
    pub b: f64,
    pub c_prime: f64,
    /// A moderated study's interaction of the a path with the moderator W
    /// (X*W in M's equation; PROCESS model 7), or of the b path (M*W in
    /// Y's; model 14): its target is then the index of moderated
    /// mediation, a3 b or a b3, not a*b.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a3: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b3: Option<f64>,
}

impl Cell {
    /// The true value of the study's target: the indirect effect a*b, or a
    /// moderated study's index of moderated mediation.
    pub fn indirect(&self) -> f64 {
        match (self.a3, self.b3) {
            (Some(a3), _) => a3 * self.b,
            (None, Some(b3)) => self.a * b3,
            (None, None) => self.a * self.b,
        }
    }

    /// Whether the cell is moderated (a3 or b3 given).
    pub fn moderated(&self) -> bool {
        self.a3.is_some() || self.b3.is_some()
    }

    /// The same effects, whatever the sample size.
    pub fn same_effects(&self, other: &Cell) -> bool {
        Cell { n: 0, ..*self } == Cell { n: 0, ..*other }
    }

    /// The effects as `a = 0.39, b = 0.39, c' = 0` (and `a3 = ..`).
    pub fn label(&self) -> String {
        let mut out = format!("a = {}, b = {}, c' = {}", self.a, self.b, self.c_prime);
        if let Some(a3) = self.a3 {
            out.push_str(&format!(", a3 = {a3}"));
        }
        if let Some(b3) = self.b3 {
            out.push_str(&format!(", b3 = {b3}"));
        }
        out
    }

    /// The target's name: `a*b`, or `a3*b` / `a*b3`.
    pub fn target_name(&self) -> &'static str {
        match (self.a3, self.b3) {
            (Some(_), _) => "a3*b",
            (None, Some(_)) => "a*b3",
            (None, None) => "a*b",
        }
    }

    /// The effect key whose intervals a study judges.
    pub fn target_key(&self) -> String {
        match self.moderated() {
            true => EffectKey::IndexModeratedMediation(0, None).to_string(),
            false => EffectKey::Indirect(None).to_string(),
        }
    }
}

/// A study: the process, the cells, and how each dataset is analysed.
#[derive(Debug, Clone)]
pub struct Study {
    pub dgp: Dgp,
    pub cells: Vec<Cell>,
    pub datasets: u64,
    /// The tests each dataset gets (see the module doc).
    pub methods: Vec<Test>,
    /// Confidence levels; every method is judged at each (tests at 1 -
    /// level). The sample-size search uses the first.
    pub levels: Vec<f64>,
    pub seed: u64,
    pub mc_draws: u64,
    /// The resampling of each dataset (its `replicates`, `scheme`, engine).
    pub resampling: ResampleSpec,
    /// Search each method's sample size for this power (the cells' n give
    /// the range).
    pub target: Option<f64>,
}

impl Study {
    /// Whether the study is moderated (its cells give a3 or b3).
    pub fn moderated(&self) -> bool {
        self.cells.first().is_some_and(Cell::moderated)
    }

    /// The effect key whose intervals the study judges.
    fn target_key(&self) -> String {
        self.cells
            .first()
            .map_or_else(|| EffectKey::Indirect(None).to_string(), Cell::target_key)
    }
}

/// One method's results over the datasets of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// Share of datasets rejecting H0: a*b = 0, over the datasets where
    /// the method gave an answer (null when it gave none: every dataset
    /// failed, see `failed`).
    pub rejection_rate: Option<f64>,
    /// Its Monte Carlo standard error, sqrt(r (1 - r) / D).
    pub mc_se: Option<f64>,
    /// Share of intervals holding the true a*b (null for `joint`).
    pub coverage: Option<f64>,
    pub miss_left: Option<f64>,
    pub miss_right: Option<f64>,
    pub mean_width: Option<f64>,
    /// Datasets where the method gave no answer (a degenerate fit).
    pub failed: u64,
}

/// A cell's results at one level: the parameters, then each method's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub parameters: Cell,
    pub true_indirect: f64,
    /// The confidence level of the intervals (tests at 1 - level).
    pub level: f64,
    pub methods: indexmap::IndexMap<String, MethodResult>,
}

/// What one dataset says for one method: reject, and the interval if any.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    reject: bool,
    interval: Option<(f64, f64)>,
}

/// A test of H0: a*b = 0 that a study judges: an analytic one, the
/// permutation test, or a resampling interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    Sobel,
    /// Both paths significant (max of the two p-values).
    Joint,
    MonteCarlo,
    /// The treatment permuted across units; a p-value, no interval.
    Permutation,
    /// Zero outside a resampling interval.
    Interval(Method),
}

impl Test {
    /// The name in configs and in summary.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Test::Sobel => crate::model::mediation::SOBEL,
            Test::Joint => "joint",
            Test::MonteCarlo => crate::model::mediation::MONTE_CARLO,
            Test::Permutation => "permutation",
            Test::Interval(m) => m.as_str(),
        }
    }

    /// Parse a test's name (an interval method's name included).
    pub fn parse(s: &str) -> Result<Test> {
        match s.trim() {
            crate::model::mediation::SOBEL => Ok(Test::Sobel),
            "joint" => Ok(Test::Joint),
            crate::model::mediation::MONTE_CARLO => Ok(Test::MonteCarlo),
            "permutation" => Ok(Test::Permutation),
            other => Method::parse(other)
                .map(Test::Interval)
                .map_err(|_| Error::InvalidOption {
                    option: "simulation.methods".into(),
                    message: format!(
                        "'{other}' is not one of sobel, joint, monte_carlo, permutation, \
                         percentile, basic, normal, bc, bca, studentized"
                    ),
                }),
        }
    }

    /// Whether the test needs each dataset's resampling (bootstrap
    /// intervals and the permutation test do).
    pub fn resamples(self) -> bool {
        matches!(self, Test::Interval(_) | Test::Permutation)
    }
}

spelled!(Test);

/// The bootstrap interval methods among `tests`.
fn bootstrap_methods(tests: &[Test]) -> Vec<Method> {
    tests
        .iter()
        .filter_map(|t| match t {
            Test::Interval(m) => Some(*m),
            _ => None,
        })
        .collect()
}

/// The iid dataset `d` with `cell`'s parameters, as a table.
pub fn iid_table(seed: u64, d: u64, cell: &Cell) -> Table {
    if cell.moderated() {
        return moderated_iid_table(seed, d, cell);
    }
    let n = cell.n as usize;
    let mut z = vec![0.0; 3 * n];
    normals(seed, d, STREAM_SIMULATION, &mut z);
    let rows = (0..n)
        .map(|i| {
            let x = z[3 * i];
            let m = cell.a * x + z[3 * i + 1];
            let y = cell.c_prime * x + cell.b * m + z[3 * i + 2];
            vec![
                format!("o{i}"),
                "1".into(),
                format!("{x}"),
                format!("{m}"),
                format!("{y}"),
            ]
        })
        .collect();
    Table::new(
        "<simulated iid dataset>",
        ["id", "period", "x", "m", "y"].map(String::from).to_vec(),
        rows,
    )
}

/// The moderated iid dataset `d`: W ~ N(0, 1) besides X, M = (a + a3 W) X
/// plus e_M, Y = c' X + (b + b3 W) M plus e_Y (W has no main effect; the
/// fitted model has it). Observation i takes normals 4i (X), 4i + 1 (e_M), 4i + 2
/// (e_Y), 4i + 3 (W) of the dataset's stream.
fn moderated_iid_table(seed: u64, d: u64, cell: &Cell) -> Table {
    let n = cell.n as usize;
    let (a3, b3) = (cell.a3.unwrap_or(0.0), cell.b3.unwrap_or(0.0));
    let mut z = vec![0.0; 4 * n];
    normals(seed, d, STREAM_SIMULATION, &mut z);
    let rows = (0..n)
        .map(|i| {
            let (x, w) = (z[4 * i], z[4 * i + 3]);
            let m = (cell.a + a3 * w) * x + z[4 * i + 1];
            let y = cell.c_prime * x + (cell.b + b3 * w) * m + z[4 * i + 2];
            vec![
                format!("o{i}"),
                "1".into(),
                format!("{x}"),
                format!("{w}"),
                format!("{m}"),
                format!("{y}"),
            ]
        })
        .collect();
    Table::new(
        "<simulated moderated iid dataset>",
        ["id", "period", "x", "w", "m", "y"]
            .map(String::from)
            .to_vec(),
        rows,
    )
}

/// The model the study fits to each dataset (a moderated study's: PROCESS
/// model 7 or 14 by the moderator w).
fn model(study: &Study) -> ModelSpec {
    let spec = match study.dgp {
        Dgp::Iid => ModelSpec::xmy("id", "period", &[], FixedEffects::None),
        Dgp::Panel { .. } => ModelSpec {
            groups: vec![],
            ..default_spec()
        },
    };
    let Some(cell) = study.cells.first().filter(|c| c.moderated()) else {
        return spec;
    };
    ModelSpec {
        moderation: Some(Moderation {
            moderator: "w".into(),
            a: cell.a3.is_some(),
            b: cell.b3.is_some(),
            direct: false,
            center: false,
            at: ModeratorValues::default(),
        }),
        ..spec
    }
}

/// Dataset `d` of `cell`.
fn dataset(study: &Study, cell: &Cell, d: u64) -> Table {
    match study.dgp {
        Dgp::Iid => iid_table(study.seed, d, cell),
        Dgp::Panel {
            years,
            rho,
            heterogeneity,
        } => generate(SyntheticParams {
            cities: cell.n as usize,
            years,
            seed: study.seed.wrapping_add(d),
            a_sec: cell.a,
            a_ter: cell.a,
            b: cell.b,
            c_prime: cell.c_prime,
            rho,
            heterogeneity,
            ..SyntheticParams::default()
        }),
    }
}

/// A dataset fitted and ready to resample.
struct Prepared {
    panel: Panel,
    design: Design,
    analysis: crate::model::mediation::Analysis,
    /// The dataset's own seed of its Monte Carlo interval and resampling.
    seed: u64,
}

/// Dataset `d` of `cell`, fitted; None where the fit fails (the dataset's
/// methods then fail).
fn prepare(study: &Study, cell: &Cell, d: u64) -> Option<Prepared> {
    let spec = model(study);
    let table = dataset(study, cell, d);
    let panel = Panel::from_table(&table, &spec).ok()?;
    let design = Design::build(&panel, spec.fixed_effects).ok()?;
    // Each dataset's own draws: the Monte Carlo interval's and the
    // bootstrap's seeds mix the study's seed with the dataset.
    let seed = study.seed ^ (d.wrapping_add(1)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let inference = InferenceSpec {
        levels: study.levels.clone(),
        mc_draws: study.mc_draws,
        seed,
    };
    let analysis = analyse(&design, &inference).ok()?;
    Some(Prepared {
        panel,
        design,
        analysis,
        seed,
    })
}

/// The resampling of the study's bootstrap methods (none without them).
fn bootstrap_spec(study: &Study) -> Option<ResampleSpec> {
    let methods = bootstrap_methods(&study.methods);
    (!methods.is_empty()).then(|| ResampleSpec {
        methods,
        threads: 1,
        ..study.resampling.clone()
    })
}

/// Every method's verdict on a prepared dataset at each level (level l's
/// verdict of method k at `l * methods + k`; None where a method failed);
/// its bootstrap replicates from `given` where given (a stacked GPU batch),
/// else from the engine the study's resampling asks for.
fn verdicts(
    study: &Study,
    prepared: Option<&Prepared>,
    given: Option<&dyn Engine>,
) -> Result<Vec<Option<Verdict>>> {
    let Some(Prepared {
        panel,
        design,
        analysis,
        seed,
    }) = prepared
    else {
        return Ok(vec![None; study.methods.len() * study.levels.len()]);
    };
    let seed = *seed;
    // The dataset resampled by `spec` on one thread (datasets run in
    // parallel); None where it fails (a degenerate resample).
    let run = |spec: ResampleSpec, given: Option<&dyn Engine>| {
        let spec = ResampleSpec { threads: 1, ..spec };
        resample_with(
            design,
            panel,
            analysis,
            &spec,
            seed,
            &study.levels,
            &|_, _| Ok(()),
            None,
            given,
            0,
        )
        .ok()
    };
    let resampled = bootstrap_spec(study).and_then(|spec| run(spec, given));
    let key = study.target_key();
    // The permutation test of the indirect effect: the treatment permuted
    // across units (within blocks of units observed in the same periods),
    // p = (1 + #{|ab*| >= |ab|}) / (1 + B); no interval.
    let permuted = if study.methods.contains(&Test::Permutation) {
        run(
            ResampleSpec {
                scheme: crate::resample::scheme::Scheme::Permutation,
                methods: vec![],
                sensitivity: None,
                ..study.resampling.clone()
            },
            None,
        )
        .and_then(|r| {
            r.effects
                .iter()
                .find(|(k, _)| k == "indirect")
                .and_then(|(_, b)| b.p_value)
        })
    } else {
        None
    };
    Ok(study
        .levels
        .iter()
        .flat_map(|&level| {
            let (resampled, key) = (resampled.as_ref(), key.as_str());
            study
                .methods
                .iter()
                .map(move |&test| verdict(test, level, key, analysis, resampled, permuted))
        })
        .collect())
}

/// Test `test`'s verdict at `level` on one dataset: from its analytic fit,
/// its bootstrap's intervals (`resampled`) or its permutation p-value; None
/// where the test could not be computed.
fn verdict(
    test: Test,
    level: f64,
    key: &str,
    analysis: &crate::model::mediation::Analysis,
    resampled: Option<&crate::study::resampling::ResampleResult>,
    permuted: Option<f64>,
) -> Option<Verdict> {
    let alpha = 1.0 - level;
    match test {
        Test::Sobel | Test::MonteCarlo => {
            interval_verdict(&analysis.intervals, key, test.as_str(), level)
        }
        Test::Permutation => permuted.map(|p| Verdict {
            reject: p < alpha,
            interval: None,
        }),
        Test::Joint => {
            let p = |key: &str| analysis.effect(key).and_then(|e| e.p_value);
            let (pa, pb) = (p("a")?, p("b")?);
            Some(Verdict {
                reject: pa.max(pb) < alpha,
                interval: None,
            })
        }
        Test::Interval(m) => {
            resampled.and_then(|r| interval_verdict(&r.intervals, key, m.as_str(), level))
        }
    }
}

/// The verdict of `method`'s interval for effect `key` at `level`: reject
/// where it excludes zero; None where it is absent or not finite.
fn interval_verdict(
    list: &[crate::model::mediation::Interval],
    key: &str,
    method: &str,
    level: f64,
) -> Option<Verdict> {
    list.iter()
        .find(|i| i.effect == key && i.method == method && i.level == level)
        .map(|i| (i.lower, i.upper))
        .filter(|(l, u)| l.is_finite() && u.is_finite())
        .map(|(l, u)| Verdict {
            reject: l > 0.0 || u < 0.0,
            interval: Some((l, u)),
        })
}

/// Summarise the verdicts of the study's methods over the datasets of a
/// cell, one result per level.
fn summarise(cell: &Cell, study: &Study, verdicts: &[Vec<Option<Verdict>>]) -> Vec<CellResult> {
    let methods = &study.methods;
    study
        .levels
        .iter()
        .enumerate()
        .map(|(l, &level)| {
            let at: Vec<&[Option<Verdict>]> = verdicts
                .iter()
                .map(|v| &v[l * methods.len()..(l + 1) * methods.len()])
                .collect();
            summarise_level(cell, level, methods, &at)
        })
        .collect()
}

/// Summarise the verdicts of `methods` at `level` over a cell's datasets.
fn summarise_level(
    cell: &Cell,
    level: f64,
    methods: &[Test],
    verdicts: &[&[Option<Verdict>]],
) -> CellResult {
    let truth = cell.indirect();
    let mut out = indexmap::IndexMap::new();
    for (k, name) in methods.iter().enumerate() {
        let got: Vec<Verdict> = verdicts.iter().filter_map(|v| v[k]).collect();
        let failed = (verdicts.len() - got.len()) as u64;
        let n = got.len().max(1) as f64;
        let share = |f: &dyn Fn(&Verdict) -> bool| got.iter().filter(|v| f(v)).count() as f64 / n;
        let rate = share(&|v| v.reject);
        let has_intervals = got.iter().all(|v| v.interval.is_some()) && !got.is_empty();
        let intervals = |f: &dyn Fn((f64, f64)) -> bool| {
            has_intervals.then(|| share(&|v| v.interval.is_some_and(f)))
        };
        out.insert(
            name.to_string(),
            MethodResult {
                rejection_rate: (!got.is_empty()).then_some(rate),
                mc_se: (!got.is_empty()).then(|| (rate * (1.0 - rate) / n).sqrt()),
                coverage: intervals(&|(l, u)| l <= truth && truth <= u),
                miss_left: intervals(&|(_, u)| u < truth),
                miss_right: intervals(&|(l, _)| l > truth),
                mean_width: has_intervals.then(|| {
                    got.iter()
                        .filter_map(|v| v.interval)
                        .map(|(l, u)| u - l)
                        .sum::<f64>()
                        / n
                }),
                failed,
            },
        );
    }
    CellResult {
        parameters: *cell,
        true_indirect: truth,
        level,
        methods: out,
    }
}

/// The bootstrap replicates of each prepared dataset of a chunk, computed
/// in stacked GPU batches (None for a dataset that failed to prepare, and
/// for all of them, with one warning, when the stacked batch fails: each
/// dataset then runs its own engine).
fn stacked_engines(
    gpu: &GpuUse,
    spec: &ResampleSpec,
    prepared: &[Option<Prepared>],
    warned: &std::sync::Once,
) -> Vec<Option<Precomputed>> {
    let backend = gpu.backend();
    let ready: Vec<(usize, &Prepared)> = prepared
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
        .collect();
    let sets: Vec<_> = ready
        .iter()
        .map(|(_, p)| (&p.design, &p.analysis.fit, p.seed))
        .collect();
    let replicates = spec.replicates as usize;
    let mut given: Vec<Option<Precomputed>> = (0..prepared.len()).map(|_| None).collect();
    match gpu.stacked(&sets, spec.scheme, replicates) {
        Ok(stats) => {
            for ((i, p), stats) in ready.iter().zip(stats) {
                let layout = StatLayout::plain(p.design.layout.n_mediators);
                given[*i] = Some(Precomputed::new(layout, stats, backend.clone()));
            }
        }
        Err(e) => warned.call_once(|| {
            crate::notices::notify(format!(
                "warning: the stacked GPU batch failed ({e}); each dataset runs its own engine"
            ))
        }),
    }
    given
}

/// The GPU context a study's bootstrap stacks its datasets on
/// (`crate::gpu::stack`), with the bootstrap's resampling, where it can:
/// the resampling asks for the GPU (or auto finds a hardware adapter), the
/// scheme is pairs, bayes, poisson or wild, and no replicate needs more
/// than its coefficients (no studentized intervals, strata or sensitivity).
/// Elsewhere each dataset runs its own engine.
#[allow(clippy::type_complexity)]
fn stacking(study: &Study) -> Result<Option<(GpuUse, ResampleSpec)>> {
    let Some(spec) = bootstrap_spec(study) else {
        return Ok(None);
    };
    // A moderated model's equations are systems of their own, which the
    // stacked solve does not take: each dataset runs its own engine.
    let stacks = !study.moderated()
        && matches!(
            spec.scheme,
            Scheme::Pairs | Scheme::Bayes | Scheme::Poisson | Scheme::Wild(_)
        )
        && !spec.methods.contains(&Method::Studentized)
        && spec.strata.is_none()
        && spec.sensitivity.is_none();
    if !wants_gpu(&spec) {
        return Ok(None);
    }
    let gpu = crate::study::backend::gpu_for(&spec)?;
    gpu.check_precision()?;
    Ok(stacks.then_some((gpu, spec)))
}

/// Whether `study`'s bootstrap stacks its datasets in GPU batches (see
/// `stacking`).
pub fn stacks(study: &Study) -> Result<bool> {
    Ok(stacking(study)?.is_some())
}

/// `f(i)` for i in `0 .. n` on `workers` plain threads, each taking the
/// next i (not rayon: each dataset's engine has its own one-thread pool,
/// and waiting on it from a worker of another rayon pool would let that
/// worker steal more datasets, nesting without bound); in order, None
/// where a worker died.
fn parallel<T: Send>(workers: usize, n: usize, f: &(dyn Fn(usize) -> T + Sync)) -> Vec<Option<T>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<T>>> = (0..n).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, n.max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let v = f(i);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(v);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|s| s.into_inner().ok().flatten())
        .collect()
}

/// Verdict lists as rows of `3 * verdicts` values: (reject as 1 or 0,
/// lower, upper), NaN where a verdict or its interval is absent.
fn encode(list: &[Vec<Option<Verdict>>], out: &mut [f64]) {
    let cells = list.iter().flatten();
    for (v, slot) in cells.zip(out.chunks_mut(3)) {
        let (reject, (lower, upper)) = match v {
            Some(v) => (
                if v.reject { 1.0 } else { 0.0 },
                v.interval.unwrap_or((f64::NAN, f64::NAN)),
            ),
            None => (f64::NAN, (f64::NAN, f64::NAN)),
        };
        slot.copy_from_slice(&[reject, lower, upper]);
    }
}

/// The verdict lists of rows of `width` values ([`encode`]).
fn decode(rows: &[f64], width: usize) -> Vec<Vec<Option<Verdict>>> {
    rows.chunks(width.max(1))
        .map(|row| {
            row.chunks(3)
                .map(|v| {
                    (!v[0].is_nan()).then(|| Verdict {
                        reject: v[0] == 1.0,
                        interval: (!v[1].is_nan()).then_some((v[1], v[2])),
                    })
                })
                .collect()
        })
        .collect()
}

/// The datasets' verdicts, or the first error.
fn unpack(list: Vec<Option<Result<Vec<Option<Verdict>>>>>) -> Result<Vec<Vec<Option<Verdict>>>> {
    list.into_iter()
        .map(|v| v.unwrap_or_else(|| Err(Error::Numerical("a simulation worker failed".into()))))
        .collect()
}

/// Run the study on `threads` workers (0: one per core), datasets in
/// parallel; `progress(done, total)` hears datasets done (`total` grows
/// as a sample-size search adds cells), and an error it returns (say
/// [`Error::Interrupted`]) stops the study: no dataset starts after it,
/// and the error is the study's. Results depend on neither. With
/// `study.target`, the cells are a search for the sample size (see
/// [`SampleSize`]) and every evaluated sample size is a cell.
pub fn run(
    study: &Study,
    threads: usize,
    progress: &(dyn Fn(u64, u64) -> Result<()> + Sync),
) -> Result<(Vec<CellResult>, Vec<SampleSize>, f64)> {
    run_stored(study, threads, progress, None)
}

/// [`run`], each cell's datasets' verdicts through `store` (one stream per
/// evaluated cell, in order): checkpointed, or a shard's part of every
/// cell's datasets computed (and no results: the merge makes them), or a
/// merge's read back.
pub fn run_stored(
    study: &Study,
    threads: usize,
    progress: &(dyn Fn(u64, u64) -> Result<()> + Sync),
    store: Option<&Store>,
) -> Result<(Vec<CellResult>, Vec<SampleSize>, f64)> {
    if store.and_then(Store::shard).is_some() && study.target.is_some() {
        return Err(Error::InvalidOption {
            option: "scale.shard".into(),
            message: "a sample-size search (simulation.target_power) picks each next sample size \
                      from the results so far, so it cannot be split into parts; run it whole \
                      (it checkpoints) or list the sample sizes as a grid"
                .into(),
        });
    }
    if study.methods.is_empty() {
        return Err(Error::InvalidOption {
            option: "simulation.methods".into(),
            message: "give at least one method".into(),
        });
    }
    let workers = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t,
    };
    let started = Instant::now();
    let runner = Runner {
        study,
        workers,
        stack_on: stacking(study)?,
        warned: std::sync::Once::new(),
        store,
        done: AtomicU64::new(0),
        total: AtomicU64::new(study.cells.len() as u64 * study.datasets),
        progress,
        stopped: AtomicBool::new(false),
        reason: Mutex::new(None),
    };
    let Some(target) = study.target else {
        let results = study
            .cells
            .iter()
            .map(|cell| runner.evaluate(cell))
            .collect::<Result<Vec<_>>>()?;
        return Ok((
            results.into_iter().flatten().collect(),
            vec![],
            started.elapsed().as_secs_f64(),
        ));
    };
    let (results, sizes) = sample_size_search(study, target, &|cell| {
        runner.total.fetch_add(study.datasets, Ordering::Relaxed);
        runner.evaluate(cell)
    })?;
    Ok((results, sizes, started.elapsed().as_secs_f64()))
}

/// What evaluates the cells of a study: its workers, its GPU stacking (if
/// any), its store, and the progress over all datasets.
struct Runner<'a> {
    study: &'a Study,
    workers: usize,
    stack_on: Option<(GpuUse, ResampleSpec)>,
    /// The stacked GPU batch's failure is reported once.
    warned: std::sync::Once,
    store: Option<&'a Store>,
    done: AtomicU64,
    total: AtomicU64,
    progress: &'a (dyn Fn(u64, u64) -> Result<()> + Sync),
    /// Progress returned an error (kept in `reason`): no dataset starts
    /// after it.
    stopped: AtomicBool,
    reason: Mutex<Option<Error>>,
}

impl Runner<'_> {
    /// One more dataset done; progress's error is kept to stop the rest.
    fn tick(&self) {
        let k = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Err(e) = (self.progress)(k, self.total.load(Ordering::Relaxed)) {
            if let Ok(mut reason) = self.reason.lock() {
                reason.get_or_insert(e);
            }
            self.stopped.store(true, Ordering::Relaxed);
        }
    }

    /// Progress's error, once it has returned one: the study stops there.
    fn stop(&self) -> Result<()> {
        if !self.stopped.load(Ordering::Relaxed) {
            return Ok(());
        }
        let reason = self.reason.lock().ok().and_then(|mut r| r.take());
        Err(reason.unwrap_or_else(|| Error::Interrupted("the study was stopped".into())))
    }

    /// Whether a dataset may start (progress has not said stop).
    fn going(&self) -> bool {
        !self.stopped.load(Ordering::Relaxed)
    }

    /// Values per dataset stored: each level's and method's verdict as
    /// (reject, lower, upper), NaN where absent; rows are what a
    /// checkpoint or shard stores.
    fn width(&self) -> usize {
        3 * self.study.methods.len() * self.study.levels.len()
    }

    /// The verdicts of datasets first .. first + count of a cell: each
    /// dataset fitted and resampled on its own engine, or (on a GPU) the
    /// chunk's bootstrap replicates computed in stacked batches.
    fn verdict_chunk(
        &self,
        cell: &Cell,
        first: usize,
        count: usize,
    ) -> Result<Vec<Vec<Option<Verdict>>>> {
        let study = self.study;
        // A dataset skipped once progress said stop is never seen: stop()
        // returns the error first.
        let Some((gpu, spec)) = &self.stack_on else {
            let list = parallel(self.workers, count, &|i| {
                if !self.going() {
                    return Ok(vec![]);
                }
                let v = verdicts(
                    study,
                    prepare(study, cell, (first + i) as u64).as_ref(),
                    None,
                );
                self.tick();
                v
            });
            self.stop()?;
            return unpack(list);
        };
        let prepared = parallel(self.workers, count, &|i| {
            prepare(study, cell, (first + i) as u64)
        });
        let prepared: Vec<Option<Prepared>> = prepared.into_iter().map(Option::flatten).collect();
        let given = stacked_engines(gpu, spec, &prepared, &self.warned);
        let list = parallel(self.workers, count, &|i| {
            if !self.going() {
                return Ok(vec![]);
            }
            let engine = given[i].as_ref().map(|e| e as &dyn Engine);
            let v = verdicts(study, prepared[i].as_ref(), engine);
            self.tick();
            v
        });
        self.stop()?;
        unpack(list)
    }

    /// Datasets per chunk of a cell: a stacked GPU batch's (about two
    /// million rows of data), else enough to keep the workers busy.
    fn chunk(&self, cell: &Cell) -> usize {
        match &self.stack_on {
            Some(_) => {
                let rows = match self.study.dgp {
                    Dgp::Iid => cell.n as usize,
                    Dgp::Panel { years, .. } => cell.n as usize * years,
                };
                (2_000_000 / rows.max(1)).clamp(16, 1024)
            }
            None => (self.workers * 16).max(64),
        }
    }

    /// A cell's results from its datasets' verdicts, computed (through the
    /// store, if any) or read back; a shard computes its part and gives
    /// none.
    fn evaluate(&self, cell: &Cell) -> Result<Vec<CellResult>> {
        let n = self.study.datasets;
        let width = self.width();
        let chunk = self.chunk(cell);
        let compute = |first: u64, out: &mut [f64]| -> Result<()> {
            let count = out.len() / width.max(1);
            let list = self.verdict_chunk(cell, first as usize, count)?;
            encode(&list, out);
            Ok(())
        };
        let mut rows = vec![0.0; n as usize * width];
        let stored = self
            .store
            .map(|st| st.items(width, n, chunk, &compute))
            .transpose()?;
        if let (Some(stored), Some(shard)) = (&stored, self.store.and_then(Store::shard)) {
            let (from, to) = shard.range(n);
            stored.fill(from, to)?;
            return Ok(vec![]);
        }
        for first in (0..n as usize).step_by(chunk.max(1)) {
            let count = chunk.min(n as usize - first);
            let out = &mut rows[first * width..(first + count) * width];
            match &stored {
                Some(stored) => {
                    stored.rows(first as u64, out)?;
                }
                None => compute(first as u64, out)?,
            }
        }
        Ok(summarise(cell, self.study, &decode(&rows, width)))
    }
}

/// Sample-size search: for each (a, b, c') of the cells, each method
/// bisects [lo, hi] (the cells' n) on its power at the first level, the
/// sample sizes `evaluate`d shared by the methods. Gives every evaluated
/// cell's results and each method's sample size.
fn sample_size_search(
    study: &Study,
    target: f64,
    evaluate: &dyn Fn(&Cell) -> Result<Vec<CellResult>>,
) -> Result<(Vec<CellResult>, Vec<SampleSize>)> {
    let mut results: Vec<CellResult> = Vec::new();
    let mut sizes = Vec::new();
    let mut combos: Vec<Cell> = Vec::new();
    for c in &study.cells {
        if !combos.iter().any(|k| k.same_effects(c)) {
            combos.push(*c);
        }
    }
    let (lo, hi) = (
        study.cells.iter().map(|c| c.n).min().unwrap_or(0),
        study.cells.iter().map(|c| c.n).max().unwrap_or(0),
    );
    for combo in combos {
        // Each evaluated n's results, the first level's first.
        let mut evaluated: Vec<Vec<CellResult>> = Vec::new();
        let power_at = |n: u64, evaluated: &mut Vec<Vec<CellResult>>| -> Result<usize> {
            if let Some(i) = evaluated.iter().position(|r| r[0].parameters.n == n) {
                return Ok(i);
            }
            evaluated.push(evaluate(&Cell { n, ..combo })?);
            Ok(evaluated.len() - 1)
        };
        for method in &study.methods {
            // A cell where the method never answered has no power to reach.
            let power = |r: &[CellResult]| {
                r[0].methods[method.as_str()]
                    .rejection_rate
                    .unwrap_or(f64::NEG_INFINITY)
            };
            let (mut a, mut b) = (lo, hi);
            let at_hi = power_at(b, &mut evaluated)?;
            let reached = power(&evaluated[at_hi]) >= target;
            if reached {
                let at_lo = power_at(a, &mut evaluated)?;
                if power(&evaluated[at_lo]) >= target {
                    b = a;
                }
                while b - a > 1 {
                    let mid = a + (b - a) / 2;
                    let i = power_at(mid, &mut evaluated)?;
                    if power(&evaluated[i]) >= target {
                        b = mid;
                    } else {
                        a = mid;
                    }
                }
            }
            let i = power_at(b, &mut evaluated)?;
            let r = &evaluated[i][0].methods[method.as_str()];
            // The range of n whose power is within two Monte Carlo SEs of
            // the target, from the evaluated sample sizes.
            let mut points: Vec<(u64, f64, f64)> = evaluated
                .iter()
                .filter_map(|e| {
                    let m = &e[0].methods[method.as_str()];
                    Some((e[0].parameters.n, m.rejection_rate?, m.mc_se?))
                })
                .collect();
            points.sort_by_key(|p| p.0);
            let n_low = points
                .iter()
                .find(|(_, p, se)| p + 2.0 * se >= target)
                .map(|p| p.0);
            let n_high = points
                .iter()
                .find(|(_, p, se)| p - 2.0 * se >= target)
                .map(|p| p.0);
            sizes.push(SampleSize {
                a: combo.a,
                b: combo.b,
                c_prime: combo.c_prime,
                a3: combo.a3,
                b3: combo.b3,
                method: method.to_string(),
                target_power: target,
                reached,
                n: reached.then_some(b),
                power: r.rejection_rate,
                mc_se: r.mc_se,
                n_low,
                n_high,
            });
        }
        evaluated.sort_by_key(|r| r[0].parameters.n);
        results.extend(evaluated.into_iter().flatten());
    }
    Ok((results, sizes))
}

/// The smallest sample size reaching the target power, for one method and
/// one (a, b, c'): bisection on the power curve between the study's two
/// sample sizes, the same datasets (common random numbers) at every size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleSize {
    pub a: f64,
    pub b: f64,
    pub c_prime: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a3: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b3: Option<f64>,
    pub method: String,
    pub target_power: f64,
    /// Whether the largest sample size reaches the target.
    pub reached: bool,
    /// The smallest evaluated n with power >= target (null if not reached).
    pub n: Option<u64>,
    /// The power at that n (at the largest n if not reached), and its
    /// Monte Carlo SE (null where every dataset failed).
    pub power: Option<f64>,
    pub mc_se: Option<f64>,
    /// Uncertainty of n: the smallest evaluated n whose power is within two
    /// Monte Carlo SEs above or at the target (`n_low`), and the smallest
    /// whose power is two SEs above it (`n_high`).
    pub n_low: Option<u64>,
    pub n_high: Option<u64>,
}

/// simulation.json: the study's settings, each cell's results, timings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimulationSummary {
    pub version: String,
    pub name: String,
    pub dgp: String,
    pub datasets: u64,
    pub replicates: u64,
    pub scheme: String,
    pub levels: Vec<f64>,
    pub seed: u64,
    pub backend: String,
    pub cells: Vec<CellResult>,
    /// With `target_power`: each method's sample size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_size: Vec<SampleSize>,
    /// Wall-clock seconds (not reproducible, unlike the rest).
    pub seconds: f64,
    /// Datasets analysed per second (each with every method).
    pub fits_per_second: f64,
    /// Bootstrap replicates per second over the whole study.
    pub replicates_per_second: f64,
}

impl SimulationSummary {
    /// The summary of `study`'s results.
    pub fn new(
        name: &str,
        study: &Study,
        cells: Vec<CellResult>,
        sample_size: Vec<SampleSize>,
        seconds: f64,
    ) -> Self {
        // Each cell's datasets were analysed once for all levels.
        let fits = (cells.len() / study.levels.len().max(1)) as f64 * study.datasets as f64;
        let resampled = !bootstrap_methods(&study.methods).is_empty();
        let replicates = if resampled {
            study.resampling.replicates
        } else {
            0
        };
        SimulationSummary {
            version: env!("CARGO_PKG_VERSION").into(),
            name: name.into(),
            dgp: match study.dgp {
                Dgp::Iid => "iid".into(),
                Dgp::Panel { .. } => "panel".into(),
            },
            datasets: study.datasets,
            replicates,
            scheme: study.resampling.scheme.as_str().into(),
            levels: study.levels.clone(),
            seed: study.seed,
            backend: study.resampling.backend.to_string(),
            cells,
            sample_size,
            seconds,
            fits_per_second: fits / seconds.max(1e-9),
            replicates_per_second: fits * replicates as f64 / seconds.max(1e-9),
        }
    }

    /// simulation.csv: one row per cell x method.
    pub fn csv(&self) -> String {
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
        // A moderated study's a3 or b3 after c'.
        let first = self.cells.first().map(|c| c.parameters);
        let (a3, b3) = first.map_or((false, false), |p| (p.a3.is_some(), p.b3.is_some()));
        let mut out = format!(
            "n,a,b,c_prime,{}{}true_indirect,method,level,rejection_rate,mc_se,coverage,miss_left,miss_right,mean_width,failed\n",
            if a3 { "a3," } else { "" },
            if b3 { "b3," } else { "" },
        );
        for c in &self.cells {
            let p = c.parameters;
            let moderation: String = [p.a3, p.b3]
                .iter()
                .flatten()
                .map(|v| format!("{v},"))
                .collect();
            for (name, m) in &c.methods {
                out.push_str(&format!(
                    "{},{},{},{},{moderation}{},{name},{},{},{},{},{},{},{},{}\n",
                    p.n,
                    p.a,
                    p.b,
                    p.c_prime,
                    c.true_indirect,
                    c.level,
                    opt(m.rejection_rate),
                    opt(m.mc_se),
                    opt(m.coverage),
                    opt(m.miss_left),
                    opt(m.miss_right),
                    opt(m.mean_width),
                    m.failed
                ));
            }
        }
        out
    }

    /// The printed table: per cell, each method's rejection rate (with its
    /// Monte Carlo SE), coverage and mean width.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "medsim {} - simulation {}: {} DGP, {} datasets per cell, B = {} ({}), level {}, seed {}",
            self.version,
            self.name,
            self.dgp,
            self.datasets,
            self.replicates,
            self.scheme,
            self.levels
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            self.seed
        );
        let _ = writeln!(
            o,
            "time   {:.1} s: {:.0} datasets/s, {:.3e} replicates/s",
            self.seconds, self.fits_per_second, self.replicates_per_second
        );
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}", 100.0 * v));
        for c in &self.cells {
            let p = c.parameters;
            let level = if self.levels.len() > 1 {
                format!(", level {}", c.level)
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "\nn = {}, {}  (true {} = {:.4}){level}",
                p.n,
                p.label(),
                p.target_name(),
                c.true_indirect
            );
            let _ = writeln!(
                o,
                "  {:<12} {:>10} {:>7} {:>9} {:>7} {:>7} {:>10}",
                "method", "reject %", "MC SE", "cover %", "left %", "right %", "width"
            );
            for (name, m) in &c.methods {
                let _ = writeln!(
                    o,
                    "  {:<12} {:>10} {:>7} {:>9} {:>7} {:>7} {:>10}",
                    name,
                    pct(m.rejection_rate),
                    m.mc_se
                        .map_or("-".to_string(), |v| format!("{:.2}", 100.0 * v)),
                    pct(m.coverage),
                    pct(m.miss_left),
                    pct(m.miss_right),
                    m.mean_width.map_or("-".to_string(), |w| format!("{w:.4}"))
                );
            }
        }
        if !self.sample_size.is_empty() {
            let _ = writeln!(
                o,
                "\nsample size for power {} (bisection; n range: power within 2 MC SEs)",
                self.sample_size[0].target_power
            );
            for s in &self.sample_size {
                let range = match (s.n_low, s.n_high) {
                    (Some(l), Some(h)) => format!("[{l}, {h}]"),
                    (Some(l), None) => format!("[{l}, -]"),
                    _ => "-".into(),
                };
                let _ = writeln!(
                    o,
                    "  {}  {:<12} n = {:>6}  power {} ({})  {range}",
                    Cell {
                        n: 0,
                        a: s.a,
                        b: s.b,
                        c_prime: s.c_prime,
                        a3: s.a3,
                        b3: s.b3,
                    }
                    .label(),
                    s.method,
                    s.n.map_or("> max".to_string(), |n| n.to_string()),
                    s.power.map_or("-".to_string(), |v| format!("{v:.3}")),
                    s.mc_se.map_or("-".to_string(), |v| format!("{v:.3}"))
                );
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iid_datasets_are_nested_across_sample_sizes() {
        let cell = |n| Cell {
            n,
            a: 0.39,
            b: 0.39,
            c_prime: 0.0,
            a3: None,
            b3: None,
        };
        let small = iid_table(3, 7, &cell(20));
        let large = iid_table(3, 7, &cell(50));
        assert_eq!(small.rows[..], large.rows[..20]);
        assert_ne!(iid_table(3, 8, &cell(20)).rows, small.rows);
    }

    #[test]
    fn method_names_are_checked() {
        for name in [
            "sobel",
            "joint",
            "monte_carlo",
            "permutation",
            "bca",
            "percentile",
        ] {
            assert_eq!(Test::parse(name).unwrap().as_str(), name);
        }
        assert_eq!(
            Test::parse("perc").unwrap(),
            Test::Interval(Method::Percentile)
        );
        assert!(Test::parse("sobol").is_err());
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn a_method_that_failed_on_every_dataset_has_no_rate() {
        let cell = Cell {
            n: 10,
            a: 0.1,
            b: 0.2,
            c_prime: 0.0,
            a3: None,
            b3: None,
        };
        let methods = vec![Test::Sobel, Test::Interval(Method::Percentile)];
        let answered = Verdict {
            reject: true,
            interval: Some((0.0, 1.0)),
        };
        let rows: Vec<[Option<Verdict>; 2]> = vec![[None, Some(answered)]; 3];
        let at: Vec<&[Option<Verdict>]> = rows.iter().map(|r| &r[..]).collect();
        let r = summarise_level(&cell, 0.95, &methods, &at);
        let sobel = &r.methods["sobel"];
        assert_eq!(
            (sobel.rejection_rate, sobel.mc_se, sobel.failed),
            (None, None, 3)
        );
        assert_eq!(sobel.coverage, None);
        assert_eq!(r.methods["percentile"].rejection_rate, Some(1.0));
        let json = serde_json::to_value(sobel).unwrap();
        assert!(json["rejection_rate"].is_null(), "{json}");
    }
}
