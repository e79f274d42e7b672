//! A zip file of DICOM slices as input: TotalSegmentator's `dcm_to_nifti` extracts it to a
//! temporary folder and converts that folder, so does this.

use std::io::Read;
use std::path::Path;

use super::error::{DicomError, DicomErrorKind};
use super::read::read_dicom_series;
use crate::nifti::Volume;

/// Whether `path` is a zip file (by content, as Python's `zipfile.is_zipfile` decides for
/// the files TotalSegmentator is given): a regular file starting with a zip signature.
pub fn is_zip_file(path: &Path) -> bool {
    if !path.is_file() {
        return false;
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && (magic == *b"PK\x03\x04" || magic == *b"PK\x05\x06")
}

/// Reads the DICOM series inside the zip file `zip_path` (see
/// [`read_dicom_series`]; folders in the zip are searched too). The slices are extracted
/// to a temporary folder that is removed afterwards; errors name the zip file.
///
/// ```no_run
/// use std::path::Path;
/// let ct = totalseg_io::dicom::read_dicom_zip(Path::new("ct_series.zip"))?;
/// println!("{:?}", ct.shape());
/// # Ok::<(), totalseg_io::dicom::DicomError>(())
/// ```
pub fn read_dicom_zip(zip_path: &Path) -> Result<Volume, DicomError> {
    let err = |kind| DicomError::at(zip_path, kind);
    let io = |action: &str, source| {
        err(DicomErrorKind::Io {
            action: action.to_string(),
            source,
        })
    };
    let file = std::fs::File::open(zip_path).map_err(|e| io("opening the zip file", e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| {
        io(
            "reading the zip file",
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    let dir = tempfile::Builder::new()
        .prefix("totalseg_dicom_zip_")
        .tempdir()
        .map_err(|e| io("creating a temporary folder", e))?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| {
            io(
                "reading the zip file",
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        // Names that would leave the folder (`../x`, absolute paths) are skipped.
        let Some(relative) = entry.enclosed_name() else {
            continue;
        };
        let target = dir.path().join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| io("extracting the zip file", e))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("extracting the zip file", e))?;
        }
        let mut out =
            std::fs::File::create(&target).map_err(|e| io("extracting the zip file", e))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| io("extracting the zip file", e))?;
    }
    let mut volume = read_dicom_series(dir.path()).map_err(|e| DicomError {
        folder: zip_path.to_path_buf(),
        kind: e.kind,
    })?;
    volume.source = Some(zip_path.to_path_buf());
    Ok(volume)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zips_are_recognised_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("series.bin");
        let mut writer = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
        writer
            .start_file("a.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut writer, b"not dicom").unwrap();
        writer.finish().unwrap();
        assert!(is_zip_file(&zip));
        let text = dir.path().join("x.zip");
        std::fs::write(&text, b"plain text").unwrap();
        assert!(!is_zip_file(&text));
        assert!(!is_zip_file(dir.path()));

        // A zip without DICOM files: the error names the zip, not the temporary folder.
        let e = read_dicom_zip(&zip).unwrap_err();
        assert_eq!(e.folder, zip);
        assert!(matches!(*e.kind, DicomErrorKind::NoDicomFiles { files: 1 }));
        // A truncated zip is an error too.
        let bytes = std::fs::read(&zip).unwrap();
        std::fs::write(&text, &bytes[..bytes.len() / 2]).unwrap();
        assert!(read_dicom_zip(&text).is_err());
    }
}
