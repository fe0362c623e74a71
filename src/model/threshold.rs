//! The fixed-effects panel threshold model (Hansen 1999): the outcome's
//! slope on the regime-dependent regressors changes where the threshold
//! variable q passes one, two or three thresholds, which are estimated
//! sequentially by least squares over a grid of candidates, with the F
//! statistic of each added threshold, the likelihood-ratio curve and its
//! confidence set (Hansen 2000), and the regime coefficients with CR1 SEs.
//!
//! Every candidate's sum of squared residuals comes from the threshold-free
//! model's factor by a bordered update: with W the absorbed columns (the
//! regressors, controls, period dummies and the thresholds already found)
//! and d(g) = x 1(q <= g), only `d'W`, `d'y` and `d'd` (less the unit
//! means' part) change with g, and they are sums over the observations
//! below g: one pass over the observations sorted by q gives every
//! candidate's. Nothing here resamples (the bootstrap of the F statistics
//! is `resample::threshold`).

use crate::error::{Error, Result};
use crate::math::linalg::{chol_solve, cholesky};
use crate::math::stats::t_p_value;
use crate::model::design::{FixedEffectDim, cr1_parameters, demean_within};
use crate::model::panel::{Factor, Sample};
use crate::model::spec::FixedEffects;

/// What the threshold model is asked to estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdSpec {
    pub unit: String,
    pub time: String,
    pub cluster: String,
    pub outcome: String,
    /// The regressors whose slope changes between regimes.
    pub regressors: Vec<String>,
    /// The threshold variable q (may be one of the regressors).
    pub threshold: String,
    pub controls: Vec<String>,
    /// Unit (Hansen 1999) or unit and period effects.
    pub fixed_effects: FixedEffects,
    /// Thresholds estimated and tested in turn: 1 to 3.
    pub max_thresholds: usize,
    /// Candidate thresholds: order statistics of q at this many evenly
    /// spaced quantile levels from `trim` to 1 - `trim`.
    pub grid: usize,
    pub trim: f64,
    /// Fewest observations a regime may have [default: `trim` of them].
    pub min_regime: Option<usize>,
    /// Level of the thresholds' likelihood-ratio confidence sets.
    pub level: f64,
}

impl ThresholdSpec {
    /// The defaults of `[threshold]`: 300 candidates, 1 % trimmed at each
    /// end (and so at least 1 % of the observations in every regime), one
    /// threshold, 95 % confidence sets.
    pub fn new(
        unit: &str,
        time: &str,
        outcome: &str,
        regressors: &[&str],
        threshold: &str,
    ) -> ThresholdSpec {
        ThresholdSpec {
            unit: unit.into(),
            time: time.into(),
            cluster: unit.into(),
            outcome: outcome.into(),
            regressors: regressors.iter().map(|s| s.to_string()).collect(),
            threshold: threshold.into(),
            controls: Vec::new(),
            fixed_effects: FixedEffects::Unit,
            max_thresholds: 1,
            grid: 300,
            trim: 0.01,
            min_regime: None,
            level: 0.95,
        }
    }

    /// Refuse what the model cannot be: each message names its key.
    pub fn validate(&self) -> Result<()> {
        let bad = |option: &str, message: String| {
            Err(Error::InvalidOption {
                option: format!("threshold.{option}"),
                message,
            })
        };
        if !matches!(
            self.fixed_effects,
            FixedEffects::Unit | FixedEffects::UnitTime
        ) {
            return bad(
                "fixed_effects",
                format!(
                    "the threshold model absorbs unit effects (Hansen 1999): 'unit' or \
                     'unit+time', not '{}'",
                    self.fixed_effects.as_str()
                ),
            );
        }
        if !(1..=3).contains(&self.max_thresholds) {
            return bad(
                "thresholds",
                format!("1, 2 or 3 thresholds, not {}", self.max_thresholds),
            );
        }
        if self.grid < 2 {
            return bad(
                "grid",
                format!("at least 2 candidate thresholds, not {}", self.grid),
            );
        }
        if !(0.0..0.5).contains(&self.trim) {
            return bad(
                "trim",
                format!(
                    "a fraction of the observations trimmed at each end, at least 0 and \
                     below 0.5, not {}",
                    self.trim
                ),
            );
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return bad(
                "level",
                format!("a confidence level between 0 and 1, not {}", self.level),
            );
        }
        if self.regressors.is_empty() {
            return bad(
                "regressors",
                "name the regressor(s) whose slope changes between regimes".into(),
            );
        }
        let mut seen: Vec<&str> = vec![&self.outcome];
        for (key, name) in self
            .regressors
            .iter()
            .map(|r| ("regressors", r))
            .chain(self.controls.iter().map(|c| ("controls", c)))
        {
            if seen.contains(&name.as_str()) {
                return bad(
                    key,
                    format!("'{name}' is named twice among the outcome, regressors and controls"),
                );
            }
            seen.push(name);
        }
        if self.threshold == self.outcome {
            return bad(
                "variable",
                format!("the threshold variable '{}' is the outcome", self.threshold),
            );
        }
        Ok(())
    }
}

