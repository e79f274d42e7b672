//! Reorientation to the closest canonical (RAS+) layout and back
//! (`nibabel.as_closest_canonical`, TotalSegmentator's `alignment.undo_canonical`).

use ndarray::{ArrayView3, CowArray, Ix3};

use super::orientation::{apply_orientation, inv_ornt_aff, io_orientation, ornt_transform};
use super::{matmul, Affine, GeometryError, Orientation};

/// A reoriented volume: its data (borrowed when nothing had to move), its affine and the
/// orientation transform that was applied to the input array.
#[derive(Debug, Clone)]
pub struct Reoriented<'a, T> {
    /// The reoriented voxels; `Cow::Borrowed` when the transform is the identity, exactly
    /// where nibabel's `as_reoriented` returns the image itself.
    pub data: CowArray<'a, T, Ix3>,
    /// The affine of `data`; the input affine unchanged for the identity.
    pub affine: Affine,
    /// The transform applied to the input array (see [`super::apply_orientation`]).
    pub orientation: Orientation,
}

/// nibabel's `as_closest_canonical(img)`: flip and permute the voxel axes so that they run
/// closest to RAS+ (no resampling). The transform is `io_orientation(affine)`; the new affine
/// is `affine · inv_ornt_aff(transform, shape)`. Already-canonical images come back borrowed
/// with their affine untouched, as nibabel returns the same image object.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::geometry::as_closest_canonical;
/// // LPS (DICOM-like) affine: i runs to the left, j to the posterior.
/// let affine = [[-0.8, 0.0, 0.0, 100.0], [0.0, -0.8, 0.0, 50.0], [0.0, 0.0, 1.5, -20.0], [0.0, 0.0, 0.0, 1.0]];
/// let ct = Array3::from_shape_fn((4, 3, 2), |(i, j, k)| (i * 100 + j * 10 + k) as i16);
/// let can = as_closest_canonical(ct.view(), &affine).unwrap();
/// assert_eq!(can.orientation.axis_codes(), "LPS");
/// assert_eq!(can.data[[0, 0, 0]], ct[[3, 2, 0]]);
/// // the new first voxel is the old last one along i and j
/// assert_eq!(can.affine[0], [0.8, 0.0, 0.0, 100.0 - 0.8 * 3.0]);
/// ```
pub fn as_closest_canonical<'a, T: Clone>(
    data: ArrayView3<'a, T>,
    affine: &Affine,
) -> Result<Reoriented<'a, T>, GeometryError> {
    let orientation = Orientation::from_partial(io_orientation(affine)?)?;
    Ok(reorient(data, affine, orientation))
}

/// TotalSegmentator's `undo_canonical(img_can, img_orig)`: move a canonical volume back to the
/// orientation of the original image, applying `ornt_transform(RAS, io_orientation(original))`.
/// `data`/`canonical_affine` are the canonical image (e.g. a label map predicted on it);
/// `original_affine` is the affine of the image before [`as_closest_canonical`].
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::geometry::{as_closest_canonical, undo_canonical};
/// let affine = [[0.0, 0.0, -1.5, 10.0], [-0.8, 0.0, 0.0, 5.0], [0.0, 0.8, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]];
/// let ct = Array3::from_shape_fn((4, 3, 2), |(i, j, k)| (i * 100 + j * 10 + k) as i16);
/// let can = as_closest_canonical(ct.view(), &affine).unwrap();
/// let back = undo_canonical(can.data.view(), &can.affine, &affine).unwrap();
/// assert_eq!(back.data, ct);
/// for r in 0..4 {
///     for c in 0..4 {
///         assert!((back.affine[r][c] - affine[r][c]).abs() < 1e-12);
///     }
/// }
/// ```
pub fn undo_canonical<'a, T: Clone>(
    data: ArrayView3<'a, T>,
    canonical_affine: &Affine,
    original_affine: &Affine,
) -> Result<Reoriented<'a, T>, GeometryError> {
    let original = Orientation::from_partial(io_orientation(original_affine)?)?;
    let from_canonical = ornt_transform(&Orientation::IDENTITY, &original);
    Ok(reorient(data, canonical_affine, from_canonical))
}

/// nibabel's `SpatialImage.as_reoriented(ornt)`.
fn reorient<'a, T: Clone>(
    data: ArrayView3<'a, T>,
    affine: &Affine,
    orientation: Orientation,
) -> Reoriented<'a, T> {
    if orientation.is_identity() {
        return Reoriented {
            data: CowArray::from(data),
            affine: *affine,
            orientation,
        };
    }
    let shape = [data.dim().0, data.dim().1, data.dim().2];
    let new_affine = matmul(affine, &inv_ornt_aff(&orientation, shape));
    Reoriented {
        data: CowArray::from(apply_orientation(data, &orientation)),
        affine: new_affine,
        orientation,
    }
}
