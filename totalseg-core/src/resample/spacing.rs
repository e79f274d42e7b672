//! TotalSegmentator's `resampling.change_spacing` (the scipy path, `nnunet_resample=False`).

use ndarray::{Array3, ArrayView3};

use super::zoom::{scipy_zoom, scipy_zoom_labels, GridMode};
use super::{check_spacing, dims, CastFromF64, ResampleError, SplineOrder, Voxel};
use crate::geometry::Affine;

/// Where to resample to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SpacingTarget {
    /// A voxel spacing in mm (`new_spacing`): zoom = spacing / new_spacing.
    Spacing([f64; 3]),
    /// An exact shape (`target_shape`, used to go back to the original grid):
    /// zoom = target_shape / shape, and the spacing follows from it.
    Shape([usize; 3]),
}

/// A resampled volume with the bookkeeping `change_spacing` derives.
#[derive(Debug, Clone, PartialEq)]
pub struct Resampled<O> {
    /// The voxels, cast to `O` (TotalSegmentator's `dtype`: int32 for CT, uint8 for labels).
    pub data: Array3<O>,
    /// The affine with each direction column divided by its zoom, origin unchanged.
    /// TotalSegmentator replaces it by the original affine (`force_affine`) when it resamples
    /// predictions back with a target shape.
    pub affine: Affine,
    /// The zoom factors passed to scipy.
    pub zoom: [f64; 3],
    /// The new spacing (`spacing / zoom` for a target shape).
    pub spacing: [f64; 3],
}

struct Plan {
    zoom: [f64; 3],
    spacing: [f64; 3],
    affine: Affine,
}

fn plan(
    shape: [usize; 3],
    affine: &Affine,
    zooms: [f64; 3],
    target: SpacingTarget,
) -> Result<Option<Plan>, ResampleError> {
    check_spacing("input", zooms)?;
    if shape.contains(&0) {
        return Err(ResampleError::EmptyInput { shape });
    }
    let (zoom, spacing) = match target {
        SpacingTarget::Spacing(new) => {
            check_spacing("target", new)?;
            (std::array::from_fn(|a| zooms[a] / new[a]), new)
        }
        SpacingTarget::Shape(target_shape) => {
            if target_shape.contains(&0) {
                return Err(ResampleError::EmptyOutput {
                    input: shape,
                    output: target_shape,
                });
            }
            let zoom: [f64; 3] = std::array::from_fn(|a| target_shape[a] as f64 / shape[a] as f64);
            (zoom, std::array::from_fn(|a| zooms[a] / zoom[a]))
        }
    };
    if spacing == zooms {
        return Ok(None);
    }
    let mut new_affine = *affine;
    for row in new_affine.iter_mut().take(3) {
        for (col, z) in zoom.iter().enumerate() {
            row[col] /= z;
        }
    }
    Ok(Some(Plan {
        zoom,
        spacing,
        affine: new_affine,
    }))
}

/// TotalSegmentator's `change_spacing(img, new_spacing | target_shape, order, dtype=O)`.
///
/// `zooms` are the image's voxel sizes exactly as nibabel's `header.get_zooms()` reports them
/// (float32 values widened to f64; see [`crate::geometry::nifti_zooms_from_affine`]): the zoom
/// factors, and therefore the output shape, depend on that rounding. Returns `None` when the
/// new spacing equals the old one: TotalSegmentator then returns the input image untouched
/// (not even cast). Only valid, like the original, for affines without rotation or shear.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::resample::{change_spacing, SpacingTarget, SplineOrder};
/// let ct = Array3::from_shape_fn((8, 8, 4), |(i, j, k)| (i * 8 + j) as i16 - 1024 + k as i16);
/// let affine = [[0.75, 0.0, 0.0, -10.0], [0.0, 0.75, 0.0, 0.0], [0.0, 0.0, 1.5, 5.0], [0.0, 0.0, 0.0, 1.0]];
/// let out = change_spacing::<i16, i32>(ct.view(), &affine, [0.75, 0.75, 1.5],
///     SpacingTarget::Spacing([1.5, 1.5, 1.5]), SplineOrder::Linear).unwrap().unwrap();
/// assert_eq!(out.data.dim(), (4, 4, 4));
/// assert_eq!(out.affine[0], [1.5, 0.0, 0.0, -10.0]);
/// ```
pub fn change_spacing<T: Voxel, O: CastFromF64 + Default>(
    data: ArrayView3<'_, T>,
    affine: &Affine,
    zooms: [f64; 3],
    target: SpacingTarget,
    order: SplineOrder,
) -> Result<Option<Resampled<O>>, ResampleError> {
    let Some(p) = plan(dims(&data), affine, zooms, target)? else {
        return Ok(None);
    };
    let data = scipy_zoom(data, p.zoom, order, GridMode::AlignCorners)?;
    Ok(Some(Resampled {
        data,
        affine: p.affine,
        zoom: p.zoom,
        spacing: p.spacing,
    }))
}

/// [`change_spacing`] with order 0 for label maps, keeping the element type (scipy's float64
/// result cast back to the label type is the label itself).
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::resample::{change_spacing_labels, SpacingTarget};
/// let labels = Array3::from_shape_fn((4, 4, 4), |(i, _, _)| i as u8);
/// let affine = [[1.5, 0.0, 0.0, 0.0], [0.0, 1.5, 0.0, 0.0], [0.0, 0.0, 1.5, 0.0], [0.0, 0.0, 0.0, 1.0]];
/// let back = change_spacing_labels(labels.view(), &affine, [1.5; 3], SpacingTarget::Shape([8, 8, 4]))
///     .unwrap().unwrap();
/// assert_eq!(back.data.dim(), (8, 8, 4));
/// assert_eq!(back.spacing, [0.75, 0.75, 1.5]);
/// ```
pub fn change_spacing_labels<T: Copy + Send + Sync + Default>(
    labels: ArrayView3<'_, T>,
    affine: &Affine,
    zooms: [f64; 3],
    target: SpacingTarget,
) -> Result<Option<Resampled<T>>, ResampleError> {
    let Some(p) = plan(dims(&labels), affine, zooms, target)? else {
        return Ok(None);
    };
    let data = scipy_zoom_labels(labels, p.zoom, GridMode::AlignCorners)?;
    Ok(Some(Resampled {
        data,
        affine: p.affine,
        zoom: p.zoom,
        spacing: p.spacing,
    }))
}