/// The sample, absorbed, ready for every search.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sample: Sample,
    fe: FixedEffects,
    /// Regime-dependent regressors, raw (m columns).
    x: Vec<Vec<f64>>,
    q: Vec<f64>,
    /// Absorbed: the regressors, controls, then T - 1 period dummies
    /// (with period effects).
    base: Vec<Vec<f64>>,
    /// The absorbed outcome.
    y: Vec<f64>,
    /// Observations sorted by q (ties by position).
    order: Vec<usize>,
    /// q sorted.
    sorted_q: Vec<f64>,
    /// Observations of each unit.
    unit_n: Vec<f64>,
    n_dummies: usize,
    /// The candidate thresholds, ascending and distinct.
    pub candidates: Vec<f64>,
    pub min_regime: usize,
    spec: ThresholdSpec,
}

impl Prepared {
    /// Read and absorb the sample of `spec` from `table`.
    pub fn new(table: &crate::data::table::Table, spec: &ThresholdSpec) -> Result<Prepared> {
        spec.validate()?;
        let m = spec.regressors.len();
        // q may be a regressor or a control (its level in the model beside
        // the regimes); else it is read on its own, after the regressors.
        let q_in_x = spec.regressors.iter().position(|r| *r == spec.threshold);
        let q_in_z = spec.controls.iter().position(|c| *c == spec.threshold);
        let q_alone = q_in_x.is_none() && q_in_z.is_none();
        let mut numeric: Vec<(&str, &str)> =
            vec![(&spec.outcome, "the outcome (threshold.outcome)")];
        for r in &spec.regressors {
            numeric.push((r, "a regime-dependent regressor (threshold.regressors)"));
        }
        if q_alone {
            numeric.push((
                &spec.threshold,
                "the threshold variable (threshold.variable)",
            ));
        }
        for c in &spec.controls {
            numeric.push((c, "a control (threshold.controls)"));
        }
        let sample = Sample::read(
            table,
            [
                (&spec.unit, "the unit (data.unit)"),
                (&spec.time, "the time period (data.time)"),
                (&spec.cluster, "the cluster variable (threshold.cluster)"),
            ],
            &numeric,
            spec.fixed_effects,
        )?;
        let n = sample.n_obs();
        let x: Vec<Vec<f64>> = sample.columns[1..1 + m].to_vec();
        let z_start = 1 + m + usize::from(q_alone);
        let q = match (q_in_x, q_in_z) {
            (Some(j), _) => x[j].clone(),
            (None, Some(c)) => sample.columns[z_start + c].clone(),
            (None, None) => sample.columns[1 + m].clone(),
        };
        let absorb = |v: &[f64]| demean_within(v, &sample.unit);
        let mut base: Vec<Vec<f64>> = x.iter().map(|c| absorb(c)).collect();
        base.extend(sample.columns[z_start..].iter().map(|c| absorb(c)));
        let mut n_dummies = 0;
        if spec.fixed_effects.has_time() {
            for t in 1..sample.time.len() as u32 {
                let d: Vec<f64> = sample
                    .time
                    .codes
                    .iter()
                    .map(|&c| f64::from(u8::from(c == t)))
                    .collect();
                base.push(absorb(&d));
                n_dummies += 1;
            }
        }
        let y = absorb(&sample.columns[0]);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| q[a].total_cmp(&q[b]).then(a.cmp(&b)));
        let sorted_q: Vec<f64> = order.iter().map(|&o| q[o]).collect();
        let mut unit_n = vec![0.0; sample.unit.len()];
        for &c in &sample.unit.codes {
            unit_n[c as usize] += 1.0;
        }
        let candidates = candidates(&sorted_q, spec.grid, spec.trim);
        let min_regime = spec
            .min_regime
            .unwrap_or(((spec.trim * n as f64).ceil() as usize).max(1));
        let prepared = Prepared {
            sample,
            fe: spec.fixed_effects,
            x,
            q,
            base,
            y,
            order,
            sorted_q,
            unit_n,
            n_dummies,
            candidates,
            min_regime,
            spec: spec.clone(),
        };
        if prepared.candidates.len() < 2 {
            return Err(Error::TooLittleData {
                file: prepared.sample.source.clone(),
                message: format!(
                    "the threshold variable '{}' takes {} distinct value(s) between its {} and \
                     {} quantiles: no thresholds to search",
                    spec.threshold,
                    prepared.candidates.len(),
                    spec.trim,
                    1.0 - spec.trim
                ),
            });
        }
        Ok(prepared)
    }

    /// Observations less units: the residual degrees of freedom of
    /// Hansen's (1999) variance estimate, n (T - 1) in a balanced panel.
    pub fn df(&self) -> f64 {
        (self.sample.n_obs() - self.sample.unit.len()) as f64
    }

    /// The absorbed outcome.
    pub fn outcome(&self) -> &[f64] {
        &self.y
    }

    /// Fitted values (absorbed) and residuals of the model with
    /// thresholds `ts`, for the bootstraps.
    pub fn fit(&self, ts: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        self.fit_outcome(&self.y, ts)
    }

    /// [`Prepared::fit`] of another absorbed outcome `y`, refitted from its
    /// columns: what a refit per candidate does (`medsim bench`'s baseline).
    pub fn fit_outcome(&self, y: &[f64], ts: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        let mut w = self.base.clone();
        for &t in ts {
            for xj in &self.x {
                let d: Vec<f64> = xj
                    .iter()
                    .zip(&self.q)
                    .map(|(&v, &qv)| if qv <= t { v } else { 0.0 })
                    .collect();
                w.push(demean_within(&d, &self.sample.unit));
            }
        }
        let (l, k) = factor(&w)?;
        let mut beta: Vec<f64> = w.iter().map(|c| dot(c, y)).collect();
        chol_solve(&l, k, &mut beta);
        let fitted: Vec<f64> = (0..y.len())
            .map(|o| (0..k).map(|c| w[c][o] * beta[c]).sum())
            .collect();
        let resid = y.iter().zip(&fitted).map(|(y, f)| y - f).collect();
        Ok((fitted, resid))
    }
}

