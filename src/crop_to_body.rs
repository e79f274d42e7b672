//! `totalseg crop-to-body`: TotalSegmentator's `crop_to_body` command. The body model
//! (`body`, 6 mm) segments the CT; the CT is cropped to the body (or the trunc only) plus 3 mm
//! and stored as int32 with a fresh header, as `crop_to_mask(..., dtype=np.int32)` does.

use std::path::Path;

use totalseg_core::crop::crop_to_mask;
use totalseg_io::nifti::{write_volume, NiftiDataType, Volume};

use crate::error::SegmentError;
use crate::segmenter::Segmenter;

/// `crop_addon` of `crop_to_body.py`, in mm.
const BODY_CROP_ADDON_MM: [f64; 3] = [3.0, 3.0, 3.0];
/// Label of `body_trunc` in the body task's class map.
const BODY_TRUNC_LABEL: u8 = 1;

/// `volume` cropped to the body that `segmenter` (the `body` task, `--fast`: the model
/// `crop_to_body` runs) finds in it, or to the trunc only; values truncated to int32 as the
/// official tool stores them. Write it with [`write_cropped`].
///
/// ```no_run
/// use std::path::Path;
/// use totalsegmentator::{crop_to_body, read_nifti, SegmenterBuilder};
/// let segmenter = SegmenterBuilder::new("body").fast(true).build()?;
/// let ct = read_nifti(Path::new("ct.nii.gz"))?;
/// let cropped = crop_to_body::crop_to_body(&segmenter, &ct, false)?;
/// crop_to_body::write_cropped(Path::new("ct_body.nii.gz"), &cropped)?;
/// # Ok::<(), totalsegmentator::SegmentError>(())
/// ```
pub fn crop_to_body(
    segmenter: &Segmenter,
    volume: &Volume,
    only_trunc: bool,
) -> Result<Volume, SegmentError> {
    if segmenter.task().name != "body" {
        return Err(SegmentError::Model(format!(
            "crop_to_body needs the body task's segmenter, not {}",
            segmenter.task().name
        )));
    }
    let labels = segmenter.segment(volume)?.labels;
    let mask = labels.mapv(|v| {
        if only_trunc {
            v == BODY_TRUNC_LABEL
        } else {
            v > 0
        }
    });
    if !mask.iter().any(|&m| m) {
        return Err(SegmentError::Model(format!(
            "crop_to_body: no {} found in {}: nothing to crop to",
            if only_trunc { "trunc" } else { "body" },
            source_name(volume)
        )));
    }
    let (cropped, affine, _) = crop_to_mask(
        volume.data.view(),
        &volume.affine,
        volume.spacing,
        mask.view(),
        BODY_CROP_ADDON_MM,
    )?;
    // `data_cropped.astype(np.int32)`: truncation toward zero. The fresh header of
    // `Nifti1Image(data, affine)`; `write_cropped` stores it as int32.
    Ok(Volume::new(cropped.mapv(|v| v as i32 as f32), affine)?)
}

/// Writes the result of [`crop_to_body`] as an int32 NIfTI (through a temporary file).
pub fn write_cropped(path: &Path, cropped: &Volume) -> Result<(), SegmentError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| SegmentError::Output {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    Ok(write_volume(path, cropped, NiftiDataType::I32)?)
}

fn source_name(volume: &Volume) -> String {
    volume
        .source
        .as_ref()
        .map_or_else(|| "the input".to_string(), |p| p.display().to_string())
}
