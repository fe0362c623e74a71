//! Permutation (placebo / randomization) inference: the treatment series are
//! permuted across units, everything else stays. Only the treatment row of
//! the Gram matrix changes, `S(w)[x, k] = sum_i sum_t x_{pi(i) t} z_{i t k}`:
//! a sum over recipients i of the row `K[pi(i)][i]` that donor pi(i)'s series
//! gives recipient i. Those rows are tabulated once for every pair of units
//! that can exchange (`DonorRows`), so a replicate costs one row addition per
//! unit, then the usual solve; where the table would not fit in memory, each
//! replicate forms its rows from the observations instead (the same sums in
//! the same order, so the same numbers).
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
use crate::math::rng::{STREAM_PERMUTATION, WordStream, rejection_threshold};
use crate::model::design::{Design, TreatmentProduct, absorb, centre, product};
use crate::model::panel::{Factor, Panel};
use crate::model::replicate::{LANES, Solver, StatLayout};
use crate::resample::engine::{Backend, Engine, thread_pool};

/// Which units can exchange treatment series: each unit's observation rows
/// in period order, and the blocks of two or more units observed in
/// exactly the same periods (in order of their first unit).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub unit_rows: Vec<Vec<usize>>,
    pub blocks: Vec<Vec<u32>>,
    /// `rejection_threshold(i + 1)` for every draw of a shuffle (i below
    /// the largest block's size): a division each, drawn once here.
    thresholds: Vec<u32>,
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
        let widest = blocks.iter().map(Vec::len).max().unwrap_or(0);
        let thresholds = (0..widest as u32)
            .map(|i| rejection_threshold(i + 1))
            .collect();
        Ok(Exchange {
            unit_rows,
            blocks,
            thresholds,
        })
    }

    /// Donor unit of every unit in replicate `r` of `seed` (unit u takes
    /// the treatment series of unit `donors(..)[u]`).
    pub fn donors(&self, seed: u64, r: u64) -> Vec<u32> {
        let mut donor = vec![0; self.unit_rows.len()];
        self.donors_into(seed, r, &mut donor, &mut Shuffle::default());
        donor
    }

    /// [`Exchange::donors`] into `donor` (one per unit), `scratch` holding
    /// each block's shuffle and its words: no allocation once it has grown.
    /// A block's words are taken together, so that the shuffle makes no
    /// call; a word rejected (Lemire) is made up for by the next, as
    /// `below_with` would.
    pub fn donors_into(&self, seed: u64, r: u64, donor: &mut [u32], scratch: &mut Shuffle) {
        donor
            .iter_mut()
            .enumerate()
            .for_each(|(u, d)| *d = u as u32);
        let mut s = WordStream::new(seed, r, STREAM_PERMUTATION);
        let Shuffle { shuffled, words } = scratch;
        for block in &self.blocks {
            shuffled.clear();
            shuffled.extend_from_slice(block);
            words.resize(block.len() - 1, 0);
            s.fill(words);
            let mut taken = 0;
            for i in (1..shuffled.len()).rev() {
                let n = i as u64 + 1;
                let j = loop {
                    let w = match words.get(taken) {
                        Some(&w) => w,
                        None => s.word(),
                    };
                    taken += 1;
                    let m = w as u64 * n;
                    if (m as u32) >= self.thresholds[i] {
                        break (m >> 32) as usize;
                    }
                };
                shuffled.swap(i, j);
            }
            for (&u, &d) in block.iter().zip(shuffled.iter()) {
                donor[u as usize] = d;
            }
        }
    }
}

/// Working memory of [`Exchange::donors_into`].
#[derive(Debug, Default)]
pub struct Shuffle {
    shuffled: Vec<u32>,
    words: Vec<u32>,
}

/// Most memory a permutation engine's table of donor rows may take; a
/// larger one is not built and replicates form their rows as they go.
const TABLE_BUDGET: u64 = 256 << 20;

