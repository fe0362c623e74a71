//! Two-stage least squares in whitened coordinates: what `solve_iv.wgsl`
//! needs to turn a replicate's whitened Gram deviation E (the replicate's
//! Gram of the whitened columns is I + E, `crate::resample::whiten`) into the changes
//! of the reported coefficients of an instrumented model, and the f64
//! reference of that stage, step for step.
//!
//! Original column j is `C[:, j] = L[j, :]'` in the whitened basis (`L` the
//! full-sample Cholesky factor), so any Gram block is `C_X' (I + E) C_Y`.
//! One *system* is a regressor set R and an instrument set I (the total and
//! mediator equations share one, the outcome equation has its own). The
//! host picks bases in which the full-sample problem is the identity:
//! instruments `U = C_I L_II^{-T}` (orthonormal) and regressors
//! `B = C_R T^{-1}` with `T' T = H0 = F0_R' M0^{-1} F0_R`, and writes every
//! per-replicate quantity as an exact full-sample constant plus a term in E:
//!
//! * `M = M0 + U' E U`, `F = F0 + U' E B`, `H = F' M^{-1} F`;
//! * per dependent column d, with `beta0` its full-sample coefficients (in
//!   the B basis), `r0 = U' c_d - F0 beta0` and `e_d = c_d - B beta0`:
//!   `delta beta = H^{-1} F' M^{-1} (r0 + U' E e_d)` (zero at E = 0);
//! * the change of a reported coefficient is `w . delta beta`, w row r of
//!   `T^{-1}`, in the scaled design's units; times `unit` (on the host, in
//!   f64) it is in the units of the data, so the device never holds a
//!   quantity in the data's units, however tiny or huge they are.
//!
//! Studentized intervals need each replicate's cluster influences on a_j
//! and b_j. Cluster g's influence on a reported coefficient is
//! `h' T_g e` (`T_g` its whitened statistics) with `h = U M^{-1} F H^{-1} w`
//! and `e = c_d - B beta`; the stage writes the change of that packed
//! functional from the full sample's (`h0`, `e_d`): with `dh = U (y - y0)`,
//! `y = M^{-1} F H^{-1} w`, and `de = -B delta beta`, the symmetrised
//! `dh e_d' + h0 de' + dh de'`.
//!
//! Every quantity is of order one or of the size of the bootstrap spread,
//! so f32 rounding stays far below the spread, as for least squares.

use crate::error::{Error, Result};
use crate::math::linalg::cholesky;
use crate::model::design::Design;
use crate::model::estimate::SystemFit;
use crate::model::mediation::reported_coefficients;
use crate::resample::whiten::Whitened;

/// One reported coefficient of a target: its position in theta and the
/// weights `w` over the system's B-basis coefficients.
#[derive(Debug, Clone)]
pub struct IvOutput {
    pub coefficient: usize,
    pub w: Vec<f64>,
    /// Full-sample `y0 = M0^{-1} F0 H0^{-1} w` (k_I) and `h0 = U y0` (q),
    /// for the influence functionals.
    pub y0: Vec<f64>,
    pub h0: Vec<f64>,
}

/// One dependent column of a system.
#[derive(Debug, Clone)]
pub struct IvTarget {
    /// `c_d - B beta0` (q).
    pub e_d: Vec<f64>,
    /// `U' c_d - F0 beta0` (k_I).
    pub r0: Vec<f64>,
    pub outputs: Vec<IvOutput>,
}

/// One (regressors, instruments) system.
#[derive(Debug, Clone)]
pub struct IvSystem {
    pub k_i: usize,
    pub k_r: usize,
    /// q x k_I, row-major.
    pub u: Vec<f64>,
    /// q x k_R, row-major.
    pub b: Vec<f64>,
    /// `U'U`, k_I x k_I.
    pub m0: Vec<f64>,
    /// `U'B`, k_I x k_R.
    pub f0: Vec<f64>,
    pub targets: Vec<IvTarget>,
}

