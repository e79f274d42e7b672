//! Voxel-to-world affines from and into NIfTI headers, computed as nibabel does
//! (`get_best_affine`, `get_sform`, `get_qform`, `get_base_affine`, `set_sform`,
//! `set_qform`).

use super::error::NiftiErrorKind;
use super::header::NiftiHeader;

/// A 4x4 affine, `affine[row][col]`, mapping voxel `(i, j, k, 1)` to world `(x, y, z, 1)`.
pub type Affine = [[f64; 4]; 4];

/// nibabel's `quaternion_threshold`: 3 float32 epsilons.
const QUATERNION_THRESHOLD: f64 = 3.0 * f32::EPSILON as f64;

impl NiftiHeader {
    /// nibabel's `get_best_affine`: the sform if `sform_code != 0`, else the qform if
    /// `qform_code != 0`, else the pixdim-only base affine.
    pub fn best_affine(&self) -> Result<Affine, NiftiErrorKind> {
        if self.sform_code != 0 {
            Ok(self.sform_affine())
        } else if self.qform_code != 0 {
            self.qform_affine()
        } else {
            Ok(self.base_affine())
        }
    }

    /// The affine stored in `srow_x/y/z` (whatever `sform_code` says).
    pub fn sform_affine(&self) -> Affine {
        let row = |r: &[f32; 4]| [r[0] as f64, r[1] as f64, r[2] as f64, r[3] as f64];
        [
            row(&self.srow_x),
            row(&self.srow_y),
            row(&self.srow_z),
            [0.0, 0.0, 0.0, 1.0],
        ]
    }

    /// The affine from the quaternion, `pixdim` and `qoffset_*` (whatever `qform_code`
    /// says). Errors like nibabel: quaternion with b^2+c^2+d^2 > 1, negative pixdims, qfac
    /// not +-1 (the latter two cannot happen after [`NiftiHeader::apply_nibabel_fixes`]).
    pub fn qform_affine(&self) -> Result<Affine, NiftiErrorKind> {
        let (b, c, d) = (
            self.quatern_b as f64,
            self.quatern_c as f64,
            self.quatern_d as f64,
        );
        // nibabel's fillpositive: w = sqrt(1 - |bcd|^2), 0 when within 3 float32 eps.
        let w2 = 1.0 - (b * b + c * c + d * d);
        let w = if w2.abs() < QUATERNION_THRESHOLD {
            0.0
        } else if w2 < 0.0 || w2.is_nan() {
            return Err(NiftiErrorKind::InvalidQuaternion {
                b: self.quatern_b,
                c: self.quatern_c,
                d: self.quatern_d,
            });
        } else {
            w2.sqrt()
        };
        let rotation = quaternion_to_matrix([w, b, c, d]);
        let vox = [self.pixdim[1], self.pixdim[2], self.pixdim[3]];
        let qfac = self.pixdim[0];
        if vox.iter().any(|&v| v < 0.0) || (qfac != 1.0 && qfac != -1.0) {
            return Err(NiftiErrorKind::InvalidAffine {
                source_field: "qform",
                reason: format!(
                    "pixdim[0..=3] = {:?}: qfac must be +-1 and spacings positive",
                    &self.pixdim[0..4]
                ),
                affine: Box::new(identity()),
            });
        }
        // nibabel multiplies in float32 (`vox[-1] *= qfac`) before widening.
        let scale = [vox[0] as f64, vox[1] as f64, (vox[2] * qfac) as f64];
        let mut out = identity();
        for (r, row) in rotation.iter().enumerate() {
            for (c, &value) in row.iter().enumerate() {
                out[r][c] = value * scale[c];
            }
        }
        out[0][3] = self.qoffset_x as f64;
        out[1][3] = self.qoffset_y as f64;
        out[2][3] = self.qoffset_z as f64;
        Ok(out)
    }

    /// nibabel's `get_base_affine` (`shape_zoom_affine` with the x axis flipped): voxel
    /// sizes from `pixdim`, origin at the centre of the grid.
    pub fn base_affine(&self) -> Affine {
        let ndim = self.dim[0].clamp(0, 7) as usize;
        let mut shape = [1.0f64; 3];
        let mut zooms = [1.0f32; 3];
        for axis in 0..ndim.min(3) {
            shape[axis] = self.dim[axis + 1] as f64;
            zooms[axis] = self.pixdim[axis + 1];
        }
        zooms[0] *= -1.0;
        let mut out = identity();
        for axis in 0..3 {
            let origin = (shape[axis] - 1.0) / 2.0;
            out[axis][axis] = zooms[axis] as f64;
            out[axis][3] = -origin * zooms[axis] as f64;
        }
        out
    }

    /// nibabel's `set_sform(affine, code)`: rows into `srow_*` (as float32) and the code.
    pub fn set_sform(&mut self, affine: &Affine, code: i16) {
        let row = |r: &[f64; 4]| [r[0] as f32, r[1] as f32, r[2] as f32, r[3] as f32];
        self.srow_x = row(&affine[0]);
        self.srow_y = row(&affine[1]);
        self.srow_z = row(&affine[2]);
        self.sform_code = code;
    }

