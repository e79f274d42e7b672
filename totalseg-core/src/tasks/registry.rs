//! `TaskRegistry` (every task of the package) and `TaskInfo` (one task, all its variants).

use super::class_map::ClassMap;
use super::data::tasks::{SKIPPED_TASKS, TASK_RECORDS, TOTALSEGMENTATOR_VERSION};
use super::error::{TaskError, UnknownName};
use super::records::{Modality, ModeRecord, TaskRecord, Variant};
use super::suggest::suggest;
use super::task::{resolve_task, ModelSize, Task};

/// What to run of a task: the resolution variant and, for `total_v3`, the model size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskOptions {
    /// `--fast` / `--fastest` / neither.
    pub variant: Variant,
    /// `--model_size` (`small` only for `total_v3`).
    pub model_size: ModelSize,
}

impl Default for TaskOptions {
    fn default() -> Self {
        Self {
            variant: Variant::Default,
            model_size: ModelSize::Big,
        }
    }
}

/// Every task of TotalSegmentator (the version in [`TaskRegistry::version`]), generated from the
/// installed package by `tools/gen_task_registry.py`.
///
/// ```
/// use totalseg_core::tasks::{TaskRegistry, Variant};
///
/// let registry = TaskRegistry::new();
/// let total = registry.task("total", Variant::Default)?;
/// assert_eq!(total.dataset_ids(), vec![291, 292, 293, 294, 295]);
/// assert_eq!(total.resolution_mm, Some([1.5, 1.5, 1.5]));
/// assert_eq!(total.step_size, 0.8);
/// assert_eq!(
///     total.models[0].relative_model_dir(),
///     std::path::Path::new("Dataset291_TotalSegmentator_part1_organs_1559subj")
///         .join("nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres"),
/// );
/// assert!(registry.task("totl", Variant::Default).is_err());
/// # Ok::<(), totalseg_core::tasks::TaskError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskRegistry;

impl TaskRegistry {
    /// The registry of the generated tables.
    pub fn new() -> Self {
        Self
    }

    /// Version of the TotalSegmentator package the tables were generated from.
    pub fn version(&self) -> &'static str {
        TOTALSEGMENTATOR_VERSION
    }

    /// Every selectable task, in the order TotalSegmentator offers them on the command line.
    pub fn tasks(&self) -> impl Iterator<Item = TaskInfo> {
        TASK_RECORDS.iter().map(|record| TaskInfo { record })
    }

    /// Names of every selectable task, in order.
    pub fn task_names(&self) -> impl Iterator<Item = &'static str> {
        TASK_RECORDS.iter().map(|record| record.name)
    }

    /// Tasks of the package left out of the registry, with the reason (`test`).
    pub fn skipped_tasks(&self) -> &'static [(&'static str, &'static str)] {
        SKIPPED_TASKS
    }

    /// One task by name; an unknown name gives [`TaskError::UnknownTask`] with close names.
    pub fn info(&self, name: &str) -> Result<TaskInfo, TaskError> {
        TASK_RECORDS
            .iter()
            .find(|record| record.name == name)
            .map(|record| TaskInfo { record })
            .ok_or_else(|| {
                TaskError::UnknownTask(UnknownName {
                    name: name.to_string(),
                    suggestions: suggest(name, self.task_names()),
                })
            })
    }

    /// A task resolved for a variant (big model size). Same as
    /// [`resolve`](Self::resolve) with `TaskOptions { variant, ..Default::default() }`.
    pub fn task(&self, name: &str, variant: Variant) -> Result<Task, TaskError> {
        self.resolve(
            name,
            TaskOptions {
                variant,
                ..TaskOptions::default()
            },
        )
    }

    /// A task resolved the way TotalSegmentator's `get_task_config` does it:
    /// tasks with sub-modes pick the variant's mode (`--fastest` falls back to the `fast` mode
    /// where there is no `fastest`, e.g. `body`); tasks without sub-modes run their only mode,
    /// reject `--fast` when they forbid it and ignore `--fastest` (as the package does).
    pub fn resolve(&self, name: &str, options: TaskOptions) -> Result<Task, TaskError> {
        let info = self.info(name)?;
        resolve_task(info.record, options)
    }
}

/// One task as listed: name, modality, license, class map and its variants.
#[derive(Debug, Clone, Copy)]
pub struct TaskInfo {
    pub(crate) record: &'static TaskRecord,
}

impl TaskInfo {
    /// Task name (`--task`).
    pub fn name(&self) -> &'static str {
        self.record.name
    }

    /// Image modality the task expects.
    pub fn modality(&self) -> Modality {
        self.record.modality
    }

    /// True when the task needs a license (weights from the license server).
    pub fn licensed(&self) -> bool {
        self.record.licensed
    }

    /// True when `--fast` is an error for this task.
    pub fn disallows_fast(&self) -> bool {
        self.record.disallow_fast
    }

    /// Message TotalSegmentator prints when the task starts (e.g. `brain_aneurysm`: TOF MRI only).
    pub fn info_message(&self) -> Option<&'static str> {
        self.record.info_message
    }

    /// Variants with their own model: `default`, and `fast`/`fastest` for the tasks with sub-modes.
    pub fn variants(&self) -> impl Iterator<Item = Variant> {
        self.record.modes.iter().map(|mode| mode.variant)
    }

    /// Dataset ids of a variant's model(s); `None` when the variant has no own mode.
    pub fn dataset_ids(&self, variant: Variant) -> Option<&'static [u16]> {
        self.mode(variant).map(|mode| mode.dataset_ids)
    }

    /// Target spacing (x, y, z in mm) of a variant; `Some(None)` when the variant runs at the
    /// image's own spacing, `None` when the variant has no own mode.
    pub fn resolution_mm(&self, variant: Variant) -> Option<Option<[f64; 3]>> {
        self.mode(variant).map(|mode| mode.resolution_mm)
    }

    /// The task's output class map.
    pub fn class_map(&self) -> Result<ClassMap, TaskError> {
        ClassMap::get(self.record.name).ok_or_else(|| {
            TaskError::Inconsistent(format!("task '{}' has no class map", self.record.name))
        })
    }

    fn mode(&self, variant: Variant) -> Option<&'static ModeRecord> {
        self.record
            .modes
            .iter()
            .find(|mode| mode.variant == variant)
    }
}
