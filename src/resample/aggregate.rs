//! Aggregation of replicate statistics into what intervals and p-values need:
//! counts and moments (`Tally`, sd) and order statistics. Exact for any B:
//! while the draws fit in the memory budget every one is kept and the
//! ranks the intervals read are selected (or, asked for none, all sorted);
//! beyond it, a first pass counts and histograms the draws, the ranks each
//! interval reads are worked out, and a second pass replays the
//! deterministic replicates keeping only the draws in the histogram bins
//! that hold those ranks. Both paths tally in replicate order, so they give
//! the same bits.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::resample::engine::Engine;
use crate::resample::intervals::{Order, Tally, norm_inter_ranks};

/// A tracked quantity of each replicate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// Statistic `stat` of the replicate.
    Stat(usize),
    /// The studentized `(row[stat] - t0) / row[se]`.
    Student { stat: usize, se: usize, t0: f64 },
}

impl Source {
    #[inline]
    fn value(&self, row: &[f64]) -> f64 {
        match *self {
            Source::Stat(s) => row[s],
            Source::Student { stat, se, t0 } => (row[stat] - t0) / row[se],
        }
    }
}

/// Order statistics owned by a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    Sorted(Vec<f64>),
    Ranks(BTreeMap<usize, f64>),
}

/// The aggregate of one tracked quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub tally: Tally,
    pub sd: f64,
    pub ordered: Ordered,
}

impl Column {
    /// Borrow the order statistics.
    pub fn order(&self) -> Order<'_> {
        match &self.ordered {
            Ordered::Sorted(s) => Order::Sorted(s),
            Ordered::Ranks(r) => Order::Ranks(r),
        }
    }
}

/// Told how many replicate computations are done, of how many; an error
/// it returns stops the work between two chunks and is the run's error (a
/// caller's interruption: [`crate::Error::Interrupted`]).
pub type Progress<'a> = &'a dyn Fn(u64, u64) -> Result<()>;

/// Replicates whose range sets the streaming path's histogram range (a
/// constant, so the bins do not depend on the engine).
const PILOT: usize = 1 << 16;
/// Histogram bins of the streaming path (plus one under- and one overflow bin).
const BINS: usize = 1 << 14;

/// The 1-based ranks source i's intervals read among its `tally.n` finite
/// draws, increasing, each once.
fn needed_ranks(alphas: &dyn Fn(usize, &Tally) -> Vec<f64>, i: usize, tally: &Tally) -> Vec<usize> {
    let n = tally.n;
    let mut ranks: Vec<usize> = alphas(i, tally)
        .into_iter()
        .flat_map(|a| norm_inter_ranks(n, a))
        .filter(|&r| r >= 1 && r <= n)
        .collect();
    ranks.sort_unstable();
    ranks.dedup();
    ranks
}

/// Run replicates `0..count` of `engine` in chunks, handing each row to `f`;
/// returns the number of degenerate replicates.
fn each_row(
    engine: &dyn Engine,
    count: u64,
    done: u64,
    total: u64,
    progress: Progress,
    mut f: impl FnMut(&[f64]),
) -> Result<u64> {
    let n_stats = engine.layout().len();
    let chunk = engine.chunk().max(1);
    let mut buf = vec![0.0; chunk.min(count as usize).max(1) * n_stats];
    let mut failed = 0;
    let mut start = 0u64;
    while start < count {
        let n = ((count - start) as usize).min(chunk);
        let out = &mut buf[..n * n_stats];
        failed += engine.compute(start, out)?;
        out.chunks(n_stats).for_each(&mut f);
        start += n as u64;
        progress(done + start, total)?;
    }
    Ok(failed)
}

