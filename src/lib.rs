//! medsim: massive resampling of panel-data mediation models.
//!
//! The default analysis (the study-calibrated synthetic panel, the model of
//! its baseline, a 1,000-replicate cluster bootstrap on the CPU):
//!
//! ```
//! use medsim::{BackendChoice, DataSource, ResampleSpec, RunPlan, SyntheticParams, default_spec};
//!
//! let data = DataSource::Synthetic(SyntheticParams::default());
//! let mut plan = RunPlan::new("example", data, default_spec());
//! let resampling = ResampleSpec { replicates: 1_000, backend: BackendChoice::Cpu, ..Default::default() };
//! plan.resampling = Some(resampling);
//! let summary = medsim::run(&plan, &|_done, _total| Ok(()))?;
//! let ab = &summary.effects["indirect"];
//! let bca = summary.intervals.iter().find(|i| i.effect == "indirect" && i.method == "bca").unwrap();
//! println!("a*b = {:.4} (SE {:.4}), 95% BCa [{:.4}, {:.4}]", ab.estimate, ab.bootstrap.unwrap().sd, bca.lower, bca.upper);
//! # assert!(bca.lower < ab.estimate && ab.estimate < bca.upper);
//! # Ok::<(), medsim::Error>(())
//! ```
//!
//! Effects are named by [`EffectKey`] (`summary.effects["indirect"]`); with
//! `RunPlan::keep_replicates` the summary also holds every replicate
//! ([`Replicates`]).
//!
//! Data can also come from a file (`DataSource::file`: CSV, Stata, Parquet
//! or Excel, by extension) or from columns
//! in memory (`Table::from_columns`, then `DataSource::Table`); a config
//! file describes a run, a sweep or a simulation study (`read_config`,
//! `Config::plan`, `sweep_points`, `Config::study` and `simulate`).
//!
//! The crate is layered; each folder imports only from the ones listed
//! before it (`tests/layers.rs` checks this), and `docs/architecture.md`
//! draws the map:
//!
//! 1. `math`: linear algebra, distributions, the Philox random numbers;
//! 2. `data`: CSV tables, the synthetic panel, robustness transformations;
//! 3. `model`: the model's description, sample, sufficient statistics,
//!    estimates and mediation analysis;
//! 4. `resample`: schemes, the engine trait, the CPU engines, stored
//!    replicates, aggregation and intervals;
//! 5. `gpu`: the same replicates from WGSL compute shaders;
//! 6. `study`: configs, the resampling driver, runs, sweeps, simulation
//!    studies and benchmarks;
//! 7. `output`: reports, tables, plots, manifests and results folders;
//! 8. `cli`: the command line's arguments, flags and commands (`main.rs`
//!    only parses, dispatches and maps errors to exit codes).
//!
//! `error`, `resources` (memory and disk checks), `provenance`
//! (build revision, digests) and `notices` (warnings, through the
//! caller's reporter) sit below every layer.

/// `Display` and `FromStr` of a named option (scheme, method, ...) from its
/// one `as_str` and one `parse`, so each spelling lives in one place.
macro_rules! spelled {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $t {
            type Err = crate::error::Error;
            fn from_str(s: &str) -> crate::error::Result<Self> {
                Self::parse(s)
            }
        }
    )*};
}

mod cli;
mod data;
mod error;
#[cfg(feature = "gpu")]
mod gpu;
#[doc(hidden)]
pub mod internals;
mod math;
mod model;
mod notices;
mod output;
mod provenance;
mod resample;
mod resources;
mod study;

pub use error::{Error, Result};
pub use notices::{set_reporter, take as take_notices};

// The chosen API: what the command line and the Python package call.
pub use data::synthetic::SyntheticParams;
pub use data::table::Table;
pub use model::confounding::ConfoundingSpec;
pub use model::effect::EffectKey;
pub use model::spec::{
    FixedEffects, InferenceSpec, Interaction, ModelSpec, Moderation, ModeratorValues, default_spec,
};
pub use output::report::render as render_summary;
pub use output::report::render_threshold;
pub use resample::engine::Precision;
pub use resample::intervals::Method;
pub use resample::scheme::{Scheme, WildWeights};
pub use resample::spec::{BackendChoice, ResampleSpec};
pub use study::backend::{Adapter, adapters};
pub use study::config::{Config, Origin, paper as default_config, read as read_config};
pub use study::resampling::Replicates;
pub use study::run::{DataSource, RunPlan, execute as run};
pub use study::simulate::{SimulationSummary, Study, run as simulate};
pub use study::summary::Summary;
pub use study::sweep::{
    Point as SweepPoint, csv_text as sweep_csv, header as sweep_header, points as sweep_points,
    rows as sweep_rows,
};
pub use study::threshold::{ThresholdPlan, ThresholdSummary, run as threshold};
