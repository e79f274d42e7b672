//! A folder of DICOM slices -> [`Volume`], as TotalSegmentator 2.18 gets it from
//! `dicom2nifti.dicom_series_to_nifti(folder, out, reorient_nifti=True)` and `nib.load`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::parallel::prelude::*;
use ndarray::{Array3, Axis};

use super::error::{DicomError, DicomErrorKind};
use super::geometry::{
    drop_orientation_outliers, first_increment_break, first_orientation_mismatch,
    las_reorientation, series_affine, sort_order, stacking_mismatch,
};
use super::slice::{
    has_dicom_marker, read_slice_header, read_slice_values, HeaderOutcome, SliceHeader,
};
use crate::nifti::{Affine, NiftiDataType, NiftiHeader, Volume};

/// Big-endian transfer syntax (retired): its decoded samples are not little-endian.
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";

/// nibabel's `xyzt_units` for "mm, time unknown" (`set_xyzt_units(2)` in dicom2nifti).
const XYZT_UNITS_MM: u8 = 2;

/// Reads the DICOM series in `folder` (searched recursively, files without the DICM
/// marker ignored) into the volume TotalSegmentator would segment: the NIfTI that
/// dicom2nifti writes for it, as nibabel reads it back.
///
/// - slices are sorted along the patient axis their positions span most, checked for one
///   orientation, stacking along their normal (no gantry tilt) and a constant slice
///   increment (dicom2nifti's tolerances); localizers (ImageType LOCALIZER, CT PROJECTION
///   IMAGE, orientation groups under 4 slices) and exact duplicates are dropped;
/// - files that are not images of the series are skipped: those without position and
///   orientation (an RT-STRUCT, as dicom2nifti skips it) and DICOM SEG objects (such as an
///   earlier `-ot dicom_seg` output written into the folder, on which dicom2nifti fails);
/// - voxels are the modality values (RescaleSlope/RescaleIntercept applied in float64);
/// - the image is stored in LAS order with dicom2nifti's affine, rounded to float32 as the
///   NIfTI sform stores it; the header is the one nibabel writes for it.
///
/// Errors name the folder and, where one file is at fault, the file: no DICOM files,
/// several series, fewer than 4 slices, a missing or inconsistent slice, mixed
/// orientations or sizes, unsupported encodings.
///
/// ```no_run
/// use std::path::Path;
/// let ct = totalseg_io::dicom::read_dicom_series(Path::new("ct_series/")).unwrap();
/// println!("{:?} voxels, spacing {:?} mm", ct.shape(), ct.spacing);
/// ```
pub fn read_dicom_series(folder: &Path) -> Result<Volume, DicomError> {
    read_series(folder).map_err(|kind| DicomError::at(folder, kind))
}

/// The slices of the series in `folder` that [`read_dicom_series`] stacks into its volume,
/// in its order (sorted along the patient axis; localizers and duplicates dropped): for
/// outputs that refer back to the source images, such as a DICOM SEG.
pub fn series_slices(folder: &Path) -> Result<Vec<SliceHeader>, DicomError> {
    select_slices(folder)
        .map(|(slices, _)| slices)
        .map_err(|kind| DicomError::at(folder, kind))
}

fn read_series(folder: &Path) -> Result<Volume, DicomErrorKind> {
    let (slices, kept_values) = select_slices(folder)?;
    let first = &slices[0];
    let last = &slices[slices.len() - 1];
    let pixel_spacing = first
        .pixel_spacing
        .ok_or_else(|| DicomErrorKind::BadAttribute {
            file: first.file.clone(),
            attribute: "PixelSpacing",
            detail: None,
        })?;
    let affine = series_affine(
        &first.orientation,
        pixel_spacing,
        &first.position,
        &last.position,
        slices.len(),
        first.slice_thickness,
    )
    .ok_or(DicomErrorKind::NotAVolume)?;
    volume_from_slices(folder, &slices, kept_values, &affine)
}

