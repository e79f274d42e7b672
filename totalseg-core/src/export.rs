//! nnU-Net's export of the fold-averaged logits (model spacing) to labels at the shape of the
//! cropped input (`convert_predicted_logits_to_segmentation_with_correct_shape`), in the two
//! ways TotalSegmentator 2.18 runs it:
//!
//! - [`LogitsResampling::Full`] (default): every channel resampled with the plans'
//!   `resampling_fn_probabilities` (skimage order 1; fp16 kept, as nnU-Net keeps the logits'
//!   dtype), then the argmax.
//! - [`LogitsResampling::Cropped`] (`--higher_order_resampling`, TotalSegmentator's
//!   `nnunet_runtime_patches._convert_logits_to_segmentation_with_cropped_resampling`): only
//!   the background channel is resampled whole; each class present in the low-resolution
//!   argmax is interpolated (order 1) inside its bounding box plus 3 voxels and wins where it
//!   beats the best score so far, classes in ascending order.
//!
//! Both return the argmax directly when the shapes already agree.

use half::f16;
use ndarray::parallel::prelude::*;
use ndarray::{s, Array3, Array4, ArrayView4, Axis};

use crate::postprocess::{argmax_channels, PostprocessError};
use crate::resample::{
    label_crops, map_grid_coordinates_rows, resample_channels_to_shape, resample_data_to_shape,
    CastFromF64, LabelCrop, NnunetResampling, ResampleError, SplineOrder,
};

/// `CROPPED_LOGITS_RESAMPLING_MARGIN`: voxels added around each class's low-resolution box.
pub const CROPPED_LOGITS_MARGIN: usize = 3;

/// How logits at model spacing are brought back to the input's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogitsResampling {
    /// All channels resampled to the full shape, then the argmax (nnU-Net's export).
    #[default]
    Full,
    /// Background whole, each present class within its box (`--higher_order_resampling`).
    Cropped,
}

