// Stage (unit+GROUP^time effects, crate::model::cells): each replicate's
// sums of its (group, cluster) cell statistics, sum_c w_c R_c and
// sum_c w_c D_c per group in the GEMM's whitened columns (a balanced
// group's L0^{-1} R and the scale of its B), for cell_factor.wgsl and
// cell_partial.wgsl. Output (r, j) sums, over the entries of column j's
// group, the replicate's weight of the entry's cluster times the entry's
// value at j: the weights themselves, not minus one (a cell none of whose
// clusters drew weight must sum to an exact zero). One invocation per
// output, adjacent columns in adjacent invocations, which read adjacent
// values of each entry's row.

// #include "decode.wgsl"

struct Params {
    nb: u32,
    g: u32,
    // Sums per replicate.
    width: u32,
    // Decoding of the weights (mode 0 or 3 of decode.wgsl).
    decode_mode: u32,
    n_strata: u32,
    // Invocations per row of workgroups: the flat index is y * stride + x.
    stride: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
// Every group's entries, one row of the group's width each.
@group(0) @binding(2) var<storage, read> entries: array<Real>;
@group(0) @binding(4) var<storage, read_write> out: array<Real>;
// Per column of a replicate's sums: its group's first entry and the end of
// its entries, where the first entry's value at the column sits in
// `entries`, and the group's row width.
@group(0) @binding(7) var<storage, read> columns: array<vec4<u32>>;
// Each entry's cluster.
@group(0) @binding(8) var<storage, read> entry_cluster: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let flat = gid.y * params.stride + gid.x;
    let r = flat / params.width;
    if (r >= params.nb) {
        return;
    }
    let j = flat % params.width;
    let col = columns[j];
    var acc = Real(0.0);
    var at = col.z;
    for (var e = col.x; e < col.y; e++) {
        let c = entry_cluster[e];
        let w = decode_weight(params.decode_mode, codes[r * params.g + c], r, c, params.g, params.n_strata);
        acc += w * entries[at];
        at += col.w;
    }
    out[r * params.width + j] = acc;
}
