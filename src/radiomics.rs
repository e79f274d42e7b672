//! `--radiomics`: `statistics_radiomics.json` for the per-class masks of an output folder,
//! as TotalSegmentator's `get_radiomics_features_for_entire_dir` writes it.

use std::path::{Path, PathBuf};

use ndarray::ArrayView3;
use rayon::prelude::*;
use totalseg_core::radiomics::{structure_radiomics, PixelType, RadiomicsImage, RadiomicsReport};
use totalseg_io::nifti::{read_nifti, NiftiDataType, NiftiHeader, Volume};

use crate::error::SegmentError;

/// The type SimpleITK reads a NIfTI image as: its stored type, or float32 (float64 for
/// float64 data) when `scl_slope`/`scl_inter` rescale it.
pub fn pixel_type_of(header: &NiftiHeader) -> PixelType {
    // A zero or non-finite slope means no scaling; a non-finite intercept counts as 0.
    let inter = if header.scl_inter.is_finite() {
        header.scl_inter
    } else {
        0.0
    };
    let scaled = header.scl_slope != 0.0
        && header.scl_slope.is_finite()
        && (header.scl_slope != 1.0 || inter != 0.0);
    let integer = |min: f64, max: f64| PixelType::Integer { min, max };
    match NiftiDataType::from_code(header.datatype) {
        Ok(NiftiDataType::F64) => PixelType::Float64,
        _ if scaled => PixelType::Float32,
        Ok(NiftiDataType::U8) => integer(0.0, 255.0),
        Ok(NiftiDataType::I8) => integer(-128.0, 127.0),
        Ok(NiftiDataType::I16) => PixelType::INT16,
        Ok(NiftiDataType::U16) => integer(0.0, 65535.0),
        Ok(NiftiDataType::I32) => integer(i32::MIN as f64, i32::MAX as f64),
        Ok(NiftiDataType::U32) => integer(0.0, u32::MAX as f64),
        Ok(NiftiDataType::I64) => integer(i64::MIN as f64, i64::MAX as f64),
        Ok(NiftiDataType::U64) => integer(0.0, u64::MAX as f64),
        Ok(NiftiDataType::F32) => PixelType::Float32,
        Err(_) => PixelType::Float64,
    }
}

/// The CT prepared for radiomics, with the pixel type SimpleITK would read it as.
fn radiomics_image(ct: &Volume) -> RadiomicsImage {
    RadiomicsImage::new(
        ct.data.view(),
        &ct.affine,
        ct.spacing,
        pixel_type_of(&ct.header),
    )
}

/// The radiomics report of the classes of a label map on `ct` (same grid), as the per-class
/// files of that label map would give it: entries sorted by class name (the file order).
pub fn radiomics_for_labels(
    ct: &Volume,
    labels: ArrayView3<u8>,
    classes: &[(u8, String)],
) -> Result<RadiomicsReport, SegmentError> {
    if labels.dim() != ct.data.dim() {
        return Err(SegmentError::Model(format!(
            "radiomics: label map shape {:?} differs from the image's {:?}",
            labels.dim(),
            ct.data.dim()
        )));
    }
    let image = radiomics_image(ct);
    let mut sorted: Vec<&(u8, String)> = classes.iter().collect();
    // Path order of "<name>.nii.gz": compare the file names, as Python sorts the glob.
    sorted.sort_by_key(|(_, name)| format!("{name}.nii.gz"));
    let entries = sorted
        .par_iter()
        .map(|(label, name)| {
            let mask = labels.mapv(|v| v == *label);
            (
                name.clone(),
                structure_radiomics(&image, mask.view()).features,
            )
        })
        .collect();
    Ok(RadiomicsReport { entries })
}

/// The `*.nii.gz` files of `dir`, sorted by name as Python sorts `Path.glob` results.
fn mask_files(dir: &Path) -> Result<Vec<PathBuf>, SegmentError> {
    let entries = std::fs::read_dir(dir).map_err(|source| SegmentError::Output {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".nii.gz"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Radiomics features of every `*.nii.gz` mask in `mask_dir` on the CT `ct_path`, in file
/// name order (the reference's `get_radiomics_features_for_entire_dir`), and the
/// reference's warnings for the masks whose features are all 0. Write the report with
/// [`RadiomicsReport::write_json`] or the CLI's atomic writer.
///
/// ```no_run
/// use std::path::Path;
/// let (report, warnings) = totalsegmentator::radiomics::radiomics_for_dir(
///     Path::new("ct.nii.gz"),
///     Path::new("segmentations"),
/// )?;
/// println!("{} structures, {} without features", report.entries.len(), warnings.len());
/// std::fs::write("segmentations/statistics_radiomics.json", report.to_json_string())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn radiomics_for_dir(
    ct_path: &Path,
    mask_dir: &Path,
) -> Result<(RadiomicsReport, Vec<String>), SegmentError> {
    let image = radiomics_image(&read_nifti(ct_path)?);
    let files = mask_files(mask_dir)?;
    type Entry = (String, Vec<(String, f64)>, Option<String>);
    let results: Vec<Result<Entry, SegmentError>> = files
        .par_iter()
        .map(|file| {
            // pyradiomics uses label 1; a mask of one value (0, 1 or other) comes out all set
            // or all clear, which structure_radiomics answers with the reference's zeros.
            let labelled = read_nifti(file)?.data.mapv(|v| v == 1.0);
            let entry = structure_radiomics(&image, labelled.view());
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split('.').next())
                .unwrap_or_default()
                .to_string();
            Ok((name, entry.features, entry.warning))
        })
        .collect();
    let mut report = RadiomicsReport::default();
    let mut warnings = Vec::new();
    for result in results {
        let (name, features, warning) = result?;
        if let Some(warning) = warning {
            warnings.push(format!("{name}: {warning}"));
        }
        report.entries.push((name, features));
    }
    Ok((report, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As SimpleITK 2.5 reads them (checked with `sitk.ReadImage(...).GetPixelIDTypeAsString()`):
    /// int16 stays int16, rescaled int16 becomes float32, rescaled float64 stays float64.
    #[test]
    fn pixel_type_follows_simpleitk() {
        let mut header = NiftiHeader::empty();
        header.datatype = NiftiDataType::I16.code();
        header.scl_slope = 1.0;
        assert_eq!(pixel_type_of(&header), PixelType::INT16);
        header.scl_slope = f32::NAN;
        assert_eq!(pixel_type_of(&header), PixelType::INT16);
        header.scl_slope = 2.0;
        header.scl_inter = 1.0;
        assert_eq!(pixel_type_of(&header), PixelType::Float32);
        header.datatype = NiftiDataType::F64.code();
        assert_eq!(pixel_type_of(&header), PixelType::Float64);
        header.datatype = NiftiDataType::U8.code();
        header.scl_slope = 0.0;
        assert_eq!(
            pixel_type_of(&header),
            PixelType::Integer {
                min: 0.0,
                max: 255.0
            }
        );
    }
}
