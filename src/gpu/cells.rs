//! The GPU's stages for `unit+GROUP^time` effects (`crate::model::cells`):
//! between the GEMM and the solve, each replicate's cell sums
//! (`cell_sums.wgsl`), the factors of the unbalanced groups' cell blocks
//! (`cell_factor.wgsl`), and the blocks' Schur complement subtracted from
//! the GEMM's whitened Gram (`cell_partial.wgsl`). The cells' statistics
//! are taken into the GEMM's whitened columns on the host
//! (`Whitened::whiten_row`), so the solve that follows is the one every
//! other design runs.

use super::{GemmInputs, GemmSlot, GpuContext};
use crate::error::Result;
use crate::gpu::roofline::{CellDims, Stage};
use crate::math::linalg::packed_len;
use crate::model::cells::Cells;
use crate::resample::engine::Precision;
use crate::resample::whiten::Whitened;
use bytemuck::{Pod, Zeroable};

/// Uniform parameters of `cell_sums.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct SumsParams {
    nb: u32,
    g: u32,
    width: u32,
    decode_mode: u32,
    n_strata: u32,
    stride: u32,
    pad: [u32; 2],
}
const _: () = assert!(std::mem::size_of::<SumsParams>() == 32);

/// Uniform parameters of `cell_factor.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct FactorParams {
    nb: u32,
    width: u32,
    cols: u32,
    n_general: u32,
    tol: f32,
    pad: [u32; 3],
}
const _: () = assert!(std::mem::size_of::<FactorParams>() == 32);

/// Uniform parameters of `cell_partial.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
struct PartialParams {
    nb: u32,
    width: u32,
    n: u32,
    q: u32,
    cols: u32,
    n_groups: u32,
    stride: u32,
    pad: u32,
}
const _: () = assert!(std::mem::size_of::<PartialParams>() == 32);

/// The cells' fixed inputs on the device.
pub(crate) struct CellInputs {
    entries: wgpu::Buffer,
    entry_cluster: wgpu::Buffer,
    columns: wgpu::Buffer,
    general: wgpu::Buffer,
    groups: wgpu::Buffer,
    /// Sums per replicate.
    width: usize,
    /// Whitened columns per row of R (every system's), and each system's.
    cols: usize,
    q: usize,
    /// The Gram's reals per replicate (systems x packed_len(q)).
    n: usize,
    n_groups: usize,
    n_general: usize,
    g: usize,
    /// How the sums stage decodes the weights (not minus one), and the
    /// strata.
    decode_mode: u32,
    n_strata: u32,
    precision: Precision,
    dims: CellDims,
}

/// One batch slot's cell buffers.
pub(crate) struct CellSlot {
    params: [wgpu::Buffer; 3],
    binds: [Option<wgpu::BindGroup>; 3],
}

/// Workgroups of 64 for `total` invocations indexed flat, y rows of x:
/// (x, y) and the invocations per row.
fn flat(ctx: &GpuContext, total: u64) -> ((u32, u32), u32) {
    let groups = total.div_ceil(64).max(1);
    let x = groups.min(ctx.limits.max_compute_workgroups_per_dimension as u64);
    ((x as u32, groups.div_ceil(x) as u32), (x * 64) as u32)
}

impl CellInputs {
    /// The cells of a design whitened as `w`, for the GEMM `gemm` (whose
    /// weight codes the sums stage decodes).
    pub(crate) fn new(
        ctx: &GpuContext,
        cells: &Cells,
        w: &Whitened,
        gemm: &GemmInputs,
        precision: Precision,
    ) -> CellInputs {
        let cols = w.sets * w.q;
        let cells = cells.mapped(cols, |rho, out| w.whiten_row(rho, out));
        let n_groups = cells.sizes.len();
        let width = cells.width();
        let mut columns: Vec<[u32; 4]> = Vec::with_capacity(width);
        let mut groups: Vec<[u32; 4]> = Vec::with_capacity(n_groups);
        let mut general: Vec<[u32; 2]> = Vec::new();
        let mut dims = CellDims {
            width,
            ..CellDims::default()
        };
        for h in 0..n_groups {
            let (k, offset) = (cells.sizes[h], cells.offsets[h]);
            let row = cells.offsets[h + 1] - offset;
            let (from, to) = (cells.starts[h], cells.starts[h + 1]);
            for j in 0..row {
                columns.push([
                    from as u32,
                    to as u32,
                    (cells.matrix_starts[h] + j) as u32,
                    row as u32,
                ]);
            }
            dims.products += (to - from) * row;
            dims.rows += k;
            groups.push([k as u32, offset as u32, u32::from(cells.uniform[h]), 0]);
            if !cells.uniform[h] {
                general.push([k as u32, offset as u32]);
                let (k, c) = (k as f64, cols as f64);
                dims.factor_flops += k * k * k / 3.0 + k * k * c;
                dims.factor_reals += row;
            }
        }
        let (mode, n_strata) = gemm.decode_mode();
        CellInputs {
            entries: ctx.reals("cell statistics", &cells.matrix, precision),
            entry_cluster: ctx.storage(
                "cell clusters",
                bytemuck::cast_slice(
                    &cells
                        .entry_cluster
                        .iter()
                        .map(|&c| c as u32)
                        .collect::<Vec<_>>(),
                ),
            ),
            columns: ctx.storage("cell columns", bytemuck::cast_slice(&columns)),
            general: ctx.storage("unbalanced groups", bytemuck::cast_slice(&general)),
            groups: ctx.storage("cell groups", bytemuck::cast_slice(&groups)),
            width,
            cols,
            q: w.q,
            n: w.sets * packed_len(w.q),
            n_groups,
            n_general: general.len(),
            g: w.n_clusters,
            // The weights themselves: counts (not minus one), Bayes' own.
            decode_mode: match mode {
                2 => 0,
                4 => 3,
                m => m,
            },
            n_strata,
            precision,
            dims,
        }
    }

