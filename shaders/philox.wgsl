// Philox4x32-10 and the replicate word stream: the same layout as src/rng.rs
// (key = seed, counter = (replicate lo, block, tag, replicate hi)).
// Included by the stages that draw random numbers.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// High 32 bits of a * b, from 16-bit halves (WGSL has no 64-bit integers).
fn mulhi(a: u32, b: u32) -> u32 {
    let al = a & 0xffffu;
    let ah = a >> 16u;
    let bl = b & 0xffffu;
    let bh = b >> 16u;
    let ll = al * bl;
    let lh = al * bh;
    let hl = ah * bl;
    let hh = ah * bh;
    let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    return hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k.x += PHILOX_W0;
            k.y += PHILOX_W1;
        }
        let hi0 = mulhi(PHILOX_M0, c.x);
        let lo0 = PHILOX_M0 * c.x;
        let hi1 = mulhi(PHILOX_M1, c.z);
        let lo1 = PHILOX_M1 * c.z;
        c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// The words of one replicate's stream, in order (src/rng.rs WordStream).
struct Stream {
    seed: vec2<u32>,
    replicate: vec2<u32>,
    tag: u32,
    block: u32,
    next: u32,
    words: vec4<u32>,
}

fn stream_new(seed: vec2<u32>, replicate: vec2<u32>, tag: u32) -> Stream {
    return Stream(seed, replicate, tag, 0u, 4u, vec4<u32>(0u));
}

fn stream_word(s: ptr<function, Stream>) -> u32 {
    if ((*s).next == 4u) {
        (*s).words = philox4x32_10(vec4<u32>((*s).replicate.x, (*s).block, (*s).tag, (*s).replicate.y), (*s).seed);
        (*s).block += 1u;
        (*s).next = 0u;
    }
    let w = (*s).words[(*s).next];
    (*s).next += 1u;
    return w;
}

// Uniform integer below n: Lemire's multiply-shift with rejection,
// threshold = 2^32 mod n.
fn stream_below(s: ptr<function, Stream>, n: u32, threshold: u32) -> u32 {
    loop {
        let w = stream_word(s);
        if (w * n >= threshold) {
            return mulhi(w, n);
        }
    }
    return 0u; // not reached: the loop only ends by returning
}
