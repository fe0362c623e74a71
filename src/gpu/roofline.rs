//! The work model of a GPU batch: for each stage, the flops and the bytes of
//! device memory traffic per replicate from the problem's dimensions, and
//! from a device's peaks the least time the stage can take (its roofline,
//! compute- or memory-bound) and the replicates per second the stages allow
//! together. `medsim bench --stages` sets the measured stage times beside
//! it; `docs/gpu.md` explains it.

/// A stage of a batch on the device, in the order the stages run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Each replicate's weight codes (`weights.wgsl`).
    Weights,
    /// Weights x per-cluster statistics (`gemm.wgsl`).
    Gemm,
    /// The permutation scheme's gather of the permuted Gram (`permute.wgsl`).
    Permute,
    /// `unit+GROUP^time` effects: each replicate's cell sums
    /// (`cell_sums.wgsl`).
    CellSums,
    /// The unbalanced groups' cell blocks factored (`cell_factor.wgsl`).
    CellFactor,
    /// The cell blocks' Schur complement taken from the Gram
    /// (`cell_partial.wgsl`).
    CellPartial,
    /// Each replicate's solve and finishing (`solve.wgsl`, `solve_iv.wgsl`).
    Solve,
    /// Studentized: the per-cluster influences of each replicate
    /// (`gemm_nt.wgsl`).
    InfluenceGemm,
    /// Studentized: the replicate's cluster-robust meat (`meat.wgsl`).
    Meat,
    /// The results copied to the host.
    Readback,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Weights => "weights",
            Stage::Gemm => "gemm",
            Stage::Permute => "permute",
            Stage::CellSums => "cell sums",
            Stage::CellFactor => "cell factor",
            Stage::CellPartial => "cell partial",
            Stage::Solve => "solve",
            Stage::InfluenceGemm => "influence gemm",
            Stage::Meat => "meat",
            Stage::Readback => "readback",
        }
    }
}

/// The dimensions the work of a batch depends on.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    /// Clusters G (the weights' length).
    pub clusters: usize,
    /// The GEMM draws the weights itself: no codes in device memory.
    pub weights_drawn: bool,
    /// The GEMM's block of rows and columns (`GemmShape::block`).
    pub gemm_block: (u32, u32),
    /// The GEMM's output per replicate: the packed Gram (or, wild, the
    /// reported coefficients).
    pub width: usize,
    /// Columns q of the design (of each system, `systems` of them).
    pub q: usize,
    /// Systems the solve factors per replicate (a moderated model's
    /// equations; else 1).
    pub systems: usize,
    pub mediators: usize,
    /// Reals read back per replicate.
    pub stride: usize,
    /// Bytes per real on the device (4 in f32, 8 in f64).
    pub real_bytes: usize,
    /// Studentized: the functionals whose influences the meat sums.
    pub functionals: usize,
    /// Studentized: the meat is every functional pair's (`meat_cov.wgsl`),
    /// not the SE targets'.
    pub covariance: bool,
    /// Scratch reals of the solve per replicate (global memory).
    pub scratch: usize,
    /// `unit+GROUP^time` effects: the cell stages' sizes (zero without).
    pub cells: CellDims,
}

/// The sizes of the cell stages' work per replicate.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CellDims {
    /// The cell sums.
    pub width: usize,
    /// Multiply-adds of the sums: each sum's (group, cluster) entries.
    pub products: usize,
    /// Cells of every group: the rows of the Schur complement.
    pub rows: usize,
    /// The unbalanced groups' factorisations and solves, and their sums.
    pub factor_flops: f64,
    pub factor_reals: usize,
}

/// Work per replicate of one stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Work {
    pub flops: f64,
    /// Bytes to and from device memory (for the readback, over the link to
    /// the host).
    pub bytes: f64,
}

