//! What a user asks for, computed: a config file or flags made into a plan
//! ([`config`]), the resampling driver that picks the CPU or GPU engine and
//! summarises the replicates ([`resampling`]), one run ([`run`]) and its
//! typed result ([`summary`]), sweeps over configs ([`sweep`]; lists combine by [`combine`]), simulation
//! studies ([`simulate`]), the panel threshold model's analysis ([`threshold`])
//! and the benchmark suite ([`bench`]; a GPU
//! engine's stages, [`stages`]). Nothing here
//! writes files: that is `crate::output`.

pub mod backend;
pub mod bench;
pub mod combine;
pub mod config;
pub mod resampling;
pub mod run;
pub mod simulate;
pub mod stages;
pub mod summary;
pub mod sweep;
pub mod threshold;
