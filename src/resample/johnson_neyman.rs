//! The Johnson-Neyman region of a moderated model: the moderator values
//! where the percentile bootstrap interval of the conditional indirect
//! effect (the total over parallel mediators) excludes zero. Each
//! replicate's (a1, a3, b1, b3) of each mediator gives its conditional
//! indirect effect at any W, so the interval can be evaluated
//! anywhere: on a grid over W's observed range (the curve a plot draws),
//! and, where significance changes between two grid points, by bisection
//! to the boundary.

use serde::{Deserialize, Serialize};

use crate::model::moderation::omega;
use crate::resample::intervals::{Order, norm_inter, norm_inter_ranks};

/// Points of the grid over W's observed range.
const GRID: usize = 61;
/// Bisection steps: the boundary to 2^-40 of the grid step.
const STEPS: usize = 40;

/// summary.json `moderation.johnson_neyman`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JohnsonNeyman {
    /// The interval it is judged by (percentile) and its level.
    pub method: String,
    pub level: f64,
    /// W's observed range, where the region is looked for.
    pub range: [f64; 2],
    /// Moderator values where the interval's bound crosses zero.
    pub boundaries: Vec<f64>,
    /// The intervals of W where the interval excludes zero.
    pub significant: Vec<[f64; 2]>,
    /// The conditional indirect effect over the grid, with its interval.
    pub curve: Vec<CurvePoint>,
}

/// One grid point of the curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    pub w: f64,
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The conditional indirect effect at u of the paths `(a1, a3, b1, b3)`
/// of each mediator: the sum of theirs.
fn total(paths: &[[f64; 4]], u: f64) -> f64 {
    paths.iter().map(|p| omega(p, u)).sum()
}

/// The region from the replicates' `(a1, a3, b1, b3)` of each mediator
/// (`estimate.len()` of them per replicate, one after another; degenerate
/// replicates left out), the estimate's, W's shift in the products and
/// observed range, at `level`.
pub fn johnson_neyman(
    draws: &[[f64; 4]],
    estimate: &[[f64; 4]],
    shift: f64,
    range: (f64, f64),
    level: f64,
) -> Option<JohnsonNeyman> {
    let draws: Vec<&[[f64; 4]]> = draws
        .chunks(estimate.len().max(1))
        .filter(|d| d.iter().flatten().all(|v| v.is_finite()))
        .collect();
    if draws.len() < 2 || !(range.1 > range.0) {
        return None;
    }
    let alpha = (1.0 - level) / 2.0;
    let mut values = vec![0.0; draws.len()];
    let mut bounds = |w: f64| -> (f64, f64) {
        for (v, d) in values.iter_mut().zip(&draws) {
            *v = total(d, w - shift);
        }
        (
            quantile(&mut values, alpha),
            quantile(&mut values, 1.0 - alpha),
        )
    };
    let excludes = |(lo, hi): (f64, f64)| lo > 0.0 || hi < 0.0;
    let step = (range.1 - range.0) / (GRID - 1) as f64;
    let grid: Vec<f64> = (0..GRID).map(|k| range.0 + step * k as f64).collect();
    let mut curve = Vec::with_capacity(GRID);
    for &w in &grid {
        let (lower, upper) = bounds(w);
        curve.push(CurvePoint {
            w,
            estimate: total(estimate, w - shift),
            lower,
            upper,
        });
    }
    let mut boundaries = Vec::new();
    let mut significant = Vec::new();
    let mut start = excludes((curve[0].lower, curve[0].upper)).then_some(range.0);
    for k in 1..GRID {
        let (was, is) = (
            excludes((curve[k - 1].lower, curve[k - 1].upper)),
            excludes((curve[k].lower, curve[k].upper)),
        );
        if was == is {
            continue;
        }
        let (mut lo, mut hi) = (grid[k - 1], grid[k]);
        for _ in 0..STEPS {
            let mid = 0.5 * (lo + hi);
            if excludes(bounds(mid)) == was {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let boundary = 0.5 * (lo + hi);
        boundaries.push(boundary);
        match start.take() {
            Some(from) => significant.push([from, boundary]),
            None => start = Some(boundary),
        }
    }
    if let Some(from) = start {
        significant.push([from, range.1]);
    }
    Some(JohnsonNeyman {
        method: "percentile".into(),
        level,
        range: [range.0, range.1],
        boundaries,
        significant,
        curve,
    })
}

/// The percentile interval's bound at `alpha` (boot's `norm.inter`, as the
/// run's percentile intervals), by selecting the ranks it reads.
fn quantile(values: &mut [f64], alpha: f64) -> f64 {
    let n = values.len();
    let mut ranks = std::collections::BTreeMap::new();
    for k in norm_inter_ranks(n, alpha) {
        let (_, v, _) = values.select_nth_unstable_by(k - 1, f64::total_cmp);
        ranks.insert(k, *v);
    }
    norm_inter(Order::Ranks(&ranks), n, alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws of a1 + a3 u around known values, b fixed at 1: the interval
    /// of the conditional effect is known at every W, so the boundaries are.
    #[test]
    fn the_boundaries_are_where_the_interval_crosses_zero() {
        // omega(u) = a1 + a3 u with a1 ~ 1 +- e, a3 = -1 exactly: the
        // interval is [1 - u - q, 1 - u + q], q the draws' upper quantile
        // of e; it excludes zero for u < 1 - q and u > 1 + q.
        let e: Vec<f64> = (0..999).map(|k| (k as f64 - 499.0) / 1000.0).collect();
        let draws: Vec<[f64; 4]> = e.iter().map(|e| [1.0 + e, -1.0, 1.0, 0.0]).collect();
        let jn = johnson_neyman(&draws, &[[1.0, -1.0, 1.0, 0.0]], 0.0, (-2.0, 4.0), 0.9).unwrap();
        // Two parallel mediators, each with half of b: the same total, so
        // the same region.
        let halves: Vec<[f64; 4]> = draws
            .iter()
            .flat_map(|d| [[d[0], d[1], 0.25, 0.0], [d[0], d[1], 0.75, 0.0]])
            .collect();
        let estimate = [[1.0, -1.0, 0.25, 0.0], [1.0, -1.0, 0.75, 0.0]];
        let split = johnson_neyman(&halves, &estimate, 0.0, (-2.0, 4.0), 0.9).unwrap();
        for (a, b) in split.boundaries.iter().zip(&jn.boundaries) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        assert_eq!(split.boundaries.len(), jn.boundaries.len());
        let mut v = e.clone();
        let q = quantile(&mut v, 0.95);
        assert_eq!(jn.boundaries.len(), 2, "{:?}", jn.boundaries);
        assert!(
            (jn.boundaries[0] - (1.0 - q)).abs() < 1e-9,
            "{:?} vs {}",
            jn.boundaries,
            1.0 - q
        );
        assert!((jn.boundaries[1] - (1.0 + q)).abs() < 1e-9);
        assert_eq!(
            jn.significant,
            vec![[-2.0, jn.boundaries[0]], [jn.boundaries[1], 4.0]]
        );
        assert_eq!(jn.curve.len(), GRID);
    }

    #[test]
    fn quantiles_are_the_percentile_intervals() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).rev().collect();
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        for alpha in [0.025, 0.05, 0.5, 0.975] {
            let want = norm_inter(Order::Sorted(&sorted), 100, alpha);
            assert_eq!(quantile(&mut v, alpha), want);
        }
    }
}
