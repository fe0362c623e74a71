//! Fuzz target: arbitrary bytes as a stored segment of a checkpoint or
//! shard (under a valid segment name), read as a merge reads it (a damaged
//! segment refused) and as a resume reads it (removed and recomputed), then
//! every stored row served through a stream. Half the inputs get a right
//! checksum, so that the reading behind it is explored too. Any input may
//! be refused; none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medsim::internals::resample::checkpoint::Store;
use medsim::internals::resample::engine::{Backend, Engine};
use medsim::internals::model::replicate::StatLayout;

/// Replicate r's statistics are all r.
struct Rows;

impl Engine for Rows {
    fn backend(&self) -> Backend {
        Backend::cpu()
    }
    fn layout(&self) -> StatLayout {
        StatLayout {
            mediators: 1,
            studentized: false,
            sensitivity: 0,
        }
    }
    fn compute(&self, start: u64, out: &mut [f64]) -> medsim::Result<u64> {
        let n = self.layout().len();
        for (i, row) in out.chunks_mut(n).enumerate() {
            row.fill((start + i as u64) as f64);
        }
        Ok(0)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    // The name claims replicates 0..N of stream 0, N from the first byte.
    let to = 1 + (pick % 8) as u64;
    let name = format!("s0000-{:015}-{:015}.bin", 0, to);
    // Half the inputs carry a right checksum, so that what lies behind it
    // (header, length, rows served) is explored too.
    let mut bytes = bytes.to_vec();
    if pick & 0x80 != 0 && bytes.len() >= 4 {
        let body = bytes.len() - 4;
        let crc = crc32c::crc32c(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
    }
    std::fs::write(dir.path().join(name), &bytes).expect("written");
    let total = 16;
    if let Ok(merged) = Store::merge(&[dir.path().to_path_buf()], None) {
        if let Ok(stream) = merged.stream(&Rows, total) {
            let mut out = vec![0.0; to as usize * Rows.layout().len()];
            let _ = stream.compute(0, &mut out);
        }
    }
    if let Ok(resumed) = Store::open(dir.path(), std::time::Duration::MAX, None, true) {
        if let Ok(stream) = resumed.stream(&Rows, total) {
            let mut out = vec![0.0; total as usize * Rows.layout().len()];
            let _ = stream.compute(0, &mut out);
        }
    }
});