/// An instrumented design's systems, ready for the device.
#[derive(Debug, Clone)]
pub struct WhitenedTwoStage {
    pub systems: Vec<IvSystem>,
    /// Full-sample `a_1..a_m, b_1..b_m, c, c'` in the units of the data.
    pub theta: Vec<f64>,
}

impl WhitenedTwoStage {
    /// The systems of `design` (instrumented) in the coordinates of `w`.
    pub fn new(design: &Design, fit: &SystemFit, w: &Whitened) -> Result<WhitenedTwoStage> {
        let lay = design.layout;
        let q = design.q();
        let m = lay.n_mediators;
        // C[a][j] = L[j][a].
        let c = |a: usize, j: usize| w.factor[j * q + a];
        let columns = |r: Vec<usize>| (r.clone(), lay.system_instruments(&r));
        let x = lay.treatment();
        let base = columns(lay.base_regressors());
        let outcome = columns(lay.outcome_regressors());
        // (dependent, [(theta position, regressor position)]).
        type Targets = Vec<(usize, Vec<(usize, usize)>)>;
        let base_targets: Targets = (0..m)
            .map(|j| (lay.mediator(j), vec![(j, x)]))
            .chain([(lay.outcome(), vec![(2 * m, x)])])
            .collect();
        let outcome_targets: Targets = vec![(
            lay.outcome(),
            (0..m)
                .map(|j| (m + j, lay.mediator(j)))
                .chain([(2 * m + 1, x)])
                .collect(),
        )];
        let mut systems = Vec::new();
        for ((regs, inst), targets) in [(base, base_targets), (outcome, outcome_targets)] {
            let (k_i, k_r) = (inst.len(), regs.len());
            let singular = || {
                Error::Numerical(
                    "the full-sample two-stage system is singular in whitened coordinates".into(),
                )
            };
            // U = C_I L_II^{-T}: row a solves L_II u = C_I[a, :]'.
            let mut l_ii = vec![0.0; k_i * k_i];
            for (s, &is) in inst.iter().enumerate() {
                for (t, &it) in inst.iter().enumerate() {
                    l_ii[s * k_i + t] = (0..q).map(|a| c(a, is) * c(a, it)).sum();
                }
            }
            cholesky(&mut l_ii, k_i).map_err(|_| singular())?;
            let mut u = vec![0.0; q * k_i];
            for a in 0..q {
                let row: Vec<f64> = inst.iter().map(|&i| c(a, i)).collect();
                u[a * k_i..(a + 1) * k_i].copy_from_slice(&forward(&l_ii, k_i, &row));
            }
            let m0 = gram(&u, &u, q, k_i, k_i);
            let mut m0_chol = m0.clone();
            cholesky(&mut m0_chol, k_i).map_err(|_| singular())?;
            // H0 over the original regressors, and T = its factor's transpose.
            let c_r: Vec<f64> = (0..q)
                .flat_map(|a| regs.iter().map(move |&r| c(a, r)))
                .collect();
            let f0_r = gram(&u, &c_r, q, k_i, k_r);
            let mut l_h = projected_gram(&f0_r, &m0_chol, k_i, k_r);
            cholesky(&mut l_h, k_r).map_err(|_| singular())?;
            // B = C_R T^{-1}: row a solves L_H b = C_R[a, :]'.
            let mut b = vec![0.0; q * k_r];
            for a in 0..q {
                let row = &c_r[a * k_r..(a + 1) * k_r];
                b[a * k_r..(a + 1) * k_r].copy_from_slice(&forward(&l_h, k_r, row));
            }
            let f0 = gram(&u, &b, q, k_i, k_r);
            let mut h0_chol = projected_gram(&f0, &m0_chol, k_i, k_r);
            cholesky(&mut h0_chol, k_r).map_err(|_| singular())?;
            // Row r of T^{-1} = column r of L_H^{-1}.
            let l_h_inv = crate::resample::whiten::lower_inverse(&l_h, k_r);
            let targets = targets
                .into_iter()
                .map(|(d, outs)| {
                    let c_d: Vec<f64> = (0..q).map(|a| c(a, d)).collect();
                    let f0_d = gram(&u, &c_d, q, k_i, 1);
                    // beta0 = H0^{-1} F0' M0^{-1} f0_d.
                    let mut y = f0_d.clone();
                    crate::math::linalg::chol_solve(&m0_chol, k_i, &mut y);
                    let mut beta0: Vec<f64> = (0..k_r)
                        .map(|r| (0..k_i).map(|i| f0[i * k_r + r] * y[i]).sum())
                        .collect();
                    crate::math::linalg::chol_solve(&h0_chol, k_r, &mut beta0);
                    let r0 = (0..k_i)
                        .map(|i| {
                            f0_d[i] - (0..k_r).map(|r| f0[i * k_r + r] * beta0[r]).sum::<f64>()
                        })
                        .collect();
                    let e_d = (0..q)
                        .map(|a| c_d[a] - (0..k_r).map(|r| b[a * k_r + r] * beta0[r]).sum::<f64>())
                        .collect();
                    let outputs = outs
                        .into_iter()
                        .map(|(coefficient, r)| {
                            let w: Vec<f64> = (0..k_r).map(|k| l_h_inv[k * k_r + r]).collect();
                            let mut z = w.clone();
                            crate::math::linalg::chol_solve(&h0_chol, k_r, &mut z);
                            let mut y0: Vec<f64> = (0..k_i)
                                .map(|i| (0..k_r).map(|r| f0[i * k_r + r] * z[r]).sum())
                                .collect();
                            crate::math::linalg::chol_solve(&m0_chol, k_i, &mut y0);
                            let h0 = (0..q)
                                .map(|a| (0..k_i).map(|i| u[a * k_i + i] * y0[i]).sum())
                                .collect();
                            IvOutput {
                                coefficient,
                                w,
                                y0,
                                h0,
                            }
                        })
                        .collect();
                    IvTarget { e_d, r0, outputs }
                })
                .collect();
            systems.push(IvSystem {
                k_i,
                k_r,
                u,
                b,
                m0,
                f0,
                targets,
            });
        }
        let theta = reported_coefficients(design)
            .iter()
            .map(|&(e, col)| fit.coef(e, col))
            .collect();
        Ok(WhitenedTwoStage { systems, theta })
    }

