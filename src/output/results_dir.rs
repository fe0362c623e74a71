//! The folder a command writes its results (or a shard its replicates) to,
//! claimed before any work and held for the run.
//!
//! medsim never deletes or overwrites what it did not write. A folder is
//! claimed only if it is absent, empty, or marked as medsim's (the
//! [`MARK_FILE`] listing the files medsim put there; a folder an older
//! medsim wrote, holding only medsim's files, counts too). Folders whose
//! loss would hurt (`/`, the working folder or one above it, a folder
//! above an input file) are refused outright. A claimed folder is locked
//! ([`LOCK_FILE`], an advisory lock the system drops with the process), so
//! two runs never write one folder at once. Results are written file by
//! file: staged inside the folder, moved into place, then the previous
//! run's files that the new run does not write are removed; whatever else
//! the user keeps there stays. A link given as the folder stays a link.
//! A run that fails removes what it made (a folder it created, a
//! checkpoint it started) and nothing else.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The mark of a folder medsim wrote: which files are medsim's.
pub const MARK_FILE: &str = ".medsim";
/// The lock of a folder a run holds; holds the holder's process id.
pub const LOCK_FILE: &str = ".medsim.lock";
/// The checkpoint folder inside a results folder (`scale::checkpoint_dir`).
const CHECKPOINT: &str = "checkpoint";

/// What an older medsim (before [`MARK_FILE`]) wrote into a results folder.
const LEGACY_NAMES: &[&str] = &[
    "summary.json",
    "summary.md",
    "tables.tex",
    "manifest.json",
    "sensitivity.csv",
    "replicates.csv",
    "replicates.bin",
    "replicates_columns.txt",
    "sweep.csv",
    "simulation.json",
    "simulation.csv",
    "run.json",
];

#[derive(Debug, Default, Serialize, Deserialize)]
struct Mark {
    medsim: String,
    /// The files medsim wrote, relative to the folder.
    files: BTreeSet<String>,
}

