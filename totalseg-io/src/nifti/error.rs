//! The NIfTI error type: every failure names the file (when there is one) and what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// A NIfTI read or write failure.
///
/// `path` is the file being read or written (`None` for in-memory operations such as
/// [`Volume::new`](super::Volume::new)); `kind` says what is wrong.
#[derive(Debug, thiserror::Error)]
pub struct NiftiError {
    /// The file the failure concerns.
    pub path: Option<PathBuf>,
    /// What is wrong.
    #[source]
    pub kind: NiftiErrorKind,
}

impl fmt::Display for NiftiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}: {}", path.display(), self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl NiftiError {
    /// An error about the file at `path`.
    pub fn at(path: &Path, kind: NiftiErrorKind) -> Self {
        NiftiError {
            path: Some(path.to_path_buf()),
            kind,
        }
    }

    /// An error that concerns no file.
    pub fn without_path(kind: NiftiErrorKind) -> Self {
        NiftiError { path: None, kind }
    }
}

/// What went wrong while reading, validating or writing a NIfTI file.
#[derive(Debug, thiserror::Error)]
pub enum NiftiErrorKind {
    /// The file could not be opened, read, created or written.
    #[error("{action} failed: {source}")]
    Io {
        /// What was being done ("reading", "creating a temporary file in /out", ...).
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The gzip stream is corrupt or ends early.
    #[error("corrupt or truncated gzip stream: {0}")]
    Gzip(#[source] std::io::Error),
    /// Fewer bytes than a NIfTI-1 header.
    #[error("not a NIfTI file: only {len} bytes, a NIfTI-1 header needs 348")]
    TooShortForHeader {
        /// Bytes available (after decompression).
        len: usize,
    },
    /// The magic string is neither `n+1` nor anything else we recognise.
    #[error("not a NIfTI-1 file: bad magic {magic:?} (expected \"n+1\")")]
    BadMagic {
        /// The four magic bytes as found.
        magic: [u8; 4],
    },
    /// A NIfTI-2 file (540-byte header).
    #[error("NIfTI-2 files are not supported (only NIfTI-1 single files, .nii/.nii.gz)")]
    Nifti2Unsupported,
    /// Magic `ni1`: a header/image pair (`.hdr` + `.img`).
    #[error("magic \"ni1\" marks a .hdr/.img pair; only single-file NIfTI-1 (.nii/.nii.gz) is supported")]
    PairUnsupported,
    /// `datatype` is not one of the supported numeric codes.
    #[error("unsupported datatype code {code} ({name}); supported: uint8, int8, int16, uint16, int32, uint32, int64, uint64, float32, float64")]
    UnsupportedDatatype {
        /// The header's `datatype`.
        code: i16,
        /// Its NIfTI name where known.
        name: &'static str,
    },
    /// Image dimensionality we cannot segment (1D, 2D, 5D and up).
    #[error("{ndim}D image (dim = {dim:?}): only 3D images (and 4D, of which the first volume is used) are supported")]
    UnsupportedDimensionality {
        /// `dim[0]`.
        ndim: i16,
        /// The whole `dim` field.
        dim: [i16; 8],
    },
    /// `dim[0]` outside 1..=7 or a used dimension below 1.
    #[error("invalid dim field {dim:?}: {reason}")]
    InvalidDim {
        /// The whole `dim` field.
        dim: [i16; 8],
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `vox_offset` is not a usable data offset.
    #[error("invalid vox_offset {0}: must be a finite number >= 352 for a single-file NIfTI-1")]
    InvalidVoxOffset(f32),
    /// The file ends before the voxel data does.
    #[error("truncated data: the header promises {expected} bytes of voxels from offset {offset}, but only {available} are there")]
    TruncatedData {
        /// Where the data starts.
        offset: u64,
        /// Bytes of voxel data the header promises.
        expected: u64,
        /// Bytes present after `offset`.
        available: u64,
    },
    /// The voxel count times the element size does not fit in memory sizes.
    #[error("image too large: dim {dim:?} with {bytes_per_voxel} bytes per voxel overflows")]
    TooLarge {
        /// The whole `dim` field.
        dim: [i16; 8],
        /// Element size.
        bytes_per_voxel: usize,
    },
    /// A voxel spacing (`pixdim[1..=3]`) is zero, NaN or infinite.
    #[error("invalid voxel spacing pixdim[1..=3] = {0:?}: spacings must be finite and non-zero")]
    InvalidSpacing([f32; 3]),
    /// `scl_slope` is valid but `scl_inter` is not finite (nibabel refuses these too).
    #[error("valid scl_slope {slope} but non-finite scl_inter {inter}")]
    InvalidScaling {
        /// `scl_slope`.
        slope: f32,
        /// `scl_inter`.
        inter: f32,
    },
    /// The voxel-to-world affine is not usable.
    #[error("invalid affine ({source_field}): {reason}; affine = {affine:?}")]
    InvalidAffine {
        /// Which transform it came from: "sform", "qform", "pixdim" or "given".
        source_field: &'static str,
        /// What is wrong with it.
        reason: String,
        /// The affine, row-major (boxed to keep the error small).
        affine: Box<[[f64; 4]; 4]>,
    },
    /// The qform quaternion parameters do not form a unit quaternion.
    #[error("invalid qform quaternion (b, c, d) = ({b}, {c}, {d}): b^2+c^2+d^2 exceeds 1")]
    InvalidQuaternion {
        /// `quatern_b`.
        b: f32,
        /// `quatern_c`.
        c: f32,
        /// `quatern_d`.
        d: f32,
    },
    /// Data to write does not match the reference header's grid.
    #[error("array shape {data:?} does not match the header's dim[1..=3] {header:?}")]
    ShapeMismatch {
        /// Shape of the array passed in.
        data: [usize; 3],
        /// Shape in the header.
        header: [usize; 3],
    },
    /// A shape that NIfTI-1 (16-bit dims) cannot store.
    #[error("shape {0:?} cannot be stored in NIfTI-1 (every dimension must be 1..=32767)")]
    ShapeNotRepresentable([usize; 3]),
    /// The label-map extension is there but unreadable.
    #[error("bad label-map extension: {0}")]
    BadLabelExtension(String),
    /// A label map whose voxels are not integers in 0..=255.
    #[error("not a uint8 label map: voxel value {value} at [{i}, {j}, {k}]")]
    NotALabelMap {
        /// The offending value.
        value: f32,
        /// First index.
        i: usize,
        /// Second index.
        j: usize,
        /// Third index.
        k: usize,
    },
}
