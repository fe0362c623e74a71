// Stage: one replicate per invocation, from its whitened Gram deviation E
// (packed, the GEMM's output with weights minus one; the replicate's Gram is
// I + E) to the changes of the reported coefficients a_j, b_j, c, c'
// (src/whiten.rs explains the algebra and holds the f64 reference,
// `Whitened::deltas`, step for step), and, for studentized intervals, the
// change of each replicate's influence functionals of a_j and b_j from the
// full sample's. In Real (f32, or f64 where the adapter has it). Every
// quantity is of the size of the bootstrap spread, so f32 rounding stays
// far below it. Where only the coefficients are asked, engines run the same
// operations written out for their model's shape instead, the factor in
// registers (src/gpu/solve_gen.rs); this stage is the general one and the
// reference.

// #include "real.wgsl"
// #include "packed.wgsl"
// #include "solve_params.wgsl"

@group(0) @binding(1) var<storage, read> e: array<Real>;
// Per coefficient: k (regressors 0..k), i (the column whose coefficient it
// is), t (the dependent column), and the number plus one of its path among
// the robustness values' (0: none).
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
// five vectors of ko: reciprocal diagonal, w, r, x, w - l. Per-invocation
// arrays would do, but make software rasterisers (lavapipe) compile for
// minutes.
@group(0) @binding(7) var<storage, read_write> work: array<Real>;
// Changes of the influence functionals from the full sample's, (nb n_func)
// rows (nb counting each replicate's systems) of systems q (q + 1) / 2:
// row r n_func + o holds the packed dc with psi_g = psi_hat_g + dc . T_g
// for coefficient o of row r, in its system's block of T_g.
@group(0) @binding(8) var<storage, read_write> functionals: array<Real>;

var<private> row: u32;
var<private> base: u32;
// Where this replicate's set's scales and q x q matrices begin.
var<private> set_scales: u32;
var<private> set_matrix: u32;
// Where this row's system's coefficients begin.
var<private> set_coefs: u32;

const DIAG: u32 = 0u;
const W: u32 = 1u;
const R: u32 = 2u;
const X: u32 = 3u;
const DW: u32 = 4u;

fn packed(i: u32, j: u32) -> u32 {
    return packed_index(i, j, params.q);
}

// E[i][j] of this replicate.
fn at(i: u32, j: u32) -> Real {
    return e[base + packed(i, j)];
}

// Scratch positions of this replicate.
fn lo(i: u32, j: u32) -> u32 {
    return ((i * (i + 1u)) / 2u + j) * params.nb + row;
}
fn slot(which: u32, j: u32) -> u32 {
    let ko = params.q - 1u;
    return ((ko * (ko + 1u)) / 2u + which * ko + j) * params.nb + row;
}

// Solve (I + E)_kk y = y in place for scratch vector `which`.
fn chol_solve(k: u32, which: u32) {
    for (var u = 0u; u < k; u++) {
        var s = Real(0.0);
        for (var v = 0u; v < u; v++) {
            s += work[lo(u, v)] * work[slot(which, v)];
        }
        work[slot(which, u)] = (work[slot(which, u)] - s) * work[slot(DIAG, u)];
    }
    for (var uu = 0u; uu < k; uu++) {
        let u = k - 1u - uu;
        var s = Real(0.0);
        for (var v = u + 1u; v < k; v++) {
            s += work[lo(v, u)] * work[slot(which, v)];
        }
        work[slot(which, u)] = (work[slot(which, u)] - s) * work[slot(DIAG, u)];
    }
}

// The outcome's (column q - 1) squared diagonal of the factor F of I + E,
// less one, from small terms only (1 + E would round it away in f32):
// E[y][y] - x.x with x = F^{-1} E[0..ko][y], left in scratch X.
fn outcome_deviation() -> Real {
    let y = params.q - 1u;
    let ko = params.q - 1u;
    var ss = Real(0.0);
    for (var u = 0u; u < ko; u++) {
        var s = at(u, y);
        for (var v = 0u; v < u; v++) {
            s -= work[lo(u, v)] * work[slot(X, v)];
        }
        let x = s * work[slot(DIAG, u)];
        work[slot(X, u)] = x;
        ss += x * x;
    }
    return at(y, y) - ss;
}

