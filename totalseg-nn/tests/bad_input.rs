//! Broken model folders and bad network inputs give typed errors naming what is wrong, never a panic.

mod common;

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::Tensor;
use burn_flex::{Flex, FlexDevice};
use common::{encode, fixture_weights, model_dir, write_safetensors, FileDtype, RefTensor};
use totalseg_nn::{NnError, NnUnetModel, Precision};

const FIXTURE: &str = "plain_nobias_2ch";

fn load(dir: &Path) -> Result<NnUnetModel<Flex>, NnError> {
    NnUnetModel::<Flex>::load(dir, &FlexDevice, Precision::F32)
}

/// Rewrites model.safetensors with `edit` applied to the fixture's tensors.
fn with_edited_weights(
    edit: impl FnOnce(&mut Vec<(String, common::OwnedTensor)>),
) -> tempfile::TempDir {
    let dir = model_dir(FIXTURE, FileDtype::F32);
    let mut tensors = fixture_weights(FIXTURE, FileDtype::F32);
    edit(&mut tensors);
    write_safetensors(&dir.path().join("model.safetensors"), &tensors, None);
    dir
}

#[test]
fn the_unedited_fixture_loads() {
    let dir = model_dir(FIXTURE, FileDtype::F32);
    let model = load(dir.path()).expect("fixture loads");
    assert_eq!(model.architecture().input_channels, 2);
    assert_eq!(model.config().patch_size, vec![16, 12, 20]);
}