/// The candidates: order statistics of q (sorted) at `grid` evenly spaced
/// levels from `trim` to 1 - `trim` (the nearest, (n - 1) p rounded),
/// repeats removed.
fn candidates(sorted_q: &[f64], grid: usize, trim: f64) -> Vec<f64> {
    let n = sorted_q.len();
    if n == 0 {
        return Vec::new();
    }
    let mut out: Vec<f64> = (0..grid)
        .map(|g| {
            let p = trim + (1.0 - 2.0 * trim) * g as f64 / (grid - 1) as f64;
            sorted_q[((n - 1) as f64 * p).round() as usize]
        })
        .collect();
    out.dedup();
    out
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The Cholesky factor of the columns' Gram, or an error naming the
/// collinearity.
fn factor(w: &[Vec<f64>]) -> Result<(Vec<f64>, usize)> {
    let k = w.len();
    let mut a = vec![0.0; k * k];
    for i in 0..k {
        for j in 0..=i {
            let v = dot(&w[i], &w[j]);
            a[i * k + j] = v;
            a[j * k + i] = v;
        }
    }
    let diag: Vec<f64> = (0..k).map(|i| a[i * k + i]).collect();
    cholesky(&mut a, k).map_err(collinear)?;
    for (j, d) in diag.iter().enumerate() {
        if a[j * k + j] * a[j * k + j] <= 1e-12 * d {
            return Err(collinear(j));
        }
    }
    Ok((a, k))
}

fn collinear(j: usize) -> Error {
    Error::Numerical(format!(
        "the threshold model's column {} is collinear with those before it (the regressors, \
         controls, period dummies and thresholds, after the unit effects)",
        j + 1
    ))
}

/// Solve L x = b in place.
fn forward(l: &[f64], k: usize, b: &mut [f64]) {
    for i in 0..k {
        let mut s = b[i];
        for j in 0..i {
            s -= l[i * k + j] * b[j];
        }
        b[i] = s / l[i * k + i];
    }
}

/// Everything about the candidates that does not involve the outcome, so
/// that any outcome's (the data's, a bootstrap replicate's) searches cost
/// O(observations + candidates) and small solves: with W the absorbed base
/// columns (factor L) and d_a(g) = x_a 1(q <= c_g), the products
/// `L^{-1} W'd_a(g)` and `d_a(g)' M_W d_b(h)` for every pair of candidates.
/// `d'W` and `d'd` are sums over the observations below a candidate (one
/// pass in q's order); the unit means' part of `d'd` is a product of the
/// units' running sums.
#[derive(Debug, Clone)]
pub struct Grid {
    k: usize,
    m: usize,
    l: Vec<f64>,
    /// Candidates.
    g: usize,
    /// `L^{-1} W'd_a(g)`: g x m x k.
    u: Vec<f64>,
    /// `d_a(g)' M_W d_b(h)`: (g m) x (g m), row (g, a), column (h, b).
    dd: Vec<f64>,
    /// `sum x_a^2 1(q <= c_g)`, the scale of a pivot: g x m.
    scale: Vec<f64>,
    /// Each observation's first candidate at or above its q (g if none).
    bin: Vec<u32>,
    /// Observations with q <= c_g.
    below: Vec<usize>,
    n_obs: usize,
    min_regime: usize,
    df: f64,
    /// `residualised_columns`, computed once for every test that asks.
    residualised: std::sync::OnceLock<Vec<f64>>,
}

/// An outcome's part of the searches: `u_y = L^{-1} W'y`, the SSR of the
/// threshold-free model, and `r_a(g) = d_a(g)'y - u_a(g)'u_y`.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ssr_linear: f64,
    r: Vec<f64>,
}

