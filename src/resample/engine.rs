//! Engines turn replicate indices into replicate statistics. The CPU engine
//! is the reference. For a batch of replicates it draws the weight matrix W
//! (batch x G) and multiplies it by one per-cluster matrix (a GEMM), then
//! finishes each replicate:
//!
//! * reweighting schemes (pairs, Bayes, Poisson, jackknife): the matrix is
//!   the per-cluster packed Gram S (G x q(q+1)/2), `W x S` gives every
//!   replicate's Gram, and `replicate::Solver` solves the three equations;
//! * the wild cluster bootstrap (unrestricted, fixed regressors): the matrix
//!   is the per-cluster influence U of the coefficients a, b, c, c'
//!   (`theta* = theta_hat + sum_g v_g U_g`, Roodman et al. 2019), the same
//!   v_g for every equation, and the indirect effects follow from theta*.
//!
//! Batches run in parallel on a rayon pool; replicate r's result depends only
//! on r, never on the batch or thread.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::math::linalg::{packed_len, quadratic_form};
use crate::model::cells::Cells;
use crate::model::design::Design;
use crate::model::estimate::SystemFit;
use crate::model::mediation::reported_coefficients;
use crate::model::replicate::{
    Extension, LANES, Solver, StatLayout, Studentized, stats_from_changes,
};
use crate::resample::scheme::{Asks, Scheme, WeightPlan, check_rules};

/// The floating-point type of the GPU engine's numeric stages (`Real` in
/// WGSL); the CPU engine always computes in f64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    F32,
    /// Where the adapter has SHADER_F64.
    F64,
}

impl Precision {
    /// `"f32"` or `"f64"`, as summaries and flags name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }

    /// Parse `f32` or `f64`.
    pub fn parse(s: &str) -> crate::error::Result<Precision> {
        match s.trim() {
            "f32" => Ok(Precision::F32),
            "f64" => Ok(Precision::F64),
            other => Err(crate::error::Error::InvalidOption {
                option: "resampling.precision".into(),
                message: format!("'{other}': expected f32 or f64"),
            }),
        }
    }
}

spelled!(Precision);

/// Where replicates were computed, for the summary and the manifest.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Backend {
    /// `"cpu"` or `"gpu"`.
    pub backend: String,
    /// The GPU adapter's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// `"f32"` or `"f64"` on the GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// What happened when the GPU failed and the CPU engine took over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

impl Backend {
    /// The CPU engine.
    pub fn cpu() -> Backend {
        Backend {
            backend: "cpu".into(),
            ..Backend::default()
        }
    }
}

/// A backend that computes replicate statistics.
pub trait Engine: Sync {
    /// Where the replicates are computed.
    fn backend(&self) -> Backend;
    /// Replicates the aggregator should ask for per call.
    fn chunk(&self) -> usize {
        1 << 16
    }
    /// Layout of each replicate's statistics.
    fn layout(&self) -> StatLayout;
    /// Statistics of replicates `start, start + 1, ...` into `out`, row-major
    /// with `layout().len()` values per replicate; returns how many
    /// replicates were degenerate (NaN statistics), those [`Engine::failed`]
    /// marks.
    fn compute(&self, start: u64, out: &mut [f64]) -> Result<u64>;
    /// Whether a replicate's statistics mark it degenerate (every one NaN),
    /// so stored replicates are counted as the engine counted them.
    fn failed(&self, row: &[f64]) -> bool {
        row.iter().all(|v| v.is_nan())
    }
}

/// Replicates computed beforehand (a simulation study's stacked GPU
/// batch, `crate::gpu::stack`), served in order: `compute(start, ..)`
/// copies replicates `start ..`; a replicate whose statistics are all NaN
/// was degenerate.
pub struct Precomputed {
    layout: StatLayout,
    stats: Vec<f64>,
    backend: Backend,
}

impl Precomputed {
    /// `stats`: replicates `0 ..`, `layout.len()` values each, computed on
    /// `backend`.
    pub fn new(layout: StatLayout, stats: Vec<f64>, backend: Backend) -> Precomputed {
        Precomputed {
            layout,
            stats,
            backend,
        }
    }
}

