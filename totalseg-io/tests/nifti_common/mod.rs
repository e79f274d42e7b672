//! Helpers shared by the NIfTI integration tests.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::PathBuf;

use totalseg_io::nifti::NiftiErrorKind;

/// The committed fixtures made by tools/fixtures/make_nifti_fixtures.py.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/nifti"))
}

/// The shared TotalSegmentator example files (never copied into the repository).
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/totalseg-examples/"
    ))
    .join(name)
}

pub fn expected_json() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture_dir().join("expected.json")).expect("fixture JSON");
    serde_json::from_str(&text).expect("valid JSON")
}

pub fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A JSON number, or "nan"/"inf"/"-inf".
pub fn json_f64(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::String(s) => match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            other => panic!("unexpected number string {other}"),
        },
        other => other.as_f64().expect("number"),
    }
}

pub fn json_affine(v: &serde_json::Value) -> [[f64; 4]; 4] {
    let mut out = [[0.0; 4]; 4];
    for (r, row) in v.as_array().expect("rows").iter().enumerate() {
        for (c, x) in row.as_array().expect("cols").iter().enumerate() {
            out[r][c] = json_f64(x);
        }
    }
    out
}

/// The variant name of an error kind, to compare with the fixture's expectation.
pub fn kind_name(kind: &NiftiErrorKind) -> &'static str {
    match kind {
        NiftiErrorKind::Io { .. } => "Io",
        NiftiErrorKind::Gzip(_) => "Gzip",
        NiftiErrorKind::TooShortForHeader { .. } => "TooShortForHeader",
        NiftiErrorKind::BadMagic { .. } => "BadMagic",
        NiftiErrorKind::Nifti2Unsupported => "Nifti2Unsupported",
        NiftiErrorKind::PairUnsupported => "PairUnsupported",
        NiftiErrorKind::UnsupportedDatatype { .. } => "UnsupportedDatatype",
        NiftiErrorKind::UnsupportedDimensionality { .. } => "UnsupportedDimensionality",
        NiftiErrorKind::InvalidDim { .. } => "InvalidDim",
        NiftiErrorKind::InvalidVoxOffset(_) => "InvalidVoxOffset",
        NiftiErrorKind::TruncatedData { .. } => "TruncatedData",
        NiftiErrorKind::TooLarge { .. } => "TooLarge",
        NiftiErrorKind::InvalidSpacing(_) => "InvalidSpacing",
        NiftiErrorKind::InvalidScaling { .. } => "InvalidScaling",
        NiftiErrorKind::InvalidAffine { .. } => "InvalidAffine",
        NiftiErrorKind::InvalidQuaternion { .. } => "InvalidQuaternion",
        NiftiErrorKind::ShapeMismatch { .. } => "ShapeMismatch",
        NiftiErrorKind::ShapeNotRepresentable(_) => "ShapeNotRepresentable",
        NiftiErrorKind::BadLabelExtension(_) => "BadLabelExtension",
        NiftiErrorKind::NotALabelMap { .. } => "NotALabelMap",
    }
}

/// The fixture label grid: (i + 2j + 3k) % 4.
pub fn grid_labels(shape: [usize; 3]) -> ndarray::Array3<u8> {
    ndarray::Array3::from_shape_fn((shape[0], shape[1], shape[2]), |(i, j, k)| {
        ((i + 2 * j + 3 * k) % 4) as u8
    })
}

pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}
