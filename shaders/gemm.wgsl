// Stage: replicate Gram entries, out (nb x n) = weights (nb x g) x stats (g x n),
// for each set z of a stacked batch (crate::gpu::stack; workgroup z, its own
// nb rows of codes and out and its own g x n stats; one set unless stacked),
// in Real (f32, or f64 where the adapter has it) with 16 x 16 tiles in
// workgroup memory. The weights arrive as the
// codes of weights.wgsl and are decoded while the tile is loaded: counts
// (pairs, Poisson, jackknife) as themselves or minus one, wild codes through
// a table.

// #include "decode.wgsl"

struct Params {
    nb: u32,
    g: u32,
    n: u32,
    // How codes become weights: see decode.wgsl.
    decode_mode: u32,
    n_strata: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> stats: array<Real>;
@group(0) @binding(4) var<storage, read_write> out: array<Real>;

const TILE: u32 = 16u;
var<workgroup> w_tile: array<array<Real, 16>, 16>;
var<workgroup> s_tile: array<array<Real, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.y * TILE + lid.y;
    let col = wid.x * TILE + lid.x;
    // This row among the batch's, and where the set's statistics begin.
    let at = wid.z * params.nb + row;
    let set_stats = wid.z * params.g * params.n;
    var acc = Real(0.0);
    let tiles = (params.g + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t++) {
        let kx = t * TILE + lid.x;
        var w = Real(0.0);
        if (row < params.nb && kx < params.g) {
            w = decode_weight(params.decode_mode, codes[at * params.g + kx], at, kx, params.g, params.n_strata);
        }
        w_tile[lid.y][lid.x] = w;
        let ky = t * TILE + lid.y;
        var s = Real(0.0);
        if (ky < params.g && col < params.n) {
            s = stats[set_stats + ky * params.n + col];
        }
        s_tile[lid.y][lid.x] = s;
        workgroupBarrier();
        for (var k = 0u; k < TILE; k++) {
            acc += w_tile[lid.y][k] * s_tile[k][lid.x];
        }
        workgroupBarrier();
    }
    if (row < params.nb && col < params.n) {
        out[at * params.n + col] = acc;
    }
}
