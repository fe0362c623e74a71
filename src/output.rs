//! Writing results so that a failed run leaves nothing half-written: files go
//! to a temporary sibling first and are moved into place at the end.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::summary::Summary;

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
/// (`crate::tables`), sensitivity.csv when the run has a sensitivity
/// analysis (the pooled model's curve and each group's), and with `plots`
/// the run's SVG pictures (`crate::plots`).
pub fn run_files(summary: &Summary, plots: bool) -> Result<Vec<(String, Vec<u8>)>> {
    let json =
        serde_json::to_string_pretty(summary).map_err(|e| Error::Numerical(e.to_string()))? + "\n";
    let mut files = vec![
        ("summary.json".to_string(), json.into_bytes()),
        (
            "summary.md".to_string(),
            crate::tables::markdown(summary).into_bytes(),
        ),
        (
            "tables.tex".to_string(),
            crate::tables::latex(summary).into_bytes(),
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
            crate::sensitivity::csv(&curves).into_bytes(),
        ));
    }
    if plots {
        files.extend(
            crate::plots::run_plots(summary)
                .into_iter()
                .map(|(name, text)| (name, text.into_bytes())),
        );
    }
    Ok(files)
}

/// Replace the folder `dir` with one holding exactly `files` (relative
/// path, bytes; sub-folders are made). The old folder, if any, is only
/// removed once the new one is complete.
pub fn write_run_dir(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(out_err(dir, "it exists and is not a folder"));
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| out_err(parent, e))?;
    }
    let tmp = sibling(dir, "tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| {
        std::fs::create_dir(&tmp).map_err(|e| out_err(dir, e))?;
        for (name, bytes) in files {
            let path = tmp.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| out_err(&dir.join(name), e))?;
            }
            std::fs::write(&path, bytes).map_err(|e| out_err(&dir.join(name), e))?;
        }
        if dir.exists() {
            let old = sibling(dir, "old");
            let _ = std::fs::remove_dir_all(&old);
            std::fs::rename(dir, &old).map_err(|e| out_err(dir, e))?;
            std::fs::rename(&tmp, dir).map_err(|e| out_err(dir, e))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&tmp, dir).map_err(|e| out_err(dir, e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
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
