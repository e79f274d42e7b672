//! One DICOM file's attributes that matter for building a volume, and its pixel values.

use std::io::Read;
use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_pixeldata::PixelDecoder;

use super::error::DicomErrorKind;

/// The DICOM file marker: `DICM` after a 128-byte preamble (what dicom2nifti checks).
pub fn has_dicom_marker(path: &Path) -> Result<bool, DicomErrorKind> {
    let mut file = std::fs::File::open(path).map_err(|source| DicomErrorKind::Io {
        action: format!("opening {}", path.display()),
        source,
    })?;
    let mut head = [0u8; 132];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(DicomErrorKind::Io {
                    action: format!("reading {}", path.display()),
                    source,
                })
            }
        }
    }
    Ok(&head[128..132] == b"DICM")
}

/// The attributes of one image slice (everything but the pixels).
#[derive(Debug, Clone)]
pub struct SliceHeader {
    /// The file.
    pub file: PathBuf,
    /// SeriesInstanceUID.
    pub series_uid: String,
    /// ImagePositionPatient (mm, LPS).
    pub position: [f64; 3],
    /// ImageOrientationPatient: row direction, then column direction.
    pub orientation: [f64; 6],
    /// PixelSpacing `(row spacing, column spacing)`, if present.
    pub pixel_spacing: Option<[f64; 2]>,
    /// SliceThickness, if present.
    pub slice_thickness: Option<f64>,
    /// Modality (e.g. "CT").
    pub modality: String,
    /// ImageType values.
    pub image_type: Vec<String>,
    /// Transfer syntax UID.
    pub transfer_syntax: String,
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub columns: u32,
    /// BitsAllocated.
    pub bits_allocated: u16,
    /// BitsStored.
    pub bits_stored: u16,
    /// PixelRepresentation (1 = signed).
    pub signed: bool,
    /// SamplesPerPixel.
    pub samples_per_pixel: u16,
    /// PhotometricInterpretation.
    pub photometric: String,
    /// `(RescaleSlope, RescaleIntercept)` when both are present.
    pub rescale: Option<(f64, f64)>,
    /// A Modality LUT Sequence is present.
    pub modality_lut_sequence: bool,
    /// Every attribute of the file up to the pixel data, for outputs that copy the
    /// series' patient and study attributes (DICOM SEG, RT-STRUCT).
    pub attributes: InMemDicomObject,
}

/// What reading a file's header gave.
pub enum HeaderOutcome {
    /// An image slice.
    Slice(Box<SliceHeader>),
    /// A DICOM file that is not an imaging slice (dicom2nifti's `is_valid_imaging_dicom`
    /// is false: no SeriesInstanceUID, InstanceNumber, orientation or position).
    NotImaging,
}

