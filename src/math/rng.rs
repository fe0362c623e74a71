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
/// Stream tag of the cluster weights of a resampling replicate.
pub const STREAM_WEIGHTS: u32 = 0x5754_0001;
/// Stream tag of the unit permutation of a permutation replicate.
pub const STREAM_PERMUTATION: u32 = 0x5045_0001;
/// Stream tag of the shuffle of group labels (`label_test`).
pub const STREAM_LABELS: u32 = 0x4c41_0001;
/// Stream tag of a simulation study's datasets (`simulate`).
pub const STREAM_SIMULATION: u32 = 0x5349_0001;
/// Stream tag of the units drawn by the residual bootstrap of the threshold
/// model's F tests (`resample::threshold`).
pub const STREAM_THRESHOLD: u32 = 0x5448_0001;

/// The 32-bit words of one replicate's stream, in order: word `k` is word
/// `k % 4` of block `k / 4`. Every derived draw below consumes whole words
/// from such a stream, so a replicate's draws are a pure function of
/// `(seed, replicate, tag)` and the order in which the scheme asks for them.
#[derive(Debug, Clone)]
pub struct WordStream {
    seed: u64,
    replicate: u64,
    tag: u32,
    block: u32,
    words: [u32; 4 * LANES],
    next: usize,
}

/// Blocks computed together by [`WordStream`] (a speed detail: the words are
/// the same as one block at a time): one AVX-512 register of counters.
const LANES: usize = 16;

/// `LANES` consecutive blocks `first..first + LANES` of one replicate's
/// stream, as 4 * LANES words in stream order. The rounds run across the
/// blocks in lockstep so that the compiler can vectorise them.
#[inline(always)]
fn blocks(seed: u64, replicate: u64, first: u32, tag: u32) -> [u32; 4 * LANES] {
    let mut c0 = [replicate as u32; LANES];
    let mut c1 = [0u32; LANES];
    let mut c2 = [tag; LANES];
    let mut c3 = [(replicate >> 32) as u32; LANES];
    for (i, c) in c1.iter_mut().enumerate() {
        *c = first.wrapping_add(i as u32);
    }
    let mut k = [seed as u32, (seed >> 32) as u32];
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        for i in 0..LANES {
            let p0 = (M0 as u64) * (c0[i] as u64);
            let p1 = (M1 as u64) * (c2[i] as u64);
            let n0 = ((p1 >> 32) as u32) ^ c1[i] ^ k[0];
            let n2 = ((p0 >> 32) as u32) ^ c3[i] ^ k[1];
            c1[i] = p1 as u32;
            c3[i] = p0 as u32;
            c0[i] = n0;
            c2[i] = n2;
        }
    }
    let mut out = [0u32; 4 * LANES];
    for i in 0..LANES {
        out[4 * i] = c0[i];
        out[4 * i + 1] = c1[i];
        out[4 * i + 2] = c2[i];
        out[4 * i + 3] = c3[i];
    }
    out
}

impl WordStream {
    /// The stream of `replicate` under `tag`.
    pub fn new(seed: u64, replicate: u64, tag: u32) -> Self {
        WordStream {
            seed,
            replicate,
            tag,
            block: 0,
            words: [0; 4 * LANES],
            next: 4 * LANES,
        }
    }

    /// The next word.
    #[inline(always)]
    pub fn word(&mut self) -> u32 {
        if self.next == 4 * LANES {
            self.refill();
        }
        let w = self.words[self.next];
        self.next += 1;
        w
    }

