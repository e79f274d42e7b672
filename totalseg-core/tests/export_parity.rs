//! The export of fp16 logits to labels against nnU-Net 2.8 (full resampling, softmax, argmax)
//! and TotalSegmentator 2.18's cropped-logits resampling (`--higher_order_resampling`) on the
//! fixtures made by `tools/fixtures/make_export_fixtures.py`: every voxel must agree.

mod common;

use std::path::PathBuf;

use common::npy::{read_npy, Npy};
use ndarray::{Array3, Array4};
use serde_json::Value;
use totalseg_core::export::{logits_to_labels, LogitsResampling};
use totalseg_core::resample::{NnunetResampling, SplineOrder};

fn fixture_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/export"))
}

fn triple(v: &Value) -> [f64; 3] {
    std::array::from_fn(|a| v[a].as_f64().expect("number"))
}

fn logits(name: &str) -> Array4<f32> {
    match read_npy(&fixture_dir().join(name)) {
        Npy::F16(a) => a.mapv(half::f16::to_f32).into_dimensionality().expect("4D"),
        _ => panic!("{name}: expected float16"),
    }
}

fn labels(name: &str) -> Array3<u8> {
    match read_npy(&fixture_dir().join(name)) {
        Npy::U8(a) => a.into_dimensionality().expect("3D"),
        _ => panic!("{name}: expected uint8"),
    }
}

#[test]
fn logits_export_matches_nnunet_and_totalsegmentator() {
    let text = std::fs::read_to_string(fixture_dir().join("export.json")).expect("export.json");
    let manifest: Value = serde_json::from_str(&text).expect("json");
    // nnU-Net's resampling_fn_probabilities_kwargs.
    let probabilities = NnunetResampling {
        order: SplineOrder::Linear,
        ..NnunetResampling::default()
    };
    let cases = manifest["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 4);
    let mut cropped_differs_from_full = 0;
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let input = logits(case["logits"].as_str().expect("logits"));
        let shape = triple(&case["target_shape"]).map(|v| v as usize);
        for (how, key) in [
            (LogitsResampling::Full, "full"),
            (LogitsResampling::Cropped, "cropped"),
        ] {
            let expected = labels(case[key].as_str().expect("file"));
            let got = logits_to_labels(
                input.view(),
                shape,
                triple(&case["model_spacing"]),
                triple(&case["target_spacing"]),
                &probabilities,
                how,
            )
            .expect("export");
            let differ = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
            assert_eq!(differ, 0, "{name} {key}: {differ} voxels differ");
        }
        cropped_differs_from_full += case["full_vs_cropped_differ"].as_u64().expect("count");
    }
    // The fixtures tell the two exports apart.
    assert!(cropped_differs_from_full > 0);
}
