//! Coarse models run before a task: the crop pre-pass (task crops, `--roi_subset`,
//! `--body_seg`) and the `vertebrae_pp_refined` body-mask model (python_api.py).

use super::class_map::ClassMap;
use super::data::tasks::DEFAULT_PLANS;
use super::error::TaskError;
use super::model::ModelSpec;
use super::postprocessing::{Postprocessing, RemoveOutside};
use super::records::{DatasetWeights, Folds};
use super::roi_subset::RoiSubset;
use super::task::{step_size_for, Task};

/// Margin of the crop around the default crop model's classes, in mm; python_api.py uses it
/// instead of the task's `crop_addon` whenever the task has no `crop_model`.
pub const DEFAULT_CROP_MODEL_ADDON_MM: [u32; 3] = [20, 20, 20];

/// User options that decide the pre-pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct CropOptions<'a> {
    /// `--roi_subset` (or `--roi_subset_robust`), validated.
    pub roi_subset: Option<&'a RoiSubset>,
    /// The subset came from `--roi_subset_robust`: use the 3 mm crop model.
    pub roi_subset_robust: bool,
    /// `--robust_crop`: use the 3 mm crop model.
    pub robust_crop: bool,
    /// `--body_seg`: crop to the body first when nothing else crops (ignored for `_mr` tasks).
    pub body_seg: bool,
}

/// A single model run as a pre-pass, predicting under `task_name`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrePassModel {
    /// Task name of the prediction: decides its step size, postprocessing and class map.
    pub task_name: &'static str,
    /// The model (folds `[0]`, `3d_fullres`, default plans).
    pub model: ModelSpec,
    /// Target spacing (x, y, z) in mm.
    pub resolution_mm: [f64; 3],
    /// Sliding-window step size.
    pub step_size: f64,
    /// Postprocessing nnunet.py applies under `task_name` (e.g. the body model's blob filters).
    pub postprocessing: Postprocessing,
    /// Class map of the output.
    pub class_map: ClassMap,
}

/// What produces the coarse segmentation the crop is taken from.
#[derive(Debug, Clone, PartialEq)]
pub enum CropSource {
    /// One coarse model.
    Model(Box<PrePassModel>),
    /// The complete output of another task, run with default options (`teeth`:
    /// `craniofacial_structures`, which itself crops with its own pre-pass).
    Task(&'static str),
}

/// The crop pre-pass of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct CropPrePass {
    /// What to run.
    pub source: CropSource,
    /// Classes whose union is the crop mask, with their labels in the source's class map.
    pub classes: Vec<(u16, &'static str)>,
    /// Margin in mm per axis; TotalSegmentator converts it with `int(mm / spacing)` voxels.
    pub addon_mm: [u32; 3],
    /// The cropped pre-pass mask is also fed to the model as a cascade channel.
    pub cascade: bool,
    /// Mask for [`Postprocessing::remove_outside`]: labels (in the source's class map) and dilation.
    pub remove_outside: Option<(Vec<u16>, RemoveOutside)>,
}

impl Task {
    /// The crop pre-pass TotalSegmentator runs before this task, `None` when it runs none.
    ///
    /// A task with `crop` classes, or a `roi_subset`, is cropped to the union of those classes
    /// from a coarse model: the 6 mm `total` model (298), the 3 mm one (297) when robust
    /// (`--robust_crop`, `--roi_subset_robust`, or the task asks for it), the 3 mm `total_mr`
    /// model (852) for `_mr` tasks, the 6 mm body model (300) when the crop names body classes,
    /// always with a 20 mm margin; or to the output of the task's `crop_model`, with the task's
    /// own `crop_addon`. Otherwise `--body_seg` crops to the 6 mm body model's mask with the
    /// task's `crop_addon`.
    ///
    /// ```
    /// use totalseg_core::tasks::{CropOptions, CropSource, TaskRegistry, Variant};
    ///
    /// let registry = TaskRegistry::new();
    /// let liver_vessels = registry.task("liver_vessels", Variant::Default)?;
    /// let pre_pass = liver_vessels.crop_pre_pass(&CropOptions::default())?.expect("liver_vessels crops");
    /// let CropSource::Model(coarse) = pre_pass.source else { panic!("default crop model") };
    /// assert_eq!(coarse.model.dataset_id, 298);
    /// assert_eq!(coarse.resolution_mm, [6.0; 3]);
    /// assert_eq!(pre_pass.classes, vec![(5, "liver")]);
    /// assert_eq!(pre_pass.addon_mm, [20; 3]);
    /// # Ok::<(), totalseg_core::tasks::TaskError>(())
    /// ```
    pub fn crop_pre_pass(
        &self,
        options: &CropOptions<'_>,
    ) -> Result<Option<CropPrePass>, TaskError> {
        let wanted: Vec<&str> = match (self.crop_classes, options.roi_subset) {
            (Some(classes), _) => classes.to_vec(),
            (None, Some(subset)) => subset.names().collect(),
            (None, None) if self.cascade => {
                return Err(TaskError::Inconsistent(format!(
                    "task '{}' cascades without crop classes",
                    self.name
                )))
            }
            (None, None) => return self.body_seg_pre_pass(options),
        };
        let is_mr_task = self.name.ends_with("_mr");
        let (source, source_map, addon_mm) = match self.crop_model {
            Some(task) => {
                let map = ClassMap::get(task).ok_or_else(|| {
                    TaskError::Inconsistent(format!("crop model '{task}' has no class map"))
                })?;
                (CropSource::Task(task), map, self.crop_addon_mm)
            }
            None => {
                let robust = options.roi_subset_robust
                    || (is_mr_task && options.roi_subset.is_some())
                    || options.robust_crop
                    || self.robust_crop;
                let crops_body = wanted
                    .iter()
                    .any(|&c| c == "body_trunc" || c == "body_extremities")
                    && self.crop_classes.is_some();
                let (dataset_id, spacing, trainer, task_name) = if crops_body {
                    (300, 6.0, "nnUNetTrainer", "body")
                } else if is_mr_task {
                    (852, 3.0, "nnUNetTrainer_2000epochs_NoMirroring", "total_mr")
                } else if robust {
                    (297, 3.0, "nnUNetTrainer_4000epochs_NoMirroring", "total")
                } else {
                    (298, 6.0, "nnUNetTrainer_4000epochs_NoMirroring", "total")
                };
                let coarse = pre_pass_model(dataset_id, trainer, task_name, spacing)?;
                (
                    CropSource::Model(Box::new(coarse)),
                    coarse.class_map,
                    DEFAULT_CROP_MODEL_ADDON_MM,
                )
            }
        };
        let crop_task = match &source {
            CropSource::Model(coarse) => coarse.task_name,
            CropSource::Task(task) => task,
        };
        let lookup = |class: &str| {
            source_map
                .label(class)
                .and_then(|label| source_map.name(label).map(|name| (label, name)))
                .ok_or_else(|| TaskError::CropClassUnavailable {
                    task: self.name,
                    crop_task,
                    class: class.to_string(),
                })
        };
        let classes = wanted
            .iter()
            .map(|class| lookup(class))
            .collect::<Result<Vec<_>, _>>()?;
        let remove_outside = match self.postprocessing.remove_outside {
            Some(remove) => {
                let labels = remove
                    .classes
                    .iter()
                    .map(|class| lookup(class).map(|(label, _)| label))
                    .collect::<Result<Vec<_>, _>>()?;
                Some((labels, remove))
            }
            None => None,
        };
        Ok(Some(CropPrePass {
            source,
            classes,
            addon_mm,
            cascade: self.cascade,
            remove_outside,
        }))
    }

