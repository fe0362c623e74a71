//! Resampling schemes that reweight clusters, and the weights of each
//! replicate. Replicate r's weights are a pure function of (seed, r): they
//! are drawn from the Philox stream `(seed, r, STREAM_WEIGHTS)` in the order
//! documented on each scheme, which is the contract the GPU engine follows. [`check_rules`] says which
//! combinations of scheme, model and intervals are refused.

use crate::error::{Error, Result};
use crate::math::rng::{STREAM_LABELS, STREAM_WEIGHTS, WordStream, rejection_threshold};

/// A scheme that gives every cluster a weight per replicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Pairs cluster bootstrap: multinomial counts. Draw i = 0..G-1 (within
    /// each stratum in stratum order, n_s draws of `below(n_s)`) adds one to
    /// the drawn cluster.
    Pairs,
    /// Bayesian bootstrap: Dirichlet(1) weights, `G E_g / sum E` (within
    /// strata: `n_s E_g / sum_{stratum} E`), with `E_g =
    /// rng::exponential_table()[index]` (an integer, Exp(1) in units of
    /// 2^-20) for one word per cluster, g = 0..G-1 in cluster order; the
    /// weight is the f64 division of the exact `n_s E_g` by the exact sum.
    Bayes,
    /// Poisson(1) counts, `poisson1()` for g = 0..G-1 in cluster order.
    Poisson,
    /// Delete-one-cluster jackknife: replicate r drops cluster r; B = G.
    Jackknife,
    /// Wild cluster bootstrap: one draw v_g per cluster, g = 0..G-1 in
    /// cluster order, from the weight distribution (see [`WildWeights`]).
    Wild(WildWeights),
    /// Permutation of the treatment series across units (no weights; see
    /// `permutation`).
    Permutation,
    /// Not a resampling scheme of its own: one side of the label-permutation
    /// test of a between-group contrast (`label_test`). Replicate r shuffles
    /// the G clusters by Fisher-Yates from the stream `(seed, r,
    /// STREAM_LABELS)`, drawing `below(i + 1)` for i = G - 1 down to 1 and
    /// swapping entries i and j of the order (starting as 0..G-1); the
    /// clusters at the first `first` places form the first group. Weight 1
    /// for the clusters of the `second` group if set, else of the first; 0
    /// for the others.
    Labels { first: u32, second: bool },
}

/// Weight distributions of the wild cluster bootstrap (mean 0, variance 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WildWeights {
    /// +-1 with probability 1/2: cluster g takes bit `g % 32` of word
    /// `g / 32` (1 gives +1), so one word serves 32 clusters.
    Rademacher,
    /// Mammen's two-point: `-(sqrt5 - 1)/2` with probability
    /// `(sqrt5 + 1)/(2 sqrt5)` (one word below `MAMMEN_THRESHOLD`), else
    /// `(sqrt5 + 1)/2`.
    Mammen,
    /// Webb's six-point: `+-sqrt(3/2), +-1, +-sqrt(1/2)`, each 1/6:
    /// `WEBB[below(6)]`.
    Webb,
    /// Standard normal, tabulated: `rng::normal_table()[index]` for the top
    /// 16 bits of one word (65,536 equiprobable values, symmetric, variance 1).
    Normal,
}

/// Webb's six points, in the order `below(6)` indexes them.
pub const WEBB: [f64; 6] = [
    -1.224_744_871_391_589,
    -1.0,
    -std::f64::consts::FRAC_1_SQRT_2,
    std::f64::consts::FRAC_1_SQRT_2,
    1.0,
    1.224_744_871_391_589,
];

/// `2^32 mod 6`, the rejection bound of `below(6)`.
const WEBB_REJECTION: u32 = (1u64 << 32).rem_euclid(6) as u32;

/// `floor(2^32 (sqrt5 + 1) / (2 sqrt5))`: a word below it draws Mammen's
/// negative point.
pub const MAMMEN_THRESHOLD: u32 = 3_107_867_531;
const MAMMEN_LOW: f64 = -0.618_033_988_749_894_9;
const MAMMEN_HIGH: f64 = 1.618_033_988_749_895;
/// Mammen's two points, negative first.
pub const MAMMEN_POINTS: [f64; 2] = [MAMMEN_LOW, MAMMEN_HIGH];

spelled!(WildWeights);

