//! What the machine can hold: memory available and disk free, so that a
//! request that cannot fit is refused before any work, with its size,
//! instead of aborting part way (an allocation failure) or filling a disk.

use std::path::Path;

use crate::error::{Error, Result};

/// Memory the system can give this process now (Linux's MemAvailable), if
/// known.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Bytes free to this user on the file system holding `path` (or its
/// nearest existing folder), if known.
pub fn free_disk(path: &Path) -> Option<u64> {
    let absolute = std::path::absolute(path).ok()?;
    let existing = absolute.ancestors().find(|a| a.exists())?;
    free_disk_at(existing)
}

#[cfg(unix)]
fn free_disk_at(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable struct.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

#[cfg(not(unix))]
fn free_disk_at(_: &Path) -> Option<u64> {
    None
}

/// `bytes` as a person reads it (1.5 GB).
pub fn human(bytes: f64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < units.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", units[0])
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Refuse work whose memory (`bytes`, computed in f64 so that no product
/// overflows) exceeds what the machine has available: `key` is the config
/// key that sets its size, `what` says what the memory holds.
pub fn check_memory(key: &str, what: &str, bytes: f64) -> Result<()> {
    // Unknown (not Linux): only what no machine has.
    let have = available_memory().map_or(f64::from(u32::MAX) * 1e6, |b| b as f64);
    if bytes > have {
        return Err(Error::InvalidOption {
            option: key.into(),
            message: format!(
                "{what} would need {} of memory, and this machine has {} available; \
                 lower it",
                human(bytes),
                human(have)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_read_and_refused() {
        assert!(available_memory().is_some_and(|b| b > 0));
        assert!(free_disk(Path::new("/tmp/no/such/folder")).is_some_and(|b| b > 0));
        assert_eq!(human(64.0), "64 bytes");
        assert_eq!(human(1.5e9), "1.5 GB");
        let err = check_memory("inference.mc_draws", "the draws", 8e12)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("8.0 TB") && err.contains("inference.mc_draws"),
            "{err}"
        );
        assert!(check_memory("k", "x", 1e6).is_ok());
    }
}