impl Outcome {
    /// An outcome from its parts: `r` (g m, candidate-major) and the
    /// threshold-free SSR (a bootstrap replicate's, put together from its
    /// products: `resample::threshold::LinearForm`).
    pub fn new(r: Vec<f64>, ssr_linear: f64) -> Outcome {
        Outcome { ssr_linear, r }
    }
}

/// One threshold's search in candidate indices: the thresholds held fixed,
/// the best candidate (least SSR, the first on a tie) and every allowed
/// candidate's SSR.
#[derive(Debug, Clone)]
pub struct IndexSearch {
    pub fixed: Vec<usize>,
    pub best: usize,
    pub ssr: f64,
    pub curve: Vec<Option<f64>>,
}

/// The k-th model of the sequence in candidate indices.
#[derive(Debug, Clone)]
pub struct IndexStep {
    pub thresholds: Vec<usize>,
    pub searches: Vec<IndexSearch>,
    pub ssr_before: f64,
    pub ssr: f64,
    pub f_stat: f64,
}

impl Grid {
    pub fn new(p: &Prepared) -> Result<Grid> {
        let (m, g, n) = (p.x.len(), p.candidates.len(), p.sample.n_obs());
        let (l, k) = factor(&p.base)?;
        let units = p.unit_n.len();
        // Running sums at each candidate, in q's order.
        let mut g_w = vec![0.0; g * m * k];
        let mut xx = vec![0.0; g * m * m];
        let mut sums = vec![0.0; g * units * m];
        let mut run_w = vec![0.0; m * k];
        let mut run_xx = vec![0.0; m * m];
        let mut run_s = vec![0.0; units * m];
        let mut bin = vec![g as u32; n];
        let mut below = vec![0; g];
        let mut next = 0;
        for (c, &cand) in p.candidates.iter().enumerate() {
            while next < n && p.sorted_q[next] <= cand {
                let o = p.order[next];
                bin[o] = c as u32;
                let i = p.sample.unit.codes[o] as usize;
                for a in 0..m {
                    let xa = p.x[a][o];
                    for (col, wc) in p.base.iter().enumerate() {
                        run_w[a * k + col] += xa * wc[o];
                    }
                    for b in 0..m {
                        run_xx[a * m + b] += xa * p.x[b][o];
                    }
                    run_s[i * m + a] += xa;
                }
                next += 1;
            }
            below[c] = next;
            g_w[c * m * k..(c + 1) * m * k].copy_from_slice(&run_w);
            xx[c * m * m..(c + 1) * m * m].copy_from_slice(&run_xx);
            sums[c * units * m..(c + 1) * units * m].copy_from_slice(&run_s);
        }
        let mut u = g_w;
        for row in u.chunks_mut(k) {
            forward(&l, k, row);
        }
        let gm = g * m;
        let mut dd = vec![0.0; gm * gm];
        for c in 0..g {
            for h in c..g {
                for a in 0..m {
                    for b in 0..m {
                        // Observations below both candidates: below c.
                        let mut v = xx[c * m * m + a * m + b];
                        let (sc, sh) = (&sums[c * units * m..], &sums[h * units * m..]);
                        for i in 0..units {
                            v -= sc[i * m + a] * sh[i * m + b] / p.unit_n[i];
                        }
                        let ua = &u[(c * m + a) * k..(c * m + a + 1) * k];
                        let ub = &u[(h * m + b) * k..(h * m + b + 1) * k];
                        v -= dot(ua, ub);
                        dd[(c * m + a) * gm + h * m + b] = v;
                        dd[(h * m + b) * gm + c * m + a] = v;
                    }
                }
            }
        }
        let scale = (0..g)
            .flat_map(|c| (0..m).map(move |a| (c, a)))
            .map(|(c, a)| xx[c * m * m + a * m + a])
            .collect();
        Ok(Grid {
            k,
            m,
            l,
            g,
            u,
            dd,
            scale,
            bin,
            below,
            n_obs: n,
            min_regime: p.min_regime,
            df: p.df(),
            residualised: std::sync::OnceLock::new(),
        })
    }