/// Aggregate `sources` over replicates `0..count`. `t0s[i]` is source i's
/// point estimate (for its tally); `alphas(i, tally)` the quantile levels
/// source i's intervals read. Keeps everything while `8 * count *
/// sources.len()` bytes fit in `budget`, else streams in two passes.
/// `tap` sees every replicate's statistics once, in replicate order (so a
/// caller can keep some without computing them again).
#[allow(clippy::too_many_arguments)]
pub fn aggregate(
    engine: &dyn Engine,
    count: u64,
    sources: &[Source],
    t0s: &[f64],
    alphas: &dyn Fn(usize, &Tally) -> Vec<f64>,
    budget: u64,
    progress: Progress,
    tap: &mut dyn FnMut(&[f64]),
) -> Result<(Vec<Column>, u64)> {
    let k = sources.len();
    if count.saturating_mul(k as u64).saturating_mul(8) <= budget {
        let mut values = vec![Vec::with_capacity(count as usize); k];
        let failed = each_row(engine, count, 0, count, progress, |row| {
            tap(row);
            for (v, s) in values.iter_mut().zip(sources) {
                v.push(s.value(row));
            }
        })?;
        // Each column is tallied in replicate order, then sorted where it
        // lies: no second copy of the draws (at B = 1e6 that copy was the
        // larger part of a run's memory).
        let columns = values
            .into_iter()
            .zip(t0s)
            .enumerate()
            .map(|(i, (mut v, &t0))| {
                let (tally, sd) = Tally::over(t0, &v);
                v.retain(|x| x.is_finite());
                let ranks = needed_ranks(alphas, i, &tally);
                let ordered = match ranks.is_empty() {
                    // Every draw, sorted (the jackknife's, whose
                    // acceleration reads them all).
                    true => {
                        v.sort_unstable_by(f64::total_cmp);
                        Ordered::Sorted(v)
                    }
                    // The ranks the intervals read, each found by selection
                    // in the part of the draws above the rank before it:
                    // O(B) a rank where sorting was O(B log B).
                    false => {
                        let mut found = BTreeMap::new();
                        let mut from = 0;
                        for rank in ranks {
                            let (_, &mut x, _) =
                                v[from..].select_nth_unstable_by(rank - 1 - from, f64::total_cmp);
                            found.insert(rank, x);
                            from = rank;
                        }
                        Ordered::Ranks(found)
                    }
                };
                Column { tally, sd, ordered }
            })
            .collect();
        return Ok((columns, failed));
    }

    // Pass 1: tallies, and histograms over a range set by the first chunk.
    let total = 2 * count;
    let mut tallies: Vec<Tally> = t0s.iter().map(|&t0| Tally::new(t0)).collect();
    let mut ranges: Vec<Option<(f64, f64)>> = vec![None; k];
    let mut hist = vec![vec![0u64; BINS + 2]; k];
    let mut pilot: Vec<Vec<f64>> = vec![Vec::new(); k];
    let mut seen = 0usize;
    let bin = |x: f64, (lo, hi): (f64, f64)| -> usize {
        if x < lo {
            0
        } else if x >= hi {
            BINS + 1
        } else {
            1 + (((x - lo) / (hi - lo) * BINS as f64) as usize).min(BINS - 1)
        }
    };
    let failed = each_row(engine, count, 0, total, progress, |row| {
        tap(row);
        for i in 0..k {
            let x = sources[i].value(row);
            tallies[i].add(x);
            if !x.is_finite() {
                continue;
            }
            match ranges[i] {
                Some(r) => hist[i][bin(x, r)] += 1,
                None => pilot[i].push(x),
            }
        }
        seen += 1;
        if seen == PILOT.min(count as usize) {
            // The pilot sets each range: its span, widened by half on each side.
            for i in 0..k {
                let lo = pilot[i].iter().copied().fold(f64::INFINITY, f64::min);
                let hi = pilot[i].iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let pad = if hi > lo {
                    0.5 * (hi - lo)
                } else {
                    lo.abs().max(1.0)
                };
                let r = if lo.is_finite() {
                    (lo - pad, hi + pad)
                } else {
                    (-1.0, 1.0)
                };
                ranges[i] = Some(r);
                for &x in &pilot[i] {
                    hist[i][bin(x, r)] += 1;
                }
                pilot[i] = Vec::new();
            }
        }
    })?;

    // The ranks each source needs, and the bins that hold them.
    let mut wanted: Vec<Vec<(usize, usize, u64)>> = Vec::with_capacity(k); // (rank, bin, ranks before the bin)
    for i in 0..k {
        let mut list = Vec::new();
        let mut cum = 0u64;
        let mut b = 0;
        for rank in needed_ranks(alphas, i, &tallies[i]) {
            while cum + hist[i][b] < rank as u64 {
                cum += hist[i][b];
                b += 1;
            }
            list.push((rank, b, cum));
        }
        wanted.push(list);
    }

    // Pass 2: replay, for the spread and the draws in the wanted bins.
    let means: Vec<f64> = tallies.iter().map(Tally::mean).collect();
    let mut ss = vec![0.0; k];
    let mut kept: Vec<BTreeMap<usize, Vec<f64>>> = wanted
        .iter()
        .map(|w| w.iter().map(|&(_, b, _)| (b, Vec::new())).collect())
        .collect();
    each_row(engine, count, count, total, progress, |row| {
        for i in 0..k {
            let x = sources[i].value(row);
            if !x.is_finite() {
                continue;
            }
            ss[i] += (x - means[i]) * (x - means[i]);
            if let Some(r) = ranges[i] {
                if let Some(v) = kept[i].get_mut(&bin(x, r)) {
                    v.push(x);
                }
            }
        }
    })?;
    let columns = (0..k)
        .map(|i| {
            for v in kept[i].values_mut() {
                v.sort_unstable_by(f64::total_cmp);
            }
            let ranks = wanted[i]
                .iter()
                .map(|&(rank, b, before)| (rank, kept[i][&b][(rank as u64 - before - 1) as usize]))
                .collect();
            Column {
                tally: tallies[i],
                sd: (ss[i] / (tallies[i].n as f64 - 1.0)).sqrt(),
                ordered: Ordered::Ranks(ranks),
            }
        })
        .collect();
    Ok((columns, failed))
}
