//! ITK's 3x3 matrix inverse, reproduced bit for bit.
//!
//! pyradiomics resamples with SimpleITK, and ITK maps a physical point to a (continuous)
//! index with the image's `m_PhysicalPointToIndex` matrix, which ITK 5.4 computes as
//! `(Direction * diag(Spacing)).GetInverse()`. Nearest-neighbour resampling rounds those
//! continuous indices, so when a sample point falls (mathematically) exactly half-way
//! between two voxels, the last bits of that matrix decide which voxel wins. To make the
//! same choices we need the very same matrix, not merely an accurate inverse.
//!
//! ITK 5.4's `itk::Matrix::GetInverse()` (SimpleITK 2.5) is `vnl_matrix_inverse<double>`,
//! i.e. the pseudo-inverse from `vnl_svd<double>` with a zero tolerance of 0:
//!
//! 1. the matrix is copied into column-major (Fortran) storage and decomposed by LINPACK's
//!    `dsvdc` (the f2c translation in VXL's `v3p/netlib`, `job = 21`), which uses the
//!    reference BLAS `dnrm2` (Hammarling's scaled sum of squares), `drotg`, `drot`, `ddot`,
//!    `daxpy`, `dscal` and `dswap`;
//! 2. `vnl_svd` takes `W = |s|` (no further sorting, scaling or sign fixes: `dsvdc` already
//!    returns the singular values non-negative and in decreasing order), and
//!    `Winverse = 1 / w` for every `w` that is not exactly zero;
//! 3. `pinverse()` returns `V * Winverse * U^T`, two dense `vnl_matrix` products, each entry
//!    summed as `sum = 0; for j { sum += a[i][j] * b[j][k] }`.
//!
//! This module follows that arithmetic operation for operation (same order, no fused
//! multiply-add), including the f2c `abs`/`max`/`d_sign` macros' treatment of `-0.0`.
//! Ported from ITK's v5.4.7 sources (`vnl_svd.hxx`, `vnl_matrix_inverse.h`, `vnl_matrix.h`,
//! `v3p/netlib/linpack/dsvdc.c`, `v3p/netlib/blas/*.c`; unchanged throughout 5.4.x).
//! `tests` checks it against ITK's own results (`fixtures/radiomics/itk_inverse.json`,
//! made by `tools/fixtures/make_itk_inverse_fixtures.py`).

/// The matrix order. The LINPACK port stores vectors and matrices 1-based, as Fortran
/// indexes them (index 0 unused), so that `x[j][i]` is Fortran's `x(i, j)`.
const N: usize = 3;
/// A 1-based vector.
type Vec1 = [f64; N + 1];
/// A 1-based, column-major matrix: `a[col][row]`.
type Mat1 = [Vec1; N + 1];

/// f2c's `abs` macro, `x >= 0 ? x : -x` (keeps the sign of `-0.0`, unlike `f64::abs`).
fn f2c_abs(x: f64) -> f64 {
    if x >= 0.0 {
        x
    } else {
        -x
    }
}

/// f2c's `max` macro, `a >= b ? a : b`.
fn f2c_max(a: f64, b: f64) -> f64 {
    if a >= b {
        a
    } else {
        b
    }
}

/// libf2c's `d_sign(a, b)`: |a| with the sign of b, where `-0.0` counts as positive.
fn d_sign(a: f64, b: f64) -> f64 {
    let x = if a >= 0.0 { a } else { -a };
    if b >= 0.0 {
        x
    } else {
        -x
    }
}

/// BLAS `dnrm2` (Hammarling): the 2-norm via a running scale and scaled sum of squares.
fn dnrm2(x: &[f64]) -> f64 {
    match x.len() {
        0 => 0.0,
        1 => f2c_abs(x[0]),
        _ => {
            let mut scale = 0.0;
            let mut ssq = 1.0;
            for &xi in x {
                if xi != 0.0 {
                    let absxi = f2c_abs(xi);
                    if scale < absxi {
                        let r = scale / absxi;
                        ssq = ssq * (r * r) + 1.0;
                        scale = absxi;
                    } else {
                        let r = absxi / scale;
                        ssq += r * r;
                    }
                }
            }
            scale * ssq.sqrt()
        }
    }
}

