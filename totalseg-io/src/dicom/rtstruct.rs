//! DICOM RT-STRUCT output: each class as a region of interest outlined slice by slice, as
//! TotalSegmentator's `save_mask_as_rtstruct` writes it with rt_utils (`-ot dicom_rtstruct`).
//!
//! - one ROI per class present in the label map, numbered from 1 in class order;
//! - for every source slice (ascending along the slice normal) holding the class, its
//!   contours as OpenCV's `findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)` gives them (the
//!   caller passes that function in), each a CLOSED_PLANAR contour in patient coordinates
//!   referring to its slice;
//! - the patient and study attributes are the series' own.
//!
//! Coordinates use rt_utils' pixel-to-patient matrix: the first slice's position, the
//! in-plane steps and the mean slice step, each entry rounded to float32, applied in
//! float64. Unlike rt_utils, a column step uses the column spacing (`PixelSpacing[1]`) and a
//! row step the row spacing; the two agree for square pixels.

use std::path::{Path, PathBuf};

use dicom_core::value::PrimitiveValue;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::InMemDicomObject;
use ndarray::{Array2, ArrayView2, ArrayView3};
use rayon::prelude::*;

use super::derived::{
    element, label_planes, labels_present, new_uid, now_da_tm, read_sources, sequence, source_text,
    text, write_atomically, DicomOutputError, SourceSlice,
};
use super::geometry::{dot, slice_normal};
use crate::nifti::Affine;

/// RT Structure Set Storage.
const RT_STRUCTURE_SET_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.481.3";
/// Detached Study Management (what rt_utils names the study by).
const DETACHED_STUDY_MANAGEMENT: &str = "1.2.840.10008.3.1.2.3.1";
/// rt_utils' fixed observation description.
const OBSERVATION_DESCRIPTION: &str =
    "Type:Soft,Range:*/*,Fill:0,Opacity:0.0,Thickness:1,LineThickness:2,read-only:false";

/// One class that may become a region of interest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoiClass {
    /// Its value in the label map.
    pub label: u8,
    /// ROI Name (the class name).
    pub name: String,
    /// ROI Display Color, RGB 0-255.
    pub color: [u8; 3],
}

/// Who wrote the structure set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtStructCreator {
    /// Manufacturer.
    pub manufacturer: String,
    /// Manufacturer's Model Name.
    pub model_name: String,
}

/// What [`write_rtstruct`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtStructSummary {
    /// The file.
    pub path: PathBuf,
    /// Regions of interest written (classes present).
    pub rois: usize,
    /// Contours written, over all regions.
    pub contours: usize,
}

/// The contours of a binary `(rows, columns)` mask as `[x (column), y (row)]` corner points,
/// in OpenCV's order.
pub type ContourFinder = dyn Fn(ArrayView2<bool>) -> Vec<Vec<[i32; 2]>> + Sync;

/// One contour: the index of its slice (in sorted order) and its points in patient
/// coordinates (mm).
type SliceContour = (usize, Vec<[f64; 3]>);

/// rt_utils' pixel-to-patient matrix rows (x, y, z), columns (column index, row index,
/// slice index, 1), entries rounded to float32 as its `np.float32` matrix holds them.
struct PixelToPatient([[f64; 4]; 3]);

impl PixelToPatient {
    fn new(sorted: &[&SourceSlice], normal: [f64; 3]) -> Self {
        let first = &sorted[0].geometry;
        let o = first.orientation;
        let [row_spacing, column_spacing] = first.pixel_spacing;
        let position = |s: &SourceSlice| dot(normal, s.geometry.position);
        let slice_step = match sorted.len() {
            n if n > 1 => (position(sorted[n - 1]) - position(sorted[0])) / (n - 1) as f64,
            _ => 1.0,
        };
        let f32_round = |v: f64| f64::from(v as f32);
        PixelToPatient(std::array::from_fn(|k| {
            [
                f32_round(o[k] * column_spacing),
                f32_round(o[3 + k] * row_spacing),
                f32_round(normal[k] * slice_step),
                f32_round(first.position[k]),
            ]
        }))
    }

    /// Patient coordinates of pixel `(x, y)` of sorted slice `slice`.
    fn apply(&self, x: i32, y: i32, slice: usize) -> [f64; 3] {
        let v = [f64::from(x), f64::from(y), slice as f64, 1.0];
        self.0
            .map(|m| v[0] * m[0] + v[1] * m[1] + v[2] * m[2] + v[3] * m[3])
    }
}

