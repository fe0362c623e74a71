//! Least squares for a system of equations that share one design, with the
//! joint cluster-robust (CR1) covariance of all their coefficients. Each
//! equation is a dependent column and a set of regressor columns of the
//! design; everything is computed from the per-cluster Gram matrices.
//!
//! The joint covariance stacks, per cluster, the influence of the cluster on
//! every equation's coefficients, `A_e^{-1} (S_g[R_e, d_e] - S_g[R_e, R_e] b_e)`,
//! so covariances across equations (needed for a*b) come with the same
//! small-sample factor as the diagonal blocks: block (e, f) is scaled by
//! `sqrt(f_e f_f)`, where `f_e = G/(G-1) (n-1)/(n-K_e)` is equation e's CR1
//! factor. The diagonal blocks are exactly fixest's CR1 covariance.
//!
//! An equation with instruments is fitted by two-stage least squares (as
//! fixest's IV): with `Pi = A_II^{-1} A_IR` the first-stage coefficients and
//! `H = A_RI Pi`, the coefficients are `H^{-1} Pi' A_Id` and a cluster's
//! influence is `H^{-1} Pi' (S_g[I, d] - S_g[I, R] b)`, residuals taken with
//! the regressors themselves, not their fitted values.

use crate::error::{Error, Result};
use crate::math::linalg::{chol_solve, cholesky, packed_index, submatrix};
use crate::model::design::Design;

/// One equation: a dependent column regressed on regressor columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Equation {
    pub name: String,
    pub dependent: usize,
    pub regressors: Vec<usize>,
    /// Instrument columns (two-stage least squares), or None for least squares.
    pub instruments: Option<Vec<usize>>,
}

/// The two-stage least-squares projection of one regressor set on one
/// instrument set, from a Gram matrix: everything that does not depend on
/// the dependent column, so equations sharing regressors and instruments
/// share it.
#[derive(Debug, Clone)]
pub struct TwoStage {
    regressors: Vec<usize>,
    instruments: Vec<usize>,
    /// `K = H^{-1} Pi'`, `k_R x k_I` row-major.
    projector: Vec<f64>,
}

/// Why a two-stage projection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoStageFailure {
    /// The instruments are collinear (pivot index into the instrument list).
    Instruments(usize),
    /// The instruments do not identify the regressors: `H` is singular.
    FirstStage,
}

impl TwoStage {
    /// Form `K` from the full `q x q` Gram `a` (row-major).
    pub fn new(
        a: &[f64],
        q: usize,
        regressors: &[usize],
        instruments: &[usize],
    ) -> std::result::Result<TwoStage, TwoStageFailure> {
        let (kr, ki) = (regressors.len(), instruments.len());
        let mut l_ii = submatrix(a, q, instruments, instruments);
        cholesky(&mut l_ii, ki).map_err(TwoStageFailure::Instruments)?;
        // Pi (k_I x k_R), column by column.
        let mut pi = vec![0.0; ki * kr];
        let mut col = vec![0.0; ki];
        for (r, &reg) in regressors.iter().enumerate() {
            for (i, &inst) in instruments.iter().enumerate() {
                col[i] = a[inst * q + reg];
            }
            chol_solve(&l_ii, ki, &mut col);
            for i in 0..ki {
                pi[i * kr + r] = col[i];
            }
        }
        // H = A_RI Pi, symmetric positive definite when identified.
        let mut h = vec![0.0; kr * kr];
        for (r, &reg) in regressors.iter().enumerate() {
            for s in 0..kr {
                h[r * kr + s] = instruments
                    .iter()
                    .enumerate()
                    .map(|(i, &inst)| a[reg * q + inst] * pi[i * kr + s])
                    .sum();
            }
        }
        let diagonal: Vec<f64> = (0..kr).map(|r| h[r * kr + r]).collect();
        cholesky(&mut h, kr).map_err(|_| TwoStageFailure::FirstStage)?;
        // A fitted regressor that the others' fitted values explain to all
        // but 1e-10 of its sum of squares is not identified: rounding, not
        // the instruments, made its pivot positive.
        if (0..kr).any(|r| h[r * kr + r].powi(2) < 1e-10 * diagonal[r]) {
            return Err(TwoStageFailure::FirstStage);
        }
        // K = H^{-1} Pi': column i is H^{-1} (row i of Pi).
        let mut projector = vec![0.0; kr * ki];
        let mut row = vec![0.0; kr];
        for i in 0..ki {
            row.copy_from_slice(&pi[i * kr..(i + 1) * kr]);
            chol_solve(&h, kr, &mut row);
            for r in 0..kr {
                projector[r * ki + i] = row[r];
            }
        }
        Ok(TwoStage {
            regressors: regressors.to_vec(),
            instruments: instruments.to_vec(),
            projector,
        })
    }

