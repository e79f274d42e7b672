//! The converter against every genuine nnU-Net fixture under `fixtures/networks/`: weights equal
//! PyTorch's canonical state dict bit for bit (f32) or its f16 rounding, names and counts match,
//! and model.json matches what nnU-Net's PlansManager resolves.

mod common;

use std::path::Path;

use common::{assert_json_subset, fixtures, load_safetensors, model_folder};
use safetensors::Dtype;
use weights_converter::{convert_model_folder, ConvertOptions, OutputDType};

/// Reference files hold these besides the weights.
const NON_WEIGHT_KEYS: [&str; 3] = ["input", "logits", "logits_f16"];

fn network_fixture_roots() -> Vec<std::path::PathBuf> {
    let dir = fixtures().join("networks");
    let mut roots: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("reference.safetensors").is_file())
        .collect();
    roots.sort();
    assert!(
        !roots.is_empty(),
        "no network fixtures in {}",
        dir.display()
    );
    roots
}

fn check_fixture(root: &Path, dtype: OutputDType) {
    let src = model_folder(root);
    let out = tempfile::tempdir().unwrap();
    let options = ConvertOptions {
        dtype,
        ..ConvertOptions::default()
    };
    let report = convert_model_folder(&src, out.path(), &options)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()));
    let (converted, metadata) = load_safetensors(&out.path().join("model.safetensors"));
    let metadata = metadata.expect("metadata");
    assert_eq!(
        metadata.get("format").map(String::as_str),
        Some("totalseg-model")
    );
    assert_eq!(
        metadata.get("format_version").map(String::as_str),
        Some("1")
    );

    let mut expected_count = 0;
    for (i, &fold) in report.folds.iter().enumerate() {
        let reference_file = if i == 0 {
            root.join("reference.safetensors")
        } else {
            root.join(format!("reference_fold_{fold}.safetensors"))
        };
        let (reference, _) = load_safetensors(&reference_file);
        let weights: Vec<_> = reference
            .iter()
            .filter(|(name, _)| !NON_WEIGHT_KEYS.contains(&name.as_str()))
            .collect();
        assert_eq!(
            weights.len(),
            report.tensors_per_fold,
            "{}: tensor count",
            root.display()
        );
        for (name, want) in weights {
            let key = format!("fold_{fold}.{name}");
            let got = converted
                .get(&key)
                .unwrap_or_else(|| panic!("{}: missing {key}", root.display()));
            assert_eq!(got.shape, want.shape, "{key}: shape");
            match dtype {
                OutputDType::F32 => {
                    assert_eq!(got.dtype, Dtype::F32);
                    assert_eq!(got.bytes, want.bytes, "{key}: f32 bits");
                }
                OutputDType::F16 => {
                    assert_eq!(got.dtype, Dtype::F16);
                    let rounded: Vec<u8> = want
                        .values
                        .iter()
                        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                        .collect();
                    assert_eq!(got.bytes, rounded, "{key}: f16 rounding");
                }
            }
            expected_count += 1;
        }
    }
    assert_eq!(
        converted.len(),
        expected_count,
        "{}: extra tensors",
        root.display()
    );

    let model_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("model.json")).unwrap())
            .unwrap();
    let mut expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("expected_model.json")).unwrap())
            .unwrap();
    expected["dtype"] = serde_json::Value::from(dtype.name());
    assert_json_subset(
        &expected,
        &model_json,
        root.file_name().unwrap().to_str().unwrap(),
    );
    // Temporary files are gone.
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn every_network_fixture_converts_bit_exactly_in_f32() {
    for root in network_fixture_roots() {
        check_fixture(&root, OutputDType::F32);
    }
}

#[test]
fn every_network_fixture_converts_to_f16_rounding() {
    for root in network_fixture_roots() {
        check_fixture(&root, OutputDType::F16);
    }
}

#[test]
fn folds_option_selects_folds() {
    let root = fixtures().join("networks/plain_aniso_2folds");
    let src = model_folder(&root);
    let out = tempfile::tempdir().unwrap();
    let options = ConvertOptions {
        folds: Some(vec![1]),
        ..ConvertOptions::default()
    };
    let report = convert_model_folder(&src, out.path(), &options).unwrap();
    assert_eq!(report.folds, vec![1]);
    let (converted, _) = load_safetensors(&out.path().join("model.safetensors"));
    assert!(converted.keys().all(|k| k.starts_with("fold_1.")));
    let (reference, _) = load_safetensors(&root.join("reference_fold_1.safetensors"));
    let head = "decoder.seg_layers.2.weight";
    assert_eq!(
        converted[&format!("fold_1.{head}")].bytes,
        reference[head].bytes
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("model.json")).unwrap())
            .unwrap();
    assert_eq!(json["folds"], serde_json::json!([1]));
    assert_eq!(
        json["source"]["checkpoints"][0]["file"],
        "fold_1/checkpoint_final.pth"
    );
}

#[test]
fn command_line_converts_with_dtype_and_folds() {
    let root = fixtures().join("networks/plain_aniso_2folds");
    let src = model_folder(&root);
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_weights-converter"))
        .arg(&src)
        .arg(out.path())
        .args(["--dtype", "f16", "--folds", "0,1"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let (converted, _) = load_safetensors(&out.path().join("model.safetensors"));
    assert!(converted.values().all(|t| t.dtype == Dtype::F16));
    assert!(converted.keys().any(|k| k.starts_with("fold_1.")));

    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_weights-converter"))
        .arg(out.path())
        .arg(out.path().join("x"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("plans.json"));
}