impl Engine for Precomputed {
    fn backend(&self) -> Backend {
        self.backend.clone()
    }

    fn layout(&self) -> StatLayout {
        self.layout
    }

    fn compute(&self, start: u64, out: &mut [f64]) -> Result<u64> {
        let n = self.layout.len();
        let from = start as usize * n;
        let held = self.stats.len() / n;
        let rows = self.stats.get(from..from + out.len()).ok_or_else(|| {
            Error::Numerical(format!(
                "replicates {start}..{} were asked of {held} precomputed",
                start as usize + out.len() / n
            ))
        })?;
        out.copy_from_slice(rows);
        Ok(out.chunks(n).filter(|r| self.failed(r)).count() as u64)
    }
}

/// How a replicate is finished after the GEMM.
enum Finish {
    /// Solve the replicate Gram. Entries of the packed cluster Gram equal in
    /// every cluster (in a balanced panel, the period-dummy block) skip the
    /// GEMM: their replicate value is the total weight times the common
    /// value. `columns` are the packed positions that do go through it.
    Reweight {
        solver: Solver,
        columns: Vec<usize>,
        constant: Vec<(usize, f64)>,
        packed_len: usize,
        student: Option<Student>,
        /// With `unit+GROUP^time` effects: the cell statistics whose
        /// per-group products give each replicate's cell block, partialled
        /// out of its Gram before the solve (`crate::model::cells`).
        cells: Option<Box<Cells>>,
    },
    /// Add the weighted influence to theta_hat = (a_1..a_m, b_1..b_m, c,
    /// c', and a chain's links or the interaction's coefficient:
    /// `reported_coefficients`), then what a chain or the interaction adds.
    Wild {
        theta: Vec<f64>,
        extension: Extension,
    },
}

/// What the replicate's own CR1 standard errors need (studentized intervals).
struct Student {
    /// All per-cluster packed statistics, G x packed_len.
    stats: Vec<f64>,
    /// `sqrt(f_u f_v)` for the coefficients with influences (a_1..a_m,
    /// b_1..b_m; a serial, moderated or interaction model's every reported
    /// coefficient), the CR1 factors of their equations, row-major d x d.
    ssc: Vec<f64>,
    /// A serial, moderated or interaction model's functionals and
    /// gradients (None: the solver's, of a_j and b_j).
    general: Option<Studentized>,
}

impl Student {
    /// Coefficients with influences.
    fn d(&self, m: usize) -> usize {
        self.general.as_ref().map_or(2 * m, |g| g.n_theta)
    }
}

/// The CPU engine over one design and one weight plan.
pub struct CpuEngine {
    weights: WeightPlan,
    layout: StatLayout,
    /// The G x n matrix the weights multiply.
    rhs: Vec<f64>,
    n: usize,
    finish: Finish,
    batch: usize,
    pool: rayon::ThreadPool,
    /// For a subset of the clusters (one group's model): each of this
    /// design's clusters' position in the plan's clusters, whose weights it
    /// takes. None: the design's clusters are the plan's.
    cluster_map: Option<Vec<usize>>,
}

/// The packed Gram positions whose per-cluster values vary (the columns
/// the CPU engine's GEMM multiplies), and those equal in every cluster,
/// with their common value (a replicate's entry is then the total weight
/// times it).
pub fn split_columns(design: &Design) -> (Vec<usize>, Vec<(usize, f64)>) {
    let p = packed_len(design.q());
    let g = design.n_clusters;
    let stats = &design.stats;
    let (mut columns, mut constant) = (Vec::new(), Vec::new());
    for k in 0..p {
        let first = stats[k];
        if (1..g).all(|c| stats[c * p + k] == first) {
            constant.push((k, first));
        } else {
            columns.push(k);
        }
    }
    (columns, constant)
}

/// A worker pool of `threads` threads (0: one per core), after checking the
/// batch size that will be split across it.
pub fn thread_pool(threads: usize, batch: usize) -> Result<rayon::ThreadPool> {
    if batch == 0 {
        return Err(Error::InvalidOption {
            option: "resampling.batch".into(),
            message: "the batch size must be at least 1".into(),
        });
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::InvalidOption {
            option: "resampling.threads".into(),
            message: e.to_string(),
        })
}

