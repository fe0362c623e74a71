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
use crate::model::mediation::{coefficient_places, equations, reported_coefficients};

/// One reported coefficient: the coefficient on column `i` in the
/// regression of column `t` on columns `0..k` of its system (the design's
/// columns, or an equation's: `Whitened::sets`), times `scale` (to data
/// units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficient {
    pub k: usize,
    pub i: usize,
    pub t: usize,
    pub scale: f64,
}

/// A design in whitened coordinates, with what a replicate's coefficient
/// changes need.
///
/// Where every equation's regressors are the design's leading columns (the
/// plain, parallel, serial and interaction models), there is one system:
/// the design's q columns. A moderated model's equations are not nested
/// (the total equation has W but not M, the outcome M*W but not X*W), so
/// each equation is a system of its own: its regressors, then its
/// dependent, whitened by the factor of that block of the full-sample Gram
/// (`P_e = L_e^{-1} L[(R_e, t), :]` has orthonormal rows, so each system is
/// as well conditioned as the design's). The systems share one size (the
/// largest equation's; a shorter one is padded, before its dependent, by
/// identity columns no cluster contributes to), and cluster g's statistics
/// are the systems' packed `T_g` side by side, so one GEMM gives every
/// equation's `E` and the solve takes each (replicate, system) as a row.
#[derive(Debug, Clone)]
pub struct Whitened {
    pub n_clusters: usize,
    /// Columns of each system.
    pub q: usize,
    /// Systems (1: the design's columns; else one per equation).
    pub sets: usize,
    /// G x (sets packed_len(q)): each cluster's packed `T_g` of each system.
    pub stats: Vec<f64>,
    /// Each system's row-major q x q lower-triangular L of the full-sample
    /// Gram, one after the other.
    pub factor: Vec<f64>,
    /// Each system's row-major q x q `L^{-1}`.
    pub inverse: Vec<f64>,
    /// The solve's coefficients, `coefficients.len() / sets` per system (a
    /// system with fewer is padded by coefficients with k = 0, whose change
    /// is 0); with one system, `a_1..a_m, b_1..b_m, c, c'` (and a chain's
    /// links or the interaction's coefficient: `reported_coefficients`),
    /// the order of `theta`.
    pub coefficients: Vec<Coefficient>,
    /// Where each of `coefficients` goes in `theta` (None: padding).
    pub order: Vec<Option<usize>>,
    /// Full-sample values of the reported coefficients, in the units of
    /// the data.
    pub theta: Vec<f64>,
    /// The reported coefficients as (equation, design column) of the fit.
    pub coefficient_keys: Vec<(usize, usize)>,
    /// Each system's columns: the design's (None: padding).
    pub columns: Vec<Vec<Option<usize>>>,
}

/// The per-cluster statistics, factor and inverse of the system whose
/// columns are `columns` of `design` in order (None: an identity column no
/// cluster contributes to).
fn whiten_system(design: &Design, columns: &[Option<usize>]) -> Result<[Vec<f64>; 3]> {
    let (q, n) = (design.q(), columns.len());
    let p = packed_len(n);
    let gram = design.total_gram();
    let mut factor = vec![0.0; n * n];
    for (i, ci) in columns.iter().enumerate() {
        for (j, cj) in columns.iter().enumerate() {
            factor[i * n + j] = match (ci, cj) {
                (Some(a), Some(b)) => gram[a * q + b],
                _ => f64::from(u8::from(i == j)),
            };
        }
    }
    if let Err(j) = crate::math::linalg::cholesky(&mut factor, n) {
        let name = columns[j].map_or("padding", |c| design.names[c].as_str());
        return Err(Error::Numerical(format!(
            "the full-sample Gram matrix is singular at column '{name}' (pivot {j}); \
             the outcome may be fitted exactly"
        )));
    }
    let inverse = lower_inverse(&factor, n);
    let mut stats = vec![0.0; design.n_clusters * p];
    let (mut s, mut tmp) = (vec![0.0; n * n], vec![0.0; n * n]);
    for c in 0..design.n_clusters {
        let full = unpack(design.cluster_stats(c), q);
        for (i, ci) in columns.iter().enumerate() {
            for (j, cj) in columns.iter().enumerate() {
                s[i * n + j] = match (ci, cj) {
                    (Some(a), Some(b)) => full[a * q + b],
                    _ => 0.0,
                };
            }
        }
        // tmp = L^{-1} S_g (rows of L^{-1} are zero right of the diagonal).
        for i in 0..n {
            for j in 0..n {
                tmp[i * n + j] = (0..=i).map(|u| inverse[i * n + u] * s[u * n + j]).sum();
            }
        }
        let row = &mut stats[c * p..(c + 1) * p];
        for i in 0..n {
            for j in i..n {
                row[packed_index(i, j, n)] =
                    (0..=j).map(|u| tmp[i * n + u] * inverse[j * n + u]).sum();
            }
        }
    }
    Ok([stats, factor, inverse])
}

