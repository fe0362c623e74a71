// Stage: the permutation scheme's replicates, one per invocation, as the
// whitened Gram deviation E that solve.wgsl takes (src/permutation.rs and
// src/gpu/permute.rs have the algebra). Within each block of units observed
// in the same periods, in block order, a Fisher-Yates shuffle of the local
// indices drawing below(i + 1) for i = n - 1 down to 1 from the Philox
// stream (seed, r, STREAM_PERMUTATION), as the CPU's `donors` does: local
// unit k takes the treatment series of local unit perm[k]. Only the
// rows of the treatment (and of a moderated or interaction model's
// products with it) change; in each system's whitened coordinates E = sum_s
// u_s v_s' + v_s u_s' over the changed columns s, with u_s = L^{-1} e_s and
// v_s = sum_k D_s[perm[k]][k], D tabulated on the host; without unit
// effects, a product's change of mean adds the rank-one -m m' (m = sum_p
// dm_p sqrt(N) u_p, the means' u scaled by the host).

// #include "philox.wgsl"
// #include "real.wgsl"

struct Params {
    seed: vec2<u32>,
    start: vec2<u32>,
    nb: u32,
    // Columns of each system.
    q: u32,
    n_blocks: u32,
    tag: u32,
    // Systems of the solve (crate::resample::whiten::Whitened::sets).
    systems: u32,
    // Reals per table row: each system's q per changed column, then the
    // products' changes of mean (n_means of them).
    width: u32,
    n_means: u32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// Block b: units blocks[b] .. blocks[b + 1] (local indices), its table at
// table_offsets[b] (in rows of q reals).
@group(0) @binding(1) var<storage, read> blocks: array<u32>;
@group(0) @binding(2) var<storage, read> table_offsets: array<u32>;
// Row (offset + j n + k), width reals: D for donor j and recipient k of
// the block.
@group(0) @binding(3) var<storage, read> table: array<Real>;
// u_s of each changed column of each system (q reals each, table order).
@group(0) @binding(4) var<storage, read> u: array<Real>;
// Output: packed E of each system per replicate, nb rows of systems q (q +
// 1) / 2.
@group(0) @binding(5) var<storage, read_write> e: array<Real>;
// Scratch, element-major: the local permutation (largest block) and v
// (width).
@group(0) @binding(6) var<storage, read_write> perm: array<u32>;
@group(0) @binding(7) var<storage, read_write> v: array<Real>;
// Changed columns of each system.
@group(0) @binding(8) var<storage, read> changed: array<u32>;
// Per system and product: sqrt(N) u of the product's column (zero where
// the system has none), q reals.
@group(0) @binding(9) var<storage, read> means: array<Real>;

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
    let width = params.width;
    for (var k = 0u; k < width; k++) {
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
            let row = (offset + perm[k * nb + i] * n + k) * width;
            for (var c = 0u; c < width; c++) {
                v[c * nb + i] += table[row + c];
            }
        }
    }
    let p = q * (q + 1u) / 2u;
    let dm = width - params.n_means;
    var at = i * params.systems * p;
    var seg = 0u;
    for (var s = 0u; s < params.systems; s++) {
        let n_changed = changed[s];
        let mean_at = s * params.n_means * q;
        for (var a = 0u; a < q; a++) {
            var ma = Real(0.0);
            for (var m = 0u; m < params.n_means; m++) {
                ma += v[(dm + m) * nb + i] * means[mean_at + m * q + a];
            }
            for (var c = a; c < q; c++) {
                var mc = Real(0.0);
                for (var m = 0u; m < params.n_means; m++) {
                    mc += v[(dm + m) * nb + i] * means[mean_at + m * q + c];
                }
                var x = -ma * mc;
                for (var t = 0u; t < n_changed; t++) {
                    let ut = (seg + t) * q;
                    x += u[ut + a] * v[(ut + c) * nb + i] + v[(ut + a) * nb + i] * u[ut + c];
                }
                e[at] = x;
                at++;
            }
        }
        seg += n_changed;
    }
}