impl CpuEngine {
    /// An engine for `weights` over `design`: reweighting schemes use the
    /// per-cluster Grams, the wild bootstrap the cluster influences of `fit`.
    /// `batch` replicates per GEMM; `threads` workers (0: one per core);
    /// `studentize` adds each replicate's own CR1 SEs of the indirect effects.
    pub fn new(
        design: &Design,
        fit: &SystemFit,
        weights: WeightPlan,
        batch: usize,
        threads: usize,
        studentize: bool,
    ) -> Result<Self> {
        let pool = thread_pool(threads, batch)?;
        if weights.scheme == Scheme::Permutation {
            return Err(Error::InvalidOption {
                option: "resampling.scheme".into(),
                message: "permutation is not a reweighting scheme; use the permutation engine"
                    .into(),
            });
        }
        let g = design.n_clusters;
        let mut solver = Solver::new(design);
        check_rules(
            weights.scheme,
            Asks {
                studentized: studentize,
                ..Asks::model(design)
            },
        )?;
        solver.layout.studentized = studentize;
        let layout = solver.layout;
        let (rhs, n, finish) = if let Scheme::Wild(_) = weights.scheme {
            let coefs = reported_coefficients(design);
            let idx: Vec<usize> = coefs.iter().map(|&(e, c)| fit.index(e, c)).collect();
            let rhs = (0..g)
                .flat_map(|c| idx.iter().map(move |&i| fit.influence[c * fit.dim + i]))
                .collect();
            let theta = coefs.iter().map(|&(e, c)| fit.coef(e, c)).collect();
            let extension = Extension::of(design);
            (rhs, idx.len(), Finish::Wild { theta, extension })
        } else {
            let p = packed_len(design.q());
            let (columns, constant) = split_columns(design);
            let stats = &design.stats;
            let rhs = (0..g)
                .flat_map(|c| columns.iter().map(move |&k| stats[c * p + k]))
                .collect();
            let n = columns.len();
            let student = studentize.then(|| {
                let m = design.layout.n_mediators;
                let general = Studentized::of(design);
                let f: Vec<f64> = match &general {
                    Some(g) => g
                        .equation_of
                        .iter()
                        .map(|&e| fit.equations[e].ssc)
                        .collect(),
                    None => (0..2 * m)
                        .map(|u| fit.equations[if u < m { 1 + u } else { m + 1 }].ssc)
                        .collect(),
                };
                let d = f.len();
                Student {
                    stats: design.stats.clone(),
                    ssc: (0..d * d).map(|i| (f[i / d] * f[i % d]).sqrt()).collect(),
                    general,
                }
            });
            (
                rhs,
                n,
                Finish::Reweight {
                    solver,
                    columns,
                    constant,
                    packed_len: p,
                    student,
                    cells: design.cells.clone().map(Box::new),
                },
            )
        };
        Ok(CpuEngine {
            weights,
            layout,
            rhs,
            n,
            finish,
            batch,
            pool,
            cluster_map: None,
        })
    }

    /// One batch of `out.len() / layout.len()` replicates from `start` on
    /// the calling thread, and the seconds of its stages (`medsim bench
    /// --stages`).
    pub fn profile_batch(&self, start: u64, out: &mut [f64]) -> CpuStageTimes {
        let mut times = CpuStageTimes::default();
        self.batch_stats(start, out, &mut times);
        times
    }

