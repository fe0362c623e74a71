// Shared by weights.wgsl and gemm.wgsl: the weight codes of a run of
// clusters of a replicate whose clusters draw one after another from its
// stream without a table (the jackknife and the wild weights), as
// WeightPlan::fill draws them, so the codes are the same wherever they are
// drawn. `bits` carries Rademacher's word from one run to the next.
// #include "philox.wgsl"

const SCHEME_PAIRS: u32 = 0u;
const SCHEME_POISSON: u32 = 1u;
const SCHEME_JACKKNIFE: u32 = 2u;
const SCHEME_RADEMACHER: u32 = 3u;
const SCHEME_MAMMEN: u32 = 4u;
const SCHEME_WEBB: u32 = 5u;
const SCHEME_BAYES: u32 = 6u;
const SCHEME_NORMAL: u32 = 7u;
const SCHEME_LABELS: u32 = 8u;

// The codes of clusters first .. first + count (count <= 16) into `codes`,
// the replicate's stream `s` at cluster first. The scheme's switch is
// outside the loop over clusters (inside it, software rasterisers run
// every case for every cluster).
fn draw_run(
    scheme: u32,
    s: ptr<function, Stream>,
    bits: ptr<function, u32>,
    first: u32,
    count: u32,
    replicate: u32,
    mammen_threshold: u32,
    codes: ptr<function, array<u32, 16>>,
) {
    switch scheme {
        case SCHEME_JACKKNIFE: {
            for (var k = 0u; k < count; k++) {
                (*codes)[k] = select(1u, 0u, first + k == replicate);
            }
        }
        case SCHEME_RADEMACHER: {
            for (var k = 0u; k < count; k++) {
                let c = first + k;
                if (c % 32u == 0u) {
                    *bits = stream_word(s);
                }
                (*codes)[k] = (*bits >> (c % 32u)) & 1u;
            }
        }
        case SCHEME_MAMMEN: {
            for (var k = 0u; k < count; k++) {
                (*codes)[k] = select(1u, 0u, stream_word(s) < mammen_threshold);
            }
        }
        case SCHEME_WEBB: {
            for (var k = 0u; k < count; k++) {
                (*codes)[k] = stream_below(s, 6u, 4u);
            }
        }
        case SCHEME_NORMAL: {
            for (var k = 0u; k < count; k++) {
                (*codes)[k] = stream_word(s) >> 16u;
            }
        }
        default: {}
    }
}
