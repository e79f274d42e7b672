//! The Segmentation IOD's attributes, laid out as highdicom 0.28 lays them out for
//! TotalSegmentator, and the atomic file write.

use dicom_core::value::{PrimitiveValue, C};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;

use super::{SegCreator, SegmentClass};
use crate::dicom::derived::{element, new_uid, now_da_tm, sequence, source_text, text};

/// Segmentation Storage (binary and fractional).
const SEGMENTATION_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.66.4";

/// One frame: which segment, at which (1-based) position index, from which source slice.
pub struct Frame {
    pub segment_number: usize,
    pub position_index: usize,
    pub source: usize,
}

/// Everything the dataset is built from.
pub struct SegContent<'a> {
    pub sources: &'a [&'a InMemDicomObject],
    pub segments: &'a [&'a SegmentClass],
    pub frames: &'a [Frame],
    pub rows: usize,
    pub columns: usize,
    pub spacing_between_slices: Option<f64>,
    pub dimension_3d: bool,
    pub creator: &'a SegCreator,
}

/// The built object and the new series' UID (for naming the file).
pub struct SegObject {
    pub object: InMemDicomObject,
    pub series_uid: String,
}

fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        element(tags::CODE_VALUE, VR::SH, text(value)),
        element(tags::CODING_SCHEME_DESIGNATOR, VR::SH, text(scheme)),
        element(tags::CODE_MEANING, VR::LO, text(meaning)),
    ])
}

/// Copies `tag` from `source` if present.
fn copy(into: &mut InMemDicomObject, source: &InMemDicomObject, tag: Tag) {
    if let Ok(Some(e)) = source.element_opt(tag) {
        into.put(e.clone());
    }
}

/// Attributes of the Patient, General Study and Patient Study modules that highdicom
/// copies from the first source image.
const PATIENT_AND_STUDY: [Tag; 37] = [
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::ISSUER_OF_PATIENT_ID,
    tags::TYPE_OF_PATIENT_ID,
    tags::ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_BIRTH_TIME,
    tags::PATIENT_SEX,
    tags::QUALITY_CONTROL_SUBJECT,
    Tag(0x0010, 0x1002), // Other Patient IDs Sequence
    tags::OTHER_PATIENT_NAMES,
    tags::PATIENT_COMMENTS,
    tags::PATIENT_SPECIES_DESCRIPTION,
    tags::PATIENT_IDENTITY_REMOVED,
    tags::DEIDENTIFICATION_METHOD,
    tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
    tags::STUDY_INSTANCE_UID,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::REFERRING_PHYSICIAN_IDENTIFICATION_SEQUENCE,
    tags::CONSULTING_PHYSICIAN_NAME,
    tags::STUDY_ID,
    tags::ACCESSION_NUMBER,
    tags::ISSUER_OF_ACCESSION_NUMBER_SEQUENCE,
    tags::STUDY_DESCRIPTION,
    tags::PHYSICIANS_OF_RECORD,
    tags::PHYSICIANS_OF_RECORD_IDENTIFICATION_SEQUENCE,
    tags::NAME_OF_PHYSICIANS_READING_STUDY,
    tags::REFERENCED_STUDY_SEQUENCE,
    tags::PROCEDURE_CODE_SEQUENCE,
    tags::ADMITTING_DIAGNOSES_DESCRIPTION,
    tags::PATIENT_AGE,
    tags::PATIENT_SIZE,
    tags::PATIENT_WEIGHT,
    tags::ADDITIONAL_PATIENT_HISTORY,
    tags::PREGNANCY_STATUS,
];

/// Source attributes TotalSegmentator fills when an anonymised series lacks them
/// (`required_str_attrs` in `save_mask_as_dicomseg`).
const REQUIRED_WITH_DEFAULTS: [(Tag, VR, &str); 9] = [
    (tags::PATIENT_ID, VR::LO, "UNKNOWN"),
    (tags::PATIENT_NAME, VR::PN, "UNKNOWN"),
    (tags::PATIENT_BIRTH_DATE, VR::DA, ""),
    (tags::PATIENT_SEX, VR::CS, ""),
    (tags::ACCESSION_NUMBER, VR::SH, ""),
    (tags::REFERRING_PHYSICIAN_NAME, VR::PN, ""),
    (tags::STUDY_ID, VR::SH, ""),
    (tags::STUDY_DATE, VR::DA, ""),
    (tags::STUDY_TIME, VR::TM, ""),
];

