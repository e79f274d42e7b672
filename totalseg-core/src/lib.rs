//! Plain-Rust building blocks of the TotalSegmentator pipeline: image geometry,
//! resampling, cropping, normalisation, the sliding-window plan, the export of logits to
//! labels, postprocessing, statistics and the task/class registry. No Burn here.

pub mod contours;
pub mod crop;
pub mod export;
pub mod geometry;
pub mod morphology;
pub mod nonzero_crop;
pub mod normalize;
pub mod pairwise_sum;
pub mod postprocess;
pub mod preview;
pub mod radiomics;
pub mod resample;
pub mod sliding_window;
pub mod statistics;
pub mod tasks;
pub mod xgboost;
