//! Small dense f64 linear algebra for the per-equation solves: packed
//! upper-triangle storage of symmetric matrices, Cholesky factorisation,
//! solves and inverses. Matrices here are tens of rows, so plain loops win.

/// Number of entries in the packed upper triangle of a `q x q` symmetric matrix.
pub fn packed_len(q: usize) -> usize {
    q * (q + 1) / 2
}

/// Position of entry (i, j) in the packed upper triangle (row-major, i <= j
/// after swapping). Row i starts at `i*q - i*(i-1)/2`.
#[inline]
pub fn packed_index(i: usize, j: usize, q: usize) -> usize {
    let (i, j) = if i <= j { (i, j) } else { (j, i) };
    i * q - i * i.saturating_sub(1) / 2 + (j - i)
}

/// Expand a packed upper triangle into a full row-major `q x q` matrix.
pub fn unpack(packed: &[f64], q: usize) -> Vec<f64> {
    let mut full = vec![0.0; q * q];
    let mut k = 0;
    for i in 0..q {
        for j in i..q {
            full[i * q + j] = packed[k];
            full[j * q + i] = packed[k];
            k += 1;
        }
    }
    full
}

/// The quadratic form `g' V g` of a row-major `d x d` matrix, d = g.len().
pub fn quadratic_form(g: &[f64], v: &[f64]) -> f64 {
    let d = g.len();
    let mut s = 0.0;
    for i in 0..d {
        for j in 0..d {
            s += g[i] * v[i * d + j] * g[j];
        }
    }
    s
}

/// Extract the sub-matrix `a[rows, cols]` of a full row-major `q x q` matrix.
pub fn submatrix(a: &[f64], q: usize, rows: &[usize], cols: &[usize]) -> Vec<f64> {
    let mut out = Vec::with_capacity(rows.len() * cols.len());
    for &r in rows {
        for &c in cols {
            out.push(a[r * q + c]);
        }
    }
    out
}

/// In-place Cholesky factorisation `a = L L'` of a symmetric positive-definite
/// `n x n` row-major matrix; the lower triangle of `a` becomes L and the strict
/// upper triangle is zeroed. Returns the index of the first non-positive pivot
/// on failure.
pub fn cholesky(a: &mut [f64], n: usize) -> Result<(), usize> {
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d.is_nan() || d <= 0.0 {
            return Err(j);
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in (j + 1)..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
        for i in (j + 1)..n {
            a[j * n + i] = 0.0;
        }
    }
    Ok(())
}

/// Solve `L L' x = b` in place, given the factor from [`cholesky`].
pub fn chol_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in (i + 1)..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Inverse of `L L'` as a full row-major matrix.
pub fn chol_inverse(l: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0; n * n];
    let mut col = vec![0.0; n];
    for j in 0..n {
        col.iter_mut().for_each(|v| *v = 0.0);
        col[j] = 1.0;
        chol_solve(l, n, &mut col);
        for i in 0..n {
            inv[i * n + j] = col[i];
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_index_walks_the_upper_triangle_in_order() {
        let q = 5;
        let mut k = 0;
        for i in 0..q {
            for j in i..q {
                assert_eq!(packed_index(i, j, q), k);
                assert_eq!(packed_index(j, i, q), k);
                k += 1;
            }
        }
        assert_eq!(k, packed_len(q));
    }

    #[test]
    fn cholesky_solves_and_inverts() {
        // A = M M' + I for a fixed M, so it is SPD.
        let n = 4;
        let m = [
            1.0, 2.0, 0.5, -1.0, 0.0, 1.0, 3.0, 2.0, -2.0, 0.5, 1.0, 0.0, 1.5, 1.0, -0.5, 2.0,
        ];
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| m[i * n + k] * m[j * n + k]).sum::<f64>()
                    + if i == j { 1.0 } else { 0.0 };
            }
        }
        let mut l = a.clone();
        cholesky(&mut l, n).unwrap();
        let x_true = [1.0, -2.0, 3.0, 0.25];
        let mut b: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| a[i * n + j] * x_true[j]).sum())
            .collect();
        chol_solve(&l, n, &mut b);
        for i in 0..n {
            assert!((b[i] - x_true[i]).abs() < 1e-12, "{b:?}");
        }
        let inv = chol_inverse(&l, n);
        for i in 0..n {
            for j in 0..n {
                let e: f64 = (0..n).map(|k| a[i * n + k] * inv[k * n + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((e - want).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn cholesky_reports_the_singular_pivot() {
        // Third column is the sum of the first two.
        let n = 3;
        let mut a = vec![2.0, 1.0, 3.0, 1.0, 2.0, 3.0, 3.0, 3.0, 6.0];
        assert_eq!(cholesky(&mut a, n), Err(2));
    }
}