    /// Coefficients (scaled) of `dependent` on the regressors: `K A_Id`.
    pub fn coefficients(&self, a: &[f64], q: usize, dependent: usize) -> Vec<f64> {
        let ki = self.instruments.len();
        (0..self.regressors.len())
            .map(|r| {
                self.projector[r * ki..(r + 1) * ki]
                    .iter()
                    .zip(&self.instruments)
                    .map(|(k, &inst)| k * a[inst * q + dependent])
                    .sum()
            })
            .collect()
    }

    /// Row `r` of `K` (over the instruments), the weights of a cluster's
    /// instrument scores `S_g[I, d] - S_g[I, R] b` in its influence on
    /// coefficient r.
    pub fn projector_row(&self, r: usize) -> &[f64] {
        let ki = self.instruments.len();
        &self.projector[r * ki..(r + 1) * ki]
    }

    pub fn instruments(&self) -> &[usize] {
        &self.instruments
    }

    pub fn regressors(&self) -> &[usize] {
        &self.regressors
    }
}

/// Coefficients of one equation in the units of the data.
#[derive(Debug, Clone)]
pub struct EquationFit {
    pub equation: Equation,
    /// One coefficient per regressor, in `equation.regressors` order.
    pub coef: Vec<f64>,
    /// Where this equation's coefficients start in the joint covariance.
    pub offset: usize,
    /// Parameters counted by the small-sample factor.
    pub ssc_k: usize,
    /// The CR1 small-sample factor `G/(G-1) (n-1)/(n-K)`.
    pub ssc: f64,
}

/// All equations with their joint CR1 covariance.
#[derive(Debug, Clone)]
pub struct SystemFit {
    pub equations: Vec<EquationFit>,
    /// Row-major joint covariance, `dim x dim`, in the units of the data.
    pub vcov: Vec<f64>,
    /// `G x dim`, row-major: cluster g's influence on every coefficient,
    /// `A_e^{-1} X_g' e_g` per equation, in the units of the data. The
    /// wild bootstrap is a weighted sum of these rows.
    pub influence: Vec<f64>,
    pub dim: usize,
    pub n_obs: usize,
    pub n_clusters: usize,
}

impl SystemFit {
    /// Position in the joint vector of equation `e`'s coefficient on column `col`.
    pub fn index(&self, e: usize, col: usize) -> usize {
        let eq = &self.equations[e];
        let k = eq
            .equation
            .regressors
            .iter()
            .position(|&r| r == col)
            .expect("column is a regressor of the equation");
        eq.offset + k
    }

    /// Coefficient of equation `e` on design column `col`.
    pub fn coef(&self, e: usize, col: usize) -> f64 {
        let i = self.index(e, col) - self.equations[e].offset;
        self.equations[e].coef[i]
    }

    /// Covariance of two coefficients (equation, column) in the joint vector.
    pub fn cov(&self, a: (usize, usize), b: (usize, usize)) -> f64 {
        self.vcov[self.index(a.0, a.1) * self.dim + self.index(b.0, b.1)]
    }

    /// Cluster-robust standard error of one coefficient.
    pub fn se(&self, e: usize, col: usize) -> f64 {
        self.cov((e, col), (e, col)).sqrt()
    }

    /// The cluster influences indexed by a larger run's clusters (see
    /// `Design::on_clusters`): row c moves to `map[c]`, other rows are zero.
    pub fn on_clusters(&self, map: &[usize], n_clusters: usize) -> SystemFit {
        let mut influence = vec![0.0; n_clusters * self.dim];
        for (c, &to) in map.iter().enumerate() {
            influence[to * self.dim..(to + 1) * self.dim]
                .copy_from_slice(&self.influence[c * self.dim..(c + 1) * self.dim]);
        }
        SystemFit {
            influence,
            ..self.clone()
        }
    }

    /// Degrees of freedom of the t tests: clusters less one.
    pub fn df(&self) -> f64 {
        (self.n_clusters - 1) as f64
    }
}

