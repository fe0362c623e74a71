// Stage: one replicate per invocation, from its packed Gram row (the GEMM's
// output over every packed entry) to the replicate statistics of
// src/replicate.rs (same layout: a_j, b_j, a_j b_j, c, c', indirect,
// proportion), in Real (f32, or f64 where the adapter has it): right-looking Cholesky of the regressor block with the
// outcome row carried along, then one back substitution per equation.

// #include "real.wgsl"

struct Params {
    nb: u32,
    q: u32,
    // Regressors of the total and mediator equations (treatment, controls, nuisance).
    k0: u32,
    m: u32,
}

const MAX_Q: u32 = 48u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> gram: array<Real>;
// x_to_m[j], then m_to_y[j], then x_to_y: coefficient scales back to the
// units of the data.
@group(0) @binding(2) var<storage, read> scales: array<Real>;
@group(0) @binding(3) var<storage, read_write> stats: array<Real>;

var<private> l: array<Real, 2304>;
var<private> inv_diag: array<Real, 48>;
var<private> rhs: array<Real, 48>;

// Solve L_k' x = rhs[0..k] in place (leading k x k block of l).
fn back_substitute(k: u32) {
    let q = params.q;
    for (var ii = 0u; ii < k; ii++) {
        let i = k - 1u - ii;
        let xi = rhs[i] * inv_diag[i];
        rhs[i] = xi;
        for (var j = 0u; j < i; j++) {
            rhs[j] -= l[i * q + j] * xi;
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= params.nb) {
        return;
    }
    let q = params.q;
    let m = params.m;
    let k0 = params.k0;
    let ko = q - 1u;
    let y = q - 1u;
    let p = q * (q + 1u) / 2u;
    let n_stats = 3u * m + 4u;
    let base = r * p;
    var k = 0u;
    for (var i = 0u; i < q; i++) {
        for (var j = i; j < q; j++) {
            l[j * q + i] = gram[base + k];
            k++;
        }
    }
    for (var j = 0u; j < ko; j++) {
        let d = l[j * q + j];
        if (!(d > Real(0.0))) {
            for (var s = 0u; s < n_stats; s++) {
                stats[r * n_stats + s] = Real(bitcast<f32>(0x7fc00000u));
            }
            return;
        }
        let diag = sqrt(d);
        let inv = Real(1.0) / diag;
        l[j * q + j] = diag;
        inv_diag[j] = inv;
        for (var i = j + 1u; i < q; i++) {
            let v = l[i * q + j] * inv;
            l[i * q + j] = v;
            rhs[i] = v;
        }
        for (var i = j + 1u; i < q; i++) {
            let lij = rhs[i];
            for (var c = j + 1u; c <= i; c++) {
                l[i * q + c] -= lij * rhs[c];
            }
        }
    }
    let out = r * n_stats;
    // Total effect.
    for (var i = 0u; i < k0; i++) {
        rhs[i] = l[y * q + i];
    }
    back_substitute(k0);
    let x_to_y = scales[2u * m];
    let c = rhs[0] * x_to_y;
    // Mediator equations.
    for (var j = 0u; j < m; j++) {
        for (var i = 0u; i < k0; i++) {
            rhs[i] = l[(k0 + j) * q + i];
        }
        back_substitute(k0);
        stats[out + j] = rhs[0] * scales[j];
    }
    // Outcome equation.
    for (var i = 0u; i < ko; i++) {
        rhs[i] = l[y * q + i];
    }
    back_substitute(ko);
    let c_prime = rhs[0] * x_to_y;
    var indirect = Real(0.0);
    for (var j = 0u; j < m; j++) {
        let b = rhs[k0 + j] * scales[m + j];
        stats[out + m + j] = b;
        let ab = stats[out + j] * b;
        stats[out + 2u * m + j] = ab;
        indirect += ab;
    }
    stats[out + 3u * m] = c;
    stats[out + 3u * m + 1u] = c_prime;
    stats[out + 3u * m + 2u] = indirect;
    stats[out + 3u * m + 3u] = indirect / c;
}
