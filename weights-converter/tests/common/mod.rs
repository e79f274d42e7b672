//! Shared helpers of the integration tests: fixture paths and safetensors reading.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

/// `fixtures/` at the repository root.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The single nnU-Net model folder (the one holding plans.json) two levels below `root`.
pub fn model_folder(root: &Path) -> PathBuf {
    let mut found = Vec::new();
    for dataset in std::fs::read_dir(root).unwrap() {
        let dataset = dataset.unwrap().path();
        if !dataset.is_dir() {
            continue;
        }
        for model in std::fs::read_dir(&dataset).unwrap() {
            let model = model.unwrap().path();
            if model.join("plans.json").is_file() {
                found.push(model);
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "expected one model folder under {}",
        root.display()
    );
    found.remove(0)
}

/// A tensor read from a safetensors file: dtype, shape and values widened to f32, plus the raw bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
    pub bytes: Vec<u8>,
}

/// Every tensor of a safetensors file, and its metadata.
pub fn load_safetensors(
    path: &Path,
) -> (
    BTreeMap<String, Loaded>,
    Option<std::collections::HashMap<String, String>>,
) {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, metadata) = SafeTensors::read_metadata(&data).unwrap();
    let st = SafeTensors::deserialize(&data).unwrap();
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let bytes = view.data().to_vec();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes(b.try_into().unwrap()).to_f32())
                .collect(),
            _ => Vec::new(),
        };
        out.insert(
            name,
            Loaded {
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                values,
                bytes,
            },
        );
    }
    (out, metadata.metadata().clone())
}

/// Asserts every field of `expected` is in `actual` with an equal value (objects recursively,
/// so `actual` may carry extra documented fields).
pub fn assert_json_subset(expected: &serde_json::Value, actual: &serde_json::Value, at: &str) {
    match (expected, actual) {
        (serde_json::Value::Object(e), serde_json::Value::Object(a)) => {
            for (key, value) in e {
                let inner = a.get(key).unwrap_or_else(|| panic!("{at}.{key} missing"));
                assert_json_subset(value, inner, &format!("{at}.{key}"));
            }
        }
        (serde_json::Value::Array(e), serde_json::Value::Array(a)) => {
            assert_eq!(e.len(), a.len(), "{at}: length");
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                assert_json_subset(x, y, &format!("{at}[{i}]"));
            }
        }
        (serde_json::Value::Number(e), serde_json::Value::Number(a)) => {
            assert_eq!(e.as_f64(), a.as_f64(), "{at}");
        }
        _ => assert_eq!(expected, actual, "{at}"),
    }
}
