// Shared by the GEMM kernels (gemm.wgsl, gemm_sg.wgsl): their parameters,
// the bindings both read, and the store of an output block's row.

// #include "decode.wgsl"

struct Params {
    nb: u32,
    g: u32,
    n: u32,
    // How codes become weights: see decode.wgsl.
    decode_mode: u32,
    n_strata: u32,
    // 1: draw the weights here (scheme, start, tag, mammen_threshold); 0:
    // read the codes. gemm_sg.wgsl reads codes only.
    draw: u32,
    scheme: u32,
    tag: u32,
    // The batch's first replicate (low, high words).
    start: vec2<u32>,
    mammen_threshold: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> codes: array<u32>;
@group(0) @binding(2) var<storage, read> stats: array<Real>;
@group(0) @binding(4) var<storage, read_write> out: array<Real>;

// Four neighbouring outputs of one row, those inside `out`.
fn store_row(set_row: u32, row: u32, col: u32, v: vec4<Real>) {
    if (row >= params.nb) {
        return;
    }
    let base = (set_row + row) * params.n;
    for (var c = 0u; c < 4u; c++) {
        if (col + c < params.n) {
            out[base + col + c] = v[c];
        }
    }
}
