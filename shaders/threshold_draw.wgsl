// Stage: a threshold test's residual-bootstrap draws (Hansen 1999) as the
// GEMM's codes, one replicate per invocation: unit i takes unit j_i's
// residual vector, j_i the i-th `below(units)` of the replicate's stream
// (seed, r, STREAM_THRESHOLD), as src/resample/threshold.rs draws it; the
// code of observation (i, t) is the observation (j_i, t), whose residual
// the GEMM reads from its table (so a replicate's row of the GEMM is its
// residual draw, times the grid's columns).

struct Params {
    nb: u32,
    units: u32,
    periods: u32,
    tag: u32,
    seed: vec2<u32>,
    start: vec2<u32>,
}

@group(0) @binding(0) var<uniform> params: Params;
// Each unit's observation in each period (units x periods).
@group(0) @binding(1) var<storage, read> slots: array<u32>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;

// #include "philox.wgsl"

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= params.nb) {
        return;
    }
    let units = params.units;
    let periods = params.periods;
    let lo = params.start.x + r;
    let carry = select(0u, 1u, lo < r);
    var s = stream_new(params.seed, vec2<u32>(lo, params.start.y + carry), params.tag);
    let threshold = (0u - units) % units;
    let base = r * units * periods;
    for (var i = 0u; i < units; i++) {
        let j = stream_below(&s, units, threshold);
        for (var t = 0u; t < periods; t++) {
            codes[base + slots[i * periods + t]] = slots[j * periods + t];
        }
    }
}
