//! Bootstrap confidence intervals and p-values from replicate draws, with the
//! conventions of R's `boot::boot.ci` (Davison and Hinkley 1997): quantiles
//! by `norm.inter` (interpolation on the normal scale between order
//! statistics (R+1)alpha), BCa acceleration from the delete-one-cluster
//! jackknife, bias correction z0 = qnorm(#{t* < t0} / R).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::math::stats::{normal_cdf, normal_quantile};

/// An interval method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Percentile,
    Basic,
    Normal,
    Bc,
    Bca,
    /// Bootstrap-t, with each replicate's own CR1 standard error (indirect
    /// effects only).
    Studentized,
}

spelled!(Method);

impl Method {
    /// Parse a method name.
    pub fn parse(s: &str) -> Result<Method> {
        match s.trim() {
            "percentile" | "perc" => Ok(Method::Percentile),
            "basic" => Ok(Method::Basic),
            "normal" | "norm" => Ok(Method::Normal),
            "bc" => Ok(Method::Bc),
            "bca" => Ok(Method::Bca),
            "studentized" | "stud" => Ok(Method::Studentized),
            other => Err(Error::InvalidOption {
                option: "inference.methods".into(),
                message: format!(
                    "'{other}' is not one of percentile, basic, normal, bc, bca, studentized"
                ),
            }),
        }
    }

    /// The name in summary.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Percentile => "percentile",
            Method::Basic => "basic",
            Method::Normal => "normal",
            Method::Bc => "bc",
            Method::Bca => "bca",
            Method::Studentized => "studentized",
        }
    }
}

/// Order statistics of one statistic's finite draws: all of them, sorted,
/// or only the ranks the intervals need (found by streaming, see `aggregate`).
#[derive(Debug, Clone, Copy)]
pub enum Order<'a> {
    Sorted(&'a [f64]),
    Ranks(&'a BTreeMap<usize, f64>),
}

impl Order<'_> {
    /// The k-th smallest (1-based).
    pub fn get(&self, k: usize) -> f64 {
        match self {
            Order::Sorted(s) => s[k - 1],
            Order::Ranks(r) => *r.get(&k).expect("the needed ranks were collected"),
        }
    }
}

/// The 1-based ranks `norm_inter(n, alpha)` reads.
pub fn norm_inter_ranks(n: usize, alpha: f64) -> Vec<usize> {
    let rk = (n as f64 + 1.0) * alpha;
    let k = rk.trunc() as usize;
    if (k as f64 == rk && k >= 1 && k <= n) || k >= n {
        vec![k.min(n)]
    } else if k == 0 {
        vec![1]
    } else {
        vec![k, k + 1]
    }
}

/// `boot:::norm.inter`: the alpha quantile of n finite draws. With
/// k = trunc((n+1) alpha): the k-th order statistic when (n+1) alpha is an
/// integer, the extreme one when k is 0 or n, else interpolation between the
/// k-th and (k+1)-th on the normal-quantile scale.
pub fn norm_inter(order: Order, n: usize, alpha: f64) -> f64 {
    let rk = (n as f64 + 1.0) * alpha;
    let k = rk.trunc() as usize;
    if k as f64 == rk && k >= 1 && k <= n {
        return order.get(k);
    }
    if k == 0 {
        return order.get(1);
    }
    if k >= n {
        return order.get(n);
    }
    let np1 = n as f64 + 1.0;
    let temp = normal_quantile(alpha);
    let tk = normal_quantile(k as f64 / np1);
    let tk1 = normal_quantile((k + 1) as f64 / np1);
    let (a, b) = (order.get(k), order.get(k + 1));
    a + (temp - tk) / (tk1 - tk) * (b - a)
}

