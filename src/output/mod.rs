//! What a run leaves behind, rendered from the summary alone: the printed
//! report ([`report`]), Markdown and LaTeX tables ([`paper_tables`]), SVG
//! pictures ([`plots`]), the run folder's files ([`files`]), the manifest
//! that replays a run ([`manifest`]), the results folder claimed and locked
//! for a run ([`results_dir`]), and checkpoints, shards and merges
//! ([`scale`]).

pub mod files;
pub mod manifest;
pub mod paper_tables;
pub mod plots;
pub mod report;
pub mod results_dir;
pub mod scale;
