//! Resampling schemes that reweight clusters, and the weights of each
//! replicate. Replicate r's weights are a pure function of (seed, r): they
//! are drawn from the Philox stream `(seed, r, STREAM_WEIGHTS)` in the order
//! documented on each scheme, which is the contract the GPU engine follows.

use crate::error::{Error, Result};
use crate::rng::{STREAM_WEIGHTS, WordStream, rejection_threshold};

/// A scheme that gives every cluster a weight per replicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Pairs cluster bootstrap: multinomial counts. Draw i = 0..G-1 (within
    /// each stratum in stratum order, n_s draws of `below(n_s)`) adds one to
    /// the drawn cluster.
    Pairs,
    /// Bayesian bootstrap: Dirichlet(1) weights, `G E_g / sum E` (within
    /// strata: `n_s E_g / sum_{stratum} E`), `E_g = exponential()` drawn for
    /// g = 0..G-1 in cluster order.
    Bayes,
    /// Poisson(1) counts, `poisson1()` for g = 0..G-1 in cluster order.
    Poisson,
    /// Delete-one-cluster jackknife: replicate r drops cluster r; B = G.
    Jackknife,
}

impl Scheme {
    /// Parse a scheme name.
    pub fn parse(s: &str) -> Result<Scheme> {
        match s.trim() {
            "pairs" => Ok(Scheme::Pairs),
            "bayes" | "bayesian" => Ok(Scheme::Bayes),
            "poisson" => Ok(Scheme::Poisson),
            "jackknife" => Ok(Scheme::Jackknife),
            other => Err(Error::InvalidOption {
                option: "--scheme".into(),
                message: format!("'{other}' is not one of pairs, bayes, poisson, jackknife"),
            }),
        }
    }

    /// The name used on the command line and in summary.json.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Pairs => "pairs",
            Scheme::Bayes => "bayes",
            Scheme::Poisson => "poisson",
            Scheme::Jackknife => "jackknife",
        }
    }
}

/// Everything needed to produce any replicate's cluster weights.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightPlan {
    pub scheme: Scheme,
    pub seed: u64,
    pub n_clusters: usize,
    /// Clusters of each stratum (one stratum of all clusters when unstratified).
    pub strata: Vec<Vec<u32>>,
}

impl WeightPlan {
    /// A plan over `n_clusters` clusters; `strata` gives each cluster's stratum.
    pub fn new(scheme: Scheme, seed: u64, n_clusters: usize, strata: Option<&[u32]>) -> WeightPlan {
        let strata = match strata {
            None => vec![(0..n_clusters as u32).collect()],
            Some(codes) => {
                let n = codes.iter().map(|&c| c as usize + 1).max().unwrap_or(0);
                let mut s = vec![Vec::new(); n];
                for (g, &c) in codes.iter().enumerate() {
                    s[c as usize].push(g as u32);
                }
                s.retain(|v| !v.is_empty());
                s
            }
        };
        WeightPlan {
            scheme,
            seed,
            n_clusters,
            strata,
        }
    }

    /// Weights of replicate `r` into `out` (length G); returns their total,
    /// which is exact: G for pairs and Bayes (by construction), G - 1 for the
    /// jackknife, the integer sum of the Poisson counts.
    #[inline(always)]
    pub fn fill(&self, r: u64, out: &mut [f64]) -> f64 {
        debug_assert_eq!(out.len(), self.n_clusters);
        let mut s = WordStream::new(self.seed, r, STREAM_WEIGHTS);
        match self.scheme {
            Scheme::Pairs => {
                out.iter_mut().for_each(|w| *w = 0.0);
                for members in &self.strata {
                    let n = members.len() as u32;
                    let threshold = rejection_threshold(n);
                    for _ in 0..n {
                        out[members[s.below_with(n, threshold) as usize] as usize] += 1.0;
                    }
                }
                self.n_clusters as f64
            }
            Scheme::Bayes => {
                out.iter_mut().for_each(|w| *w = s.exponential());
                for members in &self.strata {
                    let sum: f64 = members.iter().map(|&g| out[g as usize]).sum();
                    let scale = members.len() as f64 / sum;
                    for &g in members {
                        out[g as usize] *= scale;
                    }
                }
                self.n_clusters as f64
            }
            Scheme::Poisson => {
                let mut total = 0u64;
                for w in out.iter_mut() {
                    let k = s.poisson1();
                    total += k as u64;
                    *w = k as f64;
                }
                total as f64
            }
            Scheme::Jackknife => {
                out.iter_mut().for_each(|w| *w = 1.0);
                out[r as usize] = 0.0;
                (self.n_clusters - 1) as f64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_counts_sum_to_g_within_each_stratum() {
        let codes = [0, 1, 0, 1, 1, 2, 2];
        let plan = WeightPlan::new(Scheme::Pairs, 3, 7, Some(&codes));
        let mut w = vec![0.0; 7];
        for r in 0..50 {
            assert_eq!(plan.fill(r, &mut w), 7.0);
            assert_eq!(w[0] + w[2], 2.0);
            assert_eq!(w[1] + w[3] + w[4], 3.0);
            assert_eq!(w[5] + w[6], 2.0);
        }
    }

    #[test]
    fn bayes_weights_are_positive_and_sum_to_g() {
        let plan = WeightPlan::new(Scheme::Bayes, 3, 10, None);
        let mut w = vec![0.0; 10];
        plan.fill(17, &mut w);
        assert!(w.iter().all(|&v| v > 0.0));
        assert!((w.iter().sum::<f64>() - 10.0).abs() < 1e-12);
    }

    #[test]
    fn jackknife_drops_one_cluster() {
        let plan = WeightPlan::new(Scheme::Jackknife, 0, 4, None);
        let mut w = vec![0.0; 4];
        plan.fill(2, &mut w);
        assert_eq!(w, [1.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn weights_depend_only_on_seed_and_replicate() {
        let plan = WeightPlan::new(Scheme::Poisson, 11, 30, None);
        let (mut a, mut b) = (vec![0.0; 30], vec![0.0; 30]);
        plan.fill(1234, &mut a);
        plan.fill(1234, &mut b);
        assert_eq!(a, b);
        plan.fill(1235, &mut b);
        assert_ne!(a, b);
    }
}
