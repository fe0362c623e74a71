//! What every command that computes shares: the results folder and the
//! stores of replicates from claim to write ([`Session`]), the checks of
//! `--resume` and `--shard`, reporting a finished shard, progress bars.

use std::path::PathBuf;

use crate::cli::args::{EngineFlags, RunArgs, RunFlags};
use crate::error::{Error, Result};
use crate::output::results_dir::ResultsDir;
use crate::output::scale::{Mode, Scale, Stores, results_config};
use crate::resample::checkpoint::{Shard, StoreRef};
use crate::resample::engine::Backend;
use crate::resample::spec::ResampleSpec;
use crate::study::config::Config;

/// A merge reads the parts' replicates: its own engine only computes what
/// is not sharded (the restricted wild tests, the plot's draws), on
/// whatever this machine has, so the parts' GPU or adapter need not be here.
pub(crate) fn merge_engine(spec: &mut crate::resample::spec::ResampleSpec) {
    spec.backend = crate::resample::spec::BackendChoice::Auto;
    spec.adapter = None;
}

/// The engine of a run's main replicates, as its summary reports it.
pub(crate) fn engine_of(
    summary: &crate::study::summary::Summary,
) -> Option<crate::resample::engine::Backend> {
    summary.resampling.as_ref().map(|r| r.engine.clone())
}

/// Report a finished shard.
pub(crate) fn shard_done(
    shard: Shard,
    stores: &crate::output::scale::Stores,
    out: &std::path::Path,
    quiet: bool,
) -> Result<()> {
    let dir = stores
        .dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    if !quiet {
        outln!(
            "shard {}/{}: its replicates are stored in {dir}\nwhen all {} parts are done: medsim merge {}",
            shard.index,
            shard.count,
            shard.count,
            crate::output::scale::shards_dir(out).display()
        );
    }
    Ok(())
}

/// `--resume` takes no config or setting: the checkpoint's command line
/// is the run (only --quiet, --threads and --checkpoint-every may be given).
pub(crate) fn only_resume(args: &RunArgs) -> Result<()> {
    let rest = RunFlags {
        quiet: false,
        engine: EngineFlags {
            threads: None,
            ..args.flags.engine.clone()
        },
        ..args.flags.clone()
    };
    if args.config.is_some() || args.manifest.is_some() || rest != RunFlags::default() {
        return Err(resume_alone());
    }
    Ok(())
}

/// `--shard` on a run with no resampling.
pub(crate) fn nothing_to_split() -> Error {
    Error::InvalidOption {
        option: "--shard".into(),
        message: "splits the replicates of a resampling, and this run has none \
                  (scheme = \"none\"); run it whole"
            .into(),
    }
}

pub(crate) fn resume_alone() -> Error {
    Error::InvalidOption {
        option: "--resume".into(),
        message: "continues the checkpoint's own command line, so it takes no config file or \
                  setting (only --quiet, --threads and --checkpoint-every)"
            .into(),
    }
}

/// A progress bar of `len` steps with `template`, hidden when `quiet`.
pub(crate) fn progress_bar(quiet: bool, len: u64, template: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    indicatif::ProgressBar::new(len).with_style(
        indicatif::ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> "),
    )
}

/// A point's swept values, `key = value, ...`.
pub(crate) fn describe(values: &[(String, toml::Value)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k} = {}", crate::study::sweep::cell(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One command's results folder and stored replicates, from the claim
/// before any work to the written files: the bookkeeping run, sweep and
/// simulate share.
pub(crate) struct Session {
    mode: Mode,
    out: PathBuf,
    folder: ResultsDir,
    stores: Option<Stores>,
    quiet: bool,
}

impl Session {
    /// Claim `out` (refusing first a shard of work that does not
    /// resample), then open `command`'s stores of replicates when it
    /// `resamples` (a checkpoint, a shard's part, or a merge's shards).
    pub(crate) fn start(
        scale: &Scale,
        command: &str,
        out: PathBuf,
        inputs: &[PathBuf],
        configs: &[&Config],
        resamples: bool,
        quiet: bool,
    ) -> Result<Session> {
        if !resamples && matches!(scale.mode, Mode::Shard(_)) {
            return Err(nothing_to_split());
        }
        let folder = scale.claim(&out, inputs)?;
        let stores = match resamples {
            true => scale.open(command, results_config(configs, inputs)?, &out)?,
            false => None,
        };
        Ok(Session {
            mode: scale.mode.clone(),
            out,
            folder,
            stores,
            quiet,
        })
    }

    /// Whether this session merges shards' replicates.
    pub(crate) fn merges(&self) -> bool {
        matches!(self.mode, Mode::Merge { .. })
    }

    /// The part of the replicates this session computes, if it is a shard.
    fn shard(&self) -> Option<Shard> {
        match self.mode {
            Mode::Shard(s) => Some(s),
            _ => None,
        }
    }

    /// Whether this session computes one part of the replicates.
    pub(crate) fn is_shard(&self) -> bool {
        self.shard().is_some()
    }

    /// The store of the replicates at `sub` (a sweep point's folder), if
    /// the command stores them.
    pub(crate) fn store(&self, sub: Option<&str>) -> Result<Option<StoreRef>> {
        self.stores.as_ref().map(|st| st.at(sub)).transpose()
    }

    /// Give `spec` its store at `sub`; a merge reads the parts' replicates
    /// on whatever engine this machine has.
    pub(crate) fn attach(&self, spec: &mut ResampleSpec, sub: Option<&str>) -> Result<()> {
        if let Some(store) = self.store(sub)? {
            spec.store = Some(store);
        }
        if self.merges() && self.stores.is_some() {
            merge_engine(spec);
        }
        Ok(())
    }

    /// Record the engine a shard's replicates were computed on.
    pub(crate) fn note_engine(&mut self, engine: Option<Backend>) {
        let shard = self.is_shard();
        if let (Some(st), true) = (self.stores.as_mut(), shard) {
            st.note_engine(engine);
        }
    }

    /// A shard's part is done: mark it complete, keep its folder and say
    /// how to merge. False (nothing done) when this is not a shard.
    pub(crate) fn finish_shard(&mut self) -> Result<bool> {
        let shard = self.shard();
        let (Some(st), Some(shard)) = (self.stores.as_mut(), shard) else {
            return Ok(false);
        };
        st.finish_shard()?;
        self.folder.keep();
        shard_done(shard, st, &self.out, self.quiet)?;
        Ok(true)
    }

    /// Write the results into the claimed folder.
    pub(crate) fn write(mut self, files: &[(String, Vec<u8>)]) -> Result<()> {
        self.folder.write(files)
    }
}