/// Pixel values already decoded while looking for duplicates, one entry per kept slice.
type CachedValues = Vec<Option<Vec<f64>>>;

/// dicom2nifti's slice selection: image slices of one series and orientation, sorted,
/// duplicates dropped, stacked along their normal at a constant increment.
fn select_slices(folder: &Path) -> Result<(Vec<SliceHeader>, CachedValues), DicomErrorKind> {
    if !folder.is_dir() {
        return Err(DicomErrorKind::NotAFolder);
    }
    let files = list_files(folder)?;
    let mut dicom_files = 0;
    let mut slices: Vec<SliceHeader> = Vec::new();
    for file in &files {
        if !has_dicom_marker(file)? {
            continue;
        }
        dicom_files += 1;
        if let HeaderOutcome::Slice(header) = read_slice_header(file)? {
            slices.push(*header);
        }
    }
    if dicom_files == 0 {
        return Err(DicomErrorKind::NoDicomFiles { files: files.len() });
    }
    if slices.is_empty() {
        return Err(DicomErrorKind::NoImageSlices { files: dicom_files });
    }

    // dicom2nifti: localizers by ImageType, then by orientation group size.
    slices.retain(|s| {
        let has = |t: &str| s.image_type.iter().any(|v| v == t);
        !(has("LOCALIZER") || (s.modality.contains("CT") && has("PROJECTION IMAGE")))
    });
    if slices.len() <= 3 {
        return Err(DicomErrorKind::TooFewSlices {
            found: slices.len(),
        });
    }
    let orientations: Vec<[f64; 6]> = slices.iter().map(|s| s.orientation).collect();
    let kept = drop_orientation_outliers(&orientations);
    let mut slices = pick(slices, &kept);
    check_single_series(&slices)?;
    if slices.len() <= 3 {
        return Err(DicomErrorKind::TooFewSlices {
            found: slices.len(),
        });
    }
    let orientations: Vec<[f64; 6]> = slices.iter().map(|s| s.orientation).collect();
    if let Some(i) = first_orientation_mismatch(&orientations) {
        return Err(DicomErrorKind::InconsistentOrientation {
            file: slices[i].file.clone(),
            found: slices[i].orientation,
            first: slices[0].orientation,
        });
    }
    check_pixel_format(&slices)?;

    // Sort, then drop exact duplicates (same position and pixels).
    let positions: Vec<[f64; 3]> = slices.iter().map(|s| s.position).collect();
    let order = sort_order(&positions);
    slices = pick(slices, &order);
    let mut values: Vec<Option<Vec<f64>>> = vec![None; slices.len()];
    let mut keep = vec![true; slices.len()];
    let mut first_at: HashMap<[u64; 3], usize> = HashMap::new();
    for i in 0..slices.len() {
        // Exact equality as dicom2nifti's tuple comparison (-0.0 == 0.0).
        let key = slices[i].position.map(|v| (v + 0.0).to_bits());
        match first_at.get(&key) {
            None => {
                first_at.insert(key, i);
            }
            Some(&j) => {
                if values[j].is_none() {
                    values[j] = Some(read_slice_values(&slices[j])?);
                }
                let here = read_slice_values(&slices[i])?;
                if values[j].as_ref() == Some(&here) {
                    keep[i] = false;
                } else {
                    return Err(DicomErrorKind::DuplicatePosition {
                        first: slices[j].file.clone(),
                        second: slices[i].file.clone(),
                        position: slices[i].position,
                    });
                }
            }
        }
    }
    let mut kept_slices = Vec::new();
    let mut kept_values = Vec::new();
    for ((s, v), k) in slices.into_iter().zip(values).zip(keep) {
        if k {
            kept_slices.push(s);
            kept_values.push(v);
        }
    }
    let slices = kept_slices;
    if slices.len() <= 3 {
        return Err(DicomErrorKind::TooFewSlices {
            found: slices.len(),
        });
    }

    let first = &slices[0];
    let last = &slices[slices.len() - 1];
    if first.position == last.position {
        return Err(DicomErrorKind::NotAVolume);
    }
    if let Some((normal, stacking)) =
        stacking_mismatch(&first.orientation, &first.position, &last.position)
    {
        return Err(DicomErrorKind::NotOrthogonal { normal, stacking });
    }
    let sorted_positions: Vec<[f64; 3]> = slices.iter().map(|s| s.position).collect();
    if let Some(b) = first_increment_break(&sorted_positions) {
        let ratio = b.found_mm / b.expected_mm;
        let whole = ratio.round();
        let missing_slices = if whole >= 2.0 && (ratio - whole).abs() < 0.05 {
            whole as usize - 1
        } else {
            0
        };
        return Err(DicomErrorKind::InconsistentSliceSpacing {
            before: slices[b.before].file.clone(),
            after: slices[b.after].file.clone(),
            expected_mm: b.expected_mm,
            found_mm: b.found_mm,
            missing_slices,
        });
    }
    Ok((slices, kept_values))
}

