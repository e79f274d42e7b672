//! Plain record types the generated tables are written in, plus the small public enums they use.

use std::fmt;

/// Which resolution mode of a task the user asked for (`--fast`, `--fastest`, or neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    /// Full-resolution model(s), no flag.
    Default,
    /// `--fast`: the lower-resolution model (3 mm for `total`, 6 mm for `body`).
    Fast,
    /// `--fastest`: the lowest-resolution model (6 mm for `total`).
    Fastest,
}

impl Variant {
    /// All variants, in the order they are listed.
    pub const ALL: [Variant; 3] = [Variant::Default, Variant::Fast, Variant::Fastest];

    /// Lower-case name as TotalSegmentator prints it (`default`, `fast`, `fastest`).
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Default => "default",
            Variant::Fast => "fast",
            Variant::Fastest => "fastest",
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Image modality a task expects (registry.py `task_modality`: `_mr` suffix, plus `brain_aneurysm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modality {
    /// Computed tomography.
    Ct,
    /// Magnetic resonance.
    Mr,
}

impl Modality {
    /// Upper-case name as TotalSegmentator prints it (`CT`, `MR`).
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Ct => "CT",
            Modality::Mr => "MR",
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which folds of a model are run; their logits are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folds {
    /// Exactly these `fold_N` folders.
    List(&'static [u8]),
    /// `folds=None` in TotalSegmentator: nnU-Net uses every `fold_N` folder present on disk.
    AllAvailable,
}

/// Where a dataset's weights come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsSource {
    /// Public zip attached to a GitHub release with this tag.
    GithubRelease {
        /// Release tag, e.g. `v2.0.0-weights`.
        tag: &'static str,
    },
    /// Licensed model served by the license server; it is asked for by this task name.
    LicenseServer {
        /// Task name sent to the server (libs.py inverts `commercial_models`, so the last task
        /// naming a shared dataset wins).
        task: &'static str,
    },
    /// No download exists in 2.18 (version `TODO` in the package).
    Unreleased,
}

/// Weights of one nnU-Net dataset (`TASK_ID_WEIGHTS_CONFIGS` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetWeights {
    /// nnU-Net dataset id (e.g. 291).
    pub dataset_id: u16,
    /// Folder under the weights root and stem of the release zip (`Dataset291_...`).
    pub folder_name: &'static str,
    /// Where the zip comes from.
    pub source: WeightsSource,
}

/// One `class_map` entry of `map_to_binary.py`.
#[derive(Debug)]
pub(crate) struct ClassMapRecord {
    pub key: &'static str,
    pub labels: &'static [(u16, &'static str)],
}

/// One model of a multi-model task and its own label numbering.
#[derive(Debug)]
pub(crate) struct PartRecord {
    pub task: &'static str,
    pub part_name: &'static str,
    pub dataset_id: u16,
    pub labels: &'static [(u16, &'static str)],
}

/// One mode (sub-mode, or the only mode) of a task, `DEFAULT_CONFIG` merged in.
#[derive(Debug)]
pub(crate) struct ModeRecord {
    pub variant: Variant,
    pub dataset_ids: &'static [u16],
    pub trainer: &'static str,
    pub configuration: &'static str,
    pub resolution_mm: Option<[f64; 3]>,
    pub crop_classes: Option<&'static [&'static str]>,
    pub crop_model: Option<&'static str>,
    pub crop_addon_mm: [u32; 3],
    pub robust_crop: bool,
    pub cascade: bool,
    pub remove_outside: Option<&'static [&'static str]>,
    pub remove_outside_dilation_mm: Option<f64>,
    pub folds: Folds,
}

/// One selectable task.
#[derive(Debug)]
pub(crate) struct TaskRecord {
    pub name: &'static str,
    pub modality: Modality,
    pub licensed: bool,
    pub disallow_fast: bool,
    pub info_message: Option<&'static str>,
    pub has_sub_modes: bool,
    pub modes: &'static [ModeRecord],
}
