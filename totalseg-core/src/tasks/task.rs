//! `Task`: one task resolved for a variant, with everything the pipeline needs to run it.

use super::class_map::ClassMap;
use super::data::class_maps::PART_MAPS;
use super::data::tasks::DEFAULT_PLANS;
use super::error::TaskError;
use super::model::ModelSpec;
use super::postprocessing::{Postprocessing, RemoveOutside};
use super::records::{DatasetWeights, Folds, Modality, ModeRecord, TaskRecord, Variant};
use super::registry::TaskOptions;

/// Plans of `total_v3 --model_size small` (python_api.py `get_task_config`).
pub const SMALL_MODEL_PLANS: &str = "nnUNetResEncUNetLPlans_8";

/// Sliding-window step size (fraction of the patch) of the `total` family (nnunet.py).
pub const STEP_SIZE_TOTAL: f64 = 0.8;

/// Sliding-window step size of every other task.
pub const STEP_SIZE_DEFAULT: f64 = 0.5;

/// Prediction tasks that run with [`STEP_SIZE_TOTAL`] (nnunet.py tests the task name).
const TOTAL_FAMILY: [&str; 3] = ["total", "total_v3", "total_mr"];

/// `--model_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelSize {
    /// Default plans (`nnUNetPlans`).
    #[default]
    Big,
    /// `total_v3` only: ResEnc-L plans ([`SMALL_MODEL_PLANS`]).
    Small,
}

/// Step size nnunet.py uses when predicting under this task name.
pub fn step_size_for(prediction_task: &str) -> f64 {
    if TOTAL_FAMILY.contains(&prediction_task) {
        STEP_SIZE_TOTAL
    } else {
        STEP_SIZE_DEFAULT
    }
}

/// A task resolved for one variant: the models it runs and how (`get_task_config` + nnunet.py).
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Task name (`--task`); also the class map of the output.
    pub name: &'static str,
    /// Task name the prediction runs under (differs only for `vertebrae_pp_refined`, which
    /// predicts as `vertebrae_pp`); decides step size and task-specific postprocessing.
    pub prediction_task: &'static str,
    /// Variant asked for.
    pub requested_variant: Variant,
    /// Mode actually used (`body --fastest` runs `fast`; tasks without sub-modes run `default`).
    pub variant: Variant,
    /// Model size asked for.
    pub model_size: ModelSize,
    /// Image modality.
    pub modality: Modality,
    /// True when the weights need a license.
    pub licensed: bool,
    /// Models in run (and merge) order; several for the multi-model tasks (`total`: 291-295).
    pub models: Vec<ModelSpec>,
    /// Target spacing (x, y, z) in mm the image is resampled to; `None`: native spacing.
    pub resolution_mm: Option<[f64; 3]>,
    /// Classes of the crop pre-pass whose union the image is cropped to; `None`: no crop.
    pub crop_classes: Option<&'static [&'static str]>,
    /// Task whose full output is cropped to instead of the default crop model (`teeth`:
    /// `craniofacial_structures`).
    pub crop_model: Option<&'static str>,
    /// `crop_addon` of the configuration in mm. The crop pre-pass of the default crop model
    /// ignores it and uses 20 mm (see [`Task::crop_pre_pass`]); it is the margin of the
    /// `crop_model` crop and of the `--body_seg` crop.
    pub crop_addon_mm: [u32; 3],
    /// True when the task itself asks for the 3 mm crop model (`--robust_crop` adds to it).
    pub robust_crop: bool,
    /// Cascade input (second channel from the crop pre-pass); no 2.18 task sets it.
    pub cascade: bool,
    /// Sliding-window step size: 0.8 for `total`, `total_v3`, `total_mr` (all variants), else 0.5.
    pub step_size: f64,
    /// Task-specific postprocessing.
    pub postprocessing: Postprocessing,
    /// Output class map (label -> name) of the task.
    pub class_map: ClassMap,
    /// Message TotalSegmentator prints when the task starts.
    pub info_message: Option<&'static str>,
}

/// Where a class of a task's output comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassLocation {
    /// Class name.
    pub name: &'static str,
    /// Label in the task's output.
    pub output_label: u16,
    /// Model (dataset id) predicting it.
    pub dataset_id: u16,
    /// Label in that model's own output.
    pub model_label: u16,
}

impl Task {
    /// Dataset ids of the models, in run order.
    pub fn dataset_ids(&self) -> Vec<u16> {
        self.models.iter().map(|model| model.dataset_id).collect()
    }

    /// True when several models run and their outputs are merged by class name
    /// (TotalSegmentator's `multimodel`; also the condition for splitting large images).
    pub fn is_multi_model(&self) -> bool {
        self.models.len() > 1
    }

    /// Folds of the models (the same for every model of a task).
    pub fn folds(&self) -> Folds {
        self.models
            .first()
            .map_or(Folds::List(&[0]), |model| model.folds)
    }