/// The LAS volume of the selected slices, with dicom2nifti's `affine`.
fn volume_from_slices(
    folder: &Path,
    slices: &[SliceHeader],
    kept_values: CachedValues,
    affine: &Affine,
) -> Result<Volume, DicomErrorKind> {
    let first = &slices[0];
    // dicom2nifti's volume: (columns, rows, slices).
    let (rows, cols) = (first.rows as usize, first.columns as usize);
    // Slices decoded in parallel into (slice, row, column) planes; viewed as dicom2nifti's
    // (columns, rows, slices) volume below.
    let mut planes = Array3::<f32>::zeros((slices.len(), rows, cols));
    planes
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(slices.par_iter().zip(kept_values.into_par_iter()))
        .try_for_each(
            |(mut plane, (slice, cached))| -> Result<(), DicomErrorKind> {
                let values = match cached {
                    Some(v) => v,
                    None => read_slice_values(slice)?,
                };
                // nibabel's get_fdata() of the float64 file, narrowed like the NIfTI reader.
                for (dst, &v) in plane.iter_mut().zip(&values) {
                    *dst = v as f32;
                }
                Ok(())
            },
        )?;
    let data = planes.view().permuted_axes([2, 1, 0]);
    let shape = [cols, rows, slices.len()];
    let las = las_reorientation(affine, shape)
        .ok_or_else(|| DicomErrorKind::Image(format!("singular affine {affine:?}")))?;
    let mut view = data.view().permuted_axes(las.axes);
    for (a, &flip) in las.flip.iter().enumerate() {
        if flip {
            view.invert_axis(Axis(a));
        }
    }
    let data = view.as_standard_layout().into_owned();
    let affine = as_stored_in_sform(&las.affine);
    let (a, b, c) = data.dim();
    let mut header = NiftiHeader::for_new_image([a, b, c], &affine, nifti_datatype(slices))
        .map_err(|e| DicomErrorKind::Image(e.to_string()))?;
    header.xyzt_units = XYZT_UNITS_MM;
    let spacing = [
        f64::from(header.pixdim[1]),
        f64::from(header.pixdim[2]),
        f64::from(header.pixdim[3]),
    ];
    Ok(Volume {
        data,
        affine,
        spacing,
        header,
        source: Some(folder.to_path_buf()),
    })
}

/// `items[i]` for each index `i` of `indices` (a selection or reordering, each index at most
/// once), moved rather than cloned.
fn pick<T>(items: Vec<T>, indices: &[usize]) -> Vec<T> {
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    indices.iter().filter_map(|&i| slots[i].take()).collect()
}

