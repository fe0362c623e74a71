//! The mediation model on one sample: its description ([`spec`]), the
//! estimation sample ([`panel`]), the names of its effects ([`effect`]), per-cluster sufficient statistics
//! ([`design`]), least squares and 2SLS with the joint CR1 covariance
//! ([`estimate`]), the mediation analysis ([`mediation`]), one replicate's
//! statistics from its Gram matrix ([`replicate`]), the moderated and
//! interaction models' effects ([`moderation`]), the serial chain's paths
//! ([`serial`]), the Imai-Keele-Yamamoto sensitivity algebra
//! ([`sensitivity`]) and the Cinelli-Hazlett omitted-variable bounds of
//! each path ([`confounding`]); and the fixed-effects panel threshold model
//! of Hansen (1999) ([`threshold`]). Nothing here resamples.

pub mod cells;
pub mod confounding;
pub mod design;
pub mod effect;
pub mod estimate;
pub mod mediation;
pub mod moderation;
pub mod panel;
pub mod replicate;
pub mod sensitivity;
pub mod serial;
pub mod spec;
pub mod threshold;