    /// The changes of the reported coefficients in the replicate whose
    /// whitened Gram is `I + E` (`e` packed) into `out`; false (and NaN)
    /// when a system is singular there, in the units of the data (the
    /// scales of `w`'s coefficients). The f64 reference of `solve_iv.wgsl`.
    #[cfg(test)]
    pub fn deltas(&self, w: &Whitened, e: &[f64], out: &mut [f64]) -> bool {
        use crate::math::linalg::packed_index;
        let q = w.q;
        let at = |a: usize, b: usize| e[packed_index(a, b, q)];
        for s in &self.systems {
            let (k_i, k_r) = (s.k_i, s.k_r);
            // E U and E B (q x k).
            let times_e = |v: &[f64], k: usize| -> Vec<f64> {
                let mut t = vec![0.0; q * k];
                for a in 0..q {
                    for bb in 0..q {
                        let eab = at(a, bb);
                        for i in 0..k {
                            t[a * k + i] += eab * v[bb * k + i];
                        }
                    }
                }
                t
            };
            let mut mm = s.m0.clone();
            let eu = times_e(&s.u, k_i);
            add_gram(&mut mm, &s.u, &eu, q, k_i, k_i);
            let mut f = s.f0.clone();
            let eb = times_e(&s.b, k_r);
            add_gram(&mut f, &s.u, &eb, q, k_i, k_r);
            if cholesky(&mut mm, k_i).is_err() {
                out.iter_mut().for_each(|v| *v = f64::NAN);
                return false;
            }
            let mut h = projected_gram(&f, &mm, k_i, k_r);
            if cholesky(&mut h, k_r).is_err() {
                out.iter_mut().for_each(|v| *v = f64::NAN);
                return false;
            }
            for t in &s.targets {
                // v = r0 + U' (E e_d).
                let ee: Vec<f64> = (0..q)
                    .map(|a| (0..q).map(|bb| at(a, bb) * t.e_d[bb]).sum())
                    .collect();
                let mut v: Vec<f64> = (0..k_i)
                    .map(|i| t.r0[i] + (0..q).map(|a| s.u[a * k_i + i] * ee[a]).sum::<f64>())
                    .collect();
                crate::math::linalg::chol_solve(&mm, k_i, &mut v);
                let mut z: Vec<f64> = (0..k_r)
                    .map(|r| (0..k_i).map(|i| f[i * k_r + r] * v[i]).sum())
                    .collect();
                crate::math::linalg::chol_solve(&h, k_r, &mut z);
                for o in &t.outputs {
                    out[o.coefficient] = w.coefficients[o.coefficient].scale
                        * o.w.iter().zip(&z).map(|(a, b)| a * b).sum::<f64>();
                }
            }
        }
        true
    }
}

