//! `--preview` against the official tool's images (fixtures/preview, made by
//! tools/fixtures/make_preview_fixtures.py with TotalSegmentator 2.18, fury 0.12, VTK 9.3).
//! The renderers differ, so images are compared with a tolerance: measured on 2026-11-28,
//! as_is 0.39 mean absolute difference (99.8 % of pixels within 32, non-black IoU 0.975),
//! slice_in_view 0.57 (99.7 %, 0.973), rotated 0.19 (99.9 %, 0.949; thin edges there).

#[path = "support/preview_agreement.rs"]
mod preview_agreement;

use std::path::{Path, PathBuf};
use std::process::Command;

use preview_agreement::{agreement, assert_close_to_official};
use serde_json::Value;
use totalseg_core::geometry::Affine;
use totalseg_io::png::read_png_rgb;
use totalsegmentator::preview::preview_image;
use totalsegmentator::read_nifti;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shared(name: &str) -> PathBuf {
    repo().join("../shared/data/totalseg-examples").join(name)
}

fn cases() -> Value {
    let text = std::fs::read_to_string(repo().join("fixtures/preview/cases.json"))
        .expect("fixtures/preview/cases.json is committed");
    serde_json::from_str(&text).expect("JSON")
}

fn affine_of(case: &Value) -> Affine {
    let rows = case["affine"].as_array().expect("affine");
    std::array::from_fn(|r| std::array::from_fn(|c| rows[r][c].as_f64().expect("number")))
}

/// Our preview of the shared example and its official `--fast` label map with `affine`.
fn render(affine: &Affine) -> (usize, usize, Vec<u8>) {
    let ct = read_nifti(&shared("example_ct_sm.nii.gz")).expect("shared CT");
    let labels = read_nifti(&shared("example_seg_fast.nii.gz")).expect("shared labels");
    let labels = labels.data.mapv(|v| v as u8);
    let image = preview_image(ct.data.view(), affine, labels.view(), "total").expect("preview");
    (image.width, image.height, image.rgb)
}

#[test]
fn previews_of_the_shared_example_match_the_official_images() {
    let cases = cases();
    for case in cases["cases"].as_array().expect("cases") {
        let (w, h, rgb) = render(&affine_of(case));
        let official = repo()
            .join("fixtures/preview")
            .join(case["png"].as_str().expect("png"));
        let a = assert_close_to_official((w, h, &rgb), &official, 0.99, 1.0, 0.94);
        eprintln!("{}: {a:?}", case["name"]);
    }
}

/// The comparison can fail: the image without the CT slice in view is far from the one with it,
/// and a mirrored image is far from the original.
#[test]
fn the_comparison_tells_different_previews_apart() {
    let cases = cases();
    let list = cases["cases"].as_array().expect("cases");
    let find = |name: &str| list.iter().find(|c| c["name"] == name).expect(name);
    let (w, h, as_is) = render(&affine_of(find("as_is")));
    let official = repo()
        .join("fixtures/preview")
        .join(find("slice_in_view")["png"].as_str().expect("png"));
    let (_, _, other) = read_png_rgb(&official).expect("fixture");
    let a = agreement(&as_is, &other);
    assert!(a.within_32 < 0.99 && a.mean_abs > 1.0, "{a:?}");
    let mirrored: Vec<u8> = as_is
        .chunks(w * 3)
        .flat_map(|row| row.chunks(3).rev().flatten().copied().collect::<Vec<u8>>())
        .collect();
    assert_eq!(mirrored.len(), w * h * 3);
    let a = agreement(&mirrored, &as_is);
    assert!(a.within_32 < 0.99 && a.foreground_iou < 0.96, "{a:?}");
}

fn run_totalseg(args: &[&str], out: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_totalseg"))
        .args(args)
        .arg("--weights-dir")
        .arg(repo().join("fixtures/pipeline/weights"))
        .arg("--offline")
        .arg("-q")
        .env("TOTALSEG_HOME_DIR", out.join("home"))
        .env_remove("TOTALSEG_WEIGHTS_PATH")
        .output()
        .expect("totalseg runs")
}

/// Per-class output: the preview goes into the output folder; a task without a preview
/// layout is refused before anything runs.
#[test]
fn cli_writes_the_preview_into_the_output_folder_and_refuses_tasks_without_a_layout() {
    let work = tempfile::tempdir().expect("tmp");
    let ct = shared("example_ct_sm.nii.gz");
    let folder = work.path().join("seg");
    let out = run_totalseg(
        &[
            "-i",
            ct.to_str().expect("utf-8"),
            "-o",
            folder.to_str().expect("utf-8"),
            "--fast",
            "-p",
        ],
        work.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (w, h, rgb) = read_png_rgb(&folder.join("preview_total.png")).expect("preview written");
    // The same run as the official `--fast --ml --preview` fixture, per-class here.
    assert_close_to_official(
        (w, h, &rgb),
        &repo().join("fixtures/preview/cli_fast_ml/preview_total.png"),
        0.99,
        1.0,
        0.97,
    );
    assert!(folder.join("liver.nii.gz").exists());

    let refused = work.path().join("refused");
    let out = run_totalseg(
        &[
            "-i",
            ct.to_str().expect("utf-8"),
            "-o",
            refused.to_str().expect("utf-8"),
            "--task",
            "renal_arteries",
            "--preview",
        ],
        work.path(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--preview") && stderr.contains("renal_arteries"),
        "{stderr}"
    );
    assert!(!refused.exists());
}
