//! Morphology and postprocessing parity with scipy.ndimage and TotalSegmentator 2.18's
//! postprocessing.py (fixtures from tools/fixtures/make_core_fixtures.py).

use half::f16;
use ndarray::{Array3, Array4};
use serde_json::Value;
use totalseg_core::morphology::{
    binary_dilation, binary_erosion, binary_fill_holes, label_components, Connectivity,
};
use totalseg_core::postprocess::{
    argmax_channels, extract_skin, keep_largest_blob_multilabel, postprocess_body,
    remove_auxiliary_labels, remove_outside_of_mask, remove_small_blobs_all_classes,
    remove_small_blobs_multilabel, BlobSizeInterval,
};

fn fixture() -> Value {
    let path = format!(
        "{}/../fixtures/core/postprocess.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn dims(v: &Value) -> (usize, usize, usize) {
    let d: Vec<usize> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    (d[0], d[1], d[2])
}

fn mask(v: &Value, shape: (usize, usize, usize)) -> Array3<bool> {
    Array3::from_shape_vec(
        shape,
        v.as_str().unwrap().chars().map(|c| c == '1').collect(),
    )
    .unwrap()
}

fn labels_u8(v: &Value, shape: (usize, usize, usize)) -> Array3<u8> {
    Array3::from_shape_vec(
        shape,
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect(),
    )
    .unwrap()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn spacing(v: &Value) -> [f32; 3] {
    let s: Vec<f32> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    [s[0], s[1], s[2]]
}

#[test]
fn fill_holes_matches_scipy() {
    let f = fixture();
    let shape = dims(&f["mask_shape"]);
    let m = mask(&f["mask"], shape);
    let expected = mask(&f["fill_holes"], shape);
    assert_ne!(m, expected, "fixture must contain a hole");
    assert_eq!(binary_fill_holes(m.view()), expected);
}

#[test]
fn labels_match_scipy_for_all_connectivities() {
    let f = fixture();
    let shape = dims(&f["mask_shape"]);
    let m = mask(&f["mask"], shape);
    for (key, conn) in [
        ("1", Connectivity::Faces),
        ("2", Connectivity::FacesEdges),
        ("3", Connectivity::Full),
    ] {
        let c = label_components(m.view(), conn);
        let expected = &f["labels"][key];
        assert_eq!(
            c.count as u64,
            expected["count"].as_u64().unwrap(),
            "connectivity {key}"
        );
        assert!(c.count > 3);
        assert_eq!(
            c.labels.iter().copied().collect::<Vec<_>>(),
            u32s(&expected["labels"]),
            "connectivity {key}"
        );
    }
    // scipy numbers components in logical C order even for Fortran-ordered input
    // (TotalSegmentator's nibabel arrays).
    assert_eq!(
        u32s(&f["labels_fortran"]),
        u32s(&f["labels"]["1"]["labels"])
    );
}

#[test]
fn dilation_and_erosion_match_scipy() {
    let f = fixture();
    let shape = dims(&f["mask_shape"]);
    let m = mask(&f["mask"], shape);
    assert_eq!(binary_dilation(m.view(), 1), mask(&f["dilation1"], shape));
    assert_eq!(binary_dilation(m.view(), 2), mask(&f["dilation2"], shape));
    assert_eq!(binary_erosion(m.view(), 3), mask(&f["erosion3"], shape));
    let small_shape = dims(&f["small_shape"]);
    let small = mask(&f["small"], small_shape);
    let until_stable = mask(&f["dilation_until_stable"], small_shape);
    assert_eq!(binary_dilation(small.view(), 0), until_stable);
}

#[test]
fn keep_largest_blob_multilabel_matches_totalsegmentator() {
    let f = fixture();
    let shape = dims(&f["seg_shape"]);
    let mut seg = labels_u8(&f["seg"], shape);
    let expected = labels_u8(&f["keep_largest_a_c"], shape);
    assert_ne!(seg, expected);
    keep_largest_blob_multilabel(&mut seg, &[1, 3]);
    assert_eq!(seg, expected);
}

#[test]
fn remove_small_blobs_matches_totalsegmentator() {
    let f = fixture();
    let shape = dims(&f["seg_shape"]);
    let spacing = spacing(&f["spacing"]);
    let interval = BlobSizeInterval::from_min_volume_mm3(40.0, spacing);
    let threshold =
        f32::from_bits(u32::from_str_radix(f["threshold_40mm3"].as_str().unwrap(), 16).unwrap());
    assert_eq!(interval.lower_exclusive, f64::from(threshold));
    let expected = labels_u8(&f["remove_small_40mm3"], shape);
    let mut seg = labels_u8(&f["seg"], shape);
    assert_ne!(seg, expected);
    remove_small_blobs_multilabel(&mut seg, &[1, 2, 3, 4], interval);
    assert_eq!(seg, expected);
    let mut seg = labels_u8(&f["seg"], shape);
    remove_small_blobs_all_classes(&mut seg, &[1, 2, 3, 4], 40.0, spacing);
    assert_eq!(seg, expected);
}

#[test]
fn body_postprocessing_matches_totalsegmentator() {
    let f = fixture();
    let shape = dims(&f["seg_shape"]);
    let mut seg = labels_u8(&f["body_input"], shape);
    let expected = labels_u8(&f["body_expected"], shape);
    assert_ne!(seg, expected);
    postprocess_body(&mut seg, spacing(&f["body_spacing"]));
    assert_eq!(seg, expected);
}

#[test]
fn extract_skin_matches_totalsegmentator() {
    let f = fixture();
    let shape = dims(&f["seg_shape"]);
    let seg = labels_u8(&f["seg"], shape);
    let ct = Array3::from_shape_vec(
        shape,
        f["ct"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect(),
    )
    .unwrap();
    let expected = mask(&f["skin"], shape);
    assert!(expected.iter().any(|&v| v));
    let skin = extract_skin(ct.view(), seg.mapv(|v| v > 0).view()).unwrap();
    assert_eq!(skin, expected);
}

#[test]
fn argmax_matches_torch_including_ties() {
    let f = fixture();
    let d: Vec<usize> = f["logits_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let hex = f["logits_f16"].as_str().unwrap();
    let values: Vec<f16> = (0..hex.len() / 4)
        .map(|i| f16::from_bits(u16::from_str_radix(&hex[4 * i..4 * i + 4], 16).unwrap()))
        .collect();
    let logits = Array4::from_shape_vec((d[0], d[1], d[2], d[3]), values).unwrap();
    let expected = labels_u8(&f["argmax"], (d[1], d[2], d[3]));
    assert_eq!(argmax_channels(logits.view()).unwrap(), expected);
    let widened = logits.mapv(f16::to_f32);
    assert_eq!(argmax_channels(widened.view()).unwrap(), expected);
}

#[test]
fn auxiliary_labels_and_outside_mask() {
    let mut seg = Array3::from_shape_fn((3, 3, 3), |(a, b, c)| ((a + b + c) % 5) as u8);
    remove_auxiliary_labels(&mut seg, &[2, 4]);
    assert!(seg.iter().all(|&v| v != 2 && v != 4));
    assert!(seg.iter().any(|&v| v == 3));

    let mut seg = Array3::from_elem((1, 1, 7), 5u8);
    let mut m = Array3::from_elem((1, 1, 7), false);
    m[[0, 0, 3]] = true;
    remove_outside_of_mask(&mut seg, m.view(), 1).unwrap();
    assert_eq!(
        seg.iter().copied().collect::<Vec<_>>(),
        vec![0, 0, 5, 5, 5, 0, 0]
    );
    assert!(
        remove_outside_of_mask(&mut seg, Array3::from_elem((1, 1, 6), true).view(), 1).is_err()
    );
}

#[test]
fn keep_largest_blob_tie_keeps_first_in_raster_order() {
    let mut seg = Array3::<u8>::zeros((1, 3, 5));
    seg[[0, 2, 0]] = 1;
    seg[[0, 2, 1]] = 1;
    seg[[0, 0, 3]] = 1;
    seg[[0, 0, 4]] = 1;
    keep_largest_blob_multilabel(&mut seg, &[1]);
    assert_eq!(seg[[0, 0, 3]], 1);
    assert_eq!(seg[[0, 2, 0]], 0);
}
