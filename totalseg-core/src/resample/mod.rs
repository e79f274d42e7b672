//! Resampling that reproduces the reference pipeline bit for bit:
//!
//! - [`scipy_zoom`]: `scipy.ndimage.zoom(..., mode="nearest")` (orders 0, 1 and 3, both
//!   `grid_mode` conventions), with numpy's cast of the float64 result;
//! - [`change_spacing`]: TotalSegmentator's `resampling.change_spacing` (zoom from spacings or
//!   a target shape, affine columns divided by the zoom), [`change_spacing_labels`] for label maps;
//! - [`resample_data_to_shape`]: nnU-Net's `resample_data_or_seg_to_shape` for data
//!   (`skimage.transform.resize`, the separate-z path for anisotropic spacings), and
//!   [`resample_channels_to_shape`] for every channel of an image or of logits;
//! - [`map_grid_coordinates`]: `scipy.ndimage.map_coordinates(..., mode="nearest")` at the
//!   points of an axis-aligned grid (orders 0 and 1);
//! - [`resample_labels_one_hot_crop`]: TotalSegmentator's label resampling by cropped one-hot
//!   masks (`--higher_order_resampling_LEGACY`).
//!
//! scipy computes in float64 and sums every voxel's footprint in a fixed order; the code here
//! performs the same operations in the same order (only across threads and with reordered
//! loops), so float results are identical and integer casts truncate in the same voxels.
//! scipy <= 1.17's spline prefilter is reproduced (1.18 changed one rounding step in it).

mod axis_plan;
mod coordinates;
mod kernel;
mod nnunet;
mod one_hot_crop;
mod prefilter;
mod sample;
mod spacing;
mod zoom;

use ndarray::ArrayView3;

pub use coordinates::map_grid_coordinates;
pub(crate) use coordinates::map_grid_coordinates_rows;
pub use nnunet::{
    compute_new_shape, do_separate_z, lowres_axes, resample_channels_to_shape,
    resample_data_to_shape, separate_z_axis, NnunetResampling, ANISO_THRESHOLD,
};
pub use one_hot_crop::resample_labels_one_hot_crop;
pub(crate) use one_hot_crop::{label_crops, LabelCrop};
pub use sample::{CastFromF64, Voxel};
pub use spacing::{change_spacing, change_spacing_labels, Resampled, SpacingTarget};
pub use zoom::{scipy_zoom, scipy_zoom_labels, scipy_zoom_shape, GridMode};

/// Spline order of the interpolation (scipy's `order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SplineOrder {
    /// Order 0: nearest neighbour (halves round up).
    Nearest,
    /// Order 1: trilinear.
    Linear,
    /// Order 3: cubic B-spline, with scipy's prefilter.
    Cubic,
}

impl SplineOrder {
    /// The order from scipy's integer; only 0, 1 and 3 are supported.
    pub fn from_scipy(order: u8) -> Result<Self, ResampleError> {
        match order {
            0 => Ok(SplineOrder::Nearest),
            1 => Ok(SplineOrder::Linear),
            3 => Ok(SplineOrder::Cubic),
            other => Err(ResampleError::UnsupportedOrder { order: other }),
        }
    }

    /// scipy's integer for this order.
    pub fn as_u8(self) -> u8 {
        match self {
            SplineOrder::Nearest => 0,
            SplineOrder::Linear => 1,
            SplineOrder::Cubic => 3,
        }
    }

    /// Footprint width per axis (`order + 1`).
    pub(crate) fn taps(self) -> usize {
        self.as_u8() as usize + 1
    }
}

/// What is wrong with a resampling request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResampleError {
    /// A zoom factor is zero, negative, NaN or infinite.
    #[error("zoom factor {zoom} along axis {axis} is not a positive finite number")]
    InvalidZoom {
        /// The axis.
        axis: usize,
        /// The factor.
        zoom: f64,
    },
    /// A voxel spacing is zero, negative, NaN or infinite.
    #[error("{what} spacing {spacing} mm along axis {axis} is not a positive finite number")]
    InvalidSpacing {
        /// Which spacing ("input", "target").
        what: &'static str,
        /// The axis.
        axis: usize,
        /// The spacing.
        spacing: f64,
    },
    /// The input has no voxels.
    #[error("cannot resample an empty array of shape {shape:?}")]
    EmptyInput {
        /// Its shape.
        shape: [usize; 3],
    },
    /// The requested output would have no voxels.
    #[error("resampling shape {input:?} would give the empty shape {output:?}")]
    EmptyOutput {
        /// Input shape.
        input: [usize; 3],
        /// Output shape.
        output: [usize; 3],
    },
    /// A spline order this crate does not implement.
    #[error("spline order {order} is not supported (0, 1 and 3 are)")]
    UnsupportedOrder {
        /// The order.
        order: u8,
    },
    /// `map_coordinates` with order 3 (it needs a spline prefilter; orders 0 and 1 are
    /// implemented).
    #[error("interpolation at given coordinates supports orders 0 and 1, not the cubic spline")]
    CubicMapCoordinates,
    /// nnU-Net's separate-z path with a cubic `order_z` (it would prefilter across the
    /// in-plane axes too); nnU-Net uses 0.
    #[error("order_z 3 is not supported for the separate-z path (use 0 or 1)")]
    UnsupportedOrderZ,
}

pub(crate) fn dims<T>(a: &ArrayView3<'_, T>) -> [usize; 3] {
    let (x, y, z) = a.dim();
    [x, y, z]
}

pub(crate) fn check_spacing(what: &'static str, spacing: [f64; 3]) -> Result<(), ResampleError> {
    for (axis, &s) in spacing.iter().enumerate() {
        if !(s.is_finite() && s > 0.0) {
            return Err(ResampleError::InvalidSpacing {
                what,
                axis,
                spacing: s,
            });
        }
    }
    Ok(())
}