fn refuse(path: &Path, reason: impl Into<String>) -> Error {
    Error::Folder {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Output {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// `path` made absolute, with `.` and `..` folded and links resolved as
/// far as it exists.
pub fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
        if let Ok(real) = out.canonicalize() {
            out = real;
        }
    }
    out
}

/// A claimed, locked results folder.
#[derive(Debug)]
pub struct ResultsDir {
    /// Where files go (a link given is followed).
    real: PathBuf,
    /// The outermost folder the claim created (None: it existed).
    created: Option<PathBuf>,
    /// Whether a checkpoint folder was there at the claim.
    had_checkpoint: bool,
    /// medsim's files there at the claim.
    previous: BTreeSet<String>,
    lock: Option<fs::File>,
    /// Whether the claim marked the folder (it had no mark).
    marked_now: bool,
    /// Set once the results are written (or a shard's part is complete):
    /// nothing is cleaned up then.
    done: bool,
}

impl ResultsDir {
    /// Claim folder `out` for a run that reads `inputs`, before any work.
    pub fn claim(out: &Path, inputs: &[PathBuf]) -> Result<ResultsDir> {
        if fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_symlink()) && !out.exists() {
            return Err(refuse(
                out,
                "it is a link to nothing; make its target folder or choose another results folder",
            ));
        }
        if out.exists() && !out.is_dir() {
            return Err(refuse(out, "it exists and is not a folder"));
        }
        let real = resolve(out);
        check_not_precious(out, &real, inputs)?;
        let created = real
            .ancestors()
            .take_while(|a| !a.exists())
            .last()
            .map(Path::to_path_buf);
        let previous = match created {
            Some(_) => BTreeSet::new(),
            None => medsims_files(out, &real)?,
        };
        probe_writable(out, &real)?;
        fs::create_dir_all(&real).map_err(|e| io(out, e))?;
        let mut dir = ResultsDir {
            had_checkpoint: real.join(CHECKPOINT).exists(),
            real,
            created,
            previous,
            lock: None,
            marked_now: false,
            done: false,
        };
        dir.lock = Some(dir.take_lock(out)?);
        if !dir.real.join(MARK_FILE).exists() {
            dir.write_mark(&dir.previous.clone())?;
            dir.marked_now = true;
        }
        Ok(dir)
    }

    fn take_lock(&self, out: &Path) -> Result<fs::File> {
        use std::io::{Read, Seek, Write};
        let path = self.real.join(LOCK_FILE);
        loop {
            let mut f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io(&path, e))?;
            match f.try_lock() {
                Ok(()) => {}
                Err(fs::TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = f.read_to_string(&mut holder);
                    let holder = holder.trim();
                    let who = if holder.is_empty() {
                        "another medsim run".to_string()
                    } else {
                        format!("another medsim run (pid {holder})")
                    };
                    return Err(refuse(
                        out,
                        format!(
                            "{who} is writing this folder; wait for it to finish, or choose \
                             another results folder"
                        ),
                    ));
                }
                Err(fs::TryLockError::Error(e)) => return Err(io(&path, e)),
            }
            // The lock file may have been removed by a run that just
            // finished between our open and lock: then lock the new one.
            let same = match (f.metadata(), fs::metadata(&path)) {
                (Ok(a), Ok(b)) => same_file(&a, &b),
                _ => false,
            };
            if !same {
                continue;
            }
            f.set_len(0).map_err(|e| io(&path, e))?;
            f.rewind().map_err(|e| io(&path, e))?;
            writeln!(f, "{}", std::process::id()).map_err(|e| io(&path, e))?;
            return Ok(f);
        }
    }

    fn write_mark(&self, files: &BTreeSet<String>) -> Result<()> {
        let mark = Mark {
            medsim: env!("CARGO_PKG_VERSION").into(),
            files: files.clone(),
        };
        let text =
            serde_json::to_string_pretty(&mark).map_err(|e| Error::Numerical(e.to_string()))?;
        let path = self.real.join(MARK_FILE);
        let tmp = self.real.join(format!("{MARK_FILE}.tmp"));
        fs::write(&tmp, text + "\n").map_err(|e| io(&path, e))?;
        fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }

    /// Put `files` (relative path, bytes) into the folder: each staged
    /// whole, then moved into place; the previous run's files that are not
    /// among them removed, and a finished run's checkpoint. Files medsim
    /// did not write are left as they are.
    pub fn write(&mut self, files: &[(String, Vec<u8>)]) -> Result<()> {
        for (name, _) in files {
            let p = Path::new(name);
            if p.is_absolute() || p.components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(Error::Numerical(format!("a result file named {name}")));
            }
        }
        let staging = self
            .real
            .join(format!(".medsim-staging-{}", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        let staged = (|| {
            for (name, bytes) in files {
                let path = staging.join(name);
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(|e| io(&self.real.join(name), e))?;
                }
                fs::write(&path, bytes).map_err(|e| io(&self.real.join(name), e))?;
            }
            Ok(())
        })();
        if let Err(e) = staged {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        let new: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
        // Marked first, so an interruption leaves a folder whose every
        // medsim file is known.
        self.write_mark(&self.previous.union(&new).cloned().collect())?;
        let moved = (|| {
            for name in &new {
                let to = self.real.join(name);
                if let Some(parent) = to.parent() {
                    fs::create_dir_all(parent).map_err(|e| io(&to, e))?;
                }
                if to.is_dir() {
                    return Err(io(&to, "a folder stands where this result goes"));
                }
                fs::rename(staging.join(name), &to).map_err(|e| io(&to, e))?;
            }
            Ok(())
        })();
        let _ = fs::remove_dir_all(&staging);
        moved?;
        for stale in self.previous.difference(&new) {
            let path = self.real.join(stale);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                let _ = fs::remove_file(&path);
            }
            self.remove_empty_parents(&path);
        }
        if self
            .real
            .join(CHECKPOINT)
            .join(crate::resample::checkpoint::HEADER_FILE)
            .exists()
        {
            let _ = fs::remove_dir_all(self.real.join(CHECKPOINT));
        }
        self.write_mark(&new)?;
        self.previous = new;
        self.done = true;
        Ok(())
    }

    /// Keep what the run stored (a shard's finished part).
    pub fn keep(&mut self) {
        self.done = true;
    }

    /// Remove the folders between `path` and the results folder that are
    /// left empty.
    fn remove_empty_parents(&self, path: &Path) {
        for d in path.ancestors().skip(1) {
            if d == self.real || !d.starts_with(&self.real) {
                break;
            }
            if fs::remove_dir(d).is_err() {
                break;
            }
        }
    }
}

