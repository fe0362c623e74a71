// Stage (unit+GROUP^time effects, crate::model::cells): subtract each
// replicate's cell block's Schur complement from its whitened Gram (the
// GEMM's output, before the solve): per system t and packed entry (a, b),
// the sum over groups of Y_a . Y_b / s for a balanced group (Y = L0^{-1}
// R, B = s D0; nothing where s = 0: no cluster of the group drew weight)
// and W_a . W_b for an unbalanced one (cell_factor.wgsl's W). One
// invocation per (replicate, entry), adjacent entries adjacent.

// #include "real.wgsl"

struct Params {
    nb: u32,
    // Sums per replicate (cell_sums.wgsl's width).
    width: u32,
    // The Gram's reals per replicate: systems x packed_len(q).
    n: u32,
    // Columns of each system.
    q: u32,
    // Whitened columns per row of R (every system's).
    cols: u32,
    n_groups: u32,
    // Invocations per row of workgroups: the flat index is y * stride + x.
    stride: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> sums: array<Real>;
// Per group: its cells k, where its sums start in a replicate's row, and
// 1 where it is balanced (k rows of Y, then s) or 0 (k rows of W, then
// its factor).
@group(0) @binding(2) var<storage, read> groups: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> gram: array<Real>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let flat = gid.y * params.stride + gid.x;
    let r = flat / params.n;
    if (r >= params.nb) {
        return;
    }
    let e = flat % params.n;
    let q = params.q;
    let pl = q * (q + 1u) / 2u;
    let t = e / pl;
    // (a, b) of packed entry e % pl, row by row.
    var p = e % pl;
    var a = 0u;
    while (p >= q - a) {
        p -= q - a;
        a++;
    }
    let ca = t * q + a;
    let cb = t * q + a + p;
    let cols = params.cols;
    let base = r * params.width;
    var acc = Real(0.0);
    for (var h = 0u; h < params.n_groups; h++) {
        let grp = groups[h];
        let k = grp.x;
        let at = base + grp.y;
        var part = Real(0.0);
        for (var i = 0u; i < k; i++) {
            part += sums[at + i * cols + ca] * sums[at + i * cols + cb];
        }
        if (grp.z == 1u) {
            let s = sums[at + k * cols];
            if (s > Real(0.0)) {
                acc += part / s;
            }
        } else {
            acc += part;
        }
    }
    gram[r * params.n + e] -= acc;
}
