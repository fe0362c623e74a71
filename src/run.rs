//! One analysis end to end, in the order data flows: data source -> panel ->
//! design -> mediation analysis -> resampling -> summary. Writing and printing are the
//! caller's.

use std::path::PathBuf;

use crate::bootstrap::{Progress, ResampleSpec, resample};
use crate::design::Design;
use crate::error::Result;
use crate::mediation::analyse;
use crate::panel::Panel;
use crate::spec::{InferenceSpec, ModelSpec};
use crate::summary::Summary;
use crate::synthetic::{SyntheticParams, generate};
use crate::table::{Table, read_csv};

/// Where the panel comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// The study-calibrated synthetic panel.
    Synthetic(SyntheticParams),
    /// A CSV file with a header row.
    Csv(PathBuf),
}

impl DataSource {
    /// The raw table.
    pub fn load(&self) -> Result<Table> {
        match self {
            DataSource::Synthetic(p) => Ok(generate(*p)),
            DataSource::Csv(path) => read_csv(path),
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
}

/// Run the analysis and return its summary; `progress` hears how many
/// resampling replicates are done.
pub fn execute(plan: &RunPlan, progress: Progress) -> Result<Summary> {
    plan.model.validate()?;
    plan.inference.validate()?;
    let table = plan.data.load()?;
    let panel = Panel::from_table(&table, &plan.model)?;
    let design = Design::build(&panel, plan.model.fixed_effects)?;
    let analysis = analyse(&design, &plan.inference)?;
    let mut summary = Summary::new(
        &plan.name,
        &plan.model,
        &plan.inference,
        &panel,
        &design,
        &analysis,
    );
    if let Some(spec) = &plan.resampling {
        let result = resample(
            &design,
            &panel,
            &analysis,
            spec,
            plan.inference.seed,
            &plan.inference.levels,
            progress,
        )?;
        summary.add_resampling(result);
    }
    Ok(summary)
}