/// The treatment's row of the Gram that each donor's series gives each
/// recipient, past the treatment's own entry: `K[j][u][k] = sum_t x_{j t}
/// z_{u t k}` (the design's absorbed columns; t over the recipient's
/// periods in order, which the donor shares). A replicate's row is
/// `start`, the units that exchange with none, then every block's
/// recipients in order, each adding `K[donor][recipient]`.
struct DonorRows {
    /// q - 1: the entries of a row.
    width: usize,
    /// The design's columns observation by observation, so that a pair's
    /// sums read each observation's q values together.
    by_row: Vec<f64>,
    q: usize,
    /// The rows of the units outside every block, each with its own
    /// series, summed in unit order.
    start: Vec<f64>,
    /// Every block's pairs, recipient-major (`offsets[b] + (k n_b + d)
    /// width`, the recipient `block[k]`, the donor `block[d]`); `None`
    /// where that would exceed the budget ([`TABLE_BUDGET`] unless a test
    /// sets another) or a quarter of the memory available.
    table: Option<Vec<f64>>,
    offsets: Vec<usize>,
    /// Each unit's place in its block.
    position: Vec<u32>,
}

impl DonorRows {
    fn new(
        design: &Design,
        exchange: &Exchange,
        pool: &rayon::ThreadPool,
        budget: u64,
    ) -> DonorRows {
        let (q, n) = (design.q(), design.n_obs);
        let mut by_row = vec![0.0; n * q];
        for (k, column) in design.columns.iter().enumerate() {
            for (i, &v) in column.iter().enumerate() {
                by_row[i * q + k] = v;
            }
        }
        let width = q - 1;
        let mut rows = DonorRows {
            width,
            by_row,
            q,
            start: vec![0.0; width],
            table: None,
            offsets: Vec::new(),
            position: vec![0; exchange.unit_rows.len()],
        };
        for block in &exchange.blocks {
            for (k, &u) in block.iter().enumerate() {
                rows.position[u as usize] = k as u32;
            }
        }
        let x = &design.columns[design.layout.treatment()];
        let mut in_block = vec![false; exchange.unit_rows.len()];
        exchange
            .blocks
            .iter()
            .flatten()
            .for_each(|&u| in_block[u as usize] = true);
        let mut start = vec![0.0; width];
        for u in (0..exchange.unit_rows.len()).filter(|&u| !in_block[u]) {
            rows.add_pair(x, exchange, u, u, &mut start);
        }
        rows.start = start;
        let mut total = 0;
        for block in &exchange.blocks {
            rows.offsets.push(total);
            total += block.len() * block.len() * width;
        }
        let bytes = total as u64 * 8;
        let available = crate::resources::available_memory().unwrap_or(u64::MAX);
        if bytes <= budget && bytes <= available / 4 {
            let mut table = vec![0.0; total];
            let mut parts: Vec<(&[u32], &mut [f64])> = Vec::new();
            let mut rest = &mut table[..];
            for block in &exchange.blocks {
                let (part, tail) = rest.split_at_mut(block.len() * block.len() * width);
                parts.push((block, part));
                rest = tail;
            }
            pool.install(|| {
                parts.into_par_iter().for_each(|(block, part)| {
                    for (k, pair_rows) in part.chunks_mut(block.len() * width).enumerate() {
                        for (d, row) in pair_rows.chunks_mut(width).enumerate() {
                            let (u, j) = (block[k] as usize, block[d] as usize);
                            rows.pair_sums(x, exchange, j, u, row);
                        }
                    }
                })
            });
            rows.table = Some(table);
        }
        rows
    }

    /// Adds `K[j][u]` to `row`.
    #[inline]
    fn add_pair(&self, x: &[f64], exchange: &Exchange, j: usize, u: usize, row: &mut [f64]) {
        let mut stack = [0.0; 32];
        let mut heap = Vec::new();
        let sums = match self.width <= stack.len() {
            true => &mut stack[..self.width],
            false => {
                heap.resize(self.width, 0.0);
                &mut heap[..]
            }
        };
        self.pair_sums(x, exchange, j, u, sums);
        row.iter_mut().zip(sums.iter()).for_each(|(r, s)| *r += s);
    }

