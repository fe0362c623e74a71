//! The mediation model on one design: the total, mediator and outcome
//! equations, the effects a, b, c, c', a*b and the proportion mediated, the
//! suppression verdict, and the analytic inference for the indirect effect
//! (Sobel / delta method, joint significance, Monte Carlo interval), all from
//! the joint cluster-robust covariance of the system.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::math::linalg::{cholesky, quadratic_form};
use crate::math::rng::{STREAM_MONTE_CARLO, normals};
use crate::math::stats::{f_p_value, normal_p_value, normal_quantile, quantile_sorted, t_p_value};
use crate::model::design::Design;
use crate::model::effect::EffectKey;
use crate::model::estimate::{Equation, SystemFit, fit_system};
use crate::model::spec::InferenceSpec;

/// Per-effect summary of the replicate distribution (`E.bootstrap` in
/// summary.json).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapStats {
    pub mean: f64,
    pub sd: f64,
    /// Bootstrap p-value of zero: `2 min(#{t* <= 0}, #{t* >= 0}) / R` from
    /// the replicate distribution; for the wild scheme's single coefficients
    /// the restricted (WCR) bootstrap-t p-value; for the permutation scheme
    /// `(1 + #{|t*| >= |t|}) / (1 + R)`, and null where permuting the
    /// treatment does not impose the null (b, the proportion mediated).
    pub p_value: Option<f64>,
    /// Replicates, other than the degenerate ones, whose value of this
    /// statistic was not finite (a ratio over a zero denominator): left out
    /// of its quantiles and moments, and counted here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub non_finite: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A point estimate with its standard error and p-value where defined
/// (`E = {estimate, se, p_value}` in summary.json).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    pub estimate: f64,
    pub se: Option<f64>,
    pub p_value: Option<f64>,
    /// Moments and p-value of the replicate distribution, when resampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapStats>,
}

/// A confidence interval for one effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub effect: String,
    pub method: String,
    pub level: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The cluster-robust covariance of K coefficients from G clusters has
/// rank at most G - 1: with as many regressors as clusters its SEs and t
/// tests on G - 1 df are not to be trusted, so such a model is refused.
fn check_clusters(design: &Design) -> Result<()> {
    let regressors = 1 + design.layout.n_controls + design.layout.n_mediators;
    if regressors >= design.n_clusters {
        return Err(Error::Collinear {
            file: design.source.clone(),
            message: format!(
                "the outcome equation has {regressors} regressors (treatment, {} control(s), {} \
                 mediator(s)) but the data have only {} clusters; cluster-robust inference needs \
                 more clusters than regressors: drop controls or cluster more finely",
                design.layout.n_controls, design.layout.n_mediators, design.n_clusters
            ),
        });
    }
    Ok(())
}

/// The Sobel (delta-method normal) and Monte Carlo intervals of each
/// target (key, estimate, gradient in theta) at each level: `v` is theta's
/// covariance, `mc[t]` target t's sorted Monte Carlo draws.
fn analytic_intervals(
    targets: &[(String, f64, Vec<f64>)],
    mc: &[Vec<f64>],
    v: &[f64],
    levels: &[f64],
) -> Vec<Interval> {
    let mut intervals = Vec::new();
    for (t, (key, est, grad)) in targets.iter().enumerate() {
        let se = quadratic_form(grad, v).sqrt();
        for &level in levels {
            let z = normal_quantile(0.5 + level / 2.0);
            intervals.push(Interval {
                effect: key.clone(),
                method: SOBEL.into(),
                level,
                lower: est - z * se,
                upper: est + z * se,
            });
        }
        for &level in levels {
            let alpha = 1.0 - level;
            intervals.push(Interval {
                effect: key.clone(),
                method: MONTE_CARLO.into(),
                level,
                lower: quantile_sorted(&mc[t], alpha / 2.0),
                upper: quantile_sorted(&mc[t], 1.0 - alpha / 2.0),
            });
        }
    }
    intervals
}

