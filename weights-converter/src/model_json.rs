//! `model.json`: everything the inference side needs besides the weights (see
//! `docs/model-format.md`).

use serde::Serialize;

use crate::architecture::ArchitectureBlock;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Value of `format`.
pub const FORMAT: &str = "totalseg-model";
/// Value of `format_version`.
pub const FORMAT_VERSION: u32 = 1;

/// One converted checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointSource {
    /// Fold number.
    pub fold: u32,
    /// Path relative to the model folder, e.g. `fold_0/checkpoint_final.pth`.
    pub file: String,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// `trainer_name` stored in the checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trainer_name: Option<String>,
    /// `current_epoch` stored in the checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_epoch: Option<i64>,
}

/// Where the weights came from.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// `<dataset folder>/<trainer>__<plans>__<configuration>`.
    pub folder: String,
    /// The checkpoints, in fold order.
    pub checkpoints: Vec<CheckpointSource>,
}

/// nnU-Net's resampling functions and their kwargs, as the plans give them.
#[derive(Debug, Clone, Serialize)]
pub struct Resampling {
    /// `resampling_fn_data`.
    pub resampling_fn_data: Value,
    /// `resampling_fn_data_kwargs`.
    pub resampling_fn_data_kwargs: Value,
    /// `resampling_fn_probabilities`.
    pub resampling_fn_probabilities: Value,
    /// `resampling_fn_probabilities_kwargs`.
    pub resampling_fn_probabilities_kwargs: Value,
    /// `resampling_fn_seg`.
    pub resampling_fn_seg: Value,
    /// `resampling_fn_seg_kwargs`.
    pub resampling_fn_seg_kwargs: Value,
}

impl Resampling {
    /// Reads the six keys from a resolved configuration (absent keys become `null`).
    pub fn from_configuration(configuration: &Map<String, Value>) -> Self {
        let get = |k: &str| configuration.get(k).cloned().unwrap_or(Value::Null);
        Resampling {
            resampling_fn_data: get("resampling_fn_data"),
            resampling_fn_data_kwargs: get("resampling_fn_data_kwargs"),
            resampling_fn_probabilities: get("resampling_fn_probabilities"),
            resampling_fn_probabilities_kwargs: get("resampling_fn_probabilities_kwargs"),
            resampling_fn_seg: get("resampling_fn_seg"),
            resampling_fn_seg_kwargs: get("resampling_fn_seg_kwargs"),
        }
    }
}

/// The whole `model.json`, fields in the documented order.
#[derive(Debug, Serialize)]
pub struct ModelJson {
    /// Always [`FORMAT`].
    pub format: &'static str,
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Source folder and checkpoints.
    pub source: Source,
    /// `plans.dataset_name` (or the dataset folder's name).
    pub dataset_name: String,
    /// Trainer class.
    pub trainer: String,
    /// Plans identifier.
    pub plans_name: String,
    /// Configuration name.
    pub configuration: String,
    /// Folds written, in order.
    pub folds: Vec<u32>,
    /// `f32` or `f16`.
    pub dtype: &'static str,
    /// Network class, channel counts, resolved `arch_kwargs`.
    pub architecture: ArchitectureBlock,
    /// Patch size (nnU-Net axis order).
    pub patch_size: Vec<usize>,
    /// Target spacing (nnU-Net axis order).
    pub spacing: Vec<f64>,
    /// `transpose_forward`.
    pub transpose_forward: Vec<usize>,
    /// `transpose_backward`.
    pub transpose_backward: Vec<usize>,
    /// Per-channel normalisation scheme names.
    pub normalization_schemes: Vec<String>,
    /// Per-channel `use_mask_for_norm`.
    pub use_mask_for_norm: Vec<bool>,
    /// Per-channel intensity statistics (`mean`, `std`, percentiles, ...).
    pub foreground_intensity_properties_per_channel: Value,
    /// Resampling functions.
    pub resampling: Resampling,
    /// `dataset.json` `labels`, verbatim.
    pub labels: Box<RawValue>,
    /// `dataset.json` `channel_names` (or `modality`), verbatim.
    pub channel_names: Box<RawValue>,
    /// Axes the trainer allows for test-time mirroring (from the first checkpoint).
    pub inference_allowed_mirroring_axes: Option<Vec<i64>>,
    /// The original plans.json, verbatim.
    pub plans: Box<RawValue>,
    /// The original dataset.json, verbatim.
    pub dataset_json: Box<RawValue>,
}
