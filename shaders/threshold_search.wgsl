// Stage: a threshold test's bootstrap F statistic (Hansen 1999), one
// replicate per workgroup, from its products with the grid's columns
// (src/resample/threshold.rs `LinearForm`: the GEMM's row, of the wild
// weights with the units' blocks or of the residual draw with the
// observations' rows): r_a(g) = r_f + p, the threshold-free SSR, then the
// sequence of searches of `Grid::sequence` up to the test's k, each
// candidate's SSR a Cholesky solve of its (k m) x (k m) products, the
// workgroup's least SSR (the first candidate on a tie) the estimate.
// Writes (F_k, 1), or (0, 0) where a search has no allowed candidate.

// #include "decode.wgsl"

struct Params {
    nb: u32,
    g: u32,
    m: u32,
    k: u32,
    // Reals per replicate of `products`.
    stride: u32,
    // The test: thresholds searched in sequence.
    steps: u32,
    min_regime: u32,
    n_obs: u32,
    // The GEMM's rows (units, or observations), whose codes give the
    // draw's sum of squares sum_h w_h^2 s_h.
    rows: u32,
    decode_mode: u32,
    n_strata: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> products: array<Real>;
@group(0) @binding(4) var<storage, read_write> out: array<Real>;
// r_f (g m), the candidates' products (g m x g m), the pivots' scales
// (g m), each GEMM row's s_h (rows), then |M_W f|^2 and the F's df.
@group(0) @binding(7) var<storage, read> tables: array<Real>;
// Observations at or below each candidate.
@group(0) @binding(8) var<storage, read> below: array<u32>;

const WG: u32 = 64u;

var<workgroup> best_v: array<Real, 64>;
var<workgroup> best_i: array<u32, 64>;
var<workgroup> partial: array<Real, 64>;

struct Ssr {
    ok: bool,
    v: Real,
}

struct Found {
    at: u32,
    ssr: Real,
}

fn gm() -> u32 {
    return params.g * params.m;
}

// Whether thresholds at the candidates `cands` (n of them) leave every
// regime min_regime observations.
fn allowed(cands: array<u32, 3>, n: u32) -> bool {
    var s = cands;
    for (var i = 1u; i < n; i++) {
        var j = i;
        while (j > 0u && s[j - 1u] > s[j]) {
            let t = s[j];
            s[j] = s[j - 1u];
            s[j - 1u] = t;
            j -= 1u;
        }
    }
    var last = 0u;
    for (var i = 0u; i < n; i++) {
        let b = below[s[i]];
        if (b - last < params.min_regime) {
            return false;
        }
        last = b;
    }
    return params.n_obs - last >= params.min_regime;
}

// `Grid::ssr`: the SSR with thresholds at `cands`, not ok where the products
// are not positive definite or a pivot is below 1e-10 of its scale.
fn ssr(row: u32, cands: array<u32, 3>, n: u32, ssr_linear: Real) -> Ssr {
    let m = params.m;
    let q = gm();
    let s = n * m;
    var d: array<Real, 144>;
    var rv: array<Real, 12>;
    for (var i = 0u; i < n; i++) {
        for (var a = 0u; a < m; a++) {
            let ia = cands[i] * m + a;
            rv[i * m + a] = tables[ia] + products[row + ia];
            for (var j = 0u; j < n; j++) {
                for (var b = 0u; b < m; b++) {
                    d[(i * m + a) * s + j * m + b] = tables[q + ia * q + cands[j] * m + b];
                }
            }
        }
    }
    for (var j = 0u; j < s; j++) {
        var dj = d[j * s + j];
        for (var k = 0u; k < j; k++) {
            dj -= d[j * s + k] * d[j * s + k];
        }
        if (!(dj > Real(0.0))) {
            return Ssr(false, Real(0.0));
        }
        dj = sqrt(dj);
        d[j * s + j] = dj;
        for (var i = j + 1u; i < s; i++) {
            var t = d[i * s + j];
            for (var k = 0u; k < j; k++) {
                t -= d[i * s + k] * d[j * s + k];
            }
            d[i * s + j] = t / dj;
        }
    }
    let scales = q + q * q;
    for (var i = 0u; i < n; i++) {
        for (var a = 0u; a < m; a++) {
            let p = d[(i * m + a) * s + i * m + a];
            if (p * p <= Real(1e-10) * tables[scales + cands[i] * m + a]) {
                return Ssr(false, Real(0.0));
            }
        }
    }
    var v = rv;
    for (var i = 0u; i < s; i++) {
        var t = v[i];
        for (var k = 0u; k < i; k++) {
            t -= d[i * s + k] * v[k];
        }
        v[i] = t / d[i * s + i];
    }
    for (var ii = 0u; ii < s; ii++) {
        let i = s - 1u - ii;
        var t = v[i];
        for (var k = i + 1u; k < s; k++) {
            t -= d[k * s + i] * v[k];
        }
        v[i] = t / d[i * s + i];
    }
    var fit = Real(0.0);
    for (var i = 0u; i < s; i++) {
        fit += rv[i] * v[i];
    }
    return Ssr(true, ssr_linear - fit);
}

// `Grid::search`: one more threshold beside the nf candidates `fixed`; at
// = g where no candidate is allowed. Every invocation returns the same.
fn search(row: u32, fixed: array<u32, 3>, nf: u32, ssr_linear: Real, lid: u32) -> Found {
    let g = params.g;
    var bv = Real(0.0);
    var bi = g;
    for (var c = lid; c < g; c += WG) {
        var taken = false;
        for (var i = 0u; i < nf; i++) {
            taken = taken || fixed[i] == c;
        }
        var cands = fixed;
        cands[nf] = c;
        if (taken || !allowed(cands, nf + 1u)) {
            continue;
        }
        let s = ssr(row, cands, nf + 1u, ssr_linear);
        if (s.ok && (bi == g || s.v < bv)) {
            bv = s.v;
            bi = c;
        }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            let ov = best_v[lid + half];
            let oi = best_i[lid + half];
            let mi = best_i[lid];
            let mv = best_v[lid];
            if (oi != g && (mi == g || ov < mv || (ov == mv && oi < mi))) {
                best_v[lid] = ov;
                best_i[lid] = oi;
            }
        }
        workgroupBarrier();
    }
    let at = workgroupUniformLoad(&best_i[0]);
    let v = workgroupUniformLoad(&best_v[0]);
    // Nobody writes the arrays again before every invocation has read them.
    workgroupBarrier();
    return Found(at, v);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wid.x;
    if (r >= params.nb) {
        return;
    }
    let g = params.g;
    let q = gm();
    let k = params.k;
    let row = r * params.stride;
    let e2 = q + q * q + q;
    let rows = params.rows;
    let consts = e2 + rows;
    // The draw's own sum of squares.
    var quad = Real(0.0);
    for (var h = lid; h < rows; h += WG) {
        let w = decode_weight(params.decode_mode, codes[r * rows + h], r, h, rows, params.n_strata);
        quad += w * w * tables[e2 + h];
    }
    partial[lid] = quad;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half /= 2u) {
        if (lid < half) {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    var zz = Real(0.0);
    for (var c = 0u; c < k; c++) {
        let z = products[row + q + c];
        zz += z * z;
    }
    let ssr_linear = tables[consts] + Real(2.0) * products[row + q + k] + partial[0] - zz;
    let df = tables[consts + 1u];
    var none = array<u32, 3>(0u, 0u, 0u);
    var f = Real(0.0);
    var ok = true;
    let s1 = search(row, none, 0u, ssr_linear, lid);
    if (s1.at == g) {
        ok = false;
    } else {
        f = (ssr_linear - s1.ssr) / (s1.ssr / df);
        if (params.steps >= 2u) {
            let s2 = search(row, array<u32, 3>(s1.at, 0u, 0u), 1u, ssr_linear, lid);
            if (s2.at == g) {
                ok = false;
            } else {
                let refined = search(row, array<u32, 3>(s2.at, 0u, 0u), 1u, ssr_linear, lid);
                if (refined.at == g) {
                    ok = false;
                } else {
                    f = (s1.ssr - s2.ssr) / (s2.ssr / df);
                    let pair = array<u32, 3>(min(refined.at, s2.at), max(refined.at, s2.at), 0u);
                    if (params.steps >= 3u) {
                        let before = ssr(row, pair, 2u, ssr_linear);
                        let s3 = search(row, pair, 2u, ssr_linear, lid);
                        if (!before.ok || s3.at == g) {
                            ok = false;
                        } else {
                            f = (before.v - s3.ssr) / (s3.ssr / df);
                        }
                    }
                }
            }
        }
    }
    if (lid == 0u) {
        out[2u * r] = select(Real(0.0), f, ok);
        out[2u * r + 1u] = select(Real(0.0), Real(1.0), ok);
    }
}
