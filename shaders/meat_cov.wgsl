// Stage: each replicate's change of the cluster-robust meat of its
// reported coefficients, for the studentized intervals of serial,
// moderated and interaction models (whose effects are polynomials in many
// coefficients): V = sum_g w_g psi_g psi_g', psi_g the replicate's cluster
// influences on the d coefficients. Written as the change from the full
// sample's, as meat.wgsl does: with psi = psi_hat + dpsi (psi_hat from the
// host, dpsi the influence GEMM's output), dV = sum_g (w_g - 1) psi_hat
// psi_hat' + w_g (psi_hat dpsi' + dpsi psi_hat' + dpsi dpsi'): small terms
// only, so f32 keeps the spread of the replicates' SEs. All of it in the
// basis that whitens the full sample's meat (psi -> L^{-1} psi, V_hat = L
// L'), where V_hat is the identity: an effect whose gradient cancels
// across correlated coefficients keeps its relative precision. The host
// adds V_hat in f64, applies the CR1 factors and the units, and takes each
// effect's SE as grad' V grad with its gradient at the replicate's
// coefficients (src/gpu/engine.rs, `Covariance`), as the CPU engine does.

// #include "decode.wgsl"

struct Params {
    nb: u32,
    g: u32,
    // Coefficients with influences per replicate (the solve's functionals
    // of every system, padding included).
    d: u32,
    // Reals per replicate of `deltas`: n_coef coefficient changes, then
    // the packed upper triangle of dV (d (d + 1) / 2) this stage writes.
    stride: u32,
    decode_mode: u32,
    n_strata: u32,
    n_coef: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
// The influence GEMM's change of psi: G x (nb d), whitened in place here.
@group(0) @binding(2) var<storage, read_write> psi: array<Real>;
@group(0) @binding(4) var<storage, read_write> deltas: array<Real>;
// The full sample's cluster influences, whitened, G x d (zero for padding).
@group(0) @binding(7) var<storage, read> psi_hat: array<Real>;
// L^{-1}, row-major d x d, lower triangular.
@group(0) @binding(8) var<storage, read> basis: array<Real>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= params.nb) {
        return;
    }
    let d = params.d;
    let out = r * params.stride;
    let first = out + params.n_coef;
    // A singular replicate (any system's): NaN throughout.
    var failed = false;
    for (var o = 0u; o < params.n_coef; o++) {
        failed = failed || !(deltas[out + o] == deltas[out + o]);
    }
    let n_out = d * (d + 1u) / 2u;
    if (failed) {
        for (var k = 0u; k < n_out; k++) {
            deltas[first + k] = Real(bitcast<f32>(0x7fc00000u));
        }
        return;
    }
    let cols = params.nb * d;
    // Each cluster's change into the whitened basis, in place: row a of
    // L^{-1} reads entries 0..=a only, so the last is written first.
    for (var c = 0u; c < params.g; c++) {
        let base = c * cols + r * d;
        for (var aa = 0u; aa < d; aa++) {
            let a = d - 1u - aa;
            var z = Real(0.0);
            for (var b = 0u; b <= a; b++) {
                z += basis[a * d + b] * psi[base + b];
            }
            psi[base + a] = z;
        }
    }
    var at = first;
    for (var a = 0u; a < d; a++) {
        for (var b = a; b < d; b++) {
            var acc = Real(0.0);
            for (var c = 0u; c < params.g; c++) {
                let w1 = decode_weight(params.decode_mode, codes[r * params.g + c], r, c, params.g, params.n_strata);
                let ha = psi_hat[c * d + a];
                let hb = psi_hat[c * d + b];
                let da = psi[c * cols + r * d + a];
                let db = psi[c * cols + r * d + b];
                acc += w1 * ha * hb + (w1 + Real(1.0)) * (ha * db + da * hb + da * db);
            }
            deltas[at] = acc;
            at++;
        }
    }
}
