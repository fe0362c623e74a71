//! The summary.json contract (issue 2): what a run reports, as plain serde
//! types. Later versions add keys and never remove or rename one.
//!
//! `effects` maps a key to `{estimate, se, p_value}`: `a`, `b`, `c`,
//! `c_prime`, `indirect`, `proportion_mediated`; with several mediators
//! `a:NAME`, `b:NAME`, `indirect:NAME` replace `a` and `b`, `indirect` is
//! the sum of the specific indirect effects, and `contrast:NAME1:NAME2` is
//! `indirect:NAME1 - indirect:NAME2`. With `--group`, `groups` holds each
//! group's model under `COL=LEVEL`; with `--also-mediators`,
//! `mediator_models` holds the model with another set of mediators. With `--instrument`, every equation is
//! fitted by two-stage least squares and `iv` holds the first stage; with
//! `--mediator-instrument`, the outcome equation is, and `mediator_iv` holds
//! each mediator's first stage. With
//! `--moderator`, `moderation` describes the moderated paths and the
//! moderator values of the conditional effects ([`ModerationSummary`]).

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::model::confounding::ConfoundingSummary;
use crate::model::design::{Design, ModeratedColumns, Role};
use crate::model::effect::{EffectKey, path_name};
use crate::model::mediation::{Analysis, Effect, Interval, IvDiagnostics, JointTest, Suppression};
use crate::model::panel::Panel;
use crate::model::sensitivity::SensitivitySummary;
use crate::model::serial::Chain;
use crate::model::spec::{InferenceSpec, ModelSpec};
use crate::resample::johnson_neyman::JohnsonNeyman;
use crate::study::resampling::{ResampleResult, ResamplingSummary};

/// The whole summary of one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub version: String,
    pub name: String,
    pub data: DataSummary,
    pub model: ModelSummary,
    pub effects: IndexMap<String, Effect>,
    pub intervals: Vec<Interval>,
    pub suppression: Suppression,
    pub joint_significance: Vec<JointTest>,
    pub inference: InferenceSummary,
    pub equations: Vec<EquationSummary>,
    /// With `--instrument`: the instruments and the cluster-robust
    /// first-stage F.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iv: Option<IvDiagnostics>,
    /// With `--mediator-instrument`: each mediator's instruments and
    /// cluster-robust first-stage F, by mediator.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub mediator_iv: IndexMap<String, IvDiagnostics>,
    /// With `--moderator`: the moderated paths and the moderator values of
    /// the effects `conditional_indirect:K` and `conditional_direct:K`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<ModerationSummary>,
    /// With `--interaction`: the treatment change of the natural effects
    /// `natural_direct` and `natural_indirect`, and the means they use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interaction: Option<InteractionSummary>,
    /// With `--serial`: the chain and the keys of its links, paths and
    /// contrasts in `effects`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<SerialSummary>,
    /// Present when the run resampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resampling: Option<ResamplingSummary>,
    /// With `--group COL`: the model of each group of clusters, keyed
    /// `COL=LEVEL`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub groups: IndexMap<String, SubmodelSummary>,
    /// With `--also-mediators`: the model on the same sample with another
    /// set of mediators in parallel (e.g. the components of the main one),
    /// keyed by the mediators joined with `+`, resampled with the same
    /// replicates.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub mediator_models: IndexMap<String, SubmodelSummary>,
    /// With `--group COL`: the difference of each effect between every two
    /// groups of a column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contrasts: Vec<ContrastSummary>,
    /// With a `[sensitivity]` section: ACME over the rho grid, its
    /// intervals, the rho at which it is zero and the R-squared forms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<SensitivitySummary>,
    /// With `[sensitivity] confounding = true`: each path's partial
    /// R-squared, robustness values and benchmark bounds (Cinelli and
    /// Hazlett 2020).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confounding: Option<ConfoundingSummary>,
    /// The main model's indirect effect in its first replicates (at most
    /// `run::PLOTTED_DRAWS`), for the plot of its bootstrap distribution;
    /// not written to summary.json.
    #[serde(skip)]
    pub indirect_draws: Vec<f64>,
    /// Every replicate of the main model, when the plan asked to keep them
    /// (`RunPlan::keep_replicates`); not written to summary.json.
    #[serde(skip)]
    pub replicates: Option<crate::study::resampling::Replicates>,
}