    /// `K[j][u]` into `sums` (zeros on entry): summed over recipient u's
    /// periods in order, each observation's entries read together.
    #[inline]
    fn pair_sums(&self, x: &[f64], exchange: &Exchange, j: usize, u: usize, sums: &mut [f64]) {
        let q = self.q;
        for (&i, &jj) in exchange.unit_rows[u].iter().zip(&exchange.unit_rows[j]) {
            let xv = x[jj];
            let zi = &self.by_row[i * q + 1..(i + 1) * q];
            for (acc, &v) in sums.iter_mut().zip(zi) {
                *acc += xv * v;
            }
        }
    }

    /// The treatment's rows past its own entry of a run of replicates:
    /// replicate r's units take their series from `donors[r n..(r + 1) n]`
    /// (n units) and its row goes to `rows[r width..]`. With the table,
    /// recipient by recipient across the run, the next recipient's stripe
    /// of donor rows fetched meanwhile; every replicate's sums keep their
    /// order all the same.
    fn rows(&self, x: &[f64], exchange: &Exchange, donors: &[u32], rows: &mut [f64]) {
        let (width, n_units) = (self.width, exchange.unit_rows.len());
        for row in rows.chunks_mut(width) {
            row.copy_from_slice(&self.start);
        }
        let Some(table) = &self.table else {
            for (donor, row) in donors.chunks(n_units).zip(rows.chunks_mut(width)) {
                for block in &exchange.blocks {
                    for &u in block {
                        self.add_pair(x, exchange, donor[u as usize] as usize, u as usize, row);
                    }
                }
            }
            return;
        };
        let replicates = rows.len() / width;
        for (b, block) in exchange.blocks.iter().enumerate() {
            let n = block.len();
            for (k, &u) in block.iter().enumerate() {
                let stripe = &table[self.offsets[b] + k * n * width..][..n * width];
                // The next recipient's stripe fetched while this one is
                // read, a few lines per replicate: the table is read in
                // random order, which the processor's own prefetchers do not
                // follow (a quarter off the stage).
                let next = match k + 1 < n {
                    true => &table[self.offsets[b] + (k + 1) * n * width..][..n * width],
                    false => &[],
                };
                let lines = next.len().div_ceil(8);
                for (r, row) in rows.chunks_mut(width).enumerate() {
                    let mut line = r;
                    while line < lines {
                        prefetch(&next[line * 8]);
                        line += replicates;
                    }
                    let d = self.position[donors[r * n_units + u as usize] as usize] as usize;
                    row.iter_mut()
                        .zip(&stripe[d * width..(d + 1) * width])
                        .for_each(|(a, v)| *a += v);
                }
            }
        }
    }
}