/// The reported coefficients `a_1..a_m, b_1..b_m, c, c'` as (equation,
/// design column) pairs of `fit`; the order of the wild bootstrap's theta.
pub fn reported_coefficients(design: &Design) -> Vec<(usize, usize)> {
    let l = design.layout;
    let m = l.n_mediators;
    let outcome = m + 1;
    (0..m)
        .map(|j| (1 + j, l.treatment()))
        .chain((0..m).map(|j| (outcome, l.mediator(j))))
        .chain([(TOTAL, l.treatment()), (outcome, l.treatment())])
        .collect()
}

/// The analytic intervals' `method`: the delta method's normal interval
/// and the Monte Carlo one, both from the point estimate's covariance.
pub const SOBEL: &str = "sobel";
pub const MONTE_CARLO: &str = "monte_carlo";

/// The interval a report leads with for `effect`: the first resampling
/// interval, else the first analytic one (Sobel's).
pub fn headline<'a>(intervals: &'a [Interval], effect: &str) -> Option<&'a Interval> {
    let of = |i: &&Interval| i.effect == effect;
    intervals
        .iter()
        .filter(of)
        .find(|i| i.method != SOBEL && i.method != MONTE_CARLO)
        .or_else(|| intervals.iter().find(of))
}

/// Whether the indirect effect masks the direct one, and by how much.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    /// The indirect and direct effects have opposite signs.
    pub suppressing: bool,
    /// `|a*b / c'|`.
    pub share: f64,
}

/// Joint-significance test of one mediator's path: significant when both
/// a and b are; its p-value is `max(p_a, p_b)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JointTest {
    pub mediator: String,
    pub p_value: f64,
}

/// Everything the analysis of one design produces.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Effects in report order, keyed as in summary.json.
    pub effects: Vec<(String, Effect)>,
    pub intervals: Vec<Interval>,
    pub suppression: Suppression,
    pub joint: Vec<JointTest>,
    pub fit: SystemFit,
    pub mediators: Vec<String>,
    /// First-stage diagnostics when the treatment is instrumented.
    pub iv: Option<IvDiagnostics>,
}

/// The first stage of an instrumented treatment (summary.json `"iv"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IvDiagnostics {
    pub instruments: Vec<String>,
    /// Cluster-robust (CR1) Wald F of the excluded instruments in the first
    /// stage (treatment on instruments, controls and fixed effects), the
    /// Wald statistic over the number of instruments, as fixest's `ivwald`
    /// and pyfixest's first-stage F.
    pub first_stage_f: f64,
    /// Its p-value from F(instruments, clusters - 1).
    pub first_stage_p_value: f64,
}

/// The first-stage regression of the treatment on the excluded instruments
/// and the exogenous columns, and the CR1 Wald F of the instruments.
pub fn first_stage(design: &Design) -> Result<Option<IvDiagnostics>> {
    let l = design.layout;
    if !l.instrumented() {
        return Ok(None);
    }
    let mut regressors = l.exogenous();
    let excluded: Vec<usize> = (0..l.n_instruments).map(|j| l.instrument(j)).collect();
    regressors.extend(&excluded);
    let fit = fit_system(
        design,
        &[Equation {
            name: "first-stage".into(),
            dependent: l.treatment(),
            regressors,
            instruments: None,
        }],
    )?;
    let k = excluded.len();
    let pi: Vec<f64> = excluded.iter().map(|&z| fit.coef(0, z)).collect();
    let mut v: Vec<f64> = Vec::with_capacity(k * k);
    for &zi in &excluded {
        for &zj in &excluded {
            v.push(fit.cov((0, zi), (0, zj)));
        }
    }
    cholesky(&mut v, k).map_err(|pivot| {
        Error::Numerical(format!(
            "the cluster-robust covariance of the first-stage coefficients is singular at \
             instrument '{}' (too few clusters for {k} instruments?)",
            design.names[excluded[pivot]]
        ))
    })?;
    // W = pi' V^{-1} pi through the factor: |L^{-1} pi|^2.
    let mut w = pi.clone();
    for i in 0..k {
        let s: f64 = (0..i).map(|c| v[i * k + c] * w[c]).sum();
        w[i] = (w[i] - s) / v[i * k + i];
    }
    let f = w.iter().map(|x| x * x).sum::<f64>() / k as f64;
    Ok(Some(IvDiagnostics {
        instruments: excluded.iter().map(|&z| design.names[z].clone()).collect(),
        first_stage_f: f,
        first_stage_p_value: f_p_value(f, k as f64, fit.df()),
    }))
}

