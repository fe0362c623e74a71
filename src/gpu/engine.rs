//! The GPU engine: the CPU engine's replicates, computed by the WGSL stages
//! in batches sized from the adapter's limits, behind the same
//! `engine::Engine` trait so the aggregator and intervals are shared.
//!
//! * Reweighting schemes (pairs, Poisson, jackknife): weights (as codes,
//!   bit-identical to the CPU's), GEMM of the weights minus one with the
//!   whitened cluster statistics (`crate::resample::whiten`), per-replicate solve; the
//!   device returns each replicate's coefficient changes, which the host
//!   adds to the full-sample coefficients in f64. An instrumented design's
//!   solve is two-stage least squares (`solve_iv.wgsl`, `crate::resample::whiten_iv`),
//!   one invocation per replicate and system.
//! * Wild (Rademacher, Mammen, Webb): weights, GEMM with the cluster
//!   influences; the GEMM's output is the change of the coefficients.
//!
//! Batches are double-buffered: batch i + 1 is submitted before batch i is
//! read back and finished on the host. A device error (out of memory, a
//! failed mapping, a lost device) makes the engine retry the batch with half
//! the replicates, down to [`MIN_BATCH`], then finish the run on the CPU
//! engine with a warning; replicate r is the same computation wherever it
//! runs, so the results do not depend on where it fell back.

use std::sync::{Mutex, OnceLock};

use super::cells::{CellInputs, CellSlot};
use super::permute::{PermutationTable, PermuteInputs, PermuteSlot, TableShape};
use super::solve_gen::SolveShape;
use super::{
    GemmInputs, GemmNtParams, GemmSlot, GpuContext, MeatCovParams, MeatParams, Pending, Precision,
    SolveIvParams, SolveParams, reals_from_words, words_per,
};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::gpu::roofline::{Dims, Stage};
use crate::math::linalg::{packed_index, packed_len, quadratic_form};
use crate::model::design::Design;
use crate::model::estimate::SystemFit;
use crate::model::mediation::reported_coefficients;
use crate::model::panel::Panel;
use crate::model::replicate::{Extension, Solver, StatLayout, Studentized, stats_from_changes};
use crate::resample::engine::{Backend, Engine};
use crate::resample::factory::{CpuRequest, cpu_engine};
use crate::resample::permutation::Exchange;
use crate::resample::scheme::{Asks, Scheme, WeightPlan, check_rules};
use crate::resample::spec::SharedWeights;
use crate::resample::whiten::{Whitened, to_theta};

/// Smallest batch tried before falling back to the CPU engine.
pub const MIN_BATCH: usize = 64;
/// Largest batch, whatever the limits allow (bounds host memory and the
/// latency of one submission).
pub const MAX_BATCH: usize = 1 << 18;

/// A fault to inject, for testing the fallback path (`MEDSIM_GPU_FAULT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Destroy the device after this many batches have been read back.
    LoseDeviceAfter(u64),
    /// Give every batch of more than this many replicates an output buffer
    /// beyond the device's limits, so that wgpu rejects it.
    FailAbove(usize),
}

impl Fault {
    /// `lose-device-after:N` or `fail-above:N`.
    pub fn parse(s: &str) -> Result<Fault> {
        let bad = || Error::InvalidOption {
            option: "MEDSIM_GPU_FAULT".into(),
            message: format!("'{s}': expected lose-device-after:N or fail-above:N"),
        };
        let (kind, n) = s.split_once(':').ok_or_else(bad)?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        match kind.trim() {
            "lose-device-after" => Ok(Fault::LoseDeviceAfter(n)),
            "fail-above" => Ok(Fault::FailAbove(n as usize)),
            _ => Err(bad()),
        }
    }

    /// The fault `MEDSIM_GPU_FAULT` asks for, if any.
    pub fn from_env() -> Result<Option<Fault>> {
        match std::env::var("MEDSIM_GPU_FAULT") {
            Ok(s) if !s.trim().is_empty() => Fault::parse(&s).map(Some),
            _ => Ok(None),
        }
    }
}

/// Settings of a GPU engine.
#[derive(Debug, Clone, Copy)]
pub struct GpuOptions {
    pub precision: Precision,
    /// Largest batch (0: from the adapter's limits, at most [`MAX_BATCH`]).
    pub max_batch: usize,
    /// CPU fallback engine: replicates per GEMM and threads (0: all cores).
    pub cpu_batch: usize,
    pub cpu_threads: usize,
    /// Also each replicate's own CR1 SEs of the indirect effects
    /// (studentized intervals; reweighting schemes).
    pub studentize: bool,
    pub fault: Option<Fault>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            precision: Precision::F32,
            max_batch: 0,
            cpu_batch: 256,
            cpu_threads: 0,
            studentize: false,
            fault: None,
        }
    }
}

/// The delta-method terms `t_g = sum_i w_i (b_i sqrt(f_a_i) psi_g,a_i + a_i
/// sqrt(f_b_i) psi_g,b_i)` of the SE of each target (weights `w` over the
/// mediators, `StatLayout::se_targets`) at coefficients `theta` (a_1..a_m,
/// b_1..b_m, ...), with `roots` the sqrt(f) and `psi` the G x 2m cluster
/// influences: G x targets, what meat.wgsl squares and sums with the
/// cluster weights.
fn delta_method_terms(
    theta: &[f64],
    roots: &[f64],
    psi: &[f64],
    targets: &[Vec<f64>],
    m: usize,
) -> Vec<f64> {
    let g = psi.len() / (2 * m);
    let n = targets.len();
    let mut t = vec![0.0; g * n];
    for c in 0..g {
        let p = &psi[c * 2 * m..(c + 1) * 2 * m];
        for (j, w) in targets.iter().enumerate() {
            t[c * n + j] = (0..m)
                .map(|i| {
                    w[i] * (theta[m + i] * roots[i] * p[i] + theta[i] * roots[m + i] * p[m + i])
                })
                .sum();
        }
    }
    t
}

/// Scratch reals per replicate of the solve stage: the packed factor of the
/// regressor block, its reciprocal diagonal and four vectors.
pub(crate) fn solve_scratch(q: usize) -> u64 {
    let ko = (q - 1) as u64;
    ko * (ko + 1) / 2 + 5 * ko
}

/// Device buffers and bind groups of one batch slot.
struct Slot {
    capacity: usize,
    front: FrontSlot,
    cells: Option<CellSlot>,
    solve_params: Option<wgpu::Buffer>,
    solve: Option<wgpu::BindGroup>,
    /// Studentized: the influence GEMM's and the meat's parameters and
    /// bindings.
    student: Option<[(wgpu::Buffer, wgpu::BindGroup); 2]>,
    /// The buffer read back: the solve's output, or the GEMM's for wild.
    result: wgpu::Buffer,
    staging: wgpu::Buffer,
}

/// What the engine is doing now.
struct State {
    batch: usize,
    slots: Vec<Slot>,
    /// Batches read back so far.
    batches: u64,
    /// Set once the engine has given up on the device.
    fell_back: Option<String>,
}

/// The per-replicate solve's fixed inputs (reweighting schemes).
struct SolveInputs {
    kind: SolveKind,
    q: usize,
    /// Systems per replicate (`Whitened::sets`): the solve's rows are
    /// (replicate, system) pairs.
    systems: usize,
    /// Studentized: what the meat stage reads besides the influences.
    fixed: Option<StudentInputs>,
    /// The solve generated for the model's shape (`super::solve_gen`), in
    /// place of `solve.wgsl` where nothing but the coefficients is asked:
    /// least squares, no influence functionals, no sensitivity ratio.
    generated: Option<wgpu::ComputePipeline>,
}

/// The meat stage's full-sample inputs (studentized intervals).
enum StudentInputs {
    /// `meat.wgsl` (the plain and instrumented models): theta_hat, then
    /// sqrt of each a_j, b_j equation's CR1 factor; the full sample's
    /// cluster influences on a_j, b_j; its delta-method terms t_hat; the SE
    /// targets' weights.
    Targets([wgpu::Buffer; 4]),
    /// `meat_cov.wgsl` (serial, moderated and interaction models): the
    /// full sample's cluster influences on every reported coefficient, in
    /// the solve's order and the meat's whitened basis, and the basis
    /// (`Covariance::inverse`).
    Covariance([wgpu::Buffer; 2]),
}