/// `X' Y` for row-major `X` (n x kx) and `Y` (n x ky).
fn gram(x: &[f64], y: &[f64], n: usize, kx: usize, ky: usize) -> Vec<f64> {
    let mut out = vec![0.0; kx * ky];
    add_gram(&mut out, x, y, n, kx, ky);
    out
}

/// `out += X' Y`.
fn add_gram(out: &mut [f64], x: &[f64], y: &[f64], n: usize, kx: usize, ky: usize) {
    for a in 0..n {
        for i in 0..kx {
            let xi = x[a * kx + i];
            for j in 0..ky {
                out[i * ky + j] += xi * y[a * ky + j];
            }
        }
    }
}

/// `F' M^{-1} F` (k_r x k_r) from `F` (k_i x k_r) and the factor of M.
fn projected_gram(f: &[f64], m_chol: &[f64], k_i: usize, k_r: usize) -> Vec<f64> {
    let mut g = vec![0.0; k_i * k_r];
    let mut col = vec![0.0; k_i];
    for r in 0..k_r {
        for i in 0..k_i {
            col[i] = f[i * k_r + r];
        }
        crate::math::linalg::chol_solve(m_chol, k_i, &mut col);
        for i in 0..k_i {
            g[i * k_r + r] = col[i];
        }
    }
    let mut h = vec![0.0; k_r * k_r];
    for r in 0..k_r {
        for s in 0..k_r {
            h[r * k_r + s] = (0..k_i).map(|i| f[i * k_r + r] * g[i * k_r + s]).sum();
        }
    }
    h
}

