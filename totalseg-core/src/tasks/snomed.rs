//! SNOMED CT codes and display colours of the structures, for DICOM SEG output.
//!
//! `data/snomed_mapping.csv` is TotalSegmentator 2.18's
//! `resources/totalsegmentator_snomed_mapping.csv`, unchanged. Its `dicom_io.py` describes
//! each segment with the category and type codes of the row (not the modifier or region
//! columns) and the row's RGB colour converted by `rgb_to_cielab_dicom`; structures without
//! a row get SNOMED "Tissue" for both codes and a random colour, which
//! [`fallback_color`] replaces with one derived from the name so that runs repeat.

use std::collections::HashMap;
use std::sync::OnceLock;

const CSV: &str = include_str!("data/snomed_mapping.csv");

/// A coded concept: coding scheme, code value and meaning (e.g. `SCT`, `10200004`, `Liver`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    /// Coding Scheme Designator (`SCT`, `DCM`, ...).
    pub scheme: String,
    /// Code Value.
    pub value: String,
    /// Code Meaning.
    pub meaning: String,
}

impl Code {
    fn new(scheme: &str, value: &str, meaning: &str) -> Self {
        Code {
            scheme: scheme.to_string(),
            value: value.to_string(),
            meaning: meaning.to_string(),
        }
    }

    /// SNOMED CT "Tissue" (85756007): what TotalSegmentator uses for structures it has no
    /// code for, as both category and type.
    pub fn tissue() -> Self {
        Code::new("SCT", "85756007", "Tissue")
    }
}

/// How one structure is described in a DICOM SEG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructureCoding {
    /// Segmented Property Category (e.g. "Anatomical Structure").
    pub category: Code,
    /// Segmented Property Type (e.g. "Liver").
    pub property_type: Code,
    /// The recommended display colour, sRGB 0-255.
    pub rgb: [u8; 3],
}

/// The coding of `structure` (a class name such as `liver`), if TotalSegmentator's table has
/// it.
///
/// ```
/// use totalseg_core::tasks::snomed::structure_coding;
/// let liver = structure_coding("liver").expect("liver is coded");
/// assert_eq!(liver.property_type.value, "10200004");
/// assert_eq!(liver.category.meaning, "Anatomical Structure");
/// assert!(structure_coding("not_a_structure").is_none());
/// ```
pub fn structure_coding(structure: &str) -> Option<&'static StructureCoding> {
    static TABLE: OnceLock<HashMap<String, StructureCoding>> = OnceLock::new();
    TABLE.get_or_init(parse_table).get(structure)
}

/// Parses the embedded CSV. Its rows are checked by the tests, so a malformed row here is a
/// build-time mistake; it is skipped rather than panicking at run time.
fn parse_table() -> HashMap<String, StructureCoding> {
    let mut lines = CSV.lines();
    let Some(header) = lines.next() else {
        return HashMap::new();
    };
    let columns = split_csv_line(header);
    let col = |name: &str| columns.iter().position(|c| c == name);
    let (
        Some(structure),
        Some(cat_scheme),
        Some(cat_value),
        Some(cat_meaning),
        Some(type_scheme),
        Some(type_value),
        Some(type_meaning),
        Some(color),
    ) = (
        col("Structure"),
        col("SegmentedPropertyCategoryCodeSequence.CodingSchemeDesignator"),
        col("SegmentedPropertyCategoryCodeSequence.CodeValue"),
        col("SegmentedPropertyCategoryCodeSequence.CodeMeaning"),
        col("SegmentedPropertyTypeCodeSequence.CodingSchemeDesignator"),
        col("SegmentedPropertyTypeCodeSequence.CodeValue"),
        col("SegmentedPropertyTypeCodeSequence.CodeMeaning"),
        col("DicomRGBColor"),
    )
    else {
        return HashMap::new();
    };
    let mut table = HashMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let fields = split_csv_line(line);
        let field = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
        let Some(rgb) = parse_rgb(field(color)) else {
            continue;
        };
        table.insert(
            field(structure).to_string(),
            StructureCoding {
                category: Code::new(field(cat_scheme), field(cat_value), field(cat_meaning)),
                property_type: Code::new(
                    field(type_scheme),
                    field(type_value),
                    field(type_meaning),
                ),
                rgb,
            },
        );
    }
    table
}

/// One CSV line: comma-separated fields, double quotes around fields holding commas.
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    fields.push(current);
    fields
}

