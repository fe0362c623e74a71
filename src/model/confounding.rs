//! Omitted-variable bounds for each path of the model (Cinelli and Hazlett
//! 2020, "Making sense of sensitivity: extending omitted variable bias",
//! JRSS B 82(1), 39-67), with the formulas of R's and Python's sensemakr.
//!
//! A path is one least-squares coefficient: the treatment's in a mediator's
//! equation (a), a mediator's in the outcome equation (b), the treatment's
//! there (c'), and in a chain a mediator's in a later mediator's (d). For
//! its regressor D in the equation Y ~ D + X (fixed effects absorbed), an
//! omitted confounder Z that explains the share `R2_{D~Z|X}` of D's
//! residual variance and `R2_{Y~Z|D,X}` of Y's moves the estimate by
//!
//! `|bias| = sqrt(R2_{Y~Z|D,X} R2_{D~Z|X} / (1 - R2_{D~Z|X})) sd(Y.DX) / sd(D.X)`,
//!
//! and `sd(Y.DX) / sd(D.X) = se_ols sqrt(dof)`, the classical SE: the point
//! estimate's sensitivity is a function of the fixed-effect-absorbed Gram
//! matrix alone. The regressor's partial R-squared `t^2 / (t^2 + dof)`
//! (classical t), and the robustness value RV (the equal strength with D
//! and Y that removes the whole estimate) follow. A benchmark control X_j
//! bounds Z as k times as strong as X_j, with D and with Y (`kd = ky`).
//!
//! Intervals: sensemakr scales the classical SE by `sqrt((1 - R2_{Y~Z|D,X})
//! / (1 - R2_{D~Z|X})) sqrt(dof / (dof - 1))` (Z is one more regressor) and
//! takes t on dof - 1. medsim scales the cluster-robust (CR1) SE the same
//! way and takes t on clusters - 1, as the model's own t tests do; the bias
//! stays the point estimate's. The robustness value for the interval at
//! level 1 - alpha (the strength at which the adjusted interval reaches
//! zero) is then sensemakr's closed form with its critical Cohen's f,
//! `t_crit / sqrt(dof - 1)`, multiplied by `se_cr1 / se_ols`: the adjusted
//! interval's bound is `|b| - bias - t_crit se_adj`, and dividing by
//! `se_ols sqrt(dof)` leaves sensemakr's equation with that f. With the
//! classical SE and t on dof - 1 every number here is sensemakr's
//! (tests/confounding.rs checks both against PySensemakr).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::math::linalg::{cholesky, packed_index, submatrix};
use crate::math::stats::t_quantile;
use crate::model::design::Design;
use crate::model::effect::EffectKey;
use crate::model::estimate::SystemFit;
use crate::model::mediation::{Analysis, BootstrapStats, Interval};
use crate::model::serial::Chain;

/// What a run asks for (`[sensitivity] confounding = true`): the controls
/// that bound a confounder, and the multiples of their strength.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfoundingSpec {
    pub benchmarks: Vec<String>,
    pub kd: Vec<f64>,
    /// Each replicate's robustness values too (`[sensitivity]
    /// rv_replicates = true`; reweighting schemes).
    pub replicates: bool,
}

impl Default for ConfoundingSpec {
    fn default() -> Self {
        ConfoundingSpec {
            benchmarks: Vec::new(),
            kd: vec![1.0, 2.0, 3.0],
            replicates: false,
        }
    }
}

/// The bounds of every path (summary.json `"confounding"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfoundingSummary {
    pub paths: Vec<PathBounds>,
}