/// The host's side of a serial, moderated or interaction model's
/// studentized SEs on the device: the meat stage returns the change of
/// each replicate's meat of its reported coefficients (`meat_cov.wgsl`),
/// and the host turns it into each effect's SE with the effect's gradient
/// at the replicate's coefficients, as the CPU engine does (`Studentized`
/// is shared).
///
/// The meat is taken in the basis that whitens the full sample's (`L^{-1}
/// psi`, `V_hat = L L'`): there the full-sample meat is the identity and
/// a replicate's is near it, so an effect whose gradient nearly cancels
/// across correlated coefficients (c' + c3' w, w far from 0) keeps f32's
/// relative precision in its SE, which it would lose in the coefficients'
/// basis.
#[derive(Debug, Clone)]
struct Covariance {
    general: Studentized,
    /// Coefficients with influences per replicate on the device: every
    /// system's, padding included (the solve's order).
    d: usize,
    /// Each reported coefficient's place among the device's.
    slot_of: Vec<usize>,
    /// Each reported coefficient's factor from the device's units to the
    /// data's, times the square root of its equation's CR1 factor.
    scale: Vec<f64>,
    /// Row-major d x d lower-triangular L of the full sample's meat in the
    /// device's units (a padding slot's row and column those of the
    /// identity), and `L^{-1}`.
    factor: Vec<f64>,
    inverse: Vec<f64>,
    /// The full sample's meat in the whitened basis (packed, d x d): the
    /// identity, up to rounding (zero at padding).
    v_hat: Vec<f64>,
    /// Where each studentized statistic's SE goes (`StatLayout::se_of`).
    positions: Vec<usize>,
}

impl Covariance {
    /// The full sample's influences on the device (G x d, in the device's
    /// units, zero for padding) and the host's side.
    fn new(
        design: &Design,
        w: &Whitened,
        fit: &SystemFit,
        unit: &[f64],
        layout: StatLayout,
    ) -> Option<(Vec<f64>, Covariance)> {
        let general = Studentized::of(design)?;
        let (g, n, d) = (w.n_clusters, general.n_theta, w.order.len());
        let psi = w.influence(fit, n);
        let mut slot_of = vec![0; n];
        for (i, o) in w.order.iter().enumerate() {
            if let Some(o) = o {
                slot_of[*o] = i;
            }
        }
        let mut psi_hat = vec![0.0; g * d];
        for c in 0..g {
            for o in 0..n {
                psi_hat[c * d + slot_of[o]] = psi[c * n + o] / unit[o];
            }
        }
        // The full sample's meat, one at a padding slot's diagonal.
        let mut factor = vec![0.0; d * d];
        for row in psi_hat.chunks(d) {
            for a in 0..d {
                for b in 0..d {
                    factor[a * d + b] += row[a] * row[b];
                }
            }
        }
        for (i, o) in w.order.iter().enumerate() {
            if o.is_none() {
                factor[i * d + i] = 1.0;
            }
        }
        // A singular meat (degenerate data): the coefficients' own basis.
        if crate::math::linalg::cholesky(&mut factor, d).is_err() {
            factor = (0..d * d)
                .map(|k| f64::from(u8::from(k % (d + 1) == 0)))
                .collect();
        }
        let inverse = crate::resample::whiten::lower_inverse(&factor, d);
        for row in psi_hat.chunks_mut(d) {
            let z: Vec<f64> = (0..d)
                .map(|a| (0..=a).map(|b| inverse[a * d + b] * row[b]).sum())
                .collect();
            row.copy_from_slice(&z);
        }
        let mut v_hat = vec![0.0; packed_len(d)];
        for row in psi_hat.chunks(d) {
            for a in 0..d {
                for b in a..d {
                    v_hat[packed_index(a, b, d)] += row[a] * row[b];
                }
            }
        }
        let scale = (0..n)
            .map(|o| unit[o] * fit.equations[general.equation_of[o]].ssc.sqrt())
            .collect();
        let positions = layout.studentized_positions();
        Some((
            psi_hat,
            Covariance {
                general,
                d,
                slot_of,
                scale,
                factor,
                inverse,
                v_hat,
                positions,
            },
        ))
    }

    /// Each studentized statistic's SE from the replicate's coefficients
    /// `theta` (the data's units) and its read-back meat change `dv` (in
    /// the whitened basis): `g' V g` with `V = S L (V_hat + dv) L' S`, as
    /// `(L' S g)' (V_hat + dv) (L' S g)`.
    fn fill(&self, theta: &[f64], dv: &[f64], grads: &mut Vec<Vec<f64>>, stats: &mut [f64]) {
        let d = self.d;
        let v: Vec<f64> = self.v_hat.iter().zip(dv).map(|(h, c)| h + c).collect();
        let full = crate::math::linalg::unpack(&v, d);
        let mut slots = vec![0.0; d];
        self.general.gradients(theta, grads);
        for (grad, &at) in grads.iter().zip(&self.positions) {
            slots.iter_mut().for_each(|x| *x = 0.0);
            for (o, g) in grad.iter().enumerate() {
                slots[self.slot_of[o]] = g * self.scale[o];
            }
            let z: Vec<f64> = (0..d)
                .map(|b| (b..d).map(|a| self.factor[a * d + b] * slots[a]).sum())
                .collect();
            stats[at] = quadratic_form(&z, &full).max(0.0).sqrt();
        }
    }
}

/// Which solve stage, with its constant buffers.
enum SolveKind {
    /// Least squares, `solve.wgsl`: per coefficient (k, i, t), its ratio to
    /// the units of the data, L and L^{-1}.
    LeastSquares([wgpu::Buffer; 4]),
    /// Two-stage least squares, `solve_iv.wgsl` (`crate::resample::whiten_iv`):
    /// systems, targets, outputs, constants, and the sizes of the systems.
    TwoStage {
        buffers: [wgpu::Buffer; 4],
        n_sys: u32,
        ki_max: u32,
        kr_max: u32,
    },
}

impl SolveInputs {
    fn pipeline<'a>(
        &'a self,
        ctx: &'a GpuContext,
        precision: Precision,
    ) -> Result<&'a wgpu::ComputePipeline> {
        if let Some(generated) = &self.generated {
            return Ok(generated);
        }
        match self.kind {
            SolveKind::LeastSquares(_) => ctx.stage(&ctx.solve, precision),
            SolveKind::TwoStage { .. } => ctx.stage(&ctx.solve_iv, precision),
        }
    }

    /// Scratch reals per replicate.
    fn scratch(&self) -> u64 {
        match self.kind {
            _ if self.generated.is_some() => 0,
            SolveKind::LeastSquares(_) => self.systems as u64 * solve_scratch(self.q),
            SolveKind::TwoStage {
                ki_max,
                kr_max,
                n_sys,
                ..
            } => {
                let (q, ki, kr) = (self.q as u64, ki_max as u64, kr_max as u64);
                let per_system = q * ki.max(kr) + ki * ki + 2 * ki * kr + kr * kr + 3 * q;
                n_sys as u64 * (per_system + 2 * (ki + kr))
            }
        }
    }

    /// The uniform parameters for `nb` replicates, `n_coef` coefficients
    /// and `stride` reals of each (all systems').
    fn params(
        &self,
        nb: u32,
        n_coef: usize,
        stride: usize,
        n_func: usize,
        [kappa_at, rv_at]: [usize; 2],
    ) -> Vec<u8> {
        match self.kind {
            SolveKind::LeastSquares(_) => bytemuck::bytes_of(&SolveParams {
                nb: nb * self.systems as u32,
                q: self.q as u32,
                n_coef: (n_coef / self.systems) as u32,
                stride: stride as u32,
                n_func: n_func as u32,
                kappa_at: kappa_at as u32,
                per_set: 0,
                systems: self.systems as u32,
                rv_at: rv_at as u32,
                pad: [0; 3],
            })
            .to_vec(),
            SolveKind::TwoStage {
                n_sys,
                ki_max,
                kr_max,
                ..
            } => bytemuck::bytes_of(&SolveIvParams {
                nb,
                q: self.q as u32,
                n_coef: n_coef as u32,
                stride: stride as u32,
                n_sys,
                ki_max,
                kr_max,
                n_func: n_func as u32,
            })
            .to_vec(),
        }
    }

    /// Workgroups for `nb` replicates: 64 replicates each, and (two-stage)
    /// one row of workgroups per system.
    fn workgroups(&self, nb: u32) -> (u32, u32) {
        match self.kind {
            SolveKind::LeastSquares(_) => ((nb * self.systems as u32).div_ceil(64), 1),
            SolveKind::TwoStage { n_sys, .. } => (nb.div_ceil(64), n_sys),
        }
    }

    /// The constant buffers, in binding order after the front's output.
    fn constants(&self) -> &[wgpu::Buffer; 4] {
        match &self.kind {
            SolveKind::LeastSquares(b) | SolveKind::TwoStage { buffers: b, .. } => b,
        }
    }
}

