//! `scipy.ndimage.zoom(input, zoom, order, mode="nearest", grid_mode=...)` on 3D volumes.

use ndarray::{Array3, ArrayView3};

use super::axis_plan::AxisPlan;
use super::kernel::{gather, interpolate};
use super::prefilter::{cubic_coefficients, SPLINE_PREPAD};
use super::{dims, CastFromF64, ResampleError, SplineOrder, Voxel};

/// How scipy maps output to input coordinates (`grid_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GridMode {
    /// `grid_mode=False` (scipy's default, TotalSegmentator): the first and last voxel centres
    /// of input and output coincide; `x_in = x_out * (in - 1) / (out - 1)`.
    AlignCorners,
    /// `grid_mode=True` (`skimage.transform.resize`, nnU-Net): the voxel extents coincide;
    /// `x_in = (x_out + 0.5) * in / out - 0.5`.
    AlignEdges,
}

/// The output shape scipy's `zoom` computes: `int(round(shape * zoom))` per axis, rounding
/// halves to even like Python's `round` on a float64.
///
/// ```
/// use totalseg_core::resample::scipy_zoom_shape;
/// assert_eq!(scipy_zoom_shape([512, 512, 300], [0.8 / 1.5, 0.8 / 1.5, 1.0]).unwrap(), [273, 273, 300]);
/// assert_eq!(scipy_zoom_shape([5, 7, 1], [0.5, 0.5, 2.5]).unwrap(), [2, 4, 2]); // 2.5 -> 2, 3.5 -> 4
/// ```
pub fn scipy_zoom_shape(shape: [usize; 3], zoom: [f64; 3]) -> Result<[usize; 3], ResampleError> {
    check_zoom(zoom)?;
    Ok(std::array::from_fn(|a| {
        (shape[a] as f64 * zoom[a]).round_ties_even() as usize
    }))
}

pub(crate) fn check_zoom(zoom: [f64; 3]) -> Result<(), ResampleError> {
    for (axis, &z) in zoom.iter().enumerate() {
        if !(z.is_finite() && z > 0.0) {
            return Err(ResampleError::InvalidZoom { axis, zoom: z });
        }
    }
    Ok(())
}

/// The per-axis zoom scipy actually samples with, recomputed from the shapes.
pub(crate) fn effective_zoom(in_len: usize, out_len: usize, grid: GridMode) -> f64 {
    let (num, div) = match grid {
        GridMode::AlignCorners => (in_len as f64 - 1.0, out_len as f64 - 1.0),
        GridMode::AlignEdges => (in_len as f64, out_len as f64),
    };
    if div != 0.0 {
        num / div
    } else {
        1.0
    }
}

/// Per-axis sampling plans for a zoom to `out_shape`; `resampled[a] == false` makes axis `a`
/// a passthrough (as when scipy zooms the 2D slices of a volume).
pub(crate) fn zoom_plans(
    in_shape: [usize; 3],
    out_shape: [usize; 3],
    resampled: [bool; 3],
    order: SplineOrder,
    grid: GridMode,
) -> [AxisPlan; 3] {
    let prepad = if order == SplineOrder::Cubic {
        SPLINE_PREPAD
    } else {
        0
    };
    std::array::from_fn(|a| {
        if resampled[a] {
            AxisPlan::zoom(
                in_shape[a] + 2 * prepad,
                out_shape[a],
                effective_zoom(in_shape[a], out_shape[a], grid),
                grid == GridMode::AlignEdges,
                order,
                prepad,
            )
        } else {
            AxisPlan::passthrough(in_shape[a])
        }
    })
}

