//! Replicates as small deviations from the full-sample fit, in coordinates
//! where the full-sample Gram matrix is the identity. This is what lets the
//! GPU engine run in f32 and still match the f64 CPU engine to a tiny
//! fraction of a bootstrap standard deviation.
//!
//! With `A = L L'` the full-sample Gram of all q design columns (outcome
//! included) and `Z = z L^{-T}` the whitened columns, cluster g's statistics
//! become `T_g = L^{-1} S_g L^{-T}`, which sum to the identity. A replicate's
//! whitened Gram is `I + E` with `E = sum_g (w_g - 1) T_g`: small entries
//! (of order 1/sqrt(G)), computed without cancellation because the weights
//! minus one are exact small integers for pairs, Poisson and the jackknife.
//!
//! Because L is triangular, the first k whitened columns span the same space
//! as the first k design columns, and a whitened column is orthogonal (in
//! the full sample) to every column before it. So the replicate change of
//! the coefficient on design column i in the regression of column t on
//! columns `0..k` is, exactly,
//!
//! ```text
//! delta = sum_{s=k..=t} L[t][s] * (w . E[0..k, s]),   w = (I + E)_kk^{-1} l_i,
//! ```
//!
//! with `l_i[u] = (L^{-1})[u][i]` (row i of `L_kk^{-T}`, which maps whitened
//! coefficients to design ones). Every quantity is of the size of the answer,
//! and `I + E` is well conditioned whatever the design's collinearity, so
//! rounding errors are relative to the bootstrap spread, not to the
//! coefficient. The replicate coefficient is `theta_hat + delta`, added in
//! f64 on the host. [`Whitened::deltas`] is the f64 reference of the GPU's
//! `solve.wgsl`.

use crate::error::{Error, Result};
use crate::math::linalg::{packed_index, packed_len, unpack};
use crate::model::design::Design;
use crate::model::estimate::SystemFit;
use crate::model::mediation::{equations, reported_coefficients};

/// One reported coefficient: the coefficient on design column `i` in the
/// regression of column `t` on columns `0..k`, times `scale` (to data units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficient {
    pub k: usize,
    pub i: usize,
    pub t: usize,
    pub scale: f64,
}

/// A design in whitened coordinates, with what a replicate's coefficient
/// changes need.
#[derive(Debug, Clone)]
pub struct Whitened {
    pub n_clusters: usize,
    /// G x packed_len(q): the packed `T_g`.
    pub stats: Vec<f64>,
    /// Row-major q x q lower-triangular L of the full-sample Gram.
    pub factor: Vec<f64>,
    /// Row-major q x q `L^{-1}`.
    pub inverse: Vec<f64>,
    /// `a_1..a_m, b_1..b_m, c, c'` (and a chain's links or the
    /// interaction's coefficient: `reported_coefficients`), the order of
    /// `theta`.
    pub coefficients: Vec<Coefficient>,
    /// Full-sample values of the coefficients, in the units of the data.
    pub theta: Vec<f64>,
    /// The coefficients as (equation, design column) of the fit.
    pub coefficient_keys: Vec<(usize, usize)>,
}

impl Whitened {
    /// Columns of the design (the factor is q x q).
    #[cfg(test)]
    pub fn q(&self) -> usize {
        self.factor.len().isqrt()
    }

