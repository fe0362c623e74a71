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
pub struct CpuEngine<'a> {
    design: &'a Design,
    weights: WeightPlan,
    batch: usize,
    pool: rayon::ThreadPool,
    solver: Solver,
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
        Ok(CpuEngine {
            design,
            weights,
            batch,
            pool,
            solver: Solver::new(design),
        })
    }

    /// Worker threads in use.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    fn batch_stats(&self, start: u64, out: &mut [f64]) -> u64 {
        let n_stats = self.solver.layout.len();
        let nb = out.len() / n_stats;
        let g = self.design.n_clusters;
        let p = packed_len(self.design.q());
        let mut w = vec![0.0; nb * g];
        for (i, row) in w.chunks_mut(g).enumerate() {
            self.weights.fill(start + i as u64, row);
        }
        let mut gram = vec![0.0; nb * p];
        // SAFETY: the slices hold nb x g, g x p and nb x p row-major values,
        // matching the dimensions and strides passed.
        unsafe {
            matrixmultiply::dgemm(
                nb,
                g,
                p,
                1.0,
                w.as_ptr(),
                g as isize,
                1,
                self.design.stats.as_ptr(),
                p as isize,
                1,
                0.0,
                gram.as_mut_ptr(),
                p as isize,
                1,
            );
        }
        let mut solver = self.solver.clone();
        let mut failed = 0;
        for (row, stats) in gram.chunks(p).zip(out.chunks_mut(n_stats)) {
            if !solver.solve(row, stats) {
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