/// A moderated model (summary.json `moderation`): its effects are in
/// `effects` as `a3`, `b3`, `c3_prime` (the interaction coefficients),
/// `conditional_indirect:K` and `conditional_direct:K` (at `values[K]`),
/// `index_moderated_mediation` and `indirect_difference`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModerationSummary {
    pub moderator: String,
    /// Hayes' PROCESS model number of the moderated paths.
    pub process_model: u8,
    /// The moderated paths: a, b, direct.
    pub paths: Vec<String>,
    /// X and W were mean-centred before forming the products.
    pub center: bool,
    /// W's mean when centred (a, b and c' are the effects there), else 0.
    pub shift: f64,
    /// W (or one of a categorical W's indicators) does not vary within
    /// units: the unit effects absorb its main effect, and only its
    /// products are regressors.
    pub moderator_absorbed: bool,
    /// W is categorical (`at = "levels"`): `values` are its levels, the
    /// first the reference, and the moderated equations have one
    /// indicator per other level (`a3` the second level's, `a3_2` the
    /// third's, ...).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub categorical: bool,
    /// The moderator values of the conditional effects.
    pub values: Vec<ModeratorValue>,
    /// Where the conditional indirect effect's percentile interval excludes
    /// zero, over W's observed range (resampled, a or b moderated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub johnson_neyman: Option<JohnsonNeyman>,
}

/// The interaction model (summary.json `interaction`): the treatment moves
/// from `x0` to `x1`; the mediator's expected value at x0 is
/// `m_mean + a (x0 - x_mean)` (the controls at their means). Its effects
/// are `interaction` (the X*M coefficient), `natural_direct`,
/// `natural_indirect`; with parallel mediators each has its own
/// `interaction:NAME` and `natural_indirect:NAME` (`natural_indirect` is
/// their total) and its mean in `m_means` (`m_mean` is the first's).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InteractionSummary {
    pub x0: f64,
    pub x1: f64,
    pub x_mean: f64,
    pub m_mean: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub m_means: Vec<f64>,
}

/// The serial model (summary.json `serial`): the mediators in the chain's
/// order, and the keys in `effects` of its links (`d:FROM:TO`, FROM's
/// coefficient in TO's equation), of every indirect path (`indirect:NAME`
/// for a mediator alone, `indirect:M1>M2` through a chain; their sum is
/// `indirect`) and of every difference of two paths.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SerialSummary {
    pub chain: Vec<String>,
    pub links: Vec<String>,
    pub paths: Vec<SerialPath>,
    pub contrasts: Vec<String>,
}

/// One indirect path of a chain: its key in `effects` and the mediators
/// it passes, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SerialPath {
    pub key: String,
    pub mediators: Vec<String>,
}

impl SerialSummary {
    fn of(chain: &[String]) -> SerialSummary {
        let c = Chain::new(chain.len(), true);
        let name = |p: &[usize]| path_name(p, chain);
        SerialSummary {
            chain: chain.to_vec(),
            links: c
                .links
                .iter()
                .map(|&(to, from)| EffectKey::D(chain[from].clone(), chain[to].clone()).to_string())
                .collect(),
            paths: c
                .paths
                .iter()
                .map(|p| SerialPath {
                    key: EffectKey::Indirect(Some(name(p))).to_string(),
                    mediators: p.iter().map(|&j| chain[j].clone()).collect(),
                })
                .collect(),
            contrasts: c
                .contrasts
                .iter()
                .map(|&(p, q)| {
                    EffectKey::Contrast(name(&c.paths[p]), name(&c.paths[q])).to_string()
                })
                .collect(),
        }
    }
}

/// One moderator value: how it was chosen (`16th percentile`, `mean`,
/// `value`) and the value.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModeratorValue {
    pub label: String,
    pub value: f64,
}

impl ModerationSummary {
    /// What moderator term `t` is for people: W, or a categorical W's
    /// level `W=v` (against the lowest).
    pub fn term_name(&self, t: usize) -> String {
        match self.level(t) {
            Some(v) => format!("{}={v}", self.moderator),
            None => self.moderator.clone(),
        }
    }