impl Whitened {
    /// A row `rho` over the design's columns (some vector's cross-products
    /// with them) in every system's whitened coordinates, side by side
    /// (`sets` x `q` values): system t's `L_t^{-1} rho[columns_t]`, zero at
    /// padding. A replicate's whitened Gram less `R' B^{-1} R` (the cell
    /// block's Schur complement, `crate::model::cells`) is then less the
    /// same of R's rows so mapped.
    pub fn whiten_row(&self, rho: &[f64], out: &mut [f64]) {
        let q = self.q;
        for (t, columns) in self.columns.iter().enumerate() {
            let inverse = &self.inverse[t * q * q..(t + 1) * q * q];
            for i in 0..q {
                out[t * q + i] = (0..=i)
                    .map(|u| inverse[i * q + u] * columns[u].map_or(0.0, |c| rho[c]))
                    .sum();
            }
        }
    }

    /// Whiten `design` by the Cholesky factor of its full-sample Gram (or
    /// each equation by its block's, where the equations' regressors are
    /// not the design's leading columns); the full-sample coefficients come
    /// from `fit`.
    pub fn new(design: &Design, fit: &SystemFit) -> Result<Whitened> {
        let g = design.n_clusters;
        let equations = equations(design);
        let coefficient_keys = reported_coefficients(design);
        let theta: Vec<f64> = coefficient_keys
            .iter()
            .map(|&(e, col)| fit.coef(e, col))
            .collect();
        let places = coefficient_places(design);
        let leading = equations
            .iter()
            .all(|eq| eq.regressors.iter().enumerate().all(|(u, &c)| u == c));
        if leading {
            // One system, the design's columns: each reported coefficient
            // is that of column i in its equation, whose regressors are the
            // leading columns 0..k.
            let q = design.q();
            let columns: Vec<Option<usize>> = (0..q).map(Some).collect();
            let [stats, factor, inverse] = whiten_system(design, &columns)?;
            let mut coefficients = vec![None; coefficient_keys.len()];
            for (eq, mine) in equations.iter().zip(&places) {
                for &(o, at, scale) in mine {
                    coefficients[o] = Some(Coefficient {
                        k: eq.regressors.len(),
                        i: at,
                        t: eq.dependent,
                        scale,
                    });
                }
            }
            let coefficients = coefficients.into_iter().flatten().collect();
            return Ok(Whitened {
                n_clusters: g,
                q,
                sets: 1,
                stats,
                factor,
                inverse,
                coefficients,
                order: (0..coefficient_keys.len()).map(Some).collect(),
                theta,
                coefficient_keys,
                columns: vec![columns],
            });
        }
        // One system per equation: its regressors, padding, its dependent.
        let q = equations
            .iter()
            .map(|e| e.regressors.len() + 1)
            .max()
            .unwrap_or(1);
        let per_set = places.iter().map(Vec::len).max().unwrap_or(0);
        let sets = equations.len();
        let p = packed_len(q);
        let mut stats = vec![0.0; g * sets * p];
        let (mut factor, mut inverse) = (Vec::new(), Vec::new());
        let mut system_columns = Vec::with_capacity(sets);
        let mut coefficients = Vec::with_capacity(sets * per_set);
        let mut order = Vec::with_capacity(sets * per_set);
        for (e, eq) in equations.iter().enumerate() {
            let k = eq.regressors.len();
            let mut columns: Vec<Option<usize>> = eq.regressors.iter().map(|&c| Some(c)).collect();
            columns.resize(q - 1, None);
            columns.push(Some(eq.dependent));
            let [s, f, i] = whiten_system(design, &columns)?;
            system_columns.push(columns);
            for c in 0..g {
                stats[(c * sets + e) * p..(c * sets + e + 1) * p]
                    .copy_from_slice(&s[c * p..(c + 1) * p]);
            }
            factor.extend(f);
            inverse.extend(i);
            for slot in 0..per_set {
                match places[e].get(slot) {
                    Some(&(o, at, scale)) => {
                        coefficients.push(Coefficient {
                            k,
                            i: at,
                            t: q - 1,
                            scale,
                        });
                        order.push(Some(o));
                    }
                    None => {
                        coefficients.push(Coefficient {
                            k: 0,
                            i: 0,
                            t: q - 1,
                            scale: 1.0,
                        });
                        order.push(None);
                    }
                }
            }
        }
        Ok(Whitened {
            n_clusters: g,
            q,
            sets,
            stats,
            factor,
            inverse,
            coefficients,
            order,
            theta,
            coefficient_keys,
            columns: system_columns,
        })
    }

