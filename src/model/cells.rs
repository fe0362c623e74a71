//! Group-by-period fixed effects, `unit+GROUP^time` (e.g. city +
//! province^year): unit effects absorbed by demeaning within units, and one
//! effect per (group, period) cell, the groups nesting the units.
//!
//! The cell effects are partialled out of the design's columns
//! (Frisch-Waugh), so the design's per-cluster statistics `S_c` are those
//! of the fully absorbed columns z and every full-sample stage (estimates,
//! CR1, the wild bootstrap's fixed-regressor influences) needs nothing
//! else. A replicate that reweights clusters moves the cell effects,
//! though, so the design also keeps, per (cluster, group), the
//! cross-products of the unit-demeaned cell dummies d with the absorbed
//! columns, `R = sum d z'`, and the dummies' Gram, `D = sum d d'`. Since
//! partialling the dummies out of the unit-demeaned columns or out of z
//! leaves the same residuals (z differs from them by a combination of the
//! dummies), a replicate's Gram is the Schur complement of its cell block:
//!
//! `A(w) = sum_c w_c S_c - sum_h R_h' B_h^{-1} R_h`,
//! `R_h = sum_{c in h} w_c R_c`, `B_h = sum_{c in h} w_c D_c`,
//!
//! exact for every weighting. The full sample's `R_h` is zero (z is
//! orthogonal to the dummies), so the correction is of the size of the
//! replicate's change, not of the variance the cells absorb: nothing
//! large cancels, which the GPU's f32 relies on. The cell block is block
//! diagonal by group (a group's dummies are zero on every other group's
//! rows), so the cost grows with the number of cells, not with its
//! square. Within a group the first period observed has no dummy (the unit
//! effects span it): group h has `k_h` = its periods less one.

use crate::error::{Error, Result};
use crate::math::linalg::{cholesky, packed_index, packed_len, unpack};
use crate::model::panel::Panel;

/// Which cell each observation is in, and its group's size.
#[derive(Debug, Clone)]
pub struct CellIndex {
    /// The group of each observation.
    group: Vec<usize>,
    /// Each observation's cell dummy within its group (None: its group's
    /// first period).
    cell: Vec<Option<usize>>,
    /// Each observation's unit.
    unit: Vec<usize>,
    /// Per unit: its observations' cell dummies (its mean dummy vector is
    /// their sum over its count).
    unit_cells: Vec<Vec<Option<usize>>>,
    /// `k_h` per group.
    sizes: Vec<usize>,
    /// Cells observed (every group's periods): the effect's levels.
    levels: usize,
    group_name: String,
    group_levels: Vec<String>,
}

impl CellIndex {
    /// The cells of `panel`'s interacted effects.
    pub fn new(panel: &Panel, group: &crate::model::panel::Factor) -> CellIndex {
        let n = panel.n_obs();
        let n_groups = group.len();
        let n_periods = panel.time.len();
        let mut seen = vec![vec![false; n_periods]; n_groups];
        for i in 0..n {
            seen[group.codes[i] as usize][panel.time.codes[i] as usize] = true;
        }
        // Local dummy index of each (group, period); the first period seen
        // in each group has none.
        let mut local = vec![vec![None; n_periods]; n_groups];
        let mut sizes = vec![0; n_groups];
        let mut levels = 0;
        for h in 0..n_groups {
            let mut first = true;
            for t in 0..n_periods {
                if seen[h][t] {
                    levels += 1;
                    if first {
                        first = false;
                    } else {
                        local[h][t] = Some(sizes[h]);
                        sizes[h] += 1;
                    }
                }
            }
        }
        let cell: Vec<Option<usize>> = (0..n)
            .map(|i| local[group.codes[i] as usize][panel.time.codes[i] as usize])
            .collect();
        let unit: Vec<usize> = panel.unit.codes.iter().map(|&u| u as usize).collect();
        let mut unit_cells = vec![Vec::new(); panel.unit.len()];
        for i in 0..n {
            unit_cells[unit[i]].push(cell[i]);
        }
        CellIndex {
            group: group.codes.iter().map(|&g| g as usize).collect(),
            cell,
            unit,
            unit_cells,
            sizes,
            levels,
            group_name: group.name.clone(),
            group_levels: group.levels.clone(),
        }
    }

    /// Observed (group, period) cells.
    pub fn levels(&self) -> usize {
        self.levels
    }

