//! Restricted wild cluster bootstrap (WCR) tests of single coefficients,
//! after Roodman, MacKinnon, Nielsen and Webb (2019), "Fast and wild".
//!
//! For coefficient k of one equation (regressors X, fixed): impose
//! beta_k = 0, take the restricted residuals e~ and their cluster scores
//! `s~_g = X_g' e~_g`. Replicate r with cluster weights v (the same v as the
//! unrestricted replicates of every equation) has
//!
//! * `beta*_k = sum_h v_h p_h`, `p_h = a_k' s~_h` (`a_k` row k of (X'X)^-1);
//! * cluster scores `a_k' s*_g = v_g p_g - sum_h v_h C[g][h]` with
//!   `C[g][h] = (a_k' X_g'X_g) (X'X)^-1 s~_h`,
//!
//! so the weights times the G x (G + 1) matrix [C' | p] give every
//! replicate's numerator and its CR1 standard error, and
//! `p = #{|t*| >= |t|} / B` with t the observed CR1 t statistic. Everything is
//! computed in the design's scaled units, where t statistics are the same.
//!
//! C has rank k (the equation's regressors): `C = Q D'`, Q's row g
//! `a_k' X_g'X_g` and D's row h `(X'X)^-1 s~_h`. The CPU multiplies in that
//! order, two GEMMs of 2 G (k + 1) and 2 G k flops a replicate instead of one
//! of 2 G (G + 1) (Roodman et al.'s own shortcut where k < G); the GPU's
//! stage takes the whole matrix ([`RestrictedTest::matrix`]).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::math::linalg::{chol_inverse, chol_solve, cholesky, packed_index, submatrix};
use crate::model::design::Design;
use crate::model::estimate::{Equation, SystemFit};
use crate::resample::scheme::WeightPlan;

/// One WCR test, ready to be run for any replicates.
pub struct RestrictedTest {
    g: usize,
    /// The equation's regressors.
    k: usize,
    /// G x (k + 1), row-major: `[D | p]`.
    dp: Vec<f64>,
    /// k x G, row-major: `Q'`.
    qt: Vec<f64>,
    p: Vec<f64>,
    /// CR1 small-sample factor of the equation.
    ssc: f64,
    /// |t| of the observed coefficient.
    t_obs: f64,
}

impl RestrictedTest {
    /// The test of `eq`'s coefficient on design column `col`; `e` is the
    /// equation's index in `fit`.
    pub fn new(
        design: &Design,
        fit: &SystemFit,
        e: usize,
        eq: &Equation,
        col: usize,
    ) -> Result<Self> {
        let q = design.q();
        let g = design.n_clusters;
        let r = &eq.regressors;
        let k = r.len();
        let kk = r
            .iter()
            .position(|&c| c == col)
            .expect("column is a regressor");
        let a = design.total_gram();
        let singular = || {
            Error::Numerical(format!(
                "singular normal equations in the wild test of {}",
                eq.name
            ))
        };

        // Restricted coefficients (beta_k = 0).
        let rr: Vec<usize> = r.iter().copied().filter(|&c| c != col).collect();
        let mut lr = submatrix(&a, q, &rr, &rr);
        cholesky(&mut lr, rr.len()).map_err(|_| singular())?;
        let mut br: Vec<f64> = rr.iter().map(|&c| a[c * q + eq.dependent]).collect();
        chol_solve(&lr, rr.len(), &mut br);
        let mut beta = vec![0.0; k];
        for (i, &c) in r.iter().enumerate() {
            if let Some(j) = rr.iter().position(|&x| x == c) {
                beta[i] = br[j];
            }
        }

        // (X'X)^-1 and its row k.
        let mut l = submatrix(&a, q, r, r);
        cholesky(&mut l, k).map_err(|_| singular())?;
        let inv = chol_inverse(&l, k);
        let ak = &inv[kk * k..(kk + 1) * k];

        let mut p = vec![0.0; g];
        let mut qg = vec![0.0; g * k];
        let mut d = vec![0.0; g * k];
        for c in 0..g {
            let s = design.cluster_stats(c);
            let mut score = vec![0.0; k];
            for (i, &ri) in r.iter().enumerate() {
                let mut v = s[packed_index(ri, eq.dependent, q)];
                for (j, &rj) in r.iter().enumerate() {
                    v -= s[packed_index(ri, rj, q)] * beta[j];
                }
                score[i] = v;
            }
            p[c] = ak.iter().zip(&score).map(|(x, y)| x * y).sum();
            for j in 0..k {
                qg[c * k + j] = r
                    .iter()
                    .enumerate()
                    .map(|(i, &ri)| ak[i] * s[packed_index(ri, r[j], q)])
                    .sum();
            }
            chol_solve(&l, k, &mut score);
            d[c * k..(c + 1) * k].copy_from_slice(&score);
        }
        let mut dp = vec![0.0; g * (k + 1)];
        let mut qt = vec![0.0; k * g];
        for c in 0..g {
            dp[c * (k + 1)..c * (k + 1) + k].copy_from_slice(&d[c * k..(c + 1) * k]);
            dp[c * (k + 1) + k] = p[c];
            for j in 0..k {
                qt[j * g + c] = qg[c * k + j];
            }
        }
        let t_obs = (fit.coef(e, col) / fit.se(e, col)).abs();
        Ok(RestrictedTest {
            g,
            k,
            dp,
            qt,
            p,
            ssc: fit.equations[e].ssc,
            t_obs,
        })
    }

