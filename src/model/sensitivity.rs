//! Sensitivity of the indirect effect to mediator-outcome confounding
//! (Imai, Keele and Yamamoto 2010, "Identification, inference and
//! sensitivity analysis for causal mediation effects", Statistical Science
//! 25(1), 51-71; linear structural equations, one mediator).
//!
//! With rho the correlation of the mediator and outcome equations' errors
//! (zero under sequential ignorability), the average causal mediation effect
//! is `ACME(rho) = (a s1 / s2) (rt - rho sqrt((1 - rt^2) / (1 - rho^2)))`,
//! s1 and s2 the residual SDs of the total and mediator equations and rt the
//! correlation of their residuals. By Frisch-Waugh-Lovell, `s1 rt / s2 = b`
//! and `s1 sqrt(1 - rt^2) / s2 = kappa`, the ratio of the outcome
//! equation's residual SD to the mediator equation's, so
//!
//! `ACME(rho) = a (b - rho kappa / sqrt(1 - rho^2))`,
//!
//! which is a*b at rho = 0 and zero at `rho0 = rt = b / sqrt(b^2 + kappa^2)`.
//! Every quantity is a function of the Gram matrix, so each replicate gives
//! its own curve (`replicate::Solver` computes kappa from its Cholesky
//! factor, the GPU from the whitened one) and the bands at every rho come
//! from the same replicates as every other interval.
//!
//! R's `mediation::medsens` finds the same curve by iterated feasible GLS of
//! the two equations with their error correlation fixed at rho (its fixed
//! point is this closed form; it stops when the squared change of the
//! coefficients is below sqrt(machine epsilon), so its printed values can
//! differ in the fourth digit), and reports the rho at which ACME = 0 as
//! the grid value where |ACME| is smallest (here `rho_at_zero_grid`, next to
//! the exact crossing) and the R-squared forms: `R2*_M R2*_Y = rho^2` (shares
//! of the residual variances an omitted confounder explains) and `R2~_M
//! R2~_Y = rho^2 (1 - R2_M) (1 - R2_Y)` (shares of the total variances),
//! with R2 of the mediator and outcome models as `lm` reports them: 1 -
//! RSS / TSS, TSS about the mean of the raw column (with fixed effects, the
//! model with the dummies).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::math::linalg::{cholesky, unpack};
use crate::model::design::Design;
use crate::model::effect::EffectKey;
use crate::model::mediation::BootstrapStats;
use crate::model::mediation::{Analysis, Interval};
use crate::model::panel::Panel;
use crate::model::replicate::{Solver, acme};

/// Refuse models the closed form does not cover.
pub fn check(design: &Design) -> Result<()> {
    let l = design.layout;
    check_model(l.n_mediators, l.instrumented())
}

/// The closed form needs one mediator and least-squares equations; a
/// config is checked with this before any data is read.
pub fn check_model(mediators: usize, instrumented: bool) -> Result<()> {
    let problem = if mediators != 1 {
        Some(format!(
            "the sensitivity analysis (Imai, Keele and Yamamoto 2010) is defined for one mediator, \
             and model.mediators has {mediators}; run it with one mediator at a time"
        ))
    } else if instrumented {
        Some(
            "the sensitivity analysis assumes least-squares equations; remove model.instrument \
             and model.mediator_instrument, or the [sensitivity] section"
                .into(),
        )
    } else {
        None
    };
    match problem {
        Some(message) => Err(Error::InvalidOption {
            option: "sensitivity".into(),
            message,
        }),
        None => Ok(()),
    }
}

/// The curve of one model, as summary.json reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensitivitySummary {
    pub mediator: String,
    /// `sd(outcome residual) / sd(mediator residual)`.
    pub kappa: f64,
    /// The exact rho at which ACME = 0 (the residual correlation rt).
    pub rho_at_zero: f64,
    /// medsens's `err.cr`: the grid's rho with the smallest |ACME|.
    pub rho_at_zero_grid: f64,
    /// `rho_at_zero^2`: the product of the partial R-squared values (of the
    /// residual variances) an omitted confounder needs to explain away the
    /// indirect effect.
    pub r2_star_at_zero: f64,
    /// The same as shares of the total variances.
    pub r2_tilde_at_zero: f64,
    pub r_squared_mediator: f64,
    pub r_squared_outcome: f64,
    pub curve: Vec<SensitivityPoint>,
}

/// ACME at one rho, with its resampling intervals when the run resamples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensitivityPoint {
    pub rho: f64,
    pub acme: f64,
    pub r2_star_prod: f64,
    pub r2_tilde_prod: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapStats>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<Interval>,
}

/// The full sample's kappa, from the Cholesky factor of its Gram matrix.
pub fn kappa(design: &Design) -> Result<f64> {
    check(design)?;
    let mut solver = Solver::new(design).with_sensitivity(&[0.0]);
    let mut stats = vec![0.0; solver.layout.len()];
    if !solver.solve(&design.total_packed(), &mut stats) {
        return Err(Error::Numerical("the full-sample model is singular".into()));
    }
    Ok(stats[solver.layout.kappa()])
}