    /// Observation i's unit-demeaned cell dummies (its group's `k_h`).
    fn dummies(&self, i: usize, d: &mut Vec<f64>) {
        let k = self.sizes[self.group[i]];
        d.clear();
        d.resize(k, 0.0);
        let cells = &self.unit_cells[self.unit[i]];
        let share = 1.0 / cells.len() as f64;
        for c in cells.iter().flatten() {
            d[*c] -= share;
        }
        if let Some(c) = self.cell[i] {
            d[c] += 1.0;
        }
    }

    /// Partial the cell effects out of `cols` (columns of the panel's
    /// observations, already demeaned within units), in place: each column
    /// less its least-squares fit on the unit-demeaned cell dummies of its
    /// group. An error names a group whose effects are not identified.
    pub fn residualise(&self, cols: &mut [Vec<f64>], source: &str) -> Result<()> {
        let q = cols.len();
        let n = self.group.len();
        let n_groups = self.sizes.len();
        let mut b: Vec<Vec<f64>> = self.sizes.iter().map(|&k| vec![0.0; k * k]).collect();
        let mut x: Vec<Vec<f64>> = self.sizes.iter().map(|&k| vec![0.0; k * q]).collect();
        let mut d = Vec::new();
        for i in 0..n {
            self.dummies(i, &mut d);
            let h = self.group[i];
            let k = d.len();
            for r in 0..k {
                if d[r] == 0.0 {
                    continue;
                }
                for s in 0..k {
                    b[h][r * k + s] += d[r] * d[s];
                }
                for (j, col) in cols.iter().enumerate() {
                    x[h][r * q + j] += d[r] * col[i];
                }
            }
        }
        // Gamma_h = B_h^{-1} X_h, column by column.
        for h in 0..n_groups {
            let k = self.sizes[h];
            if k == 0 {
                continue;
            }
            cholesky(&mut b[h], k).map_err(|_| Error::Collinear {
                file: source.to_string(),
                message: format!(
                    "the {}^time effects of {} '{}' are not identified: its units' periods do \
                     not connect (check that the panel is connected within each group)",
                    self.group_name, self.group_name, self.group_levels[h]
                ),
            })?;
            let mut col = vec![0.0; k];
            for j in 0..q {
                for r in 0..k {
                    col[r] = x[h][r * q + j];
                }
                crate::math::linalg::chol_solve(&b[h], k, &mut col);
                for r in 0..k {
                    x[h][r * q + j] = col[r];
                }
            }
        }
        for i in 0..n {
            self.dummies(i, &mut d);
            let gamma = &x[self.group[i]];
            for (j, col) in cols.iter_mut().enumerate() {
                let fit: f64 = d
                    .iter()
                    .enumerate()
                    .map(|(r, v)| v * gamma[r * q + j])
                    .sum();
                col[i] -= fit;
            }
        }
        Ok(())
    }

    /// The statistics a replicate needs, from the scaled, fully absorbed
    /// columns `z` (q columns of the observations, `residualise`d) and
    /// each observation's cluster.
    pub fn statistics(&self, z: &[Vec<f64>], cluster: &[u32]) -> Cells {
        let q = z.len();
        let n = self.group.len();
        // Entries (group, cluster) in group order, then cluster order.
        let widths: Vec<usize> = self.sizes.iter().map(|&k| k * q + packed_len(k)).collect();
        let mut pairs: Vec<(usize, usize)> = (0..n)
            .filter(|&i| self.sizes[self.group[i]] > 0)
            .map(|i| (self.group[i], cluster[i] as usize))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let n_groups = self.sizes.len();
        let mut starts = vec![0; n_groups + 1];
        let mut matrix_starts = vec![0; n_groups + 1];
        for &(h, _) in &pairs {
            starts[h + 1] += 1;
        }
        for h in 0..n_groups {
            matrix_starts[h + 1] = matrix_starts[h] + starts[h + 1] * widths[h];
            starts[h + 1] += starts[h];
        }
        let mut matrix = vec![0.0; matrix_starts[n_groups]];
        let mut d = Vec::new();
        for i in 0..n {
            let h = self.group[i];
            let k = self.sizes[h];
            if k == 0 {
                continue;
            }
            let c = cluster[i] as usize;
            let e = starts[h]
                + pairs[starts[h]..starts[h + 1]]
                    .binary_search(&(h, c))
                    .expect("every (group, cluster) pair is listed");
            let at = matrix_starts[h] + (e - starts[h]) * widths[h];
            let v = &mut matrix[at..at + widths[h]];
            self.dummies(i, &mut d);
            for r in 0..k {
                for j in 0..q {
                    v[r * q + j] += d[r] * z[j][i];
                }
            }
            let mut p = k * q;
            for r in 0..k {
                for s in r..k {
                    v[p] += d[r] * d[s];
                    p += 1;
                }
            }
        }
        let cells = Cells {
            q,
            sizes: self.sizes.clone(),
            offsets: Vec::new(),
            uniform: vec![false; n_groups],
            entry_cluster: pairs.iter().map(|&(_, c)| c).collect(),
            starts,
            matrix,
            matrix_starts,
        };
        cells.with_uniform_groups()
    }
}