/// The work per replicate of `stage` on a problem of `d`'s dimensions. A
/// GEMM's traffic is that of its blocking with no cache beyond the block:
/// each workgroup of BM rows x BN columns of output reads its BM rows of
/// one operand and BN columns of the other over the whole inner dimension
/// (`GemmShape::block`), and writes its outputs once.
pub fn work(stage: Stage, d: &Dims) -> Work {
    let (g, n, q, rb) = (
        d.clusters as f64,
        d.width as f64,
        d.q as f64,
        d.real_bytes as f64,
    );
    let m = d.mediators as f64;
    let packed = q * (q + 1.0) / 2.0;
    match stage {
        // Philox is integer work: counted in neither flops nor bytes read.
        Stage::Weights => Work {
            flops: 0.0,
            bytes: 4.0 * g,
        },
        // BM replicates' codes reread per block of BN columns (unless the
        // GEMM draws the weights), and the statistics per block of BM
        // replicates.
        Stage::Gemm => {
            let (bm, bn) = d.gemm_block;
            let codes = if d.weights_drawn {
                0.0
            } else {
                4.0 / bn as f64
            };
            Work {
                flops: 2.0 * g * n,
                bytes: g * n * (codes + rb / bm as f64) + n * rb,
            }
        }
        // Per unit a row of q reals of the table added into v (read and
        // written in global scratch), the shuffle's indices, then E.
        Stage::Permute => Work {
            flops: g * q + 2.0 * packed,
            bytes: g * q * rb * 3.0 + 12.0 * g + packed * rb,
        },
        // Each sum reads its entries' values, codes and clusters.
        Stage::CellSums => {
            let c = &d.cells;
            Work {
                flops: 2.0 * c.products as f64,
                bytes: c.products as f64 * (rb + 8.0) + c.width as f64 * rb,
            }
        }
        // The unbalanced groups' sums read and rewritten.
        Stage::CellFactor => Work {
            flops: d.cells.factor_flops,
            bytes: 2.0 * d.cells.factor_reals as f64 * rb,
        },
        // Each Gram entry sums two columns over every cell; the sums read
        // once, the Gram read and written.
        Stage::CellPartial => Work {
            flops: 2.0 * d.cells.rows as f64 * n,
            bytes: (d.cells.width as f64 + 2.0 * n) * rb,
        },
        // The Cholesky factor of the q x q system and a solve per equation;
        // reads the GEMM's output, writes the results, and its scratch.
        Stage::Solve => Work {
            flops: d.systems as f64 * (q * q * q / 3.0 + (m + 2.0) * q * q),
            bytes: (n + d.stride as f64 + 2.0 * d.scratch as f64) * rb,
        },
        // Its a operand reread per block of columns, b per block of rows.
        Stage::InfluenceGemm => {
            // Each functional is a row over every system's packed T_g.
            let (f, k) = (d.functionals as f64, d.systems as f64 * packed);
            let (nt_rows, nt_cols) = super::NT_BLOCK;
            Work {
                flops: 2.0 * g * f * k,
                bytes: g * f * k * rb * (1.0 / nt_cols as f64 + 1.0 / nt_rows as f64) + g * f * rb,
            }
        }
        Stage::Meat if d.covariance => {
            let f = d.functionals as f64;
            let pairs = f * (f + 1.0) / 2.0;
            Work {
                flops: 9.0 * g * pairs,
                bytes: 4.0 * g * pairs * rb + 4.0 * g * pairs,
            }
        }
        Stage::Meat => {
            let f = d.functionals as f64;
            Work {
                flops: 4.0 * g * f,
                bytes: g * f * rb + 4.0 * g,
            }
        }
        Stage::Readback => Work {
            flops: 0.0,
            bytes: d.stride as f64 * rb,
        },
    }
}

/// A device's ceilings.
#[derive(Clone, Copy, Debug)]
pub struct Peaks {
    /// Arithmetic, GFLOP/s, in the engine's precision.
    pub gflops: f64,
    /// Device memory, GB/s.
    pub memory_gbs: f64,
    /// Device to host, GB/s (the readback).
    pub link_gbs: f64,
}

impl Work {
    /// Seconds per replicate at `peaks` of its arithmetic and of its
    /// traffic (the readback's over the link to the host).
    fn ceilings(&self, stage: Stage, peaks: &Peaks) -> (f64, f64) {
        let bandwidth = match stage {
            Stage::Readback => peaks.link_gbs,
            _ => peaks.memory_gbs,
        };
        (
            self.flops / peaks.gflops / 1e9,
            self.bytes / bandwidth / 1e9,
        )
    }

    /// The least seconds per replicate at `peaks`.
    pub fn seconds(&self, stage: Stage, peaks: &Peaks) -> f64 {
        let (compute, memory) = self.ceilings(stage, peaks);
        compute.max(memory)
    }

    /// "compute" or "memory": the ceiling the stage meets first at `peaks`.
    pub fn bound(&self, stage: Stage, peaks: &Peaks) -> &'static str {
        let (compute, memory) = self.ceilings(stage, peaks);
        if compute >= memory {
            "compute"
        } else {
            "memory"
        }
    }
}

/// `d` as a hardware GPU runs it: with the workgroup-memory GEMM's block
/// (a software adapter profiled here may have run the subgroup kernel).
pub fn on_hardware(d: &Dims) -> Dims {
    Dims {
        gemm_block: super::GemmShape::choose(d.width as u32, false).block(),
        ..*d
    }
}

/// Replicates per second the stages allow at `peaks`, each at its roofline
/// and one after the other (the host's work not counted).
pub fn predicted_rate(stages: &[(Stage, Work)], peaks: &Peaks) -> f64 {
    1.0 / stages
        .iter()
        .map(|(s, w)| w.seconds(*s, peaks))
        .sum::<f64>()
        .max(1e-300)
}