/// Every file under `folder` (recursively), sorted by path.
fn list_files(folder: &Path) -> Result<Vec<PathBuf>, DicomErrorKind> {
    let mut out = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| DicomErrorKind::Io {
            action: format!("listing {}", dir.display()),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| DicomErrorKind::Io {
                action: format!("listing {}", dir.display()),
                source,
            })?;
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One SeriesInstanceUID only.
fn check_single_series(slices: &[SliceHeader]) -> Result<(), DicomErrorKind> {
    let mut series: Vec<(String, usize, PathBuf)> = Vec::new();
    for s in slices {
        match series.iter_mut().find(|(uid, _, _)| *uid == s.series_uid) {
            Some(entry) => entry.1 += 1,
            None => series.push((s.series_uid.clone(), 1, s.file.clone())),
        }
    }
    if series.len() > 1 {
        return Err(DicomErrorKind::MixedSeries { series });
    }
    Ok(())
}

/// Grey-scale, one sample, 8/16/32 bits, little-endian, no Modality LUT Sequence, and the
/// same size for every slice.
fn check_pixel_format(slices: &[SliceHeader]) -> Result<(), DicomErrorKind> {
    let first = &slices[0];
    for s in slices {
        let unsupported = |what: String| DicomErrorKind::Unsupported {
            file: s.file.clone(),
            what,
        };
        if s.samples_per_pixel != 1 || !s.photometric.starts_with("MONOCHROME") {
            return Err(unsupported(format!(
                "a colour image ({} samples per pixel, {})",
                s.samples_per_pixel, s.photometric
            )));
        }
        if ![8, 16, 32].contains(&s.bits_allocated) {
            return Err(unsupported(format!("BitsAllocated {}", s.bits_allocated)));
        }
        if s.transfer_syntax == EXPLICIT_VR_BIG_ENDIAN {
            return Err(unsupported("the big-endian transfer syntax".into()));
        }
        if s.modality_lut_sequence {
            return Err(unsupported("a Modality LUT Sequence".into()));
        }
        if (s.rows, s.columns) != (first.rows, first.columns) {
            return Err(DicomErrorKind::InconsistentSlices {
                file: s.file.clone(),
                what: format!(
                    "the image size {}x{} (first slice {}x{})",
                    s.rows, s.columns, first.rows, first.columns
                ),
            });
        }
        if s.rows == 0 || s.columns == 0 {
            return Err(DicomErrorKind::BadAttribute {
                file: s.file.clone(),
                attribute: "Rows/Columns",
                detail: Some("zero".into()),
            });
        }
    }
    Ok(())
}

/// The dtype dicom2nifti's array has: float64 once a rescale is applied, else the stored
/// integer type (numpy's promotion across slices).
fn nifti_datatype(slices: &[SliceHeader]) -> NiftiDataType {
    if slices.iter().any(|s| s.rescale.is_some()) {
        return NiftiDataType::F64;
    }
    let signed = slices.iter().any(|s| s.signed);
    let unsigned = slices.iter().any(|s| !s.signed);
    let bits = slices.iter().map(|s| s.bits_allocated).max().unwrap_or(16);
    match (signed, unsigned, bits) {
        (_, false, 8) => NiftiDataType::I8,
        (false, _, 8) => NiftiDataType::U8,
        (_, false, 16) => NiftiDataType::I16,
        (false, _, 16) => NiftiDataType::U16,
        (true, true, 8) => NiftiDataType::I16,
        (true, true, 16) => NiftiDataType::I32,
        (_, false, _) => NiftiDataType::I32,
        (false, _, _) => NiftiDataType::U32,
        _ => NiftiDataType::I64,
    }
}

/// The affine nibabel reads back from the file: the sform rows are float32.
fn as_stored_in_sform(affine: &Affine) -> Affine {
    let mut out = *affine;
    for row in out.iter_mut().take(3) {
        for v in row.iter_mut() {
            *v = f64::from(*v as f32);
        }
    }
    out[3] = [0.0, 0.0, 0.0, 1.0];
    out
}
