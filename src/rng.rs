//! Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror and Shaw
//! 2011, the Random123 generator), and the derived uniforms and normals.
//!
//! # Stream layout (a compatibility promise)
//!
//! Every random draw medsim makes is a pure function of `(seed, replicate,
//! block, tag)`:
//!
//! * key     = `(seed as u32, (seed >> 32) as u32)`;
//! * counter = `(replicate as u32, block, tag, (replicate >> 32) as u32)`.
//!
//! `replicate` numbers the unit of work (a bootstrap replicate, a Monte Carlo
//! draw), `block` numbers successive groups of four 32-bit words within it,
//! and `tag` (one of the `STREAM_*` constants) keeps uses apart. Draw `r` is
//! therefore the same whatever the batch size, thread count or shard split,
//! and on every backend that implements this layout. Changing the layout or a
//! tag changes every published number: don't.

/// Stream tag of the Monte Carlo (parametric) interval of the indirect effect.
pub const STREAM_MONTE_CARLO: u32 = 0x4d43_0001;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = (a as u64) * (b as u64);
    ((p >> 32) as u32, p as u32)
}

/// One Philox4x32-10 block: four 32-bit words from a counter and a key.
#[inline]
pub fn philox4x32_10(counter: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = counter;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
    }
    c
}

/// The four words of block `block` of replicate `replicate` in stream `tag`.
#[inline]
pub fn block(seed: u64, replicate: u64, block: u32, tag: u32) -> [u32; 4] {
    philox4x32_10(
        [replicate as u32, block, tag, (replicate >> 32) as u32],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// Uniform on the open interval (0, 1) with 52 random bits taken from two
/// words: `(((hi << 20) ^ (lo >> 12)) + 0.5) * 2^-52`, exactly representable,
/// so never 0 and never 1 (with 53 bits, the top value would round to 1).
#[inline]
pub fn uniform_f64(hi: u32, lo: u32) -> f64 {
    let bits = ((hi as u64) << 20) ^ ((lo as u64) >> 12);
    (bits as f64 + 0.5) * (1.0 / 4_503_599_627_370_496.0)
}

/// Two independent standard normals from one Philox block, by Box-Muller on
/// the uniforms `u1 = uniform_f64(w0, w1)`, `u2 = uniform_f64(w2, w3)`:
/// `r = sqrt(-2 ln u1)`, returns `(r cos 2 pi u2, r sin 2 pi u2)`.
#[inline]
pub fn normal_pair(words: [u32; 4]) -> (f64, f64) {
    let u1 = uniform_f64(words[0], words[1]);
    let u2 = uniform_f64(words[2], words[3]);
    let r = (-2.0 * u1.ln()).sqrt();
    let (s, c) = (std::f64::consts::TAU * u2).sin_cos();
    (r * c, r * s)
}

/// Fill `out` with standard normals for one replicate: normals `2k` and
/// `2k + 1` come from block `k`.
pub fn normals(seed: u64, replicate: u64, tag: u32, out: &mut [f64]) {
    for (k, pair) in out.chunks_mut(2).enumerate() {
        let (z0, z1) = normal_pair(block(seed, replicate, k as u32, tag));
        pair[0] = z0;
        if pair.len() > 1 {
            pair[1] = z1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_matches_random123_known_answers() {
        assert_eq!(
            philox4x32_10([0, 0, 0, 0], [0, 0]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn uniforms_stay_inside_the_open_interval() {
        assert!(uniform_f64(0, 0) > 0.0);
        assert!(uniform_f64(u32::MAX, u32::MAX) < 1.0);
        assert_eq!(uniform_f64(0, 0), 2f64.powi(-53));
        assert_eq!(uniform_f64(u32::MAX, u32::MAX), 1.0 - 2f64.powi(-53));
    }

    #[test]
    fn normals_have_unit_moments() {
        let n = 200_000;
        let mut z = vec![0.0; 2];
        let (mut s1, mut s2) = (0.0, 0.0);
        for r in 0..n / 2 {
            normals(7, r as u64, STREAM_MONTE_CARLO, &mut z);
            for v in &z {
                s1 += v;
                s2 += v * v;
            }
        }
        let mean = s1 / n as f64;
        let var = s2 / n as f64 - mean * mean;
        // Standard errors are 1/sqrt(n) ~ 0.0022 and sqrt(2/n) ~ 0.0032.
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "var {var}");
    }

    #[test]
    fn a_draw_depends_only_on_seed_replicate_and_tag() {
        let mut a = vec![0.0; 5];
        let mut b = vec![0.0; 5];
        normals(42, 1_000_000_007, 3, &mut a);
        normals(42, 1_000_000_007, 3, &mut b);
        assert_eq!(a, b);
        normals(42, 1_000_000_008, 3, &mut b);
        assert_ne!(a, b);
        normals(43, 1_000_000_007, 3, &mut b);
        assert_ne!(a, b);
    }
}
