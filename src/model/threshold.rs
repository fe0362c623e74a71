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
        if self.threshold == self.outcome || self.controls.contains(&self.threshold) {
            return bad(
                "variable",
                format!(
                    "the threshold variable '{}' is the outcome or a control",
                    self.threshold
                ),
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
        let q_in_x = spec.regressors.iter().position(|r| *r == spec.threshold);
        let mut numeric: Vec<(&str, &str)> =
            vec![(&spec.outcome, "the outcome (threshold.outcome)")];
        for r in &spec.regressors {
            numeric.push((r, "a regime-dependent regressor (threshold.regressors)"));
        }
        if q_in_x.is_none() {
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
        let q = match q_in_x {
            Some(j) => x[j].clone(),
            None => sample.columns[1 + m].clone(),
        };
        let z_start = 1 + m + usize::from(q_in_x.is_none());
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

    /// Observations with q <= g.
    fn below(&self, g: f64) -> usize {
        self.sorted_q.partition_point(|&v| v <= g)
    }

    /// Whether thresholds `ts` (any order) leave every regime at least
    /// `min_regime` observations.
    fn regimes_large_enough(&self, ts: &[f64]) -> bool {
        let mut sorted = ts.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mut last = 0;
        for &t in &sorted {
            let now = self.below(t);
            if now - last < self.min_regime {
                return false;
            }
            last = now;
        }
        self.sorted_q.len() - last >= self.min_regime
    }

    /// The absorbed columns of a model with thresholds `fixed`: the base,
    /// then each regressor times 1(q <= t) per threshold t.
    fn columns(&self, fixed: &[f64]) -> Vec<Vec<f64>> {
        let mut w = self.base.clone();
        for &t in fixed {
            for xj in &self.x {
                let d: Vec<f64> = xj
                    .iter()
                    .zip(&self.q)
                    .map(|(&v, &qv)| if qv <= t { v } else { 0.0 })
                    .collect();
                w.push(demean_within(&d, &self.sample.unit));
            }
        }
        w
    }

    /// Residual sum of squares of the model with thresholds `ts`.
    pub fn ssr(&self, ts: &[f64]) -> Result<f64> {
        let w = self.columns(ts);
        let (l, k) = factor(&w)?;
        let mut b: Vec<f64> = w.iter().map(|c| dot(c, &self.y)).collect();
        forward(&l, k, &mut b);
        Ok(dot(&self.y, &self.y) - dot(&b, &b))
    }

    /// Every candidate's residual sum of squares with one more threshold
    /// beside `fixed` (None where a regime would be too small or the
    /// candidate adds nothing).
    pub fn search(&self, fixed: &[f64]) -> Result<Vec<Option<f64>>> {
        let m = self.x.len();
        let w = self.columns(fixed);
        let (l, k) = factor(&w)?;
        let mut uy: Vec<f64> = w.iter().map(|c| dot(c, &self.y)).collect();
        forward(&l, k, &mut uy);
        let s_w = dot(&self.y, &self.y) - dot(&uy, &uy);
        // Running sums over the observations with q <= candidate.
        let mut g_w = vec![0.0; m * k];
        let mut g_y = vec![0.0; m];
        let mut xx = vec![0.0; m * m];
        let mut unit_sums = vec![0.0; self.unit_n.len() * m];
        let mut quad = vec![0.0; m * m];
        let mut next = 0;
        let mut out = Vec::with_capacity(self.candidates.len());
        let mut u = vec![0.0; m * k];
        for &c in &self.candidates {
            while next < self.order.len() && self.sorted_q[next] <= c {
                let o = self.order[next];
                let i = self.sample.unit.codes[o] as usize;
                let ti = self.unit_n[i];
                for a in 0..m {
                    let xa = self.x[a][o];
                    for (col, wc) in w.iter().enumerate() {
                        g_w[a * k + col] += xa * wc[o];
                    }
                    g_y[a] += xa * self.y[o];
                    for bb in 0..m {
                        let xb = self.x[bb][o];
                        xx[a * m + bb] += xa * xb;
                        let sa = unit_sums[i * m + a];
                        let sb = unit_sums[i * m + bb];
                        quad[a * m + bb] += (sa * xb + xa * sb + xa * xb) / ti;
                    }
                }
                for a in 0..m {
                    unit_sums[i * m + a] += self.x[a][o];
                }
                next += 1;
            }
            let mut ts = fixed.to_vec();
            ts.push(c);
            if fixed.contains(&c) || !self.regimes_large_enough(&ts) {
                out.push(None);
                continue;
            }
            // U = L^{-1} g_W' (per regressor), r = g_y - U'u_y,
            // D = H - U'U; the fit improves by r' D^{-1} r.
            u.copy_from_slice(&g_w);
            for a in 0..m {
                forward(&l, k, &mut u[a * k..(a + 1) * k]);
            }
            let mut r = vec![0.0; m];
            let mut d = vec![0.0; m * m];
            for a in 0..m {
                r[a] = g_y[a] - dot(&u[a * k..(a + 1) * k], &uy);
                for bb in 0..m {
                    d[a * m + bb] = xx[a * m + bb]
                        - quad[a * m + bb]
                        - dot(&u[a * k..(a + 1) * k], &u[bb * k..(bb + 1) * k]);
                }
            }
            let scale = (0..m).map(|a| xx[a * m + a]).fold(0.0, f64::max);
            let mut dl = d.clone();
            let spanned = cholesky(&mut dl, m).is_err()
                || (0..m).any(|a| dl[a * m + a] * dl[a * m + a] <= 1e-10 * scale);
            if spanned {
                out.push(None);
                continue;
            }
            let mut v = r.clone();
            chol_solve(&dl, m, &mut v);
            out.push(Some(s_w - dot(&r, &v)));
        }
        Ok(out)
    }

    /// Observations less units: the residual degrees of freedom of
    /// Hansen's (1999) variance estimate, n (T - 1) in a balanced panel.
    pub fn df(&self) -> f64 {
        (self.sample.n_obs() - self.sample.unit.len()) as f64
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

impl Prepared {
    /// Search one more threshold beside `fixed`.
    pub fn search_one(&self, fixed: &[f64]) -> Result<Search> {
        let curve = self.search(fixed)?;
        let best = curve
            .iter()
            .enumerate()
            .filter_map(|(g, s)| s.map(|s| (g, s)))
            .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
            .ok_or_else(|| Error::TooLittleData {
                file: self.sample.source.clone(),
                message: format!(
                    "no candidate threshold leaves every regime {} observation(s) (threshold.trim, \
                     threshold.min_regime){}",
                    self.min_regime,
                    if fixed.is_empty() {
                        String::new()
                    } else {
                        format!(" beside the thresholds {fixed:?}")
                    }
                ),
            })?;
        let (estimate, ssr) = (self.candidates[best.0], best.1);
        let sigma2 = ssr / self.df();
        let lr: Vec<(f64, f64)> = curve
            .iter()
            .zip(&self.candidates)
            .filter_map(|(s, &c)| s.map(|s| (c, (s - ssr) / sigma2)))
            .collect();
        let crit = lr_critical(self.spec.level);
        let inside: Vec<f64> = lr.iter().filter(|p| p.1 <= crit).map(|p| p.0).collect();
        let interval = (inside[0], inside[inside.len() - 1]);
        Ok(Search {
            fixed: fixed.to_vec(),
            estimate,
            ssr,
            sigma2,
            lr,
            interval,
        })
    }
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

/// Estimate the sequence of threshold models (Hansen 1999): the first
/// threshold; the second given the first, then the first again given the
/// second (the refinement); the third given both.
pub fn estimate(p: &Prepared) -> Result<ThresholdFit> {
    let ssr0 = p.ssr(&[])?;
    let mut steps: Vec<Step> = Vec::new();
    let s1 = p.search_one(&[])?;
    let t1 = vec![s1.estimate];
    steps.push(step(p, t1, vec![s1.clone()], ssr0, s1.ssr, s1.sigma2)?);
    if p.spec.max_thresholds >= 2 {
        let s2 = p.search_one(&[s1.estimate])?;
        let refined = p.search_one(&[s2.estimate])?;
        let mut ts = vec![refined.estimate, s2.estimate];
        ts.sort_by(f64::total_cmp);
        let (before, after, sigma2) = (s1.ssr, s2.ssr, s2.sigma2);
        steps.push(step(
            p,
            ts.clone(),
            vec![s2, refined],
            before,
            after,
            sigma2,
        )?);
        if p.spec.max_thresholds >= 3 {
            let before = p.ssr(&ts)?;
            let s3 = p.search_one(&ts)?;
            let mut all = ts.clone();
            all.push(s3.estimate);
            all.sort_by(f64::total_cmp);
            let (after, sigma2) = (s3.ssr, s3.sigma2);
            steps.push(step(p, all, vec![s3], before, after, sigma2)?);
        }
    }
    Ok(ThresholdFit {
        n_obs: p.sample.n_obs(),
        n_units: p.sample.unit.len(),
        n_periods: p.sample.time.len(),
        balanced: p.sample.n_obs() == p.sample.unit.len() * p.sample.time.len(),
        candidates: p.candidates.clone(),
        min_regime: p.min_regime,
        ssr_linear: ssr0,
        steps,
    })
}

fn step(
    p: &Prepared,
    thresholds: Vec<f64>,
    searches: Vec<Search>,
    ssr_before: f64,
    ssr: f64,
    sigma2: f64,
) -> Result<Step> {
    let regimes = regimes(p, &thresholds)?;
    Ok(Step {
        thresholds,
        searches,
        ssr_before,
        ssr,
        f_stat: (ssr_before - ssr) / sigma2,
        regimes,
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
