// Stage (unit+GROUP^time effects, crate::model::cells): for each replicate
// and each unbalanced group (whose cell block is no multiple of one
// matrix), the Cholesky factor U'U = B of its cell block and W = U'^{-1} R,
// in place in the replicate's cell sums (cell_sums.wgsl), so that
// cell_partial.wgsl subtracts R' B^{-1} R as W'W. As the CPU engine's
// `cells::eliminate`: a cell whose pivot is at most `tol` of its diagonal
// has no effect the replicate identifies (none of its clusters drew
// weight, or the unit effects span it) and is dropped, its rows of U and
// W zero.

// #include "packed.wgsl"
// #include "real.wgsl"

struct Params {
    nb: u32,
    // Sums per replicate.
    width: u32,
    // Whitened columns per row of R (every system's).
    cols: u32,
    n_general: u32,
    // The dropping threshold, relative to the cell's diagonal.
    tol: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> sums: array<Real>;
// Per unbalanced group: its cells k and where its sums start in a
// replicate's row (k rows of R, then B packed).
@group(0) @binding(2) var<storage, read> general: array<vec2<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let r = gid.x;
    if (r >= params.nb || gid.y >= params.n_general) {
        return;
    }
    let k = general[gid.y].x;
    let cols = params.cols;
    let rb = r * params.width + general[gid.y].y;
    let bb = rb + k * cols;
    for (var i = 0u; i < k; i++) {
        let ii = bb + packed_index(i, i, k);
        var d = sums[ii];
        for (var u = 0u; u < i; u++) {
            let v = sums[bb + packed_index(u, i, k)];
            d -= v * v;
        }
        if (!(d > Real(params.tol) * sums[ii])) {
            for (var j = i; j < k; j++) {
                sums[bb + packed_index(i, j, k)] = Real(0.0);
            }
            for (var a = 0u; a < cols; a++) {
                sums[rb + i * cols + a] = Real(0.0);
            }
            continue;
        }
        let p = sqrt(d);
        sums[ii] = p;
        for (var j = i + 1u; j < k; j++) {
            var v = sums[bb + packed_index(i, j, k)];
            for (var u = 0u; u < i; u++) {
                v -= sums[bb + packed_index(u, i, k)] * sums[bb + packed_index(u, j, k)];
            }
            sums[bb + packed_index(i, j, k)] = v / p;
        }
        for (var a = 0u; a < cols; a++) {
            var v = sums[rb + i * cols + a];
            for (var u = 0u; u < i; u++) {
                v -= sums[bb + packed_index(u, i, k)] * sums[rb + u * cols + a];
            }
            sums[rb + i * cols + a] = v / p;
        }
    }
}