/// BLAS `ddot` for the short (< 5) vectors met here: a plain left-to-right sum from 0.
fn ddot(x: &[f64], y: &[f64]) -> f64 {
    debug_assert!(x.len() == y.len() && x.len() < 5);
    let mut dtemp = 0.0;
    for (a, b) in x.iter().zip(y) {
        dtemp += a * b;
    }
    dtemp
}

/// BLAS `daxpy`: `y += da * x` (nothing at all when `da == 0`).
fn daxpy(da: f64, x: &[f64], y: &mut [f64]) {
    if da == 0.0 {
        return;
    }
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += da * xi;
    }
}

/// BLAS `dscal`: `x = da * x`.
#[allow(clippy::assign_op_pattern)] // the BLAS operand order (the same bits either way)
fn dscal(da: f64, x: &mut [f64]) {
    for xi in x {
        *xi = da * *xi;
    }
}

/// BLAS `drot`: apply the plane rotation (c, s) to the vector pair (x, y).
fn drot(x: &mut [f64], y: &mut [f64], c: f64, s: f64) {
    for (xi, yi) in x.iter_mut().zip(y.iter_mut()) {
        let dtemp = c * *xi + s * *yi;
        *yi = c * *yi - s * *xi;
        *xi = dtemp;
    }
}

/// BLAS `drotg`: construct the Givens rotation (c, s) zeroing `db`; on return `da` holds
/// r and `db` the reconstruction value z.
fn drotg(da: &mut f64, db: &mut f64) -> (f64, f64) {
    let (a, b) = (*da, *db);
    let roe = if f2c_abs(a) > f2c_abs(b) { a } else { b };
    let scale = f2c_abs(a) + f2c_abs(b);
    let (c, s, r, z);
    if scale == 0.0 {
        c = 1.0;
        s = 0.0;
        r = 0.0;
        z = 0.0;
    } else {
        let (ta, tb) = (a / scale, b / scale);
        let r0 = scale * (ta * ta + tb * tb).sqrt();
        r = d_sign(1.0, roe) * r0;
        c = a / r;
        s = b / r;
        let mut z0 = 1.0;
        if f2c_abs(a) > f2c_abs(b) {
            z0 = s;
        }
        if f2c_abs(b) >= f2c_abs(a) && c != 0.0 {
            z0 = 1.0 / c;
        }
        z = z0;
    }
    *da = r;
    *db = z;
    (c, s)
}

/// Two distinct columns of a 1-based column-major matrix, both mutable.
fn two_cols(a: &mut Mat1, i: usize, j: usize) -> (&mut Vec1, &mut Vec1) {
    assert!(i != j);
    if i < j {
        let (lo, hi) = a.split_at_mut(j);
        (&mut lo[i], &mut hi[0])
    } else {
        let (lo, hi) = a.split_at_mut(i);
        (&mut hi[0], &mut lo[j])
    }
}

/// `y_col[from..] += t * x_col[from..]` between two columns of the same matrix (the source
/// column is not modified, so a copy of it is read).
fn daxpy_cols(a: &mut Mat1, t: f64, src: usize, dst: usize, from: usize, to: usize) {
    let x = a[src];
    daxpy(t, &x[from..=to], &mut a[dst][from..=to]);
}