    /// The next `LANES` blocks. Never inlined: inlined into a caller's loop,
    /// the rounds' lanes competed with the loop for registers and a pairs
    /// replicate's weights took three times as long (`medsim bench
    /// --stages`).
    ///
    /// Written out for AVX-512 and AVX2 too, chosen at run time where the
    /// processor has them: integer work, the same words either way (the
    /// compiler's own vectorisation of `blocks` spent two thirds of its
    /// instructions moving lanes about).
    #[inline(never)]
    fn refill(&mut self) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature was detected on this processor.
                self.words =
                    unsafe { simd::blocks_avx512(self.seed, self.replicate, self.block, self.tag) };
                return self.advance();
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the feature was detected on this processor.
                self.words =
                    unsafe { simd::blocks_avx2(self.seed, self.replicate, self.block, self.tag) };
                return self.advance();
            }
        }
        self.words = blocks(self.seed, self.replicate, self.block, self.tag);
        self.advance();
    }

    /// The next `out.len()` words, as many calls of [`WordStream::word`]
    /// would give them: for loops that then run without a call.
    pub fn fill(&mut self, out: &mut [u32]) {
        let mut out = out;
        while !out.is_empty() {
            if self.next == 4 * LANES {
                self.refill();
            }
            let take = out.len().min(4 * LANES - self.next);
            let (head, tail) = out.split_at_mut(take);
            head.copy_from_slice(&self.words[self.next..self.next + take]);
            self.next += take;
            out = tail;
        }
    }

    #[inline(always)]
    fn advance(&mut self) {
        self.block = self.block.wrapping_add(LANES as u32);
        self.next = 0;
    }

    /// Uniform integer in `[0, n)`, exactly, by Lemire's multiply-shift with
    /// rejection: `m = word * n` (64-bit); reject while the low half of `m`
    /// is below `2^32 mod n`; return the high half.
    #[inline]
    pub fn below(&mut self, n: u32) -> u32 {
        self.below_with(n, rejection_threshold(n))
    }

    /// [`WordStream::below`] with `rejection_threshold(n)` computed by the caller,
    /// for loops that draw many integers below the same n.
    #[inline(always)]
    pub fn below_with(&mut self, n: u32, threshold: u32) -> u32 {
        debug_assert!(n > 0 && threshold == rejection_threshold(n));
        loop {
            let m = (self.word() as u64) * (n as u64);
            if (m as u32) >= threshold {
                return (m >> 32) as u32;
            }
        }
    }

    /// Index into the tabulated distributions ([`exponential_table`],
    /// [`normal_table`]): the top [`TABLE_BITS`] bits of the next word.
    #[inline(always)]
    pub fn table_index(&mut self) -> usize {
        (self.word() >> (32 - TABLE_BITS)) as usize
    }

    /// Poisson(1) by inversion on integers: the next word `w` gives the
    /// smallest k with `w < POISSON1_THRESHOLDS[k]` (k = 12 past the table).
    #[inline(always)]
    pub fn poisson1(&mut self) -> u32 {
        let w = self.word();
        // The thresholds are sorted, so that k is the number of them <= w
        // (counted without branches).
        POISSON1_THRESHOLDS.iter().map(|&t| (t <= w) as u32).sum()
    }
}

/// `2^32 mod n`: Lemire's rejection bound for integers below n.
#[inline]
pub fn rejection_threshold(n: u32) -> u32 {
    n.wrapping_neg() % n
}

/// `floor(2^32 * P(Poisson(1) <= k))` for k = 0..11: integer thresholds, so
/// every backend inverts the same word to the same count.
pub const POISSON1_THRESHOLDS: [u32; 12] = poisson1_thresholds();

const fn poisson1_thresholds() -> [u32; 12] {
    // P(X <= k) = e^-1 sum_{i<=k} 1/i!, computed in f64 at compile time.
    let e_inv = 0.367_879_441_171_442_33_f64;
    let mut out = [0u32; 12];
    let mut term = e_inv;
    let mut cdf = 0.0;
    let mut k = 0;
    while k < 12 {
        if k > 0 {
            term /= k as f64;
        }
        cdf += term;
        let scaled = cdf * 4_294_967_296.0;
        out[k] = if scaled >= 4_294_967_295.0 {
            u32::MAX
        } else {
            scaled as u32
        };
        k += 1;
    }
    out
}

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

/// Bits of a word that index the tabulated exponential and normal draws.
pub const TABLE_BITS: u32 = 16;