impl Drop for ResultsDir {
    fn drop(&mut self) {
        // A claim refused at the lock holds nothing: the folder is another
        // run's (which may have made it a moment before this one looked).
        if self.lock.is_none() {
            return;
        }
        if !self.done {
            // A refused or failed run: remove what it made.
            match &self.created {
                Some(top) => {
                    let _ = fs::remove_dir_all(&self.real);
                    for d in self.real.ancestors().skip(1) {
                        if !d.starts_with(top) || fs::remove_dir(d).is_err() {
                            break;
                        }
                    }
                }
                None => {
                    if !self.had_checkpoint {
                        let _ = fs::remove_dir_all(self.real.join(CHECKPOINT));
                    }
                    if self.marked_now {
                        let _ = fs::remove_file(self.real.join(MARK_FILE));
                    }
                }
            }
        }
        if let Some(lock) = self.lock.take() {
            // Removed while still held, so no other run locks it meanwhile.
            if self.real.exists() {
                let _ = fs::remove_file(self.real.join(LOCK_FILE));
            }
            drop(lock);
        }
    }
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    (a.dev(), a.ino()) == (b.dev(), b.ino())
}

#[cfg(not(unix))]
fn same_file(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    true
}

/// Refuse folders whose results would bury or endanger other work: the
/// root, the working folder or one above it, a folder above an input.
fn check_not_precious(out: &Path, real: &Path, inputs: &[PathBuf]) -> Result<()> {
    let choose = "choose a folder of its own for the results (e.g. results/NAME)";
    if real.parent().is_none() {
        return Err(refuse(out, format!("it is the root folder; {choose}")));
    }
    if let Ok(cwd) = std::env::current_dir().map(|c| resolve(&c))
        && cwd.starts_with(real)
    {
        return Err(refuse(
            out,
            format!("it is the working folder or one above it; {choose}"),
        ));
    }
    for input in inputs {
        let input = resolve(input);
        if input.starts_with(real) {
            return Err(refuse(
                out,
                format!("it holds the input file {}; {choose}", input.display()),
            ));
        }
    }
    Ok(())
}

/// The files of existing folder `real` that medsim wrote; refuses a
/// folder holding anything else.
fn medsims_files(out: &Path, real: &Path) -> Result<BTreeSet<String>> {
    let mark = real.join(MARK_FILE);
    if mark.exists() {
        let text = fs::read_to_string(&mark).map_err(|e| io(&mark, e))?;
        let m: Mark = serde_json::from_str(&text).map_err(|e| {
            refuse(
                out,
                format!(
                    "its {MARK_FILE} is damaged ({e}); medsim cannot tell its files from yours: \
                     choose another results folder"
                ),
            )
        })?;
        return Ok(m.files);
    }
    let mut files = BTreeSet::new();
    let mut foreign = Vec::new();
    list_legacy(real, real, &mut files, &mut foreign).map_err(|e| io(out, e))?;
    if foreign.is_empty() {
        // Empty, or written by an older medsim.
        return Ok(files);
    }
    foreign.sort();
    let shown: Vec<&str> = foreign.iter().take(3).map(String::as_str).collect();
    let more = if foreign.len() > 3 {
        format!(" and {} more", foreign.len() - 3)
    } else {
        String::new()
    };
    Err(refuse(
        out,
        format!(
            "it holds files medsim did not write ({}{more}); medsim writes only into a new or \
             empty folder or one it wrote before, so choose another results folder",
            shown.join(", ")
        ),
    ))
}

