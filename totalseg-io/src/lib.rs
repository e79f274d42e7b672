//! File formats and storage: NIfTI reading/writing (with TotalSegmentator's label-map
//! extension), DICOM series input, and the weights store (cache, download, conversion on
//! first use).

mod atomic;
pub mod dicom;
pub mod image;
pub mod nifti;
pub mod png;
pub mod probabilities;
pub mod ubjson;
pub mod weights;

pub use image::{read_image, ImageReadError, InputKind};
