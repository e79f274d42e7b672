//! An nnU-Net `checkpoint_final.pth`: the `network_weights` state dict plus the few trainer
//! fields the converter records. Everything else (optimizer state, logging) is parsed and
//! ignored.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use crate::error::ConvertError;
use crate::pickle::{Heap, Value};

use super::archive::TorchArchive;
use super::rebuild::{numpy_scalar, tensor_ref, torch_device};
use super::tensor::TensorRef;

/// One state-dict entry: the key as saved and the tensor view it names.
#[derive(Debug, Clone, PartialEq)]
pub struct StateDictEntry {
    /// The key in `network_weights`, exactly as saved.
    pub name: String,
    /// Where its values live.
    pub tensor: TensorRef,
}

/// A parsed nnU-Net checkpoint whose tensor data is read on demand.
pub struct NnUnetCheckpoint<R = BufReader<File>> {
    archive: TorchArchive<R>,
    /// `network_weights`, in saved order (a repeated key keeps its first position and last
    /// value, as a Python dict does).
    pub network_weights: Vec<StateDictEntry>,
    /// `trainer_name`, when present.
    pub trainer_name: Option<String>,
    /// `init_args["configuration"]`, when present.
    pub configuration: Option<String>,
    /// `init_args["fold"]`, when an int.
    pub fold: Option<i64>,
    /// `init_args["device"]` as a string (`"cuda"`), when a `torch.device`.
    pub device: Option<String>,
    /// `current_epoch`, when an int.
    pub current_epoch: Option<i64>,
    /// `_best_ema` (a numpy float64 scalar), when present.
    pub best_ema: Option<f64>,
    /// `inference_allowed_mirroring_axes`, when a tuple of ints.
    pub inference_allowed_mirroring_axes: Option<Vec<i64>>,
}

impl NnUnetCheckpoint {
    /// Opens and parses `path`. Only the pickle is read here; tensor data is read by
    /// [`read_f32`](Self::read_f32).
    ///
    /// ```no_run
    /// use weights_converter::torch::NnUnetCheckpoint;
    /// let checkpoint = NnUnetCheckpoint::open("fold_0/checkpoint_final.pth".as_ref())?;
    /// for entry in &checkpoint.network_weights {
    ///     println!("{} {:?}", entry.name, entry.tensor.shape);
    /// }
    /// # Ok::<(), weights_converter::ConvertError>(())
    /// ```
    pub fn open(path: &Path) -> Result<Self, ConvertError> {
        Self::from_archive(TorchArchive::open(path)?)
    }
}

impl<R: Read + Seek> NnUnetCheckpoint<R> {
    /// Parses an already opened archive.
    pub fn from_archive(mut archive: TorchArchive<R>) -> Result<Self, ConvertError> {
        let unpickled = archive.unpickle()?;
        let heap = &unpickled.heap;
        let root = &unpickled.root;
        let path = archive.path().to_path_buf();
        let weights = match heap.dict_get(root, "network_weights") {
            Some(w) => w,
            None => {
                return Err(ConvertError::MissingNetworkWeights {
                    path,
                    found: describe_top_level(heap, root),
                })
            }
        };
        let items =
            heap.dict_items(weights)
                .ok_or_else(|| ConvertError::MissingNetworkWeights {
                    path: path.clone(),
                    found: format!("`network_weights` is a {}", heap.describe(weights)),
                })?;
        let mut network_weights: Vec<StateDictEntry> = Vec::with_capacity(items.len());
        let mut position: HashMap<String, usize> = HashMap::new();
        for (key, value) in items {
            let name = match key {
                Value::Str(s) => s.to_string(),
                other => {
                    return Err(ConvertError::MissingNetworkWeights {
                        path,
                        found: format!("a `network_weights` key is a {}", heap.describe(other)),
                    })
                }
            };
            let tensor = tensor_ref(heap, value).map_err(|reason| ConvertError::BadTensor {
                path: path.clone(),
                tensor: name.clone(),
                reason,
            })?;
            match position.get(&name) {
                Some(&i) => network_weights[i].tensor = tensor,
                None => {
                    position.insert(name.clone(), network_weights.len());
                    network_weights.push(StateDictEntry { name, tensor });
                }
            }
        }
        let init_args = heap.dict_get(root, "init_args");
        let init_str = |key: &str| match init_args.and_then(|a| heap.dict_get(a, key)) {
            Some(Value::Str(s)) => Some(s.to_string()),
            _ => None,
        };
        let int_of = |v: Option<&Value>| match v {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        };
        let checkpoint = NnUnetCheckpoint {
            trainer_name: match heap.dict_get(root, "trainer_name") {
                Some(Value::Str(s)) => Some(s.to_string()),
                _ => None,
            },
            configuration: init_str("configuration"),
            fold: int_of(init_args.and_then(|a| heap.dict_get(a, "fold"))),
            device: init_args
                .and_then(|a| heap.dict_get(a, "device"))
                .and_then(|d| torch_device(heap, d)),
            current_epoch: int_of(heap.dict_get(root, "current_epoch")),
            best_ema: heap.dict_get(root, "_best_ema").and_then(|v| match v {
                Value::Float(f) => Some(*f),
                other => numpy_scalar(heap, other),
            }),
            inference_allowed_mirroring_axes: heap
                .dict_get(root, "inference_allowed_mirroring_axes")
                .and_then(|v| heap.sequence(v))
                .and_then(|axes| axes.iter().map(|a| int_of(Some(a))).collect()),
            network_weights,
            archive,
        };
        Ok(checkpoint)
    }

    /// The checkpoint file.
    pub fn path(&self) -> &Path {
        self.archive.path()
    }

    /// The values of `entry` as `f32` in row-major order, with its storage's bounds checked.
    pub fn read_f32(&mut self, entry: &StateDictEntry) -> Result<Vec<f32>, ConvertError> {
        let tensor = &entry.tensor;
        let path = self.archive.path().to_path_buf();
        let bad = |reason: String| ConvertError::BadTensor {
            path: path.clone(),
            tensor: entry.name.clone(),
            reason,
        };
        if !tensor.dtype.is_float() {
            return Err(bad(format!(
                "dtype {:?} is not floating point",
                tensor.dtype
            )));
        }
        let needed = tensor
            .storage_bytes_needed()
            .ok_or_else(|| bad("offset/size/stride overflow".into()))?;
        let available = self.archive.storage_len(&tensor.storage_key)?;
        if needed > available {
            return Err(ConvertError::StorageTooShort {
                path: path.clone(),
                tensor: entry.name.clone(),
                storage: tensor.storage_key.clone(),
                needed,
                available,
            });
        }
        let storage = self.archive.read_storage(&tensor.storage_key)?;
        let order = self.archive.byte_order();
        tensor.to_f32(&storage, order).ok_or_else(|| {
            bad(format!(
                "cannot read {:?} elements of shape {:?} stride {:?} from a {}-byte storage",
                tensor.dtype,
                tensor.shape,
                tensor.stride,
                storage.len()
            ))
        })
    }
}

fn describe_top_level(heap: &Heap, root: &Value) -> String {
    match heap.dict_items(root) {
        Some(items) => {
            let keys: Vec<String> = items
                .iter()
                .take(8)
                .map(|(k, _)| match k {
                    Value::Str(s) => format!("{s:?}"),
                    other => heap.describe(other),
                })
                .collect();
            format!("top-level dict keys: [{}]", keys.join(", "))
        }
        None => format!("the file holds a {}", heap.describe(root)),
    }
}
