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
use crate::model::effect::{EffectKey, path_name};
use crate::model::estimate::{Equation, SystemFit, fit_system};
use crate::model::moderation;
use crate::model::serial::Chain;
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
/// covariance, `mc[t]` target t's sorted Monte Carlo draws (none past
/// `mc`'s end).
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
        let Some(draws) = mc.get(t) else {
            continue;
        };
        for &level in levels {
            let alpha = 1.0 - level;
            intervals.push(Interval {
                effect: key.clone(),
                method: MONTE_CARLO.into(),
                level,
                lower: quantile_sorted(draws, alpha / 2.0),
                upper: quantile_sorted(draws, 1.0 - alpha / 2.0),
            });
        }
    }
    intervals
}

/// The reported coefficients `a_1..a_m, b_1..b_m, c, c'` as (equation,
/// design column) pairs of `fit`, then a chain's links (`Chain::links`'
/// order), or a moderated or interaction model's further coefficients
/// (a3, b3, c3', d where the model has them, in
/// `crate::model::moderation::coefficients`' order): the order of the wild
/// bootstrap's and the GPU engine's theta.
pub fn reported_coefficients(design: &Design) -> Vec<(usize, usize)> {
    let l = design.layout;
    let m = l.n_mediators;
    let outcome = m + 1;
    let links = Chain::new(m, design.serial).links;
    let extended = match moderation::extended(design) {
        true => moderation::coefficients(design)[2 * m + 2..].to_vec(),
        false => Vec::new(),
    };
    (0..m)
        .map(|j| (1 + j, l.treatment()))
        .chain((0..m).map(|j| (outcome, l.mediator(j))))
        .chain([(TOTAL, l.treatment()), (outcome, l.treatment())])
        .chain(
            links
                .into_iter()
                .map(|(to, from)| (1 + to, l.mediator(from))),
        )
        .chain(extended.into_iter().flatten())
        .collect()
}

/// Each equation's reported coefficients (`reported_coefficients`) as
/// (place in that order, place among the equation's regressors, ratio
/// into the units of the data): what a solve of one equation at a time
/// needs to write them.
pub fn coefficient_places(design: &Design) -> Vec<Vec<(usize, usize, f64)>> {
    let eqs = equations(design);
    let mut places = vec![Vec::new(); eqs.len()];
    for (o, (e, col)) in reported_coefficients(design).into_iter().enumerate() {
        let eq = &eqs[e];
        let at = eq.regressors.iter().position(|&c| c == col);
        let at = at.expect("a reported coefficient is among its equation's regressors");
        places[e].push((o, at, design.scale[eq.dependent] / design.scale[col]));
    }
    places
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
    /// Each instrumented mediator's first stage, by mediator.
    pub mediator_iv: Vec<(String, IvDiagnostics)>,
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
    if !l.treatment_instrumented() {
        return Ok(None);
    }
    let excluded: Vec<usize> = (0..l.n_instruments).map(|j| l.instrument(j)).collect();
    let regressors = l.system_instruments(&l.base_regressors());
    wald_first_stage(design, l.treatment(), regressors, &excluded).map(Some)
}

/// Each instrumented mediator's first stage: the mediator on every
/// instrument of the outcome equation (the controls and fixed effects, the
/// treatment or its instruments, and the mediators' excluded instruments),
/// and the CR1 Wald F of the mediators' excluded instruments, as pyfixest
/// reports for `y ~ x + controls | fe | m ~ z`. With several mediators it
/// is each one's own F, not a conditional one.
pub fn mediator_first_stages(design: &Design) -> Result<Vec<(String, IvDiagnostics)>> {
    let l = design.layout;
    if !l.mediators_instrumented() {
        return Ok(Vec::new());
    }
    let excluded: Vec<usize> = (0..l.n_mediator_instruments)
        .map(|j| l.mediator_instrument(j))
        .collect();
    let regressors = l.system_instruments(&l.outcome_regressors());
    (0..l.n_mediators)
        .map(|j| {
            let m = l.mediator(j);
            let fs = wald_first_stage(design, m, regressors.clone(), &excluded)?;
            Ok((design.names[m].clone(), fs))
        })
        .collect()
}

