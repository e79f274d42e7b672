//! Which task-specific postprocessing steps TotalSegmentator applies (nnunet.py, python_api.py).

use super::class_map::ClassMap;

/// Volume threshold of `--remove_small_blobs` without a value, in mm³ (nnunet.py).
pub const DEFAULT_SMALL_BLOB_MM3: f64 = 200.0;

/// Volume threshold of the `body` task's `body_extremities` blob removal, in mm³.
pub const BODY_EXTREMITIES_MIN_MM3: f64 = 50_000.0;

/// Dilation of the `vertebrae_pp_refined` body-mask refinement, in mm.
pub const VERTEBRAE_REFINEMENT_DILATION_MM: f64 = 2.0;

/// Remove connected components smaller than a volume, per class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlobFilter {
    /// Classes filtered.
    pub classes: &'static [&'static str],
    /// Smallest kept component volume in mm³ (divided by the voxel volume at model resolution).
    pub min_volume_mm3: f64,
}

/// Zero the labels outside a dilated mask of crop pre-pass classes (`heartchambers_highres`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemoveOutside {
    /// Classes of the crop pre-pass output forming the mask.
    pub classes: &'static [&'static str],
    /// Dilation in mm; TotalSegmentator converts it with `int(mm / mean(original spacing))`.
    pub dilation_mm: f64,
}

/// Task-specific postprocessing, in the order TotalSegmentator applies it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Postprocessing {
    /// 1. At model resolution: labels zeroed (`<task>_auxiliary` map).
    pub auxiliary_labels: Option<ClassMap>,
    /// 2. At model resolution: keep only the largest component of these classes (`body`: `body_trunc`).
    pub keep_largest_blob: &'static [&'static str],
    /// 3. At model resolution: drop small components (`body`: `body_extremities` < 50 000 mm³).
    pub remove_small_blobs: Option<BlobFilter>,
    /// 4. At model resolution: `postprocess_vertebrae_pp` (`vertebrae_pp`, `vertebrae_pp_refined`).
    pub vertebrae_pp: bool,
    /// 5. At original resolution: refine with the `vertebrae_body` model's mask dilated by
    ///    [`VERTEBRAE_REFINEMENT_DILATION_MM`] (`vertebrae_pp_refined`; see `Task::refinement_model`).
    pub vertebrae_body_refinement: bool,
    /// 6. At original resolution, after `roi_subset`: zero labels outside a dilated mask.
    pub remove_outside: Option<RemoveOutside>,
    /// 7. When saving one file per class (not `--ml`) and without `--no_derived_masks`: also
    ///    write `body.nii.gz` (union of `body_trunc`, `body_extremities`) and `skin.nii.gz` (`body`).
    pub derived_body_masks: bool,
}

impl RemoveOutside {
    /// The configured step, when both classes and a dilation are set (python_api.py only
    /// applies it with a dilation).
    pub(crate) fn from_config(
        classes: Option<&'static [&'static str]>,
        dilation_mm: Option<f64>,
    ) -> Option<Self> {
        match (classes, dilation_mm) {
            (Some(classes), Some(dilation_mm)) => Some(Self {
                classes,
                dilation_mm,
            }),
            _ => None,
        }
    }
}

impl Postprocessing {
    /// The steps of a task (`name`) predicted as `prediction_task`.
    pub(crate) fn for_task(
        name: &str,
        prediction_task: &str,
        remove_outside: Option<RemoveOutside>,
    ) -> Self {
        let is_body = prediction_task == "body";
        Self {
            auxiliary_labels: ClassMap::get(&format!("{prediction_task}_auxiliary")),
            keep_largest_blob: if is_body { &["body_trunc"] } else { &[] },
            remove_small_blobs: is_body.then_some(BlobFilter {
                classes: &["body_extremities"],
                min_volume_mm3: BODY_EXTREMITIES_MIN_MM3,
            }),
            vertebrae_pp: prediction_task == "vertebrae_pp",
            vertebrae_body_refinement: name == "vertebrae_pp_refined",
            remove_outside,
            derived_body_masks: is_body,
        }
    }
}
