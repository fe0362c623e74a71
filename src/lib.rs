//! medsim: massive resampling of panel-data mediation models.
//!
//! Data flows one way (DESIGN.md section 7): a config file ([`config`]) or
//! flags -> a validated plan ([`spec`], [`run`]) -> a raw table ([`table`],
//! [`synthetic`], transformed by [`robustness`]) -> the estimation sample
//! ([`panel`]) -> per-cluster sufficient statistics ([`design`]) -> estimates
//! and joint CR1 covariance ([`estimate`], least squares or, with
//! instruments, two-stage least squares) -> the mediation analysis
//! ([`mediation`]) -> resampling ([`bootstrap`]: weights from [`scheme`],
//! replicates from an [`engine`] - the CPU's, solved by [`replicate`], or
//! the GPU's ([`gpu`]), which solves in the whitened coordinates of
//! [`whiten`] (two-stage least squares: [`whiten_iv`]) - summarised by [`aggregate`] and [`intervals`]; group models
//! and their differences through [`contrast`] and [`label_test`]) -> the
//! summary ([`summary`]), printed by [`report`] and written by [`output`]
//! into a results folder claimed and locked by [`results_dir`] (which never
//! overwrites what medsim did not write); [`resources`] refuses requests
//! the machine's memory or disk cannot hold before any work.

pub mod aggregate;
pub mod bench;
pub mod bootstrap;
pub mod checkpoint;
pub mod config;
pub mod contrast;
pub mod design;
pub mod engine;
pub mod error;
pub mod estimate;
pub mod gpu;
pub mod intervals;
pub mod label_test;
pub mod linalg;
pub mod manifest;
pub mod mediation;
pub mod output;
pub mod panel;
pub mod permutation;
pub mod plots;
pub mod replicate;
pub mod report;
pub mod resources;
pub mod results_dir;
pub mod rng;
pub mod robustness;
pub mod run;
pub mod scale;
pub mod scheme;
pub mod sensitivity;
pub mod simulate;
pub mod spec;
pub mod stats;
pub mod summary;
pub mod sweep;
pub mod synthetic;
pub mod table;
pub mod tables;
pub mod whiten;
pub mod whiten_iv;
pub mod wild;

pub use error::{Error, Result};
