//! Distribution functions and sample quantiles used by the inference code.

use statrs::distribution::{ContinuousCDF, FisherSnedecor, Normal, StudentsT};

/// Standard normal distribution function, `erfc(-x / sqrt 2) / 2` with
/// libm's erfc (accurate to a few ulp, also far in the tails).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
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
    libm::erfc(z.abs() / std::f64::consts::SQRT_2)
}

/// Two-sided p-value of a t statistic on `df` degrees of freedom.
pub fn t_p_value(t: f64, df: f64) -> f64 {
    let dist = StudentsT::new(0.0, 1.0, df).expect("positive degrees of freedom");
    2.0 * dist.sf(t.abs())
}

/// Quantile of Student's t distribution on `df` degrees of freedom.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let dist = StudentsT::new(0.0, 1.0, df).expect("positive degrees of freedom");
    dist.inverse_cdf(p)
}

/// Upper-tail p-value of an F statistic on (`df1`, `df2`) degrees of freedom.
pub fn f_p_value(f: f64, df1: f64, df2: f64) -> f64 {
    let dist = FisherSnedecor::new(df1, df2).expect("positive degrees of freedom");
    dist.sf(f)
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
    fn t_quantiles_match_scipy() {
        // scipy.stats.t.ppf
        for (p, df, want) in [
            (0.975, 5.0, 2.570_581_835_636_314_6),
            (0.975, 30.0, 2.042_272_456_301_237_8),
            (0.975, 783.0, 1.962_998_314_202_973_2),
            (0.95, 2758.0, 1.645_406_304_332_28),
        ] {
            let got = t_quantile(p, df);
            assert!(
                (got - want).abs() < 1e-10 * want,
                "t({df}) at {p}: {got:.17}"
            );
        }
    }

    #[test]
    fn normal_reference_values() {
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-12);
        let got = normal_cdf(1.0);
        assert!((got - 0.841_344_746_068_542_9).abs() < 1e-14, "{got:.17}");
        assert!((normal_p_value(-1.959_963_984_540_054) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn normal_tail_is_accurate() {
        // 2 * scipy.stats.norm.sf(6.0)
        let got = normal_p_value(6.0);
        assert!(
            (got / 1.973_175_290_075_389e-9 - 1.0).abs() < 1e-12,
            "{got:e}"
        );
    }

    #[test]
    fn t_p_values_match_scipy() {
        // 2 * scipy.stats.t.sf(t, df)
        for (t, df, want) in [
            (2.5, 277.0, 0.012_997_811_892_192_011),
            (0.3, 29.0, 0.766_317_093_328_967_8),
            (5.0, 10.0, 0.000_537_333_602_756_452_7),
            (8.0, 277.0, 3.420_315_258_630_380_6e-14),
            (1.96, 1000.0, 0.050_273_184_955_748_736),
        ] {
            let got = t_p_value(t, df);
            assert!(
                (got / want - 1.0).abs() < 1e-9,
                "t={t} df={df}: {got:e} vs {want:e}"
            );
        }
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
