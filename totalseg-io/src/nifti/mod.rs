//! NIfTI-1 input and output with nibabel's semantics, and TotalSegmentator's label-map
//! extension.
//!
//! - [`read_nifti`]: `.nii`/`.nii.gz` -> [`Volume`] (`f32` voxels indexed `[i, j, k]` like
//!   nibabel's `get_fdata()`, nibabel's `affine`, spacing, header kept for writing).
//! - [`write_label_map`], [`write_binary_mask`], [`write_class_mask`]: uint8 outputs with
//!   the input header copied, byte-identical (after decompression) to TotalSegmentator's.
//! - [`write_volume`] / [`write_volume_f32`]: any volume, for tests and debugging.
//! - [`LabelNames`] and the Caret XML of the label-map extension.
//!
//! Nothing here panics on a malformed file: every failure is a [`NiftiError`] naming the
//! file and what is wrong.

mod affine;
mod datatype;
mod error;
mod header;
mod label_ext;
mod layout;
mod read;
mod volume;
mod write;

pub use affine::{affines_allclose, column_norms, validate_affine, Affine};
pub use datatype::NiftiDataType;
pub use error::{NiftiError, NiftiErrorKind};
pub use header::{
    parse_extensions, Endianness, NiftiExtension, NiftiHeader, MAGIC_SINGLE, NIFTI1_HEADER_SIZE,
    NIFTI1_MIN_VOX_OFFSET,
};
pub use label_ext::{
    label_extension, label_names_from_extensions, label_names_to_caret_xml, parse_caret_label_xml,
    LabelNames, LABEL_EXTENSION_CODE,
};
pub use read::{read_label_map, read_nifti, read_nifti_from_bytes, read_nifti_header, LabelMap};
pub use volume::{Volume, XFORM_ALIGNED, XFORM_UNKNOWN};
pub use write::{
    write_binary_mask, write_class_mask, write_label_map, write_volume, write_volume_f32,
};
