// Stage: one (replicate, system) per invocation (x: replicate, y: system), from its whitened Gram deviation E
// (packed, the GEMM's output with weights minus one) to the changes of the
// reported coefficients a_j, b_j, c, c' of an instrumented model (two-stage
// least squares). src/whiten_iv.rs explains the algebra and holds the f64
// reference, `WhitenedTwoStage::deltas`, step for step: per system,
// M = M0 + U'EU, F = F0 + U'EB, H = F'M^{-1}F; per dependent column,
// delta = H^{-1} F' M^{-1} (r0 + U'E e_d); per reported coefficient, w . delta,
// and (studentized, for a_j and b_j) the change of its influence functional
// (the packed symmetrisation of dh e_d' + h0 de' + dh de', see
// src/whiten_iv.rs). In Real (f32, or f64 where the adapter has it).

// #include "real.wgsl"
// #include "packed.wgsl"

struct Params {
    nb: u32,
    q: u32,
    n_coef: u32,
    // Reals per replicate of `deltas`.
    stride: u32,
    n_sys: u32,
    // The largest instrument and regressor counts (scratch sizes).
    ki_max: u32,
    kr_max: u32,
    // Coefficients whose influence functionals are written (2m, or 0).
    n_func: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> e: array<Real>;
// Per system two entries: (k_I, k_R, offset of U, offset of B), (offset of
// M0, offset of F0, first target, number of targets).
@group(0) @binding(2) var<storage, read> systems: array<vec4<u32>>;
// Per target: (offset of e_d, offset of r0, first output, number of outputs).
@group(0) @binding(3) var<storage, read> targets: array<vec4<u32>>;
// Per output: (offset of w, coefficient index, offset of y0 (k_I), offset of
// h0 (q)).
@group(0) @binding(4) var<storage, read> outputs: array<vec4<u32>>;
// Every constant above, row-major.
@group(0) @binding(5) var<storage, read> consts: array<Real>;
@group(0) @binding(6) var<storage, read_write> deltas: array<Real>;
// Scratch per system, element-major (entry x of replicate r at x * nb + r
// within its system's block): T (q x
// k_max: E U, then E B), M (k_I x k_I, factored in place), F (k_I x k_R),
// G (k_I x k_R: M^{-1} F), H (k_R x k_R, factored), then vectors of q,
// k_I and k_R, and (functionals) of k_R, k_I, q and q.
@group(0) @binding(7) var<storage, read_write> work: array<Real>;
// Changes of the influence functionals, (nb n_func) rows of q (q + 1) / 2,
// as solve.wgsl writes them.
@group(0) @binding(8) var<storage, read_write> functionals: array<Real>;

var<private> row: u32;
var<private> base: u32;
// Start of this invocation's system's scratch block.
var<private> block: u32;

fn packed(i: u32, j: u32) -> u32 {
    return packed_index(i, j, params.q);
}

// E[i][j] of this replicate.
fn at(i: u32, j: u32) -> Real {
    return e[base + packed(i, j)];
}

fn k_max() -> u32 {
    return max(params.ki_max, params.kr_max);
}
// Scratch position of element x of area `start`.
fn w_at(start: u32, x: u32) -> u32 {
    return (block + start + x) * params.nb + row;
}
fn t_area() -> u32 {
    return 0u;
}
fn m_area() -> u32 {
    return params.q * k_max();
}
fn f_area() -> u32 {
    return m_area() + params.ki_max * params.ki_max;
}
fn g_area() -> u32 {
    return f_area() + params.ki_max * params.kr_max;
}
fn h_area() -> u32 {
    return g_area() + params.ki_max * params.kr_max;
}
fn vq_area() -> u32 {
    return h_area() + params.kr_max * params.kr_max;
}
fn vi_area() -> u32 {
    return vq_area() + params.q;
}
fn vr_area() -> u32 {
    return vi_area() + params.ki_max;
}
fn fr_area() -> u32 {
    return vr_area() + params.kr_max;
}
fn fi_area() -> u32 {
    return fr_area() + params.kr_max;
}
fn dh_area() -> u32 {
    return fi_area() + params.ki_max;
}
fn de_area() -> u32 {
    return dh_area() + params.q;
}
// Scratch reals per replicate and system.
fn scratch_len() -> u32 {
    return de_area() + params.q;
}

// T = E V for V (q x k, row-major at consts[off]).
fn times_e(off: u32, k: u32) {
    let q = params.q;
    for (var a = 0u; a < q; a++) {
        for (var i = 0u; i < k; i++) {
            var s = Real(0.0);
            for (var b = 0u; b < q; b++) {
                s += at(a, b) * consts[off + b * k + i];
            }
            work[w_at(t_area(), a * k + i)] = s;
        }
    }
}

// In-place Cholesky of the k x k matrix at scratch area `start` (row
// stride k, lower triangle); false when not positive definite.
fn factor(start: u32, k: u32) -> bool {
    for (var j = 0u; j < k; j++) {
        var d = work[w_at(start, j * k + j)];
        for (var c = 0u; c < j; c++) {
            let l = work[w_at(start, j * k + c)];
            d -= l * l;
        }
        if (!(d > Real(0.0))) {
            return false;
        }
        let diag = sqrt(d);
        work[w_at(start, j * k + j)] = diag;
        for (var i = j + 1u; i < k; i++) {
            var s = work[w_at(start, i * k + j)];
            for (var c = 0u; c < j; c++) {
                s -= work[w_at(start, i * k + c)] * work[w_at(start, j * k + c)];
            }
            work[w_at(start, i * k + j)] = s / diag;
        }
    }
    return true;
}

// Solve (L L') y = y in place: factor at `fac` (k x k), y the k entries at
// scratch `area` with stride `step` from `first` (a column of a k x n matrix:
// first = column, step = n).
fn chol_solve(fac: u32, k: u32, area: u32, first: u32, step: u32) {
    for (var u = 0u; u < k; u++) {
        var s = work[w_at(area, first + u * step)];
        for (var v = 0u; v < u; v++) {
            s -= work[w_at(fac, u * k + v)] * work[w_at(area, first + v * step)];
        }
        work[w_at(area, first + u * step)] = s / work[w_at(fac, u * k + u)];
    }
    for (var uu = 0u; uu < k; uu++) {
        let u = k - 1u - uu;
        var s = work[w_at(area, first + u * step)];
        for (var v = u + 1u; v < k; v++) {
            s -= work[w_at(fac, v * k + u)] * work[w_at(area, first + v * step)];
        }
        work[w_at(area, first + u * step)] = s / work[w_at(fac, u * k + u)];
    }
}

// The change of output `op`'s influence functional (after its target's
// delta beta is in the kr area vr): y = M^{-1} F H^{-1} w, dh = U (y - y0),
// de = -B delta beta, then the packed symmetrised dh e_d' + h0 de' + dh de'.
fn write_functional(op: vec4<u32>, off_ed: u32, ki: u32, kr: u32, off_u: u32, off_b: u32) {
    let q = params.q;
    for (var r = 0u; r < kr; r++) {
        work[w_at(fr_area(), r)] = consts[op.x + r];
    }
    chol_solve(h_area(), kr, fr_area(), 0u, 1u);
    for (var i = 0u; i < ki; i++) {
        var v = Real(0.0);
        for (var r = 0u; r < kr; r++) {
            v += work[w_at(f_area(), i * kr + r)] * work[w_at(fr_area(), r)];
        }
        work[w_at(fi_area(), i)] = v;
    }
    chol_solve(m_area(), ki, fi_area(), 0u, 1u);
    for (var a = 0u; a < q; a++) {
        var dh = Real(0.0);
        for (var i = 0u; i < ki; i++) {
            dh += consts[off_u + a * ki + i] * (work[w_at(fi_area(), i)] - consts[op.z + i]);
        }
        work[w_at(dh_area(), a)] = dh;
        var de = Real(0.0);
        for (var r = 0u; r < kr; r++) {
            de -= consts[off_b + a * kr + r] * work[w_at(vr_area(), r)];
        }
        work[w_at(de_area(), a)] = de;
    }
    let p = q * (q + 1u) / 2u;
    let f = (row * params.n_func + op.y) * p;
    for (var a = 0u; a < q; a++) {
        let dha = work[w_at(dh_area(), a)];
        let dea = work[w_at(de_area(), a)];
        let h0a = consts[op.w + a];
        let e0a = consts[off_ed + a];
        for (var b = a; b < q; b++) {
            let dhb = work[w_at(dh_area(), b)];
            let deb = work[w_at(de_area(), b)];
            var v = dha * consts[off_ed + b] + h0a * deb + dha * deb;
            if (b != a) {
                v += dhb * e0a + consts[op.w + b] * dea + dhb * dea;
            }
            functionals[f + packed(a, b)] = v;
        }
    }
}

fn fail(out: u32) {
    for (var o = 0u; o < params.n_coef; o++) {
        deltas[out + o] = Real(bitcast<f32>(0x7fc00000u));
    }
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    row = gid.x;
    let s = gid.y;
    if (row >= params.nb || s >= params.n_sys) {
        return;
    }
    let q = params.q;
    base = row * (q * (q + 1u) / 2u);
    block = s * scratch_len();
    let out = row * params.stride;
    {
        let sa = systems[2u * s];
        let sb = systems[2u * s + 1u];
        let ki = sa.x;
        let kr = sa.y;
        let off_u = sa.z;
        let off_b = sa.w;
        // M = M0 + U' (E U).
        times_e(off_u, ki);
        for (var i = 0u; i < ki; i++) {
            for (var j = 0u; j < ki; j++) {
                var v = consts[sb.x + i * ki + j];
                for (var a = 0u; a < q; a++) {
                    v += consts[off_u + a * ki + i] * work[w_at(t_area(), a * ki + j)];
                }
                work[w_at(m_area(), i * ki + j)] = v;
            }
        }
        // F = F0 + U' (E B); G = F, to be solved.
        times_e(off_b, kr);
        for (var i = 0u; i < ki; i++) {
            for (var r = 0u; r < kr; r++) {
                var v = consts[sb.y + i * kr + r];
                for (var a = 0u; a < q; a++) {
                    v += consts[off_u + a * ki + i] * work[w_at(t_area(), a * kr + r)];
                }
                work[w_at(f_area(), i * kr + r)] = v;
                work[w_at(g_area(), i * kr + r)] = v;
            }
        }
        if (!factor(m_area(), ki)) {
            fail(out);
            return;
        }
        // G = M^{-1} F column by column; H = F' G.
        for (var r = 0u; r < kr; r++) {
            chol_solve(m_area(), ki, g_area(), r, kr);
        }
        for (var r = 0u; r < kr; r++) {
            for (var c = 0u; c < kr; c++) {
                var v = Real(0.0);
                for (var i = 0u; i < ki; i++) {
                    v += work[w_at(f_area(), i * kr + r)] * work[w_at(g_area(), i * kr + c)];
                }
                work[w_at(h_area(), r * kr + c)] = v;
            }
        }
        if (!factor(h_area(), kr)) {
            fail(out);
            return;
        }
        for (var t = sb.z; t < sb.z + sb.w; t++) {
            let tg = targets[t];
            // (E e_d), then v = r0 + U' (E e_d).
            for (var a = 0u; a < q; a++) {
                var v = Real(0.0);
                for (var b = 0u; b < q; b++) {
                    v += at(a, b) * consts[tg.x + b];
                }
                work[w_at(vq_area(), a)] = v;
            }
            for (var i = 0u; i < ki; i++) {
                var v = consts[tg.y + i];
                for (var a = 0u; a < q; a++) {
                    v += consts[off_u + a * ki + i] * work[w_at(vq_area(), a)];
                }
                work[w_at(vi_area(), i)] = v;
            }
            chol_solve(m_area(), ki, vi_area(), 0u, 1u);
            // z = H^{-1} F' y.
            for (var r = 0u; r < kr; r++) {
                var v = Real(0.0);
                for (var i = 0u; i < ki; i++) {
                    v += work[w_at(f_area(), i * kr + r)] * work[w_at(vi_area(), i)];
                }
                work[w_at(vr_area(), r)] = v;
            }
            chol_solve(h_area(), kr, vr_area(), 0u, 1u);
            for (var o = tg.z; o < tg.z + tg.w; o++) {
                let op = outputs[o];
                var v = Real(0.0);
                for (var r = 0u; r < kr; r++) {
                    v += consts[op.x + r] * work[w_at(vr_area(), r)];
                }
                deltas[out + op.y] = v;
                if (op.y < params.n_func) {
                    write_functional(op, tg.x, ki, kr, off_u, off_b);
                }
            }
        }
    }
}