    /// The outcome `y` (absorbed, as `Prepared::outcome`) of this grid's
    /// model; `x` and `base` are the prepared regressors and base columns.
    pub fn outcome(&self, p: &Prepared, y: &[f64]) -> Outcome {
        let (k, m, g) = (self.k, self.m, self.g);
        let mut uy: Vec<f64> = p.base.iter().map(|c| dot(c, y)).collect();
        forward(&self.l, k, &mut uy);
        let mut gy = vec![0.0; (g + 1) * m];
        for (o, &b) in self.bin.iter().enumerate() {
            for a in 0..m {
                gy[b as usize * m + a] += p.x[a][o] * y[o];
            }
        }
        for c in 1..g {
            for a in 0..m {
                gy[c * m + a] += gy[(c - 1) * m + a];
            }
        }
        let r = (0..g * m)
            .map(|ca| gy[ca] - dot(&self.u[ca * k..(ca + 1) * k], &uy))
            .collect();
        Outcome {
            ssr_linear: dot(y, y) - dot(&uy, &uy),
            r,
        }
    }

    /// Candidates.
    pub fn candidates(&self) -> usize {
        self.g
    }

    /// Regime-dependent regressors.
    pub fn regressors(&self) -> usize {
        self.m
    }

    /// Absorbed base columns (the regressors, controls, period dummies).
    pub fn base_columns(&self) -> usize {
        self.k
    }

    /// `d_a(g)' M_W d_b(h)`: (g m) x (g m), row (g, a), column (h, b).
    pub fn products(&self) -> &[f64] {
        &self.dd
    }

    /// `sum x_a^2 1(q <= c_g)`, g x m: the scale a pivot is judged by.
    pub fn pivot_scales(&self) -> &[f64] {
        &self.scale
    }

    /// Observations at or below each candidate.
    pub fn below(&self) -> &[usize] {
        &self.below
    }

    /// Fewest observations a regime may have.
    pub fn min_regime(&self) -> usize {
        self.min_regime
    }

    /// Observations.
    pub fn n_obs(&self) -> usize {
        self.n_obs
    }

    /// Residual degrees of freedom of the F statistics' variance.
    pub fn df(&self) -> f64 {
        self.df
    }

    /// Each observation's row of the columns an outcome's searches are
    /// linear in, n x (g m + k) row-major: `M_W d_a(g)` for every
    /// candidate and regressor (so `r_a(g) = M_W d_a(g) . y`), then `Z =
    /// L^{-1} W'`'s column (so `u_y = Z y`). What a bootstrap replicate's
    /// searches need of its outcome is then a product of these columns
    /// with it (`resample::threshold::LinearForm`). `p` is the sample this
    /// grid was built from; computed on the first call, then kept.
    pub fn residualised_columns(&self, p: &Prepared) -> &[f64] {
        self.residualised
            .get_or_init(|| self.compute_residualised(p))
    }

    fn compute_residualised(&self, p: &Prepared) -> Vec<f64> {
        let (k, m, g) = (self.k, self.m, self.g);
        let width = g * m + k;
        let n = self.n_obs;
        let mut out = vec![0.0; n * width];
        let mut z = vec![0.0; k];
        for (o, row) in out.chunks_mut(width).enumerate() {
            for (col, w) in p.base.iter().enumerate() {
                z[col] = w[o];
            }
            forward(&self.l, k, &mut z);
            let bin = self.bin[o] as usize;
            for c in 0..g {
                for a in 0..m {
                    let ca = c * m + a;
                    let d = if bin <= c { p.x[a][o] } else { 0.0 };
                    row[ca] = d - dot(&self.u[ca * k..(ca + 1) * k], &z);
                }
            }
            row[g * m..].copy_from_slice(&z);
        }
        out
    }

