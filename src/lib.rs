//! TotalSegmentator — CT anatomy segmentation with nnU-Net 3D U-Nets — as a pure-Rust
//! inference engine.
//!
//! The pipeline is the official tool's, step for step: read, crop pre-pass, closest-canonical
//! reorientation, resampling to the model spacing, nnU-Net's sliding window (fp16 sums), merge
//! of multi-part models, postprocessing, back to the input geometry, write.

pub mod builder;
pub mod classifiers;
pub mod cli;
pub mod combine;
pub mod crop_to_body;
pub mod error;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod predictor;
pub mod preview;
pub mod radiomics;
pub mod segmenter;
pub mod timing;

pub use builder::{Device, SegmenterBuilder};
pub use error::SegmentError;
pub use segmenter::{DeviceKind, RunOptions, Segmentation, Segmenter};
pub use totalseg_core::tasks::{TaskRegistry, Variant};
pub use totalseg_io::nifti::{read_nifti, Volume};
