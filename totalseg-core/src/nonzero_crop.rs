//! nnU-Net's `crop_to_nonzero` (preprocessing/cropping/cropping.py) and its inverse used
//! at export (`insert_crop_into_image`).
//!
//! Arrays are `[c, d0, d1, d2]` in nnU-Net's preprocessed axis order (after
//! `transpose_forward`).

use ndarray::{s, Array3, Array4, ArrayView3, ArrayView4, Axis, Zip};

use crate::morphology::binary_fill_holes;

/// nnU-Net's `bbox_used_for_cropping` is the same half-open box as TotalSegmentator's crops.
pub use crate::crop::BoundingBox;

/// What went wrong pasting a crop back.
#[derive(Debug, thiserror::Error)]
pub enum NonzeroCropError {
    /// The crop does not have the box's shape, or the box leaves the full image.
    #[error("crop of shape {crop:?} does not fit box {bbox:?} inside an image of shape {full:?}")]
    BoxMismatch {
        /// Shape of the crop.
        crop: Vec<usize>,
        /// The box.
        bbox: BoundingBox,
        /// Shape of the full image.
        full: [usize; 3],
    },
}

/// `create_nonzero_mask`: voxels where any channel is non-zero, holes filled with scipy's
/// `binary_fill_holes` (6-connectivity). `-0.0` counts as zero, NaN as non-zero.
pub fn create_nonzero_mask<T>(data: ArrayView4<T>) -> Array3<bool>
where
    T: Copy + PartialEq + Default,
{
    let (_, d0, d1, d2) = data.dim();
    let mut any = Array3::from_elem((d0, d1, d2), false);
    for channel in data.axis_iter(Axis(0)) {
        Zip::from(&mut any)
            .and(channel)
            .for_each(|m, &v| *m |= v != T::default());
    }
    binary_fill_holes(any.view())
}

/// acvl_utils' `get_bbox_from_mask`: the half-open box of the `true` voxels; an all-false
/// mask gives the whole array, as the reference does.
pub fn bounding_box_of_mask(mask: ArrayView3<bool>) -> BoundingBox {
    crate::crop::nonzero_bbox(mask)
}

/// The result of [`crop_to_nonzero`].
#[derive(Debug, Clone, PartialEq)]
pub struct NonzeroCrop<T> {
    /// The data inside the box, `[c, ..box shape]`.
    pub data: Array4<T>,
    /// nnU-Net's `seg[0]`: 0 inside the (filled) non-zero mask, -1 outside, over the box.
    /// With `use_mask_for_norm`, z-score normalisation uses `seg >= 0`.
    pub seg: Array3<i8>,
    /// `bbox_used_for_cropping`.
    pub bbox: BoundingBox,
    /// `shape_before_cropping`.
    pub shape_before_cropping: [usize; 3],
}

/// nnU-Net's `crop_to_nonzero(data)` without a segmentation: crops every channel to the
/// bounding box of the filled non-zero mask.
///
/// ```
/// use ndarray::Array4;
/// use totalseg_core::nonzero_crop::crop_to_nonzero;
/// let mut data = Array4::<f32>::zeros((1, 4, 5, 6));
/// data[[0, 1, 2, 3]] = -1024.0;
/// data[[0, 2, 3, 3]] = 40.0;
/// let crop = crop_to_nonzero(data.view());
/// assert_eq!(crop.bbox.start, [1, 2, 3]);
/// assert_eq!(crop.bbox.end, [3, 4, 4]);
/// assert_eq!(crop.data.shape(), &[1, 2, 2, 1]);
/// assert_eq!(crop.seg[[0, 0, 0]], 0);
/// assert_eq!(crop.seg[[0, 1, 0]], -1);
/// ```
pub fn crop_to_nonzero<T>(data: ArrayView4<T>) -> NonzeroCrop<T>
where
    T: Copy + PartialEq + Default,
{
    let (_, d0, d1, d2) = data.dim();
    let mask = create_nonzero_mask(data);
    let bbox = bounding_box_of_mask(mask.view());
    let (b, e) = (bbox.start, bbox.end);
    let cropped = data
        .slice(s![.., b[0]..e[0], b[1]..e[1], b[2]..e[2]])
        .to_owned();
    let seg = mask
        .slice(s![b[0]..e[0], b[1]..e[1], b[2]..e[2]])
        .mapv(|m| if m { 0i8 } else { -1i8 });
    NonzeroCrop {
        data: cropped,
        seg,
        bbox,
        shape_before_cropping: [d0, d1, d2],
    }
}

/// `insert_crop_into_image`: pastes `crop` at `bbox` into an array of `full_shape` filled
/// with `fill` (nnU-Net pastes the segmentation into zeros).
pub fn insert_crop_into_image<T: Clone>(
    crop: ArrayView3<T>,
    bbox: BoundingBox,
    full_shape: [usize; 3],
    fill: T,
) -> Result<Array3<T>, NonzeroCropError> {
    let fits = crop.shape() == bbox.shape()
        && (0..3).all(|a| bbox.start[a] <= bbox.end[a] && bbox.end[a] <= full_shape[a]);
    if !fits {
        return Err(NonzeroCropError::BoxMismatch {
            crop: crop.shape().to_vec(),
            bbox,
            full: full_shape,
        });
    }
    let mut full = Array3::from_elem(full_shape, fill);
    let (b, e) = (bbox.start, bbox.end);
    full.slice_mut(s![b[0]..e[0], b[1]..e[1], b[2]..e[2]])
        .assign(&crop);
    Ok(full)
}
