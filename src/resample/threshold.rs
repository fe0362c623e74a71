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
use crate::model::threshold::{Grid, Outcome, Prepared, ThresholdFit};
use crate::resample::aggregate::Progress;
use crate::resample::engine::Backend;
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

    /// Replicate r's draw: the wild multipliers of the units, or the
    /// residual bootstrap's residuals of every observation (unit i's, in
    /// each period, those of the unit j_i it drew).
    pub fn draw(&self, r: u64) -> Vec<f64> {
        let units = self.units();
        match self.scheme {
            ThresholdScheme::Residual => {
                let mut e = vec![0.0; self.resid.len()];
                let mut s = WordStream::new(self.seed, r, STREAM_THRESHOLD);
                let n = units as u32;
                let threshold = rejection_threshold(n);
                for i in 0..units {
                    let j = s.below_with(n, threshold) as usize;
                    for (t, &o) in self.slots[i].iter().enumerate() {
                        e[o] = self.resid[self.slots[j][t]];
                    }
                }
                e
            }
            ThresholdScheme::Wild(dist) => {
                let plan = WeightPlan::new(Scheme::Wild(dist), self.seed, units, None);
                let mut w = vec![0.0; units];
                plan.fill(r, &mut w);
                w
            }
        }
    }

    /// Replicate r's outcome: the null's fitted values plus its residual
    /// draw.
    pub fn outcome(&self, r: u64) -> Vec<f64> {
        let draw = self.draw(r);
        let codes = &self.prepared.sample.unit.codes;
        self.fitted
            .iter()
            .enumerate()
            .map(|(o, f)| match self.scheme {
                ThresholdScheme::Residual => f + draw[o],
                ThresholdScheme::Wild(_) => f + draw[codes[o] as usize] * self.resid[o],
            })
            .collect()
    }

    /// The test: k thresholds against k - 1.
    pub fn k(&self) -> usize {
        self.k
    }

    /// How the replicates' residuals are drawn.
    pub fn scheme(&self) -> ThresholdScheme {
        self.scheme
    }

    /// The seed of the replicates' streams.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The grid the replicates search.
    pub fn grid(&self) -> &Grid {
        self.grid
    }

    /// Units of the panel.
    pub fn units(&self) -> usize {
        self.prepared.sample.unit.len()
    }

    /// The residuals of the model with k thresholds, which the replicates
    /// resample.
    pub fn residuals(&self) -> &[f64] {
        &self.resid
    }

    /// Residual scheme: each unit's observation in each period (units x
    /// periods); empty for the wild scheme.
    pub fn slots(&self) -> &[Vec<usize>] {
        &self.slots
    }

    /// The replicates' searches as products of their draws with a matrix
    /// (see [`LinearForm`]), in f64.
    pub fn linear_form(&self) -> LinearForm {
        let grid = self.grid;
        let (g, m, k) = (grid.candidates(), grid.regressors(), grid.base_columns());
        let gm = g * m;
        let cols = grid.residualised_columns(self.prepared);
        let w = gm + k;
        // M_W f = f - Z' (Z f): the fitted values' part of the
        // threshold-free residuals.
        let mut zf = vec![0.0; k];
        for (row, f) in cols.chunks(w).zip(&self.fitted) {
            for (c, z) in row[gm..].iter().enumerate() {
                zf[c] += z * f;
            }
        }
        let mut r_fitted = vec![0.0; gm];
        let mut ssr_fitted = 0.0;
        // Each observation's row of the products: its columns, then M_W f.
        let width = w + 1;
        let mut rows = vec![0.0; cols.len() / w * width];
        for ((row, out), f) in cols.chunks(w).zip(rows.chunks_mut(width)).zip(&self.fitted) {
            let mf = f - row[gm..].iter().zip(&zf).map(|(z, v)| z * v).sum::<f64>();
            for (r, c) in r_fitted.iter_mut().zip(&row[..gm]) {
                *r += c * f;
            }
            ssr_fitted += mf * mf;
            out[..w].copy_from_slice(row);
            out[w] = mf;
        }
        let (matrix, row_scale) = match self.scheme {
            // A unit's block: its residuals times its rows; the weight's
            // square multiplies its residuals' sum of squares.
            ThresholdScheme::Wild(_) => {
                let units = self.units();
                let codes = &self.prepared.sample.unit.codes;
                let mut blocks = vec![0.0; units * width];
                let mut e2 = vec![0.0; units];
                for (o, row) in rows.chunks(width).enumerate() {
                    let i = codes[o] as usize;
                    let e = self.resid[o];
                    for (b, c) in blocks[i * width..(i + 1) * width].iter_mut().zip(row) {
                        *b += c * e;
                    }
                    e2[i] += e * e;
                }
                (blocks, e2)
            }
            ThresholdScheme::Residual => {
                let n = self.fitted.len();
                (rows, vec![1.0; n])
            }
        };
        LinearForm {
            gm,
            k,
            r_fitted,
            ssr_fitted,
            matrix,
            row_scale,
        }
    }

    /// Replicate r's products on the CPU, `sum_h v_h M_h` and `sum_h v_h^2
    /// s_h` of its draw v ([`Null::draw`]): what the GPU's GEMM computes.
    pub fn products(&self, form: &LinearForm, r: u64) -> (Vec<f64>, f64) {
        let width = form.width();
        let mut lin = vec![0.0; width];
        let mut quad = 0.0;
        let draw = self.draw(r);
        for ((v, row), s) in draw
            .iter()
            .zip(form.matrix.chunks(width))
            .zip(&form.row_scale)
        {
            for (l, x) in lin.iter_mut().zip(row) {
                *l += v * x;
            }
            quad += v * v * s;
        }
        (lin, quad)
    }

    /// The F statistic of a replicate whose products are `lin` and whose
    /// residual draw's sum of squares is `quad`: the same searches as
    /// [`Null::f_stat`], their outcome put together from the products.
    pub fn f_stat_from(&self, form: &LinearForm, lin: &[f64], quad: f64) -> f64 {
        let (gm, k) = (form.gm, form.k);
        let r: Vec<f64> = form.r_fitted.iter().zip(lin).map(|(f, l)| f + l).collect();
        let zz: f64 = lin[gm..gm + k].iter().map(|v| v * v).sum();
        let ssr = form.ssr_fitted + 2.0 * lin[gm + k] + quad - zz;
        let y = Outcome::new(r, ssr);
        self.grid
            .sequence(&y, self.k)
            .map_or(f64::NAN, |s| s[self.k - 1].f_stat)
    }

    /// Replicate r's F statistic of the k-th threshold.
    pub fn f_stat(&self, r: u64) -> f64 {
        let y = self.grid.outcome(self.prepared, &self.outcome(r));
        self.grid
            .sequence(&y, self.k)
            .map_or(f64::NAN, |s| s[self.k - 1].f_stat)
    }
}

