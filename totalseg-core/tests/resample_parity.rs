//! Parity of the resamplers with scipy / TotalSegmentator / nnU-Net on the fixtures made by
//! `tools/fixtures/make_resample_fixtures.py` (fixtures/resample/zoom.json + .npy files).
//!
//! Order 0 and every integer-cast output must be identical; float outputs are compared
//! bit for bit too (counted), and must in any case be within 1e-4 relative.

mod common;

use std::path::PathBuf;

use common::npy::Npy;
use ndarray::{Array3, ArrayD};
use serde_json::Value;
use totalseg_core::resample::{
    change_spacing, change_spacing_labels, compute_new_shape, resample_data_to_shape, scipy_zoom,
    GridMode, NnunetResampling, SpacingTarget, SplineOrder,
};

fn fixture_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/resample"))
}

fn read_npy(name: &str) -> Npy {
    common::npy::read_npy(&fixture_dir().join(name))
}

fn as3<T>(a: ArrayD<T>) -> Array3<T> {
    a.into_dimensionality().expect("3D array")
}

fn f64_3(name: &str) -> Array3<f64> {
    match read_npy(name) {
        Npy::F64(a) => as3(a),
        _ => panic!("{name}: expected float64"),
    }
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixture_dir().join("zoom.json")).expect("zoom.json");
    serde_json::from_str(&text).expect("valid json")
}

fn arr3<T: Copy>(v: &Value, f: impl Fn(&Value) -> T) -> [T; 3] {
    let a = v.as_array().expect("array");
    [f(&a[0]), f(&a[1]), f(&a[2])]
}

fn affine(v: &Value) -> [[f64; 4]; 4] {
    let rows = v.as_array().expect("rows");
    std::array::from_fn(|r| arr4(&rows[r]))
}

fn arr4(v: &Value) -> [f64; 4] {
    let a = v.as_array().expect("row");
    std::array::from_fn(|c| a[c].as_f64().unwrap())
}

fn assert_affine_close(name: &str, got: &[[f64; 4]; 4], want: &[[f64; 4]; 4]) {
    let close = got
        .iter()
        .flatten()
        .zip(want.iter().flatten())
        .all(|(g, w)| (g - w).abs() <= 1e-6);
    assert!(close, "{name}: affine {got:?} vs scipy {want:?}");
}

fn order(v: &Value) -> SplineOrder {
    SplineOrder::from_scipy(v.as_u64().unwrap() as u8).unwrap()
}

fn cases(kind: &str) -> Vec<Value> {
    manifest()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == kind)
        .cloned()
        .collect()
}

/// Float comparison: shapes equal, every value within 1e-4 relative (of max(|expected|, 1)).
/// Returns how many values differ at all, so callers can also insist on bit identity.
fn assert_close<T: Into<f64> + Copy>(name: &str, got: &Array3<T>, want: &Array3<T>) -> usize {
    assert_eq!(got.dim(), want.dim(), "{name}: shape");
    let mut differing = 0;
    for ((idx, &g), &w) in got.indexed_iter().zip(want.iter()) {
        let (g, w): (f64, f64) = (g.into(), w.into());
        let tol = 1e-4 * w.abs().max(1.0);
        assert!(
            (g - w).abs() <= tol,
            "{name} at {:?}: got {g}, scipy {w}",
            idx
        );
        if g != w {
            differing += 1;
        }
    }
    differing
}

#[test]
fn scipy_zoom_matches_scipy_for_all_orders_and_grid_modes() {
    let cases = cases("scipy_zoom");
    assert_eq!(cases.len(), 24);
    let mut total_differing = 0;
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let input = f64_3(c["input"].as_str().unwrap());
        let want = f64_3(c["expected"].as_str().unwrap());
        let grid = if c["grid_mode"].as_bool().unwrap() {
            GridMode::AlignEdges
        } else {
            GridMode::AlignCorners
        };
        let zoom = arr3(&c["zoom"], |v| v.as_f64().unwrap());
        let got: Array3<f64> = scipy_zoom(input.view(), zoom, order(&c["order"]), grid).unwrap();
        let differing = assert_close(name, &got, &want);
        if c["order"] == 0 {
            assert_eq!(differing, 0, "{name}: order 0 must be identical");
        }
        total_differing += differing;
    }
    // The arithmetic follows scipy's operation order, so even the floats are identical.
    assert_eq!(
        total_differing, 0,
        "float outputs differing from scipy in the last bits"
    );
}

