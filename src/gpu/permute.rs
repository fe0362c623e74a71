//! The permutation scheme on the GPU: `permute.wgsl` draws each replicate's
//! permutation (the CPU's `Exchange::donors`, from the same Philox stream)
//! and writes its whitened Gram deviation E, which the solve stage turns
//! into coefficient changes like any other replicate's.
//!
//! Permuting treatment series across units changes only the treatment's row
//! of the Gram: entry k becomes `sum_u sum_t x_{pi(u) t} z_{u t k}` (the
//! treatment's own entry, a sum of squares over the same series, does not
//! change). With `K[j][u]` the row that donor j's series gives recipient u,
//! the change is `Delta = sum_u (K[pi(u)][u] - K[u][u])`, and in whitened
//! coordinates (`crate::resample::whiten`) the replicate's Gram is `I + E` with
//! `E = u v' + v u'`, `u = L^{-1} e_0` and `v = L^{-1} Delta = sum_u
//! D[pi(u)][u]`, `D[j][u] = L^{-1} (K[j][u] - K[u][u])` tabulated here for
//! every pair of units of a block.

use bytemuck::{Pod, Zeroable};

use super::GpuContext;
use crate::error::{Error, Result};
use crate::math::rng::STREAM_PERMUTATION;
use crate::model::design::Design;
use crate::resample::engine::Precision;
use crate::resample::permutation::Exchange;
use crate::resample::whiten::Whitened;

/// Uniform parameters of `permute.wgsl` (`struct Params`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct PermuteParams {
    pub seed: [u32; 2],
    pub start: [u32; 2],
    pub nb: u32,
    pub q: u32,
    pub n_blocks: u32,
    pub tag: u32,
}
const _: () = assert!(std::mem::size_of::<PermuteParams>() == 32);

/// The host side of the permutation stage: `u`, the blocks and the table of
/// `D` rows (per block, donor-major: row `offset + j n + k`).
#[derive(Debug, Clone)]
pub struct PermutationTable {
    pub q: usize,
    pub u: Vec<f64>,
    /// Cumulative block sizes (n_blocks + 1).
    pub blocks: Vec<u32>,
    /// Each block's first row in `table`.
    pub offsets: Vec<u32>,
    pub table: Vec<f64>,
    /// The largest block.
    pub widest: usize,
}

impl PermutationTable {
    /// The table of `design`'s treatment rows for every exchange in
    /// `exchange`, whitened by `w`.
    pub fn new(design: &Design, exchange: &Exchange, w: &Whitened) -> PermutationTable {
        let q = design.q();
        let z = &design.columns;
        let x = &z[design.layout.treatment()];
        let rows = &exchange.unit_rows;
        // K[j][u] (entry 0 left at zero: the treatment's own sum of squares
        // does not change).
        let k_row = |j: usize, u: usize| -> Vec<f64> {
            let mut k = vec![0.0; q];
            for (&i, &d) in rows[u].iter().zip(&rows[j]) {
                for (c, acc) in k.iter_mut().enumerate().skip(1) {
                    *acc += x[d] * z[c][i];
                }
            }
            k
        };
        let mut blocks = vec![0u32];
        let mut offsets = Vec::new();
        let mut table = Vec::new();
        for block in &exchange.blocks {
            let n = block.len();
            offsets.push((table.len() / q) as u32);
            blocks.push(blocks.last().copied().unwrap_or(0) + n as u32);
            let own: Vec<Vec<f64>> = block
                .iter()
                .map(|&u| k_row(u as usize, u as usize))
                .collect();
            for &j in block {
                for (kk, &u) in block.iter().enumerate() {
                    let delta: Vec<f64> = k_row(j as usize, u as usize)
                        .iter()
                        .zip(&own[kk])
                        .map(|(a, b)| a - b)
                        .collect();
                    for i in 0..q {
                        table.push((0..=i).map(|c| w.inverse[i * q + c] * delta[c]).sum());
                    }
                }
            }
        }
        PermutationTable {
            q,
            u: (0..q).map(|i| w.inverse[i * q]).collect(),
            blocks,
            offsets,
            table,
            widest: exchange.blocks.iter().map(Vec::len).max().unwrap_or(0),
        }
    }

    /// The packed whitened deviation E of the replicate whose recipients
    /// (local index k of each block, in block order) take the series of
    /// local donors `perm`: the f64 reference of `permute.wgsl`.
    #[cfg(test)]
    pub fn deviation(&self, perm: &[Vec<usize>]) -> Vec<f64> {
        let q = self.q;
        let mut v = vec![0.0; q];
        for (b, p) in perm.iter().enumerate() {
            let n = p.len();
            for (k, &j) in p.iter().enumerate() {
                let row = (self.offsets[b] as usize + j * n + k) * q;
                for (c, acc) in v.iter_mut().enumerate() {
                    *acc += self.table[row + c];
                }
            }
        }
        let mut e = Vec::with_capacity(q * (q + 1) / 2);
        for a in 0..q {
            for c in a..q {
                e.push(self.u[a] * v[c] + v[a] * self.u[c]);
            }
        }
        e
    }
}

/// The permutation stage's fixed inputs on the device.
pub(crate) struct PermuteInputs {
    params: PermuteParams,
    blocks: wgpu::Buffer,
    offsets: wgpu::Buffer,
    table: wgpu::Buffer,
    u: wgpu::Buffer,
    pub widest: usize,
    pub q: usize,
}

/// The buffers of one batch of the permutation stage.
pub(crate) struct PermuteSlot {
    params: wgpu::Buffer,
    /// Packed E per replicate, the solve stage's input.
    pub out: wgpu::Buffer,
    bind: wgpu::BindGroup,
}

