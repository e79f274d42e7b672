//! Test helpers: turn a network fixture (fixtures/networks/<name>, made by
//! tools/fixtures/make_network_fixtures.py) into a converted model folder.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, Tensor, TensorData};
use burn_flex::{Flex, FlexDevice};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

/// Every fixture, by directory name.
pub const FIXTURES: [&str; 4] = [
    "plain_aniso_2folds",
    "plain_oldformat",
    "plain_nobias_2ch",
    "resenc",
];

pub fn fixture_dir(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/networks")).join(name)
}

/// One tensor read from a reference file, as f32 values (f16 tensors are widened).
#[derive(Debug, Clone)]
pub struct RefTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl RefTensor {
    pub fn to_burn<const D: usize>(&self) -> Tensor<Flex, D> {
        Tensor::from_data(
            TensorData::new(self.values.clone(), self.shape.clone()),
            (&FlexDevice, DType::F32),
        )
    }
}

/// All tensors of a reference safetensors file.
pub fn read_reference(path: &Path) -> HashMap<String, RefTensor> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    st.iter()
        .map(|(name, view)| {
            let values = match view.dtype() {
                Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                Dtype::F16 => view
                    .data()
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                other => panic!("unexpected dtype {other:?} in {}", path.display()),
            };
            (
                name.to_string(),
                RefTensor {
                    shape: view.shape().to_vec(),
                    values,
                },
            )
        })
        .collect()
}

/// The reference file of a fixture's fold (`reference.safetensors` for the first fold).
pub fn reference_path(name: &str, fold: u32, first_fold: u32) -> PathBuf {
    if fold == first_fold {
        fixture_dir(name).join("reference.safetensors")
    } else {
        fixture_dir(name).join(format!("reference_fold_{fold}.safetensors"))
    }
}

/// The folds listed in the fixture's expected model.json.
pub fn fixture_folds(name: &str) -> Vec<u32> {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir(name).join("expected_model.json")).expect("read"),
    )
    .expect("json");
    json["folds"]
        .as_array()
        .expect("folds")
        .iter()
        .map(|f| f.as_u64().expect("fold") as u32)
        .collect()
}

/// Names of the reference entries that are not weights.
pub fn is_weight(name: &str) -> bool {
    !matches!(name, "input" | "logits" | "logits_f16")
}

/// Element type to write weights in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileDtype {
    F32,
    F16,
}

/// A named tensor to be written into model.safetensors.
pub struct OwnedTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

pub fn encode(t: &RefTensor, dtype: FileDtype) -> OwnedTensor {
    match dtype {
        FileDtype::F32 => OwnedTensor {
            dtype: Dtype::F32,
            shape: t.shape.clone(),
            bytes: t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        },
        FileDtype::F16 => OwnedTensor {
            dtype: Dtype::F16,
            shape: t.shape.clone(),
            bytes: t
                .values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
        },
    }
}

/// All weights of the fixture as they appear in model.safetensors (`fold_<k>.` prefixes).
pub fn fixture_weights(name: &str, dtype: FileDtype) -> Vec<(String, OwnedTensor)> {
    let folds = fixture_folds(name);
    let mut out = Vec::new();
    for &fold in &folds {
        let reference = read_reference(&reference_path(name, fold, folds[0]));
        for (tensor_name, t) in reference.iter().filter(|(n, _)| is_weight(n)) {
            out.push((format!("fold_{fold}.{tensor_name}"), encode(t, dtype)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Writes a safetensors file with the model-format metadata (or the given metadata).
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, OwnedTensor)],
    metadata: Option<HashMap<String, String>>,
) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                TensorView::new(t.dtype, t.shape.clone(), &t.bytes).expect("view"),
            )
        })
        .collect();
    let metadata = metadata.unwrap_or_else(|| {
        HashMap::from([
            ("format".to_string(), "totalseg-model".to_string()),
            ("format_version".to_string(), "1".to_string()),
        ])
    });
    safetensors::serialize_to_file(views, Some(metadata), path).expect("write safetensors");
}

/// A converted model folder for the fixture: expected_model.json as model.json (with `dtype`
/// set to match), and model.safetensors from the reference weights.
pub fn model_dir(name: &str, dtype: FileDtype) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir(name).join("expected_model.json")).expect("read"),
    )
    .expect("json");
    json["dtype"] = serde_json::Value::from(match dtype {
        FileDtype::F32 => "f32",
        FileDtype::F16 => "f16",
    });
    std::fs::write(dir.path().join("model.json"), json.to_string()).expect("write json");
    write_safetensors(
        &dir.path().join("model.safetensors"),
        &fixture_weights(name, dtype),
        None,
    );
    dir
}

/// Largest absolute difference between a Burn tensor (any float dtype) and reference values.
pub fn max_abs_diff(actual: Tensor<Flex, 5>, expected: &RefTensor) -> f32 {
    assert_eq!(actual.dims().to_vec(), expected.shape, "logits shape");
    let actual: Vec<f32> = actual
        .cast(DType::F32)
        .into_data()
        .to_vec::<f32>()
        .expect("f32 data");
    actual
        .iter()
        .zip(&expected.values)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max)
}
