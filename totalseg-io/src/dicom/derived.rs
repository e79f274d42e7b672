//! What the DICOM outputs (SEG, RT-STRUCT) share: the source slices of the series, each
//! slice's labels taken from the label map through the geometry, new UIDs and timestamps,
//! and the atomic file write.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use ndarray::{Array2, ArrayView3};
use rayon::prelude::*;

use super::error::DicomError;
use super::read::series_slices;
use super::slice_grid::{locate_slice, SliceGeometry};
use crate::nifti::Affine;

/// Why a DICOM output (SEG or RT-STRUCT) could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DicomOutputError {
    /// The source series could not be read again.
    #[error(transparent)]
    Series(#[from] DicomError),
    /// A source slice could not be read or lacks what the output needs.
    #[error("DICOM output: source slice {file}: {message}")]
    Source {
        /// The slice.
        file: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The label map is not on the series' grid.
    #[error("DICOM output: the segmentation does not match the DICOM series {series}: {message}")]
    GridMismatch {
        /// The series folder.
        series: PathBuf,
        /// What does not match.
        message: String,
    },
    /// No class is present, so there is no segment to write (TotalSegmentator fails the
    /// same way: "No non-empty segments found to save").
    #[error("DICOM output {path}: no non-empty segments to save (no class of the task was found)")]
    NoSegments {
        /// The output that was not written.
        path: PathBuf,
    },
    /// Writing the file failed.
    #[error("DICOM output {path}: writing failed: {message}")]
    Write {
        /// The output.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// One source slice: its file, attributes and geometry.
pub(crate) struct SourceSlice {
    pub file: PathBuf,
    pub header: InMemDicomObject,
    pub geometry: SliceGeometry,
}

/// The series' slices (as the volume was built from them) with their attributes.
pub(crate) fn read_sources(series: &Path) -> Result<Vec<SourceSlice>, DicomOutputError> {
    series_slices(series)?
        .into_iter()
        .map(|slice| {
            let pixel_spacing = slice
                .pixel_spacing
                .ok_or_else(|| DicomOutputError::Source {
                    file: slice.file.clone(),
                    message: "no PixelSpacing".into(),
                })?;
            Ok(SourceSlice {
                geometry: SliceGeometry {
                    position: slice.position,
                    orientation: slice.orientation,
                    pixel_spacing,
                    size: [slice.rows as usize, slice.columns as usize],
                },
                file: slice.file,
                header: slice.attributes,
            })
        })
        .collect()
}

/// Which label values occur in `planes`.
pub(crate) fn labels_present(planes: &[Array2<u8>]) -> [bool; 256] {
    let mut present = [false; 256];
    for plane in planes {
        for &v in plane {
            present[usize::from(v)] = true;
        }
    }
    present
}

/// A text value (strings, UIDs, decimal and integer strings).
pub(crate) fn text(value: &str) -> PrimitiveValue {
    PrimitiveValue::from(value)
}

/// A data element.
pub(crate) fn element(tag: Tag, vr: VR, value: PrimitiveValue) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, value)
}

/// A sequence of `items`.
pub(crate) fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::from(items))
}

/// Each source slice's labels as a `(rows, columns)` plane, read from `labels` (with
/// `affine`) through the slice's position, orientation and spacing.
pub(crate) fn label_planes(
    sources: &[SourceSlice],
    labels: ArrayView3<u8>,
    affine: &Affine,
    series: &Path,
) -> Result<Vec<Array2<u8>>, DicomOutputError> {
    let (a, b, c) = labels.dim();
    sources
        .par_iter()
        .map(|s| {
            let located = locate_slice(&s.geometry, affine, [a, b, c]).map_err(|message| {
                DicomOutputError::GridMismatch {
                    series: series.to_path_buf(),
                    message: format!("slice {}: {message}", s.file.display()),
                }
            })?;
            Ok(located.labels(labels, s.geometry.size))
        })
        .collect()
}

/// A new globally unique UID under the UUID arc `2.25`: 128 random bits (std's
/// OS-seeded hasher keys, the clock and a counter), below the arc's 39 digits.
pub fn new_uid() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let state = RandomState::new();
    let mut high = state.build_hasher();
    high.write_u128(nanos);
    high.write_u32(std::process::id());
    high.write_u64(count);
    let high = high.finish();
    let mut low = state.build_hasher();
    low.write_u64(high);
    low.write_u64(count.wrapping_add(0x9e37_79b9_7f4a_7c15));
    let value = (u128::from(high) << 64 | u128::from(low.finish())) >> 1;
    format!("2.25.{value}")
}

/// A string attribute of `source`, trimmed of DICOM padding; `None` when absent.
pub(crate) fn source_text(source: &InMemDicomObject, tag: Tag) -> Option<String> {
    let e = source.element_opt(tag).ok().flatten()?;
    let s = e.to_str().ok()?;
    Some(s.trim_end_matches(['\0', ' ']).to_string())
}

/// The current UTC date (`YYYYMMDD`) and time (`HHMMSS.ffffff`).
pub(crate) fn now_da_tm() -> (String, String) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        format!("{year:04}{month:02}{day:02}"),
        format!(
            "{:02}{:02}{:02}.{:06}",
            rest / 3600,
            rest / 60 % 60,
            rest % 60,
            since.subsec_micros()
        ),
    )
}

/// Writes `object` with the file meta of `meta` to `path` through a temporary file in the
/// same folder, so a failure leaves no partial file.
pub(crate) fn write_atomically(
    object: InMemDicomObject,
    meta: FileMetaTableBuilder,
    path: &Path,
) -> Result<(), DicomOutputError> {
    let failed = |message: String| DicomOutputError::Write {
        path: path.to_path_buf(),
        message,
    };
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&folder).map_err(|e| failed(format!("creating the folder: {e}")))?;
    let file = object
        .with_meta(meta.implementation_version_name("TOTALSEG_RS"))
        .map_err(|e| failed(e.to_string()))?;
    crate::atomic::write_atomically(path, |temp| {
        file.write_all(temp).map_err(std::io::Error::other)?;
        temp.sync_all()
    })
    .map_err(|(step, e)| failed(format!("{step}: {e}")))
}