impl WildWeights {
    /// Parse a weight distribution name.
    pub fn parse(s: &str) -> Result<WildWeights> {
        match s.trim() {
            "rademacher" => Ok(WildWeights::Rademacher),
            "mammen" => Ok(WildWeights::Mammen),
            "webb" => Ok(WildWeights::Webb),
            "normal" => Ok(WildWeights::Normal),
            other => Err(Error::InvalidOption {
                option: "resampling.weights".into(),
                message: format!("'{other}' is not one of rademacher, mammen, webb, normal"),
            }),
        }
    }

    /// The name used on the command line and in summary.json.
    pub fn as_str(self) -> &'static str {
        match self {
            WildWeights::Rademacher => "rademacher",
            WildWeights::Mammen => "mammen",
            WildWeights::Webb => "webb",
            WildWeights::Normal => "normal",
        }
    }

    #[inline(always)]
    fn draw(self, s: &mut WordStream) -> f64 {
        match self {
            WildWeights::Rademacher => unreachable!("drawn 32 at a time in WeightPlan::fill"),
            WildWeights::Mammen => MAMMEN_POINTS[usize::from(s.word() >= MAMMEN_THRESHOLD)],
            WildWeights::Webb => WEBB[s.below_with(6, WEBB_REJECTION) as usize],
            WildWeights::Normal => crate::math::rng::normal_table()[s.table_index()],
        }
    }
}

spelled!(Scheme);

