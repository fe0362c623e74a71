// Stage: cluster-weight codes of a batch of replicates, one invocation per
// replicate, drawn from the same Philox stream and in the same order as
// WeightPlan::fill (src/scheme.rs), so the weights are the CPU's bit for bit:
// pairs and Poisson give counts, the jackknife 0/1, Rademacher the sign bit
// (1 = +1), Mammen 0 for the negative point, Webb the index of the point,
// normal the index into the normal table, Bayes the tabulated exponential
// itself (an integer in units of 2^-20) with each stratum's exact sum, the
// label shuffle of a contrast's permutation test 1 for the clusters of one
// side (params.tag is then STREAM_LABELS).
// #include "draw.wgsl"

struct Params {
    start: vec2<u32>,
    // Replicates per set of a stacked batch (crate::gpu::stack): invocation
    // i is replicate start + i % per_set of set i / per_set, drawn with that
    // set's seed; 0: one set, invocation i is replicate start + i.
    per_set: u32,
    pad: u32,
    count: u32,
    n_clusters: u32,
    scheme: u32,
    n_strata: u32,
    tag: u32,
    mammen_threshold: u32,
    first: u32,
    second: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Clusters of stratum s are members[offsets[s] .. offsets[s + 1]].
@group(0) @binding(1) var<storage, read> members: array<u32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
// Poisson: the inversion thresholds; Bayes: the exponential table.
@group(0) @binding(3) var<storage, read> table: array<u32>;
@group(0) @binding(4) var<storage, read_write> codes: array<u32>;
// Bayes: per replicate and stratum, the sum of the codes as (low, high) words.
@group(0) @binding(5) var<storage, read_write> sums: array<u32>;
// Each set's seed (one entry unless stacked).
@group(0) @binding(6) var<storage, read> seeds: array<vec2<u32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.count) {
        return;
    }
    var which = 0u;
    var r = i;
    if (params.per_set != 0u) {
        which = i / params.per_set;
        r = i % params.per_set;
    }
    let lo = params.start.x + r;
    let carry = select(0u, 1u, lo < r);
    var s = stream_new(seeds[which], vec2<u32>(lo, params.start.y + carry), params.tag);
    let g = params.n_clusters;
    let base = i * g;
    switch params.scheme {
        case SCHEME_PAIRS: {
            for (var c = 0u; c < g; c++) {
                codes[base + c] = 0u;
            }
            for (var st = 0u; st < params.n_strata; st++) {
                let first = offsets[st];
                let n = offsets[st + 1u] - first;
                let threshold = (0u - n) % n;
                for (var k = 0u; k < n; k++) {
                    let j = stream_below(&s, n, threshold);
                    codes[base + members[first + j]] += 1u;
                }
            }
        }
        case SCHEME_POISSON: {
            for (var c = 0u; c < g; c++) {
                let w = stream_word(&s);
                var k = 0u;
                for (var t = 0u; t < arrayLength(&table); t++) {
                    k += select(0u, 1u, table[t] <= w);
                }
                codes[base + c] = k;
            }
        }
        case SCHEME_BAYES: {
            for (var c = 0u; c < g; c++) {
                codes[base + c] = table[stream_word(&s) >> 16u];
            }
            for (var st = 0u; st < params.n_strata; st++) {
                var lo = 0u;
                var hi = 0u;
                for (var k = offsets[st]; k < offsets[st + 1u]; k++) {
                    let v = codes[base + members[k]];
                    let next = lo + v;
                    hi += select(0u, 1u, next < lo);
                    lo = next;
                }
                let at = 2u * (i * params.n_strata + st);
                sums[at] = lo;
                sums[at + 1u] = hi;
            }
        }
        case SCHEME_LABELS: {
            // Fisher-Yates of the cluster order in the codes row, then each
            // cluster drawn into the weighted side marked in bit 31 of its
            // own entry (the order's entries are below 2^31), then the marks
            // kept alone.
            for (var c = 0u; c < g; c++) {
                codes[base + c] = c;
            }
            for (var kk = 1u; kk < g; kk++) {
                let k = g - kk;
                let bound = k + 1u;
                let j = stream_below(&s, bound, (0u - bound) % bound);
                let a = codes[base + k];
                codes[base + k] = codes[base + j];
                codes[base + j] = a;
            }
            for (var k = 0u; k < g; k++) {
                if ((k < params.first) == (params.second == 0u)) {
                    let c = codes[base + k] & 0x7fffffffu;
                    codes[base + c] |= 0x80000000u;
                }
            }
            for (var c = 0u; c < g; c++) {
                codes[base + c] = codes[base + c] >> 31u;
            }
        }
        default: {
            var bits = 0u;
            var run: array<u32, 16>;
            for (var first = 0u; first < g; first += 16u) {
                let count = min(16u, g - first);
                draw_run(params.scheme, &s, &bits, first, count, lo, params.mammen_threshold, &run);
                for (var k = 0u; k < count; k++) {
                    codes[base + first + k] = run[k];
                }
            }
        }
    }
}
