//! The threshold model's bootstrap F tests on the GPU, from
//! `resample::threshold::LinearForm`: a replicate's searches need only its
//! products with the grid's columns, one row of a GEMM. The wild
//! bootstrap's GEMM is of the unit multipliers (the CPU's, bit for bit,
//! from the weight stage) with the per-unit blocks; Hansen's residual
//! bootstrap's of each replicate's drawn residuals (`threshold_draw.wgsl`
//! writes them as codes into the residuals, with the CPU's draws) with the
//! observations' rows. `threshold_search.wgsl` then runs each replicate's
//! sequence of searches, one workgroup per replicate.

use super::{
    GemmInputs, GemmSlot, GpuContext, ThresholdDrawParams, ThresholdSearchParams, reals_from_words,
    words_per,
};
use crate::error::{Error, Result};
use crate::math::rng::STREAM_THRESHOLD;
use crate::resample::engine::{Backend, Precision};
use crate::resample::scheme::{Scheme, WeightPlan};
use crate::resample::threshold::{Null, ThresholdEngine, ThresholdScheme};

/// Replicates per batch at most.
const MAX_BATCH: u64 = 1 << 14;

/// Regressors x thresholds the search's solves hold at most (12 x 12).
const MAX_SYSTEM: usize = 12;

/// The residual draws' stage: its parameters and bindings.
struct Draws {
    params: wgpu::Buffer,
    base: ThresholdDrawParams,
    bind: wgpu::BindGroup,
}

/// One test's replicates on the GPU.
pub struct GpuThreshold<'a> {
    ctx: &'a GpuContext,
    precision: Precision,
    inputs: GemmInputs,
    slot: GemmSlot,
    /// The residual bootstrap's draws (None: the wild weights).
    draws: Option<Draws>,
    search: ThresholdSearchParams,
    search_params: wgpu::Buffer,
    search_bind: wgpu::BindGroup,
    out: wgpu::Buffer,
    staging: wgpu::Buffer,
    batch: usize,
}

