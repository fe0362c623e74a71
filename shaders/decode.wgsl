// Shared by the stages that read weight codes (gemm.wgsl, meat.wgsl): the
// weight a code of weights.wgsl stands for. Declares the bindings it reads,
// so every including stage has them at the same numbers (3, 5, 6).

// #include "real.wgsl"

// Wild weights (and the normal table), indexed by code.
@group(0) @binding(3) var<storage, read> decode_table: array<Real>;
// Bayes: per replicate and stratum, the sum of the codes as (low, high).
@group(0) @binding(5) var<storage, read> sums: array<u32>;
// Bayes: each cluster's stratum (g entries), then each stratum's size.
@group(0) @binding(6) var<storage, read> strata: array<u32>;

// Modes: 0 a count; 1 an index into decode_table; 2 a count minus one (the
// whitened solve's deviations, exact small integers); 3 a Bayesian code,
// n_s E / S_s; 4 the same minus one.
fn decode_weight(mode: u32, code: u32, row: u32, cluster: u32, g: u32, n_strata: u32) -> Real {
    switch mode {
        case 0u: {
            return Real(code);
        }
        case 2u: {
            return Real(i32(code) - 1);
        }
        case 3u, 4u: {
            let s = strata[cluster];
            let at = 2u * (row * n_strata + s);
            let total = Real(sums[at + 1u]) * Real(4294967296.0) + Real(sums[at]);
            let n = Real(strata[g + s]);
            let w = n * Real(code) / total;
            return select(w, w - Real(1.0), mode == 4u);
        }
        default: {
            return decode_table[code];
        }
    }
}
