//! What medsim was built from, and the digest every stored file carries:
//! the manifest of a run and the header of a checkpoint both record them.

use sha2::{Digest, Sha256};

/// The git revision medsim was built from (`-dirty` with uncommitted
/// changes; `unknown` outside a git checkout).
pub const GIT_REVISION: &str = env!("MEDSIM_GIT_REVISION");

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
