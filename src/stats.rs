//! Distribution functions and sample quantiles used by the inference code.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    standard_normal().cdf(x)
}

/// Standard normal quantile function.
pub fn normal_quantile(p: f64) -> f64 {
    standard_normal().inverse_cdf(p)
}

fn standard_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("valid parameters")
}

/// Two-sided p-value of a z statistic.
pub fn normal_p_value(z: f64) -> f64 {
    2.0 * standard_normal().sf(z.abs())
}

/// Two-sided p-value of a t statistic on `df` degrees of freedom.
pub fn t_p_value(t: f64, df: f64) -> f64 {
    let dist = StudentsT::new(0.0, 1.0, df).expect("positive degrees of freedom");
    2.0 * dist.sf(t.abs())
}

/// Quantile of sorted data by linear interpolation between order statistics
/// (Hyndman and Fan type 7, the default of R and NumPy).
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    assert!(n > 0, "quantile of an empty sample");
    let h = (n - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_reference_values() {
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
        assert!((normal_cdf(1.0) - 0.841_344_746_068_542_9).abs() < 1e-14);
        assert!((normal_p_value(-1.959_963_984_540_054) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn t_reference_value() {
        // qt(0.975, 10) = 2.228138851986274 in R.
        assert!((t_p_value(2.228_138_851_986_274, 10.0) - 0.05).abs() < 1e-10);
    }

    #[test]
    fn type7_quantiles_match_numpy() {
        let x = [1.0, 2.0, 4.0, 8.0];
        // numpy.quantile([1,2,4,8], [0, .25, .5, .9, 1]) = [1, 1.75, 3, 6.8, 8]
        for (p, want) in [(0.0, 1.0), (0.25, 1.75), (0.5, 3.0), (0.9, 6.8), (1.0, 8.0)] {
            assert!((quantile_sorted(&x, p) - want).abs() < 1e-12, "p={p}");
        }
    }
}
