//! `medsim threshold`: the panel threshold model's whole analysis (Hansen
//! 1999): the sequence of one to three thresholds with their F tests
//! bootstrapped, each threshold's likelihood-ratio confidence set, and the
//! regime coefficients, as threshold.json (its schema: [`ThresholdSummary`];
//! `crate::output` prints and writes it).

use serde::Serialize;

use crate::error::{Error, Result};
use crate::model::effect::EffectKey;
use crate::model::mediation::headline;
use crate::model::spec::{Moderation, ModeratorValues};
use crate::model::threshold::{Grid, Prepared, ThresholdSpec, estimate, lr_critical};
use crate::resample::aggregate::Progress;
use crate::resample::checkpoint::{StoreRef, Stored};
use crate::resample::engine::Backend;
use crate::resample::threshold::{FTest, Null, ThresholdEngine, ThresholdScheme, f_test};
use crate::study::backend::{ThresholdBackend, threshold_engine};
use crate::study::run::{DataSource, RunPlan, execute};
use crate::study::summary::Summary;

/// Everything `medsim threshold` needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdPlan {
    pub name: String,
    pub data: DataSource,
    pub spec: ThresholdSpec,
    pub scheme: ThresholdScheme,
    /// Bootstrap replicates of each F test (0: none).
    pub replicates: usize,
    pub seed: u64,
    pub threads: usize,
    /// Where the replicates run.
    pub engine: ThresholdBackend,
    /// Regime-dependent mediation (`[threshold] mediation = true`): the
    /// run of `[model]` (one mediator), whose moderator the analysis sets
    /// to the regime of the model with `mediation_thresholds` thresholds.
    pub mediation: Option<RunPlan>,
    /// The thresholds of the mediation's regimes: 1 to the most estimated
    /// (`[threshold] mediation_thresholds`, default 1).
    pub mediation_thresholds: usize,
}

/// threshold.json.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdSummary {
    pub version: String,
    pub name: String,
    pub data: DataCounts,
    pub model: ModelInfo,
    /// One per number of thresholds k = 1..=max: the F test of the k-th
    /// threshold against k - 1, and the model with k thresholds.
    pub steps: Vec<StepSummary>,
    /// Regime-dependent mediation, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mediation: Option<RegimeMediation>,
}