/// Reads the attributes of `path` (stopping before the pixel data).
pub fn read_slice_header(path: &Path) -> Result<HeaderOutcome, DicomErrorKind> {
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| DicomErrorKind::Unreadable {
            file: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let file = path.to_path_buf();
    let bad = |attribute: &'static str, detail: Option<String>| DicomErrorKind::BadAttribute {
        file: file.clone(),
        attribute,
        detail,
    };
    // A segmentation stored with its series (e.g. our own `-ot dicom_seg` output written into
    // the series folder) is not an image of the series. dicom2nifti does not skip it and
    // fails on its missing ImagePositionPatient; skipping it lets such a folder be read again.
    if text(&obj, tags::MODALITY).as_deref() == Some("SEG") {
        return Ok(HeaderOutcome::NotImaging);
    }
    let frames = match obj.element_opt(tags::NUMBER_OF_FRAMES).ok().flatten() {
        Some(e) => e
            .to_int::<i64>()
            .map_err(|e| bad("NumberOfFrames", Some(e.to_string())))?,
        None => 1,
    };
    // dicom2nifti asks only that the element is there (anonymised series carry it empty).
    let series_uid = obj
        .element_opt(tags::SERIES_INSTANCE_UID)
        .ok()
        .flatten()
        .map(|_| text(&obj, tags::SERIES_INSTANCE_UID).unwrap_or_default());
    let has_instance = obj
        .element_opt(tags::INSTANCE_NUMBER)
        .ok()
        .flatten()
        .is_some();
    let orientation = floats(&obj, tags::IMAGE_ORIENTATION_PATIENT);
    let position = floats(&obj, tags::IMAGE_POSITION_PATIENT);
    if frames > 1 {
        return Err(DicomErrorKind::Unsupported {
            file,
            what: format!("a multi-frame image ({frames} frames)"),
        });
    }
    let (Some(series_uid), true, Some(orientation), Some(position)) =
        (series_uid, has_instance, orientation, position)
    else {
        return Ok(HeaderOutcome::NotImaging);
    };
    if orientation.len() < 6 || position.len() < 3 {
        return Ok(HeaderOutcome::NotImaging);
    }
    let orientation = [
        orientation[0],
        orientation[1],
        orientation[2],
        orientation[3],
        orientation[4],
        orientation[5],
    ];
    let position = [position[0], position[1], position[2]];
    if orientation.iter().chain(&position).any(|v| !v.is_finite()) {
        return Err(bad(
            "ImageOrientationPatient/ImagePositionPatient",
            Some("not finite".into()),
        ));
    }
    let pixel_spacing = match floats(&obj, tags::PIXEL_SPACING) {
        Some(v)
            if v.len() >= 2 && v[0].is_finite() && v[1].is_finite() && v[0] > 0.0 && v[1] > 0.0 =>
        {
            Some([v[0], v[1]])
        }
        Some(v) => return Err(bad("PixelSpacing", Some(format!("{v:?}")))),
        None => None,
    };
    let int = |tag, name: &'static str| -> Result<i64, DicomErrorKind> {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .ok_or_else(|| bad(name, None))?
            .to_int::<i64>()
            .map_err(|e| bad(name, Some(e.to_string())))
    };
    let small = |v: i64, name: &'static str| -> Result<u16, DicomErrorKind> {
        u16::try_from(v).map_err(|_| bad(name, Some(format!("{v}"))))
    };
    let rows = small(int(tags::ROWS, "Rows")?, "Rows")?;
    let columns = small(int(tags::COLUMNS, "Columns")?, "Columns")?;
    let bits_allocated = small(int(tags::BITS_ALLOCATED, "BitsAllocated")?, "BitsAllocated")?;
    let bits_stored = match obj.element_opt(tags::BITS_STORED).ok().flatten() {
        Some(_) => small(int(tags::BITS_STORED, "BitsStored")?, "BitsStored")?,
        None => bits_allocated,
    };
    let signed = int(tags::PIXEL_REPRESENTATION, "PixelRepresentation")? == 1;
    let samples_per_pixel = match obj.element_opt(tags::SAMPLES_PER_PIXEL).ok().flatten() {
        Some(_) => small(
            int(tags::SAMPLES_PER_PIXEL, "SamplesPerPixel")?,
            "SamplesPerPixel",
        )?,
        None => 1,
    };
    let slope = scalar(&obj, tags::RESCALE_SLOPE);
    let intercept = scalar(&obj, tags::RESCALE_INTERCEPT);
    let rescale = match (slope, intercept) {
        (Some(s), Some(i)) if s.is_finite() && i.is_finite() => Some((s, i)),
        (Some(s), Some(i)) => {
            return Err(bad(
                "RescaleSlope/RescaleIntercept",
                Some(format!("{s}, {i}")),
            ))
        }
        _ => None,
    };
    Ok(HeaderOutcome::Slice(Box::new(SliceHeader {
        file: file.clone(),
        series_uid,
        position,
        orientation,
        pixel_spacing,
        slice_thickness: scalar(&obj, tags::SLICE_THICKNESS),
        modality: text(&obj, tags::MODALITY).unwrap_or_default(),
        image_type: obj
            .element_opt(tags::IMAGE_TYPE)
            .ok()
            .flatten()
            .and_then(|e| e.to_multi_str().ok().map(|v| v.to_vec()))
            .unwrap_or_default()
            .into_iter()
            .map(|s| s.trim().to_string())
            .collect(),
        transfer_syntax: obj
            .meta()
            .transfer_syntax()
            .trim_end_matches(['\0', ' '])
            .to_string(),
        rows: u32::from(rows),
        columns: u32::from(columns),
        bits_allocated,
        bits_stored,
        signed,
        samples_per_pixel,
        photometric: text(&obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default(),
        rescale,
        modality_lut_sequence: obj
            .element_opt(tags::MODALITY_LUT_SEQUENCE)
            .ok()
            .flatten()
            .is_some(),
        // Last: the fields above are read from `obj` before it moves here.
        attributes: obj.into_inner(),
    })))
}

/// The slice's modality values (pydicom's `apply_modality_lut(pixel_array)`): stored values
/// (sign-extended from BitsStored for signed data), times RescaleSlope plus
/// RescaleIntercept in float64 when both are present; row-major (`rows x columns`).
pub fn read_slice_values(header: &SliceHeader) -> Result<Vec<f64>, DicomErrorKind> {
    let file = &header.file;
    let pixel_error = |message: String| DicomErrorKind::PixelData {
        file: file.clone(),
        message,
    };
    let obj: DefaultDicomObject =
        dicom_object::open_file(file).map_err(|e| DicomErrorKind::Unreadable {
            file: file.clone(),
            message: e.to_string(),
        })?;
    if obj.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
        return Err(pixel_error("the file has no PixelData".into()));
    }
    let decoded = obj
        .decode_pixel_data()
        .map_err(|e| pixel_error(e.to_string()))?;
    let bytes = decoded.data();
    let n = header.rows as usize * header.columns as usize;
    let width = usize::from(header.bits_allocated / 8);
    if bytes.len() < n * width {
        return Err(pixel_error(format!(
            "{} bytes of pixel data, {} x {} pixels of {} bits need {}",
            bytes.len(),
            header.rows,
            header.columns,
            header.bits_allocated,
            n * width
        )));
    }
    let stored = header.bits_stored.clamp(1, header.bits_allocated);
    let raw = |i: usize| -> i64 {
        let b = &bytes[i * width..(i + 1) * width];
        match width {
            1 => i64::from(b[0]),
            2 => i64::from(u16::from_le_bytes([b[0], b[1]])),
            _ => i64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        }
    };
    let value = |i: usize| -> i64 {
        let v = raw(i);
        if header.signed {
            // Sign-extend from the stored bits, as pydicom's pixel_array does.
            let mask = (1i64 << stored) - 1;
            let v = v & mask;
            if v >> (stored - 1) & 1 == 1 {
                v - (1i64 << stored)
            } else {
                v
            }
        } else {
            v
        }
    };
    Ok(match header.rescale {
        // pydicom: arr.astype(float64) * slope, then += intercept.
        Some((slope, intercept)) => (0..n)
            .map(|i| value(i) as f64 * slope + intercept)
            .collect(),
        None => (0..n).map(|i| value(i) as f64).collect(),
    })
}

fn text(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<String> {
    let e = obj.element_opt(tag).ok().flatten()?;
    let s = e.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

fn floats(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<Vec<f64>> {
    obj.element_opt(tag).ok().flatten()?.to_multi_float64().ok()
}

fn scalar(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<f64> {
    floats(obj, tag).and_then(|v| v.first().copied())
}