/// One path's sensitivity to an omitted confounder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathBounds {
    /// The effect's key in `effects` (`a`, `b`, `c_prime`, `a:NAME`, ...).
    pub path: String,
    /// The coefficient's column and its equation's dependent column.
    pub regressor: String,
    pub dependent: String,
    pub estimate: f64,
    /// Cluster-robust (CR1), as in `effects`.
    pub se: f64,
    /// The classical least-squares SE (residual variance over `dof`).
    pub se_classical: f64,
    /// Residual degrees of freedom of the equation with its fixed effects
    /// as dummies: observations less regressors (with the period dummies,
    /// or the intercept) less the units.
    pub dof: f64,
    /// The share of the dependent's residual variance the regressor
    /// explains: t^2 / (t^2 + dof), t the classical t.
    pub partial_r2: f64,
    /// RV: a confounder that explains this share of the residual variance
    /// of both the regressor and the dependent removes the estimate.
    pub rv: f64,
    /// RV at each interval level: the strength at which the adjusted
    /// cluster-robust interval reaches zero (0 when it includes zero).
    pub rv_interval: Vec<LevelValue>,
    /// A confounder as strong as a benchmark control, `kd` times.
    pub bounds: Vec<BenchmarkBound>,
    /// With resampling (a reweighting scheme): the replicates' RV, its
    /// bootstrap moments and intervals (effect `rv:PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rv_bootstrap: Option<BootstrapStats>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rv_intervals: Vec<Interval>,
}

/// A value at one interval level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LevelValue {
    pub level: f64,
    pub value: f64,
}

/// The estimate adjusted for a confounder `kd` times as strong as a
/// benchmark control, with the regressor and (the same `ky = kd`) with the
/// dependent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkBound {
    pub benchmark: String,
    pub kd: f64,
    /// The benchmark's partial R-squared with the regressor given the
    /// equation's other regressors (sensemakr's r2dxj.x), and with the
    /// dependent given every regressor (r2yxj.dx).
    pub r2dxj_x: f64,
    pub r2yxj_dx: f64,
    /// The confounder's partial R-squared with the regressor (r2dz.x) and
    /// with the dependent (r2yz.dx, at most 1 as sensemakr caps it). None
    /// (and no adjusted values) when kd times the benchmark is impossible:
    /// it would explain all of the regressor's residual variance.
    pub r2dz_x: Option<f64>,
    pub r2yz_dx: Option<f64>,
    /// The estimate less the bias, toward zero.
    pub adjusted_estimate: Option<f64>,
    /// The CR1 SE scaled as sensemakr scales the classical one.
    pub adjusted_se: Option<f64>,
    pub adjusted_t: Option<f64>,
    pub intervals: Vec<AdjustedInterval>,
}

/// The adjusted interval at one level: t on clusters - 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdjustedInterval {
    pub level: f64,
    pub lower: f64,
    pub upper: f64,
}

/// sensemakr's robustness value of an estimate with Cohen's f `fq` (`q
/// |t| / sqrt(dof)`, q the share of the estimate to remove) at the
/// critical f `f_crit` (0: the point estimate; `|t_{dof-1}(alpha/2)| /
/// sqrt(dof - 1)`: the interval at 1 - alpha). Where the equal-strength
/// solution would need the confounder to explain more than all of the
/// dependent's residual variance, the bound is the extreme scenario's.
pub fn robustness_value(fq: f64, f_crit: f64) -> f64 {
    let fqa = fq - f_crit;
    if fqa.is_nan() || fqa <= 0.0 {
        return 0.0;
    }
    if fq > 1.0 / f_crit {
        return (fq * fq - f_crit * f_crit) / (1.0 + fq * fq);
    }
    0.5 * ((fqa.powi(4) + 4.0 * fqa * fqa).sqrt() - fqa * fqa)
}

/// sensemakr's bound on a confounder `kd` times as strong as a benchmark
/// with the regressor and `ky` times with the dependent, from the
/// benchmark's partial R-squared values: (r2dz.x, r2yz.dx capped at 1), or
/// None when such a confounder is impossible.
pub fn benchmark_bound(r2dxj_x: f64, r2yxj_dx: f64, kd: f64, ky: f64) -> Option<(f64, f64)> {
    let r2dz_x = kd * r2dxj_x / (1.0 - r2dxj_x);
    if !(r2dz_x < 1.0) {
        return None;
    }
    let r2zxj_xd = kd * r2dxj_x * r2dxj_x / ((1.0 - kd * r2dxj_x) * (1.0 - r2dxj_x));
    if !(r2zxj_xd < 1.0) {
        return None;
    }
    let r2yz_dx = ((ky.sqrt() + r2zxj_xd.sqrt()) / (1.0 - r2zxj_xd).sqrt()).powi(2) * r2yxj_dx
        / (1.0 - r2yxj_dx);
    Some((r2dz_x, r2yz_dx.min(1.0)))
}

