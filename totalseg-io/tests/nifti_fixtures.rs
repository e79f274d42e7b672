//! Parity with nibabel on the committed fixtures (tools/fixtures/make_nifti_fixtures.py):
//! data, affine, zooms and header bytes as nibabel loads them; the files nibabel writes for
//! TotalSegmentator's outputs and for new images; the errors for bad files.

mod nifti_common;

use std::collections::BTreeMap;

use ndarray::Array3;
use nifti_common::*;
use totalseg_io::nifti::{
    read_nifti, write_class_mask, write_label_map, write_volume_f32, LabelNames, Volume,
};

fn label_names(expected: &serde_json::Value) -> LabelNames {
    expected["label_names"]
        .as_object()
        .expect("names")
        .iter()
        .map(|(k, v)| {
            (
                k.parse().expect("id"),
                v.as_str().expect("name").to_string(),
            )
        })
        .collect()
}

#[test]
fn reads_like_nibabel() {
    let expected = expected_json();
    let cases = expected["read"].as_object().expect("read cases");
    assert!(cases.len() >= 30);
    for (name, case) in cases {
        let path = fixture_dir().join(name);
        let volume = read_nifti(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let shape: Vec<usize> = case["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|v| v.as_u64().expect("int") as usize)
            .collect();
        assert_eq!(volume.shape(), [shape[0], shape[1], shape[2]], "{name}");
        assert!(volume.data.is_standard_layout());

        let affine = json_affine(&case["affine"]);
        // nibabel builds qform affines in long double: allow the last f64 bit there; sform
        // and pixdim affines must match exactly.
        let from_qform = volume.header.sform_code == 0 && volume.header.qform_code != 0;
        let tolerance = if from_qform { 2.5e-16 } else { 0.0 };
        for (r, (ours_row, theirs_row)) in volume.affine.iter().zip(affine.iter()).enumerate() {
            for (c, (&ours, &theirs)) in ours_row.iter().zip(theirs_row.iter()).enumerate() {
                assert!(
                    (ours - theirs).abs() <= tolerance * theirs.abs().max(1.0),
                    "{name}: affine[{r}][{c}] {ours} vs nibabel {theirs}"
                );
            }
        }
        let zooms: Vec<f64> = case["zooms"]
            .as_array()
            .expect("zooms")
            .iter()
            .map(json_f64)
            .collect();
        assert_eq!(volume.spacing.to_vec(), zooms, "{name}: spacing");

        let values: Vec<f64> = case["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(json_f64)
            .collect();
        assert_eq!(values.len(), volume.data.len(), "{name}");
        for (index, (&ours, &theirs)) in volume.data.iter().zip(values.iter()).enumerate() {
            let theirs = theirs as f32;
            assert!(
                ours == theirs || (ours.is_nan() && theirs.is_nan()),
                "{name}: voxel {index}: {ours} vs nibabel {theirs}"
            );
        }

        if shape.len() == 3 {
            // Header bytes as nibabel holds them after its load-time check_fix.
            let checked = hex_decode(case["checked_header_hex"].as_str().expect("hex"));
            assert_eq!(
                volume.header.to_bytes().to_vec(),
                checked,
                "{name}: header bytes"
            );
            let exts: Vec<(i32, Vec<u8>)> = case["extensions"]
                .as_array()
                .expect("exts")
                .iter()
                .map(|e| {
                    (
                        e[0].as_i64().expect("code") as i32,
                        hex_decode(e[1].as_str().expect("hex")),
                    )
                })
                .collect();
            let ours: Vec<(i32, Vec<u8>)> = volume
                .header
                .extensions
                .iter()
                .map(|e| (e.code, e.content.clone()))
                .collect();
            assert_eq!(ours, exts, "{name}: extensions");
        }
    }
}

#[test]
fn writes_totalsegmentator_outputs_byte_for_byte() {
    let expected = expected_json();
    let names = label_names(&expected);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for (name, case) in expected["read"].as_object().expect("read cases") {
        let Some(label_hex) = case.get("ts_label_map_hex") else {
            continue;
        };
        let volume = read_nifti(&fixture_dir().join(name)).expect("readable");
        let labels = grid_labels(volume.shape());

        let out = dir.path().join("labels.nii");
        write_label_map(&out, labels.view(), &volume.header, Some(&names)).expect("write");
        let ours = std::fs::read(&out).expect("written");
        let theirs = hex_decode(label_hex.as_str().expect("hex"));
        assert_eq!(ours.len(), theirs.len(), "{name}: label map length");
        assert!(
            ours == theirs,
            "{name}: label map bytes differ at {:?}",
            first_difference(&ours, &theirs)
        );

        let gz = dir.path().join("labels.nii.gz");
        write_label_map(&gz, labels.view(), &volume.header, Some(&names)).expect("write gz");
        assert_eq!(
            gunzip(&std::fs::read(&gz).expect("written")),
            theirs,
            "{name}: gz"
        );

        let mask = dir.path().join("kidney_right.nii");
        write_class_mask(&mask, labels.view(), 2, &volume.header).expect("mask");
        let ours = std::fs::read(&mask).expect("written");
        let theirs = hex_decode(case["ts_class2_mask_hex"].as_str().expect("hex"));
        assert!(
            ours == theirs,
            "{name}: mask bytes differ at {:?}",
            first_difference(&ours, &theirs)
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} output cases");
}

#[test]
fn new_images_get_nibabels_header() {
    let expected = expected_json();
    let shape: Vec<usize> = expected["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|v| v.as_u64().expect("int") as usize)
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut mismatches = BTreeMap::new();
    for (name, case) in expected["new_image"].as_object().expect("new images") {
        let affine = json_affine(&case["affine"]);
        let volume = Volume::new(Array3::zeros((shape[0], shape[1], shape[2])), affine)
            .expect("valid affine");
        let out = dir.path().join("new.nii");
        write_volume_f32(&out, &volume).expect("write");
        let ours = std::fs::read(&out).expect("written");
        let theirs = hex_decode(case["file_hex"].as_str().expect("hex"));
        assert_eq!(ours.len(), theirs.len(), "{name}");
        if ours != theirs {
            mismatches.insert(name.clone(), first_difference(&ours, &theirs));
        }
    }
    assert!(
        mismatches.is_empty(),
        "files differ from nibabel's (first differing byte): {mismatches:?}"
    );
}

#[test]
fn bad_files_fail_with_the_right_error() {
    let expected = expected_json();
    for (name, case) in expected["bad"].as_object().expect("bad cases") {
        let path = fixture_dir().join(name);
        let err = match read_nifti(&path) {
            Ok(_) => panic!("{name}: read succeeded"),
            Err(e) => e,
        };
        assert_eq!(
            kind_name(&err.kind),
            case["error"].as_str().expect("kind"),
            "{name}: {err}"
        );
        assert_eq!(err.path.as_deref(), Some(path.as_path()));
        assert!(err.to_string().contains(name.as_str()), "{err}");
    }
}

fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b.iter()).position(|(x, y)| x != y)
}
