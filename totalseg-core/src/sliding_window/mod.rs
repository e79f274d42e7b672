//! nnU-Net's sliding-window inference without the network: the tile plan, the gaussian
//! importance map and the fp16 logit accumulator.
//!
//! Arrays are indexed like nnU-Net's preprocessed data, `[c, d0, d1, d2]` (after
//! `transpose_forward`); `d0` is the first spatial axis of that array and the outermost
//! loop of the tile order.
//!
//! ```
//! use ndarray::Array4;
//! use totalseg_core::sliding_window::{AccumulationPrecision, LogitAccumulator, SlidingWindowPlan};
//!
//! let plan = SlidingWindowPlan::new([40, 9, 12], [16, 16, 16], 0.5)?;
//! let mut acc = LogitAccumulator::new(2, &plan, AccumulationPrecision::Fp16)?;
//! for origin in plan.tiles() {
//!     // A network would predict on `plan.tile_slice(origin)` of the padded image here.
//!     let logits = Array4::<f32>::from_elem((2, 16, 16, 16), 1.5);
//!     acc.add_tile(origin, logits.view())?;
//! }
//! let logits = acc.finish()?; // [2, 40, 9, 12], padding removed
//! assert_eq!(logits.shape(), &[2, 40, 9, 12]);
//! assert_eq!(logits[[0, 20, 4, 6]], 1.5);
//! // As in nnU-Net, fp16 sums of the tiny weights near patch corners are coarse.
//! assert!(logits.iter().all(|&v| (v - 1.5).abs() < 0.05));
//! # Ok::<(), totalseg_core::sliding_window::SlidingWindowError>(())
//! ```

mod accumulator;
mod folds;
mod gaussian;
mod plan;

pub use accumulator::{AccumulationPrecision, LogitAccumulator};
pub use folds::{add_fold_logits, average_fold_logits};
pub use gaussian::{
    gaussian_importance_map, gaussian_importance_map_with, gaussian_kernel_1d, DEFAULT_SIGMA_SCALE,
    DEFAULT_VALUE_SCALING_FACTOR, GAUSSIAN_TRUNCATE,
};
pub use plan::{compute_steps, SlidingWindowPlan};

/// What went wrong while planning or accumulating tiles.
#[derive(Debug, thiserror::Error)]
pub enum SlidingWindowError {
    /// `step_size` outside nnU-Net's allowed range (0, 1].
    #[error("tile step size must be in (0, 1], got {0}")]
    InvalidStepSize(f64),
    /// A zero-sized image or patch axis.
    #[error("image shape {image:?} and patch size {patch:?} must be non-zero on every axis")]
    EmptyShape {
        /// Image shape given.
        image: Vec<usize>,
        /// Patch size given.
        patch: Vec<usize>,
    },
    /// The image to pad does not have the plan's spatial shape.
    #[error("image has spatial shape {actual:?}, the plan was made for {expected:?}")]
    ImageShapeMismatch {
        /// Shape the plan expects.
        expected: [usize; 3],
        /// Shape received.
        actual: Vec<usize>,
    },
    /// A tile's logits do not have shape `[num_classes, patch...]`.
    #[error("tile logits have shape {actual:?}, expected {expected:?}")]
    TileShapeMismatch {
        /// Expected `[num_classes, p0, p1, p2]`.
        expected: [usize; 4],
        /// Shape received.
        actual: Vec<usize>,
    },
    /// A tile origin that places the patch outside the padded image.
    #[error("tile at {origin:?} with patch {patch:?} does not fit the padded shape {padded:?}")]
    TileOutOfBounds {
        /// Tile origin in padded coordinates.
        origin: [usize; 3],
        /// Patch size.
        patch: [usize; 3],
        /// Padded image shape.
        padded: [usize; 3],
    },
    /// The accumulator needs at least one class.
    #[error("the accumulator needs at least one class")]
    NoClasses,
    /// A gaussian map with another shape than the plan's patch.
    #[error("importance map has shape {actual:?}, the patch is {expected:?}")]
    ImportanceMapShapeMismatch {
        /// Patch size.
        expected: [usize; 3],
        /// Shape received.
        actual: Vec<usize>,
    },
    /// Fold logits with another shape than the running sum.
    #[error("fold logits have shape {actual:?}, the running sum has {expected:?}")]
    FoldShapeMismatch {
        /// Shape of the running sum.
        expected: Vec<usize>,
        /// Shape received.
        actual: Vec<usize>,
    },
    /// Internal: an accumulation buffer did not have the expected length.
    #[error("accumulation buffer has an unexpected shape: {0}")]
    BufferShape(String),
    /// nnU-Net's own check after the division: the fp16 sums overflowed.
    #[error("{count} accumulated logits are infinite after dividing by the tile weights (fp16 overflow; use AccumulationPrecision::Fp32)")]
    InfiniteLogits {
        /// Number of infinite values.
        count: usize,
    },
}
