// Stage: the GEMM of gemm.wgsl (out = weights x stats per set of a stacked
// batch, each output's clusters summed in order 0, 1, .., g - 1: the same
// bits), for weights read as codes, on adapters with subgroups of exactly
// 8 lanes (crate::gpu::GemmShape::Subgroup). No workgroup memory and no
// barriers: each subgroup owns 16 rows x 32 columns of `out`, lane l the
// 4 columns 4 l .. 4 l + 3 of all 16 rows; per cluster a lane reads the
// weights of rows l and l + 8 and one vec4 of statistics, and the weights
// go round the subgroup by broadcasts. The 16 x 4 accumulators are named
// registers, not an array: a software adapter keeps a dynamically indexed
// array in memory, reached lane by lane.

// #include "gemm_common.wgsl"

// Rows per subgroup, and per workgroup (8 subgroups of 8 lanes).
const RS: u32 = 16u;
const BM: u32 = 128u;

// The weight of row `row` (of the set) for cluster k; zero past the rows.
fn weight(set_row: u32, row: u32, k: u32) -> Real {
    if (row >= params.nb) {
        return Real(0.0);
    }
    let at = set_row + row;
    return decode_weight(params.decode_mode, codes[at * params.g + k], at, k, params.g, params.n_strata);
}

@compute @workgroup_size(64)
fn main(
    @builtin(local_invocation_index) t: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let row0 = wid.y * BM + (t / 8u) * RS;
    let col = wid.x * 32u + 4u * lane;
    let set_row = wid.z * params.nb;
    let set_stats = wid.z * params.g * params.n;
    let n = params.n;
    var acc0 = vec4<Real>(0.0);
    var acc1 = vec4<Real>(0.0);
    var acc2 = vec4<Real>(0.0);
    var acc3 = vec4<Real>(0.0);
    var acc4 = vec4<Real>(0.0);
    var acc5 = vec4<Real>(0.0);
    var acc6 = vec4<Real>(0.0);
    var acc7 = vec4<Real>(0.0);
    var acc8 = vec4<Real>(0.0);
    var acc9 = vec4<Real>(0.0);
    var acc10 = vec4<Real>(0.0);
    var acc11 = vec4<Real>(0.0);
    var acc12 = vec4<Real>(0.0);
    var acc13 = vec4<Real>(0.0);
    var acc14 = vec4<Real>(0.0);
    var acc15 = vec4<Real>(0.0);
    for (var k = 0u; k < params.g; k++) {
        let w0 = weight(set_row, row0 + lane, k);
        let w1 = weight(set_row, row0 + lane + 8u, k);
        let base = set_stats + k * n + col;
        var b = vec4<Real>(0.0);
        if (col + 3u < n) {
            b = vec4<Real>(stats[base], stats[base + 1u], stats[base + 2u], stats[base + 3u]);
        } else {
            for (var c = 0u; c < 4u; c++) {
                if (col + c < n) {
                    b[c] = stats[base + c];
                }
            }
        }
        acc0 += subgroupBroadcast(w0, 0u) * b;
        acc1 += subgroupBroadcast(w0, 1u) * b;
        acc2 += subgroupBroadcast(w0, 2u) * b;
        acc3 += subgroupBroadcast(w0, 3u) * b;
        acc4 += subgroupBroadcast(w0, 4u) * b;
        acc5 += subgroupBroadcast(w0, 5u) * b;
        acc6 += subgroupBroadcast(w0, 6u) * b;
        acc7 += subgroupBroadcast(w0, 7u) * b;
        acc8 += subgroupBroadcast(w1, 0u) * b;
        acc9 += subgroupBroadcast(w1, 1u) * b;
        acc10 += subgroupBroadcast(w1, 2u) * b;
        acc11 += subgroupBroadcast(w1, 3u) * b;
        acc12 += subgroupBroadcast(w1, 4u) * b;
        acc13 += subgroupBroadcast(w1, 5u) * b;
        acc14 += subgroupBroadcast(w1, 6u) * b;
        acc15 += subgroupBroadcast(w1, 7u) * b;
    }
    store_row(set_row, row0 + 0u, col, acc0);
    store_row(set_row, row0 + 1u, col, acc1);
    store_row(set_row, row0 + 2u, col, acc2);
    store_row(set_row, row0 + 3u, col, acc3);
    store_row(set_row, row0 + 4u, col, acc4);
    store_row(set_row, row0 + 5u, col, acc5);
    store_row(set_row, row0 + 6u, col, acc6);
    store_row(set_row, row0 + 7u, col, acc7);
    store_row(set_row, row0 + 8u, col, acc8);
    store_row(set_row, row0 + 9u, col, acc9);
    store_row(set_row, row0 + 10u, col, acc10);
    store_row(set_row, row0 + 11u, col, acc11);
    store_row(set_row, row0 + 12u, col, acc12);
    store_row(set_row, row0 + 13u, col, acc13);
    store_row(set_row, row0 + 14u, col, acc14);
    store_row(set_row, row0 + 15u, col, acc15);
}