    /// Clusters.
    pub fn n_clusters(&self) -> usize {
        self.g
    }

    /// The G x (G + 1) matrix `[C' | p]` the weights multiply on the GPU,
    /// `C[g][h] = sum_j Q[g][j] D[h][j]`.
    pub fn matrix(&self) -> Vec<f64> {
        let (g, k) = (self.g, self.k);
        let mut rhs = vec![0.0; g * (g + 1)];
        for h in 0..g {
            let d = &self.dp[h * (k + 1)..h * (k + 1) + k];
            for c in 0..g {
                rhs[h * (g + 1) + c] = (0..k).map(|j| self.qt[j * g + c] * d[j]).sum();
            }
            rhs[h * (g + 1) + g] = self.p[h];
        }
        rhs
    }

    /// `p` (G values), then the equation's CR1 factor: what the GPU's
    /// finishing stage needs besides the product.
    pub fn scores_and_factor(&self) -> Vec<f64> {
        self.p.iter().copied().chain([self.ssc]).collect()
    }

    /// |t| of the observed coefficient.
    pub fn t_observed(&self) -> f64 {
        self.t_obs
    }

    /// How many of `count` replicates from `start` have |t*| >= |t|.
    fn exceedances(&self, plan: &WeightPlan, start: u64, count: usize) -> u64 {
        let g = self.g;
        let mut w = vec![0.0; count * g];
        for (i, row) in w.chunks_mut(g).enumerate() {
            plan.fill(start + i as u64, row);
        }
        let k = self.k;
        // u = v [D | p], then v C' = u[..k] Q'.
        let mut u = vec![0.0; count * (k + 1)];
        let mut vc = vec![0.0; count * g];
        // SAFETY: count x g, g x (k+1) and count x (k+1) row-major buffers;
        // then u's first k columns (row stride k+1), k x g and count x g.
        unsafe {
            matrixmultiply::dgemm(
                count,
                g,
                k + 1,
                1.0,
                w.as_ptr(),
                g as isize,
                1,
                self.dp.as_ptr(),
                (k + 1) as isize,
                1,
                0.0,
                u.as_mut_ptr(),
                (k + 1) as isize,
                1,
            );
            matrixmultiply::dgemm(
                count,
                k,
                g,
                1.0,
                u.as_ptr(),
                (k + 1) as isize,
                1,
                self.qt.as_ptr(),
                g as isize,
                1,
                0.0,
                vc.as_mut_ptr(),
                g as isize,
                1,
            );
        }
        let mut hits = 0;
        for ((v, row), u) in w.chunks(g).zip(vc.chunks(g)).zip(u.chunks(k + 1)) {
            let num = u[k];
            let ss: f64 = (0..g)
                .map(|c| {
                    let z = v[c] * self.p[c] - row[c];
                    z * z
                })
                .sum();
            let t = num / (self.ssc * ss).sqrt();
            if t.abs() >= self.t_obs {
                hits += 1;
            }
        }
        hits
    }

    /// The WCR bootstrap p-value over replicates `0..replicates` of `plan`
    /// (the wild weights), in batches of `batch` on `pool`.
    pub fn p_value(
        &self,
        plan: &WeightPlan,
        replicates: u64,
        batch: usize,
        pool: &rayon::ThreadPool,
    ) -> f64 {
        let batches = replicates.div_ceil(batch as u64);
        let hits: u64 = pool.install(|| {
            (0..batches)
                .into_par_iter()
                .map(|b| {
                    let start = b * batch as u64;
                    let count = (replicates - start).min(batch as u64) as usize;
                    self.exceedances(plan, start, count)
                })
                .sum()
        });
        hits as f64 / replicates as f64
    }
}