/// The device buffers of an instrumented design's two-stage solve.
fn two_stage_inputs(
    ctx: &GpuContext,
    iv: &crate::resample::whiten_iv::WhitenedTwoStage,
    precision: Precision,
) -> SolveKind {
    let mut consts: Vec<f64> = Vec::new();
    let mut put = |v: &[f64]| -> u32 {
        let at = consts.len() as u32;
        consts.extend_from_slice(v);
        at
    };
    let (mut systems, mut targets, mut outputs) = (Vec::new(), Vec::new(), Vec::new());
    for s in &iv.systems {
        let (u, b, m0, f0) = (put(&s.u), put(&s.b), put(&s.m0), put(&s.f0));
        systems.push([s.k_i as u32, s.k_r as u32, u, b]);
        systems.push([m0, f0, targets.len() as u32, s.targets.len() as u32]);
        for t in &s.targets {
            let (e_d, r0) = (put(&t.e_d), put(&t.r0));
            targets.push([e_d, r0, outputs.len() as u32, t.outputs.len() as u32]);
            for o in &t.outputs {
                let (w, y0, h0) = (put(&o.w), put(&o.y0), put(&o.h0));
                outputs.push([w, o.coefficient as u32, y0, h0]);
            }
        }
    }
    SolveKind::TwoStage {
        buffers: [
            ctx.storage("iv systems", bytemuck::cast_slice(&systems)),
            ctx.storage("iv targets", bytemuck::cast_slice(&targets)),
            ctx.storage("iv outputs", bytemuck::cast_slice(&outputs)),
            ctx.reals("iv constants", &consts, precision),
        ],
        n_sys: iv.systems.len() as u32,
        ki_max: iv.systems.iter().map(|s| s.k_i).max().unwrap_or(0) as u32,
        kr_max: iv.systems.iter().map(|s| s.k_r).max().unwrap_or(0) as u32,
    }
}

/// For each of the `n` columns of the row-major `values`, the power of two
/// nearest its largest magnitude (1 for a column of zeros): dividing by it
/// is exact and leaves the column's largest entry in [0.5, 2), well inside
/// f32's range whatever the data's units.
pub fn power_of_two_scales(values: &[f64], n: usize) -> Vec<f64> {
    (0..n)
        .map(|j| {
            let largest = values
                .iter()
                .skip(j)
                .step_by(n.max(1))
                .fold(0.0f64, |m, v| m.max(v.abs()));
            if largest > 0.0 && largest.is_finite() {
                2f64.powi(largest.log2().round() as i32)
            } else {
                1.0
            }
        })
        .collect()
}

/// The wild bootstrap's right-hand side for an f32 device: the G x n_coef
/// cluster influences of the reported coefficients, each column divided by
/// the power of two in `unit` (exact), and the full-sample coefficients.
/// The single and the stacked engines both upload it.
pub struct WildRhs {
    pub influence: Vec<f64>,
    pub unit: Vec<f64>,
    pub theta: Vec<f64>,
}

impl WildRhs {
    pub fn new(design: &Design, fit: &SystemFit) -> WildRhs {
        let keys = reported_coefficients(design);
        let n = keys.len();
        let idx: Vec<usize> = keys.iter().map(|&(e, c)| fit.index(e, c)).collect();
        let raw: Vec<f64> = (0..design.n_clusters)
            .flat_map(|c| idx.iter().map(move |&i| fit.influence[c * fit.dim + i]))
            .collect();
        let unit = power_of_two_scales(&raw, n);
        WildRhs {
            influence: raw
                .iter()
                .enumerate()
                .map(|(i, v)| v / unit[i % n])
                .collect(),
            theta: keys.iter().map(|&(e, c)| fit.coef(e, c)).collect(),
            unit,
        }
    }
}

/// The GPU engine over one design and weight plan.
pub struct GpuEngine<'a> {
    ctx: &'a GpuContext,
    options: GpuOptions,
    layout: StatLayout,
    /// What a serial or interaction model adds to the coefficients'
    /// statistics.
    extension: Extension,
    plan: WeightPlan,
    /// Coefficients per replicate read back: a_j, b_j, c, c' and what
    /// `reported_coefficients` adds, or each system's (`Whitened::sets`).
    n_coef: usize,
    /// Where each read-back coefficient goes in theta (None: a system's
    /// padding).
    order: Vec<Option<usize>>,
    /// Reals per replicate read back: the coefficients, then (studentized)
    /// the changes of the squared standard errors of the SE targets, or
    /// of the packed meat of every coefficient (`Covariance`).
    stride: usize,
    /// Studentized: the full sample's squared delta-method SEs of a_j b_j
    /// and the indirect effect (the meat with every weight 1).
    se_hat2: Vec<f64>,
    /// Studentized serial, moderated or interaction model: the meat of
    /// every reported coefficient instead (`meat_cov.wgsl`).
    covariance: Option<Covariance>,
    theta: Vec<f64>,
    /// What each read-back coefficient change is multiplied by, in f64 on
    /// the host, to be in the units of the data: the device computes in
    /// units where the coefficients are of order one (the whitened design's
    /// scaled columns; wild: influence columns divided by a power of two),
    /// so f32 neither underflows nor overflows on data in tiny or huge units.
    unit: Vec<f64>,
    /// Studentized: the unit of the replicate's own SEs (all of them SEs of
    /// products a_j b_j, in the units of c), squared SE changes read back
    /// being in the device's units.
    se_unit: f64,
    front: Front,
    /// `unit+GROUP^time` effects: the stages between the GEMM and the
    /// solve that partial each replicate's cell effects out of its Gram.
    cells: Option<CellInputs>,
    solve: Option<SolveInputs>,
    /// Largest batch the adapter's limits allow.
    limit: usize,
    state: Mutex<State>,
    design: &'a Design,
    fit: &'a SystemFit,
    /// The permutation scheme's panel (for the CPU fallback).
    panel: Option<&'a Panel>,
    /// A group's model drawing the run's weights: its clusters' places
    /// among the run's (for the CPU fallback).
    cluster_map: Option<Vec<usize>>,
    /// Sensitivity analysis: the rho grid and the full-sample kappa, and
    /// where the solve writes its ratio among a replicate's reals (0:
    /// nowhere).
    rho: Vec<f64>,
    kappa_hat: f64,
    kappa_at: usize,
    /// The robustness values' replicates: where the solve writes their
    /// terms (0: nowhere), and each path's coefficient (its place in
    /// theta).
    rv_at: usize,
    rv_paths: Vec<usize>,
    cpu: OnceLock<Result<Box<dyn Engine + Send + 'a>>>,
}

/// One batch's stages timed alone (`GpuEngine::stage_times`).
#[derive(Clone, Debug)]
pub struct StageTimes {
    /// Replicates in the batch.
    pub count: usize,
    /// Seconds of each stage on the device, the readback last.
    pub stages: Vec<(Stage, f64)>,
    /// Seconds of the host's finishing of the batch.
    pub finish: f64,
    /// The batch's statistics (replicates 0 ..), as `compute` gives them:
    /// the stages timed are the engine's.
    pub stats: Vec<f64>,
}

/// The stage that makes each replicate's input to the solve (or, for wild,
/// its coefficient changes).
enum Front {
    /// Weights, then the GEMM with the per-cluster statistics.
    Weights(GemmInputs),
    /// Permutations of the treatment series, then their whitened Gram
    /// deviations.
    Permute(PermuteInputs),
}