/// Named GPUs with their published f32 peaks (vendors' data sheets), for
/// the predictions `medsim bench --stages` prints and `docs/gpu.md` holds.
pub const NAMED_GPUS: &[(&str, Peaks)] = &[
    (
        // 67 TFLOPS f32 (non-tensor), 4.8 TB/s HBM3e, PCIe Gen5 x16.
        "NVIDIA H200 SXM",
        Peaks {
            gflops: 67_000.0,
            memory_gbs: 4_800.0,
            link_gbs: 64.0,
        },
    ),
    (
        // 82.6 TFLOPS f32, 1008 GB/s GDDR6X, PCIe Gen4 x16.
        "NVIDIA GeForce RTX 4090",
        Peaks {
            gflops: 82_600.0,
            memory_gbs: 1_008.0,
            link_gbs: 32.0,
        },
    ),
    (
        // 38-core GPU: 13.6 TFLOPS f32, 400 GB/s unified memory.
        "Apple M2 Max",
        Peaks {
            gflops: 13_600.0,
            memory_gbs: 400.0,
            link_gbs: 400.0,
        },
    ),
    (
        // 96 EUs at 1.35 GHz: 2.07 TFLOPS f32; LPDDR4x-4266, 68 GB/s shared.
        "Intel Iris Xe (96 EU)",
        Peaks {
            gflops: 2_070.0,
            memory_gbs: 68.0,
            link_gbs: 68.0,
        },
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn dims() -> Dims {
        Dims {
            clusters: 278,
            weights_drawn: false,
            gemm_block: (64, 32),
            width: 45,
            q: 9,
            systems: 1,
            mediators: 1,
            stride: 4,
            real_bytes: 4,
            functionals: 0,
            covariance: false,
            scratch: 44,
            cells: CellDims::default(),
        }
    }

    /// The GEMM's flops are 2 G n; a device with a tenth of the bandwidth
    /// takes longer only on memory-bound stages.
    #[test]
    fn the_model_follows_the_dimensions_and_the_ceilings() {
        let d = dims();
        let gemm = work(Stage::Gemm, &d);
        assert_eq!(gemm.flops, 2.0 * 278.0 * 45.0);
        // The wide block (64 replicates x 32 columns): codes reread per 32
        // columns, statistics per 64 replicates; the wild path's four
        // columns take the narrow block (256 x 4).
        assert_eq!(
            gemm.bytes,
            278.0 * 45.0 * (4.0 / 32.0 + 4.0 / 64.0) + 45.0 * 4.0
        );
        let wild = Dims {
            width: 4,
            gemm_block: (256, 4),
            ..d
        };
        assert_eq!(
            work(Stage::Gemm, &wild).bytes,
            278.0 * 4.0 * (4.0 / 4.0 + 4.0 / 256.0) + 4.0 * 4.0
        );
        // Predictions for hardware take the workgroup-memory kernel's block,
        // whichever kernel the profiled adapter ran.
        let subgroup = Dims {
            gemm_block: (128, 32),
            ..d
        };
        assert_eq!(on_hardware(&subgroup).gemm_block, (64, 32));
        assert_eq!(on_hardware(&wild).gemm_block, (256, 4));
        // Drawn in the GEMM, the weights cost no traffic.
        let drawn = Dims {
            weights_drawn: true,
            ..wild
        };
        assert_eq!(
            work(Stage::Gemm, &drawn).bytes,
            278.0 * 4.0 * (4.0 / 256.0) + 4.0 * 4.0
        );
        let fast = Peaks {
            gflops: 1000.0,
            memory_gbs: 1000.0,
            link_gbs: 10.0,
        };
        let narrow = Peaks {
            memory_gbs: 100.0,
            ..fast
        };
        for stage in [Stage::Weights, Stage::Gemm, Stage::Solve] {
            let w = work(stage, &d);
            let ratio = w.seconds(stage, &narrow) / w.seconds(stage, &fast);
            match w.bound(stage, &narrow) {
                "memory" => assert!(ratio > 1.0, "{stage:?}"),
                _ => assert_eq!(ratio, 1.0, "{stage:?}"),
            }
        }
        // Weights have no flops: always memory-bound.
        assert_eq!(
            work(Stage::Weights, &d).bound(Stage::Weights, &fast),
            "memory"
        );
        let stages: Vec<(Stage, Work)> =
            [Stage::Weights, Stage::Gemm, Stage::Solve, Stage::Readback]
                .iter()
                .map(|&s| (s, work(s, &d)))
                .collect();
        let rate = predicted_rate(&stages, &fast);
        let sum: f64 = stages.iter().map(|(s, w)| w.seconds(*s, &fast)).sum();
        assert!((rate * sum - 1.0).abs() < 1e-12);
        assert!(predicted_rate(&stages, &narrow) < rate);
    }
}