/// The source's SOP Class UID, or TotalSegmentator's stand-in by Modality when missing.
fn source_sop_class(source: &InMemDicomObject) -> String {
    match source_text(source, tags::SOP_CLASS_UID).filter(|s| !s.is_empty()) {
        Some(uid) => uid,
        None => match source_text(source, tags::MODALITY).as_deref() {
            Some("MR") => uids::MR_IMAGE_STORAGE.to_string(),
            Some("PT") => uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE.to_string(),
            Some("CT") | None => uids::CT_IMAGE_STORAGE.to_string(),
            Some(_) => uids::SECONDARY_CAPTURE_IMAGE_STORAGE.to_string(),
        },
    }
}

/// Builds the Segmentation object around the packed frames `pixel_data`.
pub fn build(content: &SegContent, pixel_data: Vec<u8>) -> Result<SegObject, String> {
    let first = *content.sources.first().ok_or("no source slices")?;
    // highdicom refuses sources without one: a SEG belongs to its source's study (an
    // anonymised, empty UID is carried over as it is).
    if first
        .element_opt(tags::STUDY_INSTANCE_UID)
        .ok()
        .flatten()
        .is_none()
    {
        return Err("no StudyInstanceUID, which a DICOM SEG must share with its source".into());
    }
    let creator = content.creator;
    let mut obj = InMemDicomObject::new_empty();
    let (date, time) = now_da_tm();
    let series_uid = new_uid();
    let sop_uid = new_uid();

    copy(&mut obj, first, tags::SPECIFIC_CHARACTER_SET);
    for tag in PATIENT_AND_STUDY {
        copy(&mut obj, first, tag);
    }
    for (tag, vr, default) in REQUIRED_WITH_DEFAULTS {
        if obj.element_opt(tag).ok().flatten().is_none() {
            obj.put(element(tag, vr, text(default)));
        }
    }
    let put_text = |obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: &str| {
        obj.put(element(tag, vr, text(value)));
    };
    obj.put(element(
        tags::IMAGE_TYPE,
        VR::CS,
        PrimitiveValue::Strs(C::from_vec(vec!["DERIVED".into(), "PRIMARY".into()])),
    ));
    put_text(&mut obj, tags::INSTANCE_CREATION_DATE, VR::DA, &date);
    put_text(&mut obj, tags::INSTANCE_CREATION_TIME, VR::TM, &time);
    put_text(&mut obj, tags::CONTENT_DATE, VR::DA, &date);
    put_text(&mut obj, tags::CONTENT_TIME, VR::TM, &time);
    put_text(&mut obj, tags::SOP_CLASS_UID, VR::UI, SEGMENTATION_STORAGE);
    put_text(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, &sop_uid);
    put_text(&mut obj, tags::SERIES_INSTANCE_UID, VR::UI, &series_uid);
    put_text(&mut obj, tags::MODALITY, VR::CS, "SEG");
    put_text(&mut obj, tags::MANUFACTURER, VR::LO, &creator.manufacturer);
    put_text(
        &mut obj,
        tags::MANUFACTURER_MODEL_NAME,
        VR::LO,
        &creator.manufacturer,
    );
    put_text(
        &mut obj,
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        &creator.software_versions,
    );
    put_text(&mut obj, tags::DEVICE_SERIAL_NUMBER, VR::LO, "1");
    put_text(&mut obj, tags::SERIES_NUMBER, VR::IS, "100");
    put_text(&mut obj, tags::INSTANCE_NUMBER, VR::IS, "1");
    copy(&mut obj, first, tags::FRAME_OF_REFERENCE_UID);
    match first
        .element_opt(tags::POSITION_REFERENCE_INDICATOR)
        .ok()
        .flatten()
    {
        Some(e) => {
            obj.put(e.clone());
        }
        None => put_text(&mut obj, tags::POSITION_REFERENCE_INDICATOR, VR::LO, ""),
    }
    obj.put(contributing_equipment(first, creator));
    add_source_references(&mut obj, content.sources);

    // Image pixel description: one bit per pixel.
    let us = |v: u16| PrimitiveValue::from(v);
    obj.put(element(tags::SAMPLES_PER_PIXEL, VR::US, us(1)));
    put_text(
        &mut obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    put_text(
        &mut obj,
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        &content.frames.len().to_string(),
    );
    let size = |n: usize| u16::try_from(n).map_err(|_| format!("{n} rows/columns"));
    obj.put(element(tags::ROWS, VR::US, us(size(content.rows)?)));
    obj.put(element(tags::COLUMNS, VR::US, us(size(content.columns)?)));
    obj.put(element(tags::BITS_ALLOCATED, VR::US, us(1)));
    obj.put(element(tags::BITS_STORED, VR::US, us(1)));
    obj.put(element(tags::HIGH_BIT, VR::US, us(0)));
    obj.put(element(tags::PIXEL_REPRESENTATION, VR::US, us(0)));
    let lossy = source_text(first, tags::LOSSY_IMAGE_COMPRESSION).unwrap_or_else(|| "00".into());
    put_text(&mut obj, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, &lossy);
    if lossy == "01" {
        copy(&mut obj, first, tags::LOSSY_IMAGE_COMPRESSION_RATIO);
        copy(&mut obj, first, tags::LOSSY_IMAGE_COMPRESSION_METHOD);
    }
    put_text(&mut obj, tags::PRESENTATION_LUT_SHAPE, VR::CS, "IDENTITY");

    // Segmentation image module.
    put_text(&mut obj, tags::SEGMENTATION_TYPE, VR::CS, "BINARY");
    put_text(&mut obj, tags::SEGMENTS_OVERLAP, VR::CS, "NO");
    let modality = source_text(first, tags::MODALITY).unwrap_or_default();
    put_text(
        &mut obj,
        tags::CONTENT_LABEL,
        VR::CS,
        &format!("{modality}_SEG"),
    );
    put_text(&mut obj, tags::CONTENT_DESCRIPTION, VR::LO, "");
    obj.put(segment_sequence(content.segments, creator));

    // Multi-frame dimensions: segment number, then position.
    let organization = new_uid();
    obj.put(sequence(
        tags::DIMENSION_ORGANIZATION_SEQUENCE,
        vec![InMemDicomObject::from_element_iter([element(
            tags::DIMENSION_ORGANIZATION_UID,
            VR::UI,
            text(&organization),
        )])],
    ));
    let index = |pointer: Tag, group: Tag, label: &str| {
        InMemDicomObject::from_element_iter([
            element(
                tags::DIMENSION_ORGANIZATION_UID,
                VR::UI,
                text(&organization),
            ),
            element(
                tags::DIMENSION_INDEX_POINTER,
                VR::AT,
                PrimitiveValue::from(pointer),
            ),
            element(
                tags::FUNCTIONAL_GROUP_POINTER,
                VR::AT,
                PrimitiveValue::from(group),
            ),
            element(tags::DIMENSION_DESCRIPTION_LABEL, VR::LO, text(label)),
        ])
    };
    obj.put(sequence(
        tags::DIMENSION_INDEX_SEQUENCE,
        vec![
            index(
                tags::REFERENCED_SEGMENT_NUMBER,
                tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                "Referenced Segment Number",
            ),
            index(
                tags::IMAGE_POSITION_PATIENT,
                tags::PLANE_POSITION_SEQUENCE,
                "Image Position Patient",
            ),
        ],
    ));
    if content.dimension_3d {
        put_text(&mut obj, tags::DIMENSION_ORGANIZATION_TYPE, VR::CS, "3D");
    }
    obj.put(shared_functional_groups(
        first,
        content.spacing_between_slices,
    )?);
    obj.put(per_frame_functional_groups(content));
    obj.put(element(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::U8(C::from_vec(pixel_data)),
    ));
    Ok(SegObject {
        object: obj,
        series_uid,
    })
}

/// The acquisition equipment of the source (when it names a Manufacturer), then this tool.
fn contributing_equipment(
    first: &InMemDicomObject,
    creator: &SegCreator,
) -> DataElement<InMemDicomObject> {
    let mut items = Vec::new();
    if source_text(first, tags::MANUFACTURER).is_some() {
        let mut item = InMemDicomObject::new_empty();
        for tag in [
            tags::MANUFACTURER,
            tags::INSTITUTION_NAME,
            tags::INSTITUTION_ADDRESS,
            tags::INSTITUTIONAL_DEPARTMENT_NAME,
            tags::STATION_NAME,
            tags::MANUFACTURER_MODEL_NAME,
            tags::DEVICE_SERIAL_NUMBER,
            tags::SOFTWARE_VERSIONS,
        ] {
            copy(&mut item, first, tag);
        }
        item.put(element(
            tags::CONTRIBUTION_DESCRIPTION,
            VR::ST,
            text("Acquisition equipment of the source image(s)"),
        ));
        item.put(sequence(
            tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
            vec![code_item("109101", "DCM", "Acquisition Equipment")],
        ));
        items.push(item);
    }
    items.push(InMemDicomObject::from_element_iter([
        element(tags::MANUFACTURER, VR::LO, text("totalsegmentator-rs")),
        element(tags::MANUFACTURER_MODEL_NAME, VR::LO, text("totalseg")),
        element(
            tags::SOFTWARE_VERSIONS,
            VR::LO,
            text(&creator.software_versions),
        ),
        element(
            tags::CONTRIBUTION_DESCRIPTION,
            VR::ST,
            text("Software used to create this instance"),
        ),
        sequence(
            tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
            vec![code_item("109102", "DCM", "Processing Equipment")],
        ),
    ]));
    sequence(tags::CONTRIBUTING_EQUIPMENT_SEQUENCE, items)
}

/// Source Image Sequence and Referenced Series Sequence: every source slice.
fn add_source_references(obj: &mut InMemDicomObject, sources: &[&InMemDicomObject]) {
    let reference = |s: &InMemDicomObject| {
        InMemDicomObject::from_element_iter([
            element(
                tags::REFERENCED_SOP_CLASS_UID,
                VR::UI,
                text(&source_sop_class(s)),
            ),
            element(
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                text(&source_text(s, tags::SOP_INSTANCE_UID).unwrap_or_default()),
            ),
        ])
    };
    obj.put(sequence(
        tags::SOURCE_IMAGE_SEQUENCE,
        sources.iter().map(|s| reference(s)).collect(),
    ));
    // One item per source series, in order of first appearance.
    let mut series: Vec<(String, Vec<InMemDicomObject>)> = Vec::new();
    for s in sources {
        let uid = source_text(s, tags::SERIES_INSTANCE_UID).unwrap_or_default();
        match series.iter_mut().find(|(u, _)| *u == uid) {
            Some((_, refs)) => refs.push(reference(s)),
            None => series.push((uid, vec![reference(s)])),
        }
    }
    obj.put(sequence(
        tags::REFERENCED_SERIES_SEQUENCE,
        series
            .into_iter()
            .map(|(uid, refs)| {
                InMemDicomObject::from_element_iter([
                    sequence(tags::REFERENCED_INSTANCE_SEQUENCE, refs),
                    element(tags::SERIES_INSTANCE_UID, VR::UI, text(&uid)),
                ])
            })
            .collect(),
    ));
}

fn coded(tag: Tag, code: &super::CodedConcept) -> DataElement<InMemDicomObject> {
    sequence(
        tag,
        vec![code_item(&code.value, &code.scheme, &code.meaning)],
    )
}

/// One Segment Sequence item per segment, numbered from 1.
fn segment_sequence(
    segments: &[&SegmentClass],
    creator: &SegCreator,
) -> DataElement<InMemDicomObject> {
    let items = segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let number = u16::try_from(i + 1).unwrap_or(u16::MAX);
            InMemDicomObject::from_element_iter([
                coded(tags::SEGMENTED_PROPERTY_CATEGORY_CODE_SEQUENCE, &s.category),
                element(tags::SEGMENT_NUMBER, VR::US, PrimitiveValue::from(number)),
                element(tags::SEGMENT_LABEL, VR::LO, text(&s.name)),
                sequence(
                    tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE,
                    vec![InMemDicomObject::from_element_iter([
                        sequence(
                            tags::ALGORITHM_FAMILY_CODE_SEQUENCE,
                            vec![code_item("123110", "DCM", "Artificial Intelligence")],
                        ),
                        element(
                            tags::ALGORITHM_VERSION,
                            VR::LO,
                            text(&creator.algorithm_version),
                        ),
                        element(tags::ALGORITHM_NAME, VR::LO, text(&creator.algorithm_name)),
                    ])],
                ),
                element(tags::SEGMENT_ALGORITHM_TYPE, VR::CS, text("AUTOMATIC")),
                element(
                    tags::SEGMENT_ALGORITHM_NAME,
                    VR::LO,
                    text(&creator.algorithm_name),
                ),
                element(
                    tags::RECOMMENDED_DISPLAY_CIE_LAB_VALUE,
                    VR::US,
                    PrimitiveValue::U16(C::from_vec(s.cielab.to_vec())),
                ),
                coded(
                    tags::SEGMENTED_PROPERTY_TYPE_CODE_SEQUENCE,
                    &s.property_type,
                ),
            ])
        })
        .collect();
    sequence(tags::SEGMENT_SEQUENCE, items)
}

