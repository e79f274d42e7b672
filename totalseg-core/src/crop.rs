//! Cropping to a mask's bounding box and pasting back: TotalSegmentator's `cropping.py`
//! (`get_bbox_from_mask`, `crop_to_bbox_nifti`, `crop_to_mask`, `undo_crop`) and nnU-Net's
//! nonzero bounding box (`acvl_utils...get_bbox_from_mask`).
//!
//! All boxes are half-open, `[start, end)` per axis, like Python slices.

use ndarray::{s, Array3, ArrayView3, Axis, Ix3, SliceInfo, SliceInfoElem};
use rayon::prelude::*;

use crate::geometry::Affine;

/// A half-open voxel box `[start, end)` per axis (`bbox[axis] = [start, end]` in Python).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BoundingBox {
    /// First voxel inside the box, per axis.
    pub start: [usize; 3],
    /// One past the last voxel inside the box, per axis.
    pub end: [usize; 3],
}

impl BoundingBox {
    /// The box covering a whole volume of `shape`.
    pub fn full(shape: [usize; 3]) -> Self {
        BoundingBox {
            start: [0; 3],
            end: shape,
        }
    }

    /// Extent per axis (`end - start`).
    pub fn shape(&self) -> [usize; 3] {
        std::array::from_fn(|a| self.end[a].saturating_sub(self.start[a]))
    }

    /// The box as an ndarray slice (`arr.slice(bbox.slice())`).
    ///
    /// ```
    /// use ndarray::Array3;
    /// use totalseg_core::crop::BoundingBox;
    /// let a = Array3::<u8>::zeros((4, 5, 6));
    /// let b = BoundingBox { start: [1, 0, 2], end: [3, 5, 3] };
    /// assert_eq!(a.slice(b.slice()).dim(), (2, 5, 1));
    /// ```
    pub fn slice(&self) -> SliceInfo<[SliceInfoElem; 3], Ix3, Ix3> {
        let (a, b) = (self.start, self.end);
        s![a[0]..b[0], a[1]..b[1], a[2]..b[2]]
    }

    /// The box grown by `margin` voxels on every side, clipped to a volume of `shape`.
    ///
    /// ```
    /// use totalseg_core::crop::BoundingBox;
    /// let b = BoundingBox { start: [1, 5, 0], end: [2, 6, 3] };
    /// assert_eq!(b.widened(2, [10, 7, 3]), BoundingBox { start: [0, 3, 0], end: [4, 7, 3] });
    /// ```
    pub fn widened(&self, margin: usize, shape: [usize; 3]) -> Self {
        BoundingBox {
            start: self.start.map(|v| v.saturating_sub(margin)),
            end: std::array::from_fn(|a| (self.end[a] + margin).min(shape[a])),
        }
    }

    fn check_inside(&self, shape: [usize; 3]) -> Result<(), CropError> {
        for a in 0..3 {
            if self.start[a] >= self.end[a] || self.end[a] > shape[a] {
                return Err(CropError::BoxOutsideImage { bbox: *self, shape });
            }
        }
        Ok(())
    }
}

/// What went wrong while cropping.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CropError {
    /// The box is empty or reaches outside the image.
    #[error("bounding box {bbox:?} is empty or outside an image of shape {shape:?}")]
    BoxOutsideImage {
        /// The box.
        bbox: BoundingBox,
        /// The image shape.
        shape: [usize; 3],
    },
    /// Two arrays that must have the same shape do not.
    #[error("{what}: shape {found:?} does not match {expected:?}")]
    ShapeMismatch {
        /// Which arrays.
        what: &'static str,
        /// The shape required.
        expected: [usize; 3],
        /// The shape given.
        found: [usize; 3],
    },
    /// A voxel size is zero, negative or not finite.
    #[error("voxel size {zoom} along axis {axis} is not a positive finite number")]
    InvalidZoom {
        /// The axis.
        axis: usize,
        /// The voxel size.
        zoom: f64,
    },
    /// A margin is not finite.
    #[error("margin {margin_mm} mm along axis {axis} is not finite")]
    InvalidMargin {
        /// The axis.
        axis: usize,
        /// The margin.
        margin_mm: f64,
    },
}

fn dims<T>(a: &ArrayView3<'_, T>) -> [usize; 3] {
    let (x, y, z) = a.dim();
    [x, y, z]
}

/// TotalSegmentator's margin conversion in `crop_to_mask`: `int(addon_mm / zoom)` voxels per
/// axis (truncated toward zero). Pass the zooms nibabel reports for the image (float32
/// `pixdim` widened to f64) to match it exactly.
///
/// ```
/// use totalseg_core::crop::margin_mm_to_voxels;
/// assert_eq!(margin_mm_to_voxels([20.0, 20.0, 20.0], [0.8, 0.8, 1.5]).unwrap(), [25, 25, 13]);
/// ```
pub fn margin_mm_to_voxels(margin_mm: [f64; 3], zooms: [f64; 3]) -> Result<[i64; 3], CropError> {
    let mut out = [0i64; 3];
    for axis in 0..3 {
        let zoom = zooms[axis];
        if !(zoom.is_finite() && zoom > 0.0) {
            return Err(CropError::InvalidZoom { axis, zoom });
        }
        if !margin_mm[axis].is_finite() {
            return Err(CropError::InvalidMargin {
                axis,
                margin_mm: margin_mm[axis],
            });
        }
        out[axis] = (margin_mm[axis] / zoom).trunc() as i64;
    }
    Ok(out)
}

