// Stage: each replicate's own CR1 standard errors of the combinations
// sum_i w_i a_i b_i of StatLayout::se_targets (each a_j b_j, the indirect
// effect, the contrasts; studentized intervals), one replicate per
// invocation, as the CPU engine computes them (src/engine.rs,
// `studentize`): through the delta method, se^2 = sum_g w_g t_g^2 with
// t_g = sum_i w_i (b_i sqrt(f_a_i) psi_g,a_i + a_i sqrt(f_b_i) psi_g,b_i). Written as the change from the
// full sample's: with t = t_hat + dt (t_hat from the host in f64, dt from
// the coefficient changes and the influence GEMM's change of psi),
// d_j = se_j^2 - se_hat_j^2 = sum_g (w_g - 1) t_hat^2 + w_g (2 t_hat dt +
// dt^2): small terms only, so f32 keeps the spread of the jackknife's
// standard errors; the host adds se_hat_j^2 in f64.

// #include "decode.wgsl"

struct Params {
    nb: u32,
    g: u32,
    m: u32,
    // Reals per replicate of `deltas`: 2m + 2 coefficient changes, then the
    // changes of the squared standard errors this stage writes.
    stride: u32,
    // Decoding of the weights minus one (decode.wgsl).
    decode_mode: u32,
    n_strata: u32,
    n_targets: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> psi: array<Real>;
@group(0) @binding(4) var<storage, read_write> deltas: array<Real>;
// theta_hat (2m + 2: a_j, b_j, c, c'), then sqrt(f_u) for the 2m
// coefficients, f_u the CR1 factor of the coefficient's equation (the meat
// is scaled by sqrt(f_u f_v), which factorises).
@group(0) @binding(7) var<storage, read> fixed: array<Real>;
// The full sample's cluster influences on (a_1..a_m, b_1..b_m), G x 2m:
// psi_g = psi_hat_g + the GEMM's change.
@group(0) @binding(8) var<storage, read> psi_hat: array<Real>;
// The full sample's t_g of each target, G x n_targets.
@group(0) @binding(9) var<storage, read> t_hat: array<Real>;
// Each target's weights over the mediators, n_targets x m.
@group(0) @binding(10) var<storage, read> targets: array<Real>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= params.nb) {
        return;
    }
    let m = params.m;
    let d = 2u * m;
    let n_coef = d + 2u;
    let out = r * params.stride;
    if (!(deltas[out] == deltas[out])) {
        for (var j = 0u; j < params.n_targets; j++) {
            deltas[out + n_coef + j] = deltas[out];
        }
        return;
    }
    let cols = params.nb * d;
    for (var j = 0u; j < params.n_targets; j++) {
        var acc = Real(0.0);
        for (var c = 0u; c < params.g; c++) {
            let w1 = decode_weight(params.decode_mode, codes[r * params.g + c], r, c, params.g, params.n_strata);
            let base = c * cols + r * d;
            let hat = c * d;
            var dt = Real(0.0);
            for (var i = 0u; i < m; i++) {
                let wi = targets[j * m + i];
                if (wi == Real(0.0)) {
                    continue;
                }
                // a_i: gradient b_i; b_i: gradient a_i (full sample + change).
                let sa = fixed[n_coef + i];
                let sb = fixed[n_coef + m + i];
                let db = deltas[out + m + i];
                let da = deltas[out + i];
                dt += wi * sa * (db * psi_hat[hat + i] + (fixed[m + i] + db) * psi[base + i]);
                dt += wi * sb * (da * psi_hat[hat + m + i] + (fixed[i] + da) * psi[base + m + i]);
            }
            let th = t_hat[c * params.n_targets + j];
            acc += w1 * th * th + (w1 + Real(1.0)) * (Real(2.0) * th + dt) * dt;
        }
        deltas[out + n_coef + j] = acc;
    }
}