/// LINPACK `dsvdc` for a 3x3 matrix with `job = 21` (U: the min(n, p) = 3 left singular
/// vectors, V: the right singular vectors). `x` is destroyed. Returns (s, u, v) 1-based,
/// with `x = u * diag(s) * v^T`, s non-negative and decreasing; and `info` (0 on success).
///
/// Loops, indices and expressions are kept as LINPACK writes them, so that the port can be
/// read against `dsvdc.c` line by line.
#[allow(
    clippy::assign_op_pattern,
    clippy::needless_range_loop,
    clippy::manual_memcpy
)]
fn dsvdc(x: &mut Mat1) -> (Vec1, Mat1, Mat1, usize) {
    let (n, p) = (N, N);
    let mut s: Vec1 = [0.0; N + 1];
    let mut e: Vec1 = [0.0; N + 1];
    let mut work: Vec1 = [0.0; N + 1];
    let mut u: Mat1 = [[0.0; N + 1]; N + 1];
    let mut v: Mat1 = [[0.0; N + 1]; N + 1];
    let maxit = 1000;
    let mut info = 0;
    // job = 21: jobu = 2, so ncu = min(n, p); both U and V are wanted.
    let ncu = n.min(p);

    // Reduce x to bidiagonal form with Householder transformations, the diagonal going to
    // s and the super-diagonal to e.
    let nct = (n - 1).min(p);
    let nrt = (p as isize - 2).min(n as isize).max(0) as usize;
    let lu = nct.max(nrt);
    for l in 1..=lu {
        let lp1 = l + 1;
        if l <= nct {
            // The transformation for column l; its diagonal goes to s(l).
            s[l] = dnrm2(&x[l][l..=n]);
            if s[l] != 0.0 {
                if x[l][l] != 0.0 {
                    s[l] = d_sign(s[l], x[l][l]);
                }
                dscal(1.0 / s[l], &mut x[l][l..=n]);
                x[l][l] += 1.0;
            }
            s[l] = -s[l];
        }
        for j in lp1..=p {
            if l <= nct && s[l] != 0.0 {
                // Apply the transformation to column j.
                let t = -ddot(&x[l][l..=n], &x[j][l..=n]) / x[l][l];
                daxpy_cols(x, t, l, j, l, n);
            }
            // Row l of x, for the row transformation below.
            e[j] = x[j][l];
        }
        if l <= nct {
            // Keep the transformation in u for the back multiplication.
            for i in l..=n {
                u[l][i] = x[l][i];
            }
        }
        if l <= nrt {
            // The row transformation; the super-diagonal element goes to e(l).
            e[l] = dnrm2(&e[lp1..=p]);
            if e[l] != 0.0 {
                if e[lp1] != 0.0 {
                    e[l] = d_sign(e[l], e[lp1]);
                }
                dscal(1.0 / e[l], &mut e[lp1..=p]);
                e[lp1] += 1.0;
            }
            e[l] = -e[l];
            if lp1 <= n && e[l] != 0.0 {
                // Apply it to the remaining rows.
                for w in &mut work[lp1..=n] {
                    *w = 0.0;
                }
                for j in lp1..=p {
                    daxpy(e[j], &x[j][lp1..=n], &mut work[lp1..=n]);
                }
                for j in lp1..=p {
                    daxpy(-e[j] / e[lp1], &work[lp1..=n], &mut x[j][lp1..=n]);
                }
            }
            // Keep it in v.
            for i in lp1..=p {
                v[l][i] = e[i];
            }
        }
    }

    // The final bidiagonal matrix, of order m.
    let mut m = p.min(n + 1);
    let nctp1 = nct + 1;
    let nrtp1 = nrt + 1;
    if nct < p {
        s[nctp1] = x[nctp1][nctp1];
    }
    if n < m {
        s[m] = 0.0;
    }
    if nrtp1 < m {
        e[nrtp1] = x[m][nrtp1];
    }
    e[m] = 0.0;

    // Generate u: identity columns beyond nct, then back-multiply the transformations.
    for j in nctp1..=ncu {
        for i in 1..=n {
            u[j][i] = 0.0;
        }
        u[j][j] = 1.0;
    }
    for l in (1..=nct).rev() {
        if s[l] != 0.0 {
            for j in l + 1..=ncu {
                let t = -ddot(&u[l][l..=n], &u[j][l..=n]) / u[l][l];
                daxpy_cols(&mut u, t, l, j, l, n);
            }
            dscal(-1.0, &mut u[l][l..=n]);
            u[l][l] += 1.0;
            for i in 1..l {
                u[l][i] = 0.0;
            }
        } else {
            for i in 1..=n {
                u[l][i] = 0.0;
            }
            u[l][l] = 1.0;
        }
    }

    // Generate v the same way.
    for l in (1..=p).rev() {
        let lp1 = l + 1;
        if l <= nrt && e[l] != 0.0 {
            for j in lp1..=p {
                let t = -ddot(&v[l][lp1..=p], &v[j][lp1..=p]) / v[l][lp1];
                daxpy_cols(&mut v, t, l, j, lp1, p);
            }
        }
        for i in 1..=p {
            v[l][i] = 0.0;
        }
        v[l][l] = 1.0;
    }

    // Main iteration loop: implicit-shift QR steps on the bidiagonal matrix.
    let mm = m;
    let mut iter = 0;
    while m != 0 {
        if iter >= maxit {
            info = m;
            break;
        }
        // Look for negligible elements of s and e; `kase` says what to do:
        // 1: s(m) and e(l-1) negligible, l < m (deflate s(m));
        // 2: s(l) negligible, l < m (split);
        // 3: e(l-1) negligible, l < m, s(l..m) not (one QR step);
        // 4: e(m-1) negligible (convergence).
        let mut l = 0;
        for ll in 1..=m {
            l = m - ll;
            if l == 0 {
                break;
            }
            let test = f2c_abs(s[l]) + f2c_abs(s[l + 1]);
            let ztest = test + f2c_abs(e[l]);
            if ztest == test {
                e[l] = 0.0;
                break;
            }
        }
        let kase;
        if l == m - 1 {
            kase = 4;
        } else {
            let lp1 = l + 1;
            let mp1 = m + 1;
            let mut ls = 0;
            for lls in lp1..=mp1 {
                ls = m + lp1 - lls;
                if ls == l {
                    break;
                }
                let mut test = 0.0;
                if ls != m {
                    test += f2c_abs(e[ls]);
                }
                if ls != l + 1 {
                    test += f2c_abs(e[ls - 1]);
                }
                let ztest = test + f2c_abs(s[ls]);
                if ztest == test {
                    s[ls] = 0.0;
                    break;
                }
            }
            if ls == l {
                kase = 3;
            } else if ls == m {
                kase = 1;
            } else {
                kase = 2;
                l = ls;
            }
        }
        l += 1;

        match kase {
            1 => {
                // Deflate negligible s(m).
                let mm1 = m - 1;
                let mut f = e[m - 1];
                e[m - 1] = 0.0;
                for k in (l..=mm1).rev() {
                    let mut t1 = s[k];
                    let (cs, sn) = drotg(&mut t1, &mut f);
                    s[k] = t1;
                    if k != l {
                        f = -sn * e[k - 1];
                        e[k - 1] = cs * e[k - 1];
                    }
                    let (vk, vm) = two_cols(&mut v, k, m);
                    drot(&mut vk[1..=p], &mut vm[1..=p], cs, sn);
                }
            }
            2 => {
                // Split at negligible s(l).
                let mut f = e[l - 1];
                e[l - 1] = 0.0;
                for k in l..=m {
                    let mut t1 = s[k];
                    let (cs, sn) = drotg(&mut t1, &mut f);
                    s[k] = t1;
                    f = -sn * e[k];
                    e[k] = cs * e[k];
                    let (uk, ul) = two_cols(&mut u, k, l - 1);
                    drot(&mut uk[1..=n], &mut ul[1..=n], cs, sn);
                }
            }
            3 => {
                // One QR step. First the shift, from the trailing 2x2 block (scaled).
                let scale = f2c_max(
                    f2c_max(
                        f2c_max(f2c_max(f2c_abs(s[m]), f2c_abs(s[m - 1])), f2c_abs(e[m - 1])),
                        f2c_abs(s[l]),
                    ),
                    f2c_abs(e[l]),
                );
                let sm = s[m] / scale;
                let smm1 = s[m - 1] / scale;
                let emm1 = e[m - 1] / scale;
                let sl = s[l] / scale;
                let el = e[l] / scale;
                let b = ((smm1 + sm) * (smm1 - sm) + emm1 * emm1) / 2.0;
                let smemm1 = sm * emm1;
                let c = smemm1 * smemm1;
                let mut shift = 0.0;
                if !(b == 0.0 && c == 0.0) {
                    shift = (b * b + c).sqrt();
                    if b < 0.0 {
                        shift = -shift;
                    }
                    shift = c / (b + shift);
                }
                let mut f = (sl + sm) * (sl - sm) + shift;
                let mut g = sl * el;

                // Chase the bulge down the diagonal.
                for k in l..m {
                    let (cs, sn) = drotg(&mut f, &mut g);
                    if k != l {
                        e[k - 1] = f;
                    }
                    f = cs * s[k] + sn * e[k];
                    e[k] = cs * e[k] - sn * s[k];
                    g = sn * s[k + 1];
                    s[k + 1] = cs * s[k + 1];
                    let (vk, vk1) = two_cols(&mut v, k, k + 1);
                    drot(&mut vk[1..=p], &mut vk1[1..=p], cs, sn);

                    let (cs, sn) = drotg(&mut f, &mut g);
                    s[k] = f;
                    f = cs * e[k] + sn * s[k + 1];
                    s[k + 1] = -sn * e[k] + cs * s[k + 1];
                    g = sn * e[k + 1];
                    e[k + 1] = cs * e[k + 1];
                    if k < n {
                        let (uk, uk1) = two_cols(&mut u, k, k + 1);
                        drot(&mut uk[1..=n], &mut uk1[1..=n], cs, sn);
                    }
                }
                e[m - 1] = f;
                iter += 1;
            }
            _ => {
                // Convergence: make s(l) non-negative (flipping v's column)...
                if s[l] < 0.0 {
                    s[l] = -s[l];
                    dscal(-1.0, &mut v[l][1..=p]);
                }
                // ... and bubble it into place so that s is decreasing.
                while l != mm && s[l] < s[l + 1] {
                    s.swap(l, l + 1);
                    if l < p {
                        v.swap(l, l + 1);
                    }
                    if l < n {
                        u.swap(l, l + 1);
                    }
                    l += 1;
                }
                iter = 0;
                m -= 1;
            }
        }
    }
    (s, u, v, info)
}

