//! Writing a [`Segmentation`] in TotalSegmentator's file layout.

use std::path::{Path, PathBuf};

use ndarray::Array3;
use rayon::prelude::*;
use totalseg_core::postprocess::extract_skin;
use totalseg_core::tasks::snomed::{fallback_color, rgb_to_cielab_dicom, structure_coding, Code};
use totalseg_core::tasks::TOTALSEGMENTATOR_VERSION;
use totalseg_io::dicom::rtstruct::{write_rtstruct, RoiClass, RtStructCreator, RtStructSummary};
use totalseg_io::dicom::seg::{
    write_dicom_seg, CodedConcept, DicomSegSummary, SegCreator, SegmentClass,
};
use totalseg_io::nifti::{
    write_binary_mask, write_class_mask, write_label_map, LabelNames, NiftiDataType, NiftiHeader,
    Volume,
};

use crate::error::SegmentError;
use crate::segmenter::Segmentation;

/// How outputs are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLayout {
    /// `--ml`: one label map at the output path, with the label names in a NIfTI extension.
    Multilabel,
    /// One binary `<class>.nii.gz` per class inside the output folder.
    PerClass,
}

/// Writes the segmentation to `output` (a file for [`OutputLayout::Multilabel`], a folder
/// otherwise). Every file is written to a temporary name and renamed, so a failure leaves
/// no partial file.
pub fn save_segmentation(
    segmentation: &Segmentation,
    output: &Path,
    layout: OutputLayout,
    threads: usize,
) -> Result<Vec<PathBuf>, SegmentError> {
    match layout {
        OutputLayout::Multilabel => {
            if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_dir(parent)?;
            }
            let names: LabelNames = segmentation
                .classes
                .iter()
                .map(|(l, n)| (*l, n.clone()))
                .collect();
            write_label_map(
                output,
                segmentation.labels.view(),
                &segmentation.header,
                Some(&names),
            )?;
            Ok(vec![output.to_path_buf()])
        }
        OutputLayout::PerClass => {
            create_dir(output)?;
            let write = |(label, name): &(u8, String)| -> Result<PathBuf, SegmentError> {
                let path = output.join(format!("{name}.nii.gz"));
                write_class_mask(
                    &path,
                    segmentation.labels.view(),
                    *label,
                    &segmentation.header,
                )?;
                Ok(path)
            };
            if threads <= 1 {
                segmentation.classes.iter().map(write).collect()
            } else {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| SegmentError::Model(format!("saving threads: {e}")))?;
                pool.install(|| segmentation.classes.par_iter().map(write).collect())
            }
        }
    }
}

/// Writes the segmentation of the DICOM series in `series` as a DICOM SEG at `output` (as
/// `<SeriesInstanceUID>.dcm` inside it when `output` is a folder), as TotalSegmentator's
/// `-ot dicom_seg` does: one segment per class present, coded with TotalSegmentator's SNOMED
/// CT table and colours (SNOMED "Tissue" and a colour derived from the name for classes
/// the table lacks).
///
/// ```no_run
/// use std::path::Path;
/// use totalsegmentator::{output::save_dicom_seg, SegmenterBuilder};
/// let series = Path::new("ct_series/");
/// let ct = totalseg_io::read_image(series)?;
/// let segmenter = SegmenterBuilder::new("total").fast(true).build()?;
/// let segmentation = segmenter.segment(&ct)?;
/// let written = save_dicom_seg(&segmentation, series, Path::new("seg.dcm"))?;
/// println!("{} segments in {} frames", written.segments, written.frames);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save_dicom_seg(
    segmentation: &Segmentation,
    series: &Path,
    output: &Path,
) -> Result<DicomSegSummary, SegmentError> {
    let concept = |c: &Code| CodedConcept {
        scheme: c.scheme.clone(),
        value: c.value.clone(),
        meaning: c.meaning.clone(),
    };
    let classes: Vec<SegmentClass> = segmentation
        .classes
        .iter()
        .map(|(label, name)| {
            let (category, property_type, rgb) = match structure_coding(name) {
                Some(c) => (concept(&c.category), concept(&c.property_type), c.rgb),
                None => (
                    concept(&Code::tissue()),
                    concept(&Code::tissue()),
                    fallback_color(name),
                ),
            };
            SegmentClass {
                label: *label,
                name: name.clone(),
                category,
                property_type,
                cielab: rgb_to_cielab_dicom(rgb),
            }
        })
        .collect();
    let creator = SegCreator {
        manufacturer: "TotalSegmentator".into(),
        software_versions: format!("totalseg-rs {}", env!("CARGO_PKG_VERSION")),
        algorithm_name: "TotalSegmentator".into(),
        algorithm_version: TOTALSEGMENTATOR_VERSION.into(),
    };
    Ok(write_dicom_seg(
        output,
        segmentation.labels.view(),
        &segmentation.affine,
        series,
        &classes,
        &creator,
    )?)
}

