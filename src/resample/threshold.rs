//! The bootstrap of the panel threshold model's F statistics (Hansen
//! 1999): the regressors and the threshold variable held fixed, each
//! replicate's outcome is the fitted values of the model with k - 1
//! thresholds plus resampled residuals of the model with k, and the whole
//! sequence of searches up to k is run again on it (`Grid::sequence`, the
//! very code of the estimate). Two schemes:
//!
//! - `Residual` (Hansen 1999): the residual vectors of whole units, drawn
//!   with replacement: replicate r's unit i takes unit j's residuals, j the
//!   i-th `below(units)` of the stream (seed, r, `STREAM_THRESHOLD`), period
//!   by period; it needs a balanced panel.
//! - `Wild`: each unit's residuals times its multiplier, the wild
//!   bootstrap's weights of replicate r with the units as clusters
//!   (`WeightPlan`, stream `STREAM_WEIGHTS`).
//!
//! The k tests share their replicates' draws. A replicate's cost is one
//! pass over the observations and the grid's small solves: the candidates'
//! regressor products are computed once (`Grid`).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::math::rng::{STREAM_THRESHOLD, WordStream, rejection_threshold};
use crate::math::stats::quantile_sorted;
use crate::model::threshold::{Grid, Prepared, ThresholdFit};
use crate::resample::aggregate::Progress;
use crate::resample::scheme::{Scheme, WeightPlan, WildWeights};

/// How a replicate's residuals are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ThresholdScheme {
    /// Hansen's (1999): whole units' residual vectors, with replacement.
    Residual,
    /// The fixed-regressor wild bootstrap with unit-level multipliers.
    Wild(WildWeights),
}

/// One F test's bootstrap: k thresholds against k - 1.
#[derive(Debug, Clone, PartialEq)]
pub struct FTest {
    pub thresholds: usize,
    pub f_stat: f64,
    /// The share of replicates whose F is at least the data's.
    pub p_value: f64,
    /// The replicates' 90, 95 and 99 % quantiles (type 7).
    pub critical: [f64; 3],
    pub replicates: usize,
}

/// What every replicate of the k-th test shares: the null model's fitted
/// values, the alternative's residuals, and the draws' layout.
pub struct Null<'a> {
    prepared: &'a Prepared,
    grid: &'a Grid,
    k: usize,
    fitted: Vec<f64>,
    resid: Vec<f64>,
    scheme: ThresholdScheme,
    seed: u64,
    /// Residual scheme: each unit's observation in each period.
    slots: Vec<Vec<usize>>,
}

impl<'a> Null<'a> {
    /// The k-th test (k = 1..=fit's steps) of `fit`.
    pub fn new(
        prepared: &'a Prepared,
        grid: &'a Grid,
        fit: &ThresholdFit,
        k: usize,
        scheme: ThresholdScheme,
        seed: u64,
    ) -> Result<Null<'a>> {
        let null: &[f64] = if k == 1 {
            &[]
        } else {
            &fit.steps[k - 2].thresholds
        };
        let (fitted, _) = prepared.fit(null)?;
        let (_, resid) = prepared.fit(&fit.steps[k - 1].thresholds)?;
        let sample = &prepared.sample;
        let mut slots = Vec::new();
        if scheme == ThresholdScheme::Residual {
            if !fit.balanced {
                return Err(Error::InvalidOption {
                    option: "threshold.bootstrap".into(),
                    message: format!(
                        "Hansen's residual bootstrap draws whole units' residual vectors, which \
                         needs a balanced panel, and {} units x {} periods have {} observations; \
                         use the wild bootstrap (threshold.bootstrap = \"wild\")",
                        fit.n_units, fit.n_periods, fit.n_obs
                    ),
                });
            }
            slots = vec![vec![0; sample.time.len()]; sample.unit.len()];
            for o in 0..sample.n_obs() {
                slots[sample.unit.codes[o] as usize][sample.time.codes[o] as usize] = o;
            }
        }
        Ok(Null {
            prepared,
            grid,
            k,
            fitted,
            resid,
            scheme,
            seed,
            slots,
        })
    }

    /// Replicate r's outcome.
    pub fn outcome(&self, r: u64) -> Vec<f64> {
        let mut y = self.fitted.clone();
        let units = self.prepared.sample.unit.len();
        match self.scheme {
            ThresholdScheme::Residual => {
                let mut s = WordStream::new(self.seed, r, STREAM_THRESHOLD);
                let n = units as u32;
                let threshold = rejection_threshold(n);
                for i in 0..units {
                    let j = s.below_with(n, threshold) as usize;
                    for (t, &o) in self.slots[i].iter().enumerate() {
                        y[o] += self.resid[self.slots[j][t]];
                    }
                }
            }
            ThresholdScheme::Wild(dist) => {
                let plan = WeightPlan::new(Scheme::Wild(dist), self.seed, units, None);
                let mut w = vec![0.0; units];
                plan.fill(r, &mut w);
                let codes = &self.prepared.sample.unit.codes;
                for (o, v) in y.iter_mut().enumerate() {
                    *v += w[codes[o] as usize] * self.resid[o];
                }
            }
        }
        y
    }

    /// Replicate r's F statistic of the k-th threshold.
    pub fn f_stat(&self, r: u64) -> f64 {
        let y = self.grid.outcome(self.prepared, &self.outcome(r));
        self.grid
            .sequence(&y, self.k)
            .map_or(f64::NAN, |s| s[self.k - 1].f_stat)
    }
}

/// Replicates between progress reports.
const CHUNK: usize = 4096;

/// The bootstrap of each F statistic of `fit` with `replicates` replicates
/// on `threads` threads (the results do not depend on them); `progress`
/// hears the replicates done over all tests, and its error stops the work.
#[allow(clippy::too_many_arguments)]
pub fn f_tests(
    prepared: &Prepared,
    grid: &Grid,
    fit: &ThresholdFit,
    scheme: ThresholdScheme,
    replicates: usize,
    seed: u64,
    threads: usize,
    progress: Progress,
) -> Result<Vec<FTest>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::Numerical(e.to_string()))?;
    let total = (replicates * fit.steps.len()) as u64;
    let mut done = 0u64;
    (1..=fit.steps.len())
        .map(|k| {
            let null = Null::new(prepared, grid, fit, k, scheme, seed)?;
            let mut fs: Vec<f64> = Vec::with_capacity(replicates);
            for start in (0..replicates).step_by(CHUNK) {
                let end = (start + CHUNK).min(replicates) as u64;
                let chunk: Vec<f64> = pool.install(|| {
                    (start as u64..end)
                        .into_par_iter()
                        .map(|r| null.f_stat(r))
                        .collect()
                });
                fs.extend(chunk);
                done += end - start as u64;
                progress(done, total)?;
            }
            let f_stat = fit.steps[k - 1].f_stat;
            let at_least = fs.iter().filter(|&&v| v >= f_stat).count();
            fs.sort_by(f64::total_cmp);
            Ok(FTest {
                thresholds: k,
                f_stat,
                p_value: at_least as f64 / replicates as f64,
                critical: [0.90, 0.95, 0.99].map(|p| quantile_sorted(&fs, p)),
                replicates,
            })
        })
        .collect()
}
