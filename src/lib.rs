//! medsim: massive resampling of panel-data mediation models.
//!
//! Data flows one way (DESIGN.md section 7): a validated plan ([`spec`],
//! [`run`]) -> a raw table ([`table`], [`synthetic`]) -> the estimation sample
//! ([`panel`]) -> per-cluster sufficient statistics ([`design`]) -> estimates
//! and joint CR1 covariance ([`estimate`]) -> the mediation analysis
//! ([`mediation`]) -> the summary ([`summary`]), printed by [`report`] and
//! written by [`output`].

pub mod design;
pub mod error;
pub mod estimate;
pub mod linalg;
pub mod mediation;
pub mod output;
pub mod panel;
pub mod report;
pub mod rng;
pub mod run;
pub mod spec;
pub mod stats;
pub mod summary;
pub mod synthetic;
pub mod table;

pub use error::{Error, Result};
