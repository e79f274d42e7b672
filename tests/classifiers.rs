//! `totalseg get-modality` / `get-phase` and the XGBoost predictor against the official
//! tool (fixtures/classifiers, made by tools/fixtures/make_classifier_fixtures.py with
//! TotalSegmentator 2.18 and xgboost):
//! - every shipped classifier gives XGBoost's float32 margin and output, bit for bit, on
//!   random rows and on rows sitting exactly on split thresholds;
//! - the commands write the official JSON text, byte for byte.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use totalsegmentator::classifiers::modality::{
    roi_features, roi_statistics_options, ModalityClassifier,
};
use totalsegmentator::classifiers::phase::PhaseClassifier;
use totalsegmentator::{read_nifti, Device, SegmenterBuilder, Volume};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("fixtures/classifiers").join(name))
        .expect("fixture present");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn input_path(reference: &str, scratch: &Path) -> PathBuf {
    if let Some(name) = reference.strip_prefix("shared:") {
        repo().join("../shared/data/totalseg-examples").join(name)
    } else if let Some(path) = reference.strip_prefix("repo:") {
        repo().join(path)
    } else if let Some(inner) = reference.strip_prefix("scaled:") {
        // (x - min) / (max - min) in float64, stored as float32, as the fixture script does.
        let source = read_nifti(&input_path(inner, scratch)).expect("input");
        let (lo, hi) = source
            .data
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &v| {
                (lo.min(f64::from(v)), hi.max(f64::from(v)))
            });
        let scaled = source
            .data
            .mapv(|v| ((f64::from(v) - lo) / (hi - lo)) as f32);
        let out = scratch.join("scaled.nii.gz");
        let volume = Volume::new(scaled, source.affine).expect("volume");
        totalseg_io::nifti::write_volume(&out, &volume, totalseg_io::nifti::NiftiDataType::F32)
            .expect("write");
        out
    } else {
        panic!("unknown input reference {reference}")
    }
}

