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
use crate::model::design::{Design, TreatmentProduct, centre, product};
use crate::model::panel::Panel;
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
    pub systems: u32,
    pub width: u32,
    pub n_means: u32,
    pub pad: u32,
}
const _: () = assert!(std::mem::size_of::<PermuteParams>() == 48);

/// The host side of the permutation stage: for each system of the solve
/// (`Whitened::sets`), the whitened unit vector `u_s = L^{-1} e_s` of each
/// column `s` the permutation changes (the treatment, and a moderated or
/// interaction model's products with it), the blocks, and the table of
/// `D` rows (per block, donor-major: row `offset + j n + k`, `width` reals:
/// each system's `L^{-1} delta_s` for each changed column, then, without
/// unit effects, each product's change of its mean).
///
/// The replicate's Gram differs from the observed one in the changed
/// columns' rows: `Delta = U M' + M U'`, U the changed columns' unit
/// vectors and M their rows' changes (entries between two changed columns
/// halved, as both rows hold them), every row a sum over recipients of
/// what its donor's series gives it. A product re-formed from a donor's
/// treatment is demeaned within the recipient (unit effects) or centred
/// by the mean over all rows: the latter's change `dm_p` enters the
/// products' cross-products quadratically, `-N dm_p dm_p'`, which the
/// stage adds as a rank-one term; the rest is linear and tabulated.
#[derive(Debug, Clone)]
pub struct PermutationTable {
    /// Columns of each system.
    pub q: usize,
    pub systems: usize,
    /// Changed columns of each system.
    pub changed: Vec<u32>,
    /// `u_s` of each changed column of each system, q reals each, in the
    /// table's order.
    pub u: Vec<f64>,
    /// Without unit effects, for each system and product, `u` of the
    /// product's column (zero where the system does not have it) times
    /// sqrt(N), N the observations.
    pub means: Vec<f64>,
    pub n_means: usize,
    /// Reals per table row.
    pub width: usize,
    /// Cumulative block sizes (n_blocks + 1).
    pub blocks: Vec<u32>,
    /// Each block's first row in `table`.
    pub offsets: Vec<u32>,
    pub table: Vec<f64>,
    /// The largest block.
    pub widest: usize,
}

/// What each row of a permutation table holds: the changed columns (the
/// treatment, then its products), each system's share of them, and,
/// without unit effects, the products' changes of mean. Known before the
/// table is built, so its size can be checked first.
pub(crate) struct TableShape {
    products: Vec<TreatmentProduct>,
    changed: Vec<usize>,
    /// For each system, the changed columns it has: (index among
    /// `changed`, place in the system).
    in_system: Vec<Vec<(usize, usize)>>,
    n_means: usize,
    /// Reals per row.
    width: usize,
}

impl TableShape {
    pub(crate) fn of(design: &Design, panel: &Panel, w: &Whitened) -> TableShape {
        let products = design.treatment_products(panel);
        let changed: Vec<usize> = std::iter::once(design.layout.treatment())
            .chain(products.iter().map(|p| p.column))
            .collect();
        let in_system: Vec<Vec<(usize, usize)>> = w
            .columns
            .iter()
            .map(|cols| {
                changed
                    .iter()
                    .enumerate()
                    .filter_map(|(c, &col)| {
                        cols.iter().position(|&x| x == Some(col)).map(|i| (c, i))
                    })
                    .collect()
            })
            .collect();
        let n_means = match design.fixed_effects.has_unit() {
            true => 0,
            false => products.len(),
        };
        let width = in_system.iter().map(|s| s.len() * w.q).sum::<usize>() + n_means;
        TableShape {
            products,
            changed,
            in_system,
            n_means,
            width,
        }
    }

    /// The reals of the table over `exchange` (quadratic in the units of a
    /// block).
    pub(crate) fn reals(&self, exchange: &Exchange) -> u64 {
        let pairs: u64 = exchange
            .blocks
            .iter()
            .map(|b| (b.len() * b.len()) as u64)
            .sum();
        pairs * self.width as u64
    }
}

/// Refuse a permutation table of `reals` the device cannot bind.
pub(crate) fn check_table_size(ctx: &GpuContext, reals: u64, precision: Precision) -> Result<()> {
    let bytes = reals * if precision == Precision::F64 { 8 } else { 4 };
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
    Ok(())
}

/// One pair's local sums: recipient `u`'s rows with donor `j`'s treatment.
struct Local {
    /// Each changed column's inner products with every design column.
    rows: Vec<Vec<f64>>,
    /// Each product's sum over the recipient's rows (without unit effects).
    sums: Vec<f64>,
}

