//! nnU-Net v2's `default_resampling.py` for data (`is_seg=False`): `skimage.transform.resize`
//! (`mode="edge"`, no anti-aliasing, output clipped to the input range) = scipy `zoom` with
//! `grid_mode=True`, and the separate-z path for anisotropic spacings (in-plane resize slice by
//! slice, then `map_coordinates(order=order_z, mode="nearest")` along the low-resolution axis).

use ndarray::{Array3, Array4, ArrayView3, ArrayView4, Axis};
use rayon::prelude::*;

use super::zoom::{zoom_axes, GridMode};
use super::{check_spacing, dims, CastFromF64, ResampleError, SplineOrder, Voxel};

/// nnU-Net's `ANISO_THRESHOLD`: spacing ratios above it trigger the separate-z path.
pub const ANISO_THRESHOLD: f64 = 3.0;

/// The `resampling_fn_data_kwargs` / `resampling_fn_probabilities_kwargs` of a plan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NnunetResampling {
    /// Spline order in-plane (3 for data, 1 for probabilities).
    pub order: SplineOrder,
    /// Order along the low-resolution axis on the separate-z path (0 in nnU-Net).
    pub order_z: SplineOrder,
    /// `force_separate_z`: `None` decides from the spacings.
    pub force_separate_z: Option<bool>,
    /// `separate_z_anisotropy_threshold`.
    pub anisotropy_threshold: f64,
}

impl Default for NnunetResampling {
    /// nnU-Net's data resampling: order 3, order_z 0, `force_separate_z=None`, threshold 3.
    fn default() -> Self {
        NnunetResampling {
            order: SplineOrder::Cubic,
            order_z: SplineOrder::Nearest,
            force_separate_z: None,
            anisotropy_threshold: ANISO_THRESHOLD,
        }
    }
}

/// nnU-Net's `compute_new_shape`: `int(round(old_spacing / new_spacing * old_shape))` per
/// axis, Python's round (halves to even).
///
/// ```
/// use totalseg_core::resample::compute_new_shape;
/// assert_eq!(compute_new_shape([5, 7, 9], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0]).unwrap(), [2, 4, 4]);
/// ```
pub fn compute_new_shape(
    old_shape: [usize; 3],
    old_spacing: [f64; 3],
    new_spacing: [f64; 3],
) -> Result<[usize; 3], ResampleError> {
    check_spacing("input", old_spacing)?;
    check_spacing("target", new_spacing)?;
    Ok(std::array::from_fn(|a| {
        (old_spacing[a] / new_spacing[a] * old_shape[a] as f64).round_ties_even() as usize
    }))
}

/// nnU-Net's `get_do_separate_z`: `max(spacing) / min(spacing) > threshold`.
pub fn do_separate_z(spacing: [f64; 3], threshold: f64) -> bool {
    let max = spacing.iter().cloned().fold(f64::MIN, f64::max);
    let min = spacing.iter().cloned().fold(f64::MAX, f64::min);
    max / min > threshold
}

/// nnU-Net's `get_lowres_axis`: the axes whose spacing is the largest
/// (`max(spacing) / spacing == 1`).
pub fn lowres_axes(spacing: [f64; 3]) -> Vec<usize> {
    let max = spacing.iter().cloned().fold(f64::MIN, f64::max);
    (0..3).filter(|&a| max / spacing[a] == 1.0).collect()
}

/// nnU-Net's `determine_do_sep_z_and_axis`: the axis to resample separately, or `None`.
/// Two or three equally coarse axes mean no separate axis.
///
/// ```
/// use totalseg_core::resample::{separate_z_axis, ANISO_THRESHOLD};
/// assert_eq!(separate_z_axis(None, [5.0, 0.8, 0.8], [1.5, 1.5, 1.5], ANISO_THRESHOLD), Some(0));
/// assert_eq!(separate_z_axis(None, [1.0, 0.8, 0.8], [1.5, 1.5, 1.5], ANISO_THRESHOLD), None);
/// ```
pub fn separate_z_axis(
    force_separate_z: Option<bool>,
    current_spacing: [f64; 3],
    new_spacing: [f64; 3],
    threshold: f64,
) -> Option<usize> {
    let axes = match force_separate_z {
        Some(true) => lowres_axes(current_spacing),
        Some(false) => return None,
        None if do_separate_z(current_spacing, threshold) => lowres_axes(current_spacing),
        None if do_separate_z(new_spacing, threshold) => lowres_axes(new_spacing),
        None => return None,
    };
    match axes.as_slice() {
        [axis] => Some(*axis),
        _ => None,
    }
}