/// A replicate's outcome is the null's fitted values f plus a residual
/// draw e*, and everything its searches need is linear in e* but for one
/// sum of squares: with the grid's residualised columns (`M_W d_a(g)`, `Z
/// = L^{-1} W'`) and `M_W f`, a replicate's products `p = [M_W d_a(g) .
/// e*; Z e*; M_W f . e*]` give `r_a(g) = r_f + p` and the threshold-free
/// SSR `|M_W f|^2 + 2 p_last + e*'e* - |Z e*|^2`. The products are a row
/// of a GEMM, `sum_h v_h M_h`, and `e*'e* = sum_h v_h^2 s_h`: for the wild
/// bootstrap v the unit multipliers, M_i the unit's residuals times its
/// rows (the per-unit score blocks of every candidate), s_i its residuals'
/// sum of squares; for the residual bootstrap v the drawn residuals
/// themselves, M_o the observation's row, s_o = 1. The GPU engine computes
/// them so.
#[derive(Debug, Clone)]
pub struct LinearForm {
    /// Candidates x regressors.
    pub gm: usize,
    /// Base columns.
    pub k: usize,
    /// `r_a(g)` of the fitted values.
    pub r_fitted: Vec<f64>,
    /// `|M_W f|^2`.
    pub ssr_fitted: f64,
    /// The GEMM's matrix, one row (of `width()`) per unit (wild) or
    /// observation (residual).
    pub matrix: Vec<f64>,
    /// Each row's s_h.
    pub row_scale: Vec<f64>,
}

impl LinearForm {
    /// A replicate's products: g m + k + 1.
    pub fn width(&self) -> usize {
        self.gm + self.k + 1
    }
}

/// What computes the F statistics of a test's replicates: the CPU
/// ([`Null`], the reference) or the GPU (`crate::gpu::threshold`), replicate
/// r's the same on both.
pub trait ThresholdEngine: Sync {
    /// Where the replicates are computed.
    fn backend(&self) -> Backend;
    /// Replicates per call the driver should ask for.
    fn chunk(&self) -> usize {
        CHUNK
    }
    /// The F statistics of replicates `start ..` into `out` (NaN where a
    /// replicate's searches find no allowed candidate).
    fn compute(&self, start: u64, out: &mut [f64]) -> Result<()>;
}

/// The CPU engine: a test's replicates on a thread pool.
pub struct CpuThreshold<'n, 'a> {
    pub null: &'n Null<'a>,
    pub pool: &'n rayon::ThreadPool,
}

impl ThresholdEngine for CpuThreshold<'_, '_> {
    fn backend(&self) -> Backend {
        Backend::cpu()
    }

    fn compute(&self, start: u64, out: &mut [f64]) -> Result<()> {
        self.pool.install(|| {
            out.par_iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = self.null.f_stat(start + i as u64))
        });
        Ok(())
    }
}

/// Replicates between progress reports.
const CHUNK: usize = 4096;

/// The bootstrap of one F statistic `f_stat` (the k-th test) from
/// `engine`'s replicates `0 .. replicates`; `progress` hears `done` plus the
/// replicates done, of `total`.
pub fn f_test(
    engine: &dyn ThresholdEngine,
    k: usize,
    f_stat: f64,
    replicates: usize,
    done: u64,
    total: u64,
    progress: Progress,
) -> Result<FTest> {
    let mut fs = vec![0.0; replicates];
    let chunk = engine.chunk().max(1);
    for start in (0..replicates).step_by(chunk) {
        let end = (start + chunk).min(replicates);
        engine.compute(start as u64, &mut fs[start..end])?;
        progress(done + end as u64, total)?;
    }
    let at_least = fs.iter().filter(|&&v| v >= f_stat).count();
    fs.sort_by(f64::total_cmp);
    Ok(FTest {
        thresholds: k,
        f_stat,
        p_value: at_least as f64 / replicates as f64,
        critical: [0.90, 0.95, 0.99].map(|p| quantile_sorted(&fs, p)),
        replicates,
    })
}

/// The bootstrap of each F statistic of `fit` with `replicates` replicates
/// on the CPU, `threads` threads (the results do not depend on them);
/// `progress` hears the replicates done over all tests, and its error stops
/// the work.
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
    (1..=fit.steps.len())
        .map(|k| {
            let null = Null::new(prepared, grid, fit, k, scheme, seed)?;
            let done = (replicates * (k - 1)) as u64;
            let engine = CpuThreshold {
                null: &null,
                pool: &pool,
            };
            f_test(
                &engine,
                k,
                fit.steps[k - 1].f_stat,
                replicates,
                done,
                total,
                progress,
            )
        })
        .collect()
}
