//! Many datasets' replicates in one pass, for simulation studies: the
//! datasets of a study cell share their shape (clusters, regressors), so
//! their per-cluster statistics stack into one buffer and every stage runs
//! once for a batch of whole datasets. `weights.wgsl` draws set s's
//! replicates with its own seed, `gemm.wgsl` multiplies them by its own
//! statistics (workgroup z), `solve.wgsl` takes its own full-sample factor.
//! Replicate r of a set is the computation [`super::engine::GpuEngine`]
//! does for replicate r of that dataset alone (the weights bit for bit), so
//! a stacked study matches the per-dataset engines, and the CPU engine
//! within the GPU tolerance.
//!
//! Reweighting schemes (pairs, Bayes, Poisson) and wild, least-squares
//! designs, no studentized or sensitivity statistics: what a study's
//! bootstrap needs. Anything else is refused with an error, and the caller
//! runs its datasets one engine each.

use super::engine::{WildRhs, solve_scratch};
use super::solve_gen::SolveShape;
use super::{GemmInputs, GpuContext, SolveParams, reals_from_words, words_per};
use crate::error::{Error, Result};
use crate::math::linalg::packed_len;
use crate::model::design::Design;
use crate::model::estimate::SystemFit;
use crate::model::replicate::{StatLayout, stats_from_changes};
use crate::resample::engine::Precision;
use crate::resample::scheme::{Scheme, WeightPlan};
use crate::resample::whiten::Whitened;

/// One dataset of a stack: its design, full-sample fit and bootstrap seed.
#[derive(Clone, Copy)]
pub struct Set<'a> {
    pub design: &'a Design,
    pub fit: &'a SystemFit,
    pub seed: u64,
}

/// What one set contributes: its G x n matrix, its full sample's
/// coefficients, what each read-back change is multiplied by on the host
/// (as in the single engine: the device works in units where coefficients
/// are of order one), and (reweighting) its scales (ones), L and L^{-1}.
struct Prepared {
    stats: Vec<f64>,
    theta: Vec<f64>,
    unit: Vec<f64>,
    solve: Option<[Vec<f64>; 3]>,
}

