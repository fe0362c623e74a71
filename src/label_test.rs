//! The permutation test of a between-group contrast: under the null that
//! two groups' models are the same, the group labels of their clusters are
//! exchangeable. Replicate r shuffles the clusters of both groups (Fisher-
//! Yates from the Philox stream `(seed, r, STREAM_LABELS)`, drawing
//! `below(i + 1)` for i = n - 1 down to 1), gives the first n_1 to group 1
//! and the rest to group 2, and fits both models from the pooled per-cluster
//! statistics: a group's Gram is the sum of its clusters' `S_g`. The
//! p-value of each effect's difference d is `(1 + #{|d*| >= |d|}) / (1 + B)`,
//! d from the same computation with the observed labels.

use rayon::prelude::*;

use crate::design::Design;
use crate::engine::thread_pool;
use crate::error::{Error, Result};
use crate::linalg::packed_len;
use crate::replicate::{Solver, StatLayout};
use crate::rng::{STREAM_LABELS, WordStream};

/// The test of the contrast between two disjoint sets of clusters.
pub struct LabelPermutation<'a> {
    design: &'a Design,
    solver: Solver,
    /// Group 1's clusters, then group 2's (pooled cluster indices).
    clusters: Vec<usize>,
    n1: usize,
    seed: u64,
}

impl<'a> LabelPermutation<'a> {
    /// The test of `first` against `second` (clusters of the pooled
    /// `design`), which must not share a cluster.
    pub fn new(
        design: &'a Design,
        first: &[usize],
        second: &[usize],
        seed: u64,
    ) -> Result<LabelPermutation<'a>> {
        if first.iter().any(|c| second.contains(c)) {
            return Err(Error::InvalidOption {
                option: "--group".into(),
                message: "groups that share clusters cannot be compared by permuting their labels"
                    .into(),
            });
        }
        Ok(LabelPermutation {
            design,
            solver: Solver::new(design),
            clusters: first.iter().chain(second).copied().collect(),
            n1: first.len(),
            seed,
        })
    }

    /// The statistics' layout (each group's, and so their difference's).
    pub fn layout(&self) -> StatLayout {
        self.solver.layout
    }

    /// Differences (group 1 minus group 2) of every statistic with the
    /// clusters in `order`; false when a group's model is singular.
    fn differences(&self, order: &[usize], solver: &mut Solver, out: &mut [f64]) -> bool {
        let p = packed_len(self.design.q());
        let mut grams = [vec![0.0; p], vec![0.0; p]];
        for (k, &c) in order.iter().enumerate() {
            let gram = &mut grams[usize::from(k >= self.n1)];
            for (a, s) in gram.iter_mut().zip(self.design.cluster_stats(c)) {
                *a += s;
            }
        }
        let mut second = vec![0.0; out.len()];
        if !solver.solve(&grams[0], out) || !solver.solve(&grams[1], &mut second) {
            return false;
        }
        for (a, b) in out.iter_mut().zip(&second) {
            *a -= b;
        }
        true
    }

    /// The differences with the observed labels.
    pub fn observed(&self) -> Option<Vec<f64>> {
        let mut out = vec![0.0; self.layout().len()];
        let mut solver = self.solver.clone();
        self.differences(&self.clusters, &mut solver, &mut out)
            .then_some(out)
    }

    /// Replicate r's cluster order: a Fisher-Yates shuffle.
    pub fn order(&self, r: u64) -> Vec<usize> {
        let mut order = self.clusters.clone();
        let mut s = WordStream::new(self.seed, r, STREAM_LABELS);
        for i in (1..order.len()).rev() {
            let j = s.below(i as u32 + 1) as usize;
            order.swap(i, j);
        }
        order
    }

    /// The p-value of each statistic's observed difference over replicates
    /// `0..replicates` (None where the observed labels give a singular
    /// model), on `threads` workers; singular replicates are left out.
    pub fn p_values(&self, replicates: u64, threads: usize) -> Result<Vec<Option<f64>>> {
        let n = self.layout().len();
        let Some(observed) = self.observed() else {
            return Ok(vec![None; n]);
        };
        let pool = thread_pool(threads, 1)?;
        let (hits, valid) = pool.install(|| {
            (0..replicates)
                .into_par_iter()
                .fold(
                    || (vec![0u64; n], 0u64, self.solver.clone(), vec![0.0; n]),
                    |(mut hits, mut valid, mut solver, mut d), r| {
                        if self.differences(&self.order(r), &mut solver, &mut d) {
                            valid += 1;
                            for ((h, x), o) in hits.iter_mut().zip(&d).zip(&observed) {
                                *h += (x.abs() >= o.abs()) as u64;
                            }
                        }
                        (hits, valid, solver, d)
                    },
                )
                .map(|(hits, valid, _, _)| (hits, valid))
                .reduce(
                    || (vec![0u64; n], 0u64),
                    |(a, va), (b, vb)| (a.iter().zip(&b).map(|(x, y)| x + y).collect(), va + vb),
                )
        });
        Ok(hits
            .iter()
            .map(|&h| Some((1 + h) as f64 / (1 + valid) as f64))
            .collect())
    }
}