    /// One batch, compiled twice: for AVX2 + FMA, chosen at run time where
    /// the processor has them, and for the baseline. Rust never fuses a
    /// multiply and an add on its own, so both give identical bits.
    fn batch_stats(&self, start: u64, out: &mut [f64], times: &mut CpuStageTimes) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were detected on this processor.
            return unsafe { self.batch_stats_avx2(start, out, times) };
        }
        self.batch_stats_generic(start, out, times)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn batch_stats_avx2(
        &self,
        start: u64,
        out: &mut [f64],
        times: &mut CpuStageTimes,
    ) -> u64 {
        self.batch_stats_generic(start, out, times)
    }

    /// The batch's stages, each timed into `times` (a clock read per stage
    /// and batch: nothing beside a batch's work).
    #[inline(always)]
    fn batch_stats_generic(&self, start: u64, out: &mut [f64], times: &mut CpuStageTimes) -> u64 {
        let mut clock = std::time::Instant::now();
        let mut lap = |into: &mut f64| {
            let now = std::time::Instant::now();
            *into += (now - clock).as_secs_f64();
            clock = now;
        };
        let n_stats = self.layout.len();
        let nb = out.len() / n_stats;
        let g = self.n_clusters();
        let n = self.n;
        // The batch's weights and products in this thread's buffers (a
        // fresh half-megabyte zeroed per batch cost a tenth of the weights
        // stage); every entry is written before it is read.
        let (mut w, mut prod) = BATCH_BUFFERS.with(|b| b.take());
        w.resize(nb * g, 0.0);
        let mut wsum = vec![0.0; nb];
        let mut all = vec![
            0.0;
            if self.cluster_map.is_some() {
                self.weights.n_clusters
            } else {
                0
            }
        ];
        for (i, row) in w.chunks_mut(g).enumerate() {
            wsum[i] = match &self.cluster_map {
                None => self.weights.fill(start + i as u64, row),
                Some(map) => {
                    // The plan's weights of this design's clusters; their
                    // total is this design's (the plan's exact total when
                    // the design holds every cluster).
                    let plan_total = self.weights.fill(start + i as u64, &mut all);
                    let mut total = 0.0;
                    for (x, &c) in row.iter_mut().zip(map) {
                        *x = all[c];
                        total += all[c];
                    }
                    if map.len() == all.len() {
                        plan_total
                    } else {
                        total
                    }
                }
            };
        }
        lap(&mut times.weights);
        prod.resize(nb * n, 0.0);
        // SAFETY: the slices hold nb x g, g x n and nb x n row-major values,
        // matching the dimensions and strides passed.
        unsafe {
            matrixmultiply::dgemm(
                nb,
                g,
                n,
                1.0,
                w.as_ptr(),
                g as isize,
                1,
                self.rhs.as_ptr(),
                n as isize,
                1,
                0.0,
                prod.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        lap(&mut times.gemm);
        let mut failed = 0;
        match &self.finish {
            Finish::Reweight {
                solver,
                columns,
                constant,
                packed_len,
                student,
                cells,
            } => {
                let sums = cells
                    .as_ref()
                    .map_or(Vec::new(), |c| cell_sums(c, &w, nb, g));
                let width = cells.as_ref().map_or(0, |c| c.width());
                let mut scratch = Vec::new();
                let m = self.layout.mediators;
                let d = student.as_ref().map_or(0, |st| st.d(m));
                let mut functionals = vec![0.0; nb * d * packed_len];
                // A serial, moderated or interaction model's replicate
                // coefficients, from its functionals' solves.
                let mut theta = vec![0.0; nb * d];
                let mut solver = solver.clone();
                // Replicate i's Gram into `packed`.
                let mut pack = |i: usize, packed: &mut [f64]| {
                    for (&k, &v) in columns.iter().zip(&prod[i * n..(i + 1) * n]) {
                        packed[k] = v;
                    }
                    for &(k, c) in constant {
                        packed[k] = wsum[i] * c;
                    }
                    if let Some(cells) = cells {
                        cells.partial_out(packed, &sums[i * width..(i + 1) * width], &mut scratch);
                    }
                };
                // Without studentized SEs (which need each replicate's
                // factor after its solve), LANES replicates are factored
                // side by side; the rest of the batch one at a time.
                let side_by_side = match student.is_none() && solver.lanes() {
                    true => nb - nb % LANES,
                    false => 0,
                };
                let mut packs = vec![0.0; LANES * packed_len];
                for (first, rows) in out[..side_by_side * n_stats]
                    .chunks_mut(LANES * n_stats)
                    .enumerate()
                {
                    for (s, p) in packs.chunks_mut(*packed_len).enumerate() {
                        pack(first * LANES + s, p);
                    }
                    let lanes: [&[f64]; LANES] =
                        std::array::from_fn(|s| &packs[s * packed_len..(s + 1) * packed_len]);
                    let solved = solver.solve_lanes(lanes, rows);
                    failed += solved.iter().filter(|&&ok| !ok).count() as u64;
                }
                let mut packed = vec![0.0; *packed_len];
                for (i, stats) in out.chunks_mut(n_stats).enumerate().skip(side_by_side) {
                    pack(i, &mut packed);
                    if !solver.solve(&packed, stats) {
                        failed += 1;
                    } else if let Some(st) = student {
                        let u = d * packed_len;
                        let f = &mut functionals[i * u..(i + 1) * u];
                        match &st.general {
                            // The solver solved this Gram: not singular.
                            Some(g) => {
                                g.functionals(&packed, &mut theta[i * d..(i + 1) * d], f);
                            }
                            None => solver.influence_functionals(f),
                        }
                    }
                }
                lap(&mut times.solve);
                if let Some(st) = student {
                    self.studentize(st, &w, &functionals, &theta, *packed_len, out);
                }
                lap(&mut times.studentize);
            }
            Finish::Wild { theta, extension } => {
                let mut t = vec![0.0; n];
                let mut extension = extension.clone();
                for (i, stats) in out.chunks_mut(n_stats).enumerate() {
                    t.copy_from_slice(&prod[i * n..(i + 1) * n]);
                    if !stats_from_changes(theta, &mut t, self.layout, stats) {
                        failed += 1;
                        continue;
                    }
                    extension.fill(&t, self.layout, stats);
                }
                lap(&mut times.solve);
            }
        }
        BATCH_BUFFERS.with(|b| b.replace((w, prod)));
        failed
    }
}

/// The meat `v = sum_c w_c psi_c psi_c'` (d x d, row-major) of one
/// replicate from its clusters' weights and influence rows, each entry
/// summed over the clusters in order; a cluster of weight 0 adds nothing.
/// For a d known when compiling, whose accumulators stay in registers; the
/// zero weights are passed over without a branch (a third of pairs weights
/// are 0, in no order a predictor could learn), which adds +0 where the
/// branch added nothing: the same sums, as no entry is ever -0.
#[inline(always)]
fn meat<'a, const D: usize>(weights: &[f64], rows: impl Iterator<Item = &'a [f64]>, v: &mut [f64]) {
    let mut acc = [[0.0; D]; D];
    for (&wg, row) in weights.iter().zip(rows) {
        let row: &[f64; D] = row.try_into().expect("influence rows of d values");
        for a in 0..D {
            let wa = wg * row[a];
            for b in 0..D {
                let t = wa * row[b];
                acc[a][b] += if wg != 0.0 { t } else { 0.0 };
            }
        }
    }
    for (out, acc) in v.chunks_exact_mut(D).zip(&acc) {
        out.copy_from_slice(acc);
    }
}

