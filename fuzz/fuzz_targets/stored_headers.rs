//! Fuzz target: arbitrary text as a checkpoint's or shard's run.json (read,
//! then checked as a merge checks its parts) and as a run folder's
//! manifest.json (read as `--manifest` reads it). Any input may be
//! refused; none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medsim::internals::resample::checkpoint::{HEADER_FILE, Header};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    std::fs::write(dir.path().join(HEADER_FILE), data).expect("written");
    if Header::read(dir.path()).is_ok() {
        let _ = medsim::internals::output::scale::shards(&[dir.path().to_path_buf()]);
    }
    let manifest = dir.path().join("manifest.json");
    std::fs::write(&manifest, data).expect("written");
    let _ = medsim::internals::output::manifest::Manifest::read(&manifest);
});