impl Analysis {
    /// The effect stored under `key`.
    pub fn effect(&self, key: &str) -> Option<&Effect> {
        self.effects.iter().find(|(k, _)| k == key).map(|(_, e)| e)
    }
}

/// Index of the total-effect equation in the system.
pub const TOTAL: usize = 0;

/// The system: total effect, one equation per mediator, outcome.
pub fn equations(design: &Design) -> Vec<Equation> {
    let l = design.layout;
    let mut eqs = vec![Equation {
        name: "total".into(),
        dependent: l.outcome(),
        regressors: l.base_regressors(),
        instruments: l.instruments_for(&l.base_regressors()),
    }];
    for j in 0..l.n_mediators {
        eqs.push(Equation {
            name: format!("mediator {}", design.names[l.mediator(j)]),
            dependent: l.mediator(j),
            regressors: l.base_regressors(),
            instruments: l.instruments_for(&l.base_regressors()),
        });
    }
    eqs.push(Equation {
        name: "outcome".into(),
        dependent: l.outcome(),
        regressors: l.outcome_regressors(),
        instruments: l.instruments_for(&l.outcome_regressors()),
    });
    eqs
}

/// Fit the model and compute every effect and interval.
pub fn analyse(design: &Design, inference: &InferenceSpec) -> Result<Analysis> {
    inference.validate()?;
    check_clusters(design)?;
    let fit = fit_system(design, &equations(design))?;
    let l = design.layout;
    let m = l.n_mediators;
    let x = l.treatment();
    let outcome_eq = m + 1;
    let df = fit.df();
    let t_effect = |e: usize, col: usize| {
        let est = fit.coef(e, col);
        let se = fit.se(e, col);
        Effect {
            estimate: est,
            se: Some(se),
            p_value: Some(t_p_value(est / se, df)),
            bootstrap: None,
        }
    };

    // theta = (a_1..a_m, b_1..b_m) and its covariance.
    let idx: Vec<(usize, usize)> = (0..m)
        .map(|j| (1 + j, x))
        .chain((0..m).map(|j| (outcome_eq, l.mediator(j))))
        .collect();
    let theta: Vec<f64> = idx.iter().map(|&(e, c)| fit.coef(e, c)).collect();
    let d = 2 * m;
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            v[i * d + j] = fit.cov(idx[i], idx[j]);
        }
    }
    let mediators: Vec<String> = (0..m)
        .map(|j| design.names[l.mediator(j)].clone())
        .collect();

    // Delta-method (Sobel) variance of a gradient g'theta-linearisation.
    let delta_se = |grad: &[f64]| -> f64 { quadratic_form(grad, &v).sqrt() };
    let sobel = |est: f64, grad: &[f64]| {
        let se = delta_se(grad);
        Effect {
            estimate: est,
            se: Some(se),
            p_value: Some(normal_p_value(est / se)),
            bootstrap: None,
        }
    };
    let specific: Vec<f64> = (0..m).map(|j| theta[j] * theta[m + j]).collect();
    let total_indirect: f64 = specific.iter().sum();
    let grad_total: Vec<f64> = (0..d)
        .map(|i| if i < m { theta[m + i] } else { theta[i - m] })
        .collect();
    let grad_specific = |j: usize| -> Vec<f64> {
        let mut g = vec![0.0; d];
        g[j] = theta[m + j];
        g[m + j] = theta[j];
        g
    };

    let c = t_effect(TOTAL, x);
    let c_prime = t_effect(outcome_eq, x);
    let mut effects = Vec::new();
    if m == 1 {
        effects.push((EffectKey::A(None).to_string(), t_effect(1, x)));
        effects.push((
            EffectKey::B(None).to_string(),
            t_effect(outcome_eq, l.mediator(0)),
        ));
    } else {
        for (j, name) in mediators.iter().enumerate() {
            effects.push((
                EffectKey::A(Some(name.clone())).to_string(),
                t_effect(1 + j, x),
            ));
            effects.push((
                EffectKey::B(Some(name.clone())).to_string(),
                t_effect(outcome_eq, l.mediator(j)),
            ));
            effects.push((
                EffectKey::Indirect(Some(name.clone())).to_string(),
                sobel(specific[j], &grad_specific(j)),
            ));
        }
    }
    effects.push((EffectKey::C.to_string(), c));
    effects.push((EffectKey::CPrime.to_string(), c_prime));
    let indirect = sobel(total_indirect, &grad_total);
    effects.push((EffectKey::Indirect(None).to_string(), indirect));
    // Pairwise contrasts of the specific indirect effects, a_j b_j - a_k b_k.
    let pairs: Vec<(usize, usize)> = (0..m)
        .flat_map(|j| (j + 1..m).map(move |k| (j, k)))
        .collect();
    let grad_contrast = |j: usize, k: usize| -> Vec<f64> {
        grad_specific(j)
            .iter()
            .zip(grad_specific(k))
            .map(|(a, b)| a - b)
            .collect()
    };
    for &(j, k) in &pairs {
        effects.push((
            EffectKey::Contrast(mediators[j].clone(), mediators[k].clone()).to_string(),
            sobel(specific[j] - specific[k], &grad_contrast(j, k)),
        ));
    }
    effects.push((
        EffectKey::ProportionMediated.to_string(),
        Effect {
            estimate: total_indirect / c.estimate,
            se: None,
            p_value: None,
            bootstrap: None,
        },
    ));
    effects.push((
        EffectKey::SuppressionShare.to_string(),
        Effect {
            estimate: (total_indirect / c_prime.estimate).abs(),
            se: None,
            p_value: None,
            bootstrap: None,
        },
    ));

    let joint = (0..m)
        .map(|j| {
            let pa = t_p_value(theta[j] / v[j * d + j].sqrt(), df);
            let pb = t_p_value(theta[m + j] / v[(m + j) * d + m + j].sqrt(), df);
            JointTest {
                mediator: mediators[j].clone(),
                p_value: pa.max(pb),
            }
        })
        .collect();

    // Intervals: Sobel (normal) and Monte Carlo, for the total indirect effect
    // and, with several mediators, for each specific one.
    let mut targets: Vec<(String, f64, Vec<f64>)> = vec![(
        EffectKey::Indirect(None).to_string(),
        total_indirect,
        grad_total.clone(),
    )];
    if m > 1 {
        for (j, name) in mediators.iter().enumerate() {
            targets.push((
                EffectKey::Indirect(Some(name.clone())).to_string(),
                specific[j],
                grad_specific(j),
            ));
        }
        for &(j, k) in &pairs {
            targets.push((
                EffectKey::Contrast(mediators[j].clone(), mediators[k].clone()).to_string(),
                specific[j] - specific[k],
                grad_contrast(j, k),
            ));
        }
    }
    let mc = monte_carlo_draws(&theta, &v, m, inference).map_err(|e| match e {
        Error::TooLittleData { message, .. } => Error::TooLittleData {
            file: design.source.clone(),
            message,
        },
        other => other,
    })?;
    let intervals = analytic_intervals(&targets, &mc, &v, &inference.levels);
    let suppression = Suppression {
        suppressing: total_indirect * c_prime.estimate < 0.0,
        share: (total_indirect / c_prime.estimate).abs(),
    };
    Ok(Analysis {
        effects,
        intervals,
        suppression,
        joint,
        fit,
        mediators,
        iv: first_stage(design)?,
    })
}