/// The files under `dir` an older medsim could have written (into
/// `files`) and the others (`foreign`), relative to `top`.
fn list_legacy(
    top: &Path,
    dir: &Path,
    files: &mut BTreeSet<String>,
    foreign: &mut Vec<String>,
) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let rel = path
            .strip_prefix(top)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type()?;
        let at_top = dir == top;
        if kind.is_dir() {
            let inside_points = rel.starts_with("points");
            let numbered = |prefix: &str| {
                name.strip_prefix(prefix)
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            };
            if (at_top && (name == "points" || name == CHECKPOINT || numbered("p")))
                || (inside_points && numbered(""))
            {
                if name == CHECKPOINT {
                    continue; // the checkpoint's files are the store's
                }
                list_legacy(top, &path, files, foreign)?;
            } else {
                foreign.push(rel + "/");
            }
        } else if kind.is_file()
            && (LEGACY_NAMES.contains(&name.as_str())
                || name.ends_with(".svg")
                || (name.starts_with('s') && name.ends_with(".bin"))
                || name == LOCK_FILE)
        {
            if name != LOCK_FILE {
                files.insert(rel);
            }
        } else {
            foreign.push(rel);
        }
    }
    Ok(())
}

/// Results go into the nearest folder that exists: try writing there,
/// and leave nothing.
fn probe_writable(out: &Path, real: &Path) -> Result<()> {
    let Some(base) = real.ancestors().find(|a| a.is_dir()) else {
        return Ok(());
    };
    let probe = base.join(format!(".medsim-write-test-{}", std::process::id()));
    match fs::File::create(&probe) {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(io(out, format!("{} is not writable ({e})", base.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> BTreeSet<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_marked_folder_keeps_the_users_files_and_loses_medsims_stale_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("o");
        let mut d = ResultsDir::claim(&out, &[]).unwrap();
        d.write(&[
            ("a.json".into(), b"1".to_vec()),
            ("points/001/s.json".into(), b"2".to_vec()),
        ])
        .unwrap();
        drop(d);
        fs::write(out.join("notes.txt"), "mine").unwrap();
        let mut d = ResultsDir::claim(&out, &[]).unwrap();
        d.write(&[("b.json".into(), b"3".to_vec())]).unwrap();
        drop(d);
        assert_eq!(
            names(&out),
            BTreeSet::from(["b.json".into(), "notes.txt".into(), MARK_FILE.into()])
        );
        assert_eq!(fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
    }

    #[test]
    fn a_second_claim_is_refused_while_the_first_holds_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("o");
        let first = ResultsDir::claim(&out, &[]).unwrap();
        let err = ResultsDir::claim(&out, &[]).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        // The folder was made by a run that wrote nothing: gone with it.
        assert!(!out.exists());
        let mut again = ResultsDir::claim(&out, &[]).unwrap();
        again.keep();
    }

    #[test]
    fn a_claim_refused_at_the_lock_removes_nothing() {
        // Two runs that both found the folder missing: the one refused at
        // the lock must not remove the folder the other made and holds.
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("o");
        let holder = ResultsDir::claim(&out, &[]).unwrap();
        fs::create_dir_all(out.join(CHECKPOINT)).unwrap();
        let refused = ResultsDir {
            real: out.clone(),
            created: Some(out.clone()),
            had_checkpoint: false,
            previous: BTreeSet::new(),
            lock: None,
            marked_now: false,
            done: false,
        };
        drop(refused);
        assert!(out.join(CHECKPOINT).exists() && out.join(LOCK_FILE).exists());
        drop(holder);
    }

    #[test]
    fn a_failed_run_removes_only_what_it_made() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("a/b/o");
        let d = ResultsDir::claim(&out, &[]).unwrap();
        fs::create_dir_all(out.join(CHECKPOINT)).unwrap();
        drop(d);
        assert!(!tmp.path().join("a").exists());

        let mut d = ResultsDir::claim(&out, &[]).unwrap();
        d.write(&[("s.json".into(), b"1".to_vec())]).unwrap();
        drop(d);
        let d = ResultsDir::claim(&out, &[]).unwrap();
        fs::create_dir_all(out.join(CHECKPOINT)).unwrap();
        drop(d);
        assert_eq!(
            names(&out),
            BTreeSet::from(["s.json".into(), MARK_FILE.into()])
        );
    }
}
