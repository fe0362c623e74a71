// Stage: the restricted wild cluster bootstrap (WCR) t statistic of one
// coefficient, one replicate per invocation, from the GEMM of the wild
// weights with [C' | p] (src/wild.rs has the algebra, after Roodman et al.
// 2019): numerator row[G] = sum_h v_h p_h, cluster scores z_c = v_c p_c -
// row[c], t = numerator / sqrt(ssc sum_c z_c^2). The host counts
// |t| >= |t_observed|.

// #include "decode.wgsl"

struct Params {
    nb: u32,
    g: u32,
    decode_mode: u32,
    n_strata: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> prod: array<Real>;
@group(0) @binding(4) var<storage, read_write> t: array<Real>;
// p (G values), then the equation's CR1 factor.
@group(0) @binding(7) var<storage, read> p: array<Real>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= params.nb) {
        return;
    }
    let g = params.g;
    let row = r * (g + 1u);
    var ss = Real(0.0);
    for (var c = 0u; c < g; c++) {
        let v = decode_weight(params.decode_mode, codes[r * g + c], r, c, g, params.n_strata);
        let z = v * p[c] - prod[row + c];
        ss += z * z;
    }
    t[r] = prod[row + g] / sqrt(p[g] * ss);
}
