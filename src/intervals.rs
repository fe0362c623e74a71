//! Bootstrap confidence intervals and p-values from replicate draws, with the
//! conventions of R's `boot::boot.ci` (Davison and Hinkley 1997): quantiles
//! by `norm.inter` (interpolation on the normal scale between order
//! statistics (R+1)alpha), BCa acceleration from the delete-one-cluster
//! jackknife, bias correction z0 = qnorm(#{t* < t0} / R).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stats::{normal_cdf, normal_quantile};

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
                option: "--ci".into(),
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

/// `boot:::norm.inter`: the alpha quantile of sorted finite draws. With
/// k = trunc((R+1) alpha): the k-th order statistic when (R+1) alpha is an
/// integer, the extreme one when k is 0 or R, else interpolation between the
/// k-th and (k+1)-th on the normal-quantile scale.
pub fn norm_inter(sorted: &[f64], alpha: f64) -> f64 {
    let r = sorted.len();
    let rk = (r as f64 + 1.0) * alpha;
    let k = rk.trunc() as usize;
    if k as f64 == rk && k >= 1 && k <= r {
        return sorted[k - 1];
    }
    if k == 0 {
        return sorted[0];
    }
    if k >= r {
        return sorted[r - 1];
    }
    let rp1 = r as f64 + 1.0;
    let temp = normal_quantile(alpha);
    let tk = normal_quantile(k as f64 / rp1);
    let tk1 = normal_quantile((k + 1) as f64 / rp1);
    sorted[k - 1] + (temp - tk) / (tk1 - tk) * (sorted[k] - sorted[k - 1])
}

/// BCa acceleration from jackknife values: with L_i = (n-1)(mean - t_(i)),
/// `a = sum L^3 / (6 (sum L^2)^1.5)` (boot's `empinf(type = "jack")`).
pub fn jackknife_acceleration(jack: &[f64]) -> f64 {
    let n = jack.len() as f64;
    let mean = jack.iter().sum::<f64>() / n;
    let (mut s2, mut s3) = (0.0, 0.0);
    for &t in jack {
        let l = (n - 1.0) * (mean - t);
        s2 += l * l;
        s3 += l * l * l;
    }
    if s2 == 0.0 {
        0.0
    } else {
        s3 / (6.0 * s2.powf(1.5))
    }
}

/// Per-effect summary of the replicate distribution (`E.bootstrap` in
/// summary.json).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapStats {
    pub mean: f64,
    pub sd: f64,
    /// Bootstrap p-value of zero: `2 min(#{t* <= 0}, #{t* >= 0}) / R` from
    /// the replicate distribution; for the wild scheme's single coefficients
    /// the restricted (WCR) bootstrap-t p-value; for the permutation scheme
    /// `(1 + #{|t*| >= |t|}) / (1 + R)`, and null where permuting the
    /// treatment does not impose the null (b, the proportion mediated).
    pub p_value: Option<f64>,
}

/// What an interval needs about one statistic's draws.
#[derive(Debug, Clone)]
pub struct Draws<'a> {
    /// Point estimate t0.
    pub t0: f64,
    /// Finite replicate values, sorted.
    pub sorted: &'a [f64],
    /// Jackknife acceleration (BCa).
    pub acceleration: Option<f64>,
    /// For studentized intervals: the point estimate's standard error and
    /// the sorted finite `t* = (theta* - t0) / se*`.
    pub studentized: Option<(f64, &'a [f64])>,
}

impl Draws<'_> {
    /// Mean of the draws.
    pub fn mean(&self) -> f64 {
        self.sorted.iter().sum::<f64>() / self.sorted.len() as f64
    }

    /// Standard deviation (R - 1 denominator).
    pub fn sd(&self) -> f64 {
        let m = self.mean();
        let ss: f64 = self.sorted.iter().map(|v| (v - m) * (v - m)).sum();
        (ss / (self.sorted.len() as f64 - 1.0)).sqrt()
    }

    /// Bootstrap p-value of "zero": `2 min(#{t* <= 0}, #{t* >= 0}) / R`, at most 1.
    pub fn p_value(&self) -> f64 {
        let r = self.sorted.len() as f64;
        let le = self.sorted.partition_point(|&v| v <= 0.0) as f64;
        let ge = (self.sorted.len() - self.sorted.partition_point(|&v| v < 0.0)) as f64;
        (2.0 * le.min(ge) / r).min(1.0)
    }

    /// Permutation p-value `(1 + #{|t*| >= |t0|}) / (1 + R)`.
    pub fn permutation_p_value(&self) -> f64 {
        let t = self.t0.abs();
        let hits = self.sorted.iter().filter(|v| v.abs() >= t).count() as f64;
        (1.0 + hits) / (1.0 + self.sorted.len() as f64)
    }

    /// Interval at `level`; NaN bounds when the method is undefined for these
    /// draws (BC/BCa with every draw on one side of t0, studentized without
    /// replicate standard errors).
    pub fn interval(&self, method: Method, level: f64) -> (f64, f64) {
        let lo = (1.0 - level) / 2.0;
        let hi = (1.0 + level) / 2.0;
        let t0 = self.t0;
        match method {
            Method::Studentized => match self.studentized {
                Some((se0, z)) if !z.is_empty() => {
                    (t0 - se0 * norm_inter(z, hi), t0 - se0 * norm_inter(z, lo))
                }
                _ => (f64::NAN, f64::NAN),
            },
            Method::Percentile => (norm_inter(self.sorted, lo), norm_inter(self.sorted, hi)),
            Method::Basic => (
                2.0 * t0 - norm_inter(self.sorted, hi),
                2.0 * t0 - norm_inter(self.sorted, lo),
            ),
            Method::Normal => {
                let bias = self.mean() - t0;
                let merr = self.sd() * normal_quantile(hi);
                (t0 - bias - merr, t0 - bias + merr)
            }
            Method::Bc | Method::Bca => {
                let a = if method == Method::Bca {
                    self.acceleration.unwrap_or(0.0)
                } else {
                    0.0
                };
                let below = self.sorted.partition_point(|&v| v < t0) as f64;
                let z0 = normal_quantile(below / self.sorted.len() as f64);
                if !z0.is_finite() {
                    return (f64::NAN, f64::NAN);
                }
                let adj = |alpha: f64| {
                    let z = normal_quantile(alpha);
                    normal_cdf(z0 + (z0 + z) / (1.0 - a * (z0 + z)))
                };
                (
                    norm_inter(self.sorted, adj(lo)),
                    norm_inter(self.sorted, adj(hi)),
                )
            }
        }
    }
}
