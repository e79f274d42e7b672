//! The `Segmenter`: a task with its options and loaded models, applied to many volumes.

use std::path::Path;
use std::sync::Arc;

use ndarray::Array3;
use totalseg_core::geometry::Affine;
use totalseg_core::postprocess::remove_outside_of_mask;
use totalseg_core::postprocess::vertebrae::refine_vertebrae_pp_with_body_mask;
use totalseg_core::preview::{render_preview, PreviewImage};
use totalseg_core::sliding_window::AccumulationPrecision;
use totalseg_core::statistics::{
    basic_statistics, ct_to_i16, IntensityAggregation, Statistics, StatisticsOptions,
};
use totalseg_core::tasks::{
    CropOptions, CropSource, PrePassModel, RoiSubset, Task, Variant,
    VERTEBRAE_REFINEMENT_DILATION_MM,
};
use totalseg_io::nifti::{NiftiHeader, Volume};

use crate::error::SegmentError;
use crate::pipeline::{
    predict_image, LabelUpsampling, ModelProvider, ModelRun, PredictImageOptions, PredictedImage,
};
use crate::predictor::{NnunetProbabilities, NoTileProgress, TileProgress};
use crate::preview::preview_groups_for_task;
use crate::timing::stage;

/// Makes a tile progress reporter for a model name.
pub type ProgressFactory = Box<dyn Fn(&str) -> Box<dyn TileProgress> + Send + Sync>;

/// Options of a run that do not change which models are loaded.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `--roi_subset` classes (validated against the task).
    pub roi_subset: Option<RoiSubset>,
    /// `--roi_subset_robust` was used.
    pub roi_subset_robust: bool,
    /// `--robust_crop`.
    pub robust_crop: bool,
    /// `--body_seg`.
    pub body_seg: bool,
    /// `--force_split`.
    pub force_split: bool,
    /// `--resampling_order` (default 1).
    pub resampling_order: u8,
    /// `--remove_small_blobs` in mm3.
    pub remove_small_blobs_mm3: Option<f64>,
    /// Statistics wanted (`--statistics`), and how.
    pub statistics: Option<StatisticsOptions>,
    /// `--save_lowres` (fast modes only).
    pub save_lowres: bool,
    /// Tile accumulation (nnU-Net's fp16 by default).
    pub accumulation: AccumulationPrecision,
    /// `--higher_order_resampling`: the task's models see the image at its own spacing;
    /// nnU-Net resamples it (order 3) and brings the logits back with cropped-logits
    /// resampling. Overrides `save_lowres`, as in TotalSegmentator.
    pub higher_order_resampling: bool,
    /// `--higher_order_resampling_LEGACY`: the labels go back to the input's grid as cropped
    /// one-hot masks interpolated with order 1 (smoother borders than order 0).
    pub higher_order_resampling_legacy: bool,
    /// `--save_probabilities`: keep nnU-Net's class probabilities of the task's last model
    /// ([`Segmentation::probabilities`]).
    pub save_probabilities: bool,
    /// `--preview`: draw TotalSegmentator's preview image ([`Segmentation::preview`]).
    pub preview: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            roi_subset: None,
            roi_subset_robust: false,
            robust_crop: false,
            body_seg: false,
            force_split: false,
            resampling_order: 1,
            remove_small_blobs_mm3: None,
            statistics: None,
            save_lowres: false,
            accumulation: AccumulationPrecision::Fp16,
            higher_order_resampling: false,
            higher_order_resampling_legacy: false,
            save_probabilities: false,
            preview: false,
        }
    }
}

/// A segmentation in the input geometry (or at model resolution with `--save_lowres`).
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// Output labels, `[i, j, k]` as the input volume.
    pub labels: Array3<u8>,
    /// Affine of `labels`.
    pub affine: Affine,
    /// The header outputs are written with (the input's, as TotalSegmentator copies it).
    pub header: NiftiHeader,
    /// `(label, class name)` of the classes in the output (roi subset applied).
    pub classes: Vec<(u8, String)>,
    /// Statistics, when asked for.
    pub statistics: Option<Statistics>,
    /// nnU-Net's probabilities of the task's last model, with
    /// [`RunOptions::save_probabilities`] (write them with
    /// [`totalseg_io::probabilities::write_probabilities`]).
    pub probabilities: Option<NnunetProbabilities>,
    /// The preview image with [`RunOptions::preview`] (write it with
    /// [`crate::preview::write_preview`] to [`crate::preview::preview_path`]); `None` when
    /// nothing ran (empty crop).
    pub preview: Option<PreviewImage>,
}