/// One batch's buffers of the front stage.
enum FrontSlot {
    Weights(GemmSlot),
    Permute(PermuteSlot),
}

impl FrontSlot {
    /// The front stage's output.
    fn out(&self) -> &wgpu::Buffer {
        match self {
            FrontSlot::Weights(s) => &s.out,
            FrontSlot::Permute(s) => &s.out,
        }
    }
}

/// The full-sample inputs of the studentized SEs on the device (theta and
/// the CR1 factors, the influences, the delta-method terms, the SE targets'
/// weights, in the scaled design's units), and each target's full-sample
/// squared SE that the device's changes are added to.
fn studentized_inputs(
    ctx: &GpuContext,
    w: &Whitened,
    fit: &SystemFit,
    unit: &[f64],
    targets: &[Vec<f64>],
    precision: Precision,
) -> ([wgpu::Buffer; 4], Vec<f64>) {
    let m = unit.len() / 2 - 1;
    let g = w.n_clusters;
    let mut se_hat2 = Vec::new();
    let roots: Vec<f64> = (0..2 * m)
        .map(|u| fit.equations[if u < m { 1 + u } else { m + 1 }].ssc.sqrt())
        .collect();
    let mut psi_hat = w.influence(fit, 2 * m);
    for (i, v) in psi_hat.iter_mut().enumerate() {
        *v /= unit[i % (2 * m)];
    }
    let theta: Vec<f64> = w.theta.iter().zip(unit).map(|(t, u)| t / u).collect();
    let t_hat = delta_method_terms(&theta, &roots, &psi_hat, targets, m);
    let n = targets.len();
    for j in 0..n {
        se_hat2.push((0..g).map(|c| t_hat[c * n + j].powi(2)).sum());
    }
    let target_weights: Vec<f64> = targets.concat();
    let values: Vec<f64> = theta.into_iter().chain(roots).collect();
    let buffers = [
        ctx.reals("theta and CR1 factors", &values, precision),
        ctx.reals("full-sample influences", &psi_hat, precision),
        ctx.reals("full-sample delta-method terms", &t_hat, precision),
        ctx.reals("se targets", &target_weights, precision),
    ];
    (buffers, se_hat2)
}

/// Coefficients with influences per replicate of an engine with `m`
/// mediators: a_j, b_j when studentizing, or (`Covariance`) every system's
/// coefficients.
fn functionals(covariance: Option<&Covariance>, studentize: bool, m: usize) -> usize {
    match (covariance, studentize) {
        (Some(c), _) => c.d,
        (None, true) => 2 * m,
        (None, false) => 0,
    }
}

/// What sizes a GPU engine's batch: clusters, mediators, the GEMM's
/// columns, the reals per replicate, studentized SEs, precision.
struct BatchShape {
    g: usize,
    n: usize,
    stride: usize,
    /// Studentized: coefficients with influences per replicate (0: none).
    functionals: usize,
    /// The cell sums per replicate (0: no `unit+GROUP^time` effects).
    cell_width: usize,
    precision: Precision,
}

/// The largest batch of replicates the engine's stages hold at once
/// (`GpuContext::batch_limit` over each buffer's bytes per replicate);
/// refused when not even `MIN_BATCH` fit.
fn batch_limit(
    ctx: &GpuContext,
    front: &Front,
    plan: &WeightPlan,
    solve: Option<&SolveInputs>,
    shape: BatchShape,
) -> Result<usize> {
    let BatchShape {
        g,
        n,
        stride,
        functionals,
        cell_width,
        precision,
    } = shape;
    let f = functionals as u64;
    let ws = (words_per(precision) * 4) as u64;
    let front_bytes = match front {
        Front::Weights(inputs) => [
            // Codes (none where the GEMM draws the weights), Bayes' sums.
            if inputs.draws() { 0 } else { g as u64 * 4 } + plan.strata.len() as u64 * 8,
            n as u64 * ws,
            0,
        ],
        Front::Permute(p) => p.bytes_per_replicate(ws),
    };
    let per_replicate = [
        front_bytes[0],
        front_bytes[1],
        front_bytes[2],
        if solve.is_some() {
            stride as u64 * ws
        } else {
            0
        },
        solve.map_or(0, |s| s.scratch() * ws),
        // The functionals (each a row over every system's T_g) and the
        // influences.
        f * n as u64 * ws,
        f * g as u64 * ws,
        cell_width as u64 * ws,
    ];
    let groups = ctx.limits.max_compute_workgroups_per_dimension as u64;
    // The weights, solve and meat stages have one workgroup per 64
    // replicates, the GEMM one row of workgroups per 64 or more
    // (GemmShape::block); the influence GEMM one column per NT_BLOCK.1
    // (replicate, coefficient) pairs.
    // The cell stages index (replicate, sum) pairs in 32 bits.
    let by_groups = (groups * super::NT_BLOCK.1 as u64)
        .checked_div(f)
        .unwrap_or(groups * 64)
        .min(
            (u32::MAX as u64)
                .checked_div(cell_width as u64)
                .unwrap_or(u64::MAX),
        );
    let limit = ctx.batch_limit(
        &per_replicate,
        Some(ctx.batch_budget()),
        by_groups,
        MAX_BATCH as u64,
    ) as usize;
    if limit < MIN_BATCH {
        return Err(Error::InvalidOption {
            option: "resampling.backend".into(),
            message: format!(
                "{} cannot hold even {MIN_BATCH} replicates of {g} clusters at once; set resampling.backend to cpu",
                ctx.info.name
            ),
        });
    }
    Ok(limit)
}

/// `GpuEngine::new` and `mapped` take the weights of `plan`, which the
/// permutation scheme does not draw.
fn reweighting_only(plan: &WeightPlan) -> Result<()> {
    if plan.scheme == Scheme::Permutation {
        return Err(Error::InvalidOption {
            option: "resampling.scheme".into(),
            message: "permutation is not a reweighting scheme; use GpuEngine::permutation".into(),
        });
    }
    Ok(())
}