/// The CR1 Wald F of the `excluded` columns in the least-squares
/// regression of `endogenous` on `regressors` (which include them): the
/// Wald statistic over the number of instruments, with its p-value from
/// F(instruments, clusters - 1).
fn wald_first_stage(
    design: &Design,
    endogenous: usize,
    regressors: Vec<usize>,
    excluded: &[usize],
) -> Result<IvDiagnostics> {
    let fit = fit_system(
        design,
        &[Equation {
            name: format!("first-stage ({})", design.names[endogenous]),
            dependent: endogenous,
            regressors,
            instruments: None,
        }],
    )?;
    let k = excluded.len();
    let pi: Vec<f64> = excluded.iter().map(|&z| fit.coef(0, z)).collect();
    let mut v: Vec<f64> = Vec::with_capacity(k * k);
    for &zi in excluded {
        for &zj in excluded {
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
    Ok(IvDiagnostics {
        instruments: excluded.iter().map(|&z| design.names[z].clone()).collect(),
        first_stage_f: f,
        first_stage_p_value: f_p_value(f, k as f64, fit.df()),
    })
}

impl Analysis {
    /// The effect stored under `key`.
    pub fn effect(&self, key: &str) -> Option<&Effect> {
        self.effects.iter().find(|(k, _)| k == key).map(|(_, e)| e)
    }
}

/// Index of the total-effect equation in the system.
pub const TOTAL: usize = 0;

/// The system: total effect, one equation per mediator, outcome (a
/// moderated model's own, `crate::model::moderation::equations`).
pub fn equations(design: &Design) -> Vec<Equation> {
    if moderation::extended(design) {
        return moderation::equations(design);
    }
    let l = design.layout;
    let mut eqs = vec![Equation {
        name: "total".into(),
        dependent: l.outcome(),
        regressors: l.base_regressors(),
        instruments: l.instruments_for(&l.base_regressors()),
    }];
    for j in 0..l.n_mediators {
        // In a chain, the mediators before this one too.
        let mut regressors = l.base_regressors();
        if design.serial {
            regressors.extend((0..j).map(|k| l.mediator(k)));
        }
        eqs.push(Equation {
            name: format!("mediator {}", design.names[l.mediator(j)]),
            dependent: l.mediator(j),
            instruments: l.instruments_for(&regressors),
            regressors,
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
    let mediators: Vec<String> = (0..m)
        .map(|j| design.names[l.mediator(j)].clone())
        .collect();
    let paths = Paths::new(design, &fit);
    let effects = effects_of(design, &fit, &paths, &mediators);
    let mc = monte_carlo_draws(&paths.theta, &paths.v, &paths.chain, inference).map_err(
        |e| match e {
            Error::TooLittleData { message, .. } => Error::TooLittleData {
                file: design.source.clone(),
                message,
            },
            other => other,
        },
    )?;
    let targets = paths.interval_targets(&mediators);
    let mut intervals = analytic_intervals(&targets, &mc, &paths.v, &inference.levels);
    let mut effects = effects;
    if moderation::extended(design) {
        let (more, sobel) = moderated_effects(design, &fit, &inference.levels);
        effects.extend(more);
        intervals.extend(sobel);
    }
    let (total_indirect, _) = paths.total();
    let c_prime = fit.coef(m + 1, l.treatment());
    let suppression = Suppression {
        suppressing: total_indirect * c_prime < 0.0,
        share: (total_indirect / c_prime).abs(),
    };
    Ok(Analysis {
        effects,
        intervals,
        suppression,
        joint: paths.joint_tests(&mediators, fit.df()),
        fit,
        mediators,
        iv: first_stage(design)?,
        mediator_iv: mediator_first_stages(design)?,
    })
}

/// Every effect of the fit, in the summary's order: each mediator's a and b
/// (and, with several, its a_j b_j), c, c', the total indirect effect, the
/// contrasts of the specific indirect effects, the proportion mediated and
/// the suppression share.
fn effects_of(
    design: &Design,
    fit: &SystemFit,
    paths: &Paths,
    mediators: &[String],
) -> Vec<(String, Effect)> {
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
    let no_se = |estimate: f64| Effect {
        estimate,
        se: None,
        p_value: None,
        bootstrap: None,
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
                paths.sobel(paths.path(j)),
            ));
        }
        // A chain's links: mediator `from` in the equation of `to`.
        for &(to, from) in &paths.chain.links {
            effects.push((
                EffectKey::D(mediators[from].clone(), mediators[to].clone()).to_string(),
                t_effect(1 + to, l.mediator(from)),
            ));
        }
    }
    effects.push((EffectKey::C.to_string(), c));
    effects.push((EffectKey::CPrime.to_string(), c_prime));
    let (total_indirect, grad_total) = paths.total();
    effects.push((
        EffectKey::Indirect(None).to_string(),
        paths.sobel((total_indirect, grad_total)),
    ));
    for (i, path) in paths.chain.paths.iter().enumerate().skip(m) {
        effects.push((
            EffectKey::Indirect(Some(path_name(path, mediators))).to_string(),
            paths.sobel(paths.path(i)),
        ));
    }
    for &(p, q) in &paths.chain.contrasts {
        effects.push((
            paths.contrast_key(p, q, mediators),
            paths.sobel(paths.contrast(p, q)),
        ));
    }
    effects.push((
        EffectKey::ProportionMediated.to_string(),
        no_se(total_indirect / c.estimate),
    ));
    effects.push((
        EffectKey::SuppressionShare.to_string(),
        no_se((total_indirect / c_prime.estimate).abs()),
    ));
    effects
}

/// A moderated or interaction model's effects
/// (`crate::model::moderation::each_effect`): the interaction coefficients
/// with their t tests, the other functions of theta with delta-method SEs,
/// normal p-values and Sobel intervals.
fn moderated_effects(
    design: &Design,
    fit: &SystemFit,
    levels: &[f64],
) -> (Vec<(String, Effect)>, Vec<Interval>) {
    let at = moderation::coefficients(design);
    let theta: Vec<f64> = at
        .iter()
        .map(|c| c.map_or(0.0, |(e, col)| fit.coef(e, col)))
        .collect();
    let d = at.len();
    let mut v = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            if let (Some(a), Some(b)) = (at[i], at[j]) {
                v[i * d + j] = fit.cov(a, b);
            }
        }
    }
    let mut effects = Vec::new();
    let mut targets = Vec::new();
    let stats = moderation::ModerationStats::of(design);
    let l = design.layout;
    let names: Vec<String> = (0..l.n_mediators)
        .map(|j| design.names[l.mediator(j)].clone())
        .collect();
    let mut keys = stats.keys(&names).into_iter();
    let evaluation = moderation::Evaluation::of(design);
    let mut scratch = Vec::new();
    moderation::each_effect(
        &theta,
        &evaluation,
        stats,
        &mut scratch,
        &mut |estimate, grad| {
            let key = keys.next().expect("one key per effect");
            let se = quadratic_form(grad, &v).sqrt();
            let coefficient = moderation::coefficient(&key);
            let p_value = match coefficient {
                true => t_p_value(estimate / se, fit.df()),
                false => normal_p_value(estimate / se),
            };
            if !coefficient {
                targets.push((key.to_string(), estimate, grad.to_vec()));
            }
            effects.push((
                key.to_string(),
                Effect {
                    estimate,
                    se: Some(se),
                    p_value: Some(p_value),
                    bootstrap: None,
                },
            ));
        },
    );
    (effects, analytic_intervals(&targets, &[], &v, levels))
}