/// `"r,g,b"` -> `[r, g, b]`.
fn parse_rgb(text: &str) -> Option<[u8; 3]> {
    let parts: Vec<u8> = text
        .split(',')
        .map(|p| p.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .ok()?;
    <[u8; 3]>::try_from(parts).ok()
}

/// TotalSegmentator's `rgb_to_cielab_dicom`: sRGB (0-255) -> CIE L*a*b* (D65) scaled to the
/// unsigned 16-bit values of DICOM's Recommended Display CIELab Value.
///
/// ```
/// use totalseg_core::tasks::snomed::rgb_to_cielab_dicom;
/// assert_eq!(rgb_to_cielab_dicom([255, 255, 255]), [65535, 32896, 32896]);
/// assert_eq!(rgb_to_cielab_dicom([0, 0, 0]), [0, 32896, 32896]);
/// ```
pub fn rgb_to_cielab_dicom(rgb: [u8; 3]) -> [u16; 3] {
    fn linear(c: u8) -> f64 {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }
    fn f(t: f64) -> f64 {
        let delta: f64 = 6.0 / 29.0;
        if t > delta.powi(3) {
            t.powf(1.0 / 3.0)
        } else {
            t / (3.0 * delta * delta) + 4.0 / 29.0
        }
    }
    let [r, g, b] = rgb.map(linear);
    let x = (r * 0.4124564 + g * 0.3575761 + b * 0.1804375) / 0.95047;
    let y = (r * 0.2126729 + g * 0.7151522 + b * 0.0721750) / 1.00000;
    let z = (r * 0.0193339 + g * 0.1191920 + b * 0.9503041) / 1.08883;
    let l = 116.0 * f(y) - 16.0;
    let a = 500.0 * (f(x) - f(y));
    let b = 200.0 * (f(y) - f(z));
    // Python's round() rounds halves to even, as f64::round_ties_even does.
    let encode = |v: f64| v.round_ties_even().clamp(0.0, 65535.0) as u16;
    [
        encode(l * 65535.0 / 100.0),
        encode((a + 128.0) * 65535.0 / 255.0),
        encode((b + 128.0) * 65535.0 / 255.0),
    ]
}

/// A vivid colour for a structure without a table entry, derived from its name.
///
/// TotalSegmentator draws these at random (`generate_random_color`: hue uniform, saturation
/// and value in 0.7-1.0); here the draw is seeded by the name, so the same structure gets
/// the same colour on every run.
pub fn fallback_color(structure: &str) -> [u8; 3] {
    // FNV-1a: stable across platforms and Rust versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in structure.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let unit = |shift: u32| f64::from(((hash >> shift) & 0xffff) as u16) / 65536.0;
    let hue = unit(0);
    let saturation = 0.7 + unit(16) * 0.3;
    let value = 0.7 + unit(32) * 0.3;
    let sector = (hue * 6.0) as u32;
    let frac = hue * 6.0 - f64::from(sector);
    let p = value * (1.0 - saturation);
    let q = value * (1.0 - frac * saturation);
    let t = value * (1.0 - (1.0 - frac) * saturation);
    let (r, g, b) = match sector {
        0 => (value, t, p),
        1 => (q, value, p),
        2 => (p, value, t),
        3 => (p, q, value),
        4 => (t, p, value),
        _ => (value, p, q),
    };
    [r, g, b].map(|c| (c * 255.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::ClassMap;

    #[test]
    fn every_table_row_parses() {
        let rows = CSV.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
        assert_eq!(rows, 170);
        assert_eq!(parse_table().len(), rows);
    }

    #[test]
    fn quoted_colour_and_left_right_rows() {
        let left = structure_coding("adrenal_gland_left").expect("coded");
        assert_eq!(left.rgb, [241, 172, 34]);
        assert_eq!(
            left.property_type,
            Code::new("SCT", "23451007", "Adrenal gland")
        );
        assert_eq!(
            left.category,
            Code::new("SCT", "123037004", "Anatomical Structure")
        );
    }

    #[test]
    fn every_total_class_is_coded() {
        let total = ClassMap::get("total").expect("total");
        for (_, name) in total.iter() {
            assert!(structure_coding(name).is_some(), "{name}");
        }
    }

    /// Values computed with TotalSegmentator 2.18's `rgb_to_cielab_dicom`.
    #[test]
    fn cielab_matches_the_reference() {
        let cases = [
            ([241, 172, 34], [49171, 36694, 51580]),
            ([216, 108, 54], [37781, 42840, 45319]),
            ([12, 200, 90], [46500, 16237, 43963]),
            ([1, 2, 3], [334, 32865, 32775]),
        ];
        for (rgb, lab) in cases {
            assert_eq!(rgb_to_cielab_dicom(rgb), lab, "{rgb:?}");
        }
    }

    #[test]
    fn fallback_colours_are_vivid_and_repeatable() {
        for name in ["lung_airways", "trapezius_left", "vertebrae"] {
            let c = fallback_color(name);
            assert_eq!(c, fallback_color(name));
            let max = *c.iter().max().expect("three channels");
            let min = *c.iter().min().expect("three channels");
            assert!(max >= 178, "{name}: {c:?} value under 0.7");
            assert!(
                f64::from(max - min) >= 0.69 * f64::from(max),
                "{name}: {c:?} pale"
            );
        }
        assert_ne!(
            fallback_color("trapezius_left"),
            fallback_color("trapezius_right")
        );
    }
}