/// Solve `L x = b` for lower-triangular row-major `L` (from `cholesky`).
fn forward(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut x = b.to_vec();
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * x[k]).sum();
        x[i] = (x[i] - s) / l[i * n + i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{SyntheticParams, generate};
    use crate::math::linalg::packed_index;
    use crate::math::linalg::packed_len;
    use crate::model::mediation::equations;
    use crate::model::panel::Panel;
    use crate::model::replicate::Solver;
    use crate::model::spec::default_spec;
    use crate::resample::scheme::{Scheme, WeightPlan};

    /// The synthetic panel's model with both agglomeration components and
    /// the treatment instrumented, in whitened and two-stage form.
    fn instrumented(
        cities: usize,
        years: usize,
    ) -> (Design, SystemFit, Whitened, WhitenedTwoStage) {
        let mut spec = default_spec();
        spec.mediators = vec!["agglom_sec".into(), "agglom_ter".into()];
        spec.instruments = vec!["iv_post1984".into()];
        let table = generate(SyntheticParams {
            cities,
            years,
            ..SyntheticParams::default()
        });
        let panel = Panel::from_table(&table, &spec).unwrap();
        let d = Design::build(&panel, spec.fixed_effects).unwrap();
        let fit = crate::model::estimate::fit_system(&d, &equations(&d)).unwrap();
        let w = Whitened::new(&d, &fit).unwrap();
        let iv = WhitenedTwoStage::new(&d, &fit, &w).unwrap();
        (d, fit, w, iv)
    }

    /// Full-sample coefficients plus the whitened deltas of pairs
    /// replicates equal the two-stage solve of the reweighted Gram.
    #[test]
    fn whitened_two_stage_deltas_reproduce_the_solver() {
        let (d, _, w, iv) = instrumented(40, 10);
        let (g, p) = (d.n_clusters, packed_len(d.q()));
        let plan = WeightPlan::new(Scheme::Pairs, 9, g, None);
        let mut solver = Solver::new(&d);
        let n_coef = iv.theta.len();
        let mut weights = vec![0.0; g];
        // At E = 0 every change is zero.
        let mut out = vec![f64::NAN; n_coef];
        assert!(iv.deltas(&w, &vec![0.0; p], &mut out));
        assert!(out.iter().all(|v| v.abs() < 1e-12), "{out:?}");
        for r in 0..5 {
            plan.fill(r, &mut weights);
            let mut e = vec![0.0; p];
            let mut gram = vec![0.0; p];
            for c in 0..g {
                for k in 0..p {
                    e[k] += (weights[c] - 1.0) * w.stats[c * p + k];
                    gram[k] += weights[c] * d.stats[c * p + k];
                }
            }
            assert!(iv.deltas(&w, &e, &mut out));
            let mut want = vec![0.0; solver.layout.len()];
            assert!(solver.solve(&gram, &mut want));
            let l = solver.layout;
            let m = 2;
            let positions: Vec<usize> = (0..m)
                .map(|j| l.a(j))
                .chain((0..m).map(|j| l.b(j)))
                .chain([l.c(), l.c_prime()])
                .collect();
            for (o, &pos) in positions.iter().enumerate() {
                let got = iv.theta[o] + out[o];
                assert!(
                    (got - want[pos]).abs() <= 1e-9 * want[pos].abs(),
                    "replicate {r} coefficient {o}: {got} vs {}",
                    want[pos]
                );
            }
        }
    }

    /// The full-sample influence functional of each studentized coefficient
    /// (a_j, b_j), `h0' T_g e_d` in the scaled design's units, times the
    /// coefficient's unit is the 2SLS fit's cluster influence.
    #[test]
    fn full_sample_functionals_are_the_fit_influences() {
        let (d, fit, w, iv) = instrumented(30, 6);
        let (q, p) = (d.q(), packed_len(d.q()));
        let keys = reported_coefficients(&d);
        let mut checked = 0;
        for s in &iv.systems {
            for t in &s.targets {
                for o in t.outputs.iter().filter(|o| o.coefficient < 4) {
                    let (e, col) = keys[o.coefficient];
                    for g in [0, 7, 29] {
                        let tg = &w.stats[g * p..(g + 1) * p];
                        let got: f64 = (0..q)
                            .flat_map(|a| (0..q).map(move |b| (a, b)))
                            .map(|(a, b)| o.h0[a] * tg[packed_index(a, b, q)] * t.e_d[b])
                            .sum::<f64>()
                            * w.coefficients[o.coefficient].scale;
                        let want = fit.influence[g * fit.dim + fit.index(e, col)];
                        assert!(
                            (got - want).abs() <= 1e-9 * want.abs().max(1e-12),
                            "coefficient {} cluster {g}: {got} vs {want}",
                            o.coefficient
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 12);
    }
}
