//! One replicate's statistics from its Gram matrix: the three equations of
//! the mediation model solved by one Cholesky factorisation of the regressor
//! block, giving a, b, c, c', the indirect effects and the proportion
//! mediated in the units of the data. The same code serves the point estimate
//! check, every reweighting scheme and (as the reference) the GPU engine.
//!
//! # Statistic layout (per replicate, `StatLayout::len()` values)
//!
//! With m mediators: `a_1..a_m`, `b_1..b_m`, `a_1 b_1..a_m b_m`, `c`, `c'`,
//! `indirect = sum_j a_j b_j`, `proportion = indirect / c`. A replicate whose
//! regressor block is singular (a degenerate resample) gives NaN everywhere.

use crate::design::Design;
use crate::linalg::{cholesky, packed_len};

/// Positions of the statistics of one replicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatLayout {
    pub mediators: usize,
}

impl StatLayout {
    /// Number of statistics per replicate.
    pub fn len(&self) -> usize {
        3 * self.mediators + 4
    }
    /// Never empty; here for clippy's sake.
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn a(&self, j: usize) -> usize {
        j
    }
    pub fn b(&self, j: usize) -> usize {
        self.mediators + j
    }
    pub fn ab(&self, j: usize) -> usize {
        2 * self.mediators + j
    }
    pub fn c(&self) -> usize {
        3 * self.mediators
    }
    pub fn c_prime(&self) -> usize {
        3 * self.mediators + 1
    }
    pub fn indirect(&self) -> usize {
        3 * self.mediators + 2
    }
    pub fn proportion(&self) -> usize {
        3 * self.mediators + 3
    }

    /// The statistic behind an effect key of summary.json.
    pub fn index_of(&self, key: &str, mediators: &[String]) -> Option<usize> {
        let med = |name: &str| mediators.iter().position(|m| m == name);
        match key.split_once(':') {
            Some(("a", m)) => med(m).map(|j| self.a(j)),
            Some(("b", m)) => med(m).map(|j| self.b(j)),
            Some(("indirect", m)) => med(m).map(|j| self.ab(j)),
            _ => match key {
                "a" if self.mediators == 1 => Some(self.a(0)),
                "b" if self.mediators == 1 => Some(self.b(0)),
                "c" => Some(self.c()),
                "c_prime" => Some(self.c_prime()),
                "indirect" => Some(self.indirect()),
                "proportion_mediated" => Some(self.proportion()),
                _ => None,
            },
        }
    }
}

/// Solves replicate Gram matrices of one design. Holds scratch space, so
/// each thread keeps its own.
#[derive(Debug, Clone)]
pub struct Solver {
    q: usize,
    k0: usize,
    ko: usize,
    m: usize,
    /// Ratios turning scaled coefficients into data units.
    x_to_m: Vec<f64>,
    x_to_y: f64,
    m_to_y: Vec<f64>,
    pub layout: StatLayout,
    full: Vec<f64>,
    l: Vec<f64>,
    rhs: Vec<f64>,
}

impl Solver {
    /// A solver for `design`'s column layout and scales.
    pub fn new(design: &Design) -> Solver {
        let lay = design.layout;
        let q = design.q();
        let m = lay.n_mediators;
        let ko = lay.outcome();
        let s = &design.scale;
        let sx = s[lay.treatment()];
        let sy = s[lay.outcome()];
        Solver {
            q,
            k0: ko - m,
            ko,
            m,
            x_to_m: (0..m).map(|j| s[lay.mediator(j)] / sx).collect(),
            x_to_y: sy / sx,
            m_to_y: (0..m).map(|j| sy / s[lay.mediator(j)]).collect(),
            layout: StatLayout { mediators: m },
            full: vec![0.0; q * q],
            l: vec![0.0; ko * ko],
            rhs: vec![0.0; ko],
        }
    }

    /// Length of the packed Gram this solver reads.
    pub fn packed_len(&self) -> usize {
        packed_len(self.q)
    }

    /// Statistics of the replicate whose packed Gram is `packed` into `out`;
    /// false (and NaN statistics) when the regressors are singular.
    pub fn solve(&mut self, packed: &[f64], out: &mut [f64]) -> bool {
        let (q, ko, k0, m) = (self.q, self.ko, self.k0, self.m);
        let mut k = 0;
        for i in 0..q {
            for j in i..q {
                self.full[i * q + j] = packed[k];
                self.full[j * q + i] = packed[k];
                k += 1;
            }
        }
        for i in 0..ko {
            self.l[i * ko..(i + 1) * ko].copy_from_slice(&self.full[i * q..i * q + ko]);
        }
        if cholesky(&mut self.l, ko).is_err() {
            out.iter_mut().for_each(|v| *v = f64::NAN);
            return false;
        }
        let lay = self.layout;
        let y = q - 1;
        // Total effect: Y on the base block.
        let c = self.first_coef(k0, y) * self.x_to_y;
        // Mediators: M_j on the base block.
        for j in 0..m {
            out[lay.a(j)] = self.first_coef(k0, k0 + j) * self.x_to_m[j];
        }
        // Outcome: Y on base block and mediators.
        for i in 0..ko {
            self.rhs[i] = self.full[i * q + y];
        }
        solve_leading(&self.l, ko, ko, &mut self.rhs);
        let c_prime = self.rhs[0] * self.x_to_y;
        let mut indirect = 0.0;
        for j in 0..m {
            let b = self.rhs[k0 + j] * self.m_to_y[j];
            out[lay.b(j)] = b;
            let ab = out[lay.a(j)] * b;
            out[lay.ab(j)] = ab;
            indirect += ab;
        }
        out[lay.c()] = c;
        out[lay.c_prime()] = c_prime;
        out[lay.indirect()] = indirect;
        out[lay.proportion()] = indirect / c;
        true
    }

    /// Treatment coefficient (scaled) of column `dep` on the first `k` columns.
    fn first_coef(&mut self, k: usize, dep: usize) -> f64 {
        let q = self.q;
        for i in 0..k {
            self.rhs[i] = self.full[i * q + dep];
        }
        solve_leading(&self.l, self.ko, k, &mut self.rhs[..k]);
        self.rhs[0]
    }
}

/// Solve `L_k L_k' x = b` where `L_k` is the leading `k x k` block of the
/// lower-triangular `l` (row stride `n`): the Cholesky factor of the leading
/// block of a matrix is the leading block of its factor.
fn solve_leading(l: &[f64], n: usize, k: usize, b: &mut [f64]) {
    for i in 0..k {
        let mut s = b[i];
        for j in 0..i {
            s -= l[i * n + j] * b[j];
        }
        b[i] = s / l[i * n + i];
    }
    for i in (0..k).rev() {
        let mut s = b[i];
        for j in i + 1..k {
            s -= l[j * n + i] * b[j];
        }
        b[i] = s / l[i * n + i];
    }
}