    /// The stages, in order (no factorisation where every group is
    /// balanced).
    pub(crate) fn stages(&self) -> Vec<Stage> {
        match self.n_general {
            0 => vec![Stage::CellSums, Stage::CellPartial],
            _ => vec![Stage::CellSums, Stage::CellFactor, Stage::CellPartial],
        }
    }

    /// Reals per replicate of the cell sums (the batch's extra buffer).
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// The dimensions of the cell stages' work (the roofline's).
    pub(crate) fn dims(&self) -> CellDims {
        self.dims
    }

    /// Buffers and bindings for batches of up to `capacity` replicates,
    /// reading `gemm`'s weight codes and correcting its output `gram`.
    pub(crate) fn slot(
        &self,
        ctx: &GpuContext,
        capacity: usize,
        inputs: &GemmInputs,
        gemm: &GemmSlot,
    ) -> Result<CellSlot> {
        let ws = (super::words_per(self.precision) * 4) as u64;
        let sums = ctx.output("cell sums", capacity as u64 * self.width as u64 * ws);
        let params = [
            ctx.uniform("cell sums params", &[0; 32]),
            ctx.uniform("cell factor params", &[0; 32]),
            ctx.uniform("cell partial params", &[0; 32]),
        ];
        let sums_stage = ctx.stage(&ctx.cell_sums, self.precision)?;
        let partial_stage = ctx.stage(&ctx.cell_partial, self.precision)?;
        let factor = match self.n_general {
            0 => None,
            _ => {
                let stage = ctx.stage(&ctx.cell_factor, self.precision)?;
                Some(ctx.bind(stage, &[&params[1], &sums, &self.general]))
            }
        };
        let binds = [
            Some(ctx.bind(
                sums_stage,
                &[
                    &params[0],
                    &gemm.codes,
                    &self.entries,
                    &inputs.decode_table,
                    &sums,
                    &gemm.sums,
                    &inputs.strata,
                    &self.columns,
                    &self.entry_cluster,
                ],
            )),
            factor,
            Some(ctx.bind(partial_stage, &[&params[2], &sums, &self.groups, &gemm.out])),
        ];
        Ok(CellSlot { params, binds })
    }

    /// Record `stage` (one of `stages`) of a batch of `nb` replicates.
    pub(crate) fn record(
        &self,
        ctx: &GpuContext,
        stage: Stage,
        encoder: &mut wgpu::CommandEncoder,
        slot: &CellSlot,
        nb: u32,
    ) -> Result<()> {
        let (at, pipeline, bytes, workgroups) = match stage {
            Stage::CellSums => {
                let (workgroups, stride) = flat(ctx, nb as u64 * self.width as u64);
                let params = SumsParams {
                    nb,
                    g: self.g as u32,
                    width: self.width as u32,
                    decode_mode: self.decode_mode,
                    n_strata: self.n_strata,
                    stride,
                    pad: [0; 2],
                };
                let bytes = bytemuck::bytes_of(&params).to_vec();
                (
                    0,
                    ctx.stage(&ctx.cell_sums, self.precision)?,
                    bytes,
                    workgroups,
                )
            }
            Stage::CellFactor => {
                let params = FactorParams {
                    nb,
                    width: self.width as u32,
                    cols: self.cols as u32,
                    n_general: self.n_general as u32,
                    tol: match self.precision {
                        Precision::F64 => crate::model::cells::UNIDENTIFIED as f32,
                        // f32's own rounding of an unidentified pivot
                        // reaches some 1e-6 of the diagonal.
                        Precision::F32 => 1e-4,
                    },
                    pad: [0; 3],
                };
                let bytes = bytemuck::bytes_of(&params).to_vec();
                let workgroups = (nb.div_ceil(64), self.n_general as u32);
                (
                    1,
                    ctx.stage(&ctx.cell_factor, self.precision)?,
                    bytes,
                    workgroups,
                )
            }
            Stage::CellPartial => {
                let (workgroups, stride) = flat(ctx, nb as u64 * self.n as u64);
                let params = PartialParams {
                    nb,
                    width: self.width as u32,
                    n: self.n as u32,
                    q: self.q as u32,
                    cols: self.cols as u32,
                    n_groups: self.n_groups as u32,
                    stride,
                    pad: 0,
                };
                let bytes = bytemuck::bytes_of(&params).to_vec();
                (
                    2,
                    ctx.stage(&ctx.cell_partial, self.precision)?,
                    bytes,
                    workgroups,
                )
            }
            _ => unreachable!("the cells record their own stages only"),
        };
        if let Some(bind) = &slot.binds[at] {
            ctx.queue.write_buffer(&slot.params[at], 0, &bytes);
            GpuContext::dispatch(encoder, pipeline, bind, workgroups);
        }
        Ok(())
    }
}
