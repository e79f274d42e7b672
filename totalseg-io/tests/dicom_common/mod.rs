//! Writes small synthetic DICOM slices for the reader's tests (native explicit VR little
//! endian, 16-bit grey-scale).

use std::path::Path;

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

/// One slice to write.
#[derive(Clone, Debug)]
pub struct SynthSlice {
    pub series_uid: String,
    pub instance: i32,
    pub position: [f64; 3],
    pub orientation: [f64; 6],
    pub pixel_spacing: [f64; 2],
    pub rows: u16,
    pub columns: u16,
    /// Stored values, row-major.
    pub pixels: Vec<u16>,
    pub signed: bool,
    pub bits_stored: u16,
    pub rescale: Option<(f64, f64)>,
    pub image_type: Vec<String>,
    pub modality: String,
    pub samples_per_pixel: u16,
}

impl SynthSlice {
    /// An axial CT slice of `rows x columns` at height `z`, pixels `f(row, col)`.
    pub fn axial(z: f64, rows: u16, columns: u16, f: impl Fn(usize, usize) -> u16) -> Self {
        let pixels = (0..rows as usize)
            .flat_map(|r| (0..columns as usize).map(move |c| (r, c)))
            .map(|(r, c)| f(r, c))
            .collect();
        SynthSlice {
            series_uid: "1.2.826.0.1.3680043.2.1125.1".into(),
            instance: 1,
            position: [-10.0, -20.0, z],
            orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            pixel_spacing: [0.5, 0.75],
            rows,
            columns,
            pixels,
            signed: false,
            bits_stored: 16,
            rescale: Some((1.0, -1024.0)),
            image_type: vec!["ORIGINAL".into(), "PRIMARY".into(), "AXIAL".into()],
            modality: "CT".into(),
            samples_per_pixel: 1,
        }
    }
}

fn ds(values: &[f64]) -> PrimitiveValue {
    PrimitiveValue::Strs(values.iter().map(|v| format!("{v}")).collect())
}

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, value: PrimitiveValue) {
    obj.put(DataElement::new(tag, vr, value));
}

/// Writes `slice` to `path` as a DICOM Part 10 file.
pub fn write_slice(path: &Path, slice: &SynthSlice) {
    let mut obj = InMemDicomObject::new_empty();
    let sop_uid = format!("1.2.826.0.1.3680043.2.1125.2.{}", slice.instance);
    put(
        &mut obj,
        tags::SOP_CLASS_UID,
        VR::UI,
        "1.2.840.10008.5.1.4.1.1.2".into(),
    );
    put(
        &mut obj,
        tags::SOP_INSTANCE_UID,
        VR::UI,
        sop_uid.clone().into(),
    );
    put(
        &mut obj,
        tags::MODALITY,
        VR::CS,
        slice.modality.clone().into(),
    );
    put(
        &mut obj,
        tags::IMAGE_TYPE,
        VR::CS,
        PrimitiveValue::Strs(slice.image_type.iter().cloned().collect()),
    );
    if !slice.series_uid.is_empty() {
        put(
            &mut obj,
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            slice.series_uid.clone().into(),
        );
    }
    put(
        &mut obj,
        tags::INSTANCE_NUMBER,
        VR::IS,
        slice.instance.to_string().into(),
    );
    put(
        &mut obj,
        tags::IMAGE_POSITION_PATIENT,
        VR::DS,
        ds(&slice.position),
    );
    put(
        &mut obj,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        ds(&slice.orientation),
    );
    put(
        &mut obj,
        tags::PIXEL_SPACING,
        VR::DS,
        ds(&slice.pixel_spacing),
    );
    put(&mut obj, tags::SLICE_THICKNESS, VR::DS, ds(&[1.0]));
    // Study and frame of reference, which a DICOM SEG of the series refers to.
    put(
        &mut obj,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        "1.2.826.0.1.3680043.2.1125.3".into(),
    );
    put(
        &mut obj,
        tags::FRAME_OF_REFERENCE_UID,
        VR::UI,
        "1.2.826.0.1.3680043.2.1125.4".into(),
    );
    put(
        &mut obj,
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(slice.samples_per_pixel),
    );
    let photometric = if slice.samples_per_pixel == 3 {
        "RGB"
    } else {
        "MONOCHROME2"
    };
    put(
        &mut obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        photometric.into(),
    );
    put(
        &mut obj,
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(slice.rows),
    );
    put(
        &mut obj,
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(slice.columns),
    );
    put(
        &mut obj,
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(16u16),
    );
    put(
        &mut obj,
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(slice.bits_stored),
    );
    put(
        &mut obj,
        tags::HIGH_BIT,
        VR::US,
        PrimitiveValue::from(slice.bits_stored - 1),
    );
    put(
        &mut obj,
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(u16::from(slice.signed)),
    );
    if let Some((slope, intercept)) = slice.rescale {
        put(&mut obj, tags::RESCALE_SLOPE, VR::DS, ds(&[slope]));
        put(&mut obj, tags::RESCALE_INTERCEPT, VR::DS, ds(&[intercept]));
    }
    put(
        &mut obj,
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(slice.pixels.iter().copied().collect()),
    );
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.2")
                .media_storage_sop_instance_uid(sop_uid),
        )
        .expect("file meta");
    file.write_to_file(path).expect("write DICOM");
}

/// Writes `slices` into `dir` as `slice_NNN.dcm`, in the given order.
pub fn write_series(dir: &Path, slices: &[SynthSlice]) {
    std::fs::create_dir_all(dir).expect("mkdir");
    for (n, s) in slices.iter().enumerate() {
        write_slice(&dir.join(format!("slice_{n:03}.dcm")), s);
    }
}

/// `n` axial slices `spacing` mm apart from z = 0, instance numbers 1..=n, pixels
/// `(row * 10 + col + 100 * k)`.
pub fn axial_stack(n: usize, spacing: f64, rows: u16, columns: u16) -> Vec<SynthSlice> {
    (0..n)
        .map(|k| {
            let mut s = SynthSlice::axial(k as f64 * spacing, rows, columns, |r, c| {
                (r * 10 + c + 100 * k) as u16
            });
            s.instance = k as i32 + 1;
            s
        })
        .collect()
}
