//! One entry point for an input image, NIfTI file or DICOM folder (or zip), chosen as
//! TotalSegmentator chooses: a path ending in `.nii` or `.nii.gz` is NIfTI, anything else
//! DICOM slices, in a zip file or a folder.

use std::path::Path;

use crate::dicom::{read_dicom_series, DicomError};
use crate::nifti::{read_nifti, NiftiError, Volume};

/// How an input path is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A `.nii` / `.nii.gz` file.
    Nifti,
    /// A folder of DICOM slices.
    DicomFolder,
    /// A zip file of DICOM slices (extracted to a temporary folder, then read as a folder).
    DicomZip,
}

impl InputKind {
    /// TotalSegmentator's rule (`nnunet.py`): the name ends in `.nii` or `.nii.gz` -> NIfTI,
    /// otherwise DICOM: a zip file of slices when the path is one (by content, as
    /// `dcm_to_nifti` checks), else a folder.
    pub fn of(path: &Path) -> InputKind {
        let name = path.to_string_lossy();
        if name.ends_with(".nii") || name.ends_with(".nii.gz") {
            InputKind::Nifti
        } else if crate::dicom::is_zip_file(path) {
            InputKind::DicomZip
        } else {
            InputKind::DicomFolder
        }
    }

    /// DICOM input, folder or zip.
    pub fn is_dicom(self) -> bool {
        matches!(self, InputKind::DicomFolder | InputKind::DicomZip)
    }
}

/// Reading an input image failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageReadError {
    /// The NIfTI file could not be read.
    #[error(transparent)]
    Nifti(#[from] NiftiError),
    /// The DICOM folder could not be read.
    #[error(transparent)]
    Dicom(#[from] DicomError),
}

/// Reads a NIfTI file, or a folder or zip file of DICOM slices (see [`InputKind::of`]).
///
/// ```no_run
/// use std::path::Path;
/// let ct = totalseg_io::read_image(Path::new("ct.nii.gz")).unwrap();
/// let same_from_dicom = totalseg_io::read_image(Path::new("ct_dicom/")).unwrap();
/// assert_eq!(ct.shape().len(), same_from_dicom.shape().len());
/// ```
pub fn read_image(path: &Path) -> Result<Volume, ImageReadError> {
    Ok(match InputKind::of(path) {
        InputKind::Nifti => read_nifti(path)?,
        InputKind::DicomFolder => read_dicom_series(path)?,
        InputKind::DicomZip => crate::dicom::read_dicom_zip(path)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nifti_by_name_anything_else_dicom() {
        assert_eq!(InputKind::of(Path::new("a/ct.nii.gz")), InputKind::Nifti);
        assert_eq!(InputKind::of(Path::new("ct.nii")), InputKind::Nifti);
        assert_eq!(InputKind::of(Path::new("series/")), InputKind::DicomFolder);
        assert_eq!(InputKind::of(Path::new("ct.dcm")), InputKind::DicomFolder);
    }
}
