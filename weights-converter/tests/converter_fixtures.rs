//! Edge-case fixtures from `tools/fixtures/make_converter_fixtures.py`: `inherits_from` over
//! an older-format parent, tensor views and dtypes torch keeps as they are, pickle protocol 4,
//! big-endian storages, and files that are not usable checkpoints.

mod common;

use common::{assert_json_subset, fixtures, load_safetensors, model_folder};
use weights_converter::pickle::Value;
use weights_converter::torch::{
    numpy_scalar, tensor_ref, torch_device, NnUnetCheckpoint, TorchArchive,
};
use weights_converter::{convert_model_folder, ConvertError, ConvertOptions};

#[test]
fn inherits_from_an_old_format_configuration() {
    let root = fixtures().join("converter/inherits_from");
    let src = model_folder(&root);
    let out = tempfile::tempdir().unwrap();
    let report = convert_model_folder(&src, out.path(), &ConvertOptions::default()).unwrap();
    assert_eq!(report.configuration, "3d_fullres_small");

    let json_text = std::fs::read_to_string(out.path().join("model.json")).unwrap();
    let model_json: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("expected_model.json")).unwrap())
            .unwrap();
    assert_json_subset(&expected, &model_json, "model.json");
    // The child's base features (3) over the parent's (2), capped at 4.
    assert_eq!(
        model_json["architecture"]["arch_kwargs"]["features_per_stage"],
        serde_json::json!([3, 4])
    );
    // `labels` keeps dataset.json's key order.
    let labels_at = |key: &str| json_text.find(&format!("\"{key}\"")).unwrap();
    assert!(labels_at("zeta") < labels_at("alpha"));
    // plans.json and dataset.json are embedded unchanged.
    let plans: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("plans.json")).unwrap()).unwrap();
    assert_eq!(model_json["plans"], plans);

    let (converted, _) = load_safetensors(&out.path().join("model.safetensors"));
    let (reference, _) = load_safetensors(&root.join("reference.safetensors"));
    assert_eq!(converted.len(), reference.len());
    for (name, want) in &reference {
        assert_eq!(
            converted[&format!("fold_0.{name}")].bytes,
            want.bytes,
            "{name}"
        );
    }
}

fn exotic(file: &str) -> NnUnetCheckpoint {
    NnUnetCheckpoint::open(&fixtures().join("converter").join(file)).unwrap()
}

fn check_exotic_values(file: &str) {
    let mut checkpoint = exotic(file);
    let (expected, _) =
        load_safetensors(&fixtures().join("converter/exotic_tensors_expected.safetensors"));
    let entries = checkpoint.network_weights.clone();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "transposed",
            "offset_slice",
            "strided_slice",
            "shared_a",
            "shared_b",
            "half",
            "bfloat16",
            "double",
            "conv5d",
            "scalar",
            "empty",
            "int_buffer"
        ]
    );
    for entry in &entries {
        match expected.get(&entry.name) {
            Some(want) => {
                assert_eq!(entry.tensor.shape, want.shape, "{file} {}", entry.name);
                let got = checkpoint.read_f32(entry).unwrap();
                assert_eq!(got, want.values, "{file} {}", entry.name);
            }
            None => {
                assert_eq!(entry.name, "int_buffer");
                assert!(matches!(
                    checkpoint.read_f32(entry),
                    Err(ConvertError::BadTensor { .. })
                ));
            }
        }
    }
    assert!(
        !entries[0].tensor.is_contiguous(),
        "the transposed view must stay a view"
    );
    assert_eq!(entries[3].tensor.storage_key, entries[4].tensor.storage_key);
    assert_eq!(checkpoint.trainer_name.as_deref(), Some("nnUNetTrainer"));
    assert_eq!(checkpoint.configuration.as_deref(), Some("3d_fullres"));
    assert_eq!(checkpoint.fold, Some(3));
    assert_eq!(checkpoint.device.as_deref(), Some("cuda"));
    assert_eq!(checkpoint.current_epoch, Some(12));
    assert_eq!(checkpoint.best_ema, Some(0.8123));
    assert_eq!(
        checkpoint.inference_allowed_mirroring_axes,
        Some(vec![0, 2])
    );
}

#[test]
fn exotic_views_and_dtypes_read_exactly() {
    check_exotic_values("exotic_tensors.pth");
}

#[test]
fn pickle_protocol_four_reads_the_same() {
    check_exotic_values("exotic_tensors_protocol4.pth");
}

#[test]
fn big_endian_storages_read_the_same() {
    check_exotic_values("exotic_tensors_big_endian.pth");
}

#[test]
fn odd_pickle_values_are_read_or_kept_opaque() {
    let path = fixtures().join("converter/exotic_tensors.pth");
    let mut archive = TorchArchive::open(&path).unwrap();
    let u = archive.unpickle().unwrap();
    let heap = &u.heap;
    let odd = heap.dict_get(&u.root, "odd_values").unwrap();
    let get = |k: &str| heap.dict_get(odd, k).unwrap_or_else(|| panic!("{k}"));
    assert_eq!(heap.describe(get("set")), "set");
    assert_eq!(heap.describe(get("frozenset")), "set");
    assert!(matches!(get("bigint"), Value::BigInt(_)));
    assert_eq!(get("negative"), &Value::Int(-5));
    assert_eq!(get("float"), &Value::Float(0.1));
    assert_eq!(get("true"), &Value::Bool(true));
    assert_eq!(numpy_scalar(heap, get("numpy_f64")), Some(0.8123));
    assert_eq!(numpy_scalar(heap, get("numpy_i64")), Some(-3.0));
    assert_eq!(numpy_scalar(heap, get("numpy_f32")), Some(1.5));
    assert_eq!(torch_device(heap, get("device")).as_deref(), Some("cuda:0"));
    assert!(heap.describe(get("unknown")).contains("UnknownThing"));
    assert!(heap.describe(get("complex")).contains("complex"));
    // bytes pickle as `_codecs.encode(text, 'latin1')` in protocol 2.
    assert_eq!(
        weights_converter::torch::codecs_encode(heap, get("bytes")),
        Some(vec![0x00, 0xff, 0x10])
    );
    let parameter = tensor_ref(heap, heap.dict_get(&u.root, "parameter").unwrap()).unwrap();
    assert_eq!(parameter.shape, vec![2]);
}

#[test]
fn a_plain_state_dict_is_not_a_checkpoint() {
    let path = fixtures().join("converter/not_a_checkpoint.pth");
    match NnUnetCheckpoint::open(&path) {
        Err(ConvertError::MissingNetworkWeights { path: p, found }) => {
            assert_eq!(p, path);
            assert!(found.contains("state_dict"), "{found}");
        }
        other => panic!("expected MissingNetworkWeights, got {:?}", other.err()),
    }
}

#[test]
fn the_legacy_format_is_named_as_such() {
    let path = fixtures().join("converter/legacy_format.pth");
    let err = NnUnetCheckpoint::open(&path).err().unwrap();
    assert!(
        matches!(err, ConvertError::LegacyTorchFormat { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("legacy_format.pth"));
}