    /// Each reported coefficient's ratio to the units of the data, in the
    /// order of `theta`.
    pub fn units(&self) -> Vec<f64> {
        let mut unit = vec![1.0; self.theta.len()];
        for (c, o) in self.coefficients.iter().zip(&self.order) {
            if let Some(o) = o {
                unit[*o] = c.scale;
            }
        }
        unit
    }

    /// The changes of the coefficients in the replicate whose whitened
    /// Grams are `I + E` (`e`: each system's packed E one after the
    /// other), into `out` (one per coefficient, in the solve's order:
    /// `to_theta` puts them in theta's); false (and NaN) when the
    /// replicate's regressors are singular. With `functionals` (one system
    /// only; 2m rows of packed_len(q)), also the change of the replicate's
    /// influence functionals of a_1..a_m, b_1..b_m from the full sample's:
    /// row o is the packed dc with cluster g's influence `psi_g = psi_hat_g
    /// + dc . T_g` (in the units of the data; `psi_hat` is the full-sample
    /// fit's influence), what studentized intervals need. The f64 reference
    /// of `solve.wgsl`, step for step.
    #[cfg(test)]
    pub fn deltas(&self, e: &[f64], out: &mut [f64], mut functionals: Option<&mut [f64]>) -> bool {
        let q = self.q;
        let ko = q - 1;
        let p = packed_len(q);
        let per_set = self.coefficients.len() / self.sets;
        assert!(functionals.is_none() || self.sets == 1);
        for set in 0..self.sets {
            let e = &e[set * p..(set + 1) * p];
            let factor = &self.factor[set * q * q..(set + 1) * q * q];
            let inverse = &self.inverse[set * q * q..(set + 1) * q * q];
            let at = |i: usize, j: usize| e[packed_index(i, j, q)];
            // Lower triangle of the factor of (I + E) over the regressors,
            // row by row, each entry's subtractions in the order c = 0, 1, ...
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
            for o in set * per_set..(set + 1) * per_set {
                let coef = self.coefficients[o];
                let (k, t) = (coef.k, coef.t);
                for u in 0..k {
                    w[u] = inverse[u * q + coef.i];
                    r[u] = (k..=t).map(|s| factor[t * q + s] * at(u, s)).sum();
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
                            .map(|v| at(u, v) * inverse[v * q + coef.i])
                            .sum::<f64>();
                    }
                    chol_solve(k, &mut x);
                    chol_solve(k, &mut dw);
                    let c = &mut f[o * p..(o + 1) * p];
                    c.iter_mut().for_each(|v| *v = 0.0);
                    for u in 0..k {
                        let dwu = dw[u] * coef.scale;
                        for s in k..=t {
                            c[packed_index(u, s, q)] += dwu * factor[t * q + s];
                        }
                        let wu = w[u] * coef.scale;
                        for v in 0..k {
                            c[packed_index(u, v, q)] -= wu * x[v];
                        }
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

/// The solve's output for one replicate (one value per coefficient, the
/// systems one after the other) into the order of theta, by
/// `Whitened::order`.
pub fn to_theta(order: &[Option<usize>], solved: &[f64], theta: &mut [f64]) {
    for (v, o) in solved.iter().zip(order) {
        if let Some(o) = o {
            theta[*o] = *v;
        }
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
        let p = w.sets * packed_len(w.q);
        let pd = packed_len(d.q());
        let mut e = vec![0.0; p];
        let mut gram = vec![0.0; pd];
        for (c, &wc) in weights.iter().enumerate() {
            for k in 0..p {
                e[k] += (wc - 1.0) * w.stats[c * p + k];
            }
            for k in 0..pd {
                gram[k] += wc * d.stats[c * pd + k];
            }
        }
        (e, gram)
    }

    #[test]
    fn whitened_statistics_sum_to_the_identity() {
        let d = design(&["agglom"]);
        let fit = crate::model::estimate::fit_system(&d, &equations(&d)).unwrap();
        let w = Whitened::new(&d, &fit).unwrap();
        let p = packed_len(w.q);
        for i in 0..w.q {
            for j in i..w.q {
                let k = packed_index(i, j, w.q);
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

    /// A moderated design (PROCESS 58: a and b; 59: and the direct path; 7
    /// by a moderator the unit effects absorb) needs one system per
    /// equation; theta_hat + delta from them equals the direct solve of the
    /// replicate Gram, every added statistic (a3, b3, c3', conditional
    /// effects, index, difference) included.
    #[test]
    fn per_equation_systems_reproduce_the_direct_solve() {
        use crate::model::replicate::{Extension, stats_from_changes};
        use crate::model::spec::Moderation;
        let cases = [
            ("ln_pop_density", true, true, false),
            ("ln_pop_density", true, true, true),
            ("ln_pop_density", false, true, false),
            ("size_code", true, false, false),
        ];
        for (moderator, a, b, direct) in cases {
            let mut spec = default_spec();
            spec.controls.retain(|c| c != moderator);
            let mut table = generate(SyntheticParams::default());
            // A moderator constant within cities: the length of the city's
            // size class's label.
            let size = table.headers.iter().position(|h| h == "size").unwrap();
            table.headers.push("size_code".into());
            for row in table.rows.iter_mut() {
                let code = row[size].len();
                row.push(code.to_string());
            }
            spec.moderation = Some(Moderation {
                moderator: moderator.into(),
                a,
                b,
                direct,
                center: false,
                at: Default::default(),
            });
            let panel = Panel::from_table(&table, &spec).unwrap();
            let d = Design::build(&panel, spec.fixed_effects).unwrap();
            let fit = crate::model::estimate::fit_system(&d, &equations(&d)).unwrap();
            let w = Whitened::new(&d, &fit).unwrap();
            assert_eq!(w.sets, 3, "{moderator} {a} {b} {direct}");
            let absorbed = d
                .moderation
                .as_ref()
                .is_some_and(|m| m.terms[0].w.is_none());
            assert_eq!(absorbed, moderator == "size_code");
            let mut solver = Solver::new(&d);
            let lay = solver.layout;
            let mut extension = Extension::of(&d);
            let plan = WeightPlan::new(Scheme::Pairs, 5, d.n_clusters, None);
            let mut weights = vec![0.0; d.n_clusters];
            let (n, count) = (lay.len(), 20);
            let (mut got, mut want) = (vec![0.0; n * count], vec![0.0; n * count]);
            for r in 0..count {
                plan.fill(r as u64, &mut weights);
                let (e, gram) = replicate_grams(&w, &d, &weights);
                assert!(solver.solve(&gram, &mut want[r * n..(r + 1) * n]));
                let mut solved = vec![0.0; w.coefficients.len()];
                assert!(w.deltas(&e, &mut solved, None));
                let mut theta = vec![0.0; w.theta.len()];
                to_theta(&w.order, &solved, &mut theta);
                let row = &mut got[r * n..(r + 1) * n];
                assert!(stats_from_changes(&w.theta, &mut theta, lay, row));
                extension.fill(&theta, lay, row);
            }
            // Errors relative to each statistic's bootstrap spread (a
            // replicate's b near zero makes relative errors meaningless).
            for s in 0..n {
                let col: Vec<f64> = (0..count).map(|r| want[r * n + s]).collect();
                let mean = col.iter().sum::<f64>() / count as f64;
                let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (count - 1) as f64;
                for r in 0..count {
                    let (x, y) = (got[r * n + s], want[r * n + s]);
                    assert!(
                        (x - y).abs() <= 1e-10 * var.sqrt(),
                        "{moderator} {a} {b} {direct} replicate {r} stat {s}: {x} vs {y}"
                    );
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
        let (g, p, m) = (d.n_clusters, packed_len(w.q), 2);
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