/// The statistics of replicates `0 .. replicates` of every set under
/// `scheme` (row-major, `layout(sets[0]).len()` values per replicate; a
/// degenerate replicate is all NaN), computed in stacked batches on `ctx`
/// of as many sets as the adapter's limits allow, at most `max_sets` (0: no
/// further bound). `progress(sets_done)` hears each batch.
pub fn replicates(
    ctx: &GpuContext,
    sets: &[Set],
    scheme: Scheme,
    replicates: usize,
    precision: Precision,
    max_sets: usize,
    progress: &dyn Fn(usize),
) -> Result<Vec<Vec<f64>>> {
    let Some(first) = sets.first() else {
        return Ok(Vec::new());
    };
    let refuse = |why: &str| Err(Error::Gpu(format!("cannot stack these datasets: {why}")));
    let wild = match scheme {
        Scheme::Pairs | Scheme::Bayes | Scheme::Poisson => false,
        Scheme::Wild(_) => true,
        _ => return refuse("only the pairs, bayes, poisson and wild schemes stack"),
    };
    if replicates == 0 {
        return refuse("no replicates");
    }
    let design = first.design;
    if design.layout.instrumented() {
        return refuse("instrumented designs do not stack");
    }
    if sets.iter().any(|s| s.design.cells.is_some()) {
        return refuse("unit+GROUP^time effects do not stack");
    }
    let (g, q, m) = (design.n_clusters, design.q(), design.layout.n_mediators);
    if sets
        .iter()
        .any(|s| s.design.n_clusters != g || s.design.q() != q || s.design.layout != design.layout)
    {
        return refuse("the datasets differ in clusters or regressors");
    }
    ctx.precision_index(precision)?;
    let n_coef = 2 * m + 2;
    let layout = StatLayout::plain(m);
    // Each coefficient's place in the whitened system (the same in every set).
    let structure = |w: &Whitened| -> Vec<[u32; 4]> {
        w.coefficients
            .iter()
            .map(|c| [c.k as u32, c.i as u32, c.t as u32, 0])
            .collect()
    };
    let mut coefs: Option<Vec<[u32; 4]>> = None;
    let mut prepared = Vec::with_capacity(sets.len());
    for s in sets {
        prepared.push(if wild {
            let rhs = WildRhs::new(s.design, s.fit);
            Prepared {
                stats: rhs.influence,
                theta: rhs.theta,
                unit: rhs.unit,
                solve: None,
            }
        } else {
            let w = Whitened::new(s.design, s.fit)?;
            if w.sets > 1 {
                return refuse("a moderated model's equations are systems of their own");
            }
            let here = structure(&w);
            match &coefs {
                Some(c) if *c != here => return refuse("the datasets' coefficients differ"),
                Some(_) => {}
                None => coefs = Some(here),
            }
            Prepared {
                unit: w.coefficients.iter().map(|c| c.scale).collect(),
                solve: Some([vec![1.0; n_coef], w.factor, w.inverse]),
                stats: w.stats,
                theta: w.theta,
            }
        });
    }
    // Reals per replicate out of the front (the GEMM) and, reweighting,
    // through the solve (its output and scratch).
    let n = if wild { n_coef } else { packed_len(q) };
    let ws = (words_per(precision) * 4) as u64;
    let b = replicates as u64;
    // The generated solve keeps its factor in registers: no scratch.
    let shape = coefs
        .as_ref()
        .filter(|_| ctx.generates_solves())
        .map(|c| SolveShape::new(q, c));
    let scratch = if wild || shape.is_some() {
        0
    } else {
        solve_scratch(q)
    };
    let per_replicate = [
        g as u64 * 4,
        8,
        n as u64 * ws,
        if wild { 0 } else { n_coef as u64 * ws },
        scratch * ws,
    ];
    let per_set = [g as u64 * n as u64 * ws, q as u64 * q as u64 * ws];
    // A set is the unit of a stacked batch: its b replicates' buffers and
    // its own statistics.
    let per_unit: Vec<u64> = per_replicate
        .iter()
        .map(|&x| x * b)
        .chain(per_set)
        .collect();
    let groups = ctx.limits.max_compute_workgroups_per_dimension as u64;
    // One workgroup of the weights and the solve per 64 replicates of the
    // batch, one GEMM row of workgroups per 64 or more replicates of a set
    // (GemmShape::block).
    let by_groups = (groups * 64 / b).min(groups);
    let mut per_batch =
        ctx.batch_limit(&per_unit, Some(ctx.batch_budget()), by_groups, u64::MAX) as usize;
    if max_sets > 0 {
        per_batch = per_batch.min(max_sets);
    }
    if per_batch == 0 || b.div_ceil(64) > groups {
        return refuse(&format!(
            "{replicates} replicates of {g} clusters are more than one batch holds"
        ));
    }
    let solve_pipeline = match &shape {
        Some(shape) => ctx.generated_solve(shape, precision)?,
        None => ctx.stage(&ctx.solve, precision)?.clone(),
    };
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(sets.len());
    for (chunk, ready) in sets.chunks(per_batch).zip(prepared.chunks(per_batch)) {
        let k = chunk.len();
        let count = k * replicates;
        let seeds: Vec<u64> = chunk.iter().map(|s| s.seed).collect();
        let stats: Vec<f64> = ready.iter().flat_map(|p| p.stats.iter().copied()).collect();
        let plan = WeightPlan::new(scheme, first.seed, g, None);
        let inputs =
            GemmInputs::for_sets(ctx, &plan, &seeds, replicates, &stats, n, precision, true)?;
        let slot = inputs.slot(ctx, count, None)?;
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        inputs.record(ctx, &mut encoder, &slot, 0, count as u32);
        let deltas = match (&coefs, wild) {
            (Some(coefs), false) => {
                let joined = |i: usize| -> Vec<f64> {
                    ready
                        .iter()
                        .flat_map(|p| p.solve.as_ref().map_or(&[][..], |s| &s[i][..]).iter())
                        .copied()
                        .collect()
                };
                let params = SolveParams {
                    nb: count as u32,
                    q: q as u32,
                    n_coef: n_coef as u32,
                    stride: n_coef as u32,
                    n_func: 0,
                    kappa_at: 0,
                    per_set: replicates as u32,
                    systems: 1,
                    rv_at: 0,
                    pad: [0; 3],
                };
                let params = ctx.uniform("solve params", bytemuck::bytes_of(&params));
                let deltas = ctx.output("deltas", count as u64 * n_coef as u64 * ws);
                let scales = ctx.reals("scales", &joined(0), precision);
                let factor = ctx.reals("factor", &joined(1), precision);
                let inverse = ctx.reals("inverse", &joined(2), precision);
                let bind = ctx.bind_solve(
                    &solve_pipeline,
                    shape.is_some(),
                    [
                        &params,
                        &slot.out,
                        &ctx.storage("coefficients", bytemuck::cast_slice(coefs)),
                        &scales,
                        &factor,
                        &inverse,
                        &deltas,
                    ],
                    count as u64 * scratch * ws,
                    &ctx.output("functionals", 0),
                );
                GpuContext::dispatch(
                    &mut encoder,
                    &solve_pipeline,
                    &bind,
                    ((count as u32).div_ceil(64), 1),
                );
                deltas
            }
            _ => slot.out.clone(),
        };
        let bytes = count as u64 * n_coef as u64 * ws;
        let staging = ctx.staging(bytes);
        let pending = ctx.submit_with_readback(encoder, &deltas, &staging, bytes);
        let changes = ctx.read(pending, &staging, |bytes| {
            reals_from_words(bytemuck::cast_slice(bytes), precision)
        })?;
        for (p, d) in ready.iter().zip(changes.chunks(replicates * n_coef)) {
            let mut stats = vec![0.0; replicates * layout.len()];
            let mut change = vec![0.0; n_coef];
            for (row, d) in stats.chunks_mut(layout.len()).zip(d.chunks(n_coef)) {
                for ((c, v), u) in change.iter_mut().zip(d).zip(&p.unit) {
                    *c = v * u;
                }
                stats_from_changes(&p.theta, &mut change, layout, row);
            }
            out.push(stats);
        }
        progress(out.len());
    }
    Ok(out)
}
