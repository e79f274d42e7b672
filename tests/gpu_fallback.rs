//! `--device gpu` where CUDA cannot be used (a build without the `cuda` feature, or a machine
//! without driver/NVRTC/GPU) warns and runs on the CPU instead of failing: the output equals
//! the official `--fast --ml` fixture, as `-d cpu` does.
//!
//! The binary is this build's `totalseg`; set `TOTALSEG_FALLBACK_BIN` to check another one
//! (e.g. a `--features cuda` build on a machine without a GPU). On a machine where CUDA works the
//! GPU is used and there is nothing to check here.

use std::path::PathBuf;
use std::process::Command;

use totalseg_io::nifti::read_label_map;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn gpu_request_without_usable_cuda_falls_back_to_the_cpu() {
    let binary = std::env::var_os("TOTALSEG_FALLBACK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_totalseg")));
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("segmentation.nii.gz");
    let run = Command::new(&binary)
        .arg("-i")
        .arg(repo().join("../shared/data/totalseg-examples/example_ct_sm.nii.gz"))
        .arg("-o")
        .arg(&output)
        .args(["--fast", "--ml", "-d", "gpu", "-q", "--offline"])
        .arg("--weights-dir")
        .arg(repo().join("fixtures/pipeline/weights"))
        .env("TOTALSEG_HOME_DIR", dir.path().join("home"))
        .env_remove("TOTALSEG_WEIGHTS_PATH")
        .env_remove("RUST_LOG")
        .output()
        .expect("totalseg runs");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "totalseg failed: {stderr}");
    if !stderr.contains("requested but CUDA is not usable") {
        eprintln!("CUDA is usable here: the GPU ran, no fallback to check ({stderr})");
        return;
    }
    assert!(stderr.contains("running on the CPU"), "{stderr}");
    let ours = read_label_map(&output).expect("output reads");
    let official = read_label_map(&repo().join("fixtures/pipeline/fast_ml/segmentation.nii.gz"))
        .expect("fixture reads");
    assert_eq!(
        ours.labels, official.labels,
        "labels differ from the official --fast output"
    );
    assert_eq!(ours.names, official.names);
}