impl Segmentation {
    /// The binary mask of one class, `None` if the class is not in this output.
    pub fn mask(&self, class: &str) -> Option<Array3<bool>> {
        let (label, _) = self.classes.iter().find(|(_, name)| name == class)?;
        Some(self.labels.mapv(|v| v == *label))
    }

    /// The label map renumbered to `target`'s labels by class name: TotalSegmentator's
    /// `--v1_order` (`reorder_multilabel_like_v1`, with `target` the `total_v1` class map).
    /// Classes `target` lacks become background; `target`'s classes this output lacks (v1's
    /// heart chambers) keep their label and stay empty. `keep` (the roi subset) limits the
    /// classes listed, as the official label map is filtered.
    ///
    /// ```
    /// # use ndarray::Array3;
    /// # use totalsegmentator::Segmentation;
    /// # let segmentation = Segmentation {
    /// #     labels: Array3::from_shape_vec((1, 1, 3), vec![1, 2, 3]).unwrap(),
    /// #     affine: [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]],
    /// #     header: totalseg_io::nifti::NiftiHeader::empty(),
    /// #     classes: vec![(1, "spleen".into()), (2, "liver".into()), (3, "new_in_v2".into())],
    /// #     statistics: None,
    /// #     probabilities: None,
    /// #     preview: None,
    /// # };
    /// let v1 = segmentation.renumbered([(1, "liver"), (2, "spleen"), (3, "heart")], None);
    /// assert_eq!(v1.labels.as_slice().unwrap(), &[2, 1, 0]);
    /// let names: Vec<&str> = v1.classes.iter().map(|(_, n)| n.as_str()).collect();
    /// assert_eq!(names, ["liver", "spleen", "heart"]);
    /// ```
    pub fn renumbered<'a>(
        &self,
        target: impl IntoIterator<Item = (u16, &'a str)>,
        keep: Option<&[String]>,
    ) -> Segmentation {
        let mut lut = [0u8; 256];
        let mut classes = Vec::new();
        for (label, name) in target {
            let Ok(label) = u8::try_from(label) else {
                continue;
            };
            if keep.is_some_and(|keep| !keep.iter().any(|k| k == name)) {
                continue;
            }
            if let Some((old, _)) = self.classes.iter().find(|(_, n)| n == name) {
                lut[usize::from(*old)] = label;
            }
            classes.push((label, name.to_string()));
        }
        Segmentation {
            labels: self.labels.mapv(|v| lut[usize::from(v)]),
            affine: self.affine,
            header: self.header.clone(),
            classes,
            statistics: self.statistics.clone(),
            probabilities: self.probabilities.clone(),
            preview: self.preview.clone(),
        }
    }

    /// `--radiomics` on this segmentation in memory: the features of each class mask on
    /// `ct` (the input volume it was made from), named and ordered as the per-class files
    /// are (by class name), without writing the masks first. Equal to
    /// [`crate::radiomics::radiomics_for_dir`] on the per-class output.
    ///
    /// ```no_run
    /// # use totalsegmentator::{read_nifti, SegmenterBuilder};
    /// let ct = read_nifti(std::path::Path::new("ct.nii.gz"))?;
    /// let segmenter = SegmenterBuilder::new("total").fast(true).build()?;
    /// let segmentation = segmenter.segment(&ct)?;
    /// let report = segmentation.radiomics(&ct)?;
    /// std::fs::write("statistics_radiomics.json", report.to_json_string())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn radiomics(
        &self,
        ct: &totalseg_io::nifti::Volume,
    ) -> Result<totalseg_core::radiomics::RadiomicsReport, SegmentError> {
        crate::radiomics::radiomics_for_labels(ct, self.labels.view(), &self.classes)
    }

    /// Number of voxels per output class, in class order.
    pub fn voxel_counts(&self) -> Vec<(String, u64)> {
        let mut counts = [0u64; 256];
        for &v in &self.labels {
            counts[v as usize] += 1;
        }
        self.classes
            .iter()
            .map(|(l, n)| (n.clone(), counts[*l as usize]))
            .collect()
    }
}