    /// nibabel's `set_qform(affine, code)`: voxel sizes = column norms, qfac from the sign
    /// of the determinant, shears stripped by polar decomposition, quaternion with a
    /// non-negative real part, translation into `qoffset_*`.
    pub fn set_qform(&mut self, affine: &Affine, code: i16) -> Result<(), NiftiErrorKind> {
        let zooms = column_norms(affine);
        let mut r = [[0.0f64; 3]; 3];
        for (row, r_row) in r.iter_mut().enumerate() {
            for (col, value) in r_row.iter_mut().enumerate() {
                *value = affine[row][col] / zooms[col];
            }
        }
        let qfac = if det3(&r) > 0.0 {
            1.0
        } else {
            for row in &mut r {
                row[2] = -row[2];
            }
            -1.0
        };
        let rotation = closest_rotation(&r).ok_or_else(|| NiftiErrorKind::InvalidAffine {
            source_field: "given",
            reason: "cannot build a qform: the 3x3 part is singular".into(),
            affine: Box::new(*affine),
        })?;
        let q = matrix_to_quaternion(&rotation);
        self.qoffset_x = affine[0][3] as f32;
        self.qoffset_y = affine[1][3] as f32;
        self.qoffset_z = affine[2][3] as f32;
        self.pixdim[0] = qfac;
        self.pixdim[1] = zooms[0] as f32;
        self.pixdim[2] = zooms[1] as f32;
        self.pixdim[3] = zooms[2] as f32;
        self.quatern_b = q[1] as f32;
        self.quatern_c = q[2] as f32;
        self.quatern_d = q[3] as f32;
        self.qform_code = code;
        Ok(())
    }
}

/// Euclidean norms of the first three columns of the 3x3 part: the voxel sizes an affine
/// implies (what nibabel writes into `pixdim` for a new image).
pub fn column_norms(affine: &Affine) -> [f64; 3] {
    let mut out = [0.0; 3];
    for (col, norm) in out.iter_mut().enumerate() {
        *norm = (0..3)
            .map(|row| affine[row][col] * affine[row][col])
            .sum::<f64>()
            .sqrt();
    }
    out
}

/// Checks that an affine can map voxels to world and back: finite, last row `0 0 0 1`,
/// 3x3 part not singular (relative to its column norms).
pub fn validate_affine(affine: &Affine, source_field: &'static str) -> Result<(), NiftiErrorKind> {
    let fail = |reason: &str| NiftiErrorKind::InvalidAffine {
        source_field,
        reason: reason.to_string(),
        affine: Box::new(*affine),
    };
    if affine.iter().flatten().any(|v| !v.is_finite()) {
        return Err(fail("it has non-finite entries"));
    }
    if affine[3] != [0.0, 0.0, 0.0, 1.0] {
        return Err(fail("its last row is not 0 0 0 1"));
    }
    let m = [
        [affine[0][0], affine[0][1], affine[0][2]],
        [affine[1][0], affine[1][1], affine[1][2]],
        [affine[2][0], affine[2][1], affine[2][2]],
    ];
    let norms = column_norms(affine);
    let scale = norms[0] * norms[1] * norms[2];
    if scale == 0.0 || det3(&m).abs() <= 1e-9 * scale {
        return Err(fail("its 3x3 part is singular"));
    }
    Ok(())
}

/// nibabel's `np.allclose(a, b)`: |a - b| <= 1e-8 + 1e-5 |b| everywhere.
pub fn affines_allclose(a: &Affine, b: &Affine) -> bool {
    a.iter()
        .flatten()
        .zip(b.iter().flatten())
        .all(|(&x, &y)| (x - y).abs() <= 1e-8 + 1e-5 * y.abs())
}