/// [`meat`] for any d.
fn meat_any<'a>(d: usize, weights: &[f64], rows: impl Iterator<Item = &'a [f64]>, v: &mut [f64]) {
    v.iter_mut().for_each(|x| *x = 0.0);
    for (&wg, row) in weights.iter().zip(rows) {
        if wg == 0.0 {
            continue;
        }
        for a in 0..d {
            for b in 0..d {
                v[a * d + b] += wg * row[a] * row[b];
            }
        }
    }
}

thread_local! {
    /// Each thread's batch weights and GEMM products (`batch_stats`).
    static BATCH_BUFFERS: std::cell::Cell<(Vec<f64>, Vec<f64>)> =
        const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// Seconds of a CPU batch's stages.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuStageTimes {
    /// Each replicate's cluster weights drawn.
    pub weights: f64,
    /// Weights x per-cluster statistics (`matrixmultiply::dgemm`).
    pub gemm: f64,
    /// Each replicate's Gram packed (cell sums partialled out), factored and
    /// solved, and its statistics; the wild bootstrap's statistics from its
    /// coefficients' changes.
    pub solve: f64,
    /// Studentized: each replicate's own SEs.
    pub studentize: f64,
}

/// Each replicate's cell sums (`Cells::partial_out`'s, `nb x width`) from the
/// batch's weights `w` (`nb x g`): per group, one GEMM of the weights of its
/// (group, cluster) entries with their statistics.
fn cell_sums(cells: &Cells, w: &[f64], nb: usize, g: usize) -> Vec<f64> {
    let width = cells.width();
    let mut sums = vec![0.0; nb * width];
    for h in 0..cells.sizes.len() {
        let (from, to) = (cells.starts[h], cells.starts[h + 1]);
        let cols = cells.offsets[h + 1] - cells.offsets[h];
        if to == from || cols == 0 {
            continue;
        }
        let e = to - from;
        let mut wh = vec![0.0; nb * e];
        for r in 0..nb {
            for (k, &c) in cells.entry_cluster[from..to].iter().enumerate() {
                wh[r * e + k] = w[r * g + c];
            }
        }
        let matrix = &cells.matrix[cells.matrix_starts[h]..cells.matrix_starts[h + 1]];
        // SAFETY: wh is nb x e, matrix e x cols, and the output block nb x
        // cols with row stride width, inside sums.
        unsafe {
            matrixmultiply::dgemm(
                nb,
                e,
                cols,
                1.0,
                wh.as_ptr(),
                e as isize,
                1,
                matrix.as_ptr(),
                cols as isize,
                1,
                0.0,
                sums.as_mut_ptr().add(cells.offsets[h]),
                width as isize,
                1,
            );
        }
    }
    sums
}