/// A least-squares coefficient as sensemakr sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficient {
    pub estimate: f64,
    pub se_classical: f64,
    pub dof: f64,
}

impl Coefficient {
    /// The classical t statistic.
    pub fn t(&self) -> f64 {
        self.estimate / self.se_classical
    }

    /// The regressor's partial R-squared with the dependent.
    pub fn partial_r2(&self) -> f64 {
        let t = self.t();
        t * t / (t * t + self.dof)
    }

    /// Cohen's f of the estimate, times q.
    fn fq(&self, q: f64) -> f64 {
        q * (self.t() / self.dof.sqrt()).abs()
    }

    /// RV_q: the strength that removes the share q of the estimate.
    pub fn rv(&self, q: f64) -> f64 {
        robustness_value(self.fq(q), 0.0)
    }

    /// RV_{q,alpha} of the interval with SE `se` and critical value `t_crit`
    /// (sensemakr: the classical SE and t on dof - 1).
    pub fn rv_interval(&self, q: f64, se: f64, t_crit: f64) -> f64 {
        let f_crit = t_crit * (se / self.se_classical) / (self.dof - 1.0).sqrt();
        robustness_value(self.fq(q), f_crit)
    }

    /// The estimate less the bias of a confounder with partial R-squared
    /// values `r2dz_x` and `r2yz_dx`, toward zero (sensemakr's `reduce`).
    pub fn adjusted_estimate(&self, r2dz_x: f64, r2yz_dx: f64) -> f64 {
        let bias = (r2yz_dx * r2dz_x / (1.0 - r2dz_x)).sqrt() * self.se_classical * self.dof.sqrt();
        let sign = if self.estimate > 0.0 {
            1.0
        } else if self.estimate < 0.0 {
            -1.0
        } else {
            0.0
        };
        sign * (self.estimate.abs() - bias)
    }

    /// The SE `se` of the model with the confounder added.
    pub fn adjusted_se(&self, se: f64, r2dz_x: f64, r2yz_dx: f64) -> f64 {
        ((1.0 - r2yz_dx) / (1.0 - r2dz_x)).sqrt() * se * (self.dof / (self.dof - 1.0)).sqrt()
    }
}

/// Refuse models whose paths are not least-squares coefficients of their
/// own; a config is checked with this before any data is read.
pub fn check_model(instrumented: bool, moderated: bool) -> Result<()> {
    let problem = if instrumented {
        Some(
            "the omitted-variable bounds (Cinelli and Hazlett 2020) are for least-squares \
             paths, and model.instrument makes every equation two-stage least squares",
        )
    } else if moderated {
        Some(
            "the omitted-variable bounds are for the paths of a model without a moderator or \
             the treatment-mediator interaction (whose a and b are conditional effects)",
        )
    } else {
        None
    };
    match problem {
        Some(message) => Err(Error::InvalidOption {
            option: "sensitivity.confounding".into(),
            message: message.into(),
        }),
        None => Ok(()),
    }
}

/// The least-squares paths of the model `fit` (mediators named
/// `mediators`): (effect key, equation, regressor column). With
/// instrumented mediators, b and c' are two-stage least squares and have
/// no bounds; the a paths keep theirs.
fn paths(design: &Design, fit: &SystemFit, mediators: &[String]) -> Vec<(String, usize, usize)> {
    let l = design.layout;
    let m = l.n_mediators;
    let outcome_eq = m + 1;
    let x = l.treatment();
    let mut out = Vec::new();
    for (j, mediator) in mediators.iter().enumerate() {
        let name = (m > 1).then(|| mediator.clone());
        out.push((EffectKey::A(name.clone()).to_string(), 1 + j, x));
        out.push((EffectKey::B(name).to_string(), outcome_eq, l.mediator(j)));
    }
    // A chain's links, as the analysis reports them.
    for (to, from) in Chain::new(m, design.serial).links {
        let key = EffectKey::D(mediators[from].clone(), mediators[to].clone());
        out.push((key.to_string(), 1 + to, l.mediator(from)));
    }
    out.push((EffectKey::CPrime.to_string(), outcome_eq, x));
    out.retain(|(_, e, _)| fit.equations[*e].equation.instruments.is_none());
    out
}

