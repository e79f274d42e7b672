//! DICOM SEG geometry in every slice orientation, checked without the writer's own maths:
//! the label map is a threshold of the CT values read from the series, so each frame of the
//! SEG must be the same threshold of its source slice's stored pixels, pixel for pixel.
//! (TotalSegmentator's writer handles axial, and some coronal and sagittal series, by fixed
//! transposes; the parity with it on a real series is in the root crate's tests.)

#[allow(dead_code)] // the helpers serve several test files
#[allow(dead_code)] // the helpers serve several test files
mod dicom_common;

use std::collections::HashMap;
use std::path::Path;

use dicom_common::{write_series, SynthSlice};
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use totalseg_io::dicom::read_dicom_series;
use totalseg_io::dicom::seg::{write_dicom_seg, CodedConcept, SegCreator, SegmentClass};

const ROWS: u16 = 5;
const COLUMNS: u16 = 7;
const SLICES: usize = 6;

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// Stored value of pixel (row, column) of slice `k`: distinct enough that thresholds cut
/// shapes that differ between rows, columns and slices.
fn stored(row: usize, column: usize, k: usize) -> u16 {
    ((row * 37 + column * 11 + k * 53) % 100) as u16
}

/// A series of `SLICES` slices with orientation `iop`, stacked along `±(row x column)`.
fn series(dir: &Path, iop: [f64; 6], ascending: bool, shuffle: bool) {
    let normal = cross([iop[0], iop[1], iop[2]], [iop[3], iop[4], iop[5]]);
    let step = if ascending { 2.5 } else { -2.5 };
    let mut slices: Vec<SynthSlice> = (0..SLICES)
        .map(|k| {
            let mut s = SynthSlice::axial(0.0, ROWS, COLUMNS, |r, c| stored(r, c, k));
            s.orientation = iop;
            s.position =
                std::array::from_fn(|a| [-30.0, 12.0, 40.0][a] + k as f64 * step * normal[a]);
            s.instance = k as i32 + 1;
            s
        })
        .collect();
    if shuffle {
        slices.swap(0, 4);
        slices.swap(2, 5);
    }
    write_series(dir, &slices);
}

fn class(label: u8, name: &str) -> SegmentClass {
    let tissue = CodedConcept {
        scheme: "SCT".into(),
        value: "85756007".into(),
        meaning: "Tissue".into(),
    };
    SegmentClass {
        label,
        name: name.into(),
        category: tissue.clone(),
        property_type: tissue,
        cielab: [1, 2, 3],
    }
}

fn creator() -> SegCreator {
    SegCreator {
        manufacturer: "test".into(),
        software_versions: "1".into(),
        algorithm_name: "threshold".into(),
        algorithm_version: "1".into(),
    }
}

/// Label of a stored value: 3 above 70, 1 from 30 to 70, else background (label 2 unused).
fn label_of(stored: f32) -> u8 {
    match stored {
        v if v > 70.0 => 3,
        v if v >= 30.0 => 1,
        _ => 0,
    }
}