impl Cells {
    /// The same statistics with every group whose entries' dummy Grams are
    /// multiples of one, `D_c = s_c D0` (every unit observed in the same
    /// periods: a balanced group), rewritten as `[L0^{-1} R_c | s_c]`
    /// (`D0 = L0 L0'`): a replicate's sums are then `Y = L0^{-1} R` and
    /// `s = sum w_c s_c`, `B = s D0`, and its cell block's Schur complement
    /// is `Y'Y / s`, with no factorisation per replicate.
    fn with_uniform_groups(mut self) -> Cells {
        let q = self.q;
        let n_groups = self.sizes.len();
        let (mut matrix, mut matrix_starts) = (Vec::new(), vec![0; n_groups + 1]);
        for h in 0..n_groups {
            let k = self.sizes[h];
            let width = k * q + packed_len(k);
            let rows: Vec<&[f64]> = (self.starts[h]..self.starts[h + 1])
                .map(|e| {
                    let at = self.matrix_starts[h] + (e - self.starts[h]) * width;
                    &self.matrix[at..at + width]
                })
                .collect();
            let uniform = uniform_factor(&rows, k, q);
            match uniform {
                Some((l0, scales)) => {
                    for (row, s) in rows.iter().zip(scales) {
                        let mut y = row[..k * q].to_vec();
                        forward_rows(&l0, k, q, &mut y);
                        matrix.extend_from_slice(&y);
                        matrix.push(s);
                    }
                    self.uniform[h] = true;
                }
                None => rows.iter().for_each(|r| matrix.extend_from_slice(r)),
            }
            matrix_starts[h + 1] = matrix.len();
        }
        let mut offsets = vec![0; n_groups + 1];
        for h in 0..n_groups {
            let k = self.sizes[h];
            let width = match self.uniform[h] {
                true => k * q + 1,
                false => k * q + packed_len(k),
            };
            offsets[h + 1] = offsets[h] + width;
        }
        Cells {
            matrix,
            matrix_starts,
            offsets,
            ..self
        }
    }
}

/// For a group's entries (rows `[C | packed D]`): when every D is a
/// multiple `s_c D0` of the first (to 1e-12 of its scale) and D0 is
/// positive definite, D0's Cholesky factor and each entry's s_c.
fn uniform_factor(rows: &[&[f64]], k: usize, q: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let first = rows.first()?;
    let d0 = &first[k * q..];
    let top = d0.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if top == 0.0 {
        return None;
    }
    let mut scales = Vec::with_capacity(rows.len());
    for row in rows {
        let d = &row[k * q..];
        let s = d[0] / d0[0];
        if d.iter()
            .zip(d0)
            .any(|(a, b)| (a - s * b).abs() > 1e-12 * top * s.abs().max(1.0))
        {
            return None;
        }
        scales.push(s);
    }
    let mut l0 = unpack(d0, k);
    cholesky(&mut l0, k).ok()?;
    Some((l0, scales))
}

/// A pivot at most this fraction of its cell's diagonal is a cell whose
/// effect the replicate does not identify (`eliminate`). Such pivots are
/// rounding noise, some 1e-15 of the diagonal; an identified cell's is
/// far above.
pub const UNIDENTIFIED: f64 = 1e-9;

