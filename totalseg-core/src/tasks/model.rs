//! `ModelSpec`: one nnU-Net model a task runs, and where its files are.

use std::path::{Path, PathBuf};

use super::class_map::ClassMap;
use super::records::{DatasetWeights, Folds};

/// One nnU-Net model: dataset, trainer, plans, configuration, folds, weights location and the
/// meaning of its output labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelSpec {
    /// nnU-Net dataset id (e.g. 291).
    pub dataset_id: u16,
    /// Trainer class name (e.g. `nnUNetTrainerNoMirroring`).
    pub trainer: &'static str,
    /// Plans identifier (e.g. `nnUNetPlans`).
    pub plans: &'static str,
    /// nnU-Net configuration (e.g. `3d_fullres`, `3d_fullres_high`, `3d_lowres_high`).
    pub configuration: &'static str,
    /// Folds whose logits are averaged.
    pub folds: Folds,
    /// Weights folder and download source.
    pub weights: &'static DatasetWeights,
    /// Meaning of the model's output labels: the part map for one model of a multi-model task,
    /// else the task's class map.
    pub labels: ClassMap,
    /// Extra labels the model outputs that TotalSegmentator zeroes at model resolution
    /// (`<task>_auxiliary` maps, e.g. `kidney_cysts`: 3 kidney_left, 4 kidney_right).
    pub auxiliary_labels: Option<ClassMap>,
}

impl ModelSpec {
    /// The dataset folder name, `DatasetNNN_<name>`.
    pub fn dataset_folder_name(&self) -> &'static str {
        self.weights.folder_name
    }

    /// The training-output subfolder name, `<trainer>__<plans>__<configuration>`.
    pub fn trainer_folder_name(&self) -> String {
        format!("{}__{}__{}", self.trainer, self.plans, self.configuration)
    }

    /// Model folder relative to the weights root: `DatasetNNN_<name>/<trainer>__<plans>__<configuration>`
    /// (it holds `plans.json`, `dataset.json` and `fold_N/checkpoint_final.pth`).
    pub fn relative_model_dir(&self) -> PathBuf {
        Path::new(self.weights.folder_name).join(self.trainer_folder_name())
    }

    /// Model folder under a weights root (`$TOTALSEG_WEIGHTS_PATH` or `<home>/nnunet/results`).
    pub fn model_dir(&self, weights_root: &Path) -> PathBuf {
        weights_root.join(self.relative_model_dir())
    }

    /// Public release zip of the weights, `None` for licensed or unreleased ones.
    pub fn download_url(&self) -> Option<String> {
        self.weights.download_url()
    }

    /// Number of output channels the class maps imply: background + classes + auxiliary
    /// classes (the model's `dataset.json` is authoritative).
    pub fn num_output_channels(&self) -> usize {
        1 + self.labels.len() + self.auxiliary_labels.map_or(0, |aux| aux.len())
    }
}