    /// Whiten `design` by the Cholesky factor of its full-sample Gram; the
    /// full-sample coefficients come from `fit`.
    pub fn new(design: &Design, fit: &SystemFit) -> Result<Whitened> {
        let q = design.q();
        let g = design.n_clusters;
        let p = packed_len(q);
        let mut factor = design.total_gram();
        if let Err(j) = crate::math::linalg::cholesky(&mut factor, q) {
            return Err(Error::Numerical(format!(
                "the full-sample Gram matrix is singular at column '{}' (pivot {j}); \
                 the outcome may be fitted exactly",
                design.names[j]
            )));
        }
        let inverse = lower_inverse(&factor, q);
        let mut stats = vec![0.0; g * p];
        let mut tmp = vec![0.0; q * q];
        for c in 0..g {
            let s = unpack(design.cluster_stats(c), q);
            // tmp = L^{-1} S_g (rows of L^{-1} are zero right of the diagonal).
            for i in 0..q {
                for j in 0..q {
                    tmp[i * q + j] = (0..=i).map(|u| inverse[i * q + u] * s[u * q + j]).sum();
                }
            }
            let row = &mut stats[c * p..(c + 1) * p];
            for i in 0..q {
                for j in i..q {
                    row[packed_index(i, j, q)] =
                        (0..=j).map(|u| tmp[i * q + u] * inverse[j * q + u]).sum();
                }
            }
        }
        // Each reported coefficient is that of column i in its equation,
        // whose regressors must be the leading columns 0..k.
        let equations = equations(design);
        let coefficient_keys = reported_coefficients(design);
        let mut coefficients = Vec::with_capacity(coefficient_keys.len());
        for &(e, i) in &coefficient_keys {
            let eq = &equations[e];
            let k = eq.regressors.len();
            if eq.regressors.iter().enumerate().any(|(u, &c)| u != c) {
                return Err(Error::Gpu(format!(
                    "the {} equation's regressors are not the design's leading columns, so \
                     its coefficients have no whitened form",
                    eq.name
                )));
            }
            coefficients.push(Coefficient {
                k,
                i,
                t: eq.dependent,
                scale: design.scale[eq.dependent] / design.scale[i],
            });
        }
        let theta = coefficient_keys
            .iter()
            .map(|&(e, col)| fit.coef(e, col))
            .collect();
        Ok(Whitened {
            n_clusters: g,
            stats,
            factor,
            inverse,
            coefficients,
            theta,
            coefficient_keys,
        })
    }

    /// The changes of the reported coefficients in the replicate whose
    /// whitened Gram is `I + E` (`e` packed), into `out` (one per
    /// coefficient); false (and NaN) when the replicate's regressors are
    /// singular. With `functionals` (2m rows of packed_len(q)), also the
    /// change of the replicate's influence functionals of a_1..a_m,
    /// b_1..b_m from the full sample's: row o is the packed dc with cluster
    /// g's influence `psi_g = psi_hat_g + dc . T_g` (in the units of the
    /// data; `psi_hat` is the full-sample fit's influence), what studentized
    /// intervals need. The f64 reference of `solve.wgsl`, step for step.
    #[cfg(test)]
    pub fn deltas(&self, e: &[f64], out: &mut [f64], mut functionals: Option<&mut [f64]>) -> bool {
        let q = self.q();
        let ko = q - 1;
        let p = packed_len(q);
        let at = |i: usize, j: usize| e[packed_index(i, j, q)];
        // Lower triangle of the factor of (I + E) over the regressors, row
        // by row, each entry's subtractions in the order c = 0, 1, ...
        let mut l = vec![0.0; ko * ko];
        let mut inv_diag = vec![0.0; ko];
        for i in 0..ko {
            for j in 0..=i {
                let mut v = at(i, j) + if i == j { 1.0 } else { 0.0 };
                for c in 0..j {
                    v -= l[i * ko + c] * l[j * ko + c];
                }
                if j < i {
                    l[i * ko + j] = v * inv_diag[j];
                    continue;
                }
                if !(v > 0.0) {
                    out.iter_mut().for_each(|v| *v = f64::NAN);
                    return false;
                }
                let diag = v.sqrt();
                l[i * ko + i] = diag;
                inv_diag[i] = 1.0 / diag;
            }
        }
        let chol_solve = |k: usize, y: &mut [f64]| {
            for u in 0..k {
                let s: f64 = (0..u).map(|v| l[u * ko + v] * y[v]).sum();
                y[u] = (y[u] - s) * inv_diag[u];
            }
            for u in (0..k).rev() {
                let s: f64 = (u + 1..k).map(|v| l[v * ko + u] * y[v]).sum();
                y[u] = (y[u] - s) * inv_diag[u];
            }
        };
        let (mut w, mut r, mut x, mut dw) =
            (vec![0.0; ko], vec![0.0; ko], vec![0.0; ko], vec![0.0; ko]);
        let n_func = functionals.as_ref().map_or(0, |f| f.len() / p);
        for (o, coef) in self.coefficients.iter().enumerate() {
            let (k, t) = (coef.k, coef.t);
            for u in 0..k {
                w[u] = self.inverse[u * q + coef.i];
                r[u] = (k..=t).map(|s| self.factor[t * q + s] * at(u, s)).sum();
            }
            chol_solve(k, &mut w);
            let delta: f64 = (0..k).map(|u| w[u] * r[u]).sum();
            out[o] = delta * coef.scale;
            if let Some(f) = functionals.as_deref_mut()
                && o < n_func
            {
                x[..k].copy_from_slice(&r[..k]);
                for u in 0..k {
                    dw[u] = -(0..k)
                        .map(|v| at(u, v) * self.inverse[v * q + coef.i])
                        .sum::<f64>();
                }
                chol_solve(k, &mut x);
                chol_solve(k, &mut dw);
                let c = &mut f[o * p..(o + 1) * p];
                c.iter_mut().for_each(|v| *v = 0.0);
                for u in 0..k {
                    let dwu = dw[u] * coef.scale;
                    for s in k..=t {
                        c[packed_index(u, s, q)] += dwu * self.factor[t * q + s];
                    }
                    let wu = w[u] * coef.scale;
                    for v in 0..k {
                        c[packed_index(u, v, q)] -= wu * x[v];
                    }
                }
            }
        }
        true
    }
}

