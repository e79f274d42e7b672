//! DICOM SEG and RT-STRUCT geometry in every slice orientation, checked without the writers'
//! own maths: the label map is a threshold of the CT values read from the series, so each
//! frame of the SEG must be the same threshold of its source slice's stored pixels, and each
//! RT-STRUCT point must lie on a foreground pixel of the slice it names, at that pixel's
//! patient position.
//! (TotalSegmentator's writer handles axial, and some coronal and sagittal series, by fixed
//! transposes; the parity with it on a real series is in the root crate's tests.)

#[allow(dead_code)] // the helpers serve several test files
mod dicom_common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dicom_common::{write_series, SynthSlice};
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use ndarray::Array3;
use totalseg_io::dicom::read_dicom_series;
use totalseg_io::dicom::rtstruct::{write_rtstruct, RoiClass, RtStructCreator};
use totalseg_io::dicom::seg::{write_dicom_seg, CodedConcept, SegCreator, SegmentClass};
use totalseg_io::nifti::Volume;

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

/// The first item of sequence `tag` of `object`.
fn first_item(object: &InMemDicomObject, tag: Tag) -> &InMemDicomObject {
    &object
        .element(tag)
        .expect("sequence")
        .items()
        .expect("items")[0]
}

/// The synthetic slice an image reference names: dicom_common names SOP instances by
/// instance number, and slice k is instance k + 1.
fn referenced_slice(reference: &InMemDicomObject) -> usize {
    let uid = reference
        .element(tags::REFERENCED_SOP_INSTANCE_UID)
        .expect("uid")
        .to_str()
        .expect("text");
    let instance: usize = uid
        .trim_end_matches('\0')
        .rsplit('.')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("instance number");
    instance - 1
}

/// A synthetic series written to `dir/ct`, read back, and its label map: the threshold of
/// the stored values (the slices rescale by (1, -1024), undone here).
fn thresholded_series(
    dir: &Path,
    iop: [f64; 6],
    ascending: bool,
    shuffle: bool,
) -> (PathBuf, Volume, Array3<u8>) {
    let ct_dir = dir.join("ct");
    series(&ct_dir, iop, ascending, shuffle);
    let ct = read_dicom_series(&ct_dir).unwrap_or_else(|e| panic!("{iop:?}: {e}"));
    let labels = ct.data.mapv(|hu| label_of(hu + 1024.0));
    (ct_dir, ct, labels)
}

