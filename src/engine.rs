//! Engines turn replicate indices into replicate statistics. The CPU engine
//! is the reference: for a batch of replicates it draws the weight matrix W
//! (batch x G), forms every replicate's packed Gram as one GEMM,
//! `W x S` with S the per-cluster statistics (G x q(q+1)/2), and solves each
//! replicate (`replicate::Solver`). Batches run in parallel on a rayon pool;
//! replicate r's result depends only on r, never on the batch or thread.

use rayon::prelude::*;

use crate::design::Design;
use crate::error::{Error, Result};
use crate::linalg::packed_len;
use crate::replicate::{Solver, StatLayout};
use crate::scheme::WeightPlan;

/// A backend that computes replicate statistics.
pub trait Engine: Sync {
    /// `"cpu"` or the GPU adapter's name.
    fn backend(&self) -> String;
    /// Layout of each replicate's statistics.
    fn layout(&self) -> StatLayout;
    /// Statistics of replicates `start, start + 1, ...` into `out`, row-major
    /// with `layout().len()` values per replicate; returns how many
    /// replicates were degenerate (NaN statistics).
    fn compute(&self, start: u64, out: &mut [f64]) -> Result<u64>;
}

/// The CPU engine over one design and one weight plan.
///
/// Entries of the packed cluster Gram that are the same in every cluster
/// (in a balanced panel, the period-dummy block of the within-unit Gram is)
/// need no GEMM: their replicate value is the sum of the weights times the
/// common value. Only the varying columns go through the multiply.
pub struct CpuEngine<'a> {
    design: &'a Design,
    weights: WeightPlan,
    batch: usize,
    pool: rayon::ThreadPool,
    solver: Solver,
    /// Packed positions that vary across clusters, and the G x n_varying
    /// matrix of their values.
    varying: Vec<usize>,
    varying_stats: Vec<f64>,
    /// Packed positions equal in every cluster, with that value.
    constant: Vec<(usize, f64)>,
}

impl<'a> CpuEngine<'a> {
    /// `batch` replicates per GEMM; `threads` workers (0: one per core).
    pub fn new(
        design: &'a Design,
        weights: WeightPlan,
        batch: usize,
        threads: usize,
    ) -> Result<Self> {
        if batch == 0 {
            return Err(Error::InvalidOption {
                option: "--batch".into(),
                message: "the batch size must be at least 1".into(),
            });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| Error::InvalidOption {
                option: "--threads".into(),
                message: e.to_string(),
            })?;
        let g = design.n_clusters;
        let p = packed_len(design.q());
        let (mut varying, mut constant) = (Vec::new(), Vec::new());
        for k in 0..p {
            let first = design.stats[k];
            if (1..g).all(|c| design.stats[c * p + k] == first) {
                constant.push((k, first));
            } else {
                varying.push(k);
            }
        }
        let varying_stats = (0..g)
            .flat_map(|c| varying.iter().map(move |&k| design.stats[c * p + k]))
            .collect();
        Ok(CpuEngine {
            design,
            weights,
            batch,
            pool,
            solver: Solver::new(design),
            varying,
            varying_stats,
            constant,
        })
    }

    /// Worker threads in use.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// One batch, compiled twice: for AVX2 + FMA, chosen at run time where
    /// the processor has them, and for the baseline. Rust never fuses a
    /// multiply and an add on its own, so both give identical bits.
    fn batch_stats(&self, start: u64, out: &mut [f64]) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the features were detected on this processor.
            return unsafe { self.batch_stats_avx2(start, out) };
        }
        self.batch_stats_generic(start, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn batch_stats_avx2(&self, start: u64, out: &mut [f64]) -> u64 {
        self.batch_stats_generic(start, out)
    }

    #[inline(always)]
    fn batch_stats_generic(&self, start: u64, out: &mut [f64]) -> u64 {
        let n_stats = self.solver.layout.len();
        let nb = out.len() / n_stats;
        let g = self.design.n_clusters;
        let p = packed_len(self.design.q());
        let nv = self.varying.len();
        let mut w = vec![0.0; nb * g];
        let mut wsum = vec![0.0; nb];
        for (i, row) in w.chunks_mut(g).enumerate() {
            wsum[i] = self.weights.fill(start + i as u64, row);
        }
        let mut gram = vec![0.0; nb * nv];
        // SAFETY: the slices hold nb x g, g x nv and nb x nv row-major values,
        // matching the dimensions and strides passed.
        unsafe {
            matrixmultiply::dgemm(
                nb,
                g,
                nv,
                1.0,
                w.as_ptr(),
                g as isize,
                1,
                self.varying_stats.as_ptr(),
                nv as isize,
                1,
                0.0,
                gram.as_mut_ptr(),
                nv as isize,
                1,
            );
        }
        let mut solver = self.solver.clone();
        let mut packed = vec![0.0; p];
        let mut failed = 0;
        for (i, (stats, &total)) in out.chunks_mut(n_stats).zip(&wsum).enumerate() {
            for (&k, &v) in self.varying.iter().zip(&gram[i * nv..(i + 1) * nv]) {
                packed[k] = v;
            }
            for &(k, c) in &self.constant {
                packed[k] = total * c;
            }
            if !solver.solve(&packed, stats) {
                failed += 1;
            }
        }
        failed
    }
}

impl Engine for CpuEngine<'_> {
    fn backend(&self) -> String {
        "cpu".into()
    }

    fn layout(&self) -> StatLayout {
        self.solver.layout
    }

    fn compute(&self, start: u64, out: &mut [f64]) -> Result<u64> {
        let n_stats = self.solver.layout.len();
        let chunk = self.batch * n_stats;
        let failed = self.pool.install(|| {
            out.par_chunks_mut(chunk)
                .enumerate()
                .map(|(i, block)| self.batch_stats(start + (i * self.batch) as u64, block))
                .sum()
        });
        Ok(failed)
    }
}
