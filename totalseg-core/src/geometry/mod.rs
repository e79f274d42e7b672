//! Image geometry: voxel-to-world affines and reorientation by axis permutations and
//! flips, with nibabel's semantics (`nibabel.orientations`, `nibabel.as_closest_canonical`)
//! and TotalSegmentator's `undo_canonical`.
//!
//! Affines are `[[f64; 4]; 4]`, row-major (`a[row][col]`), mapping voxel indices `[i, j, k, 1]`
//! to world millimetres. Volumes are indexed `[i, j, k]` like nibabel's arrays.

mod canonical;
mod orientation;
pub(crate) mod svd;

pub use canonical::{as_closest_canonical, undo_canonical, Reoriented};
pub use orientation::{
    apply_orientation, inv_ornt_aff, io_orientation, ornt_transform, Orientation, OrientedAxis,
};

/// A 4x4 voxel-to-world affine, row-major (`a[row][col]`).
pub type Affine = [[f64; 4]; 4];

/// What is wrong with an affine or an orientation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeometryError {
    /// An entry of the affine is NaN or infinite.
    #[error("affine entry [{row}][{col}] is not finite ({value})")]
    NonFiniteAffine {
        /// Row of the offending entry.
        row: usize,
        /// Column of the offending entry.
        col: usize,
        /// The entry.
        value: f64,
    },
    /// The affine is degenerate: this voxel axis has no world direction, so the image
    /// cannot be reoriented (nibabel returns a NaN row here and refuses to apply it).
    #[error("voxel axis {axis} has no world direction in the affine; cannot reorient")]
    DroppedAxis {
        /// The voxel axis without a direction.
        axis: usize,
    },
    /// The rows of an orientation do not name each output axis exactly once.
    #[error("orientation {rows:?} does not map the 3 axes one-to-one")]
    NotAPermutation {
        /// Output axis of each input axis.
        rows: [usize; 3],
    },
}

/// Voxel sizes of an affine: the Euclidean length of each of its first three columns
/// (`nibabel.affines.voxel_sizes`).
///
/// ```
/// use totalseg_core::geometry::voxel_sizes;
/// let affine = [[0.0, 0.0, -1.5, 4.0], [0.8, 0.0, 0.0, 0.0], [0.0, 0.8, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]];
/// assert_eq!(voxel_sizes(&affine), [0.8, 0.8, 1.5]);
/// ```
pub fn voxel_sizes(affine: &Affine) -> [f64; 3] {
    std::array::from_fn(|col| {
        let (a, b, c) = (affine[0][col], affine[1][col], affine[2][col]);
        // numpy sums the three squares left to right.
        (a * a + b * b + c * c).sqrt()
    })
}

/// The zooms nibabel reports for an image it built from `affine` without a header (or
/// after reorienting one): `voxel_sizes` stored as the header's float32 `pixdim`.
///
/// TotalSegmentator's `change_spacing` divides these float32 zooms by the target spacing,
/// so its zoom factors (and output shapes) depend on this rounding.
pub fn nifti_zooms_from_affine(affine: &Affine) -> [f32; 3] {
    voxel_sizes(affine).map(|v| v as f32)
}

/// `a · b` for 4x4 affines (sums left to right over the inner index).
pub fn matmul(a: &Affine, b: &Affine) -> Affine {
    std::array::from_fn(|r| {
        std::array::from_fn(|c| {
            a[r][0] * b[0][c] + a[r][1] * b[1][c] + a[r][2] * b[2][c] + a[r][3] * b[3][c]
        })
    })
}

/// Checks that every entry of `affine` is finite.
pub fn check_affine(affine: &Affine) -> Result<(), GeometryError> {
    for (row, values) in affine.iter().enumerate() {
        for (col, &value) in values.iter().enumerate() {
            if !value.is_finite() {
                return Err(GeometryError::NonFiniteAffine { row, col, value });
            }
        }
    }
    Ok(())
}