#[test]
fn xgboost_predictions_are_bit_identical() {
    let predictions = fixture("predictions.json");
    let modality_image = ModalityClassifier::image_intensities().expect("embedded");
    let modality_roi = ModalityClassifier::roi_intensities().expect("embedded");
    let phase = PhaseClassifier::official().expect("embedded");
    let mut checked = 0;
    for case in predictions["models"].as_array().expect("models") {
        let name = case["model"].as_str().expect("name");
        let fold = |prefix: &str| -> Option<usize> {
            name.strip_prefix(prefix)?
                .trim_matches(|c| c == '.' || c == '[' || c == ']')
                .parse()
                .ok()
        };
        let model = if let Some(i) = fold("modality_classifiers_2025_02_24.json") {
            &modality_image.folds()[i]
        } else if let Some(i) = fold("modality_classifiers_normalized_2025_02_24.json") {
            &modality_roi.folds()[i]
        } else if let Some(i) = fold("contrast_phase_classifiers_2024_07_19.pkl") {
            &phase.folds()[i]
        } else {
            panic!("unknown model {name}")
        };
        let rows = case["rows"].as_array().expect("rows");
        for (r, row) in rows.iter().enumerate() {
            let features: Vec<f64> = row
                .as_array()
                .expect("row")
                .iter()
                .map(|v| v.as_f64().expect("number"))
                .collect();
            let margin = case["margin"][r].as_f64().expect("margin") as f32;
            let output = case["output"][r].as_f64().expect("output") as f32;
            assert_eq!(
                model.predict_margin(&features),
                margin,
                "{name} row {r} margin"
            );
            assert_eq!(model.predict(&features), output, "{name} row {r} output");
            if let Some(class) = case.get("class") {
                assert_eq!(
                    u64::from(model.predict_class(&features)),
                    class[r].as_u64().expect("class"),
                    "{name} row {r} class"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 15 * 210, "every row of every model checked");
}

#[test]
fn commands_write_the_official_json() {
    let cases = fixture("cases.json");
    let scratch = tempfile::tempdir().expect("tmp");
    for case in cases["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let input = input_path(case["input"].as_str().expect("input"), scratch.path());
        let out = scratch.path().join("result.json");
        let _ = std::fs::remove_file(&out);
        let command = match case["command"].as_str().expect("command") {
            "get_modality" => "get-modality",
            "get_phase" => "get-phase",
            other => panic!("unknown command {other}"),
        };
        let args: Vec<PathBuf> = case["args"]
            .as_array()
            .expect("args")
            .iter()
            .map(|a| {
                let a = a.as_str().expect("arg");
                if a.starts_with("fixtures/") {
                    repo().join(a)
                } else {
                    PathBuf::from(a)
                }
            })
            .collect();
        let output = Command::new(env!("CARGO_BIN_EXE_totalseg"))
            .arg(command)
            .arg("-i")
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(&args)
            .args(["-d", "cpu", "-q", "--offline", "--weights-dir"])
            .arg(repo().join("fixtures/pipeline/weights"))
            .env("TOTALSEG_HOME_DIR", scratch.path().join("home"))
            .env_remove("TOTALSEG_WEIGHTS_PATH")
            .output()
            .expect("totalseg runs");
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let written = std::fs::read_to_string(&out).expect("result written");
        assert_eq!(written, case["output"].as_str().expect("output"), "{name}");
    }
}

#[test]
fn bad_inputs_are_clear_errors_without_output() {
    let scratch = tempfile::tempdir().expect("tmp");
    let out = scratch.path().join("result.json");
    // `totalseg <command> -i <input> -o <out> <extra>`.
    let run = |command: &str, input: &Path, extra: &[&Path]| {
        Command::new(env!("CARGO_BIN_EXE_totalseg"))
            .arg(command)
            .arg("-i")
            .arg(input)
            .arg("-o")
            .arg(&out)
            .args(extra)
            .env("TOTALSEG_HOME_DIR", scratch.path().join("home"))
            .output()
            .expect("totalseg runs")
    };

    // A truncated NIfTI.
    let broken = scratch.path().join("broken.nii.gz");
    let ct = repo().join("../shared/data/totalseg-examples/example_ct_sm.nii.gz");
    let bytes = std::fs::read(&ct).expect("example");
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).expect("write");
    let o = run("get-modality", &broken, &[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("broken.nii.gz"));

    // Statistics without the structures the phase classifier reads.
    let stats = scratch.path().join("stats.json");
    std::fs::write(&stats, r#"{"liver": {"volume": 10.0, "intensity": 60.0}}"#).expect("write");
    let o = run(
        "get-phase",
        &ct,
        &[Path::new("-s"), &stats, Path::new("-q")],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("stats.json") && err.contains("brain"), "{err}");

    // A classifier file that is not a pickle.
    let o = run(
        "get-phase",
        &ct,
        &[Path::new("-s"), &stats, Path::new("-m"), &stats],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a pickle"));
    assert!(!out.exists(), "no output after a failure");
}

#[test]
fn the_model_runs_are_the_official_ones() {
    // With the brain in view (statistics say 250 mm³), get-phase needs the
    // headneck_bones_vessels model, and -n needs total_mr --fast: offline with an empty
    // weights folder, each fails naming what it looked for, and writes nothing.
    let scratch = tempfile::tempdir().expect("tmp");
    let out = scratch.path().join("result.json");
    let empty = scratch.path().join("weights");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let mut stats: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("fixtures/classifiers/stats/stats_3.json"))
            .expect("stats"),
    )
    .expect("JSON");
    stats["brain"]["volume"] = Value::from(250.0);
    let stats_path = scratch.path().join("stats_brain.json");
    std::fs::write(&stats_path, stats.to_string()).expect("write");
    let ct = repo().join("../shared/data/totalseg-examples/example_ct_sm.nii.gz");
    // `totalseg <command> -i <ct> -o <out> <extra>` offline on the empty weights folder.
    let run = |command: &str, extra: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_totalseg"))
            .arg(command)
            .arg("-i")
            .arg(&ct)
            .arg("-o")
            .arg(&out)
            .args(extra)
            .args(["-d", "cpu", "-q", "--offline", "--weights-dir"])
            .arg(&empty)
            .env("TOTALSEG_HOME_DIR", scratch.path().join("home"))
            .env_remove("TOTALSEG_WEIGHTS_PATH")
            .output()
            .expect("totalseg runs")
    };
    let with_stats = ["-s".as_ref(), stats_path.as_os_str()];
    let o = run("get-phase", &with_stats);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("headneck_bones_vessels") || err.contains("776"),
        "{err}"
    );

    // Below the brain threshold the same statistics need no model at all.
    stats["brain"]["volume"] = Value::from(100.0);
    std::fs::write(&stats_path, stats.to_string()).expect("write");
    let o = run("get-phase", &with_stats);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.exists());
    std::fs::remove_file(&out).expect("rm");

    let o = run("get-modality", &["-n".as_ref()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("total_mr") || err.contains("852"), "{err}");
    assert!(!out.exists());
}

#[test]
fn roi_features_are_the_official_ones() {
    // `get-modality -n`: the 16 median normalised intensities from total_mr --fast
    // (synthetic weights, dataset 852) equal those the official code feeds its classifiers.
    let cases = fixture("cases.json");
    let scratch = tempfile::tempdir().expect("tmp");
    let segmenter = SegmenterBuilder::new("total_mr")
        .fast(true)
        .statistics(Some(roi_statistics_options()))
        .device(Device::Cpu)
        .weights_dir(Some(repo().join("fixtures/pipeline/weights")))
        .home_dir(Some(scratch.path().join("home")))
        .offline(true)
        .build()
        .expect("total_mr --fast segmenter");
    let mut checked = 0;
    for case in cases["cases"].as_array().expect("cases") {
        let Some(expected) = case.get("roi_features") else {
            continue;
        };
        let input = input_path(case["input"].as_str().expect("input"), scratch.path());
        let stats = segmenter
            .segment_file(&input)
            .expect("segments")
            .statistics
            .expect("statistics");
        let ours = roi_features(&stats).expect("features");
        let theirs: Vec<f64> = expected
            .as_array()
            .expect("features")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        assert_eq!(ours, theirs, "{}", case["name"]);
        assert!(theirs.iter().filter(|&&v| v != 0.0).count() >= 3);
        checked += 1;
    }
    assert_eq!(checked, 2);
}
