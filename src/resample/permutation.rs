//! Permutation (placebo / randomization) inference: the treatment series are
//! permuted across units, everything else stays. Only the treatment row of
//! the Gram matrix changes, `S(w)[x, k] = sum_i sum_t x_{pi(i) t} z_{i t k}`,
//! so a replicate costs one pass over the observations, then the usual solve.
//!
//! Units are permuted within blocks of units observed in exactly the same
//! periods (all units, in a balanced panel), so that a donor's series lines
//! up period by period. Replicate r's permutation: for each block in order of
//! its first unit, a Fisher-Yates shuffle of the block's units drawing
//! `below(i + 1)` for i = n-1 down to 1 from the Philox stream
//! `(seed, r, STREAM_PERMUTATION)`; unit `block[k]` takes the series of
//! `shuffled[k]`.
//!
//! A moderated or interaction model's products with the treatment (X*W,
//! X*M) are re-formed from the permuted treatment as the design forms them
//! on the data (`Design::treatment_products`), absorbed and scaled, and
//! their rows of the Gram recomputed too: one more pass per product.

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::math::linalg::packed_index;
use crate::math::rng::{STREAM_PERMUTATION, WordStream};
use crate::model::design::{Design, TreatmentProduct, absorb, centre, product};
use crate::model::panel::{Factor, Panel};
use crate::model::replicate::{Solver, StatLayout};
use crate::resample::engine::{Backend, Engine, thread_pool};

/// Which units can exchange treatment series: each unit's observation rows
/// in period order, and the blocks of two or more units observed in
/// exactly the same periods (in order of their first unit).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub unit_rows: Vec<Vec<usize>>,
    pub blocks: Vec<Vec<u32>>,
}

impl Exchange {
    /// The blocks of `panel`, refusing panels where nothing can be
    /// exchanged or the treatment is the same everywhere.
    pub fn new(design: &Design, panel: &Panel) -> Result<Exchange> {
        let mut unit_rows = vec![Vec::new(); panel.unit.len()];
        for (i, &u) in panel.unit.codes.iter().enumerate() {
            unit_rows[u as usize].push(i);
        }
        for rows in &mut unit_rows {
            rows.sort_by_key(|&i| panel.time.codes[i]);
        }
        let mut blocks: Vec<(Vec<u32>, Vec<u32>)> = Vec::new(); // (periods, units)
        for (u, rows) in unit_rows.iter().enumerate() {
            let periods: Vec<u32> = rows.iter().map(|&i| panel.time.codes[i]).collect();
            match blocks.iter_mut().find(|(p, _)| *p == periods) {
                Some((_, units)) => units.push(u as u32),
                None => blocks.push((periods, vec![u as u32])),
            }
        }
        let blocks: Vec<Vec<u32>> = blocks
            .into_iter()
            .map(|(_, u)| u)
            .filter(|u| u.len() > 1)
            .collect();
        if blocks.is_empty() {
            return Err(Error::InvalidOption {
                option: "resampling.scheme".into(),
                message:
                    "permutation needs units observed in the same periods, and no two units are; \
                          the treatment series cannot be exchanged"
                        .into(),
            });
        }
        // Every unit of every block with the same treatment series (over
        // time, as the model sees it): no permutation changes anything.
        let x = &design.columns[design.layout.treatment()];
        let series = |u: u32| unit_rows[u as usize].iter().map(|&i| x[i]);
        let same = blocks
            .iter()
            .all(|b| b[1..].iter().all(|&u| series(u).eq(series(b[0]))));
        if same {
            return Err(Error::InvalidOption {
                option: "resampling.scheme".into(),
                message: "the treatment series is identical across units, so permuting it across \
                          units changes nothing; the permutation test needs the treatment to differ \
                          between units"
                    .into(),
            });
        }
        Ok(Exchange { unit_rows, blocks })
    }

    /// Donor unit of every unit in replicate `r` of `seed` (unit u takes
    /// the treatment series of unit `donors(..)[u]`).
    pub fn donors(&self, seed: u64, r: u64) -> Vec<u32> {
        let mut donor: Vec<u32> = (0..self.unit_rows.len() as u32).collect();
        let mut s = WordStream::new(seed, r, STREAM_PERMUTATION);
        for block in &self.blocks {
            let mut shuffled = block.clone();
            for i in (1..shuffled.len()).rev() {
                let j = s.below(i as u32 + 1) as usize;
                shuffled.swap(i, j);
            }
            for (&u, &d) in block.iter().zip(&shuffled) {
                donor[u as usize] = d;
            }
        }
        donor
    }
}

/// The permutation engine over one design.
pub struct PermutationEngine<'a> {
    design: &'a Design,
    solver: Solver,
    seed: u64,
    /// Packed Gram of the observed sample.
    base: Vec<f64>,
    exchange: Exchange,
    /// The products with the treatment, the raw treatment they are formed
    /// from and the units they are absorbed within (none without products).
    products: Vec<TreatmentProduct>,
    x_raw: Vec<f64>,
    unit: Factor,
    /// The design's columns row by row (observation-major), so that a
    /// replicate's treatment row reads each observation's q values
    /// together.
    by_row: Vec<f64>,
    batch: usize,
    pool: rayon::ThreadPool,
}