/// Python's `repr(float)`: the shortest digits that read back, `.0` on whole numbers,
/// exponent form below 1e-4 and from 1e16 (what pydicom writes for a float DS value).
pub fn python_float_repr(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let scientific = format!("{v:e}"); // e.g. "1.5e-7"
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..16).contains(&exponent) {
        let text = format!("{v}");
        if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        }
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// Writes `labels` (with `affine`, the volume read from `series`) as a DICOM RT Structure
/// Set at `output` (`.dcm` appended when missing, as rt_utils does). `classes` are the
/// candidate ROIs in class order; those absent from `labels` are left out (with none
/// present the structure set has no ROI, as rt_utils writes it). The file is written to a
/// temporary name and renamed.
///
/// ```no_run
/// use std::path::Path;
/// use totalseg_io::dicom::{read_dicom_series, rtstruct::*};
/// let series = Path::new("ct_series/");
/// let ct = read_dicom_series(series)?;
/// let labels = ct.data.mapv(|hu| u8::from(hu > 200.0));
/// let bone = RoiClass { label: 1, name: "bone".into(), color: [255, 255, 255] };
/// let creator = RtStructCreator { manufacturer: "example".into(), model_name: "threshold".into() };
/// // A stand-in contour finder: the bounding box of the mask.
/// let boxes = |m: ndarray::ArrayView2<bool>| {
///     let on: Vec<(usize, usize)> = m.indexed_iter().filter(|(_, &v)| v).map(|(p, _)| p).collect();
///     let (r0, r1) = (on.iter().map(|p| p.0).min().unwrap(), on.iter().map(|p| p.0).max().unwrap());
///     let (c0, c1) = (on.iter().map(|p| p.1).min().unwrap(), on.iter().map(|p| p.1).max().unwrap());
///     vec![vec![[c0 as i32, r0 as i32], [c0 as i32, r1 as i32], [c1 as i32, r1 as i32], [c1 as i32, r0 as i32]]]
/// };
/// write_rtstruct(Path::new("bone_rt.dcm"), labels.view(), &ct.affine, series, &[bone], &boxes, &creator)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_rtstruct(
    output: &Path,
    labels: ArrayView3<u8>,
    affine: &Affine,
    series: &Path,
    classes: &[RoiClass],
    find_contours: &ContourFinder,
    creator: &RtStructCreator,
) -> Result<RtStructSummary, DicomOutputError> {
    let sources = read_sources(series)?;
    let planes = label_planes(&sources, labels, affine, series)?;
    // rt_utils sorts the slices by their position along row x column.
    let normal = slice_normal(&sources[0].geometry.orientation);
    let mut order: Vec<usize> = (0..sources.len()).collect();
    order.sort_by(|&a, &b| {
        dot(normal, sources[a].geometry.position)
            .total_cmp(&dot(normal, sources[b].geometry.position))
    });
    let sorted: Vec<&SourceSlice> = order.iter().map(|&i| &sources[i]).collect();
    let sorted_planes: Vec<&Array2<u8>> = order.iter().map(|&i| &planes[i]).collect();
    let matrix = PixelToPatient::new(&sorted, normal);

    let present = labels_present(&planes);
    let rois: Vec<&RoiClass> = classes
        .iter()
        .filter(|c| c.label != 0 && present[usize::from(c.label)])
        .collect();
    // No class present: rt_utils still writes the structure set, with no ROI.
    // Per ROI, per sorted slice, its contours in patient coordinates.
    let contours: Vec<Vec<SliceContour>> = rois
        .par_iter()
        .map(|roi| {
            let mut out = Vec::new();
            for (i, plane) in sorted_planes.iter().enumerate() {
                if !plane.iter().any(|&v| v == roi.label) {
                    continue;
                }
                let mask = plane.mapv(|v| v == roi.label);
                for contour in find_contours(mask.view()) {
                    let points = contour
                        .iter()
                        .map(|&[x, y]| matrix.apply(x, y, i))
                        .collect();
                    out.push((i, points));
                }
            }
            out
        })
        .collect();

    let object =
        build(&sorted, &rois, &contours, creator).map_err(|message| DicomOutputError::Source {
            file: sources[0].file.clone(),
            message,
        })?;
    let path = if output.extension().is_some_and(|e| e == "dcm") {
        output.to_path_buf()
    } else {
        let mut name = output.as_os_str().to_owned();
        name.push(".dcm");
        PathBuf::from(name)
    };
    write_atomically(
        object,
        FileMetaTableBuilder::new().transfer_syntax(uids::IMPLICIT_VR_LITTLE_ENDIAN),
        &path,
    )?;
    Ok(RtStructSummary {
        path,
        rois: rois.len(),
        contours: contours.iter().map(Vec::len).sum(),
    })
}

