//! One analysis end to end, in the order data flows: data source -> panel ->
//! design -> mediation analysis -> resampling -> summary. Writing and printing are the
//! caller's.

use crate::resample::scheme::Scheme;
use std::path::PathBuf;

use crate::data::files::read_table;
use crate::data::robustness::{Columns, Robustness};
use crate::data::synthetic::{SyntheticParams, generate};
use crate::data::table::Table;
use crate::error::{Error, Result};
use crate::model::confounding::ConfoundingSpec;
use crate::model::design::Design;
use crate::model::mediation::Effect;
use crate::model::mediation::analyse;
use crate::model::panel::Panel;
use crate::model::replicate::StatLayout;
use crate::model::spec::{InferenceSpec, ModelSpec};
use crate::resample::label_test::LabelPermutation;
use crate::resample::spec::{ResampleSpec, SharedWeights, strata_of};
use crate::study::resampling::{
    GroupSide, Progress, label_test_p_values, resample, resample_contrast,
};
use crate::study::summary::{ContrastSummary, SubmodelSummary, Summary};

/// Where the panel comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// The study-calibrated synthetic panel.
    Synthetic(SyntheticParams),
    /// A data file with a header row: CSV, Stata, Parquet or Excel, by
    /// extension (`crate::data::files`); `sheet` picks a workbook's sheet.
    File {
        path: PathBuf,
        sheet: Option<String>,
    },
    /// A table already in memory (`Table::from_columns`: a data frame's
    /// columns).
    Table(Table),
}

impl DataSource {
    /// The data file at `path` (its first sheet, if a workbook).
    pub fn file(path: impl Into<PathBuf>) -> DataSource {
        DataSource::File {
            path: path.into(),
            sheet: None,
        }
    }

    /// The raw table.
    pub fn load(&self) -> Result<Table> {
        match self {
            DataSource::Synthetic(p) => Ok(generate(*p)),
            DataSource::File { path, sheet } => read_table(path, sheet.as_deref()),
            DataSource::Table(table) => Ok(table.clone()),
        }
    }
}

/// Everything one run needs, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    pub name: String,
    pub data: DataSource,
    pub model: ModelSpec,
    pub inference: InferenceSpec,
    /// Resampling, if any.
    pub resampling: Option<ResampleSpec>,
    /// Columns whose groups of clusters each get their own model
    /// (`--group`), fitted and resampled like the pooled one.
    pub group_by: Vec<String>,
    /// Other sets of mediators, each fitted in parallel on the same sample
    /// (`--also-mediators`) and resampled with the same replicates.
    pub mediator_sets: Vec<Vec<String>>,
    /// Transformations of the table before the panel (robustness checks).
    pub robustness: Robustness,
    /// The rho grid of the sensitivity analysis for mediator-outcome
    /// confounding, if asked for.
    pub sensitivity: Option<Vec<f64>>,
    /// The omitted-variable bounds of each path of the main model, if
    /// asked for.
    pub confounding: Option<ConfoundingSpec>,
    /// Hand back every replicate of the main model in `Summary::replicates`
    /// (`output.save_replicates`), as the aggregator saw them.
    pub keep_replicates: bool,
}

impl RunPlan {
    /// The analysis of `model` on `data` with the default inference
    /// (95 % intervals, seed 1), no resampling, groups, other mediators,
    /// robustness options or sensitivity analysis: set those fields.
    pub fn new(name: &str, data: DataSource, model: ModelSpec) -> RunPlan {
        RunPlan {
            name: name.to_string(),
            data,
            model,
            inference: InferenceSpec::default(),
            resampling: None,
            group_by: Vec::new(),
            mediator_sets: Vec::new(),
            robustness: Robustness::default(),
            sensitivity: None,
            confounding: None,
            keep_replicates: false,
        }
    }