/// Where the networks run, as [`SegmenterBuilder::build`](crate::SegmenterBuilder::build)
/// decided (after any fallback to the CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// The CPU (burn-flex).
    Cpu,
    /// A CUDA GPU.
    Gpu,
}

impl DeviceKind {
    /// `cpu` or `gpu`, as TotalSegmentator's run report names them.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Gpu => "gpu",
        }
    }
}

/// Runs one task on volumes, with models obtained from a [`ModelProvider`] (loaded once).
pub struct Segmenter {
    task: Task,
    options: RunOptions,
    models: Arc<dyn ModelProvider + Send + Sync>,
    progress: ProgressFactory,
    /// Set by `SegmenterBuilder::build`; unknown for a caller's own provider.
    pub(crate) device_kind: Option<DeviceKind>,
}

impl Segmenter {
    /// A segmenter for `task` whose models come from `models`.
    pub fn with_provider(
        task: Task,
        options: RunOptions,
        models: Arc<dyn ModelProvider + Send + Sync>,
    ) -> Self {
        Self {
            task,
            options,
            models,
            progress: Box::new(|_| Box::new(NoTileProgress)),
            device_kind: None,
        }
    }

    /// Where the networks run: known when [`SegmenterBuilder::build`](crate::SegmenterBuilder::build)
    /// made the models' provider (after any fallback to the CPU), `None` for a caller's own.
    pub fn device_kind(&self) -> Option<DeviceKind> {
        self.device_kind
    }

    /// Reports tile progress through `progress(model name)`.
    pub fn set_progress(&mut self, progress: ProgressFactory) {
        self.progress = progress;
    }

    /// The task this segmenter runs.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The run options.
    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// Reads `path` (a `.nii`/`.nii.gz` file or a folder of DICOM slices, chosen as
    /// TotalSegmentator chooses) and segments it.
    ///
    /// ```no_run
    /// use totalsegmentator::SegmenterBuilder;
    /// let segmenter = SegmenterBuilder::new("total").fast(true).build()?;
    /// let from_dicom = segmenter.segment_file(std::path::Path::new("ct_series/"))?;
    /// println!("{:?}", from_dicom.voxel_counts());
    /// # Ok::<(), totalsegmentator::SegmentError>(())
    /// ```
    pub fn segment_file(&self, path: &Path) -> Result<Segmentation, SegmentError> {
        let volume = totalseg_io::read_image(path)?;
        self.segment(&volume)
    }