/// The Gram columns of each least-squares path's robustness value, in the
/// order of `analyse`'s paths: its equation's other regressors, the
/// path's regressor, then the dependent.
pub fn replicate_orders(design: &Design, fit: &SystemFit) -> Vec<Vec<usize>> {
    replicate_keys(design, fit)
        .into_iter()
        .map(|(e, col)| {
            let equation = &fit.equations[e].equation;
            let mut order: Vec<usize> = equation
                .regressors
                .iter()
                .copied()
                .filter(|&r| r != col)
                .collect();
            order.extend([col, equation.dependent]);
            order
        })
        .collect()
}

/// Each least-squares path as (equation, regressor column), in the order
/// of `analyse`'s paths.
pub fn replicate_keys(design: &Design, fit: &SystemFit) -> Vec<(usize, usize)> {
    let l = design.layout;
    let mediators: Vec<String> = (0..l.n_mediators)
        .map(|j| design.names[l.mediator(j)].clone())
        .collect();
    paths(design, fit, &mediators)
        .into_iter()
        .map(|(_, e, col)| (e, col))
        .collect()
}

/// RV (q = 1) of a path from a packed q x q Gram matrix (the full
/// sample's, or a replicate's) over its columns `order`
/// (`replicate_orders`). It needs nothing else: the classical t over
/// sqrt(dof) is `L_yj / L_yy` of the factor of those columns (the degrees
/// of freedom cancel), and the units too. NaN where the Gram is singular.
/// `scratch` is reused between calls.
pub fn robustness_of_gram(
    packed: &[f64],
    q: usize,
    order: &[usize],
    scratch: &mut Vec<f64>,
) -> f64 {
    let k = order.len();
    scratch.clear();
    scratch.extend(
        order
            .iter()
            .flat_map(|&i| order.iter().map(move |&j| packed[packed_index(i, j, q)])),
    );
    if cholesky(scratch, k).is_err() {
        return f64::NAN;
    }
    let (l_yj, l_yy) = (scratch[(k - 1) * k + k - 2], scratch[(k - 1) * k + k - 1]);
    robustness_value((l_yj / l_yy).abs(), 0.0)
}

/// The Cholesky factor of the Gram of `regressors` with `j` last, then
/// `dependent`: (L_jj, L_yj, L_yy). L_yj^2 is the part of the dependent's
/// sum of squares `j` explains given the others, L_yy^2 the residual one.
fn last_regressor(
    gram: &[f64],
    q: usize,
    dependent: usize,
    regressors: &[usize],
    j: usize,
    design: &Design,
) -> Result<(f64, f64, f64)> {
    let mut order: Vec<usize> = regressors.iter().copied().filter(|&r| r != j).collect();
    order.push(j);
    order.push(dependent);
    let k = order.len();
    let mut l = submatrix(gram, q, &order, &order);
    cholesky(&mut l, k).map_err(|pivot| {
        Error::Numerical(format!(
            "the omitted-variable bounds: the regression of '{}' on '{}' and the others is \
             singular at '{}'",
            design.names[dependent], design.names[j], design.names[order[pivot]]
        ))
    })?;
    Ok((
        l[(k - 2) * k + k - 2],
        l[(k - 1) * k + k - 2],
        l[(k - 1) * k + k - 1],
    ))
}