    /// The data as the model sees it: loaded, then transformed by the
    /// robustness options.
    pub fn table(&self) -> Result<Table> {
        let mut table = self.data.load()?;
        // A Stata file's group columns read as their value labels.
        let mut labelled = self.group_by.clone();
        if let Some(strata) = self.resampling.as_ref().and_then(|r| r.strata.clone()) {
            labelled.push(strata);
        }
        table.apply_value_labels(&labelled);
        let m = &self.model;
        let numeric: Vec<&str> = std::iter::once(m.outcome.as_str())
            .chain(std::iter::once(m.treatment.as_str()))
            .chain(m.mediators.iter().map(String::as_str))
            .chain(self.mediator_sets.iter().flatten().map(String::as_str))
            .chain(m.controls.iter().map(String::as_str))
            .chain(m.instruments.iter().map(String::as_str))
            .chain(m.mediator_instruments.iter().map(String::as_str))
            .collect();
        self.robustness.apply(
            &table,
            &Columns {
                unit: &m.unit,
                time: &m.time,
                treatment: &m.treatment,
                numeric,
            },
        )
    }
}

/// Run the analysis and return its summary; `progress` hears how many
/// resampling replicates are done.
pub fn execute(plan: &RunPlan, progress: Progress) -> Result<Summary> {
    execute_timed(plan, progress).map(|(summary, _)| summary)
}

/// Replicates of the main model whose indirect effect is plotted (the
/// first ones, kept as they stream past; all of them up to this B).
pub const PLOTTED_DRAWS: u64 = 20_000;

/// Wall-clock seconds of each stage of a run, in order.
pub type Timings = Vec<(String, f64)>;

/// [`execute`], with the seconds each stage took: data (read and
/// transform), design (panel and design matrices), fit (the three
/// equations and analytic inference), then whichever of sensitivity,
/// confounding, resampling, mediator_models and groups the run has.
pub fn execute_timed(plan: &RunPlan, progress: Progress) -> Result<(Summary, Timings)> {
    let mut timings = Timings::new();
    let mut started = std::time::Instant::now();
    let mut lap = |stage: &str, timings: &mut Timings| {
        timings.push((stage.to_string(), started.elapsed().as_secs_f64()));
        started = std::time::Instant::now();
    };
    plan.model.validate()?;
    plan.inference.validate()?;
    let table = plan.table()?;
    lap("data", &mut timings);
    let panel = Panel::from_table(&table, &plan.model)?;
    let design = Design::build(&panel, plan.model.fixed_effects)?;
    lap("design", &mut timings);
    let analysis = analyse(&design, &plan.inference)?;
    lap("fit", &mut timings);
    let mut summary = Summary::new(
        &plan.name,
        &plan.model,
        &plan.inference,
        &panel,
        &design,
        &analysis,
    );
    warn_weak_instruments(&summary);
    // The file by its absolute path, so that summary.json does not depend
    // on the folder medsim ran in (a manifest's replay runs elsewhere).
    if let DataSource::File { path, .. } = &plan.data
        && let Ok(absolute) = std::path::absolute(path)
    {
        summary.data.source = absolute.display().to_string();
    }
    if let Some(rho) = &plan.sensitivity {
        summary.sensitivity = Some(crate::model::sensitivity::analyse(
            &design, &panel, &analysis, rho,
        )?);
        lap("sensitivity", &mut timings);
    }
    if let Some(spec) = &plan.confounding {
        summary.confounding = Some(crate::model::confounding::analyse(
            &design,
            &analysis,
            spec,
            &plan.inference.levels,
        )?);
        lap("confounding", &mut timings);
    }
    if let Some(spec) = &plan.resampling {
        let keep = if plan.keep_replicates {
            u64::MAX
        } else {
            PLOTTED_DRAWS
        };
        // The bounds' robustness values have replicates where the
        // replicates have Gram matrices.
        let robustness_values = plan.confounding.as_ref().is_some_and(|c| c.replicates);
        if robustness_values
            && !matches!(
                spec.scheme,
                Scheme::Pairs | Scheme::Bayes | Scheme::Poisson | Scheme::Jackknife
            )
        {
            return Err(Error::InvalidOption {
                option: "sensitivity.rv_replicates".into(),
                message: "the robustness values' replicates need a reweighting scheme (pairs, \
                          bayes, poisson, jackknife): wild and permutation replicates have no \
                          Gram matrix"
                    .into(),
            });
        }
        let spec = &ResampleSpec {
            robustness_values,
            ..spec.clone()
        };
        let mut result =
            resample_model(plan, spec, &design, &panel, &analysis, None, progress, keep)?;
        let kept = std::mem::take(&mut result.kept);
        summary.add_resampling(result);
        summary.indirect_draws = kept.column("indirect").map_or(Vec::new(), |column| {
            column
                .take(PLOTTED_DRAWS as usize)
                .filter(|v| v.is_finite())
                .collect()
        });
        summary.replicates = plan.keep_replicates.then_some(kept);
        lap("resampling", &mut timings);
    }
    for mediators in &plan.mediator_sets {
        let (key, model) = mediator_model(plan, &table, &panel, mediators, progress)?;
        summary.mediator_models.insert(key, model);
    }
    if !plan.mediator_sets.is_empty() {
        lap("mediator_models", &mut timings);
    }
    for column in &plan.group_by {
        let (groups, contrasts) = group_models(plan, &table, &panel, &design, column, progress)?;
        summary.groups.extend(groups);
        summary.contrasts.extend(contrasts);
    }
    if !plan.group_by.is_empty() {
        lap("groups", &mut timings);
    }
    Ok((summary, timings))
}