#[test]
fn change_spacing_int32_matches_totalsegmentator_exactly() {
    let cases = cases("change_spacing");
    assert_eq!(cases.len(), 9);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let Npy::I16(input) = read_npy(c["input"].as_str().unwrap()) else {
            panic!("{name}: int16 input")
        };
        let input = as3(input);
        let Npy::I32(want) = read_npy(c["expected"].as_str().unwrap()) else {
            panic!("{name}: int32 output")
        };
        let want = as3(want);
        let zooms = arr3(&c["zooms"], |v| v.as_f64().unwrap());
        let new_spacing = arr3(&c["new_spacing"], |v| v.as_f64().unwrap());
        let out = change_spacing::<i16, i32>(
            input.view(),
            &affine(&c["affine"]),
            zooms,
            SpacingTarget::Spacing(new_spacing),
            order(&c["order"]),
        )
        .unwrap()
        .expect("spacing differs, so resampled");
        assert_eq!(out.data.dim(), want.dim(), "{name}: shape");
        let mismatches: Vec<_> = out
            .data
            .indexed_iter()
            .zip(want.iter())
            .filter(|((_, g), w)| *g != *w)
            .take(5)
            .collect();
        assert!(
            mismatches.is_empty(),
            "{name}: int32 values differ: {mismatches:?}"
        );
        assert_affine_close(name, &out.affine, &affine(&c["expected_affine"]));
    }
}

#[test]
fn label_maps_go_back_to_target_shape_identically() {
    let cases = cases("change_spacing_labels");
    assert_eq!(cases.len(), 2);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let Npy::U8(input) = read_npy(c["input"].as_str().unwrap()) else {
            panic!("uint8")
        };
        let Npy::U8(want) = read_npy(c["expected"].as_str().unwrap()) else {
            panic!("uint8")
        };
        let (input, want) = (as3(input), as3(want));
        let target = arr3(&c["target_shape"], |v| v.as_u64().unwrap() as usize);
        let zooms = arr3(&c["zooms"], |v| v.as_f64().unwrap());
        let aff = affine(&c["affine"]);
        let out = change_spacing_labels(input.view(), &aff, zooms, SpacingTarget::Shape(target))
            .unwrap()
            .expect("shape differs");
        assert_eq!(out.data, want, "{name}");
        // The generic path (u8 -> f64 -> u8) must agree with the gather.
        let generic = change_spacing::<u8, u8>(
            input.view(),
            &aff,
            zooms,
            SpacingTarget::Shape(target),
            SplineOrder::Nearest,
        )
        .unwrap()
        .unwrap();
        assert_eq!(generic.data, want, "{name}: generic order-0 path");
        assert_affine_close(name, &out.affine, &affine(&c["expected_affine"]));
    }
}

#[test]
fn nnunet_resampling_matches_including_separate_z() {
    let cases = cases("nnunet");
    assert_eq!(cases.len(), 9);
    let mut total_differing = 0;
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let spacing = arr3(&c["spacing"], |v| v.as_f64().unwrap());
        let new_spacing = arr3(&c["new_spacing"], |v| v.as_f64().unwrap());
        let options = NnunetResampling {
            order: order(&c["order"]),
            ..NnunetResampling::default()
        };
        let want_shape = arr3(&c["new_shape"], |v| v.as_u64().unwrap() as usize);
        // nnU-Net casts back to the input dtype: float32 data, float16 logits.
        match (
            read_npy(c["input"].as_str().unwrap()),
            read_npy(c["expected"].as_str().unwrap()),
        ) {
            (Npy::F32(input), Npy::F32(want)) => {
                let (input, want) = (as3(input), as3(want));
                let new_shape = compute_new_shape(dims(&input), spacing, new_spacing).unwrap();
                assert_eq!(new_shape, want_shape, "{name}: new shape");
                let got: Array3<f32> =
                    resample_data_to_shape(input.view(), new_shape, spacing, new_spacing, &options)
                        .unwrap();
                total_differing += assert_close(name, &got, &want);
            }
            (Npy::F16(input), Npy::F16(want)) => {
                let (input, want) = (as3(input), as3(want));
                let new_shape = compute_new_shape(dims(&input), spacing, new_spacing).unwrap();
                assert_eq!(new_shape, want_shape, "{name}: new shape");
                let got: Array3<half::f16> =
                    resample_data_to_shape(input.view(), new_shape, spacing, new_spacing, &options)
                        .unwrap();
                total_differing += assert_close(name, &got.mapv(f32::from), &want.mapv(f32::from));
            }
            _ => panic!("{name}: unexpected dtypes"),
        }
    }
    assert_eq!(total_differing, 0, "outputs differing from nnU-Net");
}