impl<'a> GpuEngine<'a> {
    /// An engine for the reweighting or wild scheme of `plan` over `design`
    /// on `ctx`'s device.
    pub fn new(
        ctx: &'a GpuContext,
        design: &'a Design,
        fit: &'a SystemFit,
        plan: WeightPlan,
        options: GpuOptions,
    ) -> Result<GpuEngine<'a>> {
        reweighting_only(&plan)?;
        Self::build(ctx, design, fit, plan, None, None, options)
    }

    /// An engine for a group's model (`design`, `fit`) drawing the run's
    /// weights (`shared`): its statistics are spread over the run's
    /// clusters on the device (zero where the group has no cluster), so the
    /// device draws the run's weights as the CPU engine's cluster map does.
    pub fn mapped(
        ctx: &'a GpuContext,
        design: &'a Design,
        fit: &'a SystemFit,
        shared: &SharedWeights,
        plan: WeightPlan,
        options: GpuOptions,
    ) -> Result<GpuEngine<'a>> {
        reweighting_only(&plan)?;
        Self::build(ctx, design, fit, plan, None, Some(shared), options)
    }

    /// An engine permuting the treatment series of `panel`'s units (seed
    /// `seed`), over `design` on `ctx`'s device.
    pub fn permutation(
        ctx: &'a GpuContext,
        design: &'a Design,
        fit: &'a SystemFit,
        panel: &'a Panel,
        seed: u64,
        options: GpuOptions,
    ) -> Result<GpuEngine<'a>> {
        let plan = WeightPlan::new(Scheme::Permutation, seed, design.n_clusters, None);
        Self::build(ctx, design, fit, plan, Some(panel), None, options)
    }

    fn build(
        ctx: &'a GpuContext,
        design: &'a Design,
        fit: &'a SystemFit,
        plan: WeightPlan,
        panel: Option<&'a Panel>,
        shared: Option<&SharedWeights>,
        options: GpuOptions,
    ) -> Result<GpuEngine<'a>> {
        // The device holds the statistics it resamples: the model's own, or
        // spread over the run's clusters. The engine keeps the model's own
        // for its sensitivity solve and its CPU fallback.
        let spread = shared.map(|s| {
            (
                design.on_clusters(&s.map, s.n_clusters),
                fit.on_clusters(&s.map, s.n_clusters),
            )
        });
        let cluster_map = shared.map(|s| s.map.clone());
        let (model, model_fit) = (design, fit);
        let (design, fit) = spread.as_ref().map_or((design, fit), |(d, f)| (d, f));
        let instrumented = design.layout.instrumented();
        let studentize = options.studentize;
        check_rules(
            plan.scheme,
            Asks {
                studentized: studentize,
                ..Asks::model(design)
            },
        )?;
        let q = design.q();
        let precision = options.precision;
        // Refuse f64 on adapters without it here, not at the first batch.
        ctx.precision_index(precision)?;
        let g = design.n_clusters;
        let m = design.layout.n_mediators;
        // a, b, c, c' and a chain's links, the moderation's or the
        // interaction's coefficients.
        let mut n_coef = reported_coefficients(design).len();
        let mut order: Vec<Option<usize>> = (0..n_coef).map(Some).collect();
        let layout = StatLayout {
            studentized: studentize,
            ..StatLayout::of(design)
        };
        let targets = layout.se_targets();
        let mut se_hat2 = Vec::new();
        let mut covariance = None;
        let unit: Vec<f64>;
        let mut se_unit = 1.0;
        let (front, n, theta, solve, cells) = if let Scheme::Wild(_) = plan.scheme {
            let rhs = WildRhs::new(design, fit);
            unit = rhs.unit;
            let front = Front::Weights(GemmInputs::new(
                ctx,
                &plan,
                &rhs.influence,
                n_coef,
                precision,
                true,
            )?);
            // The wild influences are the full sample's: no cell stage.
            (front, n_coef, rhs.theta, None, None)
        } else {
            let w = Whitened::new(design, fit)?;
            let coefs: Vec<[u32; 4]> = w
                .coefficients
                .iter()
                .map(|c| [c.k as u32, c.i as u32, c.t as u32, 0])
                .collect();
            // The device's coefficients are those of the scaled design;
            // the host turns them into the data's units (`unit`).
            unit = w.units();
            n_coef = w.coefficients.len();
            order = w.order.clone();
            let scales = vec![1.0; n_coef];
            se_unit = unit[2 * m];
            let fixed = studentize.then(|| {
                if let Some((psi_hat, cov)) = Covariance::new(design, &w, fit, &unit, layout) {
                    let buffers = [
                        ctx.reals("full-sample influences", &psi_hat, precision),
                        ctx.reals("meat basis", &cov.inverse, precision),
                    ];
                    covariance = Some(cov);
                    return StudentInputs::Covariance(buffers);
                }
                let (buffers, hat2) = studentized_inputs(ctx, &w, fit, &unit, &targets, precision);
                se_hat2 = hat2;
                StudentInputs::Targets(buffers)
            });
            let mut theta = w.theta.clone();
            let kind = if instrumented {
                let iv = crate::resample::whiten_iv::WhitenedTwoStage::new(design, fit, &w)?;
                theta = iv.theta.clone();
                two_stage_inputs(ctx, &iv, precision)
            } else {
                SolveKind::LeastSquares([
                    ctx.storage("coefficients", bytemuck::cast_slice(&coefs)),
                    ctx.reals("scales", &scales, precision),
                    ctx.reals("factor", &w.factor, precision),
                    ctx.reals("inverse", &w.inverse, precision),
                ])
            };
            let generated = match &kind {
                SolveKind::LeastSquares(_)
                    if fixed.is_none() && w.sets == 1 && ctx.generates_solves() =>
                {
                    Some(ctx.generated_solve(&SolveShape::new(q, &coefs), precision)?)
                }
                _ => None,
            };
            let solve = SolveInputs {
                kind,
                q: w.q,
                systems: w.sets,
                fixed,
                generated,
            };
            let front = match panel {
                Some(panel) => {
                    let exchange = Exchange::new(design, panel)?;
                    // Refused before the host builds a table it cannot bind.
                    let shape = TableShape::of(design, panel, &w);
                    super::permute::check_table_size(ctx, shape.reals(&exchange), precision)?;
                    let table = PermutationTable::new(design, panel, &exchange, &w, shape);
                    Front::Permute(PermuteInputs::new(ctx, &table, plan.seed, precision))
                }
                None => {
                    let inputs =
                        GemmInputs::new(ctx, &plan, &w.stats, w.stats.len() / g, precision, true)?;
                    // The studentized meat and the cell sums weight
                    // clusters by the codes.
                    Front::Weights(match studentize || design.cells.is_some() {
                        true => inputs.keeping_codes(),
                        false => inputs,
                    })
                }
            };
            let cells = match (&design.cells, &front) {
                (Some(c), Front::Weights(inputs)) => {
                    Some(CellInputs::new(ctx, c, &w, inputs, precision))
                }
                _ => None,
            };
            (front, w.stats.len() / g, theta, Some(solve), cells)
        };
        let stride = n_coef
            + match (&covariance, studentize) {
                (Some(c), _) => packed_len(c.d),
                (None, true) => targets.len(),
                (None, false) => 0,
            };
        let functionals = functionals(covariance.as_ref(), studentize, m);
        let limit = batch_limit(
            ctx,
            &front,
            &plan,
            solve.as_ref(),
            BatchShape {
                g,
                n,
                stride,
                functionals,
                cell_width: cells.as_ref().map_or(0, CellInputs::width),
                precision,
            },
        )?;
        let batch = match options.max_batch {
            0 => limit,
            b => b.min(limit).max(1),
        };
        let engine = GpuEngine {
            ctx,
            options,
            layout,
            plan,
            n_coef,
            order,
            stride,
            se_hat2,
            covariance,
            theta,
            unit,
            se_unit,
            front,
            cells,
            solve,
            limit,
            state: Mutex::new(State {
                batch,
                slots: Vec::new(),
                batches: 0,
                fell_back: None,
            }),
            extension: Extension::of(design),
            design: model,
            fit: model_fit,
            panel,
            cluster_map,
            rho: Vec::new(),
            kappa_hat: f64::NAN,
            kappa_at: 0,
            rv_at: 0,
            rv_paths: Vec::new(),
            cpu: OnceLock::new(),
        };
        Ok(engine)
    }

    /// Replicates per batch now (after any retries).
    pub fn batch(&self) -> usize {
        self.state.lock().map(|s| s.batch).unwrap_or(0)
    }

    /// Largest batch the adapter's limits allow for this problem.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Two slots of `capacity` replicates.
    fn slots(&self, capacity: usize) -> Result<Vec<Slot>> {
        let ctx = self.ctx;
        let ws = (words_per(self.options.precision) * 4) as u64;
        let cap = capacity as u64;
        let out_bytes = match self.options.fault {
            Some(Fault::FailAbove(n)) if capacity > n => {
                Some(ctx.limits.max_buffer_size.saturating_add(4))
            }
            _ => None,
        };
        (0..2)
            .map(|_| {
                let front = match &self.front {
                    Front::Weights(g) => FrontSlot::Weights(g.slot(ctx, capacity, out_bytes)?),
                    Front::Permute(p) => FrontSlot::Permute(p.slot(
                        ctx,
                        capacity,
                        self.options.precision,
                        out_bytes,
                    )?),
                };
                let cells = match (&self.cells, &front, &self.front) {
                    (Some(c), FrontSlot::Weights(gemm), Front::Weights(inputs)) => {
                        Some(c.slot(ctx, capacity, inputs, gemm)?)
                    }
                    _ => None,
                };
                let mut student = None;
                let (solve_params, solve, result) = match &self.solve {
                    Some(s) => {
                        let params = ctx.uniform("solve params", &self.solve_params(s, 0));
                        let deltas = ctx.output("deltas", cap * self.stride as u64 * ws);
                        // Per replicate: its functionals, each a row over
                        // every system's packed T_g.
                        let d = self.functionals() as u64;
                        let p = (s.systems * packed_len(s.q)) as u64;
                        let functionals = ctx.output("functionals", cap * d * p * ws);
                        let pipeline = s.pipeline(ctx, self.options.precision)?;
                        let [c0, c1, c2, c3] = s.constants();
                        let bind = ctx.bind_solve(
                            pipeline,
                            s.generated.is_some(),
                            [&params, front.out(), c0, c1, c2, c3, &deltas],
                            cap * s.scratch() * ws,
                            &functionals,
                        );
                        if let (Some(fixed), FrontSlot::Weights(gemm), Front::Weights(inputs)) =
                            (&s.fixed, &front, &self.front)
                        {
                            let g = self.plan.n_clusters as u64;
                            let psi = ctx.output("influences", g * cap * d * ws);
                            let nt_params = ctx.uniform(
                                "influence gemm params",
                                bytemuck::bytes_of(&self.gemm_nt_params(0)),
                            );
                            let nt = ctx.stage(&ctx.gemm_nt, self.options.precision)?;
                            let nt_bind =
                                ctx.bind(nt, &[&nt_params, &inputs.stats, &functionals, &psi]);
                            let meat_params = ctx.uniform("meat params", &self.meat_params(0));
                            let meat = self.meat_stage()?;
                            let mut buffers = vec![
                                &meat_params,
                                &gemm.codes,
                                &psi,
                                &inputs.decode_table,
                                &deltas,
                                &gemm.sums,
                                &inputs.strata,
                            ];
                            match fixed {
                                StudentInputs::Targets(four) => buffers.extend(four),
                                StudentInputs::Covariance(two) => buffers.extend(two),
                            }
                            let meat_bind = ctx.bind(meat, &buffers);
                            student = Some([(nt_params, nt_bind), (meat_params, meat_bind)]);
                        }
                        (Some(params), Some(bind), deltas)
                    }
                    None => (None, None, front.out().clone()),
                };
                let staging = ctx.staging(cap * self.stride as u64 * ws);
                Ok(Slot {
                    capacity,
                    front,
                    cells,
                    solve_params,
                    solve,
                    student,
                    result,
                    staging,
                })
            })
            .collect()
    }

    fn solve_params(&self, s: &SolveInputs, nb: u32) -> Vec<u8> {
        s.params(
            nb,
            self.n_coef,
            self.stride,
            self.n_func(),
            [self.kappa_at, self.rv_at],
        )
    }

    /// SE targets whose change the meat stage writes after the coefficients.
    fn n_targets(&self) -> usize {
        if self.layout.studentized {
            self.layout.se_targets().len()
        } else {
            0
        }
    }

    /// The engine whose replicates also give kappa and ACME at each of
    /// `rho` (`crate::model::sensitivity`): the solve writes the ratio of the
    /// whitened factor's outcome and mediator diagonals, less one, after
    /// the other reals of the replicate; the full-sample kappa times one
    /// plus it is the replicate's (the factor of the Gram is the full
    /// sample's factor times the whitened one). Least-squares reweighting
    /// schemes only.
    pub fn with_sensitivity(mut self, rho: &[f64]) -> Result<Self> {
        check_rules(
            self.plan.scheme,
            Asks {
                sensitivity: true,
                ..Asks::default()
            },
        )?;
        crate::model::sensitivity::check(self.design)?;
        let least_squares = matches!(
            self.solve.as_ref().map(|s| &s.kind),
            Some(SolveKind::LeastSquares(_))
        );
        assert!(
            least_squares,
            "the rules leave least-squares reweighting only"
        );
        let mut solver = Solver::new(self.design).with_sensitivity(rho);
        let mut stats = vec![0.0; solver.layout.len()];
        if !solver.solve(&self.design.total_packed(), &mut stats) {
            return Err(Error::Numerical("the full-sample model is singular".into()));
        }
        self.kappa_hat = stats[solver.layout.kappa()];
        // The sensitivity ratio is solve.wgsl's.
        if let Some(solve) = self.solve.as_mut() {
            solve.generated = None;
        }
        self.rho = rho.to_vec();
        self.layout.sensitivity = rho.len();
        self.kappa_at = self.stride;
        self.grow_stride(1);
        Ok(self)
    }

    /// `extra` more reals per replicate read back: the batch stays within
    /// the binding.
    fn grow_stride(&mut self, extra: usize) {
        self.stride += extra;
        let ws = (words_per(self.options.precision) * 4) as u64;
        let by_binding = (self.ctx.binding_limit() / (self.stride as u64 * ws)) as usize;
        self.limit = self.limit.min(by_binding);
        if let Ok(state) = self.state.get_mut() {
            state.batch = state.batch.min(self.limit);
        }
    }

    /// The engine whose replicates also give the robustness value of each
    /// path of the omitted-variable bounds (as the CPU engine's
    /// `with_robustness`): the solve writes each path's `[A^{-1}]_jj` and
    /// its equation's residual sum of squares (`solve.wgsl`), and the host
    /// forms RV in f64 from them and the replicate's coefficient.
    /// Least-squares reweighting designs of one system only.
    pub fn with_robustness(mut self) -> Result<Self> {
        let least_squares = matches!(
            self.solve.as_ref().map(|s| &s.kind),
            Some(SolveKind::LeastSquares(_))
        );
        if !least_squares || self.cluster_map.is_some() {
            return Err(Error::InvalidOption {
                option: "resampling.backend".into(),
                message: "the GPU engine gives the robustness values' replicates \
                          (sensitivity.rv_replicates) for least-squares models only; with an \
                          instrumented mediator set resampling.backend to cpu"
                    .into(),
            });
        }
        let w = Whitened::new(self.design, self.fit)?;
        if w.sets != 1 {
            return Err(Error::Numerical(
                "the robustness values' replicates need one whitened system".into(),
            ));
        }
        let keys = reported_coefficients(self.design);
        let mut coefs: Vec<[u32; 4]> = w
            .coefficients
            .iter()
            .map(|c| [c.k as u32, c.i as u32, c.t as u32, 0])
            .collect();
        let mut paths = Vec::new();
        for (n, key) in crate::model::confounding::replicate_keys(self.design, self.fit)
            .into_iter()
            .enumerate()
        {
            let th = keys.iter().position(|&k| k == key);
            let o = th.and_then(|th| self.order.iter().position(|&x| x == Some(th)));
            let (Some(th), Some(o)) = (th, o) else {
                return Err(Error::Numerical(format!(
                    "the robustness value of path {n} has no coefficient on the device"
                )));
            };
            coefs[o][3] = n as u32 + 1;
            paths.push(th);
        }
        if let Some(solve) = self.solve.as_mut() {
            // The terms are solve.wgsl's.
            solve.generated = None;
            if let SolveKind::LeastSquares(buffers) = &mut solve.kind {
                buffers[0] = self
                    .ctx
                    .storage("coefficients", bytemuck::cast_slice(&coefs));
            }
        }
        self.layout.robustness = paths.len();
        self.rv_at = self.stride;
        self.grow_stride(2 * paths.len());
        self.rv_paths = paths;
        Ok(self)
    }

    /// Coefficients with influences per replicate (`functionals`).
    fn functionals(&self) -> usize {
        functionals(
            self.covariance.as_ref(),
            self.layout.studentized,
            self.layout.mediators,
        )
    }

    /// Coefficients of each system whose influence functionals the solve
    /// writes.
    fn n_func(&self) -> usize {
        self.functionals() / self.solve.as_ref().map_or(1, |s| s.systems)
    }

    fn gemm_nt_params(&self, nb: u32) -> GemmNtParams {
        GemmNtParams {
            rows: self.plan.n_clusters as u32,
            cols: nb * self.functionals() as u32,
            k: self
                .solve
                .as_ref()
                .map_or(0, |s| s.systems * packed_len(s.q)) as u32,
            pad: 0,
        }
    }

    /// The meat stage's pipeline: `meat.wgsl`, or `meat_cov.wgsl` for a
    /// `Covariance`.
    fn meat_stage(&self) -> Result<&wgpu::ComputePipeline> {
        let stage = match self.covariance {
            Some(_) => &self.ctx.meat_cov,
            None => &self.ctx.meat,
        };
        self.ctx.stage(stage, self.options.precision)
    }

    /// The meat stage's uniform parameters for `nb` replicates.
    fn meat_params(&self, nb: u32) -> Vec<u8> {
        let (decode_mode, n_strata) = match &self.front {
            Front::Weights(g) => g.decode_mode(),
            Front::Permute(_) => (0, 0),
        };
        let (g, stride) = (self.plan.n_clusters as u32, self.stride as u32);
        match &self.covariance {
            Some(c) => bytemuck::bytes_of(&MeatCovParams {
                nb,
                g,
                d: c.d as u32,
                stride,
                decode_mode,
                n_strata,
                n_coef: self.n_coef as u32,
                pad: 0,
            })
            .to_vec(),
            None => bytemuck::bytes_of(&MeatParams {
                nb,
                g,
                m: self.layout.mediators as u32,
                stride,
                decode_mode,
                n_strata,
                n_targets: self.n_targets() as u32,
                pad: 0,
            })
            .to_vec(),
        }
    }

    /// Record and submit replicates `start .. start + count` in `slot`.
    fn submit(&self, slot: &Slot, start: u64, count: usize) -> Result<Pending> {
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        for stage in self.stages() {
            self.record_stage(stage, &mut encoder, slot, start, count as u32)?;
        }
        let bytes = (count * self.stride * words_per(self.options.precision) * 4) as u64;
        Ok(self
            .ctx
            .submit_with_readback(encoder, &slot.result, &slot.staging, bytes))
    }

    /// Which GEMM kernel the batch runs: "wide", "narrow" (workgroup
    /// memory, `gemm.wgsl`) or "subgroup" (`gemm_sg.wgsl`); None for a
    /// permutation, which has no GEMM.
    pub fn gemm_kernel(&self) -> Option<&'static str> {
        match &self.front {
            Front::Weights(g) => Some(g.shape().name()),
            Front::Permute(_) => None,
        }
    }

    /// Which solve the batch runs: "generated" (`super::solve_gen`),
    /// "solve.wgsl" or "solve_iv.wgsl"; None for wild, which has none.
    pub fn solve_kernel(&self) -> Option<&'static str> {
        self.solve.as_ref().map(|s| match s.kind {
            _ if s.generated.is_some() => "generated",
            SolveKind::LeastSquares(_) => "solve.wgsl",
            SolveKind::TwoStage { .. } => "solve_iv.wgsl",
        })
    }

    /// The compute stages of a batch, in order (the readback follows).
    pub fn stages(&self) -> Vec<Stage> {
        let mut stages = match &self.front {
            Front::Weights(g) if g.draws() => vec![Stage::Gemm],
            Front::Weights(_) => vec![Stage::Weights, Stage::Gemm],
            Front::Permute(_) => vec![Stage::Permute],
        };
        if let Some(cells) = &self.cells {
            stages.extend(cells.stages());
        }
        if self.solve.is_some() {
            stages.push(Stage::Solve);
        }
        if self.solve.as_ref().is_some_and(|s| s.fixed.is_some())
            && matches!(self.front, Front::Weights(_))
        {
            stages.extend([Stage::InfluenceGemm, Stage::Meat]);
        }
        stages
    }

    /// Record `stage` of replicates `start .. start + nb` in `slot`.
    fn record_stage(
        &self,
        stage: Stage,
        encoder: &mut wgpu::CommandEncoder,
        slot: &Slot,
        start: u64,
        nb: u32,
    ) -> Result<()> {
        let ctx = self.ctx;
        let precision = self.options.precision;
        match (stage, &self.front, &slot.front) {
            (Stage::Weights, Front::Weights(g), FrontSlot::Weights(s)) => {
                g.record_weights(ctx, encoder, s, start, nb)
            }
            (Stage::Gemm, Front::Weights(g), FrontSlot::Weights(s)) => {
                g.record_gemm(ctx, encoder, s, start, nb)
            }
            (Stage::Permute, Front::Permute(p), FrontSlot::Permute(s)) => {
                p.record(ctx, encoder, s, start, nb, precision)?
            }
            (Stage::CellSums | Stage::CellFactor | Stage::CellPartial, ..) => {
                if let (Some(cells), Some(s)) = (&self.cells, &slot.cells) {
                    cells.record(ctx, stage, encoder, s, nb)?;
                }
            }
            (Stage::Solve, ..) => {
                if let (Some(params), Some(bind), Some(s)) =
                    (&slot.solve_params, &slot.solve, &self.solve)
                {
                    ctx.queue.write_buffer(params, 0, &self.solve_params(s, nb));
                    let pipeline = s.pipeline(ctx, precision)?;
                    GpuContext::dispatch(encoder, pipeline, bind, s.workgroups(nb));
                }
            }
            (Stage::InfluenceGemm, ..) => {
                if let Some([(params, bind), _]) = &slot.student {
                    let nt = self.gemm_nt_params(nb);
                    ctx.queue.write_buffer(params, 0, bytemuck::bytes_of(&nt));
                    let pipeline = ctx.stage(&ctx.gemm_nt, precision)?;
                    GpuContext::dispatch(
                        encoder,
                        pipeline,
                        bind,
                        (
                            nt.cols.div_ceil(super::NT_BLOCK.1),
                            nt.rows.div_ceil(super::NT_BLOCK.0),
                        ),
                    );
                }
            }
            (Stage::Meat, ..) => {
                if let Some([_, (params, bind)]) = &slot.student {
                    ctx.queue.write_buffer(params, 0, &self.meat_params(nb));
                    let pipeline = self.meat_stage()?;
                    GpuContext::dispatch(encoder, pipeline, bind, (nb.div_ceil(64), 1));
                }
            }
            _ => unreachable!("a stage is recorded only on the engine that has it"),
        }
        Ok(())
    }

    /// The dimensions of this engine's batches, for the work model.
    pub fn dims(&self) -> Dims {
        let (width, q, scratch) = match (&self.front, &self.solve) {
            (Front::Weights(g), s) => (
                g.width(),
                s.as_ref().map_or(0, |s| s.q),
                s.as_ref().map_or(0, |s| s.scratch() as usize),
            ),
            (Front::Permute(p), s) => (
                p.systems * packed_len(p.q),
                p.q,
                s.as_ref().map_or(0, |s| s.scratch() as usize),
            ),
        };
        Dims {
            clusters: self.plan.n_clusters,
            weights_drawn: matches!(&self.front, Front::Weights(g) if g.draws()),
            // A permutation has no GEMM stage; its block is never used.
            gemm_block: match &self.front {
                Front::Weights(g) => g.shape().block(),
                Front::Permute(_) => (1, 1),
            },
            width,
            q,
            systems: self.solve.as_ref().map_or(1, |s| s.systems),
            mediators: self.layout.mediators,
            stride: self.stride,
            real_bytes: words_per(self.options.precision) * 4,
            functionals: self.functionals(),
            covariance: self.covariance.is_some(),
            scratch,
            cells: self
                .cells
                .as_ref()
                .map_or(Default::default(), CellInputs::dims),
        }
    }

    /// Seconds each stage of one batch of `count` replicates takes on the
    /// device, each stage submitted alone and waited for (the median of
    /// `repeats`), then the readback and the host's finishing of the batch
    /// (f64 statistics from the read-back changes).
    pub fn stage_times(&self, count: usize, repeats: usize) -> Result<StageTimes> {
        let count = count.clamp(1, self.limit);
        let slots = self.slots(count)?;
        let slot = &slots[0];
        let nb = count as u32;
        let median = |mut times: Vec<f64>| {
            times.sort_by(f64::total_cmp);
            times[times.len() / 2]
        };
        // One run first (pipelines and buffers are touched once), then
        // `repeats` timed ones.
        let runs = |run: &mut dyn FnMut() -> Result<(f64, f64)>| -> Result<Vec<(f64, f64)>> {
            let mut times = (0..=repeats.max(1))
                .map(|_| run())
                .collect::<Result<Vec<_>>>()?;
            times.remove(0);
            Ok(times)
        };
        let mut stages = Vec::new();
        for stage in self.stages() {
            let times = runs(&mut || {
                let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
                self.record_stage(stage, &mut encoder, slot, 0, nb)?;
                let started = Instant::now();
                self.ctx.submit_and_wait(encoder)?;
                Ok((started.elapsed().as_secs_f64(), 0.0))
            })?;
            stages.push((stage, median(times.iter().map(|t| t.0).collect())));
        }
        let bytes = (count * self.stride * words_per(self.options.precision) * 4) as u64;
        let mut out = vec![0.0; count * self.layout.len()];
        // The readback, then the host's finishing of what it read.
        let times = runs(&mut || {
            let encoder = self.ctx.device.create_command_encoder(&Default::default());
            let started = Instant::now();
            let pending =
                self.ctx
                    .submit_with_readback(encoder, &slot.result, &slot.staging, bytes);
            self.ctx.read(pending, &slot.staging, |b| {
                let copied = started.elapsed().as_secs_f64();
                let t = Instant::now();
                self.finish(b, &mut out);
                (copied, t.elapsed().as_secs_f64())
            })
        })?;
        let readback = times.iter().map(|t| t.0).collect();
        let finish: Vec<f64> = times.iter().map(|t| t.1).collect();
        stages.push((Stage::Readback, median(readback)));
        Ok(StageTimes {
            count,
            stages,
            finish: median(finish),
            stats: out,
        })
    }

    /// theta_hat + the read-back changes, as statistics; returns the number
    /// of degenerate replicates.
    fn finish(&self, bytes: &[u8], out: &mut [f64]) -> u64 {
        let words: &[u32] = bytemuck::cast_slice(bytes);
        let deltas = reals_from_words(words, self.options.precision);
        let n_stats = self.layout.len();
        let mut failed = 0;
        let l = self.layout;
        let mut changes = vec![0.0; self.theta.len()];
        // Its scratch is per batch.
        let mut extension = self.extension.clone();
        let mut grads = Vec::new();
        for (d, stats) in deltas.chunks(self.stride).zip(out.chunks_mut(n_stats)) {
            to_theta(&self.order, d, &mut changes);
            for (c, s) in changes.iter_mut().zip(&self.unit) {
                *c *= s;
            }
            if !stats_from_changes(&self.theta, &mut changes, l, stats) {
                failed += 1;
                continue;
            }
            extension.fill(&changes, l, stats);
            if let Some(c) = &self.covariance {
                c.fill(&changes, &d[self.n_coef..], &mut grads, stats);
            } else if l.studentized {
                // The device's change of each squared SE, added in f64.
                for (t, (change, hat)) in d[self.n_coef..].iter().zip(&self.se_hat2).enumerate() {
                    stats[l.se_target(t)] = (hat + change).max(0.0).sqrt() * self.se_unit;
                }
            }
            if l.sensitivity > 0 {
                stats[l.kappa()] = self.kappa_hat * (1.0 + d[self.kappa_at]);
                crate::model::replicate::fill_acme(l, &self.rho, stats);
            }
            // RV's Cohen's f is |coefficient| / sqrt(RSS [A^{-1}]_jj), all
            // in the scaled design's units (`changes` now holds the
            // replicate's coefficients in the data's).
            for (k, &th) in self.rv_paths.iter().enumerate() {
                let (a_jj, rss) = (d[self.rv_at + 2 * k], d[self.rv_at + 2 * k + 1]);
                let coefficient = changes[th] / self.unit[th];
                let f = (coefficient / (rss * a_jj).sqrt()).abs();
                stats[l.rv(k)] = crate::model::confounding::robustness_value(f, 0.0);
            }
        }
        failed
    }

    /// Run replicates `start ..` into `out` on the device, two batches in
    /// flight. On a device error, says how many leading replicates are done.
    fn run_on_device(
        &self,
        state: &mut State,
        start: u64,
        out: &mut [f64],
    ) -> std::result::Result<u64, (usize, u64, Error)> {
        let n_stats = self.layout.len();
        let total = out.len() / n_stats;
        // Slots no larger than the call needs (a short run allocates a short
        // batch), nor than the batch after a retry halved it.
        let want = state.batch.min(total).max(1);
        if state
            .slots
            .first()
            .is_none_or(|s| s.capacity < want || s.capacity > state.batch)
        {
            state.slots = self.slots(want).map_err(|e| (0, 0, e))?;
        }
        let batch = state.slots[0].capacity;
        let mut failed = 0;
        let mut pending: Option<(usize, usize, usize, Pending)> = None;
        let mut next = 0usize;
        let mut i = 0usize;
        loop {
            let submitted = if next < total {
                let count = batch.min(total - next);
                let slot = i % 2;
                let p = self
                    .submit(&state.slots[slot], start + next as u64, count)
                    .map_err(|e| (pending.as_ref().map_or(next, |p| p.1), failed, e))?;
                let here = (slot, next, count, p);
                next += count;
                i += 1;
                Some(here)
            } else {
                None
            };
            if let Some((slot, offset, count, p)) = pending.take() {
                let rows = &mut out[offset * n_stats..(offset + count) * n_stats];
                match self
                    .ctx
                    .read(p, &state.slots[slot].staging, |b| self.finish(b, rows))
                {
                    Ok(f) => failed += f,
                    Err(e) => {
                        // Let the batch still in flight settle before the
                        // caller reuses or drops the buffers.
                        let _ = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
                        let _ = self.ctx.check();
                        return Err((offset, failed, e));
                    }
                }
                state.batches += 1;
                if let Some(Fault::LoseDeviceAfter(n)) = self.options.fault
                    && state.batches == n
                {
                    self.ctx.lose_device();
                }
            }
            match submitted {
                Some(s) => pending = Some(s),
                None => break,
            }
        }
        Ok(failed)
    }

    /// The CPU engine that takes over after a device failure.
    fn cpu(&self) -> Result<&(dyn Engine + Send + 'a)> {
        self.cpu
            .get_or_init(|| {
                let request = CpuRequest {
                    design: self.design,
                    fit: self.fit,
                    panel: self.panel,
                    batch: self.options.cpu_batch,
                    threads: self.options.cpu_threads,
                    studentize: self.options.studentize,
                    robustness_values: self.layout.robustness > 0,
                    rho: self.rho.clone(),
                    cluster_map: self.cluster_map.clone(),
                };
                cpu_engine(request, self.plan.clone())
            })
            .as_ref()
            .map(|e| e.as_ref())
            .map_err(|e| Error::Gpu(format!("the CPU fallback could not start: {e}")))
    }
}