/// `vnl_matrix` product as `vnl_matrix<T>::operator*` computes it: each entry summed from
/// zero in the order of the inner index.
#[allow(clippy::needless_range_loop)]
fn vnl_matmul(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut out = [[0.0; 3]; 3];
    for i in 0..3 {
        for k in 0..3 {
            let mut sum = 0.0;
            for j in 0..3 {
                sum += a[i][j] * b[j][k];
            }
            out[i][k] = sum;
        }
    }
    out
}

/// The inverse of the 3x3 matrix `m` (row-major, `m[row][col]`) exactly as ITK 5.4's
/// `itk::Matrix::GetInverse()` computes it (`vnl_matrix_inverse` / `vnl_svd` pseudo-inverse),
/// bit for bit. Used for ITK's physical-point -> index matrix, `(D * diag(s))^-1`.
///
/// ITK throws for a singular matrix (zero determinant); here the caller is expected to pass
/// a regular one (positive spacings, a direction that is a rotation/reflection). For a
/// singular input this returns vnl's pseudo-inverse (zero singular values dropped).
#[allow(clippy::needless_range_loop)]
pub(super) fn itk_matrix_inverse(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    // vnl_fortran_copy: column-major (here 1-based) storage of M.
    let mut x: Mat1 = [[0.0; N + 1]; N + 1];
    for j in 0..3 {
        for i in 0..3 {
            x[j + 1][i + 1] = m[i][j];
        }
    }
    // vnl_svd only reports a non-zero info (no convergence) on stderr and carries on.
    let (s, u1, v1, _info) = dsvdc(&mut x);

    // vnl_svd: U_(i, j) = u(i, j), V_(i, j) = v(i, j), W_ = |s|; zero_out_absolute(0):
    // Winverse = 1 / w unless w == 0 (then 0 and the rank drops).
    let mut u = [[0.0; 3]; 3];
    let mut v = [[0.0; 3]; 3];
    for j in 0..3 {
        for i in 0..3 {
            u[i][j] = u1[j + 1][i + 1];
            v[i][j] = v1[j + 1][i + 1];
        }
    }
    let mut winv = [0.0; 3];
    let mut rank = 3;
    for k in 0..3 {
        let w = s[k + 1].abs();
        if w <= 0.0 {
            winv[k] = 0.0;
            rank -= 1;
        } else {
            winv[k] = 1.0 / w;
        }
    }

    // pinverse(): a dense diag(Winverse) for the first `rank` entries, then
    // (V * Winverse) * U^T, both as vnl_matrix products.
    let mut wmat = [[0.0; 3]; 3];
    for k in 0..rank {
        wmat[k][k] = winv[k];
    }
    let mut ut = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            ut[i][j] = u[j][i];
        }
    }
    vnl_matmul(&vnl_matmul(&v, &wmat), &ut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &serde_json::Value) -> [[f64; 3]; 3] {
        let mut out = [[0.0; 3]; 3];
        for (i, row) in v.as_array().unwrap().iter().enumerate() {
            for (j, x) in row.as_array().unwrap().iter().enumerate() {
                // Python repr strings; str::parse is correctly rounded, so this is exact.
                out[i][j] = x.as_str().unwrap().parse().unwrap();
            }
        }
        out
    }

    /// Distance in units in the last place between two finite doubles.
    fn ulps(a: f64, b: f64) -> u64 {
        let key = |x: f64| {
            let bits = x.to_bits() as i64;
            if bits < 0 {
                i64::MIN - bits
            } else {
                bits
            }
        };
        key(a).abs_diff(key(b))
    }

    #[test]
    fn matches_itk_bit_for_bit() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/radiomics/itk_inverse.json"
        );
        let text = std::fs::read_to_string(path).expect("fixtures/radiomics/itk_inverse.json");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        assert!(cases.len() > 250);
        let mut mismatches = Vec::new();
        for case in cases {
            let m = parse(&case["m"]);
            let want = parse(&case["p"]);
            let got = itk_matrix_inverse(&m);
            for i in 0..3 {
                for j in 0..3 {
                    // The fixture cannot tell -0 from +0 (see the script), so zeros are
                    // compared by value, everything else by bits.
                    let same = if want[i][j] == 0.0 {
                        got[i][j] == 0.0
                    } else {
                        got[i][j].to_bits() == want[i][j].to_bits()
                    };
                    if !same {
                        mismatches.push(format!(
                            "{} [{i}][{j}]: got {:e}, ITK {:e} ({} ulp)",
                            case["name"],
                            got[i][j],
                            want[i][j],
                            ulps(got[i][j], want[i][j])
                        ));
                    }
                }
            }
        }
        assert!(
            mismatches.is_empty(),
            "{} entries differ from ITK:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn inverts() {
        // A plain sanity check independent of the fixture.
        let m = [[0.0, -2.0, 0.0], [1.5, 0.0, 0.0], [0.0, 0.0, -3.0]];
        let p = itk_matrix_inverse(&m);
        for i in 0..3 {
            for j in 0..3 {
                let mut sum = 0.0;
                for k in 0..3 {
                    sum += p[i][k] * m[k][j];
                }
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((sum - want).abs() < 1e-15, "{p:?}");
            }
        }
    }
}