/// The estimates a and b of a one-mediator analysis.
fn a_b(analysis: &Analysis) -> Result<(f64, f64)> {
    match (analysis.effect("a"), analysis.effect("b")) {
        (Some(a), Some(b)) => Ok((a.estimate, b.estimate)),
        _ => Err(Error::Numerical(
            "the analysis has no single a and b".into(),
        )),
    }
}

/// ACME at each of `rho` for the full sample (the analysis's a and b, so
/// ACME(0) is its a*b to the last bit).
pub fn full_sample(design: &Design, analysis: &Analysis, rho: &[f64]) -> Result<Vec<f64>> {
    check(design)?;
    let (a, b) = a_b(analysis)?;
    let kappa = kappa(design)?;
    Ok(rho.iter().map(|&r| acme(a, b, kappa, r)).collect())
}

/// The point curve of the model of `design` (built from `panel`, analysed
/// in `analysis`) over `rho`.
pub fn analyse(
    design: &Design,
    panel: &Panel,
    analysis: &Analysis,
    rho: &[f64],
) -> Result<SensitivitySummary> {
    check(design)?;
    let (a, b) = a_b(analysis)?;
    let kappa = kappa(design)?;
    // Residual sums of squares from the Cholesky factor of the whole Gram
    // (base regressors, the mediator, the outcome, in that order).
    let q = design.q();
    let mut g = unpack(&design.total_packed(), q);
    cholesky(&mut g, q).map_err(|_| {
        Error::Numerical(
            "the outcome is fitted exactly; R-squared forms of the sensitivity analysis are undefined"
                .into(),
        )
    })?;
    let lay = design.layout;
    let (m, y) = (lay.mediator(0), lay.outcome());
    let rss = |col: usize| (g[col * q + col] * design.scale[col]).powi(2);
    let tss = |values: &[f64]| {
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>()
    };
    let n_num = panel.columns.len();
    let (m_raw, y_raw) = (
        &panel.columns[1 + panel.n_controls],
        &panel.columns[n_num - 1],
    );
    let r2_m = 1.0 - rss(m) / tss(m_raw);
    let r2_y = 1.0 - rss(y) / tss(y_raw);
    let rho0 = b / (b * b + kappa * kappa).sqrt();
    let tilde = (1.0 - r2_m) * (1.0 - r2_y);
    let curve: Vec<SensitivityPoint> = rho
        .iter()
        .map(|&r| SensitivityPoint {
            rho: r,
            acme: acme(a, b, kappa, r),
            r2_star_prod: r * r,
            r2_tilde_prod: r * r * tilde,
            bootstrap: None,
            intervals: vec![],
        })
        .collect();
    // medsens: the first grid value where |ACME| is smallest.
    let rho_grid = curve
        .iter()
        .fold(None::<&SensitivityPoint>, |best, p| match best {
            Some(b) if b.acme.abs() <= p.acme.abs() => Some(b),
            _ => Some(p),
        })
        .map_or(f64::NAN, |p| p.rho);
    Ok(SensitivitySummary {
        mediator: design.names[m].clone(),
        kappa,
        rho_at_zero: rho0,
        rho_at_zero_grid: rho_grid,
        r2_star_at_zero: rho0 * rho0,
        r2_tilde_at_zero: rho0 * rho0 * tilde,
        r_squared_mediator: r2_m,
        r_squared_outcome: r2_y,
        curve,
    })
}

impl SensitivitySummary {
    /// Attach the resampling results of the `sensitivity:K` keys.
    pub fn add_bootstrap(&mut self, stats: &[(String, BootstrapStats)], intervals: &[Interval]) {
        for (k, point) in self.curve.iter_mut().enumerate() {
            let key = EffectKey::Sensitivity(k).to_string();
            point.bootstrap = stats.iter().find(|(s, _)| *s == key).map(|(_, b)| *b);
            point.intervals = intervals
                .iter()
                .filter(|i| i.effect == key)
                .map(|i| Interval {
                    effect: format!("acme(rho={})", point.rho),
                    ..i.clone()
                })
                .collect();
        }
    }
}

/// The CSV of one or more models' curves: model, rho, ACME, the R-squared
/// products, then each interval's method, level and bounds (empty without
/// resampling).
pub fn csv(curves: &[(String, &SensitivitySummary)]) -> String {
    let mut out = String::from(
        "model,mediator,rho,acme,r2_star_prod,r2_tilde_prod,bootstrap_sd,method,level,lower,upper\n",
    );
    for (model, s) in curves {
        for p in &s.curve {
            let sd = p.bootstrap.map_or(String::new(), |b| format!("{}", b.sd));
            let head = format!(
                "{model},{},{},{},{},{},{sd}",
                s.mediator, p.rho, p.acme, p.r2_star_prod, p.r2_tilde_prod
            );
            if p.intervals.is_empty() {
                out.push_str(&format!("{head},,,,\n"));
            }
            for i in &p.intervals {
                out.push_str(&format!(
                    "{head},{},{},{},{}\n",
                    i.method, i.level, i.lower, i.upper
                ));
            }
        }
    }
    out
}
