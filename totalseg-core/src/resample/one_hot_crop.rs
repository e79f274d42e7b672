//! TotalSegmentator's `resampling.resample_one_hot_crop` (`change_spacing(...,
//! crop_resample=True)`, the label upsampling of `--higher_order_resampling_LEGACY`): each
//! label's one-hot mask, cropped to its bounding box plus a margin, is interpolated at the
//! resized grid's coordinates and kept where it reaches 0.5; labels in ascending order, later
//! ones overwriting earlier ones.

use ndarray::parallel::prelude::*;
use ndarray::{Array3, ArrayView3, Axis};

use super::{dims, map_grid_coordinates_rows, ResampleError, SplineOrder};
use crate::crop::{label_bounding_boxes, BoundingBox};

/// `resample_one_hot_crop(seg, new_shape, order)` for a `u8` label map.
///
/// The margin is `max(2, order + 1)` voxels; coordinates are
/// `(t + 0.5) * old / new - 0.5 - crop_start` in float64, and each mask is float32, so the
/// interpolated value is rounded to float32 before the `>= 0.5` test (scipy returns the
/// input's dtype). Orders 0 and 1 (TotalSegmentator uses 1).
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::resample::{resample_labels_one_hot_crop, SplineOrder};
/// let mut labels = Array3::<u8>::zeros((1, 1, 4));
/// labels[[0, 0, 1]] = 3;
/// labels[[0, 0, 2]] = 3;
/// let up = resample_labels_one_hot_crop(labels.view(), [1, 1, 8], SplineOrder::Linear).unwrap();
/// assert_eq!(up.as_slice().unwrap(), &[0, 0, 3, 3, 3, 3, 0, 0]);
/// ```
pub fn resample_labels_one_hot_crop(
    labels: ArrayView3<'_, u8>,
    new_shape: [usize; 3],
    order: SplineOrder,
) -> Result<Array3<u8>, ResampleError> {
    let old_shape = dims(&labels);
    if old_shape.contains(&0) {
        return Err(ResampleError::EmptyInput { shape: old_shape });
    }
    if new_shape.contains(&0) {
        return Err(ResampleError::EmptyOutput {
            input: old_shape,
            output: new_shape,
        });
    }
    let margin = 2.max(usize::from(order.as_u8()) + 1);
    let mut out = Array3::<u8>::zeros(new_shape);
    for LabelCrop {
        label,
        crop,
        target,
    } in label_crops(labels, margin, new_shape)
    {
        let coordinates: [Vec<f64>; 3] = std::array::from_fn(|a| {
            (target.start[a]..target.end[a])
                .map(|t| {
                    (t as f64 + 0.5) * old_shape[a] as f64 / new_shape[a] as f64
                        - 0.5
                        - crop.start[a] as f64
                })
                .collect()
        });
        let one_hot = labels.slice(crop.slice()).mapv(|v| v == label);
        // The mask is float32 in TotalSegmentator, so is scipy's result.
        map_grid_coordinates_rows(
            one_hot.view(),
            [&coordinates[0], &coordinates[1], &coordinates[2]],
            order,
            out.slice_mut(target.slice())
                .axis_iter_mut(Axis(0))
                .into_par_iter(),
            |plane, _, b, values| {
                for (o, &v) in plane.row_mut(b).into_iter().zip(values) {
                    if v as f32 >= 0.5 {
                        *o = label;
                    }
                }
            },
        )?;
    }
    Ok(out)
}

/// One label of a map, as TotalSegmentator's cropped resamplers visit it.
pub(crate) struct LabelCrop {
    /// The label.
    pub label: u8,
    /// Its bounding box widened by the margin, on the old grid.
    pub crop: BoundingBox,
    /// Where `crop` lands on the resized grid.
    pub target: BoundingBox,
}

/// The labels present in `labels` (ascending, background skipped) with their boxes: each
/// label's bounding box widened by `margin` (clipped), and that box on the grid of
/// `new_shape`, `floor(start * new / old)` to `ceil(end * new / old)` (float64 scale),
/// clipped; labels whose target box is empty along an axis are left out.
pub(crate) fn label_crops(
    labels: ArrayView3<'_, u8>,
    margin: usize,
    new_shape: [usize; 3],
) -> Vec<LabelCrop> {
    let old_shape = dims(&labels);
    let mut crops = Vec::new();
    for (label, bbox) in label_bounding_boxes(labels).into_iter().enumerate().skip(1) {
        let Some(bbox) = bbox else { continue };
        let crop = bbox.widened(margin, old_shape);
        let mut target = BoundingBox::full(new_shape);
        for a in 0..3 {
            let scale = new_shape[a] as f64 / old_shape[a] as f64;
            target.start[a] = (crop.start[a] as f64 * scale).floor().max(0.0) as usize;
            target.end[a] = ((crop.end[a] as f64 * scale).ceil() as usize).min(new_shape[a]);
        }
        if (0..3).all(|a| target.end[a] > target.start[a]) {
            crops.push(LabelCrop {
                label: label as u8,
                crop,
                target,
            });
        }
    }
    crops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_labels_overwrite_earlier_ones_where_both_reach_half() {
        // Two touching labels upsampled 2x: at the shared border both masks are 0.5 after
        // linear interpolation at some voxels; label 2 (later) takes them.
        let labels = Array3::from_shape_vec((1, 1, 4), vec![1u8, 1, 2, 2]).unwrap();
        let up =
            resample_labels_one_hot_crop(labels.view(), [1, 1, 8], SplineOrder::Linear).unwrap();
        // coordinates (t + 0.5) / 2 - 0.5: 3.5/2-0.5 = 1.25 -> label 1 at 0.75, label 2 at 0.25
        assert_eq!(up.as_slice().unwrap(), &[1, 1, 1, 1, 2, 2, 2, 2]);
        let down =
            resample_labels_one_hot_crop(labels.view(), [1, 1, 3], SplineOrder::Linear).unwrap();
        // t = 1: coordinate 1.5 halfway between labels 1 and 2: both 0.5, label 2 wins.
        assert_eq!(down.as_slice().unwrap(), &[1, 2, 2]);
    }

    #[test]
    fn the_float32_rounding_decides_near_half() {
        // A value just below 0.5 in float64 that rounds to 0.5 in float32 keeps the label.
        assert!(0.5f64 - 1e-12 < 0.5 && (0.5f64 - 1e-12) as f32 >= 0.5);
    }

    #[test]
    fn empty_maps_and_shapes() {
        let labels = Array3::<u8>::zeros((2, 2, 2));
        let out =
            resample_labels_one_hot_crop(labels.view(), [3, 3, 3], SplineOrder::Linear).unwrap();
        assert!(out.iter().all(|&v| v == 0));
        assert!(
            resample_labels_one_hot_crop(labels.view(), [0, 3, 3], SplineOrder::Linear).is_err()
        );
    }
}
