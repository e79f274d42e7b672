//! DICOM SEG output: a label map written as a binary Segmentation object that refers back to
//! the CT series it was made from, as TotalSegmentator's `save_mask_as_dicomseg` writes it
//! with highdicom (`-ot dicom_seg`).
//!
//! - one segment per class present in the label map, numbered from 1 in class order;
//! - one frame per segment and source slice holding that segment (empty frames omitted),
//!   segment by segment, the slices in highdicom's order (down the slice normal);
//! - each frame refers to its source slice (Derivation Image Sequence) and carries its
//!   position; the patient, study and frame-of-reference attributes are the series' own.
//!
//! Pixels are matched to voxels through the geometry (positions, orientation, spacing and
//! the label map's affine), so any slice orientation comes out right.

mod dataset;
mod frames;

use std::path::{Path, PathBuf};

use dicom_dictionary_std::uids;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use ndarray::ArrayView3;

use super::derived::{
    label_planes, labels_present, read_sources, write_atomically, DicomOutputError,
};
use crate::nifti::Affine;

use super::geometry::dot;
use frames::{highdicom_normal, plane_order, regular_spacing, BitPacker};

/// A coded concept (coding scheme, value, meaning), e.g. `SCT` / `10200004` / `Liver`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodedConcept {
    /// Coding Scheme Designator.
    pub scheme: String,
    /// Code Value.
    pub value: String,
    /// Code Meaning.
    pub meaning: String,
}

/// One class that may become a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentClass {
    /// Its value in the label map.
    pub label: u8,
    /// Segment Label (the class name).
    pub name: String,
    /// Segmented Property Category.
    pub category: CodedConcept,
    /// Segmented Property Type.
    pub property_type: CodedConcept,
    /// Recommended Display CIELab Value (DICOM-scaled).
    pub cielab: [u16; 3],
}

/// Who made the segmentation: the equipment and algorithm attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegCreator {
    /// Manufacturer and Manufacturer's Model Name of the SEG.
    pub manufacturer: String,
    /// Software Versions of the SEG.
    pub software_versions: String,
    /// Algorithm Name of every segment.
    pub algorithm_name: String,
    /// Algorithm Version of every segment.
    pub algorithm_version: String,
}

/// What [`write_dicom_seg`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DicomSegSummary {
    /// The file.
    pub path: PathBuf,
    /// Segments written (classes present).
    pub segments: usize,
    /// Frames written.
    pub frames: usize,
}

/// Writes `labels` (with `affine`, the volume read from `series`) as a DICOM SEG at
/// `output` (a file; inside it as `<SeriesInstanceUID>.dcm` when `output` is a folder).
/// `classes` are the candidate segments in class order; those absent from `labels` are
/// left out. The file is written to a temporary name and renamed.
///
/// ```no_run
/// use std::path::Path;
/// use totalseg_io::dicom::{read_dicom_series, seg::*};
/// let series = Path::new("ct_series/");
/// let ct = read_dicom_series(series)?;
/// let labels = ct.data.mapv(|hu| u8::from(hu > 200.0)); // a bone-like mask
/// let bone = SegmentClass {
///     label: 1,
///     name: "bone".into(),
///     category: CodedConcept { scheme: "SCT".into(), value: "85756007".into(), meaning: "Tissue".into() },
///     property_type: CodedConcept { scheme: "SCT".into(), value: "85756007".into(), meaning: "Tissue".into() },
///     cielab: [65535, 32896, 32896],
/// };
/// let creator = SegCreator {
///     manufacturer: "example".into(),
///     software_versions: "1".into(),
///     algorithm_name: "threshold".into(),
///     algorithm_version: "1".into(),
/// };
/// write_dicom_seg(Path::new("bone_seg.dcm"), labels.view(), &ct.affine, series, &[bone], &creator)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_dicom_seg(
    output: &Path,
    labels: ArrayView3<u8>,
    affine: &Affine,
    series: &Path,
    classes: &[SegmentClass],
    creator: &SegCreator,
) -> Result<DicomSegSummary, DicomOutputError> {
    let sources = read_sources(series)?;
    let planes = label_planes(&sources, labels, affine, series)?;

    let present = labels_present(&planes);
    let segments: Vec<&SegmentClass> = classes
        .iter()
        .filter(|c| c.label != 0 && present[usize::from(c.label)])
        .collect();
    if segments.is_empty() {
        return Err(DicomOutputError::NoSegments {
            path: output.to_path_buf(),
        });
    }
    let is_segment = {
        let mut table = [false; 256];
        for s in &segments {
            table[usize::from(s.label)] = true;
        }
        table
    };

    let orientation = sources[0].geometry.orientation;
    let normal = highdicom_normal(&orientation);
    let distances: Vec<f64> = sources
        .iter()
        .map(|s| dot(normal, s.geometry.position))
        .collect();
    let order = plane_order(&distances).ok_or_else(|| DicomOutputError::GridMismatch {
        series: series.to_path_buf(),
        message: "two slices share a position along the slice normal".into(),
    })?;
    // Planes holding any segment, in highdicom's order; their 1-based rank is the frame's
    // position index.
    let nonempty: Vec<bool> = planes
        .iter()
        .map(|p| p.iter().any(|&v| is_segment[usize::from(v)]))
        .collect();
    let included: Vec<usize> = order.iter().copied().filter(|&i| nonempty[i]).collect();

    let mut packer = BitPacker::default();
    let mut frames = Vec::new();
    for (segment_index, class) in segments.iter().enumerate() {
        for (position_index, &plane) in included.iter().enumerate() {
            if !planes[plane].iter().any(|&v| v == class.label) {
                continue;
            }
            packer.push_frame(planes[plane].iter().map(|&v| v == class.label));
            frames.push(dataset::Frame {
                segment_number: segment_index + 1,
                position_index: position_index + 1,
                source: plane,
            });
        }
    }

    // highdicom: "3D" only when frames differ by position alone (one segment) and the
    // included planes, in source order, step regularly forwards along its normal.
    let dimension_3d = segments.len() == 1 && included.len() > 1 && {
        let mut source_order: Vec<usize> = included.clone();
        source_order.sort_unstable();
        let d: Vec<f64> = source_order.iter().map(|&i| distances[i]).collect();
        regular_spacing(&d).is_some_and(|s| s > 0.0)
    };
    // Spacing Between Slices from all source planes, sorted (before empty ones are dropped).
    let sorted_distances: Vec<f64> = order.iter().map(|&i| distances[i]).collect();
    let spacing_between_slices = regular_spacing(&sorted_distances);

    let headers: Vec<&InMemDicomObject> = sources.iter().map(|s| &s.header).collect();
    let object = dataset::build(
        &dataset::SegContent {
            sources: &headers,
            segments: &segments,
            frames: &frames,
            rows: sources[0].geometry.size[0],
            columns: sources[0].geometry.size[1],
            spacing_between_slices,
            dimension_3d,
            creator,
        },
        packer.finish(),
    )
    .map_err(|message| DicomOutputError::Source {
        file: sources[0].file.clone(),
        message,
    })?;
    let series_uid = object.series_uid.clone();
    let path = if output.is_dir() {
        output.join(format!("{series_uid}.dcm"))
    } else {
        output.to_path_buf()
    };
    write_atomically(
        object.object,
        FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN),
        &path,
    )?;
    Ok(DicomSegSummary {
        path,
        segments: segments.len(),
        frames: frames.len(),
    })
}