/// nnU-Net's `resample_data_or_seg_to_shape(data, new_shape, current_spacing, new_spacing,
/// is_seg=False, ...)` for one channel, cast to `O` (nnU-Net casts to the input's dtype).
///
/// Without a separate axis: `resize(data, new_shape, order, mode="edge", anti_aliasing=False)`,
/// clipped to the channel's `[min, max]`. With one: each slice across the low-resolution axis is
/// resized in 2D (clipped to that slice's range), then that axis is resampled with
/// `map_coordinates(order=order_z, mode="nearest")` at `(i + 0.5) * in / out - 0.5`.
/// Equal shapes return the data cast, unresampled.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::resample::{resample_data_to_shape, NnunetResampling};
/// let data = Array3::from_shape_fn((3, 6, 6), |(i, j, k)| (i + j + k) as f32);
/// let out: Array3<f32> = resample_data_to_shape(data.view(), [6, 9, 9], [5.0, 1.0, 1.0],
///     [2.5, 0.667, 0.667], &NnunetResampling::default()).unwrap();
/// assert_eq!(out.dim(), (6, 9, 9));
/// // order 0 along the coarse axis: output slices 0 and 1 both come from input slice 0
/// assert_eq!(out.index_axis(ndarray::Axis(0), 0), out.index_axis(ndarray::Axis(0), 1));
/// ```
pub fn resample_data_to_shape<T: Voxel, O: CastFromF64 + Default>(
    data: ArrayView3<'_, T>,
    new_shape: [usize; 3],
    current_spacing: [f64; 3],
    new_spacing: [f64; 3],
    options: &NnunetResampling,
) -> Result<Array3<O>, ResampleError> {
    let shape = dims(&data);
    if shape.contains(&0) {
        return Err(ResampleError::EmptyInput { shape });
    }
    if new_shape.contains(&0) {
        return Err(ResampleError::EmptyOutput {
            input: shape,
            output: new_shape,
        });
    }
    if shape == new_shape {
        return Ok(data.mapv(|v| O::cast_from_f64(v.to_f64())));
    }
    let axis = separate_z_axis(
        options.force_separate_z,
        current_spacing,
        new_spacing,
        options.anisotropy_threshold,
    );
    let Some(axis) = axis else {
        let (lo, hi) = value_range(data);
        return Ok(zoom_axes(
            data,
            new_shape,
            [true; 3],
            options.order,
            GridMode::AlignEdges,
            |_, t| O::cast_from_f64(clip(t, lo, hi)),
        ));
    };
    if options.order_z == SplineOrder::Cubic {
        return Err(ResampleError::UnsupportedOrderZ);
    }
    let mut in_plane = [true; 3];
    in_plane[axis] = false;
    let mut slice_shape = new_shape;
    slice_shape[axis] = shape[axis];
    let same_in_plane = (0..3).all(|a| a == axis || shape[a] == new_shape[a]);
    // Stage 1 (float64): skimage resizes each slice; equal 2D shapes are copied (scipy's
    // zoom == 1 shortcut), otherwise clipped to the slice's own range.
    let resized: Array3<f64> = if same_in_plane {
        data.mapv(|v| v.to_f64())
    } else {
        let ranges: Vec<(f64, f64)> = data.axis_iter(Axis(axis)).map(value_range).collect();
        zoom_axes(
            data,
            slice_shape,
            in_plane,
            options.order,
            GridMode::AlignEdges,
            |idx, t| {
                let (lo, hi) = ranges[idx[axis]];
                clip(t, lo, hi)
            },
        )
    };
    if shape[axis] == new_shape[axis] {
        return Ok(resized.mapv(O::cast_from_f64));
    }
    let mut along = [false; 3];
    along[axis] = true;
    Ok(zoom_axes(
        resized.view(),
        new_shape,
        along,
        options.order_z,
        GridMode::AlignEdges,
        |_, t| O::cast_from_f64(t),
    ))
}

/// [`resample_data_to_shape`] for every channel of `[c, d0, d1, d2]` (channels in parallel),
/// as nnU-Net's `resample_data_or_seg` loops over them: normalised images (`O = f32`) and
/// fp16 logits (`O = f16`, nnU-Net keeps the logits' dtype).
///
/// ```
/// use ndarray::Array4;
/// use totalseg_core::resample::{resample_channels_to_shape, NnunetResampling};
/// let logits = Array4::from_shape_fn((2, 2, 2, 2), |(c, i, _, _)| (c * 10 + i) as f32);
/// let out: Array4<half::f16> = resample_channels_to_shape(logits.view(), [4, 2, 2],
///     [1.0; 3], [0.5, 1.0, 1.0], &NnunetResampling::default()).unwrap();
/// assert_eq!(out.dim(), (2, 4, 2, 2));
/// assert_eq!(out[[1, 0, 0, 0]].to_f32(), 10.0);
/// ```
pub fn resample_channels_to_shape<T: Voxel, O: CastFromF64 + Default>(
    data: ArrayView4<'_, T>,
    new_shape: [usize; 3],
    current_spacing: [f64; 3],
    new_spacing: [f64; 3],
    options: &NnunetResampling,
) -> Result<Array4<O>, ResampleError> {
    // Each channel goes into the output as soon as it is resampled: at most one resampled
    // channel per thread besides the output.
    let channels = data.shape()[0];
    let mut out = Array4::<O>::default((channels, new_shape[0], new_shape[1], new_shape[2]));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(data.axis_iter(Axis(0)).into_par_iter())
        .try_for_each(|(mut target, channel)| {
            let resampled =
                resample_data_to_shape(channel, new_shape, current_spacing, new_spacing, options)?;
            target.assign(&resampled);
            Ok(())
        })?;
    Ok(out)
}

/// `np.clip(t, lo, hi)`.
fn clip(t: f64, lo: f64, hi: f64) -> f64 {
    if t < lo {
        lo
    } else if t > hi {
        hi
    } else {
        t
    }
}

/// The `[min, max]` skimage clips to, ignoring NaN as its NaN-aware fallback does.
fn value_range<T: Voxel, D: ndarray::Dimension>(data: ndarray::ArrayView<'_, T, D>) -> (f64, f64) {
    data.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            let v = v.to_f64();
            (lo.min(v), hi.max(v))
        })
}
