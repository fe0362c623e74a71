//! The restricted wild cluster bootstrap (WCR) tests on the GPU: the wild
//! weights (the CPU's, bit for bit) times the test's G x (G + 1) matrix in
//! the GEMM stage, then `wcr.wgsl` turns each row into the replicate's t
//! statistic; the host counts |t*| >= |t|. The same p-value as
//! `RestrictedTest::p_value` up to replicates whose |t*| lies within
//! rounding of |t| (none in f64, in practice).

use super::{GemmInputs, GpuContext, WcrParams, reals_from_words, words_per};
use crate::error::{Error, Result};
use crate::resample::engine::Precision;
use crate::resample::scheme::WeightPlan;
use crate::resample::wild::RestrictedTest;

/// Replicates per batch at most.
const MAX_BATCH: usize = 1 << 16;

/// The WCR p-value of `test` over replicates `0..replicates` of `plan`, in
/// batches of at most `max_batch` (0: the default).
pub fn p_value(
    ctx: &GpuContext,
    test: &RestrictedTest,
    plan: &WeightPlan,
    replicates: u64,
    precision: Precision,
    max_batch: usize,
) -> Result<f64> {
    // Values in the data's units: in f32, tiny or huge ones would
    // underflow or overflow in the products; such a test is the CPU's (f64).
    let safe = |v: &f64| *v == 0.0 || (1e-30..=1e30).contains(&v.abs());
    let matrix = test.matrix();
    if precision == Precision::F32
        && !(matrix.iter().all(safe) && test.scores_and_factor().iter().all(safe))
    {
        return Err(Error::Gpu(
            "the test's values lie beyond 1e-30 .. 1e30, outside what f32 computes safely".into(),
        ));
    }
    let g = test.n_clusters();
    // The t statistics' stage reads the codes too.
    let inputs = GemmInputs::new(ctx, plan, &matrix, g + 1, precision, false)?.keeping_codes();
    let ws = (words_per(precision) * 4) as u64;
    let widest = (g as u64 + 1) * ws.max(4);
    let groups = ctx.limits.max_compute_workgroups_per_dimension as u64;
    let limit = ctx.batch_limit(&[widest], None, groups * 16, MAX_BATCH as u64) as usize;
    let batch = match max_batch {
        0 => limit,
        b => b.min(limit),
    }
    .max(1);
    let slot = inputs.slot(ctx, batch, None)?;
    let scores = ctx.reals("wcr scores", &test.scores_and_factor(), precision);
    let t = ctx.output("wcr t", batch as u64 * ws);
    let staging = ctx.staging(batch as u64 * ws);
    let (decode_mode, n_strata) = inputs.decode_mode();
    let params = ctx.uniform(
        "wcr params",
        bytemuck::bytes_of(&WcrParams {
            nb: 0,
            g: g as u32,
            decode_mode,
            n_strata,
        }),
    );
    let pipeline = ctx.stage(&ctx.wcr, precision)?;
    let bind = ctx.bind(
        pipeline,
        &[
            &params,
            &slot.codes,
            &slot.out,
            &inputs.decode_table,
            &t,
            &slot.sums,
            &inputs.strata,
            &scores,
        ],
    );
    let t_obs = test.t_observed();
    let mut hits = 0u64;
    let mut start = 0u64;
    while start < replicates {
        let count = (replicates - start).min(batch as u64) as u32;
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        inputs.record(ctx, &mut encoder, &slot, start, count);
        ctx.queue.write_buffer(
            &params,
            0,
            bytemuck::bytes_of(&WcrParams {
                nb: count,
                g: g as u32,
                decode_mode,
                n_strata,
            }),
        );
        GpuContext::dispatch(&mut encoder, pipeline, &bind, (count.div_ceil(64), 1));
        let bytes = count as u64 * ws;
        let pending = ctx.submit_with_readback(encoder, &t, &staging, bytes);
        hits += ctx.read(pending, &staging, |b| {
            reals_from_words(bytemuck::cast_slice(b), precision)
                .iter()
                .filter(|t| t.abs() >= t_obs)
                .count() as u64
        })?;
        start += count as u64;
    }
    Ok(hits as f64 / replicates as f64)
}
