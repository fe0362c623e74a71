// Stage: the adapter's measured arithmetic peak, for `medsim bench`'s
// fraction of peak: every invocation runs `params.iterations` rounds of
// eight independent fused multiply-add chains in Real (16 flops a round)
// and writes their sum, so that nothing is optimised away.

// #include "real.wgsl"

struct Params {
    iterations: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<Real>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let x = Real(i & 1023u) * Real(1e-6);
    var a0 = x;
    var a1 = x + Real(0.1);
    var a2 = x + Real(0.2);
    var a3 = x + Real(0.3);
    var a4 = x + Real(0.4);
    var a5 = x + Real(0.5);
    var a6 = x + Real(0.6);
    var a7 = x + Real(0.7);
    let m = Real(0.9999999);
    let c = Real(1e-7);
    for (var k = 0u; k < params.iterations; k++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    out[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