/// Resamples `input` to `out_shape` along the axes marked in `resampled`, like scipy zooming
/// each lower-dimensional slice across the others; `finish` maps each float64 result.
pub(crate) fn zoom_axes<T, O, F>(
    input: ArrayView3<'_, T>,
    out_shape: [usize; 3],
    resampled: [bool; 3],
    order: SplineOrder,
    grid: GridMode,
    finish: F,
) -> Array3<O>
where
    T: Voxel,
    O: Copy + Send + Sync + Default,
    F: Fn([usize; 3], f64) -> O + Sync,
{
    let plans = zoom_plans(dims(&input), out_shape, resampled, order, grid);
    match order {
        SplineOrder::Cubic => {
            interpolate(cubic_coefficients(input, resampled).view(), &plans, finish)
        }
        _ => interpolate(input, &plans, finish),
    }
}

/// `scipy.ndimage.zoom(input, zoom, order=order, mode="nearest", grid_mode=...)` followed by
/// numpy's `astype(O)`, bit-identical to scipy (see the module docs).
///
/// The output shape is [`scipy_zoom_shape`]; the sampling zoom is recomputed from the shapes
/// as scipy does. When every requested zoom is exactly 1 scipy returns a copy of the input.
/// Order 3 runs scipy's B-spline prefilter on the input padded by 12 edge voxels.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::resample::{scipy_zoom, GridMode, SplineOrder};
/// let ct = Array3::from_shape_fn((4, 4, 2), |(i, j, k)| (i * 10 + j + k * 100) as i16);
/// let up: Array3<f64> = scipy_zoom(ct.view(), [1.75, 1.0, 1.0], SplineOrder::Linear, GridMode::AlignCorners).unwrap();
/// assert_eq!(up.dim(), (7, 4, 2));
/// assert_eq!(up[[1, 0, 0]], 5.0); // x_in = 1 * 3/6 = 0.5 between 0 and 10
/// ```
pub fn scipy_zoom<T: Voxel, O: CastFromF64 + Default>(
    input: ArrayView3<'_, T>,
    zoom: [f64; 3],
    order: SplineOrder,
    grid: GridMode,
) -> Result<Array3<O>, ResampleError> {
    let in_shape = dims(&input);
    if in_shape.contains(&0) {
        return Err(ResampleError::EmptyInput { shape: in_shape });
    }
    let out_shape = scipy_zoom_shape(in_shape, zoom)?;
    if out_shape.contains(&0) {
        return Err(ResampleError::EmptyOutput {
            input: in_shape,
            output: out_shape,
        });
    }
    if zoom == [1.0; 3] {
        return Ok(input.mapv(|v| O::cast_from_f64(v.to_f64())));
    }
    Ok(zoom_axes(
        input,
        out_shape,
        [true; 3],
        order,
        grid,
        |_, t| O::cast_from_f64(t),
    ))
}

/// `scipy.ndimage.zoom(labels, zoom, order=0, mode="nearest")` for label maps: a pure gather
/// that keeps the element type (equal to scipy's float64 result cast back).
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::resample::{scipy_zoom_labels, GridMode};
/// let labels = Array3::from_shape_fn((2, 2, 1), |(i, j, _)| (i * 2 + j) as u8);
/// let up = scipy_zoom_labels(labels.view(), [2.0, 1.5, 1.0], GridMode::AlignCorners).unwrap();
/// assert_eq!(up.dim(), (4, 3, 1));
/// assert_eq!(up.iter().copied().collect::<Vec<_>>(), vec![0, 1, 1, 0, 1, 1, 2, 3, 3, 2, 3, 3]);
/// ```
pub fn scipy_zoom_labels<T: Copy + Send + Sync + Default>(
    labels: ArrayView3<'_, T>,
    zoom: [f64; 3],
    grid: GridMode,
) -> Result<Array3<T>, ResampleError> {
    let in_shape = dims(&labels);
    if in_shape.contains(&0) {
        return Err(ResampleError::EmptyInput { shape: in_shape });
    }
    let out_shape = scipy_zoom_shape(in_shape, zoom)?;
    if out_shape.contains(&0) {
        return Err(ResampleError::EmptyOutput {
            input: in_shape,
            output: out_shape,
        });
    }
    let plans = zoom_plans(in_shape, out_shape, [true; 3], SplineOrder::Nearest, grid);
    Ok(gather(labels, &plans))
}