fn identity() -> Affine {
    [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

fn det3(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// nibabel's `quat2mat` for quaternion `[w, x, y, z]` (identity for a near-zero norm).
fn quaternion_to_matrix(q: [f64; 4]) -> [[f64; 3]; 3] {
    let [w, x, y, z] = q;
    let nq = w * w + x * x + y * y + z * z;
    if nq < f64::EPSILON {
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    }
    let s = 2.0 / nq;
    let (xs, ys, zs) = (x * s, y * s, z * s);
    let (w_x, w_y, w_z) = (w * xs, w * ys, w * zs);
    let (x_x, x_y, x_z) = (x * xs, x * ys, x * zs);
    let (y_y, y_z, z_z) = (y * ys, y * zs, z * zs);
    [
        [1.0 - (y_y + z_z), x_y - w_z, x_z + w_y],
        [x_y + w_z, 1.0 - (x_x + z_z), y_z - w_x],
        [x_z - w_y, y_z + w_x, 1.0 - (x_x + y_y)],
    ]
}

/// Unit quaternion `[w, x, y, z]` of a rotation matrix (Shepperd's method), `w >= 0`.
fn matrix_to_quaternion(r: &[[f64; 3]; 3]) -> [f64; 4] {
    let trace = r[0][0] + r[1][1] + r[2][2];
    let mut q = if trace > 0.0 {
        let s = (trace + 1.0).sqrt() * 2.0;
        [
            s / 4.0,
            (r[2][1] - r[1][2]) / s,
            (r[0][2] - r[2][0]) / s,
            (r[1][0] - r[0][1]) / s,
        ]
    } else if r[0][0] > r[1][1] && r[0][0] > r[2][2] {
        let s = (1.0 + r[0][0] - r[1][1] - r[2][2]).sqrt() * 2.0;
        [
            (r[2][1] - r[1][2]) / s,
            s / 4.0,
            (r[0][1] + r[1][0]) / s,
            (r[0][2] + r[2][0]) / s,
        ]
    } else if r[1][1] > r[2][2] {
        let s = (1.0 + r[1][1] - r[0][0] - r[2][2]).sqrt() * 2.0;
        [
            (r[0][2] - r[2][0]) / s,
            (r[0][1] + r[1][0]) / s,
            s / 4.0,
            (r[1][2] + r[2][1]) / s,
        ]
    } else {
        let s = (1.0 + r[2][2] - r[0][0] - r[1][1]).sqrt() * 2.0;
        [
            (r[1][0] - r[0][1]) / s,
            (r[0][2] + r[2][0]) / s,
            (r[1][2] + r[2][1]) / s,
            s / 4.0,
        ]
    };
    if q[0] < 0.0 {
        for v in &mut q {
            *v = -*v;
        }
    }
    q
}

/// The orthogonal polar factor of `m` (the closest rotation, as nibabel gets from the SVD
/// `P @ Qs`), by Newton's iteration `X <- (X + X^-T) / 2`. `None` when singular.
fn closest_rotation(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let mut x = *m;
    for _ in 0..100 {
        let inv_t = inverse_transpose(&x)?;
        let mut next = [[0.0; 3]; 3];
        let mut change = 0.0f64;
        for r in 0..3 {
            for c in 0..3 {
                next[r][c] = 0.5 * (x[r][c] + inv_t[r][c]);
                change = change.max((next[r][c] - x[r][c]).abs());
            }
        }
        x = next;
        if change < 1e-15 {
            break;
        }
    }
    Some(x)
}

fn inverse_transpose(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let det = det3(m);
    if det == 0.0 || !det.is_finite() {
        return None;
    }
    // The cofactor matrix divided by the determinant is the inverse transposed.
    let mut out = [[0.0; 3]; 3];
    for (r, out_row) in out.iter_mut().enumerate() {
        for (c, value) in out_row.iter_mut().enumerate() {
            let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
            let (c1, c2) = ((c + 1) % 3, (c + 2) % 3);
            *value = (m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]) / det;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quaternion_round_trip() {
        // A rotation of 30 degrees about (1, 2, 3)/|..|.
        let axis = [1.0f64, 2.0, 3.0];
        let n = axis.iter().map(|v| v * v).sum::<f64>().sqrt();
        let half = 15f64.to_radians();
        let q = [
            half.cos(),
            half.sin() * axis[0] / n,
            half.sin() * axis[1] / n,
            half.sin() * axis[2] / n,
        ];
        let m = quaternion_to_matrix(q);
        let back = matrix_to_quaternion(&m);
        for (a, b) in q.iter().zip(back.iter()) {
            assert!((a - b).abs() < 1e-14, "{q:?} vs {back:?}");
        }
    }

    #[test]
    fn polar_factor_strips_shear() {
        let sheared = [[1.0, 0.2, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let r = closest_rotation(&sheared).expect("nonsingular");
        // R R^T = I
        for a in 0..3 {
            for b in 0..3 {
                let dot: f64 = (0..3).map(|k| r[a][k] * r[b][k]).sum();
                let expected = if a == b { 1.0 } else { 0.0 };
                assert!((dot - expected).abs() < 1e-12);
            }
        }
        assert!(closest_rotation(&[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).is_none());
    }

    #[test]
    fn set_then_get_qform_reproduces_a_rigid_affine() {
        let affine = [
            [0.0, -2.0, 0.0, 10.0],
            [3.0, 0.0, 0.0, 20.0],
            [0.0, 0.0, -1.5, 30.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let mut h = NiftiHeader::empty();
        h.set_qform(&affine, 1).expect("qform");
        // The values nibabel writes for this affine (see its Nifti1Image docs example).
        assert_eq!(h.pixdim[0], -1.0);
        assert_eq!((h.quatern_b, h.quatern_c), (0.0, 0.0));
        assert!((h.quatern_d - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-7);
        let back = h.qform_affine().expect("valid");
        for r in 0..4 {
            for c in 0..4 {
                assert!((back[r][c] - affine[r][c]).abs() < 1e-6, "{back:?}");
            }
        }
    }

    #[test]
    fn validation() {
        let mut a = identity();
        assert!(validate_affine(&a, "given").is_ok());
        a[0][0] = 0.0;
        assert!(validate_affine(&a, "given").is_err());
        a[0][0] = f64::NAN;
        assert!(validate_affine(&a, "given").is_err());
        let mut b = identity();
        b[3][0] = 1.0;
        assert!(validate_affine(&b, "given").is_err());
    }
}