/// BCa acceleration from jackknife values: with L_i = (n-1)(mean - t_(i)),
/// `a = sum L^3 / (6 (sum L^2)^1.5)` (boot's `empinf(type = "jack")`).
pub fn jackknife_acceleration(jack: &[f64]) -> f64 {
    let n = jack.len() as f64;
    let mean = jack.iter().sum::<f64>() / n;
    // The ratio does not depend on the scale of L; its cubes overflow for
    // statistics in huge units and underflow in tiny ones, so L is brought
    // near 1 by a power of two (exact) when it is far from it.
    let largest = jack
        .iter()
        .map(|&t| ((n - 1.0) * (mean - t)).abs())
        .fold(0.0, f64::max);
    let unit = if largest > 0.0 && !(1e-30..=1e30).contains(&largest) {
        (2.0f64).powi((-largest.log2().floor()).clamp(-1000.0, 1000.0) as i32)
    } else {
        1.0
    };
    let (mut s2, mut s3) = (0.0, 0.0);
    for &t in jack {
        let l = (n - 1.0) * (mean - t) * unit;
        s2 += l * l;
        s3 += l * l * l;
    }
    if s2 == 0.0 {
        0.0
    } else {
        s3 / (6.0 * s2.powf(1.5))
    }
}

/// Counts and sums over one statistic's draws in replicate order; both the
/// in-memory and the streaming aggregation go through it, so they agree to
/// the last bit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tally {
    pub t0: f64,
    /// Finite draws.
    pub n: usize,
    pub sum: f64,
    /// #{t* < t0}, #{t* <= 0}, #{t* >= 0}, #{|t*| >= |t0|}.
    pub below_t0: usize,
    pub le0: usize,
    pub ge0: usize,
    pub abs_ge_t0: usize,
}

impl Tally {
    /// An empty tally around the point estimate t0.
    pub fn new(t0: f64) -> Tally {
        Tally {
            t0,
            n: 0,
            sum: 0.0,
            below_t0: 0,
            le0: 0,
            ge0: 0,
            abs_ge_t0: 0,
        }
    }

    /// Count one draw (non-finite draws are left out).
    #[inline]
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        self.n += 1;
        self.sum += x;
        self.below_t0 += (x < self.t0) as usize;
        self.le0 += (x <= 0.0) as usize;
        self.ge0 += (x >= 0.0) as usize;
        self.abs_ge_t0 += (x.abs() >= self.t0.abs()) as usize;
    }

    /// Mean of the finite draws.
    pub fn mean(&self) -> f64 {
        self.sum / self.n as f64
    }

    /// Tally of `values` in replicate order, and their standard deviation
    /// (R - 1 denominator) from sum (x - mean)^2 in the same order.
    pub fn over(t0: f64, values: &[f64]) -> (Tally, f64) {
        let mut tally = Tally::new(t0);
        values.iter().for_each(|&x| tally.add(x));
        let mean = tally.mean();
        let ss: f64 = values
            .iter()
            .filter(|x| x.is_finite())
            .map(|x| (x - mean) * (x - mean))
            .sum();
        (tally, (ss / (tally.n as f64 - 1.0)).sqrt())
    }

    /// The alphas whose quantiles `method` at `level` reads (none for the
    /// normal interval; studentized reads them from the t* draws).
    pub fn alphas(&self, method: Method, level: f64, acceleration: Option<f64>) -> Vec<f64> {
        let lo = (1.0 - level) / 2.0;
        let hi = (1.0 + level) / 2.0;
        match method {
            Method::Normal => vec![],
            Method::Percentile | Method::Basic | Method::Studentized => vec![lo, hi],
            Method::Bc | Method::Bca => {
                let a = if method == Method::Bca {
                    acceleration.unwrap_or(0.0)
                } else {
                    0.0
                };
                let z0 = normal_quantile(self.below_t0 as f64 / self.n as f64);
                if !z0.is_finite() {
                    return vec![];
                }
                [lo, hi]
                    .iter()
                    .map(|&alpha| {
                        let z = normal_quantile(alpha);
                        normal_cdf(z0 + (z0 + z) / (1.0 - a * (z0 + z)))
                    })
                    .collect()
            }
        }
    }
}