/// Unit of the exponential table's fixed-point values.
pub const EXPONENTIAL_UNIT: f64 = 1.0 / (1u64 << 20) as f64;

/// Exp(1) over 2^16 equiprobable cells, as integers: entry i is the mean
/// of `-ln U` over `U in [i, i + 1) / 2^16`, in units of 2^-20, rounded.
/// A draw is `table[index]` for one word's top 16 bits. Integers make sums
/// of draws exact on every device, so the Bayesian bootstrap's weights
/// `n E_g / sum E` are the same numbers on the CPU and the GPU. The cell
/// means keep the mean at 1; the variance is 1 less the within-cell spread
/// (about 1e-4). Built from the pure-Rust `libm`, identical on every
/// platform.
pub fn exponential_table() -> &'static [u32] {
    static TABLE: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let n = 1usize << TABLE_BITS;
        let x_ln_x = |x: f64| if x == 0.0 { 0.0 } else { x * libm::log(x) };
        (0..n)
            .map(|i| {
                let (a, b) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
                // The integral of -ln u is u - u ln u.
                let mean = 1.0 - (x_ln_x(b) - x_ln_x(a)) * n as f64;
                libm::round(mean / EXPONENTIAL_UNIT) as u32
            })
            .collect()
    })
}

/// N(0, 1) over 2^16 equiprobable cells: entry i is the mean of Z over the
/// cell of probability `[i, i + 1) / 2^16`, `(phi(z_i) - phi(z_{i+1})) 2^16`
/// with `z_i` the `i / 2^16` quantile, mirrored so that the table is exactly
/// symmetric and rescaled to variance exactly 1. The wild bootstrap's
/// normal weights are `table[index]`: the same values on every device.
pub fn normal_table() -> &'static [f64] {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let n = 1usize << TABLE_BITS;
        let half = n / 2;
        let density = |z: f64| libm::exp(-0.5 * z * z) / (2.0 * std::f64::consts::PI).sqrt();
        // phi at the cell boundaries of the lower half: z_0 = -inf .. z_half = 0.
        let phi: Vec<f64> = (0..=half)
            .map(|i| match i {
                0 => 0.0,
                i if i == half => density(0.0),
                i => density(normal_quantile(i as f64 / n as f64)),
            })
            .collect();
        let lower: Vec<f64> = (0..half)
            .map(|i| (phi[i] - phi[i + 1]) * n as f64)
            .collect();
        let var = 2.0 * lower.iter().map(|v| v * v).sum::<f64>() / n as f64;
        let scale = 1.0 / var.sqrt();
        let lower: Vec<f64> = lower.iter().map(|v| v * scale).collect();
        lower
            .iter()
            .copied()
            .chain(lower.iter().rev().map(|v| -v))
            .collect()
    })
}

/// The standard normal quantile of `p` in (0, 1/2], by bisection on
/// `Phi(z) = erfc(-z / sqrt 2) / 2` (libm, which keeps relative precision in
/// the lower tail) until the bracket stops shrinking: slow (a hundred erfc
/// calls) but sure, and only the table needs it.
fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0f64, 0.0f64);
    loop {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            return mid;
        }
        if 0.5 * libm::erfc(-mid / std::f64::consts::SQRT_2) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
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

/// Philox rounds written out with x86 vector instructions, the counters'
/// four words each in one register across the blocks: 16 blocks at once with
/// AVX-512, two runs of 8 with AVX2. Each returns what [`blocks`] returns.
#[cfg(target_arch = "x86_64")]
mod simd {
    use super::{LANES, M0, M1, W0, W1};
    use std::arch::x86_64::*;

    /// The keys of the ten rounds: bumped by the Weyl constants before
    /// every round but the first.
    #[inline(always)]
    fn keys(seed: u64) -> [[u32; 2]; 10] {
        let mut k = [[seed as u32, (seed >> 32) as u32]; 10];
        for r in 1..10 {
            k[r] = [k[r - 1][0].wrapping_add(W0), k[r - 1][1].wrapping_add(W1)];
        }
        k
    }