/// Asks the processor to bring `v`'s cache line close: a hint, which
/// changes no result.
#[inline(always)]
fn prefetch(v: &f64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and cannot fault; SSE is part of
    // x86_64.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((v as *const f64).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
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
    rows: DonorRows,
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
        Self::with_table_budget(design, panel, seed, batch, threads, TABLE_BUDGET)
    }

    /// [`PermutationEngine::new`] with the table of donor rows built only
    /// if it takes at most `budget` bytes (the same statistics either way;
    /// tests compare the two).
    pub fn with_table_budget(
        design: &'a Design,
        panel: &Panel,
        seed: u64,
        batch: usize,
        threads: usize,
        budget: u64,
    ) -> Result<Self> {
        let pool = thread_pool(threads, batch)?;
        let exchange = Exchange::new(design, panel)?;
        let base = design.total_packed();
        let products = design.treatment_products(panel);
        let x_raw = match products.is_empty() {
            true => Vec::new(),
            false => panel.columns[0].clone(),
        };
        let rows = DonorRows::new(design, &exchange, &pool, budget);
        Ok(PermutationEngine {
            design,
            solver: Solver::new(design),
            seed,
            base,
            exchange,
            products,
            x_raw,
            unit: panel.unit.clone(),
            rows,
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

    /// The statistics of replicates `first..` into `out` (a run of
    /// them, one after another), `lap` called after each stage: the
    /// permutations drawn, the Gram's changed rows, the solves. Returns the
    /// replicates whose Gram was singular.
    fn run(
        &self,
        first: u64,
        out: &mut [f64],
        scratch: &mut Scratch,
        lap: &mut impl FnMut(PermutationStage),
    ) -> u64 {
        let q = self.design.q();
        let x = &self.design.columns[self.design.layout.treatment()];
        let n_stats = self.layout().len();
        let nb = out.len() / n_stats;
        let n_units = self.exchange.unit_rows.len();
        let Scratch {
            solver,
            packed,
            donors,
            shuffle,
            rows,
        } = scratch;
        donors.resize(nb * n_units, 0);
        for (r, donor) in donors.chunks_mut(n_units).enumerate() {
            self.exchange
                .donors_into(self.seed, first + r as u64, donor, shuffle);
        }
        lap(PermutationStage::Draw);
        let width = self.rows.width;
        rows.resize(nb * width, 0.0);
        self.rows.rows(x, &self.exchange, donors, rows);
        lap(PermutationStage::Row);
        // Replicate i's Gram into `packed`.
        let pack = |i: usize, packed: &mut [f64]| {
            packed.copy_from_slice(&self.base);
            for (k, &v) in rows[i * width..(i + 1) * width].iter().enumerate() {
                packed[packed_index(0, k + 1, q)] = v;
            }
            if !self.products.is_empty() {
                self.products_rows(&donors[i * n_units..(i + 1) * n_units], packed);
            }
        };
        // LANES replicates factored side by side (one at a time where the
        // solver cannot: the same bits either way), the rest one by one.
        let side_by_side = nb - nb % LANES;
        let len = self.base.len();
        let mut failed = 0;
        for (first, stats) in out[..side_by_side * n_stats]
            .chunks_mut(LANES * n_stats)
            .enumerate()
        {
            for (s, p) in packed.chunks_mut(len).enumerate() {
                pack(first * LANES + s, p);
            }
            let lanes: [&[f64]; LANES] = std::array::from_fn(|s| &packed[s * len..(s + 1) * len]);
            let solved = solver.solve_lanes(lanes, stats);
            failed += solved.iter().filter(|&&ok| !ok).count() as u64;
        }
        for (i, stats) in out.chunks_mut(n_stats).enumerate().skip(side_by_side) {
            pack(i, &mut packed[..len]);
            if !solver.solve(&packed[..len], stats) {
                failed += 1;
            }
        }
        lap(PermutationStage::Solve);
        failed
    }

    /// A moderated or interaction model's products re-formed from the
    /// permuted treatment: their entries in the treatment's row, summed over
    /// the observations unit by unit, and their rows with every other column
    /// but the treatment, a pair of products once.
    fn products_rows(&self, donor: &[u32], packed: &mut [f64]) {
        let q = self.design.q();
        let z = &self.design.columns;
        let x = &z[self.design.layout.treatment()];
        let reformed = self.reformed(donor);
        let product_of = |k: usize| reformed.iter().find(|(c, _)| *c == k);
        let unit_rows = &self.exchange.unit_rows;
        for (c, col) in &reformed {
            let mut acc = 0.0;
            for (u, rows) in unit_rows.iter().enumerate() {
                for (&i, &j) in rows.iter().zip(&unit_rows[donor[u] as usize]) {
                    acc += x[j] * col[i];
                }
            }
            packed[packed_index(0, *c, q)] = acc;
        }
        for (c, col) in &reformed {
            for k in (1..q).filter(|&k| !(k < *c && product_of(k).is_some())) {
                let other = product_of(k).map_or(&z[k][..], |(_, v)| &v[..]);
                let v = col.iter().zip(other).map(|(a, b)| a * b).sum();
                packed[packed_index((*c).min(k), (*c).max(k), q)] = v;
            }
        }
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            solver: self.solver.clone(),
            packed: vec![0.0; LANES * self.base.len()],
            donors: Vec::new(),
            shuffle: Shuffle::default(),
            rows: Vec::new(),
        }
    }

    /// Replicates `start..` of one batch into `out` on this thread, each
    /// stage's seconds added up: what `medsim bench --stages` reports.
    pub fn profile_batch(&self, start: u64, out: &mut [f64]) -> PermutationStageTimes {
        let mut times = PermutationStageTimes::default();
        let mut scratch = self.scratch();
        let mut clock = std::time::Instant::now();
        let mut lap = |stage: PermutationStage| {
            let now = std::time::Instant::now();
            let into = match stage {
                PermutationStage::Draw => &mut times.draws,
                PermutationStage::Row => &mut times.row,
                PermutationStage::Solve => &mut times.solve,
            };
            *into += (now - clock).as_secs_f64();
            clock = now;
        };
        self.run(start, out, &mut scratch, &mut lap);
        times
    }
}

/// A batch's working memory, reused across batches: the replicates'
/// donors and treatment rows, one after another.
struct Scratch {
    solver: Solver,
    /// LANES packed Grams, side by side.
    packed: Vec<f64>,
    donors: Vec<u32>,
    shuffle: Shuffle,
    rows: Vec<f64>,
}

/// The stages of a permutation replicate.
#[derive(Debug, Clone, Copy)]
enum PermutationStage {
    Draw,
    Row,
    Solve,
}

/// Seconds of a batch's permutation replicates in each stage.
#[derive(Debug, Clone, Copy, Default)]
pub struct PermutationStageTimes {
    /// Each replicate's permutation drawn (Fisher-Yates over Philox words).
    pub draws: f64,
    /// The Gram's changed rows: the treatment's from the table of donor
    /// rows, and any products re-formed from the permuted treatment.
    pub row: f64,
    /// The Gram factored and solved, and the statistics.
    pub solve: f64,
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
                .map_init(
                    || self.scratch(),
                    |scratch, (b, block)| {
                        let first = start + (b * self.batch) as u64;
                        self.run(first, block, scratch, &mut |_| {})
                    },
                )
                .sum()
        });
        Ok(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shuffles are one `below` per swap in stream order, blocks one
    /// after another, including where words are rejected: a block of 3 *
    /// 2^20 units rejects a few hundred.
    #[test]
    fn donors_are_the_streams_fisher_yates_shuffles() {
        let n = 3 << 20;
        let blocks: Vec<Vec<u32>> = vec![(0..n).step_by(2).collect(), (1..n).step_by(2).collect()];
        let widest = blocks.iter().map(Vec::len).max().unwrap();
        let exchange = Exchange {
            unit_rows: vec![Vec::new(); n as usize],
            blocks,
            thresholds: (0..widest as u32)
                .map(|i| rejection_threshold(i + 1))
                .collect(),
        };
        let mut rejected = 0;
        for r in 0..2 {
            let mut s = WordStream::new(4, r, STREAM_PERMUTATION);
            let mut want: Vec<u32> = (0..n).collect();
            for block in &exchange.blocks {
                let mut shuffled = block.clone();
                for i in (1..shuffled.len()).rev() {
                    let n = i as u32 + 1;
                    let mut probe = s.clone();
                    rejected += ((probe.word() as u64 * n as u64) as u32)
                        .lt(&rejection_threshold(n)) as usize;
                    shuffled.swap(i, s.below(n) as usize);
                }
                for (&u, &d) in block.iter().zip(&shuffled) {
                    want[u as usize] = d;
                }
            }
            assert!(exchange.donors(4, r) == want, "replicate {r}");
        }
        assert!(rejected > 0);
    }
}