/// A replicate's cell block `b` (packed upper, k x k) factored in place,
/// `U'U = B`, and `y` (k rows of q) replaced by `U'^{-1} y`, dropping each
/// cell whose effect the replicate does not identify: one none of whose
/// clusters drew weight (an exact zero row of B and of y), or one whose
/// dummy is a combination of the cells before it and the unit effects (a
/// group whose drawn units all miss its first period: the unit effects
/// span one of its cells). A dropped cell's rows of U and y are zero, so
/// `y'y` is the Schur complement of the identified cells, as a refit
/// without the dropped dummies gives.
pub fn eliminate(b: &mut [f64], k: usize, y: &mut [f64], q: usize) {
    for i in 0..k {
        let ii = packed_index(i, i, k);
        let mut d = b[ii];
        for u in 0..i {
            d -= b[packed_index(u, i, k)].powi(2);
        }
        if d <= UNIDENTIFIED * b[ii] {
            for j in i..k {
                b[packed_index(i, j, k)] = 0.0;
            }
            y[i * q..(i + 1) * q].iter_mut().for_each(|v| *v = 0.0);
            continue;
        }
        let p = d.sqrt();
        b[ii] = p;
        for j in i + 1..k {
            let mut v = b[packed_index(i, j, k)];
            for u in 0..i {
                v -= b[packed_index(u, i, k)] * b[packed_index(u, j, k)];
            }
            b[packed_index(i, j, k)] = v / p;
        }
        for a in 0..q {
            let mut v = y[i * q + a];
            for u in 0..i {
                v -= b[packed_index(u, i, k)] * y[u * q + a];
            }
            y[i * q + a] = v / p;
        }
    }
}

/// `a . b` with four partial sums, which the compiler keeps in one vector
/// register (a single running sum would serialise every addition).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..4 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// `y <- L^{-1} y` for `y` of k rows of q (L lower, k x k).
fn forward_rows(l: &[f64], k: usize, q: usize, y: &mut [f64]) {
    for r in 0..k {
        for c in 0..r {
            let v = l[r * k + c];
            if v != 0.0 {
                for j in 0..q {
                    y[r * q + j] -= v * y[c * q + j];
                }
            }
        }
        let inv = 1.0 / l[r * k + r];
        for j in 0..q {
            y[r * q + j] *= inv;
        }
    }
}

/// What a replicate needs of the cell effects (see the module doc).
#[derive(Debug, Clone)]
pub struct Cells {
    q: usize,
    /// `k_h` per group.
    pub sizes: Vec<usize>,
    /// Where group h's sums start in a replicate's row of sums (its
    /// `k_h q` cross-products `R_h`, row-major by dummy, then the packed
    /// `B_h`; for a uniform group `L0^{-1} R_h` and the scale of `B_h`);
    /// `offsets[groups]` is the row's width.
    pub offsets: Vec<usize>,
    /// Groups whose dummy Grams are multiples of one (`with_uniform_groups`).
    pub uniform: Vec<bool>,
    /// The cluster of each (group, cluster) entry; group h's entries are
    /// `starts[h] .. starts[h + 1]`.
    pub entry_cluster: Vec<usize>,
    pub starts: Vec<usize>,
    /// Group h's entries' statistics, one row of its width per entry,
    /// row-major from `matrix_starts[h]`.
    pub matrix: Vec<f64>,
    pub matrix_starts: Vec<usize>,
}

impl Cells {
    /// The same cells with each row of every entry's R (and a balanced
    /// group's `L0^{-1} R`) mapped by `map` to `q_new` values: a linear
    /// change of the design's columns, such as the GPU's whitening, which
    /// commutes with the groups' factors on the left.
    pub fn mapped(&self, q_new: usize, map: impl Fn(&[f64], &mut [f64])) -> Cells {
        let (q, n_groups) = (self.q, self.sizes.len());
        let (mut matrix, mut matrix_starts) = (Vec::new(), vec![0; n_groups + 1]);
        let mut offsets = vec![0; n_groups + 1];
        let mut row = vec![0.0; q_new];
        for h in 0..n_groups {
            let k = self.sizes[h];
            let width = self.offsets[h + 1] - self.offsets[h];
            let tail = width - k * q;
            for e in self.starts[h]..self.starts[h + 1] {
                let at = self.matrix_starts[h] + (e - self.starts[h]) * width;
                let entry = &self.matrix[at..at + width];
                for r in 0..k {
                    map(&entry[r * q..(r + 1) * q], &mut row);
                    matrix.extend_from_slice(&row);
                }
                matrix.extend_from_slice(&entry[k * q..]);
            }
            matrix_starts[h + 1] = matrix.len();
            offsets[h + 1] = offsets[h] + k * q_new + tail;
        }
        Cells {
            q: q_new,
            offsets,
            matrix,
            matrix_starts,
            ..self.clone()
        }
    }