/// Per-axis `[min, max]` (inclusive) of the voxels where `inside` holds, or `None` if none do.
fn inclusive_extent<M: Sync>(
    mask: ArrayView3<'_, M>,
    inside: impl Fn(&M) -> bool + Sync,
) -> Option<([usize; 3], [usize; 3])> {
    mask.axis_iter(Axis(0))
        .into_par_iter()
        .enumerate()
        .filter_map(|(i, plane)| {
            let mut lo = [usize::MAX; 3];
            let mut hi = [0usize; 3];
            let mut any = false;
            for ((j, k), m) in plane.indexed_iter() {
                if inside(m) {
                    any = true;
                    lo[1] = lo[1].min(j);
                    hi[1] = hi[1].max(j);
                    lo[2] = lo[2].min(k);
                    hi[2] = hi[2].max(k);
                }
            }
            any.then(|| {
                lo[0] = i;
                hi[0] = i;
                (lo, hi)
            })
        })
        .reduce_with(|(lo_a, hi_a), (lo_b, hi_b)| {
            (
                std::array::from_fn(|a| lo_a[a].min(lo_b[a])),
                std::array::from_fn(|a| hi_a[a].max(hi_b[a])),
            )
        })
}

/// TotalSegmentator's `get_bbox_from_mask(mask, outside_value=0, addon=margin)`: the box of the
/// voxels with `mask > 0`, widened by `margin` voxels on each side and clamped to the image.
/// An all-background mask gives the whole image (TotalSegmentator prints a warning and does not
/// crop). A negative margin shrinks the box; a box shrunk to nothing is an error.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::crop::{bbox_of_mask_with_margin, BoundingBox};
/// let mut mask = Array3::<u8>::zeros((10, 10, 10));
/// mask[[4, 5, 6]] = 3;
/// let bbox = bbox_of_mask_with_margin(mask.view(), [2, 2, 5]).unwrap();
/// assert_eq!(bbox, BoundingBox { start: [2, 3, 1], end: [7, 8, 10] });
/// ```
pub fn bbox_of_mask_with_margin<M>(
    mask: ArrayView3<'_, M>,
    margin: [i64; 3],
) -> Result<BoundingBox, CropError>
where
    M: PartialOrd + Default + Sync,
{
    let shape = dims(&mask);
    let zero = M::default();
    let Some((lo, hi)) = inclusive_extent(mask, |m| *m > zero) else {
        return Ok(BoundingBox::full(shape));
    };
    let mut bbox = BoundingBox::full(shape);
    for a in 0..3 {
        let start = lo[a] as i64 - margin[a];
        let end = hi[a] as i64 + 1 + margin[a];
        bbox.start[a] = start.clamp(0, shape[a] as i64) as usize;
        bbox.end[a] = end.clamp(0, shape[a] as i64) as usize;
    }
    bbox.check_inside(shape)?;
    Ok(bbox)
}

/// nnU-Net's `get_bbox_from_mask(nonzero_mask)` (acvl_utils): the half-open box of the `true`
/// voxels, or the whole image when there are none. Used by `crop_to_nonzero` after the mask's
/// holes are filled.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::crop::{nonzero_bbox, BoundingBox};
/// let mut mask = Array3::from_elem((4, 5, 6), false);
/// mask[[1, 2, 3]] = true;
/// mask[[2, 4, 3]] = true;
/// assert_eq!(nonzero_bbox(mask.view()), BoundingBox { start: [1, 2, 3], end: [3, 5, 4] });
/// ```
pub fn nonzero_bbox(mask: ArrayView3<'_, bool>) -> BoundingBox {
    let shape = dims(&mask);
    match inclusive_extent(mask, |m| *m) {
        Some((lo, hi)) => BoundingBox {
            start: lo,
            end: std::array::from_fn(|a| hi[a] + 1),
        },
        None => BoundingBox::full(shape),
    }
}

/// The bounding box of every label of a `u8` label map in one pass (`np.where(seg == label)`
/// min and max + 1), indexed by label (256 entries); `None` for absent labels.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::crop::{label_bounding_boxes, BoundingBox};
/// let mut labels = Array3::<u8>::zeros((4, 4, 4));
/// labels[[1, 2, 3]] = 7;
/// labels[[2, 0, 3]] = 7;
/// let boxes = label_bounding_boxes(labels.view());
/// assert_eq!(boxes[7], Some(BoundingBox { start: [1, 0, 3], end: [3, 3, 4] }));
/// assert_eq!(boxes[1], None);
/// ```
pub fn label_bounding_boxes(labels: ArrayView3<'_, u8>) -> Vec<Option<BoundingBox>> {
    let mut boxes: Vec<Option<BoundingBox>> = vec![None; 256];
    for ((i, j, k), &label) in labels.indexed_iter() {
        let p = [i, j, k];
        match &mut boxes[usize::from(label)] {
            Some(b) => {
                for (a, &v) in p.iter().enumerate() {
                    b.start[a] = b.start[a].min(v);
                    b.end[a] = b.end[a].max(v + 1);
                }
            }
            entry => {
                *entry = Some(BoundingBox {
                    start: p,
                    end: p.map(|v| v + 1),
                })
            }
        }
    }
    boxes
}