impl CpuEngine {
    /// This design's clusters.
    fn n_clusters(&self) -> usize {
        self.cluster_map
            .as_ref()
            .map_or(self.weights.n_clusters, Vec::len)
    }

    /// The same engine for a design whose clusters are a subset of the
    /// plan's (one group's model): cluster c of the design takes the weight
    /// of the plan's cluster `map[c]`, so replicate r of every group uses
    /// the same draw.
    pub fn with_cluster_map(mut self, map: Vec<usize>) -> Result<Self> {
        if map.len() * self.n != self.rhs.len() || map.iter().any(|&c| c >= self.weights.n_clusters)
        {
            return Err(Error::Numerical(
                "a group's cluster is not among the run's clusters".into(),
            ));
        }
        self.cluster_map = Some(map);
        Ok(self)
    }

    /// The engine whose replicates also give kappa and ACME at each of
    /// `rho` (`crate::model::sensitivity`): reweighting schemes only, as the wild
    /// bootstrap's replicates have no Gram matrix.
    pub fn with_sensitivity(mut self, rho: &[f64]) -> Result<Self> {
        check_rules(
            self.weights.scheme,
            Asks {
                sensitivity: true,
                ..Asks::default()
            },
        )?;
        match &mut self.finish {
            Finish::Reweight { solver, .. } => {
                *solver = solver.clone().with_sensitivity(rho);
                self.layout = solver.layout;
                Ok(self)
            }
            Finish::Wild { .. } => unreachable!("check_rules refuses bands with the wild scheme"),
        }
    }

    /// The engine whose replicates also give the robustness value of each
    /// path of the omitted-variable bounds, from the Gram columns of
    /// `orders` (`crate::model::confounding::replicate_orders`):
    /// reweighting schemes only, as the wild bootstrap's replicates have
    /// no Gram matrix.
    pub fn with_robustness(mut self, orders: Vec<Vec<usize>>) -> Result<Self> {
        match &mut self.finish {
            Finish::Reweight { solver, .. } => {
                *solver = solver.clone().with_robustness(orders);
                self.layout = solver.layout;
                Ok(self)
            }
            Finish::Wild { .. } => Err(Error::InvalidOption {
                option: "sensitivity.confounding".into(),
                message: "the robustness values' replicates need a reweighting scheme; the \
                          wild bootstrap's replicates have no Gram matrix"
                    .into(),
            }),
        }
    }