fn check_orientation(name: &str, iop: [f64; 6], ascending: bool) {
    let dir = tempfile::tempdir().expect("tmp");
    let ct_dir = dir.path().join("ct");
    series(&ct_dir, iop, ascending, true);
    let ct = read_dicom_series(&ct_dir).unwrap_or_else(|e| panic!("{name}: {e}"));
    // The synthetic slices rescale by (1, -1024): undo it to threshold the stored values.
    let labels = ct.data.mapv(|hu| label_of(hu + 1024.0));
    let out = dir.path().join("seg.dcm");
    let classes = [class(1, "low"), class(2, "absent"), class(3, "high")];
    let written = write_dicom_seg(
        &out,
        labels.view(),
        &ct.affine,
        &ct_dir,
        &classes,
        &creator(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(written.segments, 2, "{name}: the absent class is left out");

    let seg = OpenFileOptions::new()
        .open_file(&out)
        .expect("SEG reads back");
    let bytes = seg
        .element(tags::PIXEL_DATA)
        .expect("pixels")
        .to_bytes()
        .expect("bytes");
    let frames = seg
        .element(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .expect("frames")
        .items()
        .expect("items")
        .to_vec();
    assert_eq!(frames.len(), written.frames);
    let segment_labels: HashMap<u16, u8> = [(1, 1), (2, 3)].into();
    let pixels = usize::from(ROWS) * usize::from(COLUMNS);
    let mut seen = HashMap::new();
    for (f, frame) in frames.iter().enumerate() {
        let text = |seq, tag| {
            frame.element(seq).expect("seq").items().expect("items")[0]
                .element(tag)
                .expect("element")
                .to_str()
                .expect("text")
                .trim_end_matches(['\0', ' '])
                .to_string()
        };
        let segment: u16 = text(
            tags::SEGMENT_IDENTIFICATION_SEQUENCE,
            tags::REFERENCED_SEGMENT_NUMBER,
        )
        .parse()
        .expect("number");
        let source = frame
            .element(tags::DERIVATION_IMAGE_SEQUENCE)
            .expect("derivation")
            .items()
            .expect("items")[0]
            .element(tags::SOURCE_IMAGE_SEQUENCE)
            .expect("source")
            .items()
            .expect("items")[0]
            .element(tags::REFERENCED_SOP_INSTANCE_UID)
            .expect("uid")
            .to_str()
            .expect("text")
            .trim_end_matches('\0')
            .to_string();
        // dicom_common names SOP instances by instance number: slice k is instance k + 1.
        let k: usize = source
            .rsplit('.')
            .next()
            .expect("suffix")
            .parse::<usize>()
            .expect("number")
            - 1;
        let label = segment_labels[&segment];
        for p in 0..pixels {
            let bit = f * pixels + p;
            let on = bytes[bit / 8] >> (bit % 8) & 1 == 1;
            let (row, column) = (p / usize::from(COLUMNS), p % usize::from(COLUMNS));
            let want = label_of(f32::from(stored(row, column, k))) == label;
            assert_eq!(
                on, want,
                "{name}: frame {f} (slice {k}, segment {segment}) pixel ({row}, {column})"
            );
        }
        *seen.entry(segment).or_insert(0) += 1;
    }
    // Every slice holding a label has its frame.
    for (segment, label) in segment_labels {
        let expected = (0..SLICES)
            .filter(|&k| {
                (0..usize::from(ROWS)).any(|r| {
                    (0..usize::from(COLUMNS)).any(|c| label_of(f32::from(stored(r, c, k))) == label)
                })
            })
            .count();
        assert_eq!(
            seen.get(&segment).copied().unwrap_or(0),
            expected,
            "{name}: segment {segment}"
        );
    }
}

#[test]
fn frames_are_their_source_slices_in_every_orientation() {
    let s = 0.5f64.sqrt();
    let cases: [(&str, [f64; 6], bool); 6] = [
        ("axial", [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], true),
        (
            "axial_flipped_descending",
            [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0],
            false,
        ),
        ("coronal", [1.0, 0.0, 0.0, 0.0, 0.0, -1.0], true),
        (
            "coronal_descending",
            [-1.0, 0.0, 0.0, 0.0, 0.0, -1.0],
            false,
        ),
        ("sagittal", [0.0, 1.0, 0.0, 0.0, 0.0, -1.0], true),
        ("oblique_axial", [s, s, 0.0, -s, s, 0.0], true),
    ];
    for (name, iop, ascending) in cases {
        check_orientation(name, iop, ascending);
    }
}

#[test]
fn a_label_map_off_the_series_grid_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let ct_dir = dir.path().join("ct");
    series(&ct_dir, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], true, false);
    let ct = read_dicom_series(&ct_dir).expect("series");
    let labels = ct.data.mapv(|hu| label_of(hu + 1024.0));
    let out = dir.path().join("seg.dcm");
    // A label map of another shape (e.g. the model's grid with --save_lowres).
    let small = labels.slice(ndarray::s![..3, .., ..]).to_owned();
    let err = write_dicom_seg(
        &out,
        small.view(),
        &ct.affine,
        &ct_dir,
        &[class(1, "low")],
        &creator(),
    )
    .expect_err("smaller than the series");
    assert!(
        err.to_string().contains("outside the segmentation"),
        "{err}"
    );
    assert!(!out.exists());
}