/// What the intervals need about one statistic's draws.
#[derive(Debug, Clone, Copy)]
pub struct Draws<'a> {
    pub tally: Tally,
    /// Standard deviation (R - 1 denominator), from sum (x - mean)^2 in
    /// replicate order.
    pub sd: f64,
    pub order: Order<'a>,
    /// Jackknife acceleration (BCa).
    pub acceleration: Option<f64>,
    /// For studentized intervals: the point estimate's standard error, the
    /// number of finite `t* = (theta* - t0) / se*` and their order statistics.
    pub studentized: Option<(f64, usize, Order<'a>)>,
}

impl<'a> Draws<'a> {
    /// Draws held in memory: `values` in replicate order (non-finite ones
    /// are skipped), `sorted` the same finite values sorted.
    pub fn in_memory(
        t0: f64,
        values: &[f64],
        sorted: &'a [f64],
        acceleration: Option<f64>,
    ) -> Draws<'a> {
        let (tally, sd) = Tally::over(t0, values);
        Draws {
            tally,
            sd,
            order: Order::Sorted(sorted),
            acceleration,
            studentized: None,
        }
    }

    /// Mean of the draws.
    pub fn mean(&self) -> f64 {
        self.tally.mean()
    }

    /// Bootstrap p-value of "zero": `2 min(#{t* <= 0}, #{t* >= 0}) / R`, at most 1.
    pub fn p_value(&self) -> f64 {
        let t = &self.tally;
        (2.0 * t.le0.min(t.ge0) as f64 / t.n as f64).min(1.0)
    }

    /// Permutation p-value `(1 + #{|t*| >= |t0|}) / (1 + R)`.
    pub fn permutation_p_value(&self) -> f64 {
        (1.0 + self.tally.abs_ge_t0 as f64) / (1.0 + self.tally.n as f64)
    }

    /// The intervals of `effect` by each of `methods` (studentized only
    /// where the draws have replicate SEs) at each of `levels`.
    pub fn intervals(
        &self,
        effect: &str,
        methods: &[Method],
        levels: &[f64],
    ) -> Vec<crate::model::mediation::Interval> {
        let mut out = Vec::new();
        for &method in methods {
            if method == Method::Studentized && self.studentized.is_none() {
                continue;
            }
            for &level in levels {
                let (lower, upper) = self.interval(method, level);
                out.push(crate::model::mediation::Interval {
                    effect: effect.to_string(),
                    method: method.as_str().into(),
                    level,
                    lower,
                    upper,
                });
            }
        }
        out
    }

    /// Interval at `level`; NaN bounds when the method is undefined for these
    /// draws (BC/BCa with every draw on one side of t0, studentized without
    /// replicate standard errors).
    pub fn interval(&self, method: Method, level: f64) -> (f64, f64) {
        let t0 = self.tally.t0;
        let n = self.tally.n;
        let q = |alpha: f64| norm_inter(self.order, n, alpha);
        let hi = (1.0 + level) / 2.0;
        match method {
            Method::Normal => {
                let bias = self.mean() - t0;
                let merr = self.sd * normal_quantile(hi);
                (t0 - bias - merr, t0 - bias + merr)
            }
            Method::Percentile => {
                let a = self.tally.alphas(method, level, None);
                (q(a[0]), q(a[1]))
            }
            Method::Basic => {
                let a = self.tally.alphas(method, level, None);
                (2.0 * t0 - q(a[1]), 2.0 * t0 - q(a[0]))
            }
            Method::Bc | Method::Bca => {
                match self.tally.alphas(method, level, self.acceleration)[..] {
                    [lo, hi] => (q(lo), q(hi)),
                    _ => (f64::NAN, f64::NAN),
                }
            }
            Method::Studentized => match self.studentized {
                Some((se0, nz, order)) if nz > 0 => {
                    let a = self.tally.alphas(method, level, None);
                    (
                        t0 - se0 * norm_inter(order, nz, a[1]),
                        t0 - se0 * norm_inter(order, nz, a[0]),
                    )
                }
                _ => (f64::NAN, f64::NAN),
            },
        }
    }
}