    /// # Safety
    /// The processor must have AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn blocks_avx512(
        seed: u64,
        replicate: u64,
        first: u32,
        tag: u32,
    ) -> [u32; 4 * LANES] {
        const _: () = assert!(LANES == 16);
        let mut c0 = _mm512_set1_epi32(replicate as u32 as i32);
        let steps = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let mut c1 = _mm512_add_epi32(_mm512_set1_epi32(first as i32), steps);
        let mut c2 = _mm512_set1_epi32(tag as i32);
        let mut c3 = _mm512_set1_epi32((replicate >> 32) as u32 as i32);
        let (m0, m1) = (_mm512_set1_epi64(M0 as i64), _mm512_set1_epi64(M1 as i64));
        // Odd 32-bit lanes: the high halves of the 64-bit products.
        const ODD: u16 = 0xAAAA;
        for [k0, k1] in keys(seed) {
            let pe0 = _mm512_mul_epu32(c0, m0);
            let po0 = _mm512_mul_epu32(_mm512_srli_epi64::<32>(c0), m0);
            let pe1 = _mm512_mul_epu32(c2, m1);
            let po1 = _mm512_mul_epu32(_mm512_srli_epi64::<32>(c2), m1);
            let lo0 = _mm512_mask_blend_epi32(ODD, pe0, _mm512_slli_epi64::<32>(po0));
            let hi0 = _mm512_mask_blend_epi32(ODD, _mm512_srli_epi64::<32>(pe0), po0);
            let lo1 = _mm512_mask_blend_epi32(ODD, pe1, _mm512_slli_epi64::<32>(po1));
            let hi1 = _mm512_mask_blend_epi32(ODD, _mm512_srli_epi64::<32>(pe1), po1);
            let n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32(k0 as i32));
            let n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32(k1 as i32));
            c1 = lo1;
            c3 = lo0;
            c0 = n0;
            c2 = n2;
        }
        // Block i's four words together: c0[i], c1[i], c2[i], c3[i].
        let t0 = _mm512_unpacklo_epi32(c0, c1);
        let t1 = _mm512_unpackhi_epi32(c0, c1);
        let t2 = _mm512_unpacklo_epi32(c2, c3);
        let t3 = _mm512_unpackhi_epi32(c2, c3);
        // Per 128-bit lane l: u0 holds block 4l, u1 4l + 1, u2 4l + 2,
        // u3 4l + 3.
        let u0 = _mm512_unpacklo_epi64(t0, t2);
        let u1 = _mm512_unpackhi_epi64(t0, t2);
        let u2 = _mm512_unpacklo_epi64(t1, t3);
        let u3 = _mm512_unpackhi_epi64(t1, t3);
        let mut lanes = [[0u32; 16]; 4];
        for (out, u) in lanes.iter_mut().zip([u0, u1, u2, u3]) {
            // SAFETY: `out` holds sixteen u32.
            unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), u) };
        }
        let mut words = [0u32; 4 * LANES];
        for l in 0..4 {
            for (j, lane) in lanes.iter().enumerate() {
                let block = 4 * l + j;
                words[4 * block..4 * block + 4].copy_from_slice(&lane[4 * l..4 * l + 4]);
            }
        }
        words
    }

    /// # Safety
    /// The processor must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn blocks_avx2(
        seed: u64,
        replicate: u64,
        first: u32,
        tag: u32,
    ) -> [u32; 4 * LANES] {
        let mut words = [0u32; 4 * LANES];
        for (half, out) in words.chunks_exact_mut(32).enumerate() {
            out.copy_from_slice(&eight(
                seed,
                replicate,
                first.wrapping_add(8 * half as u32),
                tag,
            ));
        }
        words
    }

    #[target_feature(enable = "avx2")]
    fn eight(seed: u64, replicate: u64, first: u32, tag: u32) -> [u32; 32] {
        let mut c0 = _mm256_set1_epi32(replicate as u32 as i32);
        let steps = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mut c1 = _mm256_add_epi32(_mm256_set1_epi32(first as i32), steps);
        let mut c2 = _mm256_set1_epi32(tag as i32);
        let mut c3 = _mm256_set1_epi32((replicate >> 32) as u32 as i32);
        let (m0, m1) = (_mm256_set1_epi64x(M0 as i64), _mm256_set1_epi64x(M1 as i64));
        for [k0, k1] in keys(seed) {
            let pe0 = _mm256_mul_epu32(c0, m0);
            let po0 = _mm256_mul_epu32(_mm256_srli_epi64::<32>(c0), m0);
            let pe1 = _mm256_mul_epu32(c2, m1);
            let po1 = _mm256_mul_epu32(_mm256_srli_epi64::<32>(c2), m1);
            let lo0 = _mm256_blend_epi32::<0xAA>(pe0, _mm256_slli_epi64::<32>(po0));
            let hi0 = _mm256_blend_epi32::<0xAA>(_mm256_srli_epi64::<32>(pe0), po0);
            let lo1 = _mm256_blend_epi32::<0xAA>(pe1, _mm256_slli_epi64::<32>(po1));
            let hi1 = _mm256_blend_epi32::<0xAA>(_mm256_srli_epi64::<32>(pe1), po1);
            let n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(k0 as i32));
            let n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32(k1 as i32));
            c1 = lo1;
            c3 = lo0;
            c0 = n0;
            c2 = n2;
        }
        let t0 = _mm256_unpacklo_epi32(c0, c1);
        let t1 = _mm256_unpackhi_epi32(c0, c1);
        let t2 = _mm256_unpacklo_epi32(c2, c3);
        let t3 = _mm256_unpackhi_epi32(c2, c3);
        // Per 128-bit half h: u0 holds block 4h, u1 4h + 1, u2 4h + 2,
        // u3 4h + 3.
        let u0 = _mm256_unpacklo_epi64(t0, t2);
        let u1 = _mm256_unpackhi_epi64(t0, t2);
        let u2 = _mm256_unpacklo_epi64(t1, t3);
        let u3 = _mm256_unpackhi_epi64(t1, t3);
        let mut words = [0u32; 32];
        let out = [
            _mm256_permute2x128_si256::<0x20>(u0, u1),
            _mm256_permute2x128_si256::<0x20>(u2, u3),
            _mm256_permute2x128_si256::<0x31>(u0, u1),
            _mm256_permute2x128_si256::<0x31>(u2, u3),
        ];
        for (chunk, v) in words.chunks_exact_mut(8).zip(out) {
            // SAFETY: the chunk holds eight u32.
            unsafe { _mm256_storeu_si256(chunk.as_mut_ptr().cast(), v) };
        }
        words
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

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_rounds_give_the_scalar_words() {
        let cases = [
            (0, 0, 0, 0),
            (5, (7 << 32) | 9, 16, 77),
            (u64::MAX, u64::MAX, u32::MAX - 5, u32::MAX),
            (0x1234_5678_9abc_def0, 123_456_789, 1 << 20, STREAM_WEIGHTS),
        ];
        let mut checked = 0;
        for (seed, replicate, first, tag) in cases {
            let want: Vec<u32> = (0..LANES as u32)
                .flat_map(|k| block(seed, replicate, first.wrapping_add(k), tag))
                .collect();
            assert_eq!(blocks(seed, replicate, first, tag).to_vec(), want);
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the feature was detected on this processor.
                let got = unsafe { simd::blocks_avx2(seed, replicate, first, tag) };
                assert_eq!(got.to_vec(), want, "avx2");
                checked += 1;
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature was detected on this processor.
                let got = unsafe { simd::blocks_avx512(seed, replicate, first, tag) };
                assert_eq!(got.to_vec(), want, "avx512");
                checked += 1;
            }
        }
        eprintln!("{checked} vector runs checked");
    }

    #[test]
    fn filled_words_are_the_stream_in_order() {
        let mut one = WordStream::new(3, 11, 5);
        let mut bulk = WordStream::new(3, 11, 5);
        for n in [0, 1, 3, 64, 65, 200, 7] {
            let want: Vec<u32> = (0..n).map(|_| one.word()).collect();
            let mut got = vec![0; n];
            bulk.fill(&mut got);
            assert_eq!(got, want, "{n} words");
        }
        assert_eq!(bulk.word(), one.word());
    }

    #[test]
    fn word_stream_walks_the_blocks_in_order() {
        let mut s = WordStream::new(5, (7 << 32) | 9, 77);
        for k in 0..40u32 {
            let want = block(5, (7 << 32) | 9, k, 77);
            let got = [s.word(), s.word(), s.word(), s.word()];
            assert_eq!(got, want, "block {k}");
        }
    }

    #[test]
    fn bounded_integers_are_uniform() {
        let n = 7u32;
        let mut counts = [0u32; 7];
        let mut s = WordStream::new(1, 0, 3);
        let draws = 70_000;
        for _ in 0..draws {
            counts[s.below(n) as usize] += 1;
        }
        // Each count ~ Binomial(70000, 1/7): mean 10000, sd ~ 93.
        for c in counts {
            assert!((c as i64 - 10_000).abs() < 500, "{counts:?}");
        }
    }

    #[test]
    fn poisson_thresholds_and_moments() {
        assert!(POISSON1_THRESHOLDS.windows(2).all(|w| w[0] <= w[1]));
        // P(X = 0) = e^-1
        assert_eq!(
            POISSON1_THRESHOLDS[0],
            (0.367_879_441_171_442_33 * 4_294_967_296.0) as u32
        );
        let mut s = WordStream::new(2, 0, 3);
        let n = 200_000;
        let (mut s1, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let k = s.poisson1() as f64;
            s1 += k;
            s2 += k * k;
        }
        let mean = s1 / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(
            (mean - 1.0).abs() < 0.01 && (var - 1.0).abs() < 0.02,
            "{mean} {var}"
        );
    }

    #[test]
    fn the_exponential_table_is_exp1_in_equiprobable_cells() {
        let t = exponential_table();
        let n = t.len() as f64;
        let mean = t.iter().map(|&v| v as f64 * EXPONENTIAL_UNIT).sum::<f64>() / n;
        // Cell means keep the mean exactly (up to the 2^-21 rounding).
        assert!((mean - 1.0).abs() < 1e-6, "{mean}");
        // The variance loses only the within-cell spread (Exp(1): 1).
        let var = t
            .iter()
            .map(|&v| (v as f64 * EXPONENTIAL_UNIT - 1.0).powi(2))
            .sum::<f64>()
            / n;
        // scipy: 0.999983515536988 before rounding to 2^-20.
        assert!((var - 0.999983515536988).abs() < 1e-8, "{var}");
        assert!(
            t.windows(2).all(|w| w[0] > w[1]),
            "decreasing in the uniform"
        );
        assert!(*t.last().unwrap() > 0 && t[0] < 1 << 24);
        // Cell 0 holds U < 2^-16: mean 1 + 16 ln 2.
        let first = t[0] as f64 * EXPONENTIAL_UNIT;
        assert!(
            (first - (1.0 + 16.0 * std::f64::consts::LN_2)).abs() < 1e-6,
            "{first}"
        );
    }

    #[test]
    fn the_normal_table_is_symmetric_with_unit_variance() {
        let t = normal_table();
        let n = t.len();
        for i in 0..n / 2 {
            assert_eq!(t[i], -t[n - 1 - i]);
        }
        let var = t.iter().map(|v| v * v).sum::<f64>() / n as f64;
        assert!((var - 1.0).abs() < 1e-12, "{var}");
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        // Reference values from scipy.stats.norm (ppf, pdf) with the same
        // construction: the extreme cell's mean -phi(z)/p at z = ppf(2^-16)
        // = -4.1696, and the cell just above the median.
        assert!((t[0] + 4.387514637315186).abs() < 1e-12, "{}", t[0]);
        assert!(
            (t[n / 2] - 1.9124068390687257e-5).abs() < 1e-17,
            "{}",
            t[n / 2]
        );
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