/// The bounds of every path of the model of `design`, fitted in `analysis`,
/// at the run's interval `levels`.
pub fn analyse(
    design: &Design,
    analysis: &Analysis,
    spec: &ConfoundingSpec,
    levels: &[f64],
) -> Result<ConfoundingSummary> {
    check_model(
        design.layout.treatment_instrumented(),
        design.moderation.is_some() || design.interaction.is_some(),
    )?;
    let q = design.q();
    let gram = design.total_gram();
    let fit = &analysis.fit;
    // The unit effects as dummies; the period dummies, or the intercept
    // without unit effects, are regressors (the nuisance columns).
    // With group-by-period effects, each group's cell dummies too (its
    // periods less one: the unit dummies span the first).
    let cell_dummies: usize = design.cells.as_ref().map_or(0, |c| c.sizes.iter().sum());
    let fe_levels = if design.fixed_effects.has_unit() {
        design.absorbed.first().map_or(0, |f| f.levels) + cell_dummies
    } else {
        0
    };
    let benchmarks: Vec<usize> = spec
        .benchmarks
        .iter()
        .map(|name| {
            design
                .names
                .iter()
                .position(|n| n == name)
                .filter(|&c| design.roles[c] == crate::model::design::Role::Control)
                .ok_or_else(|| Error::InvalidOption {
                    option: "sensitivity.benchmark".into(),
                    message: format!("'{name}' is not one of the model's controls"),
                })
        })
        .collect::<Result<_>>()?;
    let t_crit: Vec<f64> = levels
        .iter()
        .map(|&level| t_quantile(0.5 + level / 2.0, fit.df()))
        .collect();
    let mut out = Vec::new();
    for (key, e, col) in paths(design, fit, &analysis.mediators) {
        let equation = &fit.equations[e].equation;
        let (y, regressors) = (equation.dependent, &equation.regressors);
        let dof = design.n_obs as f64 - regressors.len() as f64 - fe_levels as f64;
        if dof < 2.0 {
            return Err(Error::Numerical(format!(
                "the omitted-variable bounds need at least two residual degrees of freedom in the \
                 {} equation, and it has {dof}",
                equation.name
            )));
        }
        let (l_dd, _, l_yy) = last_regressor(&gram, q, y, regressors, col, design)?;
        let units = design.scale[y] / design.scale[col];
        let coefficient = Coefficient {
            estimate: fit.coef(e, col),
            se_classical: l_yy / dof.sqrt() / l_dd * units,
            dof,
        };
        let se = fit.se(e, col);
        let rv_interval = levels
            .iter()
            .zip(&t_crit)
            .map(|(&level, &t)| LevelValue {
                level,
                value: coefficient.rv_interval(1.0, se, t),
            })
            .collect();
        let mut bounds = Vec::new();
        for (&bench, name) in benchmarks.iter().zip(&spec.benchmarks) {
            let partial = |dep: usize, regs: &[usize]| -> Result<f64> {
                let (_, l_yj, l_yy) = last_regressor(&gram, q, dep, regs, bench, design)?;
                Ok(l_yj * l_yj / (l_yj * l_yj + l_yy * l_yy))
            };
            let others: Vec<usize> = regressors.iter().copied().filter(|&r| r != col).collect();
            let r2dxj_x = partial(col, &others)?;
            let r2yxj_dx = partial(y, regressors)?;
            for &kd in &spec.kd {
                let bound = benchmark_bound(r2dxj_x, r2yxj_dx, kd, kd);
                let adjusted = bound.map(|(r2d, r2y)| {
                    (
                        coefficient.adjusted_estimate(r2d, r2y),
                        coefficient.adjusted_se(se, r2d, r2y),
                    )
                });
                bounds.push(BenchmarkBound {
                    benchmark: name.clone(),
                    kd,
                    r2dxj_x,
                    r2yxj_dx,
                    r2dz_x: bound.map(|b| b.0),
                    r2yz_dx: bound.map(|b| b.1),
                    adjusted_estimate: adjusted.map(|a| a.0),
                    adjusted_se: adjusted.map(|a| a.1),
                    adjusted_t: adjusted.map(|(est, se)| est / se),
                    intervals: adjusted.map_or(Vec::new(), |(est, se)| {
                        levels
                            .iter()
                            .zip(&t_crit)
                            .map(|(&level, &t)| AdjustedInterval {
                                level,
                                lower: est - t * se,
                                upper: est + t * se,
                            })
                            .collect()
                    }),
                });
            }
        }
        out.push(PathBounds {
            path: key,
            regressor: design.names[col].clone(),
            dependent: design.names[y].clone(),
            estimate: coefficient.estimate,
            se,
            se_classical: coefficient.se_classical,
            dof,
            partial_r2: coefficient.partial_r2(),
            rv: coefficient.rv(1.0),
            rv_interval,
            bounds,
            rv_bootstrap: None,
            rv_intervals: Vec::new(),
        });
    }
    Ok(ConfoundingSummary { paths: out })
}