/// Orientation and pixel measures, copied from the source; Spacing Between Slices from the
/// source when it has one, else the planes' regular spacing.
fn shared_functional_groups(
    first: &InMemDicomObject,
    spacing_between_slices: Option<f64>,
) -> Result<DataElement<InMemDicomObject>, String> {
    let mut orientation = InMemDicomObject::new_empty();
    copy(&mut orientation, first, tags::IMAGE_ORIENTATION_PATIENT);
    let mut measures = InMemDicomObject::new_empty();
    if first
        .element_opt(tags::SLICE_THICKNESS)
        .ok()
        .flatten()
        .is_none()
    {
        return Err("no SliceThickness (highdicom needs it for the pixel measures)".into());
    }
    copy(&mut measures, first, tags::SLICE_THICKNESS);
    copy(&mut measures, first, tags::PIXEL_SPACING);
    copy(&mut measures, first, tags::SPACING_BETWEEN_SLICES);
    if measures
        .element_opt(tags::SPACING_BETWEEN_SLICES)
        .ok()
        .flatten()
        .is_none()
    {
        if let Some(spacing) = spacing_between_slices {
            measures.put(element(
                tags::SPACING_BETWEEN_SLICES,
                VR::DS,
                text(&super::frames::format_ds(spacing)),
            ));
        }
    }
    Ok(sequence(
        tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
        vec![InMemDicomObject::from_element_iter([
            sequence(tags::PLANE_ORIENTATION_SEQUENCE, vec![orientation]),
            sequence(tags::PIXEL_MEASURES_SEQUENCE, vec![measures]),
        ])],
    ))
}