/// Sorted Monte Carlo draws of the total indirect effect (index 0) and, with
/// several mediators, of each specific one (index 1 + j), then of each
/// pairwise contrast (j < k, in order): theta is drawn from
/// N(theta_hat, V) as `theta_hat + L z`, z from the Philox normal stream
/// `STREAM_MONTE_CARLO` with draw r as the replicate index.
fn monte_carlo_draws(
    theta: &[f64],
    v: &[f64],
    m: usize,
    inference: &InferenceSpec,
) -> Result<Vec<Vec<f64>>> {
    let d = theta.len();
    let mut l = v.to_vec();
    cholesky(&mut l, d).map_err(|_| Error::TooLittleData {
        file: String::new(),
        message: format!(
            "the cluster-robust covariance of the {d} a and b paths is singular (too few clusters \
             for {} mediators?), so the Monte Carlo interval cannot be drawn",
            d / 2
        ),
    })?;
    let n_targets = if m > 1 { 1 + m + m * (m - 1) / 2 } else { 1 };
    let draws = inference.mc_draws as usize;
    let mut out = vec![Vec::with_capacity(draws); n_targets];
    let mut z = vec![0.0; d];
    let mut th = vec![0.0; d];
    for r in 0..draws {
        normals(inference.seed, r as u64, STREAM_MONTE_CARLO, &mut z);
        for i in 0..d {
            th[i] = theta[i] + (0..=i).map(|k| l[i * d + k] * z[k]).sum::<f64>();
        }
        let mut total = 0.0;
        for j in 0..m {
            let ab = th[j] * th[m + j];
            total += ab;
            if m > 1 {
                out[1 + j].push(ab);
            }
        }
        out[0].push(total);
        let mut t = 1 + m;
        for j in 0..m {
            for k in j + 1..m {
                out[t].push(th[j] * th[m + j] - th[k] * th[m + k]);
                t += 1;
            }
        }
    }
    for s in &mut out {
        s.sort_by(f64::total_cmp);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(draws: u64, seed: u64) -> InferenceSpec {
        InferenceSpec {
            levels: vec![0.95],
            mc_draws: draws,
            seed,
        }
    }

    #[test]
    fn monte_carlo_reduces_to_the_normal_when_b_is_known() {
        // b fixed at 2: a*b ~ N(1, (2 * 0.1)^2).
        let draws =
            monte_carlo_draws(&[0.5, 2.0], &[0.01, 0.0, 0.0, 1e-14], 1, &spec(100_000, 3)).unwrap();
        let lo = quantile_sorted(&draws[0], 0.025);
        let hi = quantile_sorted(&draws[0], 0.975);
        let z = normal_quantile(0.975);
        // Monte Carlo error of a 2.5 % quantile at 1e5 draws is about 0.0025.
        assert!((lo - (1.0 - z * 0.2)).abs() < 0.01, "{lo}");
        assert!((hi - (1.0 + z * 0.2)).abs() < 0.01, "{hi}");
    }

    #[test]
    fn monte_carlo_keeps_the_covariance_of_a_and_b() {
        // E[a b] = a_hat b_hat + cov(a, b).
        let cov = 0.006;
        let draws =
            monte_carlo_draws(&[0.3, 0.4], &[0.01, cov, cov, 0.01], 1, &spec(200_000, 5)).unwrap();
        let mean = draws[0].iter().sum::<f64>() / draws[0].len() as f64;
        // sd of a b is about 0.07, so the mean's error is about 0.00016.
        assert!((mean - (0.12 + cov)).abs() < 0.001, "{mean}");
    }

    #[test]
    fn monte_carlo_is_a_function_of_the_seed() {
        let v = [0.01, 0.002, 0.002, 0.02];
        let a = monte_carlo_draws(&[0.3, 0.4], &v, 1, &spec(5000, 9)).unwrap();
        let b = monte_carlo_draws(&[0.3, 0.4], &v, 1, &spec(5000, 9)).unwrap();
        let c = monte_carlo_draws(&[0.3, 0.4], &v, 1, &spec(5000, 10)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