/// An image reference: the slice's SOP Class and Instance UIDs as the file has them.
fn image_reference(slice: &SourceSlice) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        element(
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            text(&source_text(&slice.header, tags::SOP_CLASS_UID).unwrap_or_default()),
        ),
        element(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            text(&source_text(&slice.header, tags::SOP_INSTANCE_UID).unwrap_or_default()),
        ),
    ])
}

/// The structure set, laid out as rt_utils 1.2 (`ds_helper.py`) lays it out.
fn build(
    sorted: &[&SourceSlice],
    rois: &[&RoiClass],
    contours: &[Vec<SliceContour>],
    creator: &RtStructCreator,
) -> Result<InMemDicomObject, String> {
    let first = &sorted.first().ok_or("no source slices")?.header;
    let from_first = |tag: Tag| source_text(first, tag).unwrap_or_default();
    let mut obj = InMemDicomObject::new_empty();
    let (date, time) = now_da_tm();
    let put = |obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str| {
        obj.put(element(tag, vr, text(value)));
    };
    put(&mut obj, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 100");
    put(&mut obj, tags::INSTANCE_CREATION_DATE, VR::DA, &date);
    put(&mut obj, tags::INSTANCE_CREATION_TIME, VR::TM, &time);
    put(&mut obj, tags::STRUCTURE_SET_LABEL, VR::SH, "RTstruct");
    put(&mut obj, tags::STRUCTURE_SET_DATE, VR::DA, &date);
    put(&mut obj, tags::STRUCTURE_SET_TIME, VR::TM, &time);
    put(&mut obj, tags::MODALITY, VR::CS, "RTSTRUCT");
    put(&mut obj, tags::MANUFACTURER, VR::LO, &creator.manufacturer);
    put(
        &mut obj,
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        &creator.model_name,
    );
    put(
        &mut obj,
        tags::SOP_CLASS_UID,
        VR::UI,
        RT_STRUCTURE_SET_STORAGE,
    );
    put(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, &new_uid());
    put(&mut obj, tags::APPROVAL_STATUS, VR::CS, "UNAPPROVED");
    // Study, series and patient attributes of the first slice ('' when it lacks them).
    for (tag, vr) in [
        (tags::STUDY_DATE, VR::DA),
        (tags::SERIES_DATE, VR::DA),
        (tags::STUDY_TIME, VR::TM),
        (tags::SERIES_TIME, VR::TM),
        (tags::STUDY_DESCRIPTION, VR::LO),
        (tags::SERIES_DESCRIPTION, VR::LO),
        (tags::STUDY_INSTANCE_UID, VR::UI),
        (tags::STUDY_ID, VR::SH),
        (tags::PATIENT_NAME, VR::PN),
        (tags::PATIENT_ID, VR::LO),
        (tags::PATIENT_BIRTH_DATE, VR::DA),
        (tags::PATIENT_SEX, VR::CS),
        (tags::PATIENT_AGE, VR::AS),
        (tags::PATIENT_SIZE, VR::DS),
        (tags::PATIENT_WEIGHT, VR::DS),
    ] {
        put(&mut obj, tag, vr, &from_first(tag));
    }
    put(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, &new_uid());
    put(&mut obj, tags::SERIES_NUMBER, VR::IS, "1");

    let frame_of_reference = source_text(first, tags::FRAME_OF_REFERENCE_UID)
        .filter(|uid| !uid.is_empty())
        .unwrap_or_else(new_uid);
    let referenced_series = InMemDicomObject::from_element_iter([
        element(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            text(&from_first(tags::SERIES_INSTANCE_UID)),
        ),
        sequence(
            tags::CONTOUR_IMAGE_SEQUENCE,
            sorted.iter().map(|s| image_reference(s)).collect(),
        ),
    ]);
    let referenced_study = InMemDicomObject::from_element_iter([
        element(
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            text(DETACHED_STUDY_MANAGEMENT),
        ),
        element(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            text(&from_first(tags::STUDY_INSTANCE_UID)),
        ),
        sequence(tags::RT_REFERENCED_SERIES_SEQUENCE, vec![referenced_series]),
    ]);
    obj.put(sequence(
        tags::REFERENCED_FRAME_OF_REFERENCE_SEQUENCE,
        vec![InMemDicomObject::from_element_iter([
            element(
                tags::FRAME_OF_REFERENCE_UID,
                VR::UI,
                text(&frame_of_reference),
            ),
            sequence(tags::RT_REFERENCED_STUDY_SEQUENCE, vec![referenced_study]),
        ])],
    ));

    let number = |i: usize| (i + 1).to_string();
    obj.put(sequence(
        tags::STRUCTURE_SET_ROI_SEQUENCE,
        rois.iter()
            .enumerate()
            .map(|(i, roi)| {
                InMemDicomObject::from_element_iter([
                    element(tags::ROI_NUMBER, VR::IS, text(&number(i))),
                    element(
                        tags::REFERENCED_FRAME_OF_REFERENCE_UID,
                        VR::UI,
                        text(&frame_of_reference),
                    ),
                    element(tags::ROI_NAME, VR::LO, text(&roi.name)),
                    element(tags::ROI_DESCRIPTION, VR::ST, text("")),
                    element(tags::ROI_GENERATION_ALGORITHM, VR::CS, text("AUTOMATIC")),
                ])
            })
            .collect(),
    ));
    obj.put(sequence(
        tags::ROI_CONTOUR_SEQUENCE,
        rois.iter()
            .zip(contours)
            .enumerate()
            .map(|(i, (roi, roi_contours))| {
                let items = roi_contours
                    .iter()
                    .map(|(slice, points)| {
                        let data: Vec<String> = points
                            .iter()
                            .flat_map(|p| p.iter().map(|&v| python_float_repr(v)))
                            .collect();
                        InMemDicomObject::from_element_iter([
                            sequence(
                                tags::CONTOUR_IMAGE_SEQUENCE,
                                vec![image_reference(sorted[*slice])],
                            ),
                            element(tags::CONTOUR_GEOMETRIC_TYPE, VR::CS, text("CLOSED_PLANAR")),
                            element(
                                tags::NUMBER_OF_CONTOUR_POINTS,
                                VR::IS,
                                text(&points.len().to_string()),
                            ),
                            element(
                                tags::CONTOUR_DATA,
                                VR::DS,
                                PrimitiveValue::Strs(data.into_iter().collect()),
                            ),
                        ])
                    })
                    .collect();
                InMemDicomObject::from_element_iter([
                    element(
                        tags::ROI_DISPLAY_COLOR,
                        VR::IS,
                        PrimitiveValue::Strs(roi.color.iter().map(|c| c.to_string()).collect()),
                    ),
                    sequence(tags::CONTOUR_SEQUENCE, items),
                    element(tags::REFERENCED_ROI_NUMBER, VR::IS, text(&number(i))),
                ])
            })
            .collect(),
    ));
    obj.put(sequence(
        tags::RTROI_OBSERVATIONS_SEQUENCE,
        (0..rois.len())
            .map(|i| {
                InMemDicomObject::from_element_iter([
                    element(tags::OBSERVATION_NUMBER, VR::IS, text(&number(i))),
                    element(tags::REFERENCED_ROI_NUMBER, VR::IS, text(&number(i))),
                    // ROI Observation Description (3006,0088): retired, but rt_utils writes it.
                    element(Tag(0x3006, 0x0088), VR::ST, text(OBSERVATION_DESCRIPTION)),
                    element(tags::RTROI_INTERPRETED_TYPE, VR::CS, text("")),
                    element(tags::ROI_INTERPRETER, VR::PN, text("")),
                ])
            })
            .collect(),
    ));
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::python_float_repr;

    /// Python 3's `repr(float)` of the same values.
    #[test]
    fn floats_print_as_python_prints_them() {
        for (v, want) in [
            (145.99609375, "145.99609375"),
            (-804.5, "-804.5"),
            (2.0, "2.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (123456789012345.6, "123456789012345.6"),
        ] {
            assert_eq!(python_float_repr(v), want, "{v}");
        }
    }
}