/// Per frame: derivation from its source slice, dimension index values, position, segment.
fn per_frame_functional_groups(content: &SegContent) -> DataElement<InMemDicomObject> {
    let items = content
        .frames
        .iter()
        .map(|frame| {
            let source = content.sources[frame.source];
            let source_item = InMemDicomObject::from_element_iter([
                element(
                    tags::REFERENCED_SOP_CLASS_UID,
                    VR::UI,
                    text(&source_sop_class(source)),
                ),
                element(
                    tags::REFERENCED_SOP_INSTANCE_UID,
                    VR::UI,
                    text(&source_text(source, tags::SOP_INSTANCE_UID).unwrap_or_default()),
                ),
                element(tags::SPATIAL_LOCATIONS_PRESERVED, VR::CS, text("YES")),
                sequence(
                    tags::PURPOSE_OF_REFERENCE_CODE_SEQUENCE,
                    vec![code_item(
                        "121322",
                        "DCM",
                        "Source image for image processing operation",
                    )],
                ),
            ]);
            let mut position = InMemDicomObject::new_empty();
            copy(&mut position, source, tags::IMAGE_POSITION_PATIENT);
            let index = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
            let segment = u16::try_from(frame.segment_number).unwrap_or(u16::MAX);
            InMemDicomObject::from_element_iter([
                sequence(
                    tags::DERIVATION_IMAGE_SEQUENCE,
                    vec![InMemDicomObject::from_element_iter([
                        sequence(tags::SOURCE_IMAGE_SEQUENCE, vec![source_item]),
                        sequence(
                            tags::DERIVATION_CODE_SEQUENCE,
                            vec![code_item("113076", "DCM", "Segmentation")],
                        ),
                    ])],
                ),
                sequence(
                    tags::FRAME_CONTENT_SEQUENCE,
                    vec![InMemDicomObject::from_element_iter([element(
                        tags::DIMENSION_INDEX_VALUES,
                        VR::UL,
                        PrimitiveValue::U32(C::from_vec(vec![
                            index(frame.segment_number),
                            index(frame.position_index),
                        ])),
                    )])],
                ),
                sequence(tags::PLANE_POSITION_SEQUENCE, vec![position]),
                sequence(
                    tags::SEGMENT_IDENTIFICATION_SEQUENCE,
                    vec![InMemDicomObject::from_element_iter([element(
                        tags::REFERENCED_SEGMENT_NUMBER,
                        VR::US,
                        PrimitiveValue::from(segment),
                    )])],
                ),
            ])
        })
        .collect();
    sequence(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE, items)
}