impl Scheme {
    /// Parse a scheme name.
    pub fn parse(s: &str) -> Result<Scheme> {
        match s.trim() {
            "pairs" => Ok(Scheme::Pairs),
            "bayes" | "bayesian" => Ok(Scheme::Bayes),
            "poisson" => Ok(Scheme::Poisson),
            "jackknife" => Ok(Scheme::Jackknife),
            "wild" => Ok(Scheme::Wild(WildWeights::Rademacher)),
            "permutation" => Ok(Scheme::Permutation),
            other => Err(Error::InvalidOption {
                option: "resampling.scheme".into(),
                message: format!(
                    "'{other}' is not one of pairs, bayes, poisson, jackknife, wild, permutation"
                ),
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
            Scheme::Wild(_) => "wild",
            Scheme::Permutation => "permutation",
            Scheme::Labels { .. } => "labels",
        }
    }
}

/// What a resampling is asked to give besides the effects' replicates,
/// for [`check_rules`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Asks {
    /// The model fits an equation by two-stage least squares (an
    /// instrumented treatment or instrumented mediators).
    pub instrumented: bool,
    /// Studentized intervals (each replicate's own SEs).
    pub studentized: bool,
    /// Sensitivity bands (each replicate's ACME(rho)).
    pub sensitivity: bool,
    /// The wild scheme's restricted (WCR) tests.
    pub wild_tests: bool,
    /// The model has a moderator (products of columns).
    pub moderated: bool,
    /// The model has the treatment-mediator interaction X*M.
    pub interaction: bool,
    /// The model absorbs `unit+GROUP^time` effects.
    pub cells: bool,
}

impl Asks {
    /// What `design`'s model brings to the rules (instrumented, moderated,
    /// interaction); the caller adds what the run asks.
    pub fn model(design: &crate::model::design::Design) -> Asks {
        Asks {
            instrumented: design.layout.instrumented(),
            moderated: design.moderation.is_some(),
            interaction: design.interaction.is_some(),
            cells: design.cells.is_some(),
            ..Asks::default()
        }
    }
}

/// The combinations of scheme, model and intervals medsim refuses, in one
/// place: the driver checks a run's before any work, and each engine the
/// part it is given.
pub fn check_rules(scheme: Scheme, asks: Asks) -> Result<()> {
    let wild = matches!(scheme, Scheme::Wild(_));
    let permutation = scheme == Scheme::Permutation;
    let refuse = |option: &str, message: &str| {
        Err(Error::InvalidOption {
            option: option.into(),
            message: message.into(),
        })
    };
    if asks.instrumented && permutation {
        return refuse(
            "resampling.scheme",
            "the permutation test permutes the treatment, which breaks an instrumented model's \
             first stage; with model.instrument or model.mediator_instrument use pairs, bayes, \
             poisson, jackknife or wild",
        );
    }
    if asks.instrumented && wild && asks.wild_tests {
        return refuse(
            "resampling.scheme",
            "the restricted wild tests (WCR) impose the null on least-squares equations and do \
             not apply to two-stage least squares; with model.instrument or \
             model.mediator_instrument turn off \
             resampling.wild_tests (the wild intervals then are a score bootstrap of the 2SLS \
             estimates) or use the pairs scheme",
        );
    }
    if asks.sensitivity && (permutation || wild) {
        return refuse(
            "resampling.scheme",
            "sensitivity bands need a reweighting scheme (pairs, bayes, poisson, jackknife): \
             permutation and wild replicates have no Gram matrix",
        );
    }
    if (asks.moderated || asks.interaction) && asks.sensitivity {
        return refuse(
            "sensitivity",
            "the sensitivity analysis is for one mediator without moderation or interaction; \
             drop model.moderator (model.interaction) or the [sensitivity] section",
        );
    }
    if asks.cells && permutation {
        return refuse(
            "resampling.scheme",
            "the permutation test with unit+GROUP^time fixed effects is not supported (a \
             permuted treatment would need its cell effects refitted); use pairs, bayes, \
             poisson, jackknife or wild",
        );
    }
    if asks.cells && asks.studentized {
        return refuse(
            "inference.methods",
            "studentized intervals with unit+GROUP^time fixed effects are not supported yet (a \
             replicate's cluster scores move with its own cell effects); use percentile, bca \
             or the others",
        );
    }
    if asks.studentized && permutation {
        return refuse(
            "inference.methods",
            "a permutation run gives p-values, not studentized intervals",
        );
    }
    if asks.studentized && wild {
        return refuse(
            "inference.methods",
            "studentized intervals are available for the pairs, bayes, poisson and jackknife \
             schemes, not yet for wild",
        );
    }
    Ok(())
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

thread_local! {
    /// Each thread's pairs counts and a stratum's words ([`WeightPlan::fill`]).
    static PAIRS_SCRATCH: std::cell::RefCell<(Vec<u32>, Vec<u32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
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
                // Counted in integers (an increment's latency is a cycle, a
                // float add's four), then written out: the same counts. A
                // stratum's words are taken together, so that the counting
                // loop makes no call; a word rejected (Lemire) is made up
                // for after it, from the words that follow, as
                // `below_with` would.
                PAIRS_SCRATCH.with(|scratch| {
                    let (counts, words) = &mut *scratch.borrow_mut();
                    counts.clear();
                    counts.resize(self.n_clusters, 0);
                    for members in &self.strata {
                        let n = members.len() as u32;
                        let threshold = rejection_threshold(n);
                        words.resize(members.len(), 0);
                        s.fill(words);
                        let whole = members.len() == self.n_clusters;
                        let mut count = |k: u32| match whole {
                            // The one stratum of every cluster, in order.
                            true => counts[k as usize] += 1,
                            false => counts[members[k as usize] as usize] += 1,
                        };
                        let mut rejected = 0;
                        for &w in words.iter() {
                            let m = (w as u64) * (n as u64);
                            if (m as u32) < threshold {
                                rejected += 1;
                                continue;
                            }
                            count((m >> 32) as u32);
                        }
                        for _ in 0..rejected {
                            count(s.below_with(n, threshold));
                        }
                    }
                    for (w, &k) in out.iter_mut().zip(counts.iter()) {
                        *w = k as f64;
                    }
                });
                self.n_clusters as f64
            }
            Scheme::Bayes => {
                let table = crate::math::rng::exponential_table();
                out.iter_mut()
                    .for_each(|w| *w = table[s.table_index()] as f64);
                for members in &self.strata {
                    // Integers below 2^24 each: the sum and n E_g are exact.
                    let sum: f64 = members.iter().map(|&g| out[g as usize]).sum();
                    let n = members.len() as f64;
                    for &g in members {
                        out[g as usize] = n * out[g as usize] / sum;
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
            Scheme::Wild(WildWeights::Rademacher) => {
                let mut ones = 0i64;
                for chunk in out.chunks_mut(32) {
                    let bits = s.word();
                    for (b, w) in chunk.iter_mut().enumerate() {
                        *w = ((bits >> b) & 1) as f64 * 2.0 - 1.0;
                    }
                    let used = if chunk.len() == 32 {
                        bits
                    } else {
                        bits & ((1u32 << chunk.len()) - 1)
                    };
                    ones += used.count_ones() as i64;
                }
                (2 * ones - self.n_clusters as i64) as f64
            }
            Scheme::Permutation => unreachable!("the permutation scheme draws no weights"),
            Scheme::Labels { first, second } => {
                let mut s = WordStream::new(self.seed, r, STREAM_LABELS);
                let mut order: Vec<u32> = (0..self.n_clusters as u32).collect();
                for i in (1..order.len()).rev() {
                    let j = s.below(i as u32 + 1) as usize;
                    order.swap(i, j);
                }
                let first = first as usize;
                out.iter_mut().for_each(|w| *w = 0.0);
                let side = if second {
                    &order[first..]
                } else {
                    &order[..first]
                };
                for &c in side {
                    out[c as usize] = 1.0;
                }
                side.len() as f64
            }
            Scheme::Wild(dist) => {
                let mut total = 0.0;
                for w in out.iter_mut() {
                    *w = dist.draw(&mut s);
                    total += *w;
                }
                total
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

    /// The counts are those of one `below` per draw, in stream order, with
    /// strata and without, including where words are rejected: 3 * 2^20
    /// clusters reject a word in about 4,000 (2^32 mod n = 2^20).
    #[test]
    fn pairs_counts_are_the_streams_draws() {
        let reference = |plan: &WeightPlan, r: u64| -> Vec<f64> {
            let mut s = WordStream::new(plan.seed, r, STREAM_WEIGHTS);
            let mut w = vec![0.0; plan.n_clusters];
            for members in &plan.strata {
                for _ in 0..members.len() {
                    w[members[s.below(members.len() as u32) as usize] as usize] += 1.0;
                }
            }
            w
        };
        let g = 3 << 20;
        assert_eq!(rejection_threshold(g as u32), 1 << 20);
        let codes: Vec<u32> = (0..g as u32).map(|c| (c % 7 == 0) as u32).collect();
        for strata in [None, Some(&codes[..])] {
            let plan = WeightPlan::new(Scheme::Pairs, 9, g, strata);
            let mut w = vec![0.0; g];
            for r in 0..2 {
                plan.fill(r, &mut w);
                assert!(
                    w == reference(&plan, r),
                    "replicate {r}, strata {}",
                    strata.is_some()
                );
            }
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
    fn mammen_constants_and_wild_moments() {
        let s5 = 5f64.sqrt();
        assert_eq!(MAMMEN_LOW, -(s5 - 1.0) / 2.0);
        assert_eq!(MAMMEN_HIGH, (s5 + 1.0) / 2.0);
        assert_eq!(
            MAMMEN_THRESHOLD,
            ((s5 + 1.0) / (2.0 * s5) * 4_294_967_296.0) as u32
        );
        assert_eq!(WEBB[5], 1.5f64.sqrt());
        for dist in [
            WildWeights::Rademacher,
            WildWeights::Mammen,
            WildWeights::Webb,
            WildWeights::Normal,
        ] {
            let plan = WeightPlan::new(Scheme::Wild(dist), 9, 1000, None);
            let mut w = vec![0.0; 1000];
            let (mut s1, mut s2, mut s3, mut n) = (0.0, 0.0, 0.0, 0.0);
            for r in 0..100 {
                plan.fill(r, &mut w);
                for v in &w {
                    s1 += v;
                    s2 += v * v;
                    s3 += v * v * v;
                    n += 1.0;
                }
            }
            let (m1, m2, m3) = (s1 / n, s2 / n, s3 / n);
            assert!(
                m1.abs() < 0.015 && (m2 - 1.0).abs() < 0.03,
                "{dist:?}: {m1} {m2}"
            );
            // Mammen's third moment is 1, the others' 0.
            let want3 = if dist == WildWeights::Mammen {
                1.0
            } else {
                0.0
            };
            assert!((m3 - want3).abs() < 0.08, "{dist:?}: third moment {m3}");
        }
    }

    #[test]
    fn label_sides_split_a_fisher_yates_shuffle() {
        let g = 9;
        let mut order: Vec<usize> = (0..g).collect();
        let mut s = WordStream::new(5, 3, STREAM_LABELS);
        for i in (1..g).rev() {
            let j = s.below(i as u32 + 1) as usize;
            order.swap(i, j);
        }
        let (mut a, mut b) = (vec![0.0; g], vec![0.0; g]);
        let side = |second| WeightPlan::new(Scheme::Labels { first: 4, second }, 5, g, None);
        assert_eq!(side(false).fill(3, &mut a), 4.0);
        assert_eq!(side(true).fill(3, &mut b), 5.0);
        for (k, &c) in order.iter().enumerate() {
            assert_eq!((a[c], b[c]), if k < 4 { (1.0, 0.0) } else { (0.0, 1.0) });
        }
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