/// A warning for each first stage whose CR1 F is below 10 (Staiger and
/// Stock's rule of thumb): its two-stage estimates are biased towards
/// least squares, and tests and intervals that assume a strong first stage
/// are unreliable.
fn warn_weak_instruments(summary: &Summary) {
    for (endogenous, mediator, iv) in summary.first_stages() {
        let key = match mediator {
            true => "model.mediator_instrument",
            false => "model.instrument",
        };
        if iv.first_stage_f < 10.0 {
            crate::notices::notify(format!(
                "warning: weak instruments: the first stage of '{endogenous}' on {} ({key}) has \
                 F = {:.2} (CR1 Wald), below 10; its two-stage estimates are biased towards \
                 least squares, and their tests and intervals are unreliable",
                iv.instruments.join(", "),
                iv.first_stage_f
            ));
        }
    }
}

/// The model with `mediators` in place of the run's, on the same rows (less
/// any with a missing mediator), resampled with the run's replicates: the
/// same weights where the clusters are the same, else through the cluster
/// map as a group's.
fn mediator_model(
    plan: &RunPlan,
    table: &Table,
    pooled: &Panel,
    mediators: &[String],
    progress: Progress,
) -> Result<(String, SubmodelSummary)> {
    let key = mediators.join("+");
    let context = |e: Error| Error::InvalidOption {
        option: "model.also_mediators".into(),
        message: format!("the model with mediators {}: {e}", mediators.join(", ")),
    };
    // Another set of parallel mediators, even beside a chain.
    let model = ModelSpec {
        mediators: mediators.to_vec(),
        serial: false,
        ..plan.model.clone()
    };
    model.validate().map_err(context)?;
    let panel = Panel::from_table(table, &model).map_err(context)?;
    let design = Design::build(&panel, model.fixed_effects).map_err(context)?;
    let analysis = analyse(&design, &plan.inference).map_err(context)?;
    let mut summary = SubmodelSummary::new(&panel, &analysis);
    if let Some(spec) = &plan.resampling {
        // The sensitivity analysis is the main model's (one mediator).
        let spec = &ResampleSpec {
            sensitivity: None,
            johnson_neyman: false,
            ..spec.clone()
        };
        let shared = if panel.cluster.levels == pooled.cluster.levels {
            None
        } else {
            let map = cluster_map(&panel, pooled).map_err(context)?;
            Some(SharedWeights::new(pooled, spec, map)?)
        };
        let result = resample_model(
            plan,
            spec,
            &design,
            &panel,
            &analysis,
            shared.as_ref(),
            progress,
            0,
        )
        .map_err(context)?;
        summary.add_resampling(result);
    }
    Ok((key, summary))
}

