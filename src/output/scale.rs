//! Where a command's replicates are kept between processes: checkpoints of
//! a long run (`--checkpoint-every`, `--resume`), one part of a run split
//! over machines (`--shard I/N`), or the parts put back together
//! (`medsim merge`). Opens the `crate::resample::checkpoint` stores a command's
//! resamplings go through, checks that a checkpoint or the shards belong to
//! the run at hand, and marks a shard finished.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::output::results_dir::{ResultsDir, resolve};
use crate::resample::checkpoint::{HEADER_FILE, Header, Shard, Store, StoreRef};
use crate::resample::engine::Backend;
use crate::study::config::Config;

/// What a command does with its replicates.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// The whole run, checkpointed into RESULTS/checkpoint; `keep`: resuming
    /// from what is there.
    Checkpoint { keep: bool },
    /// Part of every resampling, into RESULTS-shards/III-of-NNN.
    Shard(Shard),
    /// The whole run from the shards in `dirs`, whose common header
    /// (`scale::shards`) is `shards`.
    Merge {
        dirs: Vec<PathBuf>,
        shards: Box<Header>,
    },
}

/// A command's [`Mode`] and checkpoint interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub mode: Mode,
    /// Between checkpoints; zero: a plain run writes none.
    pub every: Duration,
    /// The folder a resumed command must write (the `--resume` folder,
    /// resolved): a stored command line that writes elsewhere is another
    /// run's.
    pub resumes: Option<PathBuf>,
}

/// The checkpoint interval of a plain run.
pub const DEFAULT_EVERY: f64 = 60.0;

/// The folder of a run's checkpoint.
pub fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join("checkpoint")
}

/// The folder holding the shards of a run whose results go to `out`.
pub fn shards_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
    out.with_file_name(format!("{name}-shards"))
}

/// What a run's results depend on, for its fingerprint: the configs after
/// the flags, less what cannot change a replicate (the output settings,
/// worker threads, batch sizes, memory budget), and each input's SHA-256.
pub fn results_config(configs: &[&Config], inputs: &[PathBuf]) -> Result<serde_json::Value> {
    let mut list = Vec::new();
    for c in configs {
        let mut c = (*c).clone();
        c.output = Default::default();
        c.resampling.threads = 0;
        c.resampling.batch = 0;
        c.resampling.gpu_batch = 0;
        c.resampling.memory_mib = 0;
        list.push(serde_json::to_value(&c).map_err(|e| Error::Numerical(e.to_string()))?);
    }
    let mut digests = serde_json::Map::new();
    for path in inputs {
        let d = crate::output::manifest::digest_file(path)?;
        digests.insert(path.display().to_string(), d.sha256.into());
    }
    Ok(serde_json::json!({ "configs": list, "inputs": digests }))
}

/// The stores of one command.
pub struct Stores {
    /// The folder written (None: a merge).
    dir: Option<PathBuf>,
    /// The shard folders read by a merge.
    reads: Vec<PathBuf>,
    header: Header,
    scale: Scale,
    keep: bool,
    engine: Option<Backend>,
}

impl Scale {
    /// The folder the command writes when its results go to `out`: a
    /// shard's own folder, else `out`.
    pub fn folder(&self, out: &Path) -> PathBuf {
        match &self.mode {
            Mode::Shard(s) => shards_dir(out).join(s.folder()),
            _ => out.to_path_buf(),
        }
    }

    /// Claim the folder the command writes ([`Scale::folder`]) for a run
    /// reading `inputs`; a resumed command must write the folder resumed.
    pub fn claim(&self, out: &Path, inputs: &[PathBuf]) -> Result<ResultsDir> {
        let folder = self.folder(out);
        if let Some(resumed) = &self.resumes
            && resolve(&folder) != *resumed
        {
            return Err(Error::InvalidOption {
                option: "scale.resume".into(),
                message: format!(
                    "the checkpoint in {} holds the command line of a run whose results go to {}: \
                     it is not this folder's run, so it is not resumed",
                    resumed.display(),
                    folder.display()
                ),
            });
        }
        ResultsDir::claim(&folder, inputs)
    }