/// The path coefficients theta (a_1..a_m, b_1..b_m, and a chain's links,
/// `crate::model::serial`) with their joint cluster-robust covariance; the
/// indirect effects are functions of them, each given with its gradient
/// for the delta method (Sobel).
struct Paths {
    theta: Vec<f64>,
    /// Covariance of theta, row-major.
    v: Vec<f64>,
    chain: Chain,
}

impl Paths {
    fn new(design: &Design, fit: &SystemFit) -> Paths {
        let l = design.layout;
        let m = l.n_mediators;
        let chain = Chain::new(m, design.serial);
        let idx: Vec<(usize, usize)> = (0..m)
            .map(|j| (1 + j, l.treatment()))
            .chain((0..m).map(|j| (m + 1, l.mediator(j))))
            .chain(
                chain
                    .links
                    .iter()
                    .map(|&(to, from)| (1 + to, l.mediator(from))),
            )
            .collect();
        let theta = idx.iter().map(|&(e, c)| fit.coef(e, c)).collect();
        let d = idx.len();
        let mut v = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                v[i * d + j] = fit.cov(idx[i], idx[j]);
            }
        }
        Paths { theta, v, chain }
    }

    /// Path i's indirect effect (`Chain::paths`; a_j b_j for mediator j
    /// alone) and its gradient.
    fn path(&self, i: usize) -> (f64, Vec<f64>) {
        self.chain
            .effect_and_gradient(&self.theta, &self.chain.paths[i])
    }

    /// The total indirect effect, every path's, and its gradient.
    fn total(&self) -> (f64, Vec<f64>) {
        let mut estimate = 0.0;
        let mut grad = vec![0.0; self.theta.len()];
        for i in 0..self.chain.paths.len() {
            let (e, g) = self.path(i);
            estimate += e;
            grad.iter_mut().zip(g).for_each(|(a, b)| *a += b);
        }
        (estimate, grad)
    }

    /// Path p's effect less path q's, and its gradient.
    fn contrast(&self, p: usize, q: usize) -> (f64, Vec<f64>) {
        let ((ep, gp), (eq, gq)) = (self.path(p), self.path(q));
        (ep - eq, gp.iter().zip(gq).map(|(a, b)| a - b).collect())
    }

    /// The key of path p's effect less path q's.
    fn contrast_key(&self, p: usize, q: usize, mediators: &[String]) -> String {
        let name = |i: usize| path_name(&self.chain.paths[i], mediators);
        EffectKey::Contrast(name(p), name(q)).to_string()
    }

    /// The delta-method (Sobel) test of an estimate with gradient `grad`.
    fn sobel(&self, (estimate, grad): (f64, Vec<f64>)) -> Effect {
        let se = quadratic_form(&grad, &self.v).sqrt();
        Effect {
            estimate,
            se: Some(se),
            p_value: Some(normal_p_value(estimate / se)),
            bootstrap: None,
        }
    }

    /// The joint significance test of each path: the largest of the t
    /// tests' p-values of its coefficients (a_j and b_j for a mediator
    /// alone; a chain's links too).
    fn joint_tests(&self, mediators: &[String], df: f64) -> Vec<JointTest> {
        let (d, t, v) = (self.theta.len(), &self.theta, &self.v);
        let p = |i: usize| t_p_value(t[i] / v[i * d + i].sqrt(), df);
        self.chain
            .paths
            .iter()
            .map(|path| JointTest {
                mediator: path_name(path, mediators),
                p_value: self
                    .chain
                    .factors(path)
                    .into_iter()
                    .map(p)
                    .fold(f64::NEG_INFINITY, f64::max),
            })
            .collect()
    }

    /// What the Sobel and Monte Carlo intervals are for, in the order of
    /// `monte_carlo_draws`: the total indirect effect and, with several
    /// paths, each path's and each contrast (key, estimate, gradient).
    fn interval_targets(&self, mediators: &[String]) -> Vec<(String, f64, Vec<f64>)> {
        let (total, grad) = self.total();
        let mut targets = vec![(EffectKey::Indirect(None).to_string(), total, grad)];
        if self.chain.paths.len() > 1 {
            for (i, path) in self.chain.paths.iter().enumerate() {
                let (estimate, grad) = self.path(i);
                let key = EffectKey::Indirect(Some(path_name(path, mediators)));
                targets.push((key.to_string(), estimate, grad));
            }
            for &(p, q) in &self.chain.contrasts {
                let (estimate, grad) = self.contrast(p, q);
                targets.push((self.contrast_key(p, q, mediators), estimate, grad));
            }
        }
        targets
    }
}

