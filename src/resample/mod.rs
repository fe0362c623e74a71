//! Resampling on the CPU, and what every engine shares: the schemes and
//! their weights ([`scheme`]), the [`engine::Engine`] trait with the CPU
//! engine and precomputed replicates ([`engine`]), the permutation engine
//! ([`permutation`]), wild-bootstrap tests ([`wild`]), group contrasts
//! ([`contrast`], [`label_test`]), replicates stored on disk
//! ([`checkpoint`]), the whitened coordinates the GPU solves in
//! (`whiten`, `whiten_iv`; with the `gpu` feature), and what replicates become: tallies and
//! order statistics ([`aggregate`]), intervals ([`intervals`]) and a
//! moderated model's Johnson-Neyman region ([`johnson_neyman`]); the bootstrap of
//! the panel threshold model's F tests ([`threshold`]).
//! Choosing between CPU and GPU engines happens above, in
//! `crate::study::resampling`.

pub mod aggregate;
pub mod checkpoint;
pub mod contrast;
pub mod engine;
pub mod factory;
pub mod intervals;
pub mod johnson_neyman;
pub mod label_test;
pub mod permutation;
pub mod scheme;
pub mod spec;
pub mod threshold;
#[cfg(feature = "gpu")]
pub mod whiten;
#[cfg(feature = "gpu")]
pub mod whiten_iv;
pub mod wild;