    /// A categorical W's level of term `t` (t + 1 among its levels; none
    /// for a continuous W).
    pub fn level(&self, t: usize) -> Option<f64> {
        self.values
            .get(t + 1)
            .filter(|_| self.categorical)
            .map(|v| v.value)
    }

    /// The moderator values (later, earlier) of the `t`-th difference of
    /// conditional indirect effects: the last and first, or a categorical
    /// W's level t + 1 and the lowest.
    pub fn difference(&self, t: usize) -> (usize, usize) {
        crate::model::moderation::difference_pairs(self.values.len(), self.categorical)
            .nth(t)
            .unwrap_or((0, 0))
    }

    fn of(md: &ModeratedColumns) -> ModerationSummary {
        ModerationSummary {
            moderator: md.spec.moderator.clone(),
            process_model: md.spec.process_model(),
            paths: md.spec.paths().iter().map(|p| p.to_string()).collect(),
            center: md.spec.center,
            shift: md.w_shift,
            moderator_absorbed: md.terms.iter().any(|t| t.w.is_none()),
            categorical: md.categorical(),
            values: md
                .values
                .iter()
                .map(|(label, value)| ModeratorValue {
                    label: label.clone(),
                    value: *value,
                })
                .collect(),
            johnson_neyman: None,
        }
    }
}

/// The difference of one effect between two groups' models (first minus
/// second).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ContrastSummary {
    pub effect: String,
    pub between: [String; 2],
    pub estimate: f64,
    /// `sqrt(se_1^2 + se_2^2)` where the groups share no cluster (so their
    /// estimates are independent), else null.
    pub se: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<crate::model::mediation::BootstrapStats>,
    /// Bootstrap intervals of the difference (the `effect` field names the
    /// effect).
    pub intervals: Vec<Interval>,
    /// The test that reshuffles the two groups' labels across their
    /// clusters (`label_test`), with B of the run's replicates; null without
    /// resampling or where the groups share clusters.
    pub permutation_p_value: Option<f64>,
}

/// A sub-model (a group's model, or the model with other mediators): its
/// sample, effects and intervals, as at the top level.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubmodelSummary {
    pub observations: usize,
    pub units: usize,
    pub clusters: usize,
    pub effects: IndexMap<String, Effect>,
    pub intervals: Vec<Interval>,
    pub suppression: Suppression,
    /// The sub-model's own first stage, when instrumented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iv: Option<IvDiagnostics>,
    /// The sub-model's mediators' first stages, when they are instrumented.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub mediator_iv: IndexMap<String, IvDiagnostics>,
    /// The sub-model's sensitivity analysis, when the run has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sensitivity: Option<SensitivitySummary>,
    /// A moderated group's moderation block: the run's moderator values
    /// (a group's conditional effects are at the same W as the run's, so
    /// that groups compare), its own centring and its own Johnson-Neyman
    /// region over its observed W.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderation: Option<ModerationSummary>,
}

impl Summary {
    /// The run's first stages: (the endogenous column, whether it is a
    /// mediator, the diagnostics), the treatment's then each mediator's.
    pub fn first_stages(&self) -> impl Iterator<Item = (&String, bool, &IvDiagnostics)> {
        let treatment = self.iv.iter().map(|iv| (&self.model.treatment, false, iv));
        let mediators = self.mediator_iv.iter().map(|(m, iv)| (m, true, iv));
        treatment.chain(mediators)
    }
}

impl SubmodelSummary {
    /// The sub-model's analysis, before any resampling.
    pub fn new(panel: &Panel, analysis: &Analysis) -> SubmodelSummary {
        SubmodelSummary {
            observations: panel.n_obs(),
            units: panel.unit.len(),
            clusters: panel.cluster.len(),
            effects: analysis.effects.iter().cloned().collect(),
            intervals: analysis.intervals.clone(),
            suppression: analysis.suppression,
            iv: analysis.iv.clone(),
            mediator_iv: analysis.mediator_iv.iter().cloned().collect(),
            sensitivity: None,
            moderation: None,
        }
    }

    /// With the moderation block of `design` (a moderated group's).
    pub fn with_moderation(mut self, design: &Design) -> SubmodelSummary {
        self.moderation = design.moderation.as_ref().map(ModerationSummary::of);
        self
    }