    /// Segments `volume` as `TotalSegmentator` does with the same options.
    pub fn segment(&self, volume: &Volume) -> Result<Segmentation, SegmentError> {
        check_supported(&self.task)?;
        check_input(volume)?;
        let task = &self.task;
        let opts = &self.options;
        // Checked before any model runs (the official tool fails with a KeyError after).
        let preview_groups = if opts.preview {
            Some(preview_groups_for_task(task.name, &task.class_map)?)
        } else {
            None
        };
        let pre_pass = task.crop_pre_pass(&CropOptions {
            roi_subset: opts.roi_subset.as_ref(),
            roi_subset_robust: opts.roi_subset_robust,
            robust_crop: opts.robust_crop,
            body_seg: opts.body_seg,
        })?;

        // python_api.py: `if higher_order_resampling: resample = None; save_lowres = False`.
        let save_lowres = opts.save_lowres && !opts.higher_order_resampling;
        if save_lowres && pre_pass.is_some() {
            // python_api.py refuses the same combination.
            return Err(SegmentError::Model(
                "save_lowres is not supported together with cropping, roi_subset, body_seg, or cascade."
                    .into(),
            ));
        }

        // Crop pre-pass: a coarse segmentation whose classes give the crop mask.
        let mut crop = None;
        let mut outside_mask = None;
        if let Some(pp) = &pre_pass {
            if pp.cascade {
                return Err(SegmentError::UnsupportedTask {
                    task: task.name.to_string(),
                    reason: "it feeds its crop mask to the model as a cascade channel, which is not implemented yet".into(),
                });
            }
            let coarse = match &pp.source {
                CropSource::Model(m) => self.run_pre_pass_model(m, volume)?,
                CropSource::Task(name) => {
                    let registry = totalseg_core::tasks::TaskRegistry::new();
                    let sub_task = registry.task(name, Variant::Default)?;
                    let sub = Segmenter {
                        task: sub_task,
                        options: RunOptions {
                            resampling_order: opts.resampling_order,
                            accumulation: opts.accumulation,
                            ..RunOptions::default()
                        },
                        models: Arc::clone(&self.models),
                        progress: Box::new(|_| Box::new(NoTileProgress)),
                        device_kind: self.device_kind,
                    };
                    sub.segment(volume)?.labels
                }
            };
            let wanted: Vec<u8> = pp.classes.iter().map(|(l, _)| *l as u8).collect();
            crop = Some((coarse.mapv(|v| v != 0 && wanted.contains(&v)), pp.addon_mm));
            if let Some((labels, remove)) = &pp.remove_outside {
                let labels: Vec<u8> = labels.iter().map(|&l| l as u8).collect();
                outside_mask = Some((
                    coarse.mapv(|v| v != 0 && labels.contains(&v)),
                    remove.dilation_mm,
                ));
            }
        }

        // vertebrae_pp_refined: the vertebrae_body model's mask, made before the main run.
        let refinement_mask = match task.refinement_model()? {
            Some(m) => Some(self.run_pre_pass_model(&m, volume)?),
            None => None,
        };
        // With the refinement, nnunet.py draws the preview afterwards, on the input image.
        let (preview_groups, preview_after_refinement) = match refinement_mask {
            Some(_) => (None, preview_groups),
            None => (preview_groups, None),
        };

        // The task's own models.
        let model_specs = match &opts.roi_subset {
            Some(roi) => task.models_for_roi_subset(roi),
            None => task.models.clone(),
        };
        let run = ModelRun {
            task_name: task.prediction_task.to_string(),
            models: model_specs
                .iter()
                .map(|m| (*m, task.output_label_lut(m)))
                .collect(),
            resolution_mm: task.resolution_mm,
            step_size: task.step_size,
            postprocessing: task.postprocessing,
            class_map: task.class_map,
        };
        let classes = self.output_classes();
        // TotalSegmentator computes statistics at model resolution in --fast mode.
        let fast_statistics = task.requested_variant == Variant::Fast && opts.statistics.is_some();
        let options = PredictImageOptions {
            crop: crop.as_ref().map(|(m, addon)| (m.view(), *addon)),
            force_split: opts.force_split,
            resampling_order: opts.resampling_order,
            remove_small_blobs_mm3: opts.remove_small_blobs_mm3,
            // ... and without the extra metrics there (nnunet.py passes no `extra_metrics`).
            low_res_statistics: if fast_statistics {
                opts.statistics.map(|s| {
                    let s = StatisticsOptions {
                        extra_metrics: false,
                        ..s
                    };
                    (classes.clone(), s)
                })
            } else {
                None
            },
            save_lowres,
            accumulation: opts.accumulation,
            higher_order_resampling: opts.higher_order_resampling,
            label_upsampling: if opts.higher_order_resampling_legacy {
                LabelUpsampling::OneHotLinear {
                    keep: opts
                        .roi_subset
                        .as_ref()
                        .map(|_| classes.iter().map(|(l, _)| *l).collect()),
                }
            } else {
                LabelUpsampling::Nearest
            },
            save_probabilities: opts.save_probabilities,
            preview: preview_groups,
        };
        let predicted = self.predict(volume, &run, &options)?;
        let mut preview = predicted.preview;
        let mut labels = predicted.labels;

        // vertebrae_pp_refined: dilate by 2 mm at the input spacing, keep the vertebral body.
        if let Some(body) = &refinement_mask {
            if body.dim() != labels.dim() {
                return Err(SegmentError::Model(format!(
                    "vertebrae_pp and vertebrae_body shapes do not match: {:?} vs {:?}",
                    labels.dim(),
                    body.dim()
                )));
            }
            let class_labels: Vec<u8> = classes.iter().map(|(l, _)| *l).collect();
            labels = refine_vertebrae_pp_with_body_mask(
                labels.view(),
                body.view(),
                &class_labels,
                volume.spacing.map(|v| v as f32),
                VERTEBRAE_REFINEMENT_DILATION_MM as f32,
            );
        }

        // roi_subset: keep only the requested classes.
        if opts.roi_subset.is_some() {
            let keep: Vec<u8> = classes.iter().map(|(l, _)| *l).collect();
            labels.mapv_inplace(|v| if keep.contains(&v) { v } else { 0 });
        }
        if let Some((mask, dilation_mm)) = outside_mask {
            let mean_zoom = volume.spacing.iter().sum::<f64>() / 3.0;
            let iterations = (dilation_mm / mean_zoom) as usize;
            remove_outside_of_mask(&mut labels, mask.view(), iterations)
                .map_err(|e| SegmentError::Model(e.to_string()))?;
        }

        if let Some(groups) = &preview_after_refinement {
            preview = Some(stage("preview", || {
                render_preview(volume.data.view(), &volume.affine, labels.view(), groups)
            })?);
        }

        let statistics = match (fast_statistics, opts.statistics) {
            (true, _) => predicted.statistics,
            (false, Some(stats_options)) => Some(full_resolution_statistics(
                &labels,
                volume,
                &classes,
                stats_options,
            )?),
            (false, None) => None,
        };
        // nnunet.py saves the empty result as `Nifti1Image(zeros, img_in.affine)`, and the
        // low-resolution output on the model grid: fresh headers, not the input's.
        let fresh_header = if predicted.empty_crop {
            Some((&volume.affine, "empty-crop"))
        } else if save_lowres {
            Some((&predicted.affine, "low-resolution"))
        } else {
            None
        };
        let header = match fresh_header {
            Some((affine, what)) => {
                let (a, b, c) = labels.dim();
                NiftiHeader::for_new_image([a, b, c], affine, totalseg_io::nifti::NiftiDataType::U8)
                    .map_err(|e| SegmentError::Model(format!("{what} header: {e:?}")))?
            }
            None => volume.header.clone(),
        };
        Ok(Segmentation {
            labels,
            affine: predicted.affine,
            header,
            classes,
            statistics,
            probabilities: predicted.probabilities,
            preview,
        })
    }