    /// Whether the thresholds at candidates `set` leave every regime
    /// `min_regime` observations.
    fn allowed(&self, set: &[usize]) -> bool {
        let mut sorted = set.to_vec();
        sorted.sort_unstable();
        let mut last = 0;
        for &c in &sorted {
            if self.below[c] - last < self.min_regime {
                return false;
            }
            last = self.below[c];
        }
        self.n_obs - last >= self.min_regime
    }

    /// The SSR with thresholds at candidates `set`, or None where a
    /// candidate adds nothing (its pivot below 1e-10 of its scale).
    pub fn ssr(&self, y: &Outcome, set: &[usize]) -> Option<f64> {
        let (m, gm) = (self.m, self.g * self.m);
        let s = set.len() * m;
        let mut d = vec![0.0; s * s];
        let mut r = vec![0.0; s];
        for (i, &c) in set.iter().enumerate() {
            for a in 0..m {
                r[i * m + a] = y.r[c * m + a];
                for (j, &h) in set.iter().enumerate() {
                    for b in 0..m {
                        d[(i * m + a) * s + j * m + b] = self.dd[(c * m + a) * gm + h * m + b];
                    }
                }
            }
        }
        cholesky(&mut d, s).ok()?;
        for (i, &c) in set.iter().enumerate() {
            for a in 0..m {
                let p = d[(i * m + a) * s + i * m + a];
                if p * p <= 1e-10 * self.scale[c * m + a] {
                    return None;
                }
            }
        }
        let mut v = r.clone();
        chol_solve(&d, s, &mut v);
        Some(y.ssr_linear - dot(&r, &v))
    }

    /// Search one more threshold beside the candidates `fixed`.
    pub fn search(&self, y: &Outcome, fixed: &[usize]) -> Option<IndexSearch> {
        let mut set = fixed.to_vec();
        set.push(0);
        let curve: Vec<Option<f64>> = (0..self.g)
            .map(|c| {
                *set.last_mut().expect("one more") = c;
                if fixed.contains(&c) || !self.allowed(&set) {
                    return None;
                }
                self.ssr(y, &set)
            })
            .collect();
        let (best, ssr) = curve
            .iter()
            .enumerate()
            .filter_map(|(c, s)| s.map(|s| (c, s)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))?;
        Some(IndexSearch {
            fixed: fixed.to_vec(),
            best,
            ssr,
            curve,
        })
    }

    /// The sequence of Hansen (1999) up to `max` thresholds: the first; the
    /// second given the first, then the first again given the second; the
    /// third given both. Each step's F = (S_{k-1} - S_k) / (S_k / df), with
    /// S_1 and S_2 the searches' minima (the second's before the
    /// refinement) and the third's S_2 the refined pair's. None where some
    /// search has no allowed candidate.
    pub fn sequence(&self, y: &Outcome, max: usize) -> Option<Vec<IndexStep>> {
        let f = |before: f64, after: f64| (before - after) / (after / self.df);
        let mut steps = Vec::new();
        let s1 = self.search(y, &[])?;
        steps.push(IndexStep {
            thresholds: vec![s1.best],
            ssr_before: y.ssr_linear,
            ssr: s1.ssr,
            f_stat: f(y.ssr_linear, s1.ssr),
            searches: vec![s1.clone()],
        });
        if max >= 2 {
            let s2 = self.search(y, &[s1.best])?;
            let refined = self.search(y, &[s2.best])?;
            let mut pair = vec![refined.best, s2.best];
            pair.sort_unstable();
            steps.push(IndexStep {
                thresholds: pair.clone(),
                ssr_before: s1.ssr,
                ssr: s2.ssr,
                f_stat: f(s1.ssr, s2.ssr),
                searches: vec![s2, refined],
            });
            if max >= 3 {
                let before = self.ssr(y, &pair)?;
                let s3 = self.search(y, &pair)?;
                let mut all = pair.clone();
                all.push(s3.best);
                all.sort_unstable();
                steps.push(IndexStep {
                    thresholds: all,
                    ssr_before: before,
                    ssr: s3.ssr,
                    f_stat: f(before, s3.ssr),
                    searches: vec![s3],
                });
            }
        }
        Some(steps)
    }
}