    /// Which model predicts a class, and under which labels; `None` for an unknown name.
    pub fn locate_class(&self, name: &str) -> Option<ClassLocation> {
        let output_label = self.class_map.label(name)?;
        let class_name = self.class_map.name(output_label)?;
        self.models.iter().find_map(|model| {
            model.labels.label(name).map(|model_label| ClassLocation {
                name: class_name,
                output_label,
                dataset_id: model.dataset_id,
                model_label,
            })
        })
    }

    /// Lookup table from a model's output label to the task's output label (index = model
    /// label, 0 for background and for labels the task drops, e.g. auxiliary ones). Merging a
    /// multi-model task applies each model's table in run order, later models overwriting
    /// earlier ones where their mapped label is non-zero.
    pub fn output_label_lut(&self, model: &ModelSpec) -> Vec<u16> {
        let mut lut = vec![0; usize::from(model.labels.max_label()) + 1];
        for (model_label, name) in model.labels.iter() {
            if let Some(output_label) = self.class_map.label(name) {
                lut[usize::from(model_label)] = output_label;
            }
        }
        lut
    }
}

pub(crate) fn resolve_task(
    record: &'static TaskRecord,
    options: TaskOptions,
) -> Result<Task, TaskError> {
    let name = record.name;
    if options.model_size == ModelSize::Small && name != "total_v3" {
        return Err(TaskError::ModelSizeNotSupported { task: name });
    }
    let mode = select_mode(record, options.variant)?;
    let prediction_task = if name == "vertebrae_pp_refined" {
        "vertebrae_pp"
    } else {
        name
    };
    let plans = match options.model_size {
        ModelSize::Big => DEFAULT_PLANS,
        ModelSize::Small => SMALL_MODEL_PLANS,
    };
    let class_map = ClassMap::get(name)
        .ok_or_else(|| TaskError::Inconsistent(format!("task '{name}' has no class map")))?;
    let models = mode
        .dataset_ids
        .iter()
        .map(|&dataset_id| {
            model_spec(
                name,
                prediction_task,
                dataset_id,
                mode,
                plans,
                mode.dataset_ids.len() > 1,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Task {
        name,
        prediction_task,
        requested_variant: options.variant,
        variant: mode.variant,
        model_size: options.model_size,
        modality: record.modality,
        licensed: record.licensed,
        models,
        resolution_mm: mode.resolution_mm,
        crop_classes: mode.crop_classes,
        crop_model: mode.crop_model,
        crop_addon_mm: mode.crop_addon_mm,
        robust_crop: mode.robust_crop,
        cascade: mode.cascade,
        step_size: step_size_for(prediction_task),
        postprocessing: Postprocessing::for_task(
            name,
            prediction_task,
            RemoveOutside::from_config(mode.remove_outside, mode.remove_outside_dilation_mm),
        ),
        class_map,
        info_message: record.info_message,
    })
}

fn select_mode(
    record: &'static TaskRecord,
    variant: Variant,
) -> Result<&'static ModeRecord, TaskError> {
    let find = |v: Variant| record.modes.iter().find(|mode| mode.variant == v);
    let mode = if record.has_sub_modes {
        // get_task_config: a missing `fastest` falls back to `fast`.
        let fallback = if variant == Variant::Default {
            Variant::Default
        } else {
            Variant::Fast
        };
        find(variant).or_else(|| find(fallback))
    } else {
        if record.disallow_fast && variant == Variant::Fast {
            return Err(TaskError::VariantNotSupported {
                task: record.name,
                variant,
            });
        }
        record.modes.first()
    };
    mode.ok_or_else(|| {
        TaskError::Inconsistent(format!("task '{}' has no mode for {variant}", record.name))
    })
}

fn model_spec(
    task: &'static str,
    prediction_task: &'static str,
    dataset_id: u16,
    mode: &'static ModeRecord,
    plans: &'static str,
    multi_model: bool,
) -> Result<ModelSpec, TaskError> {
    let weights = DatasetWeights::find(dataset_id).ok_or_else(|| {
        TaskError::Inconsistent(format!(
            "dataset {dataset_id} of task '{task}' has no weights entry"
        ))
    })?;
    let (labels, auxiliary_labels) = if multi_model {
        let part = PART_MAPS
            .iter()
            .find(|part| part.task == task && part.dataset_id == dataset_id)
            .ok_or_else(|| {
                TaskError::Inconsistent(format!(
                    "dataset {dataset_id} of task '{task}' has no part map"
                ))
            })?;
        (ClassMap::new(part.part_name, part.labels), None)
    } else {
        let labels = ClassMap::get(prediction_task).ok_or_else(|| {
            TaskError::Inconsistent(format!("task '{prediction_task}' has no class map"))
        })?;
        (
            labels,
            ClassMap::get(&format!("{prediction_task}_auxiliary")),
        )
    };
    Ok(ModelSpec {
        dataset_id,
        trainer: mode.trainer,
        plans,
        configuration: mode.configuration,
        folds: mode.folds,
        weights,
        labels,
        auxiliary_labels,
    })
}