    /// One pre-pass model on the whole input (nnunet.py with crop=None, multilabel), labels
    /// back in the input geometry.
    fn run_pre_pass_model(
        &self,
        m: &PrePassModel,
        volume: &Volume,
    ) -> Result<Array3<u8>, SegmentError> {
        let max = m.class_map.max_label();
        let run = ModelRun {
            task_name: m.task_name.to_string(),
            models: vec![(m.model, (0..=max).collect())],
            resolution_mm: Some(m.resolution_mm),
            step_size: m.step_size,
            postprocessing: m.postprocessing,
            class_map: m.class_map,
        };
        let options = PredictImageOptions {
            crop: None,
            force_split: false,
            resampling_order: self.options.resampling_order,
            remove_small_blobs_mm3: None,
            low_res_statistics: None,
            save_lowres: false,
            accumulation: self.options.accumulation,
            higher_order_resampling: false,
            label_upsampling: LabelUpsampling::Nearest,
            save_probabilities: false,
            preview: None,
        };
        Ok(self.predict(volume, &run, &options)?.labels)
    }

    /// One `nnUNet_predict_image` call on `volume` with this segmenter's models and progress.
    fn predict(
        &self,
        volume: &Volume,
        run: &ModelRun,
        options: &PredictImageOptions<'_>,
    ) -> Result<PredictedImage, SegmentError> {
        predict_image(
            volume.data.view(),
            &volume.affine,
            run,
            options,
            self.models.as_ref(),
            &*self.progress,
        )
        .map_err(|e| explain_too_thin(e, volume))
    }