impl<'a> PermutationEngine<'a> {
    /// An engine permuting the treatment of `panel`'s units.
    pub fn new(
        design: &'a Design,
        panel: &Panel,
        seed: u64,
        batch: usize,
        threads: usize,
    ) -> Result<Self> {
        let pool = thread_pool(threads, batch)?;
        let exchange = Exchange::new(design, panel)?;
        let base = design.total_packed();
        let products = design.treatment_products(panel);
        let x_raw = match products.is_empty() {
            true => Vec::new(),
            false => panel.columns[0].clone(),
        };
        Ok(PermutationEngine {
            design,
            solver: Solver::new(design),
            seed,
            base,
            exchange,
            products,
            x_raw,
            unit: panel.unit.clone(),
            by_row: {
                let (q, n) = (design.q(), design.n_obs);
                let mut by_row = vec![0.0; n * q];
                for (k, column) in design.columns.iter().enumerate() {
                    for (i, &v) in column.iter().enumerate() {
                        by_row[i * q + k] = v;
                    }
                }
                by_row
            },
            batch,
            pool,
        })
    }

    /// Donor unit of every unit in replicate `r` (unit u takes the
    /// treatment series of unit `donors(r)[u]`).
    pub fn donors(&self, r: u64) -> Vec<u32> {
        self.exchange.donors(self.seed, r)
    }

    /// The products with the treatment re-formed from the permuted raw
    /// treatment (unit u's rows take those of unit `donor[u]`): each
    /// product's column with its design column.
    fn reformed(&self, donor: &[u32]) -> Vec<(usize, Vec<f64>)> {
        if self.products.is_empty() {
            return Vec::new();
        }
        let unit_rows = &self.exchange.unit_rows;
        let mut x = vec![0.0; self.x_raw.len()];
        for (u, rows) in unit_rows.iter().enumerate() {
            for (&i, &j) in rows.iter().zip(&unit_rows[donor[u] as usize]) {
                x[i] = self.x_raw[j];
            }
        }
        let fe = self.design.fixed_effects;
        self.products
            .iter()
            .map(|p| {
                let raw = product(&x, p.x_shift, &p.other, p.other_shift);
                let mut col = absorb(centre(&raw), &self.unit, fe);
                let scale = self.design.scale[p.column];
                col.iter_mut().for_each(|v| *v /= scale);
                (p.column, col)
            })
            .collect()
    }

    fn replicate(&self, r: u64, solver: &mut Solver, packed: &mut [f64], out: &mut [f64]) -> bool {
        let q = self.design.q();
        let z = &self.design.columns;
        let x = &z[self.design.layout.treatment()];
        packed.copy_from_slice(&self.base);
        let donor = self.donors(r);
        let reformed = self.reformed(&donor);
        let product_of = |k: usize| reformed.iter().find(|(c, _)| *c == k);
        let columns: Vec<&[f64]> = (0..q)
            .map(|k| product_of(k).map_or(&z[k][..], |(_, v)| &v[..]))
            .collect();
        // The treatment's row of the permuted Gram: each entry summed over
        // the observations in the same order (unit by unit), the design's
        // columns read row by row, then the re-formed products' entries.
        let mut row = vec![0.0; q];
        let unit_rows = &self.exchange.unit_rows;
        let each = |f: &mut dyn FnMut(usize, f64)| {
            for (u, rows) in unit_rows.iter().enumerate() {
                for (&i, &j) in rows.iter().zip(&unit_rows[donor[u] as usize]) {
                    f(i, x[j]);
                }
            }
        };
        each(&mut |i, xv| {
            let zi = &self.by_row[i * q..(i + 1) * q];
            for (acc, &v) in row[1..].iter_mut().zip(&zi[1..]) {
                *acc += xv * v;
            }
        });
        for (c, col) in &reformed {
            let mut acc = 0.0;
            each(&mut |i, xv| acc += xv * col[i]);
            row[*c] = acc;
        }
        for (k, &v) in row.iter().enumerate().skip(1) {
            packed[packed_index(0, k, q)] = v;
        }
        // Each product's row with every column but the treatment (done
        // above), a pair of products once.
        for (c, col) in &reformed {
            for k in (1..q).filter(|&k| !(k < *c && product_of(k).is_some())) {
                let v = col.iter().zip(columns[k]).map(|(a, b)| a * b).sum();
                packed[packed_index((*c).min(k), (*c).max(k), q)] = v;
            }
        }
        solver.solve(packed, out)
    }
}

impl Engine for PermutationEngine<'_> {
    fn backend(&self) -> Backend {
        Backend::cpu()
    }

    fn layout(&self) -> StatLayout {
        self.solver.layout
    }

    fn compute(&self, start: u64, out: &mut [f64]) -> Result<u64> {
        let n_stats = self.layout().len();
        let failed = self.pool.install(|| {
            out.par_chunks_mut(self.batch * n_stats)
                .enumerate()
                .map(|(b, block)| {
                    let mut solver = self.solver.clone();
                    let mut packed = vec![0.0; self.base.len()];
                    let first = start + (b * self.batch) as u64;
                    let mut failed = 0;
                    for (i, stats) in block.chunks_mut(n_stats).enumerate() {
                        if !self.replicate(first + i as u64, &mut solver, &mut packed, stats) {
                            failed += 1;
                        }
                    }
                    failed
                })
                .sum()
        });
        Ok(failed)
    }
}