/// TotalSegmentator's `crop_to_bbox`: a copy of the voxels inside `bbox`.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::crop::{crop_to_bbox, BoundingBox};
/// let img = Array3::from_shape_fn((4, 4, 4), |(i, j, k)| (i * 16 + j * 4 + k) as i32);
/// let bbox = BoundingBox { start: [1, 0, 2], end: [3, 4, 3] };
/// let cropped = crop_to_bbox(img.view(), &bbox).unwrap();
/// assert_eq!(cropped.dim(), (2, 4, 1));
/// assert_eq!(cropped[[0, 0, 0]], img[[1, 0, 2]]);
/// ```
pub fn crop_to_bbox<T: Clone>(
    image: ArrayView3<'_, T>,
    bbox: &BoundingBox,
) -> Result<Array3<T>, CropError> {
    bbox.check_inside(dims(&image))?;
    Ok(image.slice(bbox.slice()).to_owned())
}

/// The affine of an image cropped to `bbox` (`crop_to_bbox_nifti`): the origin moves to the
/// world position of voxel `bbox.start`; the direction columns stay.
///
/// ```
/// use totalseg_core::crop::{crop_affine, BoundingBox};
/// let affine = [[0.8, 0.0, 0.0, -100.0], [0.0, 0.8, 0.0, -50.0], [0.0, 0.0, 1.5, 20.0], [0.0, 0.0, 0.0, 1.0]];
/// let bbox = BoundingBox { start: [10, 0, 2], end: [20, 5, 9] };
/// let cropped = crop_affine(&affine, &bbox);
/// assert_eq!([cropped[0][3], cropped[1][3], cropped[2][3]], [-92.0, -50.0, 23.0]);
/// ```
pub fn crop_affine(affine: &Affine, bbox: &BoundingBox) -> Affine {
    let [i, j, k] = bbox.start.map(|v| v as f64);
    let mut out = *affine;
    for r in 0..3 {
        out[r][3] = affine[r][0] * i + affine[r][1] * j + affine[r][2] * k + affine[r][3];
    }
    out
}

/// TotalSegmentator's `crop_to_mask(img, mask, addon_mm)` on arrays: the box of `mask > 0`
/// widened by `int(addon_mm / zoom)` voxels, the cropped copy of `image` and its affine.
/// `zooms` are the image's voxel sizes as nibabel reports them. TotalSegmentator then casts
/// the cropped image (`dtype=np.int32` for CT); cast the result as needed.
pub fn crop_to_mask<T: Clone, M>(
    image: ArrayView3<'_, T>,
    affine: &Affine,
    zooms: [f64; 3],
    mask: ArrayView3<'_, M>,
    margin_mm: [f64; 3],
) -> Result<(Array3<T>, Affine, BoundingBox), CropError>
where
    M: PartialOrd + Default + Sync,
{
    if dims(&mask) != dims(&image) {
        return Err(CropError::ShapeMismatch {
            what: "crop mask vs image",
            expected: dims(&image),
            found: dims(&mask),
        });
    }
    let margin = margin_mm_to_voxels(margin_mm, zooms)?;
    let bbox = bbox_of_mask_with_margin(mask, margin)?;
    let cropped = crop_to_bbox(image, &bbox)?;
    Ok((cropped, crop_affine(affine, &bbox), bbox))
}

/// TotalSegmentator's `undo_crop`: paste a cropped volume back into an array of the original
/// shape at `bbox`, with `T::default()` (zero) outside. The affine is the original image's.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::crop::{undo_crop, BoundingBox};
/// let labels = Array3::<u8>::from_elem((2, 1, 1), 7);
/// let bbox = BoundingBox { start: [1, 2, 0], end: [3, 3, 1] };
/// let full = undo_crop(labels.view(), [4, 4, 2], &bbox).unwrap();
/// assert_eq!(full.iter().filter(|&&v| v == 7).count(), 2);
/// assert_eq!(full[[1, 2, 0]], 7);
/// ```
pub fn undo_crop<T: Clone + Default>(
    cropped: ArrayView3<'_, T>,
    original_shape: [usize; 3],
    bbox: &BoundingBox,
) -> Result<Array3<T>, CropError> {
    bbox.check_inside(original_shape)?;
    if dims(&cropped) != bbox.shape() {
        return Err(CropError::ShapeMismatch {
            what: "cropped volume vs bounding box",
            expected: bbox.shape(),
            found: dims(&cropped),
        });
    }
    let mut out = Array3::from_elem(original_shape, T::default());
    out.slice_mut(bbox.slice()).assign(&cropped);
    Ok(out)
}
