//! The permutation test of a between-group contrast: under the null that
//! two groups' models are the same, the group labels of their clusters are
//! exchangeable. Replicate r shuffles the clusters of both groups (Fisher-
//! Yates from the Philox stream `(seed, r, STREAM_LABELS)`, drawing
//! `below(i + 1)` for i = n - 1 down to 1), gives the first n_1 to group 1
//! and the rest to group 2, and fits both models from the pooled per-cluster
//! statistics: a group's Gram is the sum of its clusters' `S_g`. The
//! p-value of each effect's difference d is `(1 + #{|d*| >= |d|}) / (1 + B)`,
//! d from the same computation with the observed labels.
//!
//! Each side of the shuffle is a weight plan (`Scheme::Labels`: weight 1
//! for the side's clusters, 0 for the others) over the design of the two
//! groups' clusters, so any engine computes the replicates: the CPU engine,
//! or the GPU engine's weight, GEMM and solve stages, whitened at the fit of
//! both groups together.

use crate::error::{Error, Result};
use crate::math::linalg::packed_len;
use crate::model::design::Design;
use crate::model::estimate::{SystemFit, fit_system};
use crate::model::mediation::equations;
use crate::model::replicate::{Solver, StatLayout};
use crate::resample::engine::Engine;
use crate::resample::factory::{CpuRequest, cpu_engine};
use crate::resample::scheme::{Scheme, WeightPlan};

/// The test of the contrast between two disjoint sets of clusters.
pub struct LabelPermutation {
    /// The two groups' clusters: group 1's, then group 2's.
    design: Design,
    /// The model of both groups together (the GPU engine's whitening point).
    fit: SystemFit,
    n1: usize,
    seed: u64,
}

impl LabelPermutation {
    /// The test of `first` against `second` (clusters of the pooled
    /// `design`), which must not share a cluster.
    pub fn new(
        design: &Design,
        first: &[usize],
        second: &[usize],
        seed: u64,
    ) -> Result<LabelPermutation> {
        if first.iter().any(|c| second.contains(c)) {
            return Err(Error::InvalidOption {
                option: "model.groups".into(),
                message: "groups that share clusters cannot be compared by permuting their labels"
                    .into(),
            });
        }
        let clusters: Vec<usize> = first.iter().chain(second).copied().collect();
        let design = design.subset(&clusters);
        let fit = fit_system(&design, &equations(&design))?;
        Ok(LabelPermutation {
            design,
            fit,
            n1: first.len(),
            seed,
        })
    }

    /// The statistics' layout (each group's, and so their difference's).
    pub fn layout(&self) -> StatLayout {
        StatLayout::of(&self.design)
    }

    /// The design of both groups' clusters (group 1's first).
    pub fn design(&self) -> &Design {
        &self.design
    }

    /// The fit of both groups together.
    pub fn fit(&self) -> &SystemFit {
        &self.fit
    }

    /// The weight plan of one side of the shuffle (`second`: group 2's).
    pub fn plan(&self, second: bool) -> WeightPlan {
        let scheme = Scheme::Labels {
            first: self.n1 as u32,
            second,
        };
        WeightPlan::new(scheme, self.seed, self.design.n_clusters, None)
    }

    /// The differences (group 1 minus group 2) of every statistic with the
    /// observed labels; None when a group's model is singular.
    pub fn observed(&self) -> Option<Vec<f64>> {
        let mut solver = Solver::new(&self.design);
        let n = self.layout().len();
        let p = packed_len(self.design.q());
        let mut grams = [vec![0.0; p], vec![0.0; p]];
        for c in 0..self.design.n_clusters {
            let gram = &mut grams[usize::from(c >= self.n1)];
            for (a, s) in gram.iter_mut().zip(self.design.cluster_stats(c)) {
                *a += s;
            }
        }
        let (mut first, mut second) = (vec![0.0; n], vec![0.0; n]);
        if !solver.solve(&grams[0], &mut first) || !solver.solve(&grams[1], &mut second) {
            return None;
        }
        Some(first.iter().zip(&second).map(|(a, b)| a - b).collect())
    }

    /// The p-value of each statistic's observed difference over replicates
    /// `0..replicates`, with `sides` computing the replicates of
    /// `plan(false)` and `plan(true)` (None for every statistic where the
    /// observed labels give a singular model); replicates where either
    /// side is singular are left out.
    pub fn p_values(&self, sides: [&dyn Engine; 2], replicates: u64) -> Result<Vec<Option<f64>>> {
        let n = self.layout().len();
        let Some(observed) = self.observed() else {
            return Ok(vec![None; n]);
        };
        let chunk = sides[0].chunk().min(sides[1].chunk()).max(1) as u64;
        let mut hits = vec![0u64; n];
        let mut valid = 0u64;
        let mut start = 0;
        while start < replicates {
            let count = chunk.min(replicates - start) as usize;
            let (mut first, mut second) = (vec![0.0; count * n], vec![0.0; count * n]);
            sides[0].compute(start, &mut first)?;
            sides[1].compute(start, &mut second)?;
            for (a, b) in first.chunks(n).zip(second.chunks(n)) {
                if a.iter().chain(b).any(|v| v.is_nan()) {
                    continue;
                }
                valid += 1;
                for (((h, x), y), o) in hits.iter_mut().zip(a).zip(b).zip(&observed) {
                    *h += ((x - y).abs() >= o.abs()) as u64;
                }
            }
            start += count as u64;
        }
        Ok(hits
            .iter()
            .map(|&h| Some((1 + h) as f64 / (1 + valid) as f64))
            .collect())
    }

    /// The p-values with the replicates on the CPU engine (`threads`
    /// workers, batches of `batch` replicates).
    pub fn cpu_p_values(
        &self,
        replicates: u64,
        batch: usize,
        threads: usize,
    ) -> Result<Vec<Option<f64>>> {
        let side = |second| {
            let request = CpuRequest {
                design: &self.design,
                fit: &self.fit,
                panel: None,
                batch,
                threads,
                studentize: false,
                robustness_values: false,
                rho: vec![],
                cluster_map: None,
            };
            cpu_engine(request, self.plan(second))
        };
        let (a, b) = (side(false)?, side(true)?);
        self.p_values([a.as_ref(), b.as_ref()], replicates)
    }
}
