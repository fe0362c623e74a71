// Stage: one replicate per invocation, from its whitened Gram deviation E
// (packed, the GEMM's output with weights minus one; the replicate's Gram is
// I + E) to the changes of the reported coefficients a_j, b_j, c, c'
// (src/whiten.rs explains the algebra and holds the f64 reference,
// `Whitened::deltas`, step for step). In Real (f32, or f64 where the adapter
// has it). Every quantity is of the size of the bootstrap spread, so f32
// rounding stays far below it.

// #include "real.wgsl"

struct Params {
    nb: u32,
    q: u32,
    n_coef: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> e: array<Real>;
// Per coefficient: k (regressors 0..k), i (the column whose coefficient it
// is), t (the dependent column), unused.
@group(0) @binding(2) var<storage, read> coefs: array<vec4<u32>>;
// Per coefficient: the ratio to the units of the data.
@group(0) @binding(3) var<storage, read> scales: array<Real>;
// Row-major q x q: L, the full-sample Cholesky factor, then L^{-1}.
@group(0) @binding(4) var<storage, read> factor: array<Real>;
@group(0) @binding(5) var<storage, read> inverse: array<Real>;
@group(0) @binding(6) var<storage, read_write> deltas: array<Real>;
// Scratch, element-major (entry x of replicate r at x * nb + r, so that
// neighbouring invocations touch neighbouring words): the packed lower
// triangle of the factor of (I + E) over the ko = q - 1 regressors, then
// ko reciprocal diagonals, then ko entries of w. Per-invocation arrays
// would do, but make software rasterisers (lavapipe) compile for minutes.
@group(0) @binding(7) var<storage, read_write> work: array<Real>;

var<private> row: u32;
var<private> base: u32;

// E[i][j] of this replicate, packed upper triangle.
fn at(i: u32, j: u32) -> Real {
    let a = min(i, j);
    let b = max(i, j);
    return e[base + (a * (2u * params.q + 1u - a)) / 2u + b - a];
}

// Scratch positions of this replicate.
fn lo(i: u32, j: u32) -> u32 {
    return ((i * (i + 1u)) / 2u + j) * params.nb + row;
}
fn diag_at(j: u32) -> u32 {
    let ko = params.q - 1u;
    return ((ko * (ko + 1u)) / 2u + j) * params.nb + row;
}
fn w_at(j: u32) -> u32 {
    let ko = params.q - 1u;
    return ((ko * (ko + 1u)) / 2u + ko + j) * params.nb + row;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    row = gid.x;
    if (row >= params.nb) {
        return;
    }
    let q = params.q;
    let ko = q - 1u;
    base = row * (q * (q + 1u) / 2u);
    let out = row * params.n_coef;
    for (var i = 0u; i < ko; i++) {
        for (var j = 0u; j <= i; j++) {
            work[lo(i, j)] = at(i, j) + select(Real(0.0), Real(1.0), i == j);
        }
    }
    for (var j = 0u; j < ko; j++) {
        let d = work[lo(j, j)];
        if (!(d > Real(0.0))) {
            for (var o = 0u; o < params.n_coef; o++) {
                deltas[out + o] = Real(bitcast<f32>(0x7fc00000u));
            }
            return;
        }
        let diag = sqrt(d);
        let inv = Real(1.0) / diag;
        work[lo(j, j)] = diag;
        work[diag_at(j)] = inv;
        for (var i = j + 1u; i < ko; i++) {
            work[lo(i, j)] *= inv;
        }
        for (var i = j + 1u; i < ko; i++) {
            let lij = work[lo(i, j)];
            for (var c = j + 1u; c <= i; c++) {
                work[lo(i, c)] -= lij * work[lo(c, j)];
            }
        }
    }
    for (var o = 0u; o < params.n_coef; o++) {
        let coef = coefs[o];
        let k = coef.x;
        let col = coef.y;
        let t = coef.z;
        // w = (I + E)_kk^{-1} l_col, l_col[u] = (L^{-1})[u][col].
        for (var u = 0u; u < k; u++) {
            var s = Real(0.0);
            for (var v = 0u; v < u; v++) {
                s += work[lo(u, v)] * work[w_at(v)];
            }
            work[w_at(u)] = (inverse[u * q + col] - s) * work[diag_at(u)];
        }
        for (var uu = 0u; uu < k; uu++) {
            let u = k - 1u - uu;
            var s = Real(0.0);
            for (var v = u + 1u; v < k; v++) {
                s += work[lo(v, u)] * work[w_at(v)];
            }
            work[w_at(u)] = (work[w_at(u)] - s) * work[diag_at(u)];
        }
        var delta = Real(0.0);
        for (var s = k; s <= t; s++) {
            var d = Real(0.0);
            for (var u = 0u; u < k; u++) {
                d += work[w_at(u)] * at(u, s);
            }
            delta += factor[t * q + s] * d;
        }
        deltas[out + o] = delta * scales[o];
    }
}
