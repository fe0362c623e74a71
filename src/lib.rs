//! medsim: massive resampling of panel-data mediation models.
//!
//! The crate is layered; each folder imports only from the ones listed
//! before it (`tests/layers.rs` checks this), and `docs/architecture.md`
//! draws the map:
//!
//! 1. [`math`]: linear algebra, distributions, the Philox random numbers;
//! 2. [`data`]: CSV tables, the synthetic panel, robustness transformations;
//! 3. [`model`]: the model's description, sample, sufficient statistics,
//!    estimates and mediation analysis;
//! 4. [`resample`]: schemes, the engine trait, the CPU engines, stored
//!    replicates, aggregation and intervals;
//! 5. [`gpu`]: the same replicates from WGSL compute shaders;
//! 6. [`study`]: configs, the resampling driver, runs, sweeps, simulation
//!    studies and benchmarks;
//! 7. [`output`]: reports, tables, plots, manifests and results folders.
//!
//! [`error`], [`resources`] (memory and disk checks) and [`provenance`]
//! (build revision, digests) sit below every layer.

pub mod data;
pub mod error;
pub mod gpu;
pub mod math;
pub mod model;
pub mod output;
pub mod provenance;
pub mod resample;
pub mod resources;
pub mod study;

pub use error::{Error, Result};