/// The mediation model by regime: one pooled fixed-effects model in which
/// the regime of the model with k thresholds (0 where q <= the lowest
/// threshold, up to k above the highest) moderates a, b and c' as a
/// categorical moderator (PROCESS model 59, one indicator per regime above
/// the lowest), so each path in the lowest regime is its coefficient and
/// in regime r that plus its interaction with r's indicator, and the
/// interactions are the contrasts with the lowest regime. Its whole run is
/// `mediation/summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegimeMediation {
    /// The thresholds, increasing (k of them: k + 1 regimes).
    pub thresholds: Vec<f64>,
    /// The regime's column, added to the data: 0 to k.
    pub moderator: String,
    pub treatment: String,
    pub mediator: String,
    pub outcome: String,
    /// The intervals' method and level (the run's first resampling
    /// method, else the delta method's).
    pub interval_method: String,
    pub level: f64,
    /// From the lowest regime to the highest.
    pub regimes: Vec<RegimeEffects>,
    /// Each regime above the lowest less the lowest: a3, b3, c3' and the
    /// difference of the indirect effects, regime by regime.
    pub contrasts: Vec<RegimeContrast>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegimeEffects {
    /// Where q puts an observation in it (`agglom <= 2.5`).
    pub regime: String,
    pub a: f64,
    pub b: f64,
    pub c_prime: f64,
    /// a*b in the regime, with its interval.
    pub indirect: Estimate,
    /// c' in the regime, with its interval.
    pub direct: Estimate,
    /// |a*b / c'|.
    pub suppression_share: f64,
    /// a*b and c' of opposite signs.
    pub suppressing: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegimeContrast {
    /// "a", "b", "c_prime" or "indirect".
    pub path: String,
    /// The regime compared with the lowest (`RegimeEffects::regime`).
    pub regime: String,
    /// The lowest regime.
    pub reference: String,
    pub estimate: Estimate,
}

/// A point estimate with its interval and p-value where the run gives
/// them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub estimate: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub p_value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataCounts {
    pub source: String,
    pub observations: usize,
    pub units: usize,
    pub periods: usize,
    pub balanced: bool,
    pub dropped_missing: usize,
    pub dropped_singletons: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub outcome: String,
    pub regressors: Vec<String>,
    pub threshold_variable: String,
    pub controls: Vec<String>,
    pub fixed_effects: String,
    pub cluster: String,
    /// Candidate thresholds searched (distinct order statistics of q).
    pub candidates: usize,
    pub trim: f64,
    pub min_regime: usize,
    pub level: f64,
    /// -2 ln(1 - sqrt(level)): where the LR curve's confidence set ends.
    pub lr_critical: f64,
    pub bootstrap: String,
    pub replicates: usize,
    pub seed: u64,
    /// Where the replicates ran (the first test's engine; every test's
    /// is chosen alike); None without replicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepSummary {
    /// Thresholds in the model.
    pub k: usize,
    /// F = (S_{k-1} - S_k) / (S_k / (observations - units)).
    pub f_stat: f64,
    /// Bootstrap p-value (share of replicates' F at least F); None without
    /// replicates.
    pub p_value: Option<f64>,
    /// The replicates' 90, 95 and 99 % quantiles.
    pub critical_values: Option<[f64; 3]>,
    pub ssr: f64,
    pub ssr_before: f64,
    /// The thresholds, ascending, with their confidence sets.
    pub thresholds: Vec<ThresholdEstimate>,
    pub regime_sizes: Vec<usize>,
    pub coefficients: Vec<CoefficientSummary>,
    /// The LR curves of this step's searches (the second step's: the
    /// second threshold given the first, then the first refined).
    pub lr_curves: Vec<LrCurve>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdEstimate {
    pub estimate: f64,
    /// The lowest and highest candidates with LR <= lr_critical.
    pub lower: f64,
    pub upper: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoefficientSummary {
    pub name: String,
    pub estimate: f64,
    pub se: f64,
    pub t: f64,
    pub p_value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LrCurve {
    /// The thresholds held fixed while this one was searched.
    pub given: Vec<f64>,
    pub estimate: f64,
    /// (candidate, LR) over the allowed candidates.
    pub points: Vec<(f64, f64)>,
}

/// Run the analysis, and with regime-dependent mediation its run's
/// summary; `progress` hears the bootstrap replicates done over all the
/// tests (then the mediation run's), and its error stops the run. With
/// `store`, every test's replicates go through it (one stream per test,
/// then the mediation run's): a checkpoint resumes them, a shard computes
/// its part of each (and the summary it gives is not the run's), a merge
/// reads them.
pub fn run(
    plan: &ThresholdPlan,
    store: Option<&StoreRef>,
    progress: Progress,
) -> Result<(ThresholdSummary, Option<Summary>)> {
    let table = plan.data.load()?;
    let prepared = Prepared::new(&table, &plan.spec)?;
    let grid = Grid::new(&prepared)?;
    let fit = estimate(&prepared, &grid)?;
    let mut backend = None;
    let tests: Vec<Option<FTest>> = if plan.replicates > 0 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(plan.threads.max(1))
            .build()
            .map_err(|e| Error::Numerical(e.to_string()))?;
        let total = (plan.replicates * fit.steps.len()) as u64;
        (1..=fit.steps.len())
            .map(|k| {
                let null = Null::new(&prepared, &grid, &fit, k, plan.scheme, plan.seed)?;
                let engine = threshold_engine(&plan.engine, &null, &pool)?;
                backend.get_or_insert_with(|| engine.backend());
                let done = (plan.replicates * (k - 1)) as u64;
                let f = fit.steps[k - 1].f_stat;
                let Some(store) = store else {
                    return f_test(
                        engine.as_ref(),
                        k,
                        f,
                        plan.replicates,
                        done,
                        total,
                        progress,
                    )
                    .map(Some);
                };
                let compute = |first: u64, out: &mut [f64]| engine.compute(first, out);
                let b = plan.replicates as u64;
                let stored = store.0.items(1, b, engine.chunk(), &compute)?;
                if let Some(shard) = store.0.shard() {
                    let (from, to) = shard.range(b);
                    stored.fill(from, to)?;
                    return Ok(None);
                }
                let through = ThroughStore {
                    stored: &stored,
                    engine: engine.as_ref(),
                };
                f_test(&through, k, f, plan.replicates, done, total, progress).map(Some)
            })
            .collect::<Result<_>>()?
    } else {
        vec![None; fit.steps.len()]
    };
    let s = &prepared.sample;
    let spec = &plan.spec;
    let steps = fit
        .steps
        .iter()
        .zip(tests)
        .enumerate()
        .map(|(i, (step, test))| {
            // Each threshold's confidence set from the search that found it
            // last (the refined first threshold's in the second step).
            let thresholds = step
                .thresholds
                .iter()
                .map(|&t| {
                    let search = step
                        .searches
                        .iter()
                        .rev()
                        .find(|x| x.estimate == t)
                        .or_else(|| {
                            fit.steps[..i]
                                .iter()
                                .rev()
                                .flat_map(|s| s.searches.iter().rev())
                                .find(|x| x.estimate == t)
                        });
                    let (lower, upper) = search.map_or((t, t), |x| x.interval);
                    ThresholdEstimate {
                        estimate: t,
                        lower,
                        upper,
                    }
                })
                .collect();
            StepSummary {
                k: i + 1,
                f_stat: step.f_stat,
                p_value: test.as_ref().map(|t| t.p_value),
                critical_values: test.as_ref().map(|t| t.critical),
                ssr: step.ssr,
                ssr_before: step.ssr_before,
                thresholds,
                regime_sizes: step.regimes.regime_sizes.clone(),
                coefficients: step
                    .regimes
                    .coefficients
                    .iter()
                    .map(|c| CoefficientSummary {
                        name: c.name.clone(),
                        estimate: c.estimate,
                        se: c.se,
                        t: c.t,
                        p_value: c.p_value,
                    })
                    .collect(),
                lr_curves: step
                    .searches
                    .iter()
                    .map(|x| LrCurve {
                        given: x.fixed.clone(),
                        estimate: x.estimate,
                        points: x.lr.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    // The regime mediation's block for threshold.json, and its run.
    let (mediation, mediation_run) = match &plan.mediation {
        Some(run) => {
            let k = plan.mediation_thresholds;
            let step = fit.steps.get(k - 1).ok_or_else(|| Error::InvalidOption {
                option: "threshold.mediation_thresholds".into(),
                message: format!(
                    "the sequence estimated {} threshold(s), not {k}",
                    fit.steps.len()
                ),
            })?;
            let mut run = run.clone();
            if let (Some(r), Some(store)) = (run.resampling.as_mut(), store) {
                r.store = Some(store.clone());
            }
            let (block, summary) =
                regime_mediation(&run, &table, &spec.threshold, &step.thresholds, progress)?;
            (Some(block), Some(summary))
        }
        None => (None, None),
    };
    let summary = ThresholdSummary {
        version: env!("CARGO_PKG_VERSION").into(),
        name: plan.name.clone(),
        data: DataCounts {
            source: s.source.clone(),
            observations: fit.n_obs,
            units: fit.n_units,
            periods: fit.n_periods,
            balanced: fit.balanced,
            dropped_missing: s.dropped_missing,
            dropped_singletons: s.dropped_singletons,
        },
        model: ModelInfo {
            outcome: spec.outcome.clone(),
            regressors: spec.regressors.clone(),
            threshold_variable: spec.threshold.clone(),
            controls: spec.controls.clone(),
            fixed_effects: spec.fixed_effects.as_str().into(),
            cluster: spec.cluster.clone(),
            candidates: fit.candidates.len(),
            trim: spec.trim,
            min_regime: fit.min_regime,
            level: spec.level,
            lr_critical: lr_critical(spec.level),
            bootstrap: scheme_name(plan.scheme),
            replicates: plan.replicates,
            seed: plan.seed,
            backend,
        },
        steps,
        mediation,
    };
    Ok((summary, mediation_run))
}

/// The scheme as threshold.json and the report name it.
fn scheme_name(scheme: ThresholdScheme) -> String {
    match scheme {
        ThresholdScheme::Residual => "residual (units' residual vectors, Hansen 1999)".into(),
        ThresholdScheme::Wild(w) => format!("wild ({}, unit multipliers)", w.as_str()),
    }
}

/// A test's replicates through the store: read back where stored, else
/// computed by its engine and recorded.
struct ThroughStore<'s, 'a> {
    stored: &'s Stored<'a>,
    /// The engine that computes what is not stored.
    engine: &'s dyn ThresholdEngine,
}

impl ThresholdEngine for ThroughStore<'_, '_> {
    fn backend(&self) -> Backend {
        self.engine.backend()
    }

    fn chunk(&self) -> usize {
        self.engine.chunk()
    }

    fn compute(&self, start: u64, out: &mut [f64]) -> Result<()> {
        self.stored.rows(start, out).map(|_| ())
    }
}

/// The name of the regime column added for `q`.
pub fn regime_column(q: &str) -> String {
    format!("{q}_regime")
}

/// Each regime's label from the increasing `thresholds` on `q`: `q <=
/// g1`, `g1 < q <= g2`, ..., `q > gk`.
fn regime_labels(q: &str, thresholds: &[f64]) -> Vec<String> {
    let t = |v: f64| (v * 1e4).round() / 1e4;
    (0..=thresholds.len())
        .map(|r| match (r.checked_sub(1), thresholds.get(r)) {
            (None, Some(&hi)) => format!("{q} <= {}", t(hi)),
            (Some(lo), Some(&hi)) => format!("{} < {q} <= {}", t(thresholds[lo]), t(hi)),
            (Some(lo), None) => format!("{q} > {}", t(thresholds[lo])),
            (None, None) => q.to_string(),
        })
        .collect()
}

/// Run `run` with the regime of `thresholds` on `q` (how many thresholds
/// q exceeds) added to `table` as the categorical moderator of a, b and
/// c'; the block threshold.json shows and the run's summary.
pub fn regime_mediation(
    run: &RunPlan,
    table: &crate::data::table::Table,
    q: &str,
    thresholds: &[f64],
    progress: Progress,
) -> Result<(RegimeMediation, Summary)> {
    let mut thresholds = thresholds.to_vec();
    thresholds.sort_by(f64::total_cmp);
    let name = regime_column(q);
    if table.column(&name).is_some() {
        return Err(Error::InvalidOption {
            option: "threshold.mediation".into(),
            message: format!(
                "the data already have a column '{name}', the name of the regime column that \
                 regime-dependent mediation adds; rename it"
            ),
        });
    }
    let at = table.column(q).ok_or_else(|| Error::InvalidOption {
        option: "threshold.variable".into(),
        message: format!("the data have no column '{q}'"),
    })?;
    let mut with = table.clone();
    with.headers.push(name.clone());
    for row in &mut with.rows {
        // q read as the sample reads it; a missing q (the threshold's
        // sample refused any other unreadable one) leaves the regime
        // missing, and the run drops the row as any incomplete one.
        let cell = match crate::model::panel::parse_number(&row[at]) {
            Ok(v) => thresholds.iter().filter(|&&g| v > g).count().to_string(),
            Err(_) => String::new(),
        };
        row.push(cell);
    }
    let mut plan = run.clone();
    plan.data = DataSource::Table(with);
    plan.model.moderation = Some(Moderation {
        moderator: name.clone(),
        a: true,
        b: true,
        direct: true,
        center: false,
        at: ModeratorValues::Levels,
    });
    let summary = execute(&plan, progress)?;
    let levels = summary.moderation.as_ref().map_or(0, |m| m.values.len());
    if levels != thresholds.len() + 1 {
        return Err(Error::Numerical(format!(
            "the regime mediation's estimation sample has {levels} of the {} regimes",
            thresholds.len() + 1
        )));
    }
    let effect = |key: &EffectKey| -> Result<Estimate> {
        let key = key.to_string();
        let e = summary.effects.get(&key).ok_or_else(|| {
            Error::Numerical(format!("the regime mediation run has no effect '{key}'"))
        })?;
        let ci = headline(&summary.intervals, &key);
        Ok(Estimate {
            estimate: e.estimate,
            lower: ci.map(|i| i.lower),
            upper: ci.map(|i| i.upper),
            p_value: e
                .bootstrap
                .as_ref()
                .map_or(e.p_value, |b| b.p_value.or(e.p_value)),
        })
    };
    let method = headline(&summary.intervals, "conditional_indirect:0");
    let (a, b, c) = (
        effect(&EffectKey::A(None))?,
        effect(&EffectKey::B(None))?,
        effect(&EffectKey::CPrime)?,
    );
    let labels = regime_labels(q, &thresholds);
    // Regime r's interactions (zero in the lowest).
    let interaction = |r: usize, key: &dyn Fn(usize) -> EffectKey| -> Result<f64> {
        match r.checked_sub(1) {
            Some(t) => Ok(effect(&key(t))?.estimate),
            None => Ok(0.0),
        }
    };
    let regimes = labels
        .iter()
        .enumerate()
        .map(|(r, label)| {
            let indirect = effect(&EffectKey::ConditionalIndirect(r, None))?;
            let direct = effect(&EffectKey::ConditionalDirect(r))?;
            let share = (indirect.estimate / direct.estimate).abs();
            Ok(RegimeEffects {
                regime: label.clone(),
                a: a.estimate + interaction(r, &|t| EffectKey::A3(t, None))?,
                b: b.estimate + interaction(r, &|t| EffectKey::B3(t, None))?,
                c_prime: c.estimate + interaction(r, &EffectKey::C3Prime)?,
                suppressing: indirect.estimate * direct.estimate < 0.0,
                suppression_share: share,
                indirect,
                direct,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut contrasts = Vec::new();
    for t in 0..thresholds.len() {
        for (path, key) in [
            ("a", EffectKey::A3(t, None)),
            ("b", EffectKey::B3(t, None)),
            ("c_prime", EffectKey::C3Prime(t)),
            ("indirect", EffectKey::IndirectDifference(t, None)),
        ] {
            contrasts.push(RegimeContrast {
                path: path.into(),
                regime: labels[t + 1].clone(),
                reference: labels[0].clone(),
                estimate: effect(&key)?,
            });
        }
    }
    Ok((
        RegimeMediation {
            thresholds,
            moderator: name,
            treatment: plan.model.treatment.clone(),
            mediator: plan.model.mediators[0].clone(),
            outcome: plan.model.outcome.clone(),
            interval_method: method.map_or("none".into(), |i| i.method.clone()),
            level: method.map_or(f64::NAN, |i| i.level),
            regimes,
            contrasts,
        },
        summary,
    ))
}