impl<'a> GpuThreshold<'a> {
    /// The k-th test of `null` on `ctx` in `precision`, in batches of at
    /// most `max_batch` replicates (0: what the adapter allows).
    pub fn new(
        ctx: &'a GpuContext,
        null: &Null,
        precision: Precision,
        max_batch: usize,
    ) -> Result<GpuThreshold<'a>> {
        ctx.precision_index(precision)?;
        let grid = null.grid();
        let (g, m) = (grid.candidates(), grid.regressors());
        if m * null.k() > MAX_SYSTEM {
            return Err(Error::InvalidOption {
                option: "threshold.regressors".into(),
                message: format!(
                    "the GPU engine solves at most {MAX_SYSTEM} regime coefficients per \
                     candidate, and {m} regressor(s) x {} threshold(s) have more; set \
                     resampling.backend to cpu",
                    null.k()
                ),
            });
        }
        let form = null.linear_form();
        let width = form.width();
        let rows = form.row_scale.len();
        let mut tables = form.r_fitted.clone();
        tables.extend_from_slice(grid.products());
        tables.extend_from_slice(grid.pivot_scales());
        tables.extend_from_slice(&form.row_scale);
        tables.extend([form.ssr_fitted, grid.df()]);
        // In f32, values far from 1 would underflow or overflow in the
        // products; such a test is the CPU's (f64).
        let safe = |v: &f64| *v == 0.0 || (1e-30..=1e30).contains(&v.abs());
        if precision == Precision::F32
            && !(tables.iter().all(safe)
                && form.matrix.iter().all(safe)
                && null.residuals().iter().all(safe))
        {
            return Err(Error::Gpu(
                "the threshold test's values lie beyond 1e-30 .. 1e30, outside what f32 \
                 computes safely; use f64 or the CPU engine"
                    .into(),
            ));
        }
        let inputs = match null.scheme() {
            ThresholdScheme::Wild(dist) => {
                let plan = WeightPlan::new(Scheme::Wild(dist), null.seed(), rows, None);
                // The search decodes the codes for the weights' squares.
                GemmInputs::new(ctx, &plan, &form.matrix, width, precision, false)?.keeping_codes()
            }
            ThresholdScheme::Residual => GemmInputs::reading_table(
                ctx,
                rows,
                null.residuals(),
                &form.matrix,
                width,
                precision,
            )?,
        };
        let ws = (words_per(precision) * 4) as u64;
        let per_replicate = [width as u64 * ws, 2 * ws, rows as u64 * 4];
        let groups = ctx.limits.max_compute_workgroups_per_dimension as u64;
        let limit =
            ctx.batch_limit(&per_replicate, Some(ctx.batch_budget()), groups, MAX_BATCH) as usize;
        let batch = match max_batch {
            0 => limit,
            b => b.min(limit),
        }
        .max(1);
        let slot = inputs.slot(ctx, batch, None)?;
        let draws = match null.scheme() {
            ThresholdScheme::Wild(_) => None,
            ThresholdScheme::Residual => {
                let seed = null.seed();
                let slots = null.slots();
                let base = ThresholdDrawParams {
                    nb: 0,
                    units: slots.len() as u32,
                    periods: slots.first().map_or(0, Vec::len) as u32,
                    tag: STREAM_THRESHOLD,
                    seed: [seed as u32, (seed >> 32) as u32],
                    start: [0, 0],
                };
                let flat: Vec<u32> = slots.iter().flatten().map(|&o| o as u32).collect();
                let params = ctx.uniform("threshold draw params", bytemuck::bytes_of(&base));
                let slots = ctx.storage("threshold slots", bytemuck::cast_slice(&flat));
                let pipeline = ctx.stage(&ctx.threshold_draw, Precision::F32)?;
                let bind = ctx.bind(pipeline, &[&params, &slots, &slot.codes]);
                Some(Draws { params, base, bind })
            }
        };
        let out = ctx.output("threshold F", batch as u64 * 2 * ws);
        let staging = ctx.staging(batch as u64 * 2 * ws);
        let (decode_mode, n_strata) = inputs.decode_mode();
        let search = ThresholdSearchParams {
            nb: 0,
            g: g as u32,
            m: m as u32,
            k: grid.base_columns() as u32,
            stride: width as u32,
            steps: null.k() as u32,
            min_regime: grid.min_regime() as u32,
            n_obs: grid.n_obs() as u32,
            rows: rows as u32,
            decode_mode,
            n_strata,
            pad: 0,
        };
        let search_params = ctx.uniform("threshold search params", bytemuck::bytes_of(&search));
        let tables = ctx.reals("threshold tables", &tables, precision);
        let below: Vec<u32> = grid.below().iter().map(|&b| b as u32).collect();
        let below = ctx.storage("threshold below", bytemuck::cast_slice(&below));
        let pipeline = ctx.stage(&ctx.threshold_search, precision)?;
        let search_bind = ctx.bind(
            pipeline,
            &[
                &search_params,
                &slot.codes,
                &slot.out,
                &inputs.decode_table,
                &out,
                &slot.sums,
                &inputs.strata,
                &tables,
                &below,
            ],
        );
        Ok(GpuThreshold {
            ctx,
            precision,
            inputs,
            slot,
            draws,
            search,
            search_params,
            search_bind,
            out,
            staging,
            batch,
        })
    }

    /// Replicates `start .. start + count` (count at most the batch) into
    /// `out`.
    fn run_batch(&self, start: u64, out: &mut [f64]) -> Result<()> {
        let ctx = self.ctx;
        let count = out.len() as u32;
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        match &self.draws {
            None => self
                .inputs
                .record(ctx, &mut encoder, &self.slot, start, count),
            Some(draws) => {
                let p = ThresholdDrawParams {
                    nb: count,
                    start: [start as u32, (start >> 32) as u32],
                    ..draws.base
                };
                ctx.queue
                    .write_buffer(&draws.params, 0, bytemuck::bytes_of(&p));
                let pipeline = ctx.stage(&ctx.threshold_draw, Precision::F32)?;
                GpuContext::dispatch(&mut encoder, pipeline, &draws.bind, (count.div_ceil(64), 1));
                self.inputs
                    .record_gemm(ctx, &mut encoder, &self.slot, start, count);
            }
        }
        let search = ThresholdSearchParams {
            nb: count,
            ..self.search
        };
        ctx.queue
            .write_buffer(&self.search_params, 0, bytemuck::bytes_of(&search));
        let pipeline = ctx.stage(&ctx.threshold_search, self.precision)?;
        GpuContext::dispatch(&mut encoder, pipeline, &self.search_bind, (count, 1));
        let bytes = count as u64 * 2 * (words_per(self.precision) * 4) as u64;
        let pending = ctx.submit_with_readback(encoder, &self.out, &self.staging, bytes);
        let values = ctx.read(pending, &self.staging, |b| {
            reals_from_words(bytemuck::cast_slice(b), self.precision)
        })?;
        ctx.check()?;
        for (v, pair) in out.iter_mut().zip(values.chunks(2)) {
            *v = if pair[1] == 1.0 { pair[0] } else { f64::NAN };
        }
        Ok(())
    }
}

impl ThresholdEngine for GpuThreshold<'_> {
    fn backend(&self) -> Backend {
        Backend {
            backend: "gpu".into(),
            adapter: Some(self.ctx.info.name.clone()),
            precision: Some(self.precision.as_str().into()),
            fallback: None,
        }
    }

    fn chunk(&self) -> usize {
        self.batch.max(4096)
    }

    fn compute(&self, start: u64, out: &mut [f64]) -> Result<()> {
        for (i, part) in out.chunks_mut(self.batch).enumerate() {
            self.run_batch(start + (i * self.batch) as u64, part)?;
        }
        Ok(())
    }
}