/// Where each cluster of `panel` sits among the clusters of `pooled`.
fn cluster_map(panel: &Panel, pooled: &Panel) -> Result<Vec<usize>> {
    panel
        .cluster
        .levels
        .iter()
        .map(|name| pooled.cluster.levels.iter().position(|p| p == name))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| {
            Error::Numerical("a cluster of the sub-model is missing from the pooled sample".into())
        })
}

/// Resample one model (the run's, a group's or another mediator set's)
/// with the run's seed and levels.
fn resample_model(
    plan: &RunPlan,
    spec: &ResampleSpec,
    design: &Design,
    panel: &Panel,
    analysis: &crate::model::mediation::Analysis,
    shared: Option<&SharedWeights>,
    progress: Progress,
    keep: u64,
) -> Result<crate::study::resampling::ResampleResult> {
    resample(
        design,
        panel,
        analysis,
        spec,
        plan.inference.seed,
        &plan.inference.levels,
        progress,
        shared,
        keep,
    )
}

/// One group's fitted model, kept for its contrasts.
struct Fitted {
    label: String,
    design: Design,
    analysis: crate::model::mediation::Analysis,
    map: Vec<usize>,
}

/// The model of each group of `column` (in the order of its levels): the
/// rows of the group, the same model, fitted and (when the run resamples)
/// resampled with the pooled run's weights for its clusters.
#[allow(clippy::type_complexity)]
fn group_models(
    plan: &RunPlan,
    table: &Table,
    pooled: &Panel,
    pooled_design: &Design,
    column: &str,
    progress: Progress,
) -> Result<(Vec<(String, SubmodelSummary)>, Vec<ContrastSummary>)> {
    let factor = pooled
        .groups
        .iter()
        .find(|f| f.name == column)
        .ok_or_else(|| Error::InvalidOption {
            option: "model.groups".into(),
            message: format!("'{column}' is not among the loaded columns"),
        })?;
    let at = table.column(column).ok_or_else(|| Error::InvalidOption {
        option: "model.groups".into(),
        message: format!("no column named '{column}'"),
    })?;
    let mut out = Vec::new();
    let mut fitted = Vec::new();
    for level in &factor.levels {
        let label = format!("{column}={level}");
        let context = |e: Error| Error::InvalidOption {
            option: "model.groups".into(),
            message: format!("the model of group {label}: {e}"),
        };
        let rows = table.filter_rows(|r| r[at].trim() == level.as_str());
        let panel = Panel::from_table(&rows, &plan.model).map_err(context)?;
        let mut design = Design::build(&panel, plan.model.fixed_effects).map_err(context)?;
        // A moderated group's conditional effects at the run's moderator
        // values, so that groups (and their contrasts) compare the same W.
        if let (Some(md), Some(run)) = (&mut design.moderation, &pooled_design.moderation) {
            // A categorical W's terms are its levels: a group must have
            // the run's, or its a3_2 would be another level's.
            if md.categorical() && md.values != run.values {
                let levels = |v: &[(String, f64)]| {
                    v.iter()
                        .map(|(_, x)| x.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(context(Error::InvalidOption {
                    option: "model.at".into(),
                    message: format!(
                        "the categorical moderator '{}' takes the levels {} in this group, not \
                         the run's {}; a group needs every level",
                        md.spec.moderator,
                        levels(&md.values),
                        levels(&run.values)
                    ),
                }));
            }
            md.values = run.values.clone();
        }
        let analysis = analyse(&design, &plan.inference).map_err(context)?;
        let mut group = SubmodelSummary::new(&panel, &analysis).with_moderation(&design);
        if let Some(rho) = &plan.sensitivity {
            group.sensitivity = Some(
                crate::model::sensitivity::analyse(&design, &panel, &analysis, rho)
                    .map_err(context)?,
            );
        }
        let map = cluster_map(&panel, pooled).map_err(context)?;
        if let Some(spec) = &plan.resampling {
            let shared = SharedWeights::new(pooled, spec, map.clone())?;
            let result = resample_model(
                plan,
                spec,
                &design,
                &panel,
                &analysis,
                Some(&shared),
                progress,
                0,
            )
            .map_err(context)?;
            group.add_resampling(result);
        }
        out.push((label.clone(), group));
        fitted.push(Fitted {
            label,
            design,
            analysis,
            map,
        });
    }
    let mut contrasts = Vec::new();
    for (i, first) in fitted.iter().enumerate() {
        for second in &fitted[i + 1..] {
            contrasts.extend(contrast(
                plan,
                pooled,
                pooled_design,
                first,
                second,
                progress,
            )?);
        }
    }
    Ok((out, contrasts))
}

/// Each effect of the first group less the second's; where the groups
/// share no cluster, the SE of the difference of independent estimates.
fn differences(first: &Fitted, second: &Fitted, disjoint: bool) -> Vec<(String, Effect)> {
    first
        .analysis
        .effects
        .iter()
        .filter_map(|(key, e1)| {
            let e2 = second.analysis.effect(key)?;
            let se = match (e1.se, e2.se) {
                (Some(a), Some(b)) if disjoint => Some((a * a + b * b).sqrt()),
                _ => None,
            };
            Some((
                key.clone(),
                Effect {
                    estimate: e1.estimate - e2.estimate,
                    se,
                    p_value: None,
                    bootstrap: None,
                },
            ))
        })
        .collect()
}

/// The differences of every effect between two groups' models, with their
/// bootstrap when the run resamples.
fn contrast(
    plan: &RunPlan,
    pooled: &Panel,
    pooled_design: &Design,
    first: &Fitted,
    second: &Fitted,
    progress: Progress,
) -> Result<Vec<ContrastSummary>> {
    let disjoint = first.map.iter().all(|c| !second.map.contains(c));
    let effects = differences(first, second, disjoint);
    let (stats, intervals) = match &plan.resampling {
        Some(spec) => resample_contrast(
            [
                GroupSide {
                    design: &first.design,
                    fit: &first.analysis.fit,
                    map: first.map.clone(),
                },
                GroupSide {
                    design: &second.design,
                    fit: &second.analysis.fit,
                    map: second.map.clone(),
                },
            ],
            disjoint,
            pooled.cluster.len(),
            strata_of(pooled, spec)?.as_deref(),
            &effects,
            &first.analysis.mediators,
            spec,
            plan.inference.seed,
            &plan.inference.levels,
            progress,
        )?,
        None => (vec![], vec![]),
    };
    // The label-permutation test, where the groups share no cluster.
    let p_values: Vec<Option<f64>> = match &plan.resampling {
        Some(spec) if disjoint => {
            let test =
                LabelPermutation::new(pooled_design, &first.map, &second.map, plan.inference.seed)?;
            label_test_p_values(&test, spec)?
        }
        _ => vec![],
    };
    let layout = StatLayout::of(pooled_design);
    let permutation_p = |key: &str| -> Option<f64> {
        let stat = layout.index_of(key, &first.analysis.mediators)?;
        p_values.get(stat).copied().flatten()
    };
    Ok(effects
        .into_iter()
        .map(|(key, e)| ContrastSummary {
            between: [first.label.clone(), second.label.clone()],
            estimate: e.estimate,
            se: e.se,
            bootstrap: stats.iter().find(|(k, _)| *k == key).map(|(_, b)| *b),
            intervals: intervals
                .iter()
                .filter(|i| i.effect == key)
                .cloned()
                .collect(),
            permutation_p_value: permutation_p(&key),
            effect: key,
        })
        .collect())
}
