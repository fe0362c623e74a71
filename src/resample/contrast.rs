//! Between-group contrasts: the difference of each statistic between two
//! groups' models, replicate by replicate. Both groups draw the pooled run's
//! weights for their own clusters (`CpuEngine::with_cluster_map`), so the
//! difference of replicate r is a draw of the difference's distribution,
//! summarised like any other run's draws. Studentized, the replicates' own
//! SEs of groups that share no cluster (independent estimates) combine as
//! `sqrt(se_1^2 + se_2^2)`.

use crate::error::Result;
use crate::model::replicate::StatLayout;
use crate::resample::engine::{Backend, Engine};

/// `first - second`, statistic by statistic (SEs combined, see above).
pub struct ContrastEngine<'a> {
    first: Box<dyn Engine + 'a>,
    second: Box<dyn Engine + 'a>,
}

impl<'a> ContrastEngine<'a> {
    /// The contrast of two engines with the same statistics; studentized
    /// only for groups that share no cluster.
    pub fn new(first: Box<dyn Engine + 'a>, second: Box<dyn Engine + 'a>) -> ContrastEngine<'a> {
        debug_assert_eq!(first.layout(), second.layout());
        ContrastEngine { first, second }
    }
}

impl Engine for ContrastEngine<'_> {
    fn backend(&self) -> Backend {
        self.first.backend()
    }

    fn layout(&self) -> StatLayout {
        self.first.layout()
    }

    fn compute(&self, start: u64, out: &mut [f64]) -> Result<u64> {
        self.first.compute(start, out)?;
        let mut other = vec![0.0; out.len()];
        self.second.compute(start, &mut other)?;
        let layout = self.layout();
        let n = layout.len();
        let se_from = if layout.studentized {
            layout.se_target(0)
        } else {
            n
        };
        let mut failed = 0;
        for (a, b) in out.chunks_mut(n).zip(other.chunks(n)) {
            for (x, y) in a[..se_from].iter_mut().zip(b) {
                *x -= y;
            }
            for (x, y) in a[se_from..].iter_mut().zip(&b[se_from..]) {
                *x = x.hypot(*y);
            }
            if self.failed(a) {
                failed += 1;
            }
        }
        Ok(failed)
    }

    /// A difference is degenerate where either side's replicate was.
    fn failed(&self, row: &[f64]) -> bool {
        row.iter().any(|v| v.is_nan())
    }
}
