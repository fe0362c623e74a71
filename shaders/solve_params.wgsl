// The least-squares solve's parameters (crate::gpu::SolveParams), shared by
// solve.wgsl and the solve generated per model (src/gpu/solve_gen.rs).

struct Params {
    nb: u32,
    q: u32,
    n_coef: u32,
    // Reals per replicate of `deltas` (each system's n_coef, then the meat
    // stage's SEs).
    stride: u32,
    // Coefficients of each system whose influence functionals are written
    // (2m, all of them, or 0).
    n_func: u32,
    // Sensitivity analysis (one mediator, the last regressor): where the
    // ratio of the outcome's and the mediator's diagonals of the whitened
    // factor, less one, goes among the replicate's reals (0: nowhere).
    kappa_at: u32,
    // Replicates per set of a stacked batch (crate::gpu::stack): replicate
    // row is of set row / per_set, whose scales, L and L^{-1} follow the
    // previous sets' (n_coef and q x q each); 0: one set.
    per_set: u32,
    // Systems per replicate (crate::resample::whiten::Whitened::sets): row r
    // is system r % systems of replicate r / systems, whose coefficients,
    // scales, L and L^{-1} follow the previous systems' (n_coef and q x q
    // each); 0 or 1: one.
    systems: u32,
    // Where the robustness values' terms go among the replicate's reals (0:
    // nowhere): per coefficient marked in `coefs` (its fourth entry, the
    // path's number plus one), [A^{-1}]_jj and the equation's residual sum
    // of squares, in the scaled design's units.
    rv_at: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