/// One threshold's search: the curve and what it gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The thresholds held fixed.
    pub fixed: Vec<f64>,
    /// The estimate: the candidate of least SSR (the smallest on a tie).
    pub estimate: f64,
    pub ssr: f64,
    /// Hansen's variance estimate, ssr / (observations less units).
    pub sigma2: f64,
    /// (candidate, LR) where the candidate is allowed.
    pub lr: Vec<(f64, f64)>,
    /// The candidates with LR <= -2 ln(1 - sqrt(level)): lowest, highest.
    pub interval: (f64, f64),
}

/// The likelihood-ratio critical value of Hansen (2000) at `level`.
pub fn lr_critical(level: f64) -> f64 {
    -2.0 * (1.0 - level.sqrt()).ln()
}

/// The model with k thresholds, as the k-th step of the sequence finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Thresholds in the model, ascending.
    pub thresholds: Vec<f64>,
    /// Each threshold's search (for the second step, the search of the
    /// second given the first, then the first refined given the second).
    pub searches: Vec<Search>,
    /// The SSR of the model with k - 1 thresholds (the linear model's for
    /// k = 1) and the F statistic of the k-th: (S_{k-1} - S_k) / sigma2_k.
    pub ssr_before: f64,
    pub ssr: f64,
    pub f_stat: f64,
    /// The regime coefficients at these thresholds.
    pub regimes: RegimeFit,
}

/// The threshold model estimated: the sequence of 1..=max thresholds.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdFit {
    pub n_obs: usize,
    pub n_units: usize,
    pub n_periods: usize,
    pub balanced: bool,
    pub candidates: Vec<f64>,
    pub min_regime: usize,
    pub ssr_linear: f64,
    pub steps: Vec<Step>,
}

/// Estimate the sequence of threshold models (Hansen 1999; see
/// [`Grid::sequence`]) with each search's LR curve and confidence set and
/// each step's regime coefficients.
pub fn estimate(p: &Prepared, grid: &Grid) -> Result<ThresholdFit> {
    let y = grid.outcome(p, &p.y);
    let steps = grid
        .sequence(&y, p.spec.max_thresholds)
        .ok_or_else(|| Error::TooLittleData {
            file: p.sample.source.clone(),
            message: format!(
                "a search found no candidate threshold that leaves every regime {} \
                 observation(s) (threshold.trim, threshold.min_regime) and adds to the fit",
                p.min_regime
            ),
        })?;
    let value = |c: usize| p.candidates[c];
    let crit = lr_critical(p.spec.level);
    let steps = steps
        .into_iter()
        .map(|s| {
            let thresholds: Vec<f64> = s.thresholds.iter().map(|&c| value(c)).collect();
            let searches = s
                .searches
                .iter()
                .map(|x| {
                    let sigma2 = x.ssr / p.df();
                    let lr: Vec<(f64, f64)> = x
                        .curve
                        .iter()
                        .enumerate()
                        .filter_map(|(c, v)| v.map(|v| (value(c), (v - x.ssr) / sigma2)))
                        .collect();
                    let inside: Vec<f64> = lr.iter().filter(|l| l.1 <= crit).map(|l| l.0).collect();
                    Search {
                        fixed: x.fixed.iter().map(|&c| value(c)).collect(),
                        estimate: value(x.best),
                        ssr: x.ssr,
                        sigma2,
                        lr,
                        interval: (inside[0], inside[inside.len() - 1]),
                    }
                })
                .collect();
            Ok(Step {
                regimes: regimes(p, &thresholds)?,
                thresholds,
                searches,
                ssr_before: s.ssr_before,
                ssr: s.ssr,
                f_stat: s.f_stat,
            })
        })
        .collect::<Result<Vec<Step>>>()?;
    Ok(ThresholdFit {
        n_obs: p.sample.n_obs(),
        n_units: p.sample.unit.len(),
        n_periods: p.sample.time.len(),
        balanced: p.sample.n_obs() == p.sample.unit.len() * p.sample.time.len(),
        candidates: p.candidates.clone(),
        min_regime: p.min_regime,
        ssr_linear: y.ssr_linear,
        steps,
    })
}

/// One coefficient of the regime fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Coefficient {
    /// "dei (q <= 0.41)", "dei (0.41 < q <= 0.62)", "dei (q > 0.62)", or
    /// a control's name.
    pub name: String,
    pub estimate: f64,
    pub se: f64,
    pub t: f64,
    /// Two-sided, t with clusters - 1 degrees of freedom (as fixest).
    pub p_value: f64,
}

/// The model at given thresholds, in regime form: each regressor times each
/// regime's indicator, the controls, the fixed effects; CR1 SEs.
#[derive(Debug, Clone, PartialEq)]
pub struct RegimeFit {
    pub coefficients: Vec<Coefficient>,
    /// Observations in each regime, lowest first.
    pub regime_sizes: Vec<usize>,
    pub clusters: usize,
}