/// Why the logits could not be turned into labels.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Resampling failed (empty shapes, bad spacings).
    #[error("resampling the logits: {0}")]
    Resample(#[from] ResampleError),
    /// The argmax failed (no channels, too many for a `u8` label map).
    #[error("argmax of the logits: {0}")]
    Argmax(#[from] PostprocessError),
}

/// Labels `[d0, d1, d2]` = `target_shape` from logits `[classes, ...]` at `model_spacing`
/// (nnU-Net's fp16 values, held in f32), resampled with `options` (the plans'
/// `resampling_fn_probabilities_kwargs`) towards `target_spacing`.
///
/// ```
/// use ndarray::Array4;
/// use totalseg_core::export::{logits_to_labels, LogitsResampling};
/// use totalseg_core::resample::NnunetResampling;
/// // Class 1 wins in the second half of a 2-voxel row; upsampled to 4 voxels.
/// let logits = Array4::from_shape_vec((2, 1, 1, 2), vec![1.0, 0.0, 0.0, 1.0]).unwrap();
/// for how in [LogitsResampling::Full, LogitsResampling::Cropped] {
///     let labels = logits_to_labels(logits.view(), [1, 1, 4], [2.0; 3], [2.0, 2.0, 1.0],
///         &NnunetResampling { order: totalseg_core::resample::SplineOrder::Linear,
///             ..NnunetResampling::default() }, how).unwrap();
///     assert_eq!(labels.as_slice().unwrap(), &[0, 0, 1, 1]);
/// }
/// ```
pub fn logits_to_labels(
    logits: ArrayView4<f32>,
    target_shape: [usize; 3],
    model_spacing: [f64; 3],
    target_spacing: [f64; 3],
    options: &NnunetResampling,
    how: LogitsResampling,
) -> Result<Array3<u8>, ExportError> {
    let (_, d0, d1, d2) = logits.dim();
    if [d0, d1, d2] == target_shape {
        return Ok(argmax_channels(logits)?);
    }
    match how {
        LogitsResampling::Full => {
            let resampled = resample_channels_to_shape::<f32, f16>(
                logits,
                target_shape,
                model_spacing,
                target_spacing,
                options,
            )?;
            Ok(argmax_channels(resampled.view())?)
        }
        LogitsResampling::Cropped => {
            cropped_logits_to_labels(logits, target_shape, model_spacing, target_spacing, options)
        }
    }
}

/// Class probabilities `[classes, d0, d1, d2]` = `target_shape` and their argmax, as nnU-Net's
/// export computes them for `save_probabilities`: every channel of the logits resampled as in
/// [`LogitsResampling::Full`] (fp16 kept), then the softmax over the classes in float32
/// (`label_manager.apply_inference_nonlin`).
///
/// ```
/// use ndarray::Array4;
/// use totalseg_core::export::logits_to_probabilities;
/// use totalseg_core::resample::NnunetResampling;
/// let logits = Array4::from_shape_vec((2, 1, 1, 2), vec![0.0, 0.0, 0.0, 2.0]).unwrap();
/// let (probabilities, labels) = logits_to_probabilities(
///     logits, [1, 1, 2], [1.0; 3], [1.0; 3], &NnunetResampling::default()).unwrap();
/// assert_eq!(probabilities[[0, 0, 0, 0]], 0.5);
/// assert!((probabilities[[1, 0, 0, 1]] - 0.880797).abs() < 1e-6);
/// assert_eq!(labels.as_slice().unwrap(), &[0, 1]);
/// ```
pub fn logits_to_probabilities(
    logits: Array4<f32>,
    target_shape: [usize; 3],
    model_spacing: [f64; 3],
    target_spacing: [f64; 3],
    options: &NnunetResampling,
) -> Result<(Array4<f32>, Array3<u8>), ExportError> {
    let (_, d0, d1, d2) = logits.dim();
    // The softmax is taken in place: the logits' own array when no resampling is needed.
    let mut scores = if [d0, d1, d2] == target_shape {
        logits
    } else {
        resample_channels_to_shape::<f32, f16>(
            logits.view(),
            target_shape,
            model_spacing,
            target_spacing,
            options,
        )?
        .mapv(f16::to_f32)
    };
    let labels = argmax_channels(scores.view())?;
    softmax_channels(&mut scores);
    Ok((scores, labels))
}

/// `torch.softmax(x, 0)` in place: per voxel, the maximum subtracted, exp, divided by the sum.
fn softmax_channels(scores: &mut Array4<f32>) {
    let (_, d0, d1, d2) = scores.dim();
    let mut max = Array3::from_elem((d0, d1, d2), f32::NEG_INFINITY);
    for channel in scores.axis_iter(Axis(0)) {
        ndarray::Zip::from(&mut max)
            .and(channel)
            .par_for_each(|m, &v| *m = m.max(v));
    }
    let mut sum = Array3::<f32>::zeros((d0, d1, d2));
    for mut channel in scores.axis_iter_mut(Axis(0)) {
        ndarray::Zip::from(&mut channel)
            .and(&max)
            .and(&mut sum)
            .par_for_each(|v, &m, s| {
                *v = (*v - m).exp();
                *s += *v;
            });
    }
    for mut channel in scores.axis_iter_mut(Axis(0)) {
        ndarray::Zip::from(&mut channel)
            .and(&sum)
            .par_for_each(|v, &s| *v /= s);
    }
}

fn cropped_logits_to_labels(
    logits: ArrayView4<f32>,
    target_shape: [usize; 3],
    model_spacing: [f64; 3],
    target_spacing: [f64; 3],
    options: &NnunetResampling,
) -> Result<Array3<u8>, ExportError> {
    let (classes, d0, d1, d2) = logits.dim();
    let old_shape = [d0, d1, d2];
    if classes == 0 {
        return Err(PostprocessError::NoChannels.into());
    }
    // The background's score volume in fp16, as nnU-Net's resampling returns it.
    let mut best: Array3<f16> = resample_data_to_shape(
        logits.index_axis(Axis(0), 0),
        target_shape,
        model_spacing,
        target_spacing,
        options,
    )?;
    let mut labels = Array3::<u8>::zeros(target_shape);
    let lowres = argmax_channels(logits)?;
    for LabelCrop {
        label,
        crop,
        target,
    } in label_crops(lowres.view(), CROPPED_LOGITS_MARGIN, target_shape)
    {
        let coordinates: [Vec<f64>; 3] = std::array::from_fn(|a| {
            (target.start[a]..target.end[a])
                .map(|t| crop_coordinate(t, old_shape[a], target_shape[a], crop.start[a]))
                .collect()
        });
        let logits_crop = logits.slice(s![
            usize::from(label),
            crop.start[0]..crop.end[0],
            crop.start[1]..crop.end[1],
            crop.start[2]..crop.end[2]
        ]);
        let region = target.slice();
        // Each row of scores updates the same rows of the best scores and labels.
        let mut best_box = best.slice_mut(region);
        let mut labels_box = labels.slice_mut(region);
        let planes = (best_box.axis_iter_mut(Axis(0)).into_par_iter())
            .zip(labels_box.axis_iter_mut(Axis(0)).into_par_iter());
        map_grid_coordinates_rows(
            logits_crop,
            [&coordinates[0], &coordinates[1], &coordinates[2]],
            SplineOrder::Linear,
            planes,
            |(best_plane, label_plane), _, b, scores| {
                let best_row = best_plane.row_mut(b);
                let label_row = label_plane.row_mut(b);
                for ((best, l), &score) in best_row.into_iter().zip(label_row).zip(scores) {
                    if score > best.to_f64() {
                        *best = f16::cast_from_f64(score);
                        *l = label;
                    }
                }
            },
        )?;
    }
    Ok(labels)
}

/// The crop coordinate of target index `t`:
/// `(np.arange(.., dtype=float32) + 0.5) * old / new - 0.5 - offset`. The `+ 0.5` is float32;
/// NumPy 2 promotes to float64 at `* old` (an `int64` scalar); the coordinate map is then
/// stored as float32, which `map_coordinates` reads back as float64.
fn crop_coordinate(t: usize, old: usize, new: usize, offset: usize) -> f64 {
    let x = f64::from(t as f32 + 0.5);
    let c = x * old as f64 / new as f64 - 0.5 - offset as f64;
    f64::from(c as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crop::BoundingBox;
    use ndarray::Array4;

    fn linear() -> NnunetResampling {
        NnunetResampling {
            order: SplineOrder::Linear,
            ..NnunetResampling::default()
        }
    }

    #[test]
    fn equal_shapes_are_the_argmax() {
        let logits = Array4::from_shape_fn((3, 2, 3, 4), |(c, i, j, k)| {
            ((c * 7 + i * 5 + j * 3 + k) % 5) as f32
        });
        let expected = argmax_channels(logits.view()).unwrap();
        for how in [LogitsResampling::Full, LogitsResampling::Cropped] {
            let labels =
                logits_to_labels(logits.view(), [2, 3, 4], [1.0; 3], [1.0; 3], &linear(), how)
                    .unwrap();
            assert_eq!(labels, expected);
        }
    }

    #[test]
    fn full_export_argmax_sees_fp16_ties() {
        // Two classes whose resampled scores differ by less than half an fp16 step at 1.0:
        // nnU-Net stores both as 1.0 in fp16, so the lower class wins the tie.
        let mut logits = Array4::<f32>::zeros((3, 1, 1, 2));
        logits[[1, 0, 0, 0]] = 1.0;
        logits[[1, 0, 0, 1]] = 1.0;
        logits[[2, 0, 0, 0]] = 1.0;
        logits[[2, 0, 0, 1]] = 1.0 + 2.0f32.powi(-10); // the next fp16 after 1.0
        let labels = logits_to_labels(
            logits.view(),
            [1, 1, 4],
            [2.0; 3],
            [2.0, 2.0, 1.0],
            &linear(),
            LogitsResampling::Full,
        )
        .unwrap();
        // Target 1 interpolates class 2 at 1 + 2^-12, which rounds to 1.0 in fp16: a tie that
        // class 1 wins (in f32 class 2 would); target 2 (1 + 3 * 2^-12) rounds up to class 2.
        assert_eq!(labels.as_slice().unwrap(), &[1, 1, 2, 2]);
    }

    #[test]
    fn cropped_export_keeps_classes_inside_their_boxes() {
        // Class 1 present only at one end of a long axis: far from its box plus margin the
        // background's resampled score stands, whatever class 1's logits say there.
        let n = 16;
        let mut logits = Array4::<f32>::zeros((2, 1, 1, n));
        for k in 0..n {
            logits[[0, 0, 0, k]] = 0.0;
            logits[[1, 0, 0, k]] = if k == 0 { 2.0 } else { -1.0 };
        }
        // A second bump of class 1 that stays below background: not in the argmax, not in a box.
        logits[[1, 0, 0, 12]] = -0.5;
        let labels = logits_to_labels(
            logits.view(),
            [1, 1, 2 * n],
            [2.0; 3],
            [2.0, 2.0, 1.0],
            &linear(),
            LogitsResampling::Cropped,
        )
        .unwrap();
        let ones: Vec<usize> = (0..2 * n).filter(|&k| labels[[0, 0, k]] == 1).collect();
        // Low-res voxel 0 -> target 0..=1; at target 2 (crop coordinate 0.75) 2 - 0.75*3 < 0.
        assert_eq!(ones, vec![0, 1]);
    }

    #[test]
    fn crop_coordinates_follow_numpy() {
        // (np.arange(3, 6, dtype=np.float32) + 0.5) * np.int64(7) / np.int64(11) - 0.5 - 1
        // in NumPy 2.4, stored as float32.
        let got: Vec<f64> = (3..6).map(|t| crop_coordinate(t, 7, 11, 1)).collect();
        let expected: Vec<f64> = [3.5f64, 4.5, 5.5]
            .iter()
            .map(|x| f64::from((x * 7.0 / 11.0 - 0.5 - 1.0) as f32))
            .collect();
        assert_eq!(got, expected);
        // Label 5 at old indices 2..=3, margin 1: crop [1, 5); floor(1 * 11/7) = 1,
        // ceil(5 * 11/7) = 8.
        let mut lowres = Array3::<u8>::zeros((7, 1, 1));
        lowres[[2, 0, 0]] = 5;
        lowres[[3, 0, 0]] = 5;
        let crops = label_crops(lowres.view(), 1, [11, 1, 1]);
        assert_eq!(crops.len(), 1);
        assert_eq!(crops[0].label, 5);
        assert_eq!(
            crops[0].crop,
            BoundingBox {
                start: [1, 0, 0],
                end: [5, 1, 1]
            }
        );
        assert_eq!(
            crops[0].target,
            BoundingBox {
                start: [1, 0, 0],
                end: [8, 1, 1]
            }
        );
    }
}
