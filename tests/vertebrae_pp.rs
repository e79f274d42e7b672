//! The vertebrae_pp postprocessing against TotalSegmentator 2.18's `postprocess_vertebrae_pp`
//! (fixtures/core/vertebrae_pp.json, made by tools/fixtures/make_vertebrae_pp_fixtures.py).

use ndarray::{s, Array3};
use serde_json::Value;
use totalseg_core::postprocess::vertebrae::{
    ellipsoid_structure, postprocess_vertebrae_pp, refine_vertebrae_pp_with_body_mask,
};

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/core/vertebrae_pp.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("int") as usize)
        .collect()
}

fn zooms(v: &Value) -> [f32; 3] {
    let z: Vec<f32> = v
        .as_array()
        .expect("zooms")
        .iter()
        .map(|x| x.as_f64().expect("zoom") as f32)
        .collect();
    [z[0], z[1], z[2]]
}

#[test]
fn ellipsoid_elements_match_numpy() {
    let f = fixture();
    for e in f["elements"].as_array().expect("elements") {
        let ours = ellipsoid_structure(
            zooms(&e["zooms"]),
            e["radius_mm"].as_f64().expect("r") as f32,
        );
        let shape = usizes(&e["shape"]);
        assert_eq!(ours.shape(), &shape[..], "{e}");
        let mask: String = ours.iter().map(|&v| if v { '1' } else { '0' }).collect();
        assert_eq!(mask, e["mask"].as_str().expect("mask"), "{}", e["zooms"]);
    }
}

fn painted(shape: &[usize], boxes: &Value) -> Array3<u8> {
    let mut data = Array3::<u8>::zeros((shape[0], shape[1], shape[2]));
    for b in boxes.as_array().expect("boxes") {
        let label = b[0].as_u64().expect("label") as u8;
        let (lo, hi) = (usizes(&b[1]), usizes(&b[2]));
        data.slice_mut(s![lo[0]..hi[0], lo[1]..hi[1], lo[2]..hi[2]])
            .fill(label);
    }
    data
}

fn decoded(rle: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for run in rle.as_array().expect("rle") {
        let (v, n) = (
            run[0].as_u64().expect("v") as u8,
            run[1].as_u64().expect("n"),
        );
        out.extend(std::iter::repeat_n(v, n as usize));
    }
    out
}

#[test]
fn refinement_with_the_body_mask_matches_totalsegmentator() {
    let f = fixture();
    let labels: Vec<u8> = f["labels"]
        .as_object()
        .expect("labels")
        .keys()
        .map(|k| k.parse().expect("label"))
        .collect();
    for (name, case) in f["refine_cases"].as_object().expect("refine cases") {
        let shape = usizes(&case["shape"]);
        let data = painted(&shape, &case["boxes"]);
        let body = painted(&shape, &case["body_boxes"]);
        let ours = refine_vertebrae_pp_with_body_mask(
            data.view(),
            body.view(),
            &labels,
            zooms(&case["zooms"]),
            2.0,
        );
        let got: Vec<u8> = ours.iter().copied().collect();
        assert_eq!(got, decoded(&case["output_rle"]), "{name}");
    }
}

#[test]
fn postprocess_vertebrae_pp_matches_totalsegmentator() {
    let f = fixture();
    let labels: Vec<(u8, String)> = f["labels"]
        .as_object()
        .expect("labels")
        .iter()
        .map(|(k, v)| {
            (
                k.parse().expect("label"),
                v.as_str().expect("name").to_string(),
            )
        })
        .collect();
    let labels: Vec<(u8, &str)> = labels.iter().map(|(l, n)| (*l, n.as_str())).collect();
    for (name, case) in f["cases"].as_object().expect("cases") {
        let shape = usizes(&case["shape"]);
        let mut data = Array3::<u8>::zeros((shape[0], shape[1], shape[2]));
        for b in case["boxes"].as_array().expect("boxes") {
            let label = b[0].as_u64().expect("label") as u8;
            let (lo, hi) = (usizes(&b[1]), usizes(&b[2]));
            data.slice_mut(s![lo[0]..hi[0], lo[1]..hi[1], lo[2]..hi[2]])
                .fill(label);
        }
        let z = zooms(&case["zooms"]);
        let voxel_volume = z[0] * z[1] * z[2];
        let ours = postprocess_vertebrae_pp(data.view(), &labels, 100.0, voxel_volume, z, 3.0);
        let mut expected = Vec::with_capacity(ours.len());
        for run in case["output_rle"].as_array().expect("rle") {
            let (v, n) = (
                run[0].as_u64().expect("v") as u8,
                run[1].as_u64().expect("n"),
            );
            expected.extend(std::iter::repeat_n(v, n as usize));
        }
        let got: Vec<u8> = ours.iter().copied().collect();
        let differing = got.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(got.len(), expected.len(), "{name}");
        assert_eq!(differing, 0, "{name}: voxels differ");
    }
}