    /// `(label, name)` of the output classes: the task's class map, filtered by roi_subset.
    fn output_classes(&self) -> Vec<(u8, String)> {
        self.task
            .class_map
            .iter()
            .filter(|(_, name)| match &self.options.roi_subset {
                Some(roi) => roi.contains(name),
                None => true,
            })
            .map(|(l, n)| (l as u8, n.to_string()))
            .collect()
    }
}

/// Statistics on the final labels with the original CT (`get_basic_statistics(seg, img_in_orig)`).
fn full_resolution_statistics(
    labels: &Array3<u8>,
    volume: &Volume,
    classes: &[(u8, String)],
    options: StatisticsOptions,
) -> Result<Statistics, SegmentError> {
    let ct = volume.data.mapv(|v| ct_to_i16(f64::from(v)));
    let classes: Vec<(u8, &str)> = classes.iter().map(|(l, n)| (*l, n.as_str())).collect();
    let spacing = volume.spacing.map(|v| v as f32);
    basic_statistics(labels.view(), ct.view(), spacing, &classes, options)
        .map_err(|e| SegmentError::Model(format!("statistics: {e}")))
}

/// Refuses tasks whose pipeline steps are not implemented, naming the task, rather than
/// returning a result that differs from TotalSegmentator's.
pub fn check_supported(task: &Task) -> Result<(), SegmentError> {
    let missing: Option<&str> = if task.cascade {
        Some("it feeds its crop mask to the model as a cascade channel")
    } else {
        None
    };
    match missing {
        Some(what) => Err(SegmentError::UnsupportedTask {
            task: task.name.to_string(),
            reason: format!("{what} is not implemented yet"),
        }),
        None => Ok(()),
    }
}

/// A resampling to an empty grid means the image is too thin (a 2-D image stored as one
/// slice, or a few thin slices) for the model's spacing: say so, naming the input.
fn explain_too_thin(error: SegmentError, volume: &Volume) -> SegmentError {
    match error {
        SegmentError::Resample(totalseg_core::resample::ResampleError::EmptyOutput {
            input,
            output,
        }) => SegmentError::Input {
            path: input_name(volume),
            message: format!(
                "the image is too thin to segment: {input:?} voxels (spacing {:?} mm) become {output:?} at the model's spacing. TotalSegmentator does not work for 2D images or single slices; use a 3D image",
                volume.spacing
            ),
        },
        other => other,
    }
}

fn input_name(volume: &Volume) -> std::path::PathBuf {
    volume
        .source
        .clone()
        .unwrap_or_else(|| Path::new("<in-memory volume>").to_path_buf())
}

/// Rejects inputs TotalSegmentator cannot segment meaningfully.
fn check_input(volume: &Volume) -> Result<(), SegmentError> {
    let path = input_name(volume);
    if volume.data.is_empty() {
        return Err(SegmentError::Input {
            path,
            message: "the image has no voxels".into(),
        });
    }
    if volume.data.iter().any(|v| !v.is_finite()) {
        return Err(SegmentError::Input {
            path,
            message: "the image contains NaN or infinite voxels; a CT has finite Hounsfield units"
                .into(),
        });
    }
    if volume.spacing.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(SegmentError::Input {
            path,
            message: format!("voxel spacing {:?} is not positive", volume.spacing),
        });
    }
    Ok(())
}

/// Statistics options from the CLI's aggregation name and border flag.
pub fn statistics_options(
    aggregation: &str,
    include_incomplete: bool,
    extra_metrics: bool,
) -> StatisticsOptions {
    StatisticsOptions {
        extra_metrics,
        exclude_masks_at_border: !include_incomplete,
        aggregation: if aggregation == "median" {
            IntensityAggregation::Median
        } else {
            IntensityAggregation::Mean
        },
        normalized_intensities: false,
    }
}
