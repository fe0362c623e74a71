//! A run folder's files, and writing one file so that a failed write
//! leaves nothing half-written (a temporary sibling, then a rename).
//! Folders are claimed and written by `crate::output::results_dir`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::study::resampling::Replicates;
use crate::study::summary::Summary;

fn out_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A sibling of `path` with a hidden, process-unique name.
fn sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// The files of one run's folder: summary.json, summary.md and tables.tex
/// (`crate::output::paper_tables`), sensitivity.csv when the run has a sensitivity
/// analysis (the pooled model's curve and each group's), with `plots` the
/// run's SVG pictures (`crate::output::plots`), and the kept replicates
/// when the summary has them ([`replicate_files`]).
pub fn run_files(summary: &Summary, plots: bool) -> Result<Vec<(String, Vec<u8>)>> {
    let json =
        serde_json::to_string_pretty(summary).map_err(|e| Error::Numerical(e.to_string()))? + "\n";
    let mut files = vec![
        ("summary.json".to_string(), json.into_bytes()),
        (
            "summary.md".to_string(),
            crate::output::paper_tables::markdown(summary).into_bytes(),
        ),
        (
            "tables.tex".to_string(),
            crate::output::paper_tables::latex(summary).into_bytes(),
        ),
    ];
    if let Some(s) = &summary.sensitivity {
        let mut curves = vec![("pooled".to_string(), s)];
        for (label, g) in &summary.groups {
            if let Some(gs) = &g.sensitivity {
                curves.push((label.clone(), gs));
            }
        }
        files.push((
            "sensitivity.csv".to_string(),
            crate::model::sensitivity::csv(&curves).into_bytes(),
        ));
    }
    if plots {
        files.extend(
            crate::output::plots::run_plots(summary)
                .into_iter()
                .map(|(name, text)| (name, text.into_bytes())),
        );
    }
    if let Some(replicates) = &summary.replicates {
        files.extend(replicate_files(replicates));
    }
    Ok(files)
}

/// Above this many replicates, saved replicates use the compact binary
/// layout instead of CSV.
pub const CSV_REPLICATES: usize = 1_000_000;

/// The main model's replicates (`output.save_replicates`), every effect of
/// summary.json: `replicates.csv` (a header `replicate,KEY,...`, then one
/// row per replicate, shortest round-trip decimals, NaN for a degenerate
/// one) up to [`CSV_REPLICATES`]; above it `replicates.bin`, little-endian
/// f64, one row per replicate of the columns listed one per line in
/// `replicates_columns.txt`.
pub fn replicate_files(replicates: &Replicates) -> Vec<(String, Vec<u8>)> {
    let keys = &replicates.keys;
    if replicates.len() <= CSV_REPLICATES {
        use std::fmt::Write;
        let mut csv = format!("replicate,{}\n", keys.join(","));
        for (r, row) in replicates.values.chunks(keys.len().max(1)).enumerate() {
            let _ = write!(csv, "{r}");
            for v in row {
                let _ = write!(csv, ",{v}");
            }
            csv.push('\n');
        }
        return vec![("replicates.csv".into(), csv.into_bytes())];
    }
    let bytes: Vec<u8> = replicates
        .values
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    vec![
        ("replicates.bin".into(), bytes),
        (
            "replicates_columns.txt".into(),
            (keys.join("\n") + "\n").into_bytes(),
        ),
    ]
}

/// Where a new file named `path` may be written: a path that does not
/// exist, or with `force` an existing regular file (a link to one is
/// followed, so the link stays). Folders, devices and pipes are refused,
/// and an existing file without `force`.
pub fn file_target(path: &Path, force: bool) -> Result<PathBuf> {
    let refuse = |reason: &str| Error::Output {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    match std::fs::metadata(path) {
        Err(_) if std::fs::symlink_metadata(path).is_ok() => {
            Err(refuse("it is a link to nothing; give a file name"))
        }
        Err(_) => Ok(path.to_path_buf()),
        Ok(m) if !m.is_file() => Err(refuse(if m.is_dir() {
            "it is a folder; give a file name"
        } else {
            "it is not a regular file (a device or a pipe); give a file name"
        })),
        Ok(_) if !force => Err(refuse(
            "it exists; medsim does not replace a file unless asked (--force)",
        )),
        Ok(_) => std::fs::canonicalize(path).map_err(|e| refuse(&e.to_string())),
    }
}

/// Refuse to replace `path` unless it is absent or `ours` recognises its
/// text as a `what` medsim wrote: a file medsim keeps up to date in a
/// folder it does not own (BENCHMARKS.md) is never someone else's.
pub fn check_ours(path: &Path, what: &str, ours: impl Fn(&str) -> bool) -> Result<()> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    match std::fs::read_to_string(path) {
        Ok(text) if path.is_file() && ours(&text) => Ok(()),
        _ => Err(out_err(
            path,
            format!(
                "it exists and is not a {what} medsim wrote; medsim does not replace it \
                 (move it, or write elsewhere)"
            ),
        )),
    }
}

/// Write one file atomically: to a temporary sibling, then renamed over `path`.
pub fn write_file(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if path.is_dir() {
        return Err(out_err(path, "it is a folder; give a file name"));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| out_err(parent, e))?;
    }
    let tmp = sibling(path, "tmp");
    let result =
        write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| out_err(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