/// Fit every equation and their joint CR1 covariance.
pub fn fit_system(design: &Design, equations: &[Equation]) -> Result<SystemFit> {
    let q = design.q();
    let a = design.total_gram();
    let n = design.n_obs as f64;
    let g = design.n_clusters as f64;

    enum Solved {
        Ols { chol: Vec<f64>, beta: Vec<f64> },
        Iv { stage: TwoStage, beta: Vec<f64> },
    }
    let mut solved = Vec::with_capacity(equations.len());
    let mut offset = 0;
    let mut fits = Vec::with_capacity(equations.len());
    for eq in equations {
        let k = eq.regressors.len();
        let sol = match &eq.instruments {
            None => {
                let mut chol = submatrix(&a, q, &eq.regressors, &eq.regressors);
                cholesky(&mut chol, k).map_err(|pivot| {
                    Error::Numerical(format!(
                        "the normal equations of the {} equation are singular at '{}'",
                        eq.name, design.names[eq.regressors[pivot]]
                    ))
                })?;
                let mut beta: Vec<f64> = eq
                    .regressors
                    .iter()
                    .map(|&r| a[r * q + eq.dependent])
                    .collect();
                chol_solve(&chol, k, &mut beta);
                Solved::Ols { chol, beta }
            }
            Some(inst) => {
                let stage = TwoStage::new(&a, q, &eq.regressors, inst)
                    .map_err(|failure| two_stage_error(design, eq, failure))?;
                let beta = stage.coefficients(&a, q, eq.dependent);
                Solved::Iv { stage, beta }
            }
        };
        let beta = match &sol {
            Solved::Ols { beta, .. } | Solved::Iv { beta, .. } => beta,
        };
        let ssc_k = design.ssc_parameters(k);
        let ssc = g / (g - 1.0) * (n - 1.0) / (n - ssc_k as f64);
        let coef = eq
            .regressors
            .iter()
            .zip(beta.iter())
            .map(|(&r, b)| b * design.scale[eq.dependent] / design.scale[r])
            .collect();
        fits.push(EquationFit {
            equation: eq.clone(),
            coef,
            offset,
            ssc_k,
            ssc,
        });
        offset += k;
        solved.push(sol);
    }
    let dim = offset;

    // Units of the data: coefficient i of the joint vector is its scaled
    // value times unit_scale[i].
    let mut unit_scale = vec![0.0; dim];
    let mut eq_of = vec![0; dim];
    for (e, fit) in fits.iter().enumerate() {
        for (i, &r) in fit.equation.regressors.iter().enumerate() {
            unit_scale[fit.offset + i] = design.scale[fit.equation.dependent] / design.scale[r];
            eq_of[fit.offset + i] = e;
        }
    }

    // Stacked influence of each cluster on every coefficient, and the sum
    // over clusters of their outer products.
    let mut influence = vec![0.0; design.n_clusters * dim];
    let mut meat = vec![0.0; dim * dim];
    for c in 0..design.n_clusters {
        let s = design.cluster_stats(c);
        let u = &mut influence[c * dim..(c + 1) * dim];
        for (eq, (fit, sol)) in equations.iter().zip(fits.iter().zip(&solved)) {
            let k = eq.regressors.len();
            let block = &mut u[fit.offset..fit.offset + k];
            // Scores of the cluster on the equation's instruments (its
            // regressors for least squares): Z_g' e_g.
            let scores = |inst: &[usize], beta: &[f64]| -> Vec<f64> {
                inst.iter()
                    .map(|&ri| {
                        let mut score = s[packed_index(ri, eq.dependent, q)];
                        for (j, &rj) in eq.regressors.iter().enumerate() {
                            score -= s[packed_index(ri, rj, q)] * beta[j];
                        }
                        score
                    })
                    .collect()
            };
            match sol {
                Solved::Ols { chol, beta } => {
                    block.copy_from_slice(&scores(&eq.regressors, beta));
                    chol_solve(chol, k, block);
                }
                Solved::Iv { stage, beta } => {
                    let z = scores(stage.instruments(), beta);
                    for (r, b) in block.iter_mut().enumerate() {
                        *b = stage
                            .projector_row(r)
                            .iter()
                            .zip(&z)
                            .map(|(k, v)| k * v)
                            .sum();
                    }
                }
            }
        }
        for (ui, scale) in u.iter_mut().zip(&unit_scale) {
            *ui *= scale;
        }
        for i in 0..dim {
            let ui = u[i];
            if ui != 0.0 {
                for j in 0..dim {
                    meat[i * dim + j] += ui * u[j];
                }
            }
        }
    }

    // Small-sample factors.
    let mut vcov = meat;
    for i in 0..dim {
        for j in 0..dim {
            vcov[i * dim + j] *= (fits[eq_of[i]].ssc * fits[eq_of[j]].ssc).sqrt();
        }
    }
    Ok(SystemFit {
        equations: fits,
        vcov,
        influence,
        dim,
        n_obs: design.n_obs,
        n_clusters: design.n_clusters,
    })
}

/// The error of an equation whose two-stage projection failed.
fn two_stage_error(design: &Design, eq: &Equation, failure: TwoStageFailure) -> Error {
    match failure {
        TwoStageFailure::Instruments(pivot) => {
            let inst = eq.instruments.as_deref().unwrap_or(&[]);
            Error::Numerical(format!(
                "the instruments of the {} equation are collinear at '{}'",
                eq.name, design.names[inst[pivot]]
            ))
        }
        TwoStageFailure::FirstStage => {
            let inst = eq.instruments.as_deref().unwrap_or(&[]);
            let endogenous: Vec<String> = eq
                .regressors
                .iter()
                .filter(|r| !inst.contains(r))
                .map(|&r| format!("'{}'", design.names[r]))
                .collect();
            Error::Numerical(format!(
                "the instruments do not identify the {} equation: the first stage is singular \
                 (the excluded instruments have no partial effect on {})",
                eq.name,
                endogenous.join(" and ")
            ))
        }
    }
}