#[test]
fn wrong_shape_is_reported_with_tensor_and_shapes() {
    let target = "fold_0.encoder.stages.1.0.convs.0.conv.weight";
    let dir = with_edited_weights(|tensors| {
        let entry = tensors
            .iter_mut()
            .find(|(n, _)| n == target)
            .expect("tensor exists");
        // Same element count, different shape: only the shape check can catch it.
        let [o, i, a, b, c]: [usize; 5] = entry.1.shape.clone().try_into().expect("5-d");
        entry.1.shape = vec![i, o, a, b, c];
    });
    match load(dir.path()) {
        Err(NnError::ShapeMismatch {
            name,
            expected,
            found,
            path,
        }) => {
            assert_eq!(name, target);
            assert_eq!(expected, vec![8, 4, 3, 3, 3]);
            assert_eq!(found, vec![4, 8, 3, 3, 3]);
            assert!(path.ends_with("model.safetensors"));
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
}

#[test]
fn wrong_dtype_is_reported() {
    let target = "fold_0.decoder.transpconvs.0.weight";
    let dir = with_edited_weights(|tensors| {
        let entry = tensors
            .iter_mut()
            .find(|(n, _)| n == target)
            .expect("tensor exists");
        let values = entry
            .1
            .bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let t = RefTensor {
            shape: entry.1.shape.clone(),
            values,
        };
        entry.1 = encode(&t, FileDtype::F16);
    });
    match load(dir.path()) {
        Err(NnError::DtypeMismatch {
            name,
            expected,
            found,
            ..
        }) => {
            assert_eq!(name, target);
            assert_eq!(expected, "F32");
            assert_eq!(found, "F16");
        }
        other => panic!("expected DtypeMismatch, got {other:?}"),
    }
}

#[test]
fn missing_tensor_is_reported() {
    let target = "fold_0.encoder.stages.2.0.convs.2.norm.bias";
    let dir = with_edited_weights(|tensors| tensors.retain(|(n, _)| n != target));
    match load(dir.path()) {
        Err(NnError::MissingTensor { name, .. }) => assert_eq!(name, target),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
}

#[test]
fn missing_unused_deep_supervision_head_is_reported() {
    // The file must hold the complete network, heads that inference skips included.
    let target = "fold_0.decoder.seg_layers.0.weight";
    let dir = with_edited_weights(|tensors| tensors.retain(|(n, _)| n != target));
    match load(dir.path()) {
        Err(NnError::MissingTensor { name, .. }) => assert_eq!(name, target),
        other => panic!("expected MissingTensor, got {other:?}"),
    }
}

#[test]
fn extra_tensor_is_reported() {
    let dir = with_edited_weights(|tensors| {
        // A conv bias in a conv_bias=false network, and a fold model.json does not list.
        let t = RefTensor {
            shape: vec![4],
            values: vec![0.0; 4],
        };
        tensors.push((
            "fold_0.encoder.stages.0.0.convs.0.conv.bias".into(),
            encode(&t, FileDtype::F32),
        ));
        tensors.push((
            "fold_3.decoder.seg_layers.1.bias".into(),
            encode(&t, FileDtype::F32),
        ));
    });
    match load(dir.path()) {
        Err(NnError::UnexpectedTensor { name, .. }) => {
            assert_eq!(name, "fold_0.encoder.stages.0.0.convs.0.conv.bias")
        }
        other => panic!("expected UnexpectedTensor, got {other:?}"),
    }
}

#[test]
fn weights_without_format_metadata_are_rejected() {
    let dir = model_dir(FIXTURE, FileDtype::F32);
    write_safetensors(
        &dir.path().join("model.safetensors"),
        &fixture_weights(FIXTURE, FileDtype::F32),
        Some(HashMap::from([("format".to_string(), "pt".to_string())])),
    );
    assert!(matches!(
        load(dir.path()),
        Err(NnError::InvalidWeightsFile { .. })
    ));
}

#[test]
fn truncated_weights_file_is_rejected() {
    let dir = model_dir(FIXTURE, FileDtype::F32);
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        load(dir.path()),
        Err(NnError::InvalidWeightsFile { .. })
    ));
}

fn edit_model_json(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("model.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(&path, json.to_string()).unwrap();
}

#[test]
fn model_json_without_architecture_is_rejected() {
    let dir = model_dir(FIXTURE, FileDtype::F32);
    edit_model_json(dir.path(), |json| {
        json.as_object_mut().unwrap().remove("architecture");
    });
    match load(dir.path()) {
        Err(NnError::MissingArchitecture { path }) => assert!(path.ends_with("model.json")),
        other => panic!("expected MissingArchitecture, got {other:?}"),
    }
}

#[test]
fn unknown_network_class_is_rejected() {
    let dir = model_dir(FIXTURE, FileDtype::F32);
    edit_model_json(dir.path(), |json| {
        json["architecture"]["network_class_name"] = "my.lib.FancyUNet".into();
    });
    match load(dir.path()) {
        Err(NnError::UnsupportedNetwork { class_name, .. }) => {
            assert_eq!(class_name, "my.lib.FancyUNet")
        }
        other => panic!("expected UnsupportedNetwork, got {other:?}"),
    }
}

#[test]
fn inconsistent_architecture_is_rejected() {
    let dir = model_dir(FIXTURE, FileDtype::F32);
    edit_model_json(dir.path(), |json| {
        json["architecture"]["arch_kwargs"]["strides"] = serde_json::json!([[1, 1, 1], [2, 2, 2]]);
    });
    match load(dir.path()) {
        Err(NnError::InvalidConfig { reason, .. }) => {
            assert!(reason.contains("strides"), "{reason}")
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn unknown_arch_kwarg_is_rejected() {
    // A field this crate does not understand could change the network: refuse it.
    let dir = model_dir(FIXTURE, FileDtype::F32);
    edit_model_json(dir.path(), |json| {
        json["architecture"]["arch_kwargs"]["block"] = "BottleneckD".into();
    });
    match load(dir.path()) {
        Err(NnError::Json { source, .. }) => assert!(source.to_string().contains("block")),
        other => panic!("expected Json error, got {other:?}"),
    }
}

#[test]
fn declared_dtype_must_match_the_file() {
    let dir = model_dir(FIXTURE, FileDtype::F32);
    edit_model_json(dir.path(), |json| json["dtype"] = "f16".into());
    assert!(matches!(
        load(dir.path()),
        Err(NnError::DtypeMismatch { .. })
    ));
}

#[test]
fn missing_files_are_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    match load(dir.path()) {
        Err(NnError::Io { path, .. }) => assert!(path.ends_with("model.json")),
        other => panic!("expected Io, got {other:?}"),
    }
    let dir = model_dir(FIXTURE, FileDtype::F32);
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    match load(dir.path()) {
        Err(NnError::Io { path, .. }) => assert!(path.ends_with("model.safetensors")),
        other => panic!("expected Io, got {other:?}"),
    }
}

#[test]
fn bad_network_inputs_are_errors() {
    let dir = model_dir(FIXTURE, FileDtype::F32);
    let model = load(dir.path()).unwrap();
    let wrong_channels = Tensor::<Flex, 5>::zeros([1, 1, 16, 12, 20], &FlexDevice);
    assert!(matches!(
        model.forward_logits(0, wrong_channels),
        Err(NnError::InvalidInput { .. })
    ));
    // Total stride is [4, 4, 2]: 10 is not a multiple of 4.
    let wrong_size = Tensor::<Flex, 5>::zeros([1, 2, 16, 10, 20], &FlexDevice);
    assert!(matches!(
        model.forward_logits(0, wrong_size),
        Err(NnError::InvalidInput { .. })
    ));
    let no_such_fold = Tensor::<Flex, 5>::zeros([1, 2, 16, 12, 20], &FlexDevice);
    assert!(matches!(
        model.forward_logits(1, no_such_fold),
        Err(NnError::InvalidInput { .. })
    ));
    // A smaller but valid size runs (sliding windows may use any multiple of the stride).
    let small = Tensor::<Flex, 5>::zeros([1, 2, 8, 8, 4], &FlexDevice);
    assert_eq!(
        model.forward_logits(0, small).unwrap().dims(),
        [1, 2, 8, 8, 4]
    );
}