/// Sorted Monte Carlo draws of the total indirect effect (index 0) and,
/// with several paths, of each path's (index 1 + i), then of each
/// contrast (`Chain::contrasts`' order): theta is drawn from N(theta_hat,
/// V) as `theta_hat + L z`, z from the Philox normal stream
/// `STREAM_MONTE_CARLO` with draw r as the replicate index.
fn monte_carlo_draws(
    theta: &[f64],
    v: &[f64],
    chain: &Chain,
    inference: &InferenceSpec,
) -> Result<Vec<Vec<f64>>> {
    let d = theta.len();
    let mut l = v.to_vec();
    cholesky(&mut l, d).map_err(|_| Error::TooLittleData {
        file: String::new(),
        message: format!(
            "the cluster-robust covariance of the {d} path coefficients is singular (too few \
             clusters for {} mediators?), so the Monte Carlo interval cannot be drawn",
            chain.m
        ),
    })?;
    let n = chain.paths.len();
    let n_targets = if n > 1 {
        1 + n + chain.contrasts.len()
    } else {
        1
    };
    let draws = inference.mc_draws as usize;
    let mut out = vec![Vec::with_capacity(draws); n_targets];
    let mut z = vec![0.0; d];
    let mut th = vec![0.0; d];
    let mut effects = Vec::new();
    for r in 0..draws {
        normals(inference.seed, r as u64, STREAM_MONTE_CARLO, &mut z);
        for i in 0..d {
            th[i] = theta[i] + (0..=i).map(|k| l[i * d + k] * z[k]).sum::<f64>();
        }
        // Paths, total, contrasts; the targets' order puts the total first.
        chain.indirect_effects(&th, &mut effects);
        out[0].push(effects[n]);
        if n > 1 {
            for i in 0..n {
                out[1 + i].push(effects[i]);
            }
            for (c, &e) in effects[n + 1..].iter().enumerate() {
                out[1 + n + c].push(e);
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
        let draws = monte_carlo_draws(
            &[0.5, 2.0],
            &[0.01, 0.0, 0.0, 1e-14],
            &Chain::new(1, false),
            &spec(100_000, 3),
        )
        .unwrap();
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
        let draws = monte_carlo_draws(
            &[0.3, 0.4],
            &[0.01, cov, cov, 0.01],
            &Chain::new(1, false),
            &spec(200_000, 5),
        )
        .unwrap();
        let mean = draws[0].iter().sum::<f64>() / draws[0].len() as f64;
        // sd of a b is about 0.07, so the mean's error is about 0.00016.
        assert!((mean - (0.12 + cov)).abs() < 0.001, "{mean}");
    }

    #[test]
    fn monte_carlo_is_a_function_of_the_seed() {
        let v = [0.01, 0.002, 0.002, 0.02];
        let a = monte_carlo_draws(&[0.3, 0.4], &v, &Chain::new(1, false), &spec(5000, 9)).unwrap();
        let b = monte_carlo_draws(&[0.3, 0.4], &v, &Chain::new(1, false), &spec(5000, 9)).unwrap();
        let c = monte_carlo_draws(&[0.3, 0.4], &v, &Chain::new(1, false), &spec(5000, 10)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