/// Writes the segmentation of the DICOM series in `series` as a DICOM RT Structure Set at
/// `output` (`.dcm` appended when missing), as TotalSegmentator's `-ot dicom_rtstruct` does
/// through rt_utils: one ROI per class present, outlined slice by slice with OpenCV's
/// contours ([`totalseg_core::contours::find_contours`]), coloured from TotalSegmentator's
/// table (a colour derived from the name for classes the table lacks).
///
/// ```no_run
/// use std::path::Path;
/// use totalsegmentator::{output::save_dicom_rtstruct, SegmenterBuilder};
/// let series = Path::new("ct_series/");
/// let ct = totalseg_io::read_image(series)?;
/// let segmenter = SegmenterBuilder::new("total").fast(true).build()?;
/// let segmentation = segmenter.segment(&ct)?;
/// let written = save_dicom_rtstruct(&segmentation, series, Path::new("rtstruct.dcm"))?;
/// println!("{} ROIs, {} contours", written.rois, written.contours);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn save_dicom_rtstruct(
    segmentation: &Segmentation,
    series: &Path,
    output: &Path,
) -> Result<RtStructSummary, SegmentError> {
    let classes: Vec<RoiClass> = segmentation
        .classes
        .iter()
        .map(|(label, name)| RoiClass {
            label: *label,
            name: name.clone(),
            color: structure_coding(name).map_or_else(|| fallback_color(name), |c| c.rgb),
        })
        .collect();
    let contours = |mask: ndarray::ArrayView2<bool>| -> Vec<Vec<[i32; 2]>> {
        totalseg_core::contours::find_contours(mask)
            .into_iter()
            .map(|c| c.points)
            .collect()
    };
    let creator = RtStructCreator {
        manufacturer: "totalsegmentator-rs".into(),
        model_name: format!("totalseg {}", env!("CARGO_PKG_VERSION")),
    };
    Ok(write_rtstruct(
        output,
        segmentation.labels.view(),
        &segmentation.affine,
        series,
        &classes,
        &contours,
        &creator,
    )?)
}

/// Classes whose union is the derived `body.nii.gz` (`combine_masks(..., "body")`).
const BODY_PARTS: [&str; 2] = ["body_trunc", "body_extremities"];

/// Whether TotalSegmentator writes the derived `body.nii.gz` and `skin.nii.gz` for this run:
/// task `body`, one file per class, and no `--no_derived_masks`.
pub fn writes_derived_body_masks(
    segmentation: &Segmentation,
    task_derives_body_masks: bool,
    layout: OutputLayout,
    no_derived_masks: bool,
) -> bool {
    task_derives_body_masks
        && layout == OutputLayout::PerClass
        && !no_derived_masks
        && BODY_PARTS
            .iter()
            .all(|part| segmentation.classes.iter().any(|(_, n)| n == part))
}

/// The `body` task's derived masks, as nnunet.py writes them after the per-class files:
/// `body.nii.gz` = `body_trunc` or `body_extremities`, and `skin.nii.gz` =
/// `extract_skin(ct, body)`. Both are new images on the segmentation's affine
/// (`nib.Nifti1Image(mask, affine)`, so a fresh header, not the input's).
///
/// `ct` is the input the segmentation was made from (its voxels decide the skin density
/// range). Returns the files written.
pub fn save_derived_body_masks(
    segmentation: &Segmentation,
    ct: &Volume,
    output_dir: &Path,
) -> Result<Vec<PathBuf>, SegmentError> {
    let body = derived_body_mask(segmentation);
    let skin = extract_skin(ct.data.mapv(f64::from).view(), body.view())
        .map_err(|e| SegmentError::Model(format!("skin mask: {e}")))?;
    let (a, b, c) = body.dim();
    let header = NiftiHeader::for_new_image([a, b, c], &segmentation.affine, NiftiDataType::U8)
        .map_err(|e| SegmentError::Model(format!("derived mask header: {e:?}")))?;
    create_dir(output_dir)?;
    let mut written = Vec::new();
    for (name, mask) in [("body", &body), ("skin", &skin)] {
        let path = output_dir.join(format!("{name}.nii.gz"));
        write_binary_mask(&path, mask.view(), &header)?;
        written.push(path);
    }
    Ok(written)
}

/// The union of the `body_trunc` and `body_extremities` labels.
pub fn derived_body_mask(segmentation: &Segmentation) -> Array3<bool> {
    let labels: Vec<u8> = segmentation
        .classes
        .iter()
        .filter(|(_, n)| BODY_PARTS.contains(&n.as_str()))
        .map(|(l, _)| *l)
        .collect();
    segmentation.labels.mapv(|v| v != 0 && labels.contains(&v))
}

/// Where `statistics.json` goes: the given path, else next to the output (the output's
/// folder with `--ml`, inside the output folder otherwise).
pub fn statistics_path(custom: Option<&Path>, output: &Path, layout: OutputLayout) -> PathBuf {
    match custom {
        Some(p) => p.to_path_buf(),
        None => match layout {
            OutputLayout::Multilabel => output
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join("statistics.json"),
            OutputLayout::PerClass => output.join("statistics.json"),
        },
    }
}

/// Writes `text` to `path` through a temporary file in the same folder.
pub fn write_text_atomically(path: &Path, text: &str) -> Result<(), SegmentError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    create_dir(parent)?;
    let io_err = |source| SegmentError::Output {
        path: path.to_path_buf(),
        source,
    };
    let tmp = parent.join(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    std::fs::write(&tmp, text).map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(e)
    })
}

fn create_dir(dir: &Path) -> Result<(), SegmentError> {
    std::fs::create_dir_all(dir).map_err(|source| SegmentError::Output {
        path: dir.to_path_buf(),
        source,
    })
}