impl PermuteInputs {
    pub(crate) fn new(
        ctx: &GpuContext,
        table: &PermutationTable,
        seed: u64,
        precision: Precision,
    ) -> Result<PermuteInputs> {
        let bytes = table.table.len() as u64 * if precision == Precision::F64 { 8 } else { 4 };
        let limit = ctx.binding_limit();
        if bytes > limit {
            return Err(Error::InvalidOption {
                option: "resampling.backend".into(),
                message: format!(
                    "the permutation table ({} MiB, quadratic in the units of a block) exceeds what {} binds ({} MiB); set resampling.backend to cpu",
                    bytes >> 20,
                    ctx.info.name,
                    limit >> 20
                ),
            });
        }
        Ok(PermuteInputs {
            params: PermuteParams {
                seed: [seed as u32, (seed >> 32) as u32],
                start: [0; 2],
                nb: 0,
                q: table.q as u32,
                n_blocks: table.offsets.len() as u32,
                tag: STREAM_PERMUTATION,
            },
            blocks: ctx.storage("permutation blocks", bytemuck::cast_slice(&table.blocks)),
            offsets: ctx.storage("permutation offsets", bytemuck::cast_slice(&table.offsets)),
            table: ctx.reals("permutation table", &table.table, precision),
            u: ctx.reals("permutation u", &table.u, precision),
            widest: table.widest,
            q: table.q,
        })
    }

    /// Device bytes per replicate: E, the permutation scratch and v.
    pub(crate) fn bytes_per_replicate(&self, ws: u64) -> [u64; 3] {
        let q = self.q as u64;
        [q * (q + 1) / 2 * ws, self.widest as u64 * 4, q * ws]
    }

    pub(crate) fn slot(
        &self,
        ctx: &GpuContext,
        capacity: usize,
        precision: Precision,
        out_bytes: Option<u64>,
    ) -> Result<PermuteSlot> {
        let ws = if precision == Precision::F64 { 8 } else { 4 };
        let cap = capacity as u64;
        let [e_bytes, perm_bytes, v_bytes] = self.bytes_per_replicate(ws);
        let params = ctx.uniform("permute params", bytemuck::bytes_of(&self.params));
        let out = ctx.output("permuted deviations", out_bytes.unwrap_or(cap * e_bytes));
        let perm = ctx.output("permutations", cap * perm_bytes);
        let v = ctx.output("permutation v", cap * v_bytes);
        let pipeline = ctx.stage(&ctx.permute, precision)?;
        let bind = ctx.bind(
            pipeline,
            &[
                &params,
                &self.blocks,
                &self.offsets,
                &self.table,
                &self.u,
                &out,
                &perm,
                &v,
            ],
        );
        Ok(PermuteSlot { params, out, bind })
    }

    /// Record the permutation stage for replicates `start .. start + count`.
    pub(crate) fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        slot: &PermuteSlot,
        start: u64,
        count: u32,
        precision: Precision,
    ) -> Result<()> {
        let params = PermuteParams {
            start: [start as u32, (start >> 32) as u32],
            nb: count,
            ..self.params
        };
        ctx.queue
            .write_buffer(&slot.params, 0, bytemuck::bytes_of(&params));
        let pipeline = ctx.stage(&ctx.permute, precision)?;
        GpuContext::dispatch(encoder, pipeline, &slot.bind, (count.div_ceil(64), 1));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{SyntheticParams, generate};
    use crate::model::mediation::equations;
    use crate::model::panel::Panel;
    use crate::model::replicate::coefficients_to_stats;
    use crate::model::spec::default_spec;
    use crate::resample::engine::Engine;
    use crate::resample::permutation::PermutationEngine;

    /// theta_hat + the whitened solve of the tabulated E equals the CPU
    /// permutation engine's direct solve, replicate by replicate.
    #[test]
    fn the_permutation_table_reproduces_the_permutation_engine() {
        let spec = default_spec();
        let panel = Panel::from_table(
            &generate(SyntheticParams {
                cities: 40,
                ..SyntheticParams::default()
            }),
            &spec,
        )
        .unwrap();
        let design = Design::build(&panel, spec.fixed_effects).unwrap();
        let fit = crate::model::estimate::fit_system(&design, &equations(&design)).unwrap();
        let w = Whitened::new(&design, &fit).unwrap();
        let exchange = Exchange::new(&design, &panel).unwrap();
        let table = PermutationTable::new(&design, &exchange, &w);
        let engine = PermutationEngine::new(&design, &panel, 9, 4, 1).unwrap();
        let n = engine.layout().len();
        let mut want = vec![0.0; 10 * n];
        engine.compute(0, &mut want).unwrap();
        for r in 0..10u64 {
            let donors = exchange.donors(9, r);
            let perm: Vec<Vec<usize>> = exchange
                .blocks
                .iter()
                .map(|b| {
                    b.iter()
                        .map(|&u| b.iter().position(|&d| d == donors[u as usize]).unwrap())
                        .collect()
                })
                .collect();
            let e = table.deviation(&perm);
            let mut delta = vec![0.0; w.theta.len()];
            assert!(w.deltas(&e, &mut delta, None));
            let theta: Vec<f64> = w.theta.iter().zip(&delta).map(|(a, b)| a + b).collect();
            let mut got = vec![0.0; n];
            coefficients_to_stats(&theta, engine.layout(), &mut got);
            for (s, (a, b)) in got.iter().zip(&want[r as usize * n..]).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1e-3),
                    "replicate {r} statistic {s}: {a} vs {b}"
                );
            }
        }
    }
}
