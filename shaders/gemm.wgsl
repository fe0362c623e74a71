// Stage: replicate Gram entries, out (nb x n) = weights (nb x g) x stats (g x n),
// for each set z of a stacked batch (crate::gpu::stack; workgroup z, its own
// nb rows of codes and out and its own g x n stats; one set unless stacked),
// in Real (f32, or f64 where the adapter has it). The weights arrive as the
// codes of weights.wgsl, or (params.draw, for the jackknife and the wild
// weights but Webb's) are drawn here from the replicate's stream exactly as
// weights.wgsl would draw them, and are decoded while the tile is loaded:
// counts (pairs, Poisson, jackknife) as themselves or minus one, wild codes
// through a table.
//
// Register-blocked: 64 invocations share a BM x BN block of `out`; each
// keeps TM x 4 of its outputs in registers (TM rows, 4 neighbouring
// columns), so one pass of KT clusters through workgroup memory (two
// barriers) feeds TM x 4 x KT multiply-adds per invocation, and each weight
// is decoded once per block of columns. The shape is chosen per problem
// (crate::gpu::GemmShape) from the pipeline constants: WX invocations
// across (BN = 4 WX columns), 64 / WX down (BM = TM 64 / WX rows). Every
// output still sums its clusters in order 0, 1, .., g - 1.

// #include "gemm_common.wgsl"
// #include "draw.wgsl"

// Drawn weights: each set's seed (one entry unless stacked).
@group(0) @binding(7) var<storage, read> seeds: array<vec2<u32>>;

// Invocations across the block (each 4 columns): 8 (BN 32) or 1 (BN 4).
override WX: u32 = 8u;
// Rows per invocation, 4 or 8: 8 (BM 64 with WX 8) or 4 (BM 256 with WX 1).
override TM: u32 = 8u;
// Clusters per pass through workgroup memory (at most 16: draw_run).
override KT: u32 = 16u;
const THREADS: u32 = 64u;
// Workgroup memory, sized for the largest shape: KT x BM weights as vec4s
// of neighbouring rows, KT x BN statistics as vec4s of neighbouring columns.
// (2 x 256 vec4s: 16 KiB in f64, the default limit.)
var<workgroup> w_tile: array<vec4<Real>, 256>;
var<workgroup> s_tile: array<vec4<Real>, 256>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let wy = THREADS / WX;
    let bm = TM * wy;
    let bn = 4u * WX;
    let tx = t % WX;
    let ty = t / WX;
    let row0 = wid.y * bm;
    let col0 = wid.x * bn;
    // Where the set's rows of codes and out, and its statistics, begin.
    let set_row = wid.z * params.nb;
    let set_stats = wid.z * params.g * params.n;
    let g = params.g;
    let n = params.n;
    // Row groups of 4 per invocation (TM / 4, one or two) and their
    // accumulators, named rather than an array: a software adapter keeps a
    // dynamically indexed array in memory, reached lane by lane (on
    // lavapipe the GEMM took 1.3-1.5 times as long).
    var acc00 = vec4<Real>(0.0);
    var acc01 = vec4<Real>(0.0);
    var acc02 = vec4<Real>(0.0);
    var acc03 = vec4<Real>(0.0);
    var acc10 = vec4<Real>(0.0);
    var acc11 = vec4<Real>(0.0);
    var acc12 = vec4<Real>(0.0);
    var acc13 = vec4<Real>(0.0);
    let groups = TM / 4u;
    // Drawn weights: the stream of each row this invocation draws (at most
    // 256 / 64), and Rademacher's current word.
    var streams: array<Stream, 4>;
    var carried: array<u32, 4>;
    if (params.draw != 0u) {
        for (var j = 0u; j < bm / THREADS; j++) {
            let row = row0 + t + j * THREADS;
            let lo = params.start.x + row;
            let hi = params.start.y + select(0u, 1u, lo < row);
            streams[j] = stream_new(seeds[wid.z], vec2<u32>(lo, hi), params.tag);
        }
    }
    let tiles = (g + KT - 1u) / KT;
    for (var tile = 0u; tile < tiles; tile++) {
        let k0 = tile * KT;
        if (params.draw != 0u) {
            // Each invocation draws the next KT clusters of each of its rows
            // (the same rows every pass), its streams carried over.
            for (var j = 0u; j < bm / THREADS; j++) {
                let r = t + j * THREADS;
                let row = row0 + r;
                var s = streams[j];
                var bits = carried[j];
                var run: array<u32, 16>;
                let count = min(KT, g - min(g, k0));
                if (row < params.nb) {
                    draw_run(params.scheme, &s, &bits, k0, count, s.replicate.x, params.mammen_threshold, &run);
                }
                for (var k = 0u; k < KT; k++) {
                    let kk = k0 + k;
                    var w = Real(0.0);
                    if (row < params.nb && kk < g) {
                        w = decode_weight(params.decode_mode, run[k], set_row + row, kk, g, params.n_strata);
                    }
                    w_tile[k * (bm / 4u) + r / 4u][r % 4u] = w;
                }
                streams[j] = s;
                carried[j] = bits;
            }
        } else {
            // KT x bm weights: consecutive invocations read consecutive
            // clusters of one replicate's codes.
            for (var e = t; e < KT * bm; e += THREADS) {
                let r = e / KT;
                let k = e % KT;
                let row = row0 + r;
                let kk = k0 + k;
                var w = Real(0.0);
                if (row < params.nb && kk < g) {
                    let at = set_row + row;
                    w = decode_weight(params.decode_mode, codes[at * g + kk], at, kk, g, params.n_strata);
                }
                w_tile[k * (bm / 4u) + r / 4u][r % 4u] = w;
            }
        }
        // KT x bn statistics: consecutive invocations read consecutive
        // columns of one cluster's row.
        for (var e = t; e < KT * bn; e += THREADS) {
            let k = e / bn;
            let c = e % bn;
            let col = col0 + c;
            let kk = k0 + k;
            var s = Real(0.0);
            if (kk < g && col < n) {
                s = stats[set_stats + kk * n + col];
            }
            s_tile[k * WX + c / 4u][c % 4u] = s;
        }
        workgroupBarrier();
        for (var k = 0u; k < KT; k++) {
            let b = s_tile[k * WX + tx];
            let a0 = w_tile[k * (bm / 4u) + ty];
            acc00 += a0.x * b;
            acc01 += a0.y * b;
            acc02 += a0.z * b;
            acc03 += a0.w * b;
            if (groups > 1u) {
                let a1 = w_tile[k * (bm / 4u) + ty + wy];
                acc10 += a1.x * b;
                acc11 += a1.y * b;
                acc12 += a1.z * b;
                acc13 += a1.w * b;
            }
        }
        workgroupBarrier();
    }
    let out_base = 4u * ty;
    store_row(set_row, row0 + out_base, col0 + 4u * tx, acc00);
    store_row(set_row, row0 + out_base + 1u, col0 + 4u * tx, acc01);
    store_row(set_row, row0 + out_base + 2u, col0 + 4u * tx, acc02);
    store_row(set_row, row0 + out_base + 3u, col0 + 4u * tx, acc03);
    if (groups > 1u) {
        let second = out_base + 4u * wy;
        store_row(set_row, row0 + second, col0 + 4u * tx, acc10);
        store_row(set_row, row0 + second + 1u, col0 + 4u * tx, acc11);
        store_row(set_row, row0 + second + 2u, col0 + 4u * tx, acc12);
        store_row(set_row, row0 + second + 3u, col0 + 4u * tx, acc13);
    }
}