impl Engine for GpuEngine<'_> {
    fn backend(&self) -> Backend {
        let fallback = self.state.lock().ok().and_then(|s| s.fell_back.clone());
        Backend {
            backend: "gpu".into(),
            adapter: Some(self.ctx.info.name.clone()),
            precision: Some(self.options.precision.as_str().into()),
            fallback,
        }
    }

    fn layout(&self) -> StatLayout {
        self.layout
    }

    fn chunk(&self) -> usize {
        (4 * self.batch()).max(1 << 16)
    }

    fn compute(&self, start: u64, out: &mut [f64]) -> Result<u64> {
        let n_stats = self.layout.len();
        let mut state = self
            .state
            .lock()
            .map_err(|_| Error::Gpu("the GPU engine's state was poisoned".into()))?;
        let mut done = 0usize;
        let mut failed = 0;
        let total = out.len() / n_stats;
        // Another engine on the same context may have lost the device
        // since this one was built: nothing can be allocated on it.
        if self.ctx.is_lost() && state.fell_back.is_none() {
            let note = format!(
                "the device was lost before replicate {start}; the CPU engine computed the rest"
            );
            crate::notices::notify(format!("warning: {note}"));
            state.slots.clear();
            state.fell_back = Some(note);
        }
        while done < total && state.fell_back.is_none() {
            match self.run_on_device(&mut state, start + done as u64, &mut out[done * n_stats..]) {
                Ok(f) => {
                    failed += f;
                    done = total;
                }
                Err((finished, f, e)) => {
                    done += finished;
                    failed += f;
                    state.slots.clear();
                    if state.batch > MIN_BATCH && !self.ctx.is_lost() {
                        state.batch = (state.batch / 2).max(MIN_BATCH);
                        crate::notices::notify(format!(
                            "warning: {} failed a batch ({e}); retrying with {} replicates per batch",
                            self.ctx.info.name, state.batch
                        ));
                    } else {
                        let note = format!(
                            "the device failed from replicate {} on ({e}); the CPU engine computed the rest",
                            start + done as u64
                        );
                        crate::notices::notify(format!("warning: {note}"));
                        state.fell_back = Some(note);
                    }
                }
            }
        }
        if done < total {
            failed += self
                .cpu()?
                .compute(start + done as u64, &mut out[done * n_stats..])?;
        }
        Ok(failed)
    }
}
