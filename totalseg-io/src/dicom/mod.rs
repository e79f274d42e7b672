//! DICOM input: a folder (or zip file) of CT slices read into the same [`Volume`](crate::nifti::Volume)
//! the NIfTI reader produces, with the geometry and values TotalSegmentator 2.18 gets from
//! its converter (`dicom2nifti.dicom_series_to_nifti(..., reorient_nifti=True)`).
//!
//! Pixel data is decoded by dicom-rs (`dicom-pixeldata`): native, RLE, JPEG baseline and
//! lossless, and JPEG 2000 (pure-Rust `openjp2`).
//!
//! DICOM output: [`seg::write_dicom_seg`] writes a label map as a DICOM SEG and
//! [`rtstruct::write_rtstruct`] as an RT Structure Set, both referring to the series the
//! label map was made from.

mod derived;
mod error;
pub mod geometry;
mod modality;
mod read;
pub mod rtstruct;
pub mod seg;
mod slice;
mod slice_grid;
mod zip_input;

pub use derived::{new_uid, DicomOutputError};
pub use error::{DicomError, DicomErrorKind};
pub use modality::{detect_modality, task_for_modality};
pub use read::{read_dicom_series, series_slices};
pub use slice::SliceHeader;
pub use zip_input::{is_zip_file, read_dicom_zip};
