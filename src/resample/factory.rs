//! The one place CPU engines are built: the reweighting engine (with the
//! sensitivity analysis's rho, or a group's map onto the run's clusters) or
//! the permutation engine, as the plan's scheme asks. The study's choice of
//! engine, BCa's jackknife, the label test's sides and the GPU engine's
//! fallback after a device failure all build theirs here.

use crate::error::{Error, Result};
use crate::model::design::Design;
use crate::model::estimate::SystemFit;
use crate::model::panel::Panel;
use crate::resample::engine::{CpuEngine, Engine};
use crate::resample::permutation::PermutationEngine;
use crate::resample::scheme::{Scheme, WeightPlan};

/// What a CPU engine computes, apart from its weights.
#[derive(Clone)]
pub struct CpuRequest<'a> {
    pub design: &'a Design,
    pub fit: &'a SystemFit,
    /// The sample, which the permutation scheme needs (it permutes the
    /// treatment series of its units).
    pub panel: Option<&'a Panel>,
    pub batch: usize,
    pub threads: usize,
    /// Each replicate's own CR1 standard errors (studentized intervals).
    pub studentize: bool,
    /// Values of rho of the sensitivity analysis (empty: none; reweighting
    /// schemes only).
    pub rho: Vec<f64>,
    /// The robustness value of each path of the omitted-variable bounds
    /// (`crate::model::confounding`; reweighting schemes only).
    pub robustness_values: bool,
    /// A group's clusters as clusters of the run, whose weights it draws
    /// (reweighting schemes only).
    pub cluster_map: Option<Vec<usize>>,
}

/// The CPU engine of `plan` for `request`.
pub fn cpu_engine<'a>(
    request: CpuRequest<'a>,
    plan: WeightPlan,
) -> Result<Box<dyn Engine + Send + 'a>> {
    let r = request;
    if plan.scheme == Scheme::Permutation {
        let panel = permutation_panel(r.panel)?;
        return Ok(Box::new(PermutationEngine::new(
            r.design, panel, plan.seed, r.batch, r.threads,
        )?));
    }
    let mut engine = CpuEngine::new(r.design, r.fit, plan, r.batch, r.threads, r.studentize)?;
    if !r.rho.is_empty() {
        engine = engine.with_sensitivity(&r.rho)?;
    }
    if r.robustness_values {
        let orders = crate::model::confounding::replicate_orders(r.design, r.fit);
        engine = engine.with_robustness(orders)?;
    }
    if let Some(map) = r.cluster_map {
        engine = engine.with_cluster_map(map)?;
    }
    Ok(Box::new(engine))
}

/// The panel a permutation engine (CPU or GPU) permutes within: the caller
/// must hand it over.
pub fn permutation_panel(panel: Option<&Panel>) -> Result<&Panel> {
    panel.ok_or_else(|| Error::Numerical("the permutation engine needs the panel".into()))
}