    /// Width of a replicate's row of sums.
    pub fn width(&self) -> usize {
        self.offsets[self.sizes.len()]
    }

    /// Subtract the cell block's Schur complement from `packed` (a
    /// replicate's `sum_c w_c S_c`), given the replicate's `sums` (row
    /// `offsets`' width: each entry's statistics times its cluster's
    /// weight, summed by group). `scratch` is reused between calls.
    pub fn partial_out(&self, packed: &mut [f64], sums: &[f64], scratch: &mut Vec<f64>) {
        let q = self.q;
        // Uniform groups (B = s D0): their Schur complements sum to Z'Z,
        // Z the rows of each group's Y = L0^{-1} R over sqrt(s), stacked;
        // Z is held by column, so each entry of Z'Z is one long dot product.
        let rows: usize = (0..self.sizes.len())
            .filter(|&h| self.uniform[h])
            .map(|h| self.sizes[h])
            .sum();
        scratch.clear();
        scratch.resize(q * rows, 0.0);
        let mut at = 0;
        for h in (0..self.sizes.len()).filter(|&h| self.uniform[h]) {
            let k = self.sizes[h];
            let s = &sums[self.offsets[h]..self.offsets[h + 1]];
            let total = s[k * q];
            // A group none of whose clusters drew weight adds nothing.
            if total > 0.0 {
                let f = 1.0 / total.sqrt();
                for r in 0..k {
                    for a in 0..q {
                        scratch[a * rows + at + r] = s[r * q + a] * f;
                    }
                }
            }
            at += k;
        }
        let mut p = 0;
        for a in 0..q {
            let za = &scratch[a * rows..(a + 1) * rows];
            for c in a..q {
                packed[p] -= dot(za, &scratch[c * rows..(c + 1) * rows]);
                p += 1;
            }
        }
        for h in (0..self.sizes.len()).filter(|&h| !self.uniform[h]) {
            let k = self.sizes[h];
            let s = &sums[self.offsets[h]..self.offsets[h + 1]];
            scratch.clear();
            scratch.extend_from_slice(s);
            let (y, b) = scratch.split_at_mut(k * q);
            // Y = L^{-1} R (B = L L', cells without an effect in this
            // replicate dropped), so R' B^{-1} R = Y' Y.
            eliminate(b, k, y, q);
            for r in 0..k {
                let y = &y[r * q..(r + 1) * q];
                let mut p = 0;
                for a in 0..q {
                    let ya = y[a];
                    let row = &mut packed[p..p + q - a];
                    for (t, &yc) in row.iter_mut().zip(&y[a..]) {
                        *t -= ya * yc;
                    }
                    p += q - a;
                }
            }
        }
    }

    /// The same cells indexed by a larger run's clusters: cluster c becomes
    /// cluster `map[c]` (see `Design::on_clusters`).
    pub fn on_clusters(&self, map: &[usize]) -> Cells {
        Cells {
            entry_cluster: self.entry_cluster.iter().map(|&c| map[c]).collect(),
            ..self.clone()
        }
    }

    /// The cells of the clusters `clusters` alone (cluster k of the result
    /// is cluster `clusters[k]` of this one).
    pub fn subset(&self, clusters: &[usize]) -> Cells {
        let new_of = |c: usize| clusters.iter().position(|&x| x == c);
        let n_groups = self.sizes.len();
        let (mut entry_cluster, mut matrix) = (Vec::new(), Vec::new());
        let mut starts = vec![0; n_groups + 1];
        let mut matrix_starts = vec![0; n_groups + 1];
        for h in 0..n_groups {
            let width = self.offsets[h + 1] - self.offsets[h];
            for e in self.starts[h]..self.starts[h + 1] {
                if let Some(c) = new_of(self.entry_cluster[e]) {
                    let at = self.matrix_starts[h] + (e - self.starts[h]) * width;
                    entry_cluster.push(c);
                    matrix.extend_from_slice(&self.matrix[at..at + width]);
                }
            }
            starts[h + 1] = entry_cluster.len();
            matrix_starts[h + 1] = matrix.len();
        }
        Cells {
            entry_cluster,
            starts,
            matrix,
            matrix_starts,
            ..self.clone()
        }
    }
}
