// Stage: out (rows x cols) = a (rows x k) times b' (b is cols x k), all Real,
// with 16 x 16 tiles in workgroup memory. The studentized path uses it for
// every replicate's cluster influences at once: the whitened cluster
// statistics (G x p) times the replicates' influence functionals (one row
// of p per replicate and coefficient).

// #include "real.wgsl"

struct Params {
    rows: u32,
    cols: u32,
    k: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<Real>;
@group(0) @binding(2) var<storage, read> b: array<Real>;
@group(0) @binding(3) var<storage, read_write> out: array<Real>;

const TILE: u32 = 16u;
var<workgroup> a_tile: array<array<Real, 16>, 16>;
var<workgroup> b_tile: array<array<Real, 16>, 16>;

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.y * TILE + lid.y;
    let col = wid.x * TILE + lid.x;
    var acc = Real(0.0);
    let tiles = (params.k + TILE - 1u) / TILE;
    for (var t = 0u; t < tiles; t++) {
        let ka = t * TILE + lid.x;
        var x = Real(0.0);
        if (row < params.rows && ka < params.k) {
            x = a[row * params.k + ka];
        }
        a_tile[lid.y][lid.x] = x;
        // b_tile[kk][c] = b[col0 + c][t * TILE + kk]: thread (y, x) loads
        // row col0 + y, entry t * TILE + x, so reads along k are contiguous.
        let brow = wid.x * TILE + lid.y;
        var y = Real(0.0);
        if (brow < params.cols && ka < params.k) {
            y = b[brow * params.k + ka];
        }
        b_tile[lid.x][lid.y] = y;
        workgroupBarrier();
        for (var kk = 0u; kk < TILE; kk++) {
            acc += a_tile[lid.y][kk] * b_tile[kk][lid.x];
        }
        workgroupBarrier();
    }
    if (row < params.rows && col < params.cols) {
        out[row * params.cols + col] = acc;
    }
}