    /// Each replicate's CR1 standard errors of the statistics with SEs of
    /// their own (`StatLayout::studentized_stats`: `a_j b_j`, the indirect
    /// effect, the contrasts, and a serial, moderated or interaction
    /// model's effects): cluster influences = statistics x functionals (one
    /// GEMM for the batch), then the weighted meat and the delta method.
    /// `theta`: a serial, moderated or interaction model's replicate
    /// coefficients (d per replicate).
    #[inline(always)]
    fn studentize(
        &self,
        st: &Student,
        w: &[f64],
        functionals: &[f64],
        theta: &[f64],
        p: usize,
        out: &mut [f64],
    ) {
        let l = self.layout;
        let m = l.mediators;
        let d = st.d(m);
        let n_stats = l.len();
        let nb = out.len() / n_stats;
        let g = self.n_clusters();
        let cols = nb * d;
        let mut psi = vec![0.0; g * cols];
        // SAFETY: stats is g x p, functionals is (nb d) x p read as its
        // transpose p x (nb d) (row stride 1, column stride p), psi g x (nb d).
        unsafe {
            matrixmultiply::dgemm(
                g,
                p,
                cols,
                1.0,
                st.stats.as_ptr(),
                p as isize,
                1,
                functionals.as_ptr(),
                1,
                p as isize,
                0.0,
                psi.as_mut_ptr(),
                cols as isize,
                1,
            );
        }
        let mut v = vec![0.0; d * d];
        let targets = l.se_targets();
        let positions = l.studentized_positions();
        let mut grads: Vec<Vec<f64>> = Vec::new();
        for (r, stats) in out.chunks_mut(n_stats).enumerate() {
            if !stats[0].is_finite() {
                for &at in &positions {
                    stats[at] = f64::NAN;
                }
                continue;
            }
            // Cluster g counts w_g times in the meat: a cluster drawn k
            // times is k clusters, and Bayesian weights (mean 1) are
            // fractional copies, so the meat estimates what the original
            // sample's does.
            let weights = &w[r * g..(r + 1) * g];
            let rows = psi.chunks_exact(cols).map(|c| &c[r * d..(r + 1) * d]);
            match d {
                2 => meat::<2>(weights, rows, &mut v),
                4 => meat::<4>(weights, rows, &mut v),
                6 => meat::<6>(weights, rows, &mut v),
                _ => meat_any(d, weights, rows, &mut v),
            }
            for (x, f) in v.iter_mut().zip(&st.ssc) {
                *x *= f;
            }
            let quad = |grad: &[f64]| -> f64 { quadratic_form(grad, &v).sqrt() };
            if let Some(general) = &st.general {
                general.gradients(&theta[r * d..(r + 1) * d], &mut grads);
                for (grad, &at) in grads.iter().zip(&positions) {
                    stats[at] = quad(grad);
                }
                continue;
            }
            let theta: Vec<f64> = (0..m)
                .map(|j| stats[l.a(j)])
                .chain((0..m).map(|j| stats[l.b(j)]))
                .collect();
            // The gradient of sum_j w_j a_j b_j: w_j b_j at a_j, w_j a_j at b_j.
            let mut grad = vec![0.0; d];
            for (t, weights) in targets.iter().enumerate() {
                for (j, &w) in weights.iter().enumerate() {
                    grad[j] = w * theta[m + j];
                    grad[m + j] = w * theta[j];
                }
                stats[l.se_target(t)] = quad(&grad);
            }
        }
    }
}

impl Engine for CpuEngine {
    fn backend(&self) -> Backend {
        Backend::cpu()
    }

    fn layout(&self) -> StatLayout {
        self.layout
    }

    fn compute(&self, start: u64, out: &mut [f64]) -> Result<u64> {
        let n_stats = self.layout.len();
        let chunk = self.batch * n_stats;
        let failed = self.pool.install(|| {
            out.par_chunks_mut(chunk)
                .enumerate()
                .map(|(i, block)| {
                    let mut times = CpuStageTimes::default();
                    self.batch_stats(start + (i * self.batch) as u64, block, &mut times)
                })
                .sum()
        });
        Ok(failed)
    }
}
