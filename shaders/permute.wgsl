// Stage: the permutation scheme's replicates, one per invocation, as the
// whitened Gram deviation E that solve.wgsl takes (src/permutation.rs and
// src/gpu/permute.rs have the algebra). Within each block of units observed
// in the same periods, in block order, a Fisher-Yates shuffle of the local
// indices drawing below(i + 1) for i = n - 1 down to 1 from the Philox
// stream (seed, r, STREAM_PERMUTATION), as the CPU's `donors` does: local
// unit k takes the treatment series of local unit perm[k]. Only the
// treatment's row of the Gram changes, by Delta; in whitened coordinates
// E = u v' + v u' with u = L^{-1} e_0 and v = L^{-1} Delta = sum_k
// D[perm[k]][k], D tabulated on the host.

// #include "philox.wgsl"
// #include "real.wgsl"

struct Params {
    seed: vec2<u32>,
    start: vec2<u32>,
    nb: u32,
    q: u32,
    n_blocks: u32,
    tag: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Block b: units blocks[b] .. blocks[b + 1] (local indices), its table at
// table_offsets[b] (in rows of q reals).
@group(0) @binding(1) var<storage, read> blocks: array<u32>;
@group(0) @binding(2) var<storage, read> table_offsets: array<u32>;
// Row (offset + j n + k): D for donor j and recipient k of the block.
@group(0) @binding(3) var<storage, read> table: array<Real>;
// u = L^{-1} e_0 (q reals).
@group(0) @binding(4) var<storage, read> u: array<Real>;
// Output: packed E per replicate, nb rows of q (q + 1) / 2.
@group(0) @binding(5) var<storage, read_write> e: array<Real>;
// Scratch, element-major: the local permutation (largest block) and v (q).
@group(0) @binding(6) var<storage, read_write> perm: array<u32>;
@group(0) @binding(7) var<storage, read_write> v: array<Real>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= params.nb) {
        return;
    }
    let lo = params.start.x + i;
    let carry = select(0u, 1u, lo < i);
    var s = stream_new(params.seed, vec2<u32>(lo, params.start.y + carry), params.tag);
    let q = params.q;
    let nb = params.nb;
    for (var k = 0u; k < q; k++) {
        v[k * nb + i] = Real(0.0);
    }
    for (var b = 0u; b < params.n_blocks; b++) {
        let n = blocks[b + 1u] - blocks[b];
        for (var k = 0u; k < n; k++) {
            perm[k * nb + i] = k;
        }
        for (var kk = 1u; kk < n; kk++) {
            let k = n - kk;
            let bound = k + 1u;
            let j = stream_below(&s, bound, (0u - bound) % bound);
            let a = perm[k * nb + i];
            perm[k * nb + i] = perm[j * nb + i];
            perm[j * nb + i] = a;
        }
        let offset = table_offsets[b];
        for (var k = 0u; k < n; k++) {
            let row = (offset + perm[k * nb + i] * n + k) * q;
            for (var c = 0u; c < q; c++) {
                v[c * nb + i] += table[row + c];
            }
        }
    }
    let p = q * (q + 1u) / 2u;
    var at = i * p;
    for (var a = 0u; a < q; a++) {
        for (var c = a; c < q; c++) {
            e[at] = u[a] * v[c * nb + i] + v[a * nb + i] * u[c];
            at++;
        }
    }
}