/// The regime fit at thresholds `ts` (ascending).
pub fn regimes(p: &Prepared, ts: &[f64]) -> Result<RegimeFit> {
    let n = p.sample.n_obs();
    let m = p.x.len();
    let regime_of = |qv: f64| ts.iter().filter(|&&t| qv > t).count();
    let mut w: Vec<Vec<f64>> = Vec::new();
    let mut names = Vec::new();
    let label = |r: usize| -> String {
        let q = &p.spec.threshold;
        match (r, ts.len()) {
            (0, _) => format!("{q} <= {}", short(ts[0])),
            (r, k) if r == k => format!("{q} > {}", short(ts[k - 1])),
            (r, _) => format!("{} < {q} <= {}", short(ts[r - 1]), short(ts[r])),
        }
    };
    for (j, xj) in p.x.iter().enumerate() {
        for r in 0..=ts.len() {
            let d: Vec<f64> = (0..n)
                .map(|o| if regime_of(p.q[o]) == r { xj[o] } else { 0.0 })
                .collect();
            w.push(demean_within(&d, &p.sample.unit));
            names.push(format!("{} ({})", p.spec.regressors[j], label(r)));
        }
    }
    // Controls and period dummies: the base after its regressors.
    w.extend(p.base[m..].iter().cloned());
    names.extend(p.spec.controls.iter().cloned());
    let (l, k) = factor(&w)?;
    let mut beta: Vec<f64> = w.iter().map(|c| dot(c, &p.y)).collect();
    chol_solve(&l, k, &mut beta);
    let resid: Vec<f64> = (0..n)
        .map(|o| p.y[o] - (0..k).map(|c| w[c][o] * beta[c]).sum::<f64>())
        .collect();
    // Meat: the clusters' score sums.
    let g = p.sample.cluster.len();
    let mut scores = vec![0.0; g * k];
    for o in 0..n {
        let cl = p.sample.cluster.codes[o] as usize;
        for c in 0..k {
            scores[cl * k + c] += w[c][o] * resid[o];
        }
    }
    let mut bread = vec![0.0; k * k];
    for c in 0..k {
        let mut e = vec![0.0; k];
        e[c] = 1.0;
        chol_solve(&l, k, &mut e);
        bread[c * k..(c + 1) * k].copy_from_slice(&e);
    }
    // A^{-1} s_g for each cluster, then their outer products.
    let mut cov = vec![0.0; k * k];
    for cl in 0..g {
        let s = &scores[cl * k..(cl + 1) * k];
        let v: Vec<f64> = (0..k).map(|a| dot(&bread[a * k..(a + 1) * k], s)).collect();
        for a in 0..k {
            for b in 0..k {
                cov[a * k + b] += v[a] * v[b];
            }
        }
    }
    let mut absorbed = vec![FixedEffectDim {
        name: p.sample.unit.name.clone(),
        levels: p.sample.unit.len(),
        nested: nests(&p.sample.unit, &p.sample.cluster),
    }];
    if p.fe.has_time() {
        absorbed.push(FixedEffectDim {
            name: p.sample.time.name.clone(),
            levels: p.sample.time.len(),
            nested: nests(&p.sample.time, &p.sample.cluster),
        });
    }
    let params = cr1_parameters(k - p.n_dummies, &absorbed);
    let (gf, nf) = (g as f64, n as f64);
    let c = gf / (gf - 1.0) * (nf - 1.0) / (nf - params as f64);
    let shown = names.len();
    let coefficients = (0..shown)
        .map(|a| {
            let se = (c * cov[a * k + a]).sqrt();
            let t = beta[a] / se;
            Coefficient {
                name: names[a].clone(),
                estimate: beta[a],
                se,
                t,
                p_value: t_p_value(t, gf - 1.0),
            }
        })
        .collect();
    let mut regime_sizes = vec![0; ts.len() + 1];
    for &qv in &p.q {
        regime_sizes[regime_of(qv)] += 1;
    }
    Ok(RegimeFit {
        coefficients,
        regime_sizes,
        clusters: g,
    })
}

/// Whether every level of `inner` lies inside one cluster.
fn nests(inner: &Factor, cluster: &Factor) -> bool {
    inner.name == cluster.name || inner.nested_in(cluster)
}

/// A threshold as labels print it: 4 significant digits.
fn short(v: f64) -> String {
    format!("{}", (v * 1e4).round() / 1e4)
}