impl Whitened {
    /// The full-sample fit's cluster influences on the first `n` reported
    /// coefficients (a_1..a_m, b_1..b_m for n = 2m), G x n, in the units of
    /// the data: the `psi_hat` of [`Whitened::deltas`].
    pub fn influence(&self, fit: &SystemFit, n: usize) -> Vec<f64> {
        let idx: Vec<usize> = self.coefficient_keys[..n]
            .iter()
            .map(|&(e, c)| fit.index(e, c))
            .collect();
        (0..self.n_clusters)
            .flat_map(|c| idx.iter().map(move |&i| fit.influence[c * fit.dim + i]))
            .collect()
    }
}

/// Inverse of a row-major lower-triangular `n x n` matrix (lower triangular).
pub(crate) fn lower_inverse(l: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0; n * n];
    for j in 0..n {
        inv[j * n + j] = 1.0 / l[j * n + j];
        for i in j + 1..n {
            let s: f64 = (j..i).map(|u| l[i * n + u] * inv[u * n + j]).sum();
            inv[i * n + j] = -s / l[i * n + i];
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{SyntheticParams, generate};
    use crate::model::mediation::equations;
    use crate::model::panel::Panel;
    use crate::model::replicate::{Solver, coefficients_to_stats};
    use crate::model::spec::default_spec;
    use crate::resample::scheme::{Scheme, WeightPlan};

    fn design(mediators: &[&str]) -> Design {
        let mut spec = default_spec();
        spec.mediators = mediators.iter().map(|s| s.to_string()).collect();
        let panel = Panel::from_table(&generate(SyntheticParams::default()), &spec).unwrap();
        Design::build(&panel, spec.fixed_effects).unwrap()
    }

    /// A replicate's whitened deviation `sum (w_g - 1) T_g` and raw Gram
    /// `sum w_g S_g` (packed), from its cluster weights.
    fn replicate_grams(w: &Whitened, d: &Design, weights: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let p = packed_len(w.q());
        let mut e = vec![0.0; p];
        let mut gram = vec![0.0; p];
        for (c, &wc) in weights.iter().enumerate() {
            for k in 0..p {
                e[k] += (wc - 1.0) * w.stats[c * p + k];
                gram[k] += wc * d.stats[c * p + k];
            }
        }
        (e, gram)
    }

    #[test]
    fn whitened_statistics_sum_to_the_identity() {
        let d = design(&["agglom"]);
        let fit = crate::model::estimate::fit_system(&d, &equations(&d)).unwrap();
        let w = Whitened::new(&d, &fit).unwrap();
        let p = packed_len(w.q());
        for i in 0..w.q() {
            for j in i..w.q() {
                let k = packed_index(i, j, w.q());
                let sum: f64 = (0..w.n_clusters).map(|c| w.stats[c * p + k]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                // f64 rounding, grown by the Gram's condition number; seen
                // 1.1e-12 at the outcome's diagonal.
                assert!((sum - want).abs() < 1e-11, "({i}, {j}): {sum}");
            }
        }
    }

    /// theta_hat + delta from the whitened path equals the direct solve of
    /// the replicate Gram, for resamples of one and of two mediators.
    #[test]
    fn deviations_reproduce_the_direct_solve() {
        for mediators in [&["agglom"][..], &["agglom_sec", "agglom_ter"]] {
            let d = design(mediators);
            let fit = crate::model::estimate::fit_system(&d, &equations(&d)).unwrap();
            let w = Whitened::new(&d, &fit).unwrap();
            let g = d.n_clusters;
            let mut solver = Solver::new(&d);
            let n = solver.layout.len();
            for scheme in [Scheme::Pairs, Scheme::Poisson, Scheme::Jackknife] {
                let plan = WeightPlan::new(scheme, 11, g, None);
                let mut weights = vec![0.0; g];
                for r in 0..20 {
                    plan.fill(r, &mut weights);
                    let (e, gram) = replicate_grams(&w, &d, &weights);
                    let mut want = vec![0.0; n];
                    assert!(solver.solve(&gram, &mut want));
                    let mut delta = vec![0.0; w.theta.len()];
                    assert!(w.deltas(&e, &mut delta, None));
                    let theta: Vec<f64> = w.theta.iter().zip(&delta).map(|(a, b)| a + b).collect();
                    let mut got = vec![0.0; n];
                    coefficients_to_stats(&theta, solver.layout, &mut got);
                    for (s, (a, b)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (a - b).abs() <= 1e-10 * b.abs().max(1e-3),
                            "{scheme:?} replicate {r} stat {s}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }

    /// The whitened influence functionals give every cluster the same
    /// influence on a_j and b_j as the CPU solver's functionals of the raw
    /// cluster statistics, in a resample.
    #[test]
    fn whitened_functionals_give_the_solver_s_cluster_influences() {
        let d = design(&["agglom_sec", "agglom_ter"]);
        let fit = crate::model::estimate::fit_system(&d, &equations(&d)).unwrap();
        let w = Whitened::new(&d, &fit).unwrap();
        let (g, p, m) = (d.n_clusters, packed_len(w.q()), 2);
        let plan = WeightPlan::new(Scheme::Pairs, 3, g, None);
        let mut weights = vec![0.0; g];
        plan.fill(7, &mut weights);
        let (e, gram) = replicate_grams(&w, &d, &weights);
        let mut solver = Solver::new(&d);
        let mut stats = vec![0.0; solver.layout.len()];
        assert!(solver.solve(&gram, &mut stats));
        let mut want = vec![0.0; 2 * m * p];
        solver.influence_functionals(&mut want);
        let mut delta = vec![0.0; w.theta.len()];
        let mut got = vec![0.0; 2 * m * p];
        assert!(w.deltas(&e, &mut delta, Some(&mut got)));
        let hat = w.influence(&fit, 2 * m);
        for o in 0..2 * m {
            let psi = |f: &[f64], s: &[f64]| -> Vec<f64> {
                (0..g)
                    .map(|c| (0..p).map(|k| f[o * p + k] * s[c * p + k]).sum())
                    .collect()
            };
            let a: Vec<f64> = psi(&got, &w.stats)
                .iter()
                .enumerate()
                .map(|(c, v)| hat[c * 2 * m + o] + v)
                .collect();
            let b = psi(&want, &d.stats);
            let scale = b.iter().fold(0.0f64, |x, v| x.max(v.abs()));
            for c in 0..g {
                assert!(
                    (a[c] - b[c]).abs() <= 1e-9 * scale,
                    "coefficient {o} cluster {c}: {} vs {}",
                    a[c],
                    b[c]
                );
            }
        }
    }
}