    /// Add the sub-model's resampling: each effect's `bootstrap` block and
    /// its intervals.
    pub fn add_resampling(&mut self, result: ResampleResult) {
        if let Some(s) = &mut self.sensitivity {
            s.add_bootstrap(&result.effects, &result.intervals);
        }
        if let Some(md) = &mut self.moderation {
            md.johnson_neyman = result.johnson_neyman;
        }
        add_bootstrap(
            &mut self.effects,
            &mut self.intervals,
            result.effects,
            result.intervals,
        );
    }
}

/// Attach resampling results to effects and intervals.
fn add_bootstrap(
    effects: &mut IndexMap<String, Effect>,
    intervals: &mut Vec<Interval>,
    stats: Vec<(String, crate::model::mediation::BootstrapStats)>,
    more: Vec<Interval>,
) {
    for (key, s) in stats {
        if let Some(e) = effects.get_mut(&key) {
            e.bootstrap = Some(s);
        }
    }
    // The sensitivity curve's and the robustness values' intervals live
    // in their own blocks.
    intervals.extend(more.into_iter().filter(|i| {
        !matches!(
            EffectKey::parse(&i.effect, &[]),
            Some(EffectKey::Sensitivity(_) | EffectKey::RobustnessValue(_))
        )
    }));
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataSummary {
    pub source: String,
    pub units: usize,
    pub periods: usize,
    pub observations: usize,
    /// Rows dropped for any reason (missing values and singletons).
    pub dropped_rows: usize,
    pub dropped_missing: usize,
    pub dropped_singletons: usize,
    pub clusters: usize,
    pub balanced: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelSummary {
    pub outcome: String,
    pub treatment: String,
    pub mediators: Vec<String>,
    pub controls: Vec<String>,
    pub fixed_effects: String,
    pub cluster: String,
    pub groups: Vec<String>,
    /// Excluded instruments of the treatment (two-stage least squares).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instruments: Vec<String>,
    /// Excluded instruments of the mediators (two-stage least squares in
    /// the outcome equation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mediator_instruments: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InferenceSummary {
    /// Covariance estimator of the coefficients.
    pub vcov: String,
    /// Degrees of freedom of the t tests (clusters - 1).
    pub df: usize,
    pub levels: Vec<f64>,
    pub mc_draws: u64,
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EquationSummary {
    pub name: String,
    pub dependent: String,
    /// Parameters counted by the small-sample factor.
    pub ssc_parameters: usize,
    pub coefficients: Vec<CoefficientSummary>,
    /// R-squared within: 1 - RSS / TSS after the fixed effects are
    /// projected out (fixest's `r2_within`; the centred R-squared without
    /// fixed effects); null for two-stage least squares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r2_within: Option<f64>,
}

/// The within R-squared of `equation` from `design`'s Gram matrix (its
/// columns already free of the unit effects): the share of the dependent
/// column's variation left after the nuisance columns (period dummies or
/// the intercept) that the regressors explain. None for two-stage least
/// squares or a singular block.
fn r2_within(design: &Design, equation: &crate::model::estimate::Equation) -> Option<f64> {
    if equation.instruments.is_some() {
        return None;
    }
    let q = design.q();
    let gram = design.total_gram();
    let y = equation.dependent;
    // y'y less what the columns `cols` explain, y'X (X'X)^{-1} X'y.
    let residual = |cols: &[usize]| -> Option<f64> {
        let yy = gram[y * q + y];
        if cols.is_empty() {
            return Some(yy);
        }
        let mut xx = crate::math::linalg::submatrix(&gram, q, cols, cols);
        crate::math::linalg::cholesky(&mut xx, cols.len()).ok()?;
        let xy: Vec<f64> = cols.iter().map(|&c| gram[c * q + y]).collect();
        let mut beta = xy.clone();
        crate::math::linalg::chol_solve(&xx, cols.len(), &mut beta);
        Some(yy - xy.iter().zip(&beta).map(|(a, b)| a * b).sum::<f64>())
    };
    let nuisance: Vec<usize> = equation
        .regressors
        .iter()
        .copied()
        .filter(|&r| design.roles[r] == Role::Nuisance)
        .collect();
    let tss = residual(&nuisance)?;
    let rss = residual(&equation.regressors)?;
    (tss > 0.0).then(|| 1.0 - rss / tss)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CoefficientSummary {
    pub name: String,
    pub estimate: f64,
    pub se: f64,
    pub p_value: f64,
}

impl Summary {
    /// Assemble the summary of an analysis.
    pub fn new(
        name: &str,
        spec: &ModelSpec,
        inference: &InferenceSpec,
        panel: &Panel,
        design: &Design,
        analysis: &Analysis,
    ) -> Summary {
        let fit = &analysis.fit;
        let equations = fit
            .equations
            .iter()
            .enumerate()
            .map(|(e, eq)| EquationSummary {
                name: eq.equation.name.clone(),
                dependent: design.names[eq.equation.dependent].clone(),
                ssc_parameters: eq.ssc_k,
                coefficients: eq
                    .equation
                    .regressors
                    .iter()
                    .filter(|&&r| design.roles[r] != Role::Nuisance)
                    .map(|&r| {
                        let (est, se) = (fit.coef(e, r), fit.se(e, r));
                        CoefficientSummary {
                            name: design.names[r].clone(),
                            estimate: est,
                            se,
                            p_value: crate::math::stats::t_p_value(est / se, fit.df()),
                        }
                    })
                    .collect(),
                r2_within: r2_within(design, &eq.equation),
            })
            .collect();
        Summary {
            version: env!("CARGO_PKG_VERSION").to_string(),
            name: name.to_string(),
            data: DataSummary {
                source: panel.source.clone(),
                units: panel.unit.len(),
                periods: panel.time.len(),
                observations: panel.n_obs(),
                dropped_rows: panel.dropped_missing + panel.dropped_singletons,
                dropped_missing: panel.dropped_missing,
                dropped_singletons: panel.dropped_singletons,
                clusters: panel.cluster.len(),
                balanced: panel.is_balanced(),
            },
            model: ModelSummary {
                outcome: spec.outcome.clone(),
                treatment: spec.treatment.clone(),
                mediators: spec.mediators.clone(),
                controls: spec.controls.clone(),
                fixed_effects: spec.fixed_effects_label(),
                cluster: spec.cluster.clone(),
                groups: spec.groups.clone(),
                instruments: spec.instruments.clone(),
                mediator_instruments: spec.mediator_instruments.clone(),
            },
            effects: analysis.effects.iter().cloned().collect(),
            intervals: analysis.intervals.clone(),
            suppression: analysis.suppression,
            joint_significance: analysis.joint.clone(),
            inference: InferenceSummary {
                vcov: "CR1".into(),
                df: fit.n_clusters - 1,
                levels: inference.levels.clone(),
                mc_draws: inference.mc_draws,
                seed: inference.seed,
            },
            equations,
            iv: analysis.iv.clone(),
            mediator_iv: analysis.mediator_iv.iter().cloned().collect(),
            moderation: design.moderation.as_ref().map(ModerationSummary::of),
            interaction: design.interaction.as_ref().map(|i| InteractionSummary {
                x0: i.x0,
                x1: i.x1,
                x_mean: i.x_mean,
                m_mean: i.m_mean[0],
                m_means: match i.m_mean.len() {
                    1 => Vec::new(),
                    _ => i.m_mean.clone(),
                },
            }),
            serial: design
                .serial
                .then(|| SerialSummary::of(&analysis.mediators)),
            resampling: None,
            groups: IndexMap::new(),
            mediator_models: IndexMap::new(),
            contrasts: Vec::new(),
            sensitivity: None,
            confounding: None,
            indirect_draws: Vec::new(),
            replicates: None,
        }
    }

    /// Add a resampling run: each effect's `bootstrap` block, one interval
    /// per effect x method x level, and the `resampling` block.
    pub fn add_resampling(&mut self, result: ResampleResult) {
        if let Some(s) = &mut self.sensitivity {
            s.add_bootstrap(&result.effects, &result.intervals);
        }
        if let Some(c) = &mut self.confounding {
            c.add_bootstrap(&result.effects, &result.intervals);
        }
        if let Some(md) = &mut self.moderation {
            md.johnson_neyman = result.johnson_neyman;
        }
        add_bootstrap(
            &mut self.effects,
            &mut self.intervals,
            result.effects,
            result.intervals,
        );
        self.resampling = Some(result.summary);
    }

    /// The effect stored under `key`.
    pub fn effect(&self, key: &str) -> Option<Effect> {
        self.effects.get(key).copied()
    }
}
