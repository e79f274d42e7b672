//! Singular value decomposition of a 3x3 matrix by one-sided (Hestenes) Jacobi rotations.
//!
//! Only `io_orientation` needs it, to find the rotation closest to an affine's direction
//! matrix. One-sided Jacobi keeps exactly-zero columns exactly zero, so a degenerate affine
//! gets exactly-zero singular values, as LAPACK gives nibabel.

/// `a = u · diag(s) · vᵀ`; columns of `u` with a zero singular value are zero.
pub(crate) struct Svd3 {
    pub u: [[f64; 3]; 3],
    pub s: [f64; 3],
    pub v: [[f64; 3]; 3],
}

pub(crate) fn svd3(a: &[[f64; 3]; 3]) -> Svd3 {
    let mut w = *a; // columns are rotated in place until mutually orthogonal
    let mut v = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    for _sweep in 0..60 {
        let mut rotated = false;
        for (p, q) in [(0, 1), (0, 2), (1, 2)] {
            let (mut alpha, mut beta, mut gamma) = (0.0, 0.0, 0.0);
            for row in &w {
                alpha += row[p] * row[p];
                beta += row[q] * row[q];
                gamma += row[p] * row[q];
            }
            if gamma == 0.0 || gamma.abs() <= f64::EPSILON * (alpha * beta).sqrt() {
                continue;
            }
            rotated = true;
            let zeta = (beta - alpha) / (2.0 * gamma);
            let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
            let c = 1.0 / (1.0 + t * t).sqrt();
            let s = c * t;
            for m in [&mut w, &mut v] {
                for row in m.iter_mut() {
                    let (x, y) = (row[p], row[q]);
                    row[p] = c * x - s * y;
                    row[q] = s * x + c * y;
                }
            }
        }
        if !rotated {
            break;
        }
    }
    let s: [f64; 3] =
        std::array::from_fn(|c| (w[0][c] * w[0][c] + w[1][c] * w[1][c] + w[2][c] * w[2][c]).sqrt());
    let mut u = [[0.0; 3]; 3];
    for (c, &sigma) in s.iter().enumerate() {
        if sigma > 0.0 {
            for r in 0..3 {
                u[r][c] = w[r][c] / sigma;
            }
        }
    }
    Svd3 { u, s, v }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reconstruct(d: &Svd3) -> [[f64; 3]; 3] {
        std::array::from_fn(|r| {
            std::array::from_fn(|c| (0..3).map(|k| d.u[r][k] * d.s[k] * d.v[c][k]).sum())
        })
    }

    #[test]
    fn reconstructs_general_matrix() {
        let a = [[0.3, -1.2, 0.5], [2.0, 0.1, -0.7], [0.4, 0.9, 1.6]];
        let d = svd3(&a);
        let b = reconstruct(&d);
        for r in 0..3 {
            for c in 0..3 {
                assert!((a[r][c] - b[r][c]).abs() < 1e-12, "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn zero_column_gives_exact_zero_singular_value() {
        let a = [[1.0, 0.0, 0.2], [0.0, 0.0, 1.0], [0.3, 0.0, 0.0]];
        let d = svd3(&a);
        assert_eq!(d.s.iter().filter(|&&s| s == 0.0).count(), 1);
    }
}
