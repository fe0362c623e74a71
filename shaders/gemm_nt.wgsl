// Stage: out (rows x cols) = a (rows x k) times b' (b is cols x k), all Real.
// The studentized path uses it for every replicate's cluster influences at
// once: the whitened cluster statistics (G x p) times the replicates'
// influence functionals (one row of p per replicate and coefficient).
//
// Register-blocked as gemm.wgsl: 64 invocations share a 64 x 32 block of
// `out`, each keeps 8 rows x 4 neighbouring columns in registers and one
// pass of KT entries of k through workgroup memory feeds 8 x 4 x KT
// multiply-adds per invocation. Each output sums k in order 0, 1, ...

// #include "real.wgsl"

struct Params {
    rows: u32,
    cols: u32,
    k: u32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<Real>;
@group(0) @binding(2) var<storage, read> b: array<Real>;
@group(0) @binding(3) var<storage, read_write> out: array<Real>;

const THREADS: u32 = 64u;
// Invocations across (4 columns each) and down (two groups of 4 rows).
const WX: u32 = 8u;
const WY: u32 = 8u;
const BM: u32 = 64u;
const BN: u32 = 32u;
const KT: u32 = 16u;
// KT x BM entries of a as vec4s of neighbouring rows, KT x BN of b as vec4s
// of neighbouring columns (16 KiB in f64 together).
var<workgroup> a_tile: array<vec4<Real>, 256>;
var<workgroup> b_tile: array<vec4<Real>, 128>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let tx = t % WX;
    let ty = t / WX;
    let row0 = wid.y * BM;
    let col0 = wid.x * BN;
    let kk = params.k;
    var acc: array<array<vec4<Real>, 4>, 2>;
    for (var i = 0u; i < 2u; i++) {
        for (var j = 0u; j < 4u; j++) {
            acc[i][j] = vec4<Real>(0.0);
        }
    }
    let tiles = (kk + KT - 1u) / KT;
    for (var tile = 0u; tile < tiles; tile++) {
        let k0 = tile * KT;
        // Consecutive invocations read consecutive entries along k.
        for (var e = t; e < KT * BM; e += THREADS) {
            let r = e / KT;
            let k = k0 + e % KT;
            let row = row0 + r;
            var x = Real(0.0);
            if (row < params.rows && k < kk) {
                x = a[row * kk + k];
            }
            a_tile[(e % KT) * (BM / 4u) + r / 4u][r % 4u] = x;
        }
        for (var e = t; e < KT * BN; e += THREADS) {
            let c = e / KT;
            let k = k0 + e % KT;
            let col = col0 + c;
            var y = Real(0.0);
            if (col < params.cols && k < kk) {
                y = b[col * kk + k];
            }
            b_tile[(e % KT) * WX + c / 4u][c % 4u] = y;
        }
        workgroupBarrier();
        for (var k = 0u; k < KT; k++) {
            let y = b_tile[k * WX + tx];
            for (var i = 0u; i < 2u; i++) {
                let x = a_tile[k * (BM / 4u) + ty + i * WY];
                acc[i][0] += x.x * y;
                acc[i][1] += x.y * y;
                acc[i][2] += x.z * y;
                acc[i][3] += x.w * y;
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 2u; i++) {
        for (var r = 0u; r < 4u; r++) {
            let row = row0 + 4u * (ty + i * WY) + r;
            if (row >= params.rows) {
                continue;
            }
            let v = acc[i][r];
            for (var c = 0u; c < 4u; c++) {
                let col = col0 + 4u * tx + c;
                if (col < params.cols) {
                    out[row * params.cols + col] = v[c];
                }
            }
        }
    }
}
