//! The DICOM error type: every failure names the series folder and, where one file is at
//! fault, that file.

use std::fmt;
use std::path::{Path, PathBuf};

/// A failure to read a DICOM series into a volume.
#[derive(Debug, thiserror::Error)]
pub struct DicomError {
    /// The series folder that was being read.
    pub folder: PathBuf,
    /// What is wrong (boxed: some kinds name several files).
    #[source]
    pub kind: Box<DicomErrorKind>,
}

impl fmt::Display for DicomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DICOM series {}: {}", self.folder.display(), self.kind)
    }
}

impl DicomError {
    /// An error about the series in `folder`.
    pub fn at(folder: &Path, kind: DicomErrorKind) -> Self {
        DicomError {
            folder: folder.to_path_buf(),
            kind: Box::new(kind),
        }
    }
}

/// What is wrong with a DICOM series folder or one of its files.
#[derive(Debug, thiserror::Error)]
pub enum DicomErrorKind {
    /// The folder (or a file in it) could not be listed or read.
    #[error("{action} failed: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The input path is not a folder.
    #[error("not a folder of DICOM slices (give a .nii/.nii.gz file or a folder of DICOM files)")]
    NotAFolder,
    /// No file in the folder has the DICOM marker (`DICM` after the 128-byte preamble).
    #[error("no DICOM files found ({files} files looked at, none starts with the DICM marker)")]
    NoDicomFiles {
        /// Files looked at.
        files: usize,
    },
    /// DICOM files, but none is an image slice with a position and orientation.
    #[error("{files} DICOM files but no image slices (every file lacks SeriesInstanceUID, InstanceNumber, ImageOrientationPatient or ImagePositionPatient)")]
    NoImageSlices {
        /// DICOM files found.
        files: usize,
    },
    /// A file has the DICOM marker but cannot be parsed.
    #[error("{}: not a readable DICOM file: {message}", file.display())]
    Unreadable {
        /// The file.
        file: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The folder holds slices of more than one series.
    #[error("the folder mixes {} series ({}); put one series per folder", series.len(), describe_series(series))]
    MixedSeries {
        /// `(SeriesInstanceUID, number of slices, first file)` per series.
        series: Vec<(String, usize, PathBuf)>,
    },
    /// Fewer slices than a volume needs (dicom2nifti requires more than 3).
    #[error("only {found} image slices: at least 4 are needed to build a 3D volume")]
    TooFewSlices {
        /// Slices found.
        found: usize,
    },
    /// A required attribute is missing or has the wrong form.
    #[error("{}: attribute {attribute} is missing or invalid{}", file.display(), detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    BadAttribute {
        /// The file.
        file: PathBuf,
        /// The attribute's keyword.
        attribute: &'static str,
        /// Why, if known.
        detail: Option<String>,
    },
    /// A slice's orientation differs from the first slice's.
    #[error("{}: image orientation {found:?} differs from the first slice's {first:?}", file.display())]
    InconsistentOrientation {
        /// The file.
        file: PathBuf,
        /// Its ImageOrientationPatient.
        found: [f64; 6],
        /// The first slice's.
        first: [f64; 6],
    },
    /// The slices do not stack along the slice normal (gantry tilt or a skewed stack).
    #[error("the slices do not stack along their normal (gantry tilt or skewed series): normal {normal:?}, stacking direction {stacking:?}")]
    NotOrthogonal {
        /// Unit normal of the first slice.
        normal: [f64; 3],
        /// Unit direction from the first to the last slice.
        stacking: [f64; 3],
    },
    /// Two slices have the same position but different pixels.
    #[error("{} and {} are at the same position {position:?} with different pixels (two acquisitions or a 4D series?)", first.display(), second.display())]
    DuplicatePosition {
        /// One file.
        first: PathBuf,
        /// The other.
        second: PathBuf,
        /// Their ImagePositionPatient.
        position: [f64; 3],
    },
    /// All slices are at one position.
    #[error("all slices are at the same position: not a volume")]
    NotAVolume,
    /// The distance between neighbouring slices is not constant.
    #[error("inconsistent slice spacing: {:.4} mm between {} and {}, but {:.4} mm between the first two slices{}", found_mm, before.display(), after.display(), expected_mm, if *missing_slices > 0 { format!(" ({missing_slices} slice(s) seem to be missing)") } else { String::new() })]
    InconsistentSliceSpacing {
        /// The slice before the gap.
        before: PathBuf,
        /// The slice after it.
        after: PathBuf,
        /// The first slice increment, mm.
        expected_mm: f64,
        /// This increment, mm.
        found_mm: f64,
        /// Whole slices that would fit in the gap (0 if the gap is not a multiple).
        missing_slices: usize,
    },
    /// Slices of different sizes or pixel formats.
    #[error("{}: {what} differs from the first slice's", file.display())]
    InconsistentSlices {
        /// The file.
        file: PathBuf,
        /// What differs.
        what: String,
    },
    /// A form of DICOM this reader does not convert.
    #[error("{}: {what} is not supported", file.display())]
    Unsupported {
        /// The file.
        file: PathBuf,
        /// What is not supported.
        what: String,
    },
    /// The pixel data could not be decoded.
    #[error("{}: pixel data cannot be decoded: {message}", file.display())]
    PixelData {
        /// The file.
        file: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// The resulting image cannot be represented (e.g. a dimension over 32767).
    #[error("the series does not make a valid image: {0}")]
    Image(String),
}

fn describe_series(series: &[(String, usize, PathBuf)]) -> String {
    series
        .iter()
        .map(|(uid, n, file)| format!("{uid}: {n} slices, e.g. {}", file.display()))
        .collect::<Vec<_>>()
        .join("; ")
}