    /// The stores of `command` (results depending on `config`, written to
    /// `out`); None for a plain run without checkpoints.
    pub fn open(
        &self,
        command: &str,
        config: serde_json::Value,
        out: &Path,
    ) -> Result<Option<Stores>> {
        let shard = match &self.mode {
            Mode::Shard(s) => Some(*s),
            _ => None,
        };
        let header = Header::new(command, config, shard)?;
        let (dir, keep) = match &self.mode {
            Mode::Checkpoint { keep: false } if self.every.is_zero() => return Ok(None),
            Mode::Checkpoint { keep } => {
                let dir = checkpoint_dir(out);
                let old = Header::read(&dir);
                if *keep {
                    let old = old?;
                    header.check_same(&old, &format!("scale.resume {}", out.display()))?;
                } else if old.is_ok() {
                    crate::notices::notify(format!(
                        "note: {} held an interrupted run's checkpoint; starting over \
                         (resuming, scale.resume = {}, continues such a run)",
                        dir.display(),
                        out.display()
                    ));
                }
                (dir, *keep)
            }
            Mode::Shard(_) => {
                let dir = self.folder(out);
                // A shard run again continues its own earlier attempt.
                let keep = match Header::read(&dir) {
                    Ok(old) => match header.check_same(&old, "scale.shard") {
                        Ok(()) => true,
                        Err(e) => {
                            crate::notices::notify(format!(
                                "note: replacing {} ({e})",
                                dir.display()
                            ));
                            false
                        }
                    },
                    Err(_) => false,
                };
                (dir, keep)
            }
            Mode::Merge { dirs, shards } => {
                // The config or data may have changed since the parts ran.
                header.check_same(shards, "medsim merge")?;
                return Ok(Some(Stores {
                    dir: None,
                    reads: dirs.clone(),
                    header,
                    scale: self.clone(),
                    keep: true,
                    engine: shards.engine.clone(),
                }));
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| Error::Output {
            path: dir.clone(),
            reason: e.to_string(),
        })?;
        let mut header = header;
        if keep && let Ok(old) = Header::read(&dir) {
            // Resuming keeps the original command line.
            header.argv = old.argv;
            header.cwd = old.cwd;
        }
        header.write(&dir)?;
        Ok(Some(Stores {
            dir: Some(dir),
            reads: vec![],
            header,
            scale: self.clone(),
            keep,
            engine: None,
        }))
    }
}

impl Stores {
    /// The store of one run of the command (`sub`: a sweep point's folder).
    pub fn at(&self, sub: Option<&str>) -> Result<StoreRef> {
        let join = |d: &Path| match sub {
            Some(s) => d.join(s),
            None => d.to_path_buf(),
        };
        let store = match &self.dir {
            Some(dir) => {
                let shard = match self.scale.mode {
                    Mode::Shard(s) => Some(s),
                    _ => None,
                };
                let every = if self.scale.every.is_zero() {
                    Duration::from_secs_f64(DEFAULT_EVERY)
                } else {
                    self.scale.every
                };
                Store::open(&join(dir), every, shard, self.keep)?
            }
            None => Store::merge(
                &self.reads.iter().map(|d| join(d)).collect::<Vec<_>>(),
                self.engine.clone(),
            )?,
        };
        Ok(StoreRef(Arc::new(store)))
    }

    /// The folder written.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Record the engine of the replicates (the first run's, of a sweep).
    pub fn note_engine(&mut self, engine: Option<Backend>) {
        if self.header.engine.is_none() {
            self.header.engine = engine;
        }
    }

    /// Mark a shard's part complete.
    pub fn finish_shard(&mut self) -> Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        self.header.complete = true;
        self.header.write(dir)
    }
}

/// The shard folders among `dirs` (each a shard folder, or a folder of
/// them such as RESULTS-shards), checked to be every part of one run,
/// complete, from this medsim; returns their common header (the first
/// part's) and the folders.
pub fn shards(dirs: &[PathBuf]) -> Result<(Header, Vec<PathBuf>)> {
    let mut parts = read_parts(shard_folders(dirs)?)?;
    parts.sort_by_key(|(s, _, _)| s.index);
    check_parts(&parts)?;
    let header = parts[0].1.clone();
    Ok((header, parts.into_iter().map(|(_, _, d)| d).collect()))
}