#[test]
fn float16_cast_matches_numpy_bit_for_bit() {
    use totalseg_core::resample::CastFromF64;
    let c = &cases("cast_f16")[0];
    let Npy::F64(input) = read_npy(c["input"].as_str().unwrap()) else {
        panic!("float64")
    };
    let Npy::F16(want) = read_npy(c["expected"].as_str().unwrap()) else {
        panic!("float16")
    };
    assert!(input.len() > 300);
    for (&x, &w) in input.iter().zip(want.iter()) {
        assert_eq!(half::f16::cast_from_f64(x).to_bits(), w.to_bits(), "{x:e}");
    }
}

fn dims<T>(a: &Array3<T>) -> [usize; 3] {
    let (x, y, z) = a.dim();
    [x, y, z]
}

#[test]
fn compute_new_shape_rounds_halves_to_even() {
    for c in manifest()["compute_new_shape"].as_array().unwrap() {
        let old = arr3(&c["old_shape"], |v| v.as_u64().unwrap() as usize);
        let sp = arr3(&c["spacing"], |v| v.as_f64().unwrap());
        let nsp = arr3(&c["new_spacing"], |v| v.as_f64().unwrap());
        let want = arr3(&c["new_shape"], |v| v.as_u64().unwrap() as usize);
        assert_eq!(compute_new_shape(old, sp, nsp).unwrap(), want, "{c}");
    }
}

#[test]
fn invalid_requests_are_typed_errors() {
    use totalseg_core::resample::ResampleError;
    let a = Array3::<f32>::zeros((3, 3, 3));
    let err = scipy_zoom::<f32, f32>(
        a.view(),
        [1.0, f64::NAN, 1.0],
        SplineOrder::Linear,
        GridMode::AlignCorners,
    );
    assert!(matches!(
        err,
        Err(ResampleError::InvalidZoom { axis: 1, .. })
    ));
    let err = scipy_zoom::<f32, f32>(
        a.view(),
        [0.0, 1.0, 1.0],
        SplineOrder::Linear,
        GridMode::AlignCorners,
    );
    assert!(matches!(
        err,
        Err(ResampleError::InvalidZoom { axis: 0, .. })
    ));
    let empty = Array3::<f32>::zeros((0, 3, 3));
    let err = scipy_zoom::<f32, f32>(
        empty.view(),
        [2.0; 3],
        SplineOrder::Linear,
        GridMode::AlignCorners,
    );
    assert!(matches!(err, Err(ResampleError::EmptyInput { .. })));
    let err = scipy_zoom::<f32, f32>(
        a.view(),
        [0.1, 1.0, 1.0],
        SplineOrder::Linear,
        GridMode::AlignCorners,
    );
    assert!(matches!(err, Err(ResampleError::EmptyOutput { .. })));
    let id = [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let err = change_spacing::<f32, f32>(
        a.view(),
        &id,
        [1.0, 0.0, 1.0],
        SpacingTarget::Spacing([1.5; 3]),
        SplineOrder::Linear,
    );
    assert!(matches!(
        err,
        Err(ResampleError::InvalidSpacing {
            what: "input",
            axis: 1,
            ..
        })
    ));
    let err = change_spacing::<f32, f32>(
        a.view(),
        &id,
        [1.0; 3],
        SpacingTarget::Spacing([1.5, f64::INFINITY, 1.0]),
        SplineOrder::Linear,
    );
    assert!(matches!(
        err,
        Err(ResampleError::InvalidSpacing {
            what: "target",
            axis: 1,
            ..
        })
    ));
    assert!(matches!(
        SplineOrder::from_scipy(2),
        Err(ResampleError::UnsupportedOrder { order: 2 })
    ));
    // Same spacing: TotalSegmentator returns the image untouched.
    let same = change_spacing::<f32, f32>(
        a.view(),
        &id,
        [1.5; 3],
        SpacingTarget::Spacing([1.5; 3]),
        SplineOrder::Linear,
    );
    assert!(matches!(same, Ok(None)));
}