// The residual sum of squares of column t on columns 0..k (scaled units):
// |F_BB' l|^2 over B = k..=t, l = L[t][B], since the Schur complement of
// I + E on B given 0..k is F_BB F_BB'. The outcome on every other column
// (k = ko): (1 + its deviation) L[y][y]^2.
fn residual_ss(k: u32, t: u32) -> Real {
    let q = params.q;
    if (t == q - 1u) {
        let l = factor[set_matrix + t * q + t];
        return (Real(1.0) + outcome_deviation()) * l * l;
    }
    var ss = Real(0.0);
    for (var c = k; c <= t; c++) {
        var s = Real(0.0);
        for (var r = c; r <= t; r++) {
            s += work[lo(r, c)] * factor[set_matrix + t * q + r];
        }
        ss += s * s;
    }
    return ss;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    row = gid.x;
    if (row >= params.nb) {
        return;
    }
    let q = params.q;
    let ko = q - 1u;
    let p = q * (q + 1u) / 2u;
    base = row * p;
    // A replicate's systems write their coefficients one after the other,
    // then the replicate's other reals (the meat's) follow.
    let sys = max(params.systems, 1u);
    let out = (row / sys) * params.stride + (row % sys) * params.n_coef;
    if (params.per_set != 0u) {
        let which = row / params.per_set;
        set_scales = which * params.n_coef;
        set_matrix = which * q * q;
    }
    if (params.systems > 1u) {
        let which = row % params.systems;
        set_scales = which * params.n_coef;
        set_coefs = which * params.n_coef;
        set_matrix = which * q * q;
    }
    // Row by row (each entry's subtractions in the order c = 0, 1, .., the
    // same operations as the column-by-column update, so the same bits),
    // reading E where it is needed and writing each entry of the factor
    // once.
    for (var i = 0u; i < ko; i++) {
        for (var j = 0u; j <= i; j++) {
            var v = at(i, j) + select(Real(0.0), Real(1.0), i == j);
            for (var c = 0u; c < j; c++) {
                v -= work[lo(i, c)] * work[lo(j, c)];
            }
            if (j < i) {
                work[lo(i, j)] = v * work[slot(DIAG, j)];
                continue;
            }
            if (!(v > Real(0.0))) {
                for (var o = 0u; o < params.n_coef; o++) {
                    deltas[out + o] = Real(bitcast<f32>(0x7fc00000u));
                }
                return;
            }
            let diag = sqrt(v);
            work[lo(i, i)] = diag;
            work[slot(DIAG, i)] = Real(1.0) / diag;
        }
    }
    for (var o = 0u; o < params.n_coef; o++) {
        let coef = coefs[set_coefs + o];
        let k = coef.x;
        let col = coef.y;
        let t = coef.z;
        // w = (I + E)_kk^{-1} l_col, l_col[u] = (L^{-1})[u][col]; r_u =
        // sum_{s=k..=t} L[t][s] E[u][s]; delta = w . r.
        for (var u = 0u; u < k; u++) {
            work[slot(W, u)] = inverse[set_matrix + u * q + col];
            var ru = Real(0.0);
            for (var s = k; s <= t; s++) {
                ru += factor[set_matrix + t * q + s] * at(u, s);
            }
            work[slot(R, u)] = ru;
        }
        chol_solve(k, W);
        var delta = Real(0.0);
        for (var u = 0u; u < k; u++) {
            delta += work[slot(W, u)] * work[slot(R, u)];
        }
        let scale = scales[set_scales + o];
        deltas[out + o] = delta * scale;
        if (coef.w != 0u && params.rv_at != 0u) {
            // [A^{-1}]_jj = l . (I + E)_kk^{-1} l, l the column's row of
            // L^{-1}: RV's classical t is a function of the coefficient, it
            // and the equation's residual sum of squares.
            var a_jj = Real(0.0);
            for (var u = 0u; u < k; u++) {
                a_jj += work[slot(W, u)] * inverse[set_matrix + u * q + col];
            }
            let at_rv = out + params.rv_at + 2u * (coef.w - 1u);
            deltas[at_rv] = a_jj;
            deltas[at_rv + 1u] = residual_ss(k, t);
        }
        if (o < params.n_func) {
            // x = (I + E)_kk^{-1} r, the change of the equation's whitened
            // coefficients, and dw = w - l = -(I + E)_kk^{-1} E_kk l. The
            // functional is c = scale sum_u w_u (sum_{s=k..=t} L[t][s]
            // e(u, s) - sum_{v<k} x_v e(u, v)); the full sample's has w = l
            // and x = 0, so dc = scale (sum_u dw_u sum_s L[t][s] e(u, s)
            // - sum_u w_u sum_v x_v e(u, v)): small terms only.
            for (var u = 0u; u < k; u++) {
                work[slot(X, u)] = work[slot(R, u)];
                var y = Real(0.0);
                for (var v = 0u; v < k; v++) {
                    y -= at(u, v) * inverse[set_matrix + v * q + col];
                }
                work[slot(DW, u)] = y;
            }
            chol_solve(k, X);
            chol_solve(k, DW);
            // A row spans every system's packed T_g (the influence GEMM's
            // k), zero but in this row's system.
            let whole = (row * params.n_func + o) * p * sys;
            for (var i = 0u; i < p * sys; i++) {
                functionals[whole + i] = Real(0.0);
            }
            let f = whole + (row % sys) * p;
            for (var u = 0u; u < k; u++) {
                let dwu = work[slot(DW, u)] * scale;
                for (var s = k; s <= t; s++) {
                    functionals[f + packed(u, s)] += dwu * factor[set_matrix + t * q + s];
                }
                let wu = work[slot(W, u)] * scale;
                for (var v = 0u; v < k; v++) {
                    functionals[f + packed(u, v)] -= wu * work[slot(X, v)];
                }
            }
        }
    }
    if (params.kappa_at != 0u) {
        // The outcome's row of the factor F of I + E: x = F^{-1} E[0..ko][y],
        // its diagonal sqrt(1 + E[y][y] - x.x); the mediator's is F[m][m],
        // m = ko - 1 (the last regressor).
        let dy = outcome_deviation();
        // Both squared diagonals as one plus a small deviation, formed from
        // small terms only (1 + E would round them away in f32): dy =
        // E[y][y] - x.x, dm = E[m][m] - F[m][0..m].F[m][0..m]; then
        // sqrt((1 + dy) / (1 + dm)) - 1 = (dy - dm) / ((1 + dm) (r + 1)).
        let mm = ko - 1u;
        var sm = Real(0.0);
        for (var v = 0u; v < mm; v++) {
            sm += work[lo(mm, v)] * work[lo(mm, v)];
        }
        let dm = at(mm, mm) - sm;
        var change = Real(bitcast<f32>(0x7fc00000u));
        if (Real(1.0) + dy > Real(0.0)) {
            let r = sqrt((Real(1.0) + dy) / (Real(1.0) + dm));
            change = (dy - dm) / ((Real(1.0) + dm) * (r + Real(1.0)));
        }
        deltas[out + params.kappa_at] = change;
    }
}