/// The shard folders among `dirs` and inside them.
fn shard_folders(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for d in dirs {
        if d.join(HEADER_FILE).exists() {
            found.push(d.clone());
            continue;
        }
        let mut inner: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| Error::InvalidOption {
                option: "medsim merge".into(),
                message: format!("{}: {e}", d.display()),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(HEADER_FILE).exists())
            .collect();
        if inner.is_empty() {
            return Err(Error::InvalidOption {
                option: "medsim merge".into(),
                message: format!(
                    "{} holds no shard (a shard folder has a {HEADER_FILE}; a run with scale.shard = I/N \
                     writes them into RESULTS-shards/)",
                    d.display()
                ),
            });
        }
        inner.sort();
        found.extend(inner);
    }
    Ok(found)
}

/// Each shard folder's part and header; a checkpoint is not a part.
fn read_parts(found: Vec<PathBuf>) -> Result<Vec<(Shard, Header, PathBuf)>> {
    let mut parts: Vec<(Shard, Header, PathBuf)> = Vec::new();
    for d in found {
        let h = Header::read(&d)?;
        let Some(s) = h.shard else {
            return Err(Error::InvalidOption {
                option: "medsim merge".into(),
                message: format!(
                    "{} is a checkpoint, not a shard; resume it (scale.resume)",
                    d.display()
                ),
            });
        };
        parts.push((s, h, d));
    }
    Ok(parts)
}

/// The parts (sorted) are of one run, split the same way, complete, on
/// one engine, each once, none missing.
fn check_parts(parts: &[(Shard, Header, PathBuf)]) -> Result<()> {
    let (first, first_header, first_dir) = parts[0].clone();
    let this = Header::new(&first_header.command, first_header.config.clone(), None)?;
    let name = |s: &Shard, d: &Path| format!("shard {}/{} ({})", s.index, s.count, d.display());
    this.check_same(&first_header, &name(&first, &first_dir))?;
    for (s, h, d) in parts {
        first_header.check_same(h, &name(s, d))?;
        if s.count != first.count {
            return Err(Error::InvalidOption {
                option: "medsim merge".into(),
                message: format!(
                    "{} is one of {} parts, {} one of {}: they split the run differently",
                    name(s, d),
                    s.count,
                    name(&first, &first_dir),
                    first.count
                ),
            });
        }
        if !h.complete {
            return Err(Error::InvalidOption {
                option: "medsim merge".into(),
                message: format!(
                    "{} did not finish (killed?); run its command again, it continues where it stopped",
                    name(s, d)
                ),
            });
        }
        let engines = |h: &Header| {
            h.engine
                .as_ref()
                .map(|b| (b.backend.clone(), b.precision.clone()))
        };
        if engines(h) != engines(&first_header) {
            return Err(Error::InvalidOption {
                option: "medsim merge".into(),
                message: format!(
                    "{} ran on {:?}, {} on {:?}: replicates of different engines differ in their last \
                     digits, so they are not combined; run every part with the same resampling.backend and resampling.precision",
                    name(s, d),
                    engines(h),
                    name(&first, &first_dir),
                    engines(&first_header)
                ),
            });
        }
    }
    for w in parts.windows(2) {
        if w[0].0.index == w[1].0.index {
            return Err(Error::InvalidOption {
                option: "medsim merge".into(),
                message: format!(
                    "shard {}/{} is given twice ({} and {}); give each part once",
                    w[0].0.index,
                    w[0].0.count,
                    w[0].2.display(),
                    w[1].2.display()
                ),
            });
        }
    }
    let missing: Vec<String> = (0..first.count)
        .filter(|i| !parts.iter().any(|(s, _, _)| s.index == *i))
        .map(|i| format!("{i}/{}", first.count))
        .collect();
    if !missing.is_empty() {
        return Err(Error::InvalidOption {
            option: "medsim merge".into(),
            message: format!(
                "shard {} missing: every part of the run is needed (run each, scale.shard = I/N)",
                missing.join(", ")
            ),
        });
    }
    Ok(())
}