impl PermutationTable {
    /// The table of `design`'s changed rows for every exchange in
    /// `exchange`, whitened by `w`; `panel` is the design's (the products'
    /// raw factors), `shape` what its rows hold (`TableShape::of`).
    pub(crate) fn new(
        design: &Design,
        panel: &Panel,
        exchange: &Exchange,
        w: &Whitened,
        shape: TableShape,
    ) -> PermutationTable {
        let q = design.q();
        let z = &design.columns;
        let t0 = design.layout.treatment();
        let rows = &exchange.unit_rows;
        let TableShape {
            products,
            changed,
            in_system,
            n_means,
            width,
        } = shape;
        let x_raw = &panel.columns[0];
        let within = design.fixed_effects.has_unit();
        let n_obs = z[t0].len() as f64;
        let is_changed = |k: usize| changed.contains(&k);
        // A product's values on recipient u's rows with donor j's
        // treatment, as the design column has them (demeaned within the
        // unit, or not yet centred) and scaled.
        let product_values = |p: &TreatmentProduct, j: usize, u: usize| -> Vec<f64> {
            let x: Vec<f64> = rows[j].iter().map(|&d| x_raw[d]).collect();
            let other: Vec<f64> = rows[u].iter().map(|&i| p.other[i]).collect();
            let mut v = product(&x, p.x_shift, &other, p.other_shift);
            if within {
                v = centre(&v);
            }
            let scale = design.scale[p.column];
            v.iter_mut().for_each(|x| *x /= scale);
            v
        };
        let local = |j: usize, u: usize| -> Local {
            let values: Vec<Vec<f64>> =
                std::iter::once(rows[j].iter().map(|&d| z[t0][d]).collect())
                    .chain(products.iter().map(|p| product_values(p, j, u)))
                    .collect();
            let rows_out = values
                .iter()
                .map(|a| {
                    (0..q)
                        .map(|k| match changed.iter().position(|&c| c == k) {
                            Some(c) => a.iter().zip(&values[c]).map(|(x, y)| x * y).sum(),
                            None => a.iter().zip(&rows[u]).map(|(x, &i)| x * z[k][i]).sum(),
                        })
                        .collect()
                })
                .collect();
            let sums = match within {
                true => vec![0.0; products.len()],
                false => values[1..].iter().map(|v| v.iter().sum()).collect(),
            };
            Local {
                rows: rows_out,
                sums,
            }
        };
        // Without unit effects: each column's sum and each product's mean
        // over all rows (the observed sample's).
        let column_sum: Vec<f64> = (0..q).map(|k| z[k].iter().sum()).collect();
        let means: Vec<f64> = match within {
            true => vec![0.0; products.len()],
            false => products
                .iter()
                .map(|p| {
                    let all: Vec<f64> = (0..rows.len())
                        .flat_map(|u| product_values(p, u, u))
                        .collect();
                    all.iter().sum::<f64>() / n_obs
                })
                .collect(),
        };
        // The change of changed column c's row (its entry at column k)
        // from recipient u's own series to donor j's, its linear part.
        let delta = |mine: &Local, own: &Local, c: usize, k: usize| -> f64 {
            // The treatment's own sum of squares: a permutation of the
            // same series.
            if c == 0 && k == t0 {
                return 0.0;
            }
            let mut d = mine.rows[c][k] - own.rows[c][k];
            if within {
                return d;
            }
            let dloc = |p: usize| (mine.sums[p] - own.sums[p]) / n_obs;
            // - m_r Z_k for a product's row with an unchanged column, and
            // - N (m_p dm_p' + dm_p m_p') between two products (the
            // treatment's row with a product: - dm_p sum(x)).
            let kc = changed.iter().position(|&x| x == k);
            match (c, kc) {
                (0, None) => {}
                (0, Some(p)) => d -= dloc(p - 1) * column_sum[t0],
                (p, None) => d -= dloc(p - 1) * column_sum[k],
                (p, Some(0)) => d -= dloc(p - 1) * column_sum[t0],
                (p, Some(p2)) => {
                    d -= n_obs * (means[p - 1] * dloc(p2 - 1) + dloc(p - 1) * means[p2 - 1])
                }
            }
            d
        };
        let systems = w.sets;
        let sq = w.q;
        let inverse = |e: usize| &w.inverse[e * sq * sq..(e + 1) * sq * sq];
        let mut blocks = vec![0u32];
        let mut offsets = Vec::new();
        let mut table = Vec::new();
        for block in &exchange.blocks {
            let n = block.len();
            offsets.push((table.len() / width) as u32);
            blocks.push(blocks.last().copied().unwrap_or(0) + n as u32);
            let own: Vec<Local> = block
                .iter()
                .map(|&u| local(u as usize, u as usize))
                .collect();
            for &j in block {
                for (kk, &u) in block.iter().enumerate() {
                    let mine = local(j as usize, u as usize);
                    for (e, cols) in w.columns.iter().enumerate() {
                        let inv = inverse(e);
                        for &(c, _) in &in_system[e] {
                            let d: Vec<f64> = cols
                                .iter()
                                .map(|col| match col {
                                    Some(k) => {
                                        let v = delta(&mine, &own[kk], c, *k);
                                        if is_changed(*k) { v / 2.0 } else { v }
                                    }
                                    None => 0.0,
                                })
                                .collect();
                            for i in 0..sq {
                                table.push((0..=i).map(|a| inv[i * sq + a] * d[a]).sum());
                            }
                        }
                    }
                    for p in 0..n_means {
                        table.push((mine.sums[p] - own[kk].sums[p]) / n_obs);
                    }
                }
            }
        }
        let column_of =
            |e: usize, i: usize| -> Vec<f64> { (0..sq).map(|a| inverse(e)[a * sq + i]).collect() };
        let mut u = Vec::new();
        let mut means_u = Vec::new();
        for (e, mine) in in_system.iter().enumerate() {
            for &(_, i) in mine {
                u.extend(column_of(e, i));
            }
            for p in 0..n_means {
                match mine.iter().find(|(c, _)| *c == p + 1) {
                    Some(&(_, i)) => {
                        means_u.extend(column_of(e, i).into_iter().map(|x| x * n_obs.sqrt()))
                    }
                    None => means_u.extend(vec![0.0; sq]),
                }
            }
        }
        PermutationTable {
            q: sq,
            systems,
            changed: in_system.iter().map(|s| s.len() as u32).collect(),
            u,
            means: means_u,
            n_means,
            width,
            blocks,
            offsets,
            table,
            widest: exchange.blocks.iter().map(Vec::len).max().unwrap_or(0),
        }
    }

