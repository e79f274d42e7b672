//! `totalseg crop-to-body` against the official `crop_to_body` (fixtures/crop_to_body, made by
//! tools/fixtures/make_crop_to_body_fixtures.py with the synthetic body model): the written
//! NIfTI, uncompressed, is byte for byte the official one.

use std::io::Read;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};
use totalsegmentator::{crop_to_body, read_nifti, SegmentError, SegmenterBuilder};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shared(name: &str) -> PathBuf {
    repo().join("../shared/data/totalseg-examples").join(name)
}

fn weights() -> PathBuf {
    repo().join("fixtures/pipeline/weights")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn cropped_files_equal_the_official_ones() {
    let text =
        std::fs::read_to_string(repo().join("fixtures/crop_to_body/cases.json")).expect("fixture");
    let cases: Value = serde_json::from_str(&text).expect("JSON");
    let work = tempfile::tempdir().expect("tmp");
    for case in cases["cases"].as_array().expect("cases") {
        let out = work
            .path()
            .join(format!("{}.nii.gz", case["name"].as_str().expect("name")));
        let flags: Vec<&str> = case["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| a.as_str().expect("flag"))
            .collect();
        let status = Command::new(env!("CARGO_BIN_EXE_totalseg"))
            .arg("crop-to-body")
            .arg("-i")
            .arg(shared("example_ct_sm.nii.gz"))
            .arg("-o")
            .arg(&out)
            .args(&flags)
            .args(["-d", "cpu", "-q", "--offline", "--weights-dir"])
            .arg(weights())
            .env("TOTALSEG_HOME_DIR", work.path().join("home"))
            .env_remove("TOTALSEG_WEIGHTS_PATH")
            .status()
            .expect("totalseg runs");
        assert!(status.success(), "{}", case["name"]);
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&out).expect("written"))
            .read_to_end(&mut bytes)
            .expect("gzip");
        assert_eq!(
            hex(&Sha256::digest(&bytes)),
            case["nifti_sha256"],
            "{}",
            case["name"]
        );
        let volume = read_nifti(&out).expect("reads back");
        let shape: Vec<usize> = volume.shape().to_vec();
        let expected: Vec<usize> = case["shape"]
            .as_array()
            .expect("shape")
            .iter()
            .map(|v| v.as_u64().expect("dim") as usize)
            .collect();
        assert_eq!(shape, expected);
    }
}

#[test]
fn a_segmenter_of_another_task_and_a_missing_input_are_errors() {
    let work = tempfile::tempdir().expect("tmp");
    let segmenter = SegmenterBuilder::new("total")
        .fastest(true)
        .weights_dir(Some(weights()))
        .offline(true)
        .home_dir(Some(work.path().join("home")))
        .build()
        .expect("fastest total builds from the fixture weights");
    let ct = read_nifti(&shared("example_ct_sm.nii.gz")).expect("shared CT");
    let err = crop_to_body::crop_to_body(&segmenter, &ct, false).expect_err("not the body task");
    assert!(
        matches!(err, SegmentError::Model(ref m) if m.contains("body")),
        "{err}"
    );

    let out = work.path().join("never.nii.gz");
    let output = Command::new(env!("CARGO_BIN_EXE_totalseg"))
        .args(["crop-to-body", "-i"])
        .arg(work.path().join("missing.nii.gz"))
        .arg("-o")
        .arg(&out)
        .args(["-d", "cpu", "-q", "--offline", "--weights-dir"])
        .arg(weights())
        .env("TOTALSEG_HOME_DIR", work.path().join("home"))
        .output()
        .expect("totalseg runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.nii.gz"));
    assert!(!out.exists());
}