impl ConfoundingSummary {
    /// Attach the resampled robustness values (effects `rv:K`, K in the
    /// order of `paths`) to their paths.
    pub fn add_bootstrap(&mut self, stats: &[(String, BootstrapStats)], intervals: &[Interval]) {
        for (k, path) in self.paths.iter_mut().enumerate() {
            let key = EffectKey::RobustnessValue(k).to_string();
            // RV is a share, at least zero: a test of zero means nothing.
            path.rv_bootstrap =
                stats
                    .iter()
                    .find(|(s, _)| *s == key)
                    .map(|(_, b)| BootstrapStats {
                        p_value: None,
                        ..*b
                    });
            path.rv_intervals = intervals
                .iter()
                .filter(|i| i.effect == key)
                .map(|i| Interval {
                    effect: format!("rv:{}", path.path),
                    ..i.clone()
                })
                .collect();
        }
    }

    /// The bounds of one path, by its effect key.
    pub fn path(&self, key: &str) -> Option<&PathBounds> {
        self.paths.iter().find(|p| p.path == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sensemakr's Darfur example (Cinelli and Hazlett 2020, section 6):
    /// t = 4.18445 on 783 degrees of freedom gives RV = 0.1388 and
    /// RV_{alpha=0.05} = 0.0763 (PySensemakr 0.0.8: 0.13877635, 0.07625797), as printed in the paper and the package.
    #[test]
    fn darfur_robustness_values() {
        let fq = 4.18445 / 783f64.sqrt();
        assert!((robustness_value(fq, 0.0) - 0.138_776).abs() < 1e-6);
        let f_crit = t_quantile(0.975, 782.0) / 782f64.sqrt();
        assert!((robustness_value(fq, f_crit) - 0.076_258).abs() < 1e-6);
    }

    /// A very strong estimate takes sensemakr's extreme-scenario branch
    /// (the confounder explains all of the dependent's residual variance):
    /// t = 100 on 50 degrees of freedom (PySensemakr 0.0.8).
    #[test]
    fn extreme_scenario_branch() {
        let fq = 100.0 / 50f64.sqrt();
        let f_crit = t_quantile(0.975, 49.0) / 49f64.sqrt();
        assert!(fq > 1.0 / f_crit);
        let got = robustness_value(fq, f_crit);
        assert!((got - 0.994_614_844_894_539_2).abs() < 1e-12, "{got}");
        let got = robustness_value(fq, 0.0);
        assert!((got - 0.995_049_383_620_781_2).abs() < 1e-12, "{got}");
    }

    /// At the interval's robustness value, the adjusted interval's bound
    /// touches zero, whichever SE the interval has.
    #[test]
    fn interval_robustness_value_is_where_the_adjusted_interval_reaches_zero() {
        for (estimate, se_classical, se, dof, t) in [
            (0.3, 0.05, 0.08, 500.0, 1.97),
            (-0.3, 0.05, 0.04, 500.0, 2.5),
            (0.02, 0.001, 0.003, 2700.0, 1.97),
        ] {
            let c = Coefficient {
                estimate,
                se_classical,
                dof,
            };
            let rv = c.rv_interval(1.0, se, t);
            assert!(rv > 0.0 && rv < 1.0);
            let adjusted = c.adjusted_estimate(rv, rv);
            let bound = adjusted.abs() - t * c.adjusted_se(se, rv, rv);
            assert!(bound.abs() < 1e-12, "{bound}");
            // A little weaker leaves the interval away from zero.
            let weaker = c.adjusted_estimate(rv * 0.99, rv * 0.99).abs()
                - t * c.adjusted_se(se, rv * 0.99, rv * 0.99);
            assert!(weaker > 0.0);
        }
        // At q = 1, RV removes the point estimate.
        let c = Coefficient {
            estimate: 0.3,
            se_classical: 0.05,
            dof: 500.0,
        };
        let rv = c.rv(1.0);
        assert!(c.adjusted_estimate(rv, rv).abs() < 1e-12);
    }

    #[test]
    fn impossible_benchmarks_give_no_bound() {
        assert!(benchmark_bound(0.4, 0.1, 2.0, 2.0).is_none());
        let (r2d, r2y) = benchmark_bound(0.1, 0.9, 3.0, 3.0).expect("possible");
        assert!((r2d - 0.3 / 0.9).abs() < 1e-15);
        assert_eq!(r2y, 1.0);
    }
}
