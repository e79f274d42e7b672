//! NIfTI-1 voxel datatypes supported for reading and writing.

use super::error::NiftiErrorKind;

/// A voxel datatype this crate reads and writes (the NIfTI-1 `datatype` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NiftiDataType {
    /// `NIFTI_TYPE_UINT8` (2).
    U8,
    /// `NIFTI_TYPE_INT8` (256).
    I8,
    /// `NIFTI_TYPE_INT16` (4).
    I16,
    /// `NIFTI_TYPE_UINT16` (512).
    U16,
    /// `NIFTI_TYPE_INT32` (8).
    I32,
    /// `NIFTI_TYPE_UINT32` (768).
    U32,
    /// `NIFTI_TYPE_INT64` (1024).
    I64,
    /// `NIFTI_TYPE_UINT64` (1280).
    U64,
    /// `NIFTI_TYPE_FLOAT32` (16).
    F32,
    /// `NIFTI_TYPE_FLOAT64` (64).
    F64,
}

impl NiftiDataType {
    /// The header's `datatype` code.
    pub fn code(self) -> i16 {
        match self {
            NiftiDataType::U8 => 2,
            NiftiDataType::I8 => 256,
            NiftiDataType::I16 => 4,
            NiftiDataType::U16 => 512,
            NiftiDataType::I32 => 8,
            NiftiDataType::U32 => 768,
            NiftiDataType::I64 => 1024,
            NiftiDataType::U64 => 1280,
            NiftiDataType::F32 => 16,
            NiftiDataType::F64 => 64,
        }
    }

    /// Bytes per voxel.
    pub fn size_of(self) -> usize {
        match self {
            NiftiDataType::U8 | NiftiDataType::I8 => 1,
            NiftiDataType::I16 | NiftiDataType::U16 => 2,
            NiftiDataType::I32 | NiftiDataType::U32 | NiftiDataType::F32 => 4,
            NiftiDataType::I64 | NiftiDataType::U64 | NiftiDataType::F64 => 8,
        }
    }

    /// The datatype for a header `datatype` code.
    pub fn from_code(code: i16) -> Result<Self, NiftiErrorKind> {
        Ok(match code {
            2 => NiftiDataType::U8,
            256 => NiftiDataType::I8,
            4 => NiftiDataType::I16,
            512 => NiftiDataType::U16,
            8 => NiftiDataType::I32,
            768 => NiftiDataType::U32,
            1024 => NiftiDataType::I64,
            1280 => NiftiDataType::U64,
            16 => NiftiDataType::F32,
            64 => NiftiDataType::F64,
            _ => {
                return Err(NiftiErrorKind::UnsupportedDatatype {
                    code,
                    name: unsupported_name(code),
                })
            }
        })
    }
}

/// NIfTI names of the codes we do not read, for error messages.
fn unsupported_name(code: i16) -> &'static str {
    match code {
        0 => "unknown",
        1 => "binary",
        32 => "complex64",
        128 => "rgb24",
        1536 => "float128",
        1792 => "complex128",
        2048 => "complex256",
        2304 => "rgba32",
        _ => "not a NIfTI-1 code",
    }
}

/// Bytes per element of a known code (any NIfTI-1 type), as nibabel uses to fix `bitpix`.
pub(crate) fn known_code_size(code: i16) -> Option<usize> {
    match code {
        2 | 256 => Some(1),
        4 | 512 => Some(2),
        8 | 768 | 16 | 128 => Some(if code == 128 { 3 } else { 4 }),
        32 | 64 | 1024 | 1280 | 2304 => Some(8),
        1536 | 1792 => Some(16),
        2048 => Some(32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for dt in [
            NiftiDataType::U8,
            NiftiDataType::I8,
            NiftiDataType::I16,
            NiftiDataType::U16,
            NiftiDataType::I32,
            NiftiDataType::U32,
            NiftiDataType::I64,
            NiftiDataType::U64,
            NiftiDataType::F32,
            NiftiDataType::F64,
        ] {
            assert_eq!(NiftiDataType::from_code(dt.code()).ok(), Some(dt));
            assert_eq!(known_code_size(dt.code()), Some(dt.size_of()));
        }
        assert!(NiftiDataType::from_code(32).is_err());
        assert_eq!(known_code_size(128), Some(3));
    }
}