fn check_orientation(name: &str, iop: [f64; 6], ascending: bool) {
    let dir = tempfile::tempdir().expect("tmp");
    let (ct_dir, ct, labels) = thresholded_series(dir.path(), iop, ascending, true);
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
        let derivation = first_item(frame, tags::DERIVATION_IMAGE_SEQUENCE);
        let k = referenced_slice(first_item(derivation, tags::SOURCE_IMAGE_SEQUENCE));
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

/// The slice orientations the geometry tests cover: `(name, IOP, stacked ascending)`.
fn orientations() -> [(&'static str, [f64; 6], bool); 6] {
    let s = 0.5f64.sqrt();
    [
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
    ]
}

#[test]
fn frames_are_their_source_slices_in_every_orientation() {
    for (name, iop, ascending) in orientations() {
        check_orientation(name, iop, ascending);
    }
}

#[test]
fn a_label_map_off_the_series_grid_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let (ct_dir, ct, labels) =
        thresholded_series(dir.path(), [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], true, false);
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

/// Every foreground pixel as its own one-point contour: a contour finder whose points the
/// test can check one by one.
fn pixel_contours(mask: ndarray::ArrayView2<bool>) -> Vec<Vec<[i32; 2]>> {
    mask.indexed_iter()
        .filter(|(_, &on)| on)
        .map(|((r, c), _)| vec![[c as i32, r as i32]])
        .collect()
}

fn check_rtstruct_orientation(name: &str, iop: [f64; 6], ascending: bool) {
    let dir = tempfile::tempdir().expect("tmp");
    let (ct_dir, ct, labels) = thresholded_series(dir.path(), iop, ascending, true);
    let classes = [
        RoiClass {
            label: 1,
            name: "low".into(),
            color: [1, 2, 3],
        },
        RoiClass {
            label: 2,
            name: "absent".into(),
            color: [4, 5, 6],
        },
        RoiClass {
            label: 3,
            name: "high".into(),
            color: [7, 8, 9],
        },
    ];
    let creator = RtStructCreator {
        manufacturer: "test".into(),
        model_name: "test".into(),
    };
    let written = write_rtstruct(
        &dir.path().join("rt.dcm"),
        labels.view(),
        &ct.affine,
        &ct_dir,
        &classes,
        &pixel_contours,
        &creator,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(written.rois, 2, "{name}");
    let rt = OpenFileOptions::new()
        .open_file(&written.path)
        .expect("reads back");
    let rois = rt
        .element(tags::ROI_CONTOUR_SEQUENCE)
        .expect("rois")
        .items()
        .expect("items")
        .to_vec();
    let roi_labels = [1u8, 3];
    let normal = cross([iop[0], iop[1], iop[2]], [iop[3], iop[4], iop[5]]);
    let step = if ascending { 2.5 } else { -2.5 };
    let mut points = 0;
    for (roi, label) in rois.iter().zip(roi_labels) {
        for contour in roi
            .element(tags::CONTOUR_SEQUENCE)
            .expect("contours")
            .items()
            .expect("items")
        {
            let k = referenced_slice(first_item(contour, tags::CONTOUR_IMAGE_SEQUENCE));
            let data: Vec<f64> = contour
                .element(tags::CONTOUR_DATA)
                .expect("data")
                .to_multi_float64()
                .expect("numbers");
            assert_eq!(data.len(), 3, "{name}: one point per contour here");
            let p = [data[0], data[1], data[2]];
            // Which pixel of slice k is at p: solve p = ipp_k + x * 0.75 * row + y * 0.5 * col.
            let ipp: [f64; 3] =
                std::array::from_fn(|a| [-30.0, 12.0, 40.0][a] + k as f64 * step * normal[a]);
            let d: [f64; 3] = std::array::from_fn(|a| p[a] - ipp[a]);
            let x = (d[0] * iop[0] + d[1] * iop[1] + d[2] * iop[2]) / 0.75;
            let y = (d[0] * iop[3] + d[1] * iop[4] + d[2] * iop[5]) / 0.5;
            let off_plane = d[0] * normal[0] + d[1] * normal[1] + d[2] * normal[2];
            assert!(
                off_plane.abs() < 1e-3,
                "{name}: point {p:?} is {off_plane} mm off slice {k}"
            );
            let (xr, yr) = (x.round(), y.round());
            assert!(
                (x - xr).abs() < 1e-3 && (y - yr).abs() < 1e-3,
                "{name}: point {p:?} is not on a pixel"
            );
            let stored_value = stored(yr as usize, xr as usize, k);
            assert_eq!(
                label_of(f32::from(stored_value)),
                label,
                "{name}: pixel ({yr}, {xr}) of slice {k}"
            );
            points += 1;
        }
    }
    // Every labelled pixel of every slice has its point.
    let expected = (0..SLICES)
        .flat_map(|k| {
            (0..usize::from(ROWS))
                .flat_map(move |r| (0..usize::from(COLUMNS)).map(move |c| (r, c, k)))
        })
        .filter(|&(r, c, k)| label_of(f32::from(stored(r, c, k))) != 0)
        .count();
    assert_eq!(points, expected, "{name}");
}

#[test]
fn rtstruct_points_are_their_source_pixels_in_every_orientation() {
    for (name, iop, ascending) in orientations() {
        check_rtstruct_orientation(name, iop, ascending);
    }
}

/// A SEG written into its own series folder (a second run on the same folder) is not taken
/// for a slice: the series reads back the same.
#[test]
fn a_seg_inside_the_series_folder_is_skipped_when_reading() {
    let dir = tempfile::tempdir().expect("tmp");
    let (ct_dir, ct, labels) =
        thresholded_series(dir.path(), [1.0, 0.0, 0.0, 0.0, 1.0, 0.0], true, false);
    write_dicom_seg(
        &ct_dir.join("seg.dcm"),
        labels.view(),
        &ct.affine,
        &ct_dir,
        &[class(1, "low"), class(3, "high")],
        &creator(),
    )
    .expect("SEG into the folder");
    let again = read_dicom_series(&ct_dir).expect("the folder still reads");
    assert_eq!(again.data, ct.data);
    assert_eq!(again.affine, ct.affine);
}
