//! manifest.json: what produced a run's results, so that a number can be
//! traced a year later and the run replayed. It holds the medsim version
//! and git revision, the command line, the full resolved config (after the
//! flags, a CSV's path made absolute), the seed, the engine and adapter,
//! the worker threads, wall-clock seconds per stage, and the SHA-256 of
//! every input and output file. `medsim run --manifest FILE` runs the
//! manifest's config again after checking that the inputs are unchanged;
//! summary.json holds no timings, so the replay's is the same file, byte
//! for byte.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::provenance::{GIT_REVISION, sha256_hex};
use crate::study::config::{Config, Origin};
use crate::study::summary::Summary;

/// One file a run read or wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileDigest {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// manifest.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub medsim: String,
    pub git_revision: String,
    /// The command line, as given.
    pub command: Vec<String>,
    /// The run's config after the flags (what `--manifest` runs again).
    pub config: Config,
    /// The resampling seed (null without resampling).
    pub seed: Option<u64>,
    /// The engine of the main model's replicates (null without resampling).
    pub engine: Option<crate::resample::engine::Backend>,
    /// Worker threads available to the engines.
    pub threads: usize,
    /// Wall-clock seconds per stage, in order, and in total.
    pub timings: IndexMap<String, f64>,
    /// Resampling rate of the main model (replicates per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicates_per_second: Option<f64>,
    pub inputs: Vec<FileDigest>,
    /// The other files of the run folder, relative to it.
    pub outputs: Vec<FileDigest>,
}

/// The digest of the file at `path`.
pub fn digest_file(path: &Path) -> Result<FileDigest> {
    let refuse = |reason: String| Error::InputFile {
        path: path.to_path_buf(),
        reason,
    };
    // A device or pipe named as an input (a hostile manifest's /dev/zero)
    // would never end.
    let meta = std::fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    let bytes = std::fs::read(path).map_err(|e| refuse(e.to_string()))?;
    Ok(FileDigest {
        path: path.to_path_buf(),
        bytes: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
    })
}

/// A run folder's files: summary.json and the other results
/// (`output::run_files`, saved replicates included), then manifest.json
/// describing them all.
pub fn run_folder(
    config: &Config,
    inputs: &[PathBuf],
    summary: &Summary,
    timings: &[(String, f64)],
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = crate::output::files::run_files(summary, config.output.plots)?;
    let manifest = Manifest::new(config, inputs, summary, timings, &files)?;
    files.push(("manifest.json".into(), manifest.to_json()?.into_bytes()));
    Ok(files)
}

/// The input files of `plan`, by absolute path, with `config`'s CSV path
/// made that absolute path (so that the manifest's config reads the same
/// file from any folder).
pub fn resolve_inputs(
    config: &mut Config,
    plan: &crate::study::run::RunPlan,
) -> Result<Vec<PathBuf>> {
    let mut inputs = Vec::new();
    if let crate::study::run::DataSource::File { path, .. } = &plan.data {
        let path = std::path::absolute(path).map_err(|e| Error::InputFile {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        config.data.csv = Some(path.clone());
        inputs.push(path);
    }
    Ok(inputs)
}

impl Manifest {
    /// The manifest of a finished run: `config` as run (a CSV path already
    /// absolute), the input files it read, its summary, the stage timings,
    /// and the run folder's other files (relative name, bytes).
    pub fn new(
        config: &Config,
        inputs: &[PathBuf],
        summary: &Summary,
        timings: &[(String, f64)],
        files: &[(String, Vec<u8>)],
    ) -> Result<Manifest> {
        let mut stages: IndexMap<String, f64> = timings.iter().cloned().collect();
        stages.insert("total".into(), timings.iter().map(|(_, s)| s).sum());
        let resampling = summary.resampling.as_ref();
        Ok(Manifest {
            medsim: env!("CARGO_PKG_VERSION").into(),
            git_revision: GIT_REVISION.into(),
            command: std::env::args().collect(),
            config: config.clone(),
            seed: resampling.map(|r| r.seed),
            engine: resampling.map(|r| r.engine.clone()),
            threads: match config.resampling.threads {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                t => t as usize,
            },
            timings: stages,
            replicates_per_second: resampling.map(|r| r.replicates_per_second),
            inputs: inputs
                .iter()
                .map(|p| digest_file(p))
                .collect::<Result<_>>()?,
            outputs: files
                .iter()
                .map(|(name, bytes)| FileDigest {
                    path: PathBuf::from(name),
                    bytes: bytes.len() as u64,
                    sha256: sha256_hex(bytes),
                })
                .collect(),
        })
    }

    /// The manifest at `path`, its config (errors placed in the manifest
    /// file), after checking that every input still has its recorded
    /// checksum and warning when another medsim version wrote it.
    pub fn read(path: &Path) -> Result<(Manifest, Config, Origin)> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::InputFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| Error::Config {
            file: path.display().to_string(),
            line: e.line(),
            key: "manifest".into(),
            message: format!("not a medsim manifest.json: {e}"),
        })?;
        // The data the replay reads must be a file whose checksum the
        // manifest records (an edited `csv` would replay on other data).
        if let Some(csv) = &manifest.config.data.csv {
            let read = std::path::absolute(csv).unwrap_or_else(|_| csv.clone());
            if !manifest.inputs.iter().any(|i| i.path == read) {
                return Err(Error::InvalidOption {
                    option: "scale.manifest".into(),
                    message: format!(
                        "its config reads {}, whose checksum it does not record (it records {}); \
                         the manifest was edited, so its replay would not be the run it describes",
                        read.display(),
                        if manifest.inputs.is_empty() {
                            "no input file".to_string()
                        } else {
                            manifest
                                .inputs
                                .iter()
                                .map(|i| i.path.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                });
            }
        }
        for input in &manifest.inputs {
            let now = digest_file(&input.path).map_err(|e| Error::InvalidOption {
                option: "scale.manifest".into(),
                message: format!("the manifest's input cannot be read: {e}"),
            })?;
            if now.sha256 != input.sha256 {
                return Err(Error::InvalidOption {
                    option: "scale.manifest".into(),
                    message: format!(
                        "{} changed since the manifest was written (sha256 {}, now {}); \
                         the replay would not reproduce the run",
                        input.path.display(),
                        input.sha256,
                        now.sha256
                    ),
                });
            }
        }
        if manifest.medsim != env!("CARGO_PKG_VERSION") || manifest.git_revision != GIT_REVISION {
            crate::notices::notify(format!(
                "warning: the manifest was written by medsim {} ({}), this is {} ({}): \
                 results can differ",
                manifest.medsim,
                manifest.git_revision,
                env!("CARGO_PKG_VERSION"),
                GIT_REVISION
            ));
        }
        let config = manifest.config.clone();
        let origin = Origin::file(path, &text);
        Ok((manifest, config, origin))
    }

    /// manifest.json's text.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map(|s| s + "\n")
            .map_err(|e| Error::Numerical(e.to_string()))
    }
}