    /// The packed whitened deviations E (each system's, one after the
    /// other) of the replicate whose recipients (local index k of each
    /// block, in block order) take the series of local donors `perm`: the
    /// f64 reference of `permute.wgsl`.
    #[cfg(test)]
    pub fn deviation(&self, perm: &[Vec<usize>]) -> Vec<f64> {
        let (q, width) = (self.q, self.width);
        let mut v = vec![0.0; width];
        for (b, p) in perm.iter().enumerate() {
            let n = p.len();
            for (k, &j) in p.iter().enumerate() {
                let row = (self.offsets[b] as usize + j * n + k) * width;
                for (c, acc) in v.iter_mut().enumerate() {
                    *acc += self.table[row + c];
                }
            }
        }
        let dm = &v[width - self.n_means..];
        let mut e = Vec::with_capacity(self.systems * q * (q + 1) / 2);
        let mut at = 0;
        for s in 0..self.systems {
            let n = self.changed[s] as usize;
            let u = &self.u[at..at + n * q];
            let vs = &v[at..at + n * q];
            at += n * q;
            // The rank-one term of the means' change.
            let mut m = vec![0.0; q];
            for (p, d) in dm.iter().enumerate() {
                let up = &self.means[(s * self.n_means + p) * q..][..q];
                for (a, x) in m.iter_mut().enumerate() {
                    *x += d * up[a];
                }
            }
            for a in 0..q {
                for c in a..q {
                    let mut x = -m[a] * m[c];
                    for i in 0..n {
                        x += u[i * q + a] * vs[i * q + c] + vs[i * q + a] * u[i * q + c];
                    }
                    e.push(x);
                }
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
    changed: wgpu::Buffer,
    means: wgpu::Buffer,
    pub widest: usize,
    /// Columns of each system, and systems.
    pub q: usize,
    pub systems: usize,
    /// Reals per table row.
    pub width: usize,
}

/// The buffers of one batch of the permutation stage.
pub(crate) struct PermuteSlot {
    params: wgpu::Buffer,
    /// Packed E per replicate, the solve stage's input.
    pub out: wgpu::Buffer,
    bind: wgpu::BindGroup,
}

impl PermuteInputs {
    /// The device's copy of `table` (whose size `check_table_size` has
    /// judged).
    pub(crate) fn new(
        ctx: &GpuContext,
        table: &PermutationTable,
        seed: u64,
        precision: Precision,
    ) -> PermuteInputs {
        PermuteInputs {
            params: PermuteParams {
                seed: [seed as u32, (seed >> 32) as u32],
                start: [0; 2],
                nb: 0,
                q: table.q as u32,
                n_blocks: table.offsets.len() as u32,
                tag: STREAM_PERMUTATION,
                systems: table.systems as u32,
                width: table.width as u32,
                n_means: table.n_means as u32,
                pad: 0,
            },
            blocks: ctx.storage("permutation blocks", bytemuck::cast_slice(&table.blocks)),
            offsets: ctx.storage("permutation offsets", bytemuck::cast_slice(&table.offsets)),
            table: ctx.reals("permutation table", &table.table, precision),
            u: ctx.reals("permutation u", &table.u, precision),
            changed: ctx.storage("permutation changed", bytemuck::cast_slice(&table.changed)),
            // A binding is never empty.
            means: match table.means.is_empty() {
                true => ctx.reals("permutation means", &[0.0], precision),
                false => ctx.reals("permutation means", &table.means, precision),
            },
            widest: table.widest,
            q: table.q,
            systems: table.systems,
            width: table.width,
        }
    }

    /// Device bytes per replicate: E (every system's), the permutation
    /// scratch and v.
    pub(crate) fn bytes_per_replicate(&self, ws: u64) -> [u64; 3] {
        let q = self.q as u64;
        [
            self.systems as u64 * q * (q + 1) / 2 * ws,
            self.widest as u64 * 4,
            self.width as u64 * ws,
        ]
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
                &self.changed,
                &self.means,
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
    use crate::data::table::{Table, read_csv};
    use crate::model::mediation::equations;
    use crate::model::panel::Panel;
    use crate::model::replicate::{Extension, stats_from_changes};
    use crate::model::spec::{
        FixedEffects, Interaction, ModelSpec, Moderation, ModeratorValues, default_spec,
    };
    use crate::resample::engine::Engine;
    use crate::resample::permutation::PermutationEngine;
    use crate::resample::whiten::to_theta;

    /// theta_hat + the whitened solve of the tabulated E equals the CPU
    /// permutation engine's direct solve, replicate by replicate: the
    /// default model, and moderated and interaction models (their products
    /// with the treatment re-formed) with and without unit effects, with
    /// one mediator and two.
    #[test]
    fn the_permutation_table_reproduces_the_permutation_engine() {
        let synthetic = generate(SyntheticParams {
            cities: 40,
            ..SyntheticParams::default()
        });
        check(&synthetic, &default_spec());
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/moderated.csv");
        let fixture = read_csv(std::path::Path::new(path)).unwrap();
        let moderated = |a, b, direct, center, fe| ModelSpec {
            controls: vec!["c1".into(), "c2".into()],
            moderation: Some(Moderation {
                moderator: "w".into(),
                a,
                b,
                direct,
                center,
                at: ModeratorValues::MeanSd,
            }),
            ..ModelSpec::xmy("unit", "time", &[], fe)
        };
        let interaction = |fe| ModelSpec {
            controls: vec!["c1".into(), "c2".into()],
            interaction: Some(Interaction::default()),
            ..ModelSpec::xmy("unit", "time", &[], fe)
        };
        let two = |spec: ModelSpec| ModelSpec {
            mediators: vec!["m".into(), "c2".into()],
            controls: vec!["c1".into()],
            ..spec
        };
        for spec in [
            moderated(true, true, false, false, FixedEffects::UnitTime),
            moderated(true, true, true, true, FixedEffects::None),
            moderated(true, false, false, false, FixedEffects::Unit),
            moderated(false, true, false, false, FixedEffects::UnitTime),
            interaction(FixedEffects::UnitTime),
            interaction(FixedEffects::None),
            two(moderated(true, true, true, false, FixedEffects::UnitTime)),
            two(moderated(true, false, false, true, FixedEffects::None)),
            two(interaction(FixedEffects::Unit)),
        ] {
            check(&fixture, &spec);
        }
    }

    fn check(table: &Table, spec: &ModelSpec) {
        let panel = Panel::from_table(table, spec).unwrap();
        let design = Design::build(&panel, spec.fixed_effects).unwrap();
        let fit = crate::model::estimate::fit_system(&design, &equations(&design)).unwrap();
        let w = Whitened::new(&design, &fit).unwrap();
        let exchange = Exchange::new(&design, &panel).unwrap();
        let shape = TableShape::of(&design, &panel, &w);
        // Its size is known before it is built.
        let reals = shape.reals(&exchange);
        let table = PermutationTable::new(&design, &panel, &exchange, &w, shape);
        assert_eq!(reals, table.table.len() as u64);
        let engine = PermutationEngine::new(&design, &panel, 9, 4, 1).unwrap();
        let layout = engine.layout();
        let n = layout.len();
        let mut want = vec![0.0; 10 * n];
        engine.compute(0, &mut want).unwrap();
        let mut extension = Extension::of(&design);
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
            let mut delta = vec![0.0; w.coefficients.len()];
            assert!(w.deltas(&e, &mut delta, None));
            let mut theta = vec![0.0; w.theta.len()];
            to_theta(&w.order, &delta, &mut theta);
            let mut got = vec![0.0; n];
            assert!(stats_from_changes(&w.theta, &mut theta, layout, &mut got));
            extension.fill(&theta, layout, &mut got);
            for (s, (a, b)) in got.iter().zip(&want[r as usize * n..]).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1e-3),
                    "{spec:?} replicate {r} statistic {s}: {a} vs {b}"
                );
            }
        }
    }
}
