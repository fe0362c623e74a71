//! Numbers with no statistics model in them: small dense linear algebra
//! ([`linalg`]), distribution functions and quantiles ([`stats`]), and the
//! counter-based random numbers the CPU and GPU share ([`rng`]).

pub mod linalg;
pub mod rng;
pub mod stats;