    /// The model `vertebrae_pp_refined` runs for its body mask (305, `vertebrae_body` at 1.5 mm),
    /// `None` for every other task.
    pub fn refinement_model(&self) -> Result<Option<PrePassModel>, TaskError> {
        if !self.postprocessing.vertebrae_body_refinement {
            return Ok(None);
        }
        pre_pass_model(305, "nnUNetTrainer_DASegOrd0", "vertebrae_body", 1.5).map(Some)
    }

    fn body_seg_pre_pass(
        &self,
        options: &CropOptions<'_>,
    ) -> Result<Option<CropPrePass>, TaskError> {
        // python_api.py switches --body_seg off for `_mr` tasks.
        if !options.body_seg || self.name.ends_with("_mr") {
            return Ok(None);
        }
        let body = pre_pass_model(300, "nnUNetTrainer", "body", 6.0)?;
        // The body pre-pass is saved binary: every non-zero label is body.
        Ok(Some(CropPrePass {
            source: CropSource::Model(Box::new(body)),
            classes: body.class_map.iter().collect(),
            addon_mm: self.crop_addon_mm,
            cascade: false,
            remove_outside: None,
        }))
    }
}

fn pre_pass_model(
    dataset_id: u16,
    trainer: &'static str,
    task_name: &'static str,
    spacing_mm: f64,
) -> Result<PrePassModel, TaskError> {
    let weights = DatasetWeights::find(dataset_id).ok_or_else(|| {
        TaskError::Inconsistent(format!(
            "pre-pass dataset {dataset_id} has no weights entry"
        ))
    })?;
    let class_map = ClassMap::get(task_name).ok_or_else(|| {
        TaskError::Inconsistent(format!("pre-pass task '{task_name}' has no class map"))
    })?;
    let auxiliary_labels = ClassMap::get(&format!("{task_name}_auxiliary"));
    let mut postprocessing = Postprocessing::for_task(task_name, task_name, None);
    // A pre-pass writes no files, so no derived masks.
    postprocessing.derived_body_masks = false;
    Ok(PrePassModel {
        task_name,
        model: ModelSpec {
            dataset_id,
            trainer,
            plans: DEFAULT_PLANS,
            configuration: "3d_fullres",
            folds: Folds::List(&[0]),
            weights,
            labels: class_map,
            auxiliary_labels,
        },
        resolution_mm: [spacing_mm; 3],
        step_size: step_size_for(task_name),
        postprocessing,
        class_map,
    })
}
