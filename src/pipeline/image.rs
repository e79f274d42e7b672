//! `nnUNet_predict_image`: one task's models on one image, back in the image's geometry.

use ndarray::{s, Array3, ArrayView3, Axis, Zip};
use totalseg_core::crop::{crop_to_mask, undo_crop, BoundingBox};
use totalseg_core::export::LogitsResampling;
use totalseg_core::geometry::{
    as_closest_canonical, nifti_zooms_from_affine, undo_canonical, Affine,
};
use totalseg_core::postprocess::vertebrae::postprocess_vertebrae_pp;
use totalseg_core::postprocess::{
    keep_largest_blob_multilabel, remove_auxiliary_labels, remove_small_blobs_all_classes,
    remove_small_blobs_multilabel, BlobSizeInterval,
};
use totalseg_core::preview::{render_preview, PreviewImage};
use totalseg_core::resample::{
    change_spacing, change_spacing_labels, resample_labels_one_hot_crop, SpacingTarget, SplineOrder,
};
use totalseg_core::sliding_window::AccumulationPrecision;
use totalseg_core::statistics::{basic_statistics, ct_to_i16, Statistics, StatisticsOptions};

use super::models::{ModelProvider, ModelRun};
use crate::error::SegmentError;
use crate::predictor::{
    predict_labels, predict_labels_and_probabilities, NnunetProbabilities, TileProgress,
};
use crate::timing::stage;

/// `nr_voxels_thr` of nnunet.py: above it (and z > 200, multi-model) the image is split.
const SPLIT_VOXEL_THRESHOLD: usize = 512 * 512 * 900;
/// `postprocess_vertebrae_pp` defaults: components under 100 mm3 dropped, 3 mm dilation.
const VERTEBRAE_PP_MIN_SIZE_MM3: f32 = 100.0;
const VERTEBRAE_PP_DILATION_MM: f32 = 3.0;
/// Overlap of the triple split, in voxels along z.
const SPLIT_MARGIN: usize = 20;

/// Options of one [`predict_image`] call.
pub struct PredictImageOptions<'a> {
    /// Crop mask on the input grid and the margin in mm.
    pub crop: Option<(ArrayView3<'a, bool>, [u32; 3])>,
    /// `--force_split`.
    pub force_split: bool,
    /// `--resampling_order` for the image.
    pub resampling_order: u8,
    /// `--remove_small_blobs` threshold in mm3.
    pub remove_small_blobs_mm3: Option<f64>,
    /// Statistics at model resolution (TotalSegmentator's fast statistics): classes
    /// `(output label, name)` and options.
    pub low_res_statistics: Option<(Vec<(u8, String)>, StatisticsOptions)>,
    /// Keep the result at model resolution (`--save_lowres`).
    pub save_lowres: bool,
    /// How sliding-window tiles are summed.
    pub accumulation: AccumulationPrecision,
    /// `--higher_order_resampling`: no resampling to the task resolution here; nnU-Net
    /// resamples the image to the model spacing itself (order 3) and exports the logits with
    /// cropped-logits resampling ([`LogitsResampling::Cropped`]).
    pub higher_order_resampling: bool,
    /// How the labels are resampled back to the input's grid.
    pub label_upsampling: LabelUpsampling,
    /// `--save_probabilities`: keep nnU-Net's probabilities of the last model (of the first
    /// sub-image when split), as the official tool's file ends up holding.
    pub save_probabilities: bool,
    /// `--preview`: draw the label groups (columns of labels) on the model's input after
    /// postprocessing, as nnunet.py does before going back to the input's grid.
    pub preview: Option<Vec<Vec<u8>>>,
}

/// How the labels go back from the model resolution to the input's grid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LabelUpsampling {
    /// Order 0 (TotalSegmentator's default).
    #[default]
    Nearest,
    /// `--higher_order_resampling_LEGACY`: each label's cropped one-hot mask interpolated with
    /// order 1 and kept where it reaches 0.5; labels outside `keep` (the roi subset) are
    /// dropped first, as nnunet.py zeroes them before resampling.
    OneHotLinear {
        /// The labels that take part (`None`: all).
        keep: Option<Vec<u8>>,
    },
}

/// The result of [`predict_image`].
pub struct PredictedImage {
    /// Output labels on the input grid (or at model resolution with `save_lowres`).
    pub labels: Array3<u8>,
    /// Affine of `labels` (the input affine unless `save_lowres`).
    pub affine: Affine,
    /// Fast statistics, if asked for.
    pub statistics: Option<Statistics>,
    /// The crop mask was empty, so nothing ran and `labels` is all zero
    /// (TotalSegmentator: "Crop is empty. Returning empty segmentation.").
    pub empty_crop: bool,
    /// nnU-Net's probabilities with `save_probabilities` (the affine is the model input's,
    /// as nnU-Net reads it back from TotalSegmentator's temporary float32 NIfTI).
    pub probabilities: Option<NnunetProbabilities>,
    /// The `--preview` image, when asked for.
    pub preview: Option<PreviewImage>,
}

/// Runs `run` on `data` (`[i, j, k]`, float values as nibabel's `get_fdata`) with `affine`.
pub fn predict_image(
    data: ArrayView3<f32>,
    affine: &Affine,
    run: &ModelRun,
    options: &PredictImageOptions<'_>,
    models: &dyn ModelProvider,
    progress: &dyn Fn(&str) -> Box<dyn TileProgress>,
) -> Result<PredictedImage, SegmentError> {
    let input_shape = dims(&data);
    // 1. Crop to the mask (cast to int32 as TotalSegmentator does), or keep the image.
    let (cropped, cropped_affine, bbox): (Array3<f32>, Affine, Option<BoundingBox>) =
        match options.crop {
            Some((mask, addon)) => {
                if !mask.iter().any(|&m| m) {
                    // "Crop is empty. Returning empty segmentation."
                    return Ok(PredictedImage {
                        labels: Array3::zeros(data.raw_dim()),
                        affine: *affine,
                        statistics: None,
                        empty_crop: true,
                        probabilities: None,
                        preview: None,
                    });
                }
                let zooms = widen(nifti_zooms_from_affine(affine));
                let addon_mm = addon.map(f64::from);
                let (cropped, cropped_affine, bbox) =
                    crop_to_mask(data, affine, zooms, mask, addon_mm)?;
                (cropped.mapv(int32_cast), cropped_affine, Some(bbox))
            }
            None => (data.to_owned(), *affine, None),
        };

    // 2. Closest canonical.
    let canonical = stage("canonical", || {
        as_closest_canonical(cropped.view(), &cropped_affine)
    })?;
    let canonical_affine = canonical.affine;
    let canonical_data = canonical.data.into_owned();
    let canonical_shape = dims(&canonical_data.view());
    let canonical_zooms = widen(nifti_zooms_from_affine(&canonical_affine));

    // 3. Resample to the task resolution, int32 cast (untouched when the spacing matches);
    // with --higher_order_resampling nnU-Net gets the image as it is (`resample=None`).
    let resolution_mm = if options.higher_order_resampling {
        None
    } else {
        run.resolution_mm
    };
    let order = SplineOrder::from_scipy(options.resampling_order)?;
    let (model_input, model_affine) = match resolution_mm {
        Some(resolution) => match stage("resample to model spacing", || {
            change_spacing::<f32, i32>(
                canonical_data.view(),
                &canonical_affine,
                canonical_zooms,
                SpacingTarget::Spacing(resolution),
                order,
            )
        })? {
            Some(r) => (r.data.mapv(|v| v as f32), r.affine),
            None => (canonical_data, canonical_affine),
        },
        None => (canonical_data, canonical_affine),
    };
    let model_zooms = widen(nifti_zooms_from_affine(&model_affine));

    // 4. Models (triple split for huge images), merged by class name.
    let shape = dims(&model_input.view());
    let multi_model = run.models.len() > 1;
    let split = options.force_split
        || (shape.iter().product::<usize>() > SPLIT_VOXEL_THRESHOLD
            && shape[2] > 200
            && multi_model);
    let parts = if split {
        split_ranges(shape[2])
    } else {
        vec![(0, shape[2])]
    };
    let mut merged_parts: Vec<Array3<u8>> = parts
        .iter()
        .map(|&(a, b)| Array3::zeros((shape[0], shape[1], b - a)))
        .collect();
    let mut probabilities = None;
    for (spec, lut) in &run.models {
        let model = stage("load model", || models.model(spec))?;
        let mut settings = model.settings.clone();
        settings.step_size = run.step_size;
        settings.accumulation = options.accumulation;
        if options.higher_order_resampling {
            settings.logits_resampling = LogitsResampling::Cropped;
        }
        for (index, (&(a, b), merged)) in parts.iter().zip(merged_parts.iter_mut()).enumerate() {
            let part = model_input.slice(s![.., .., a..b]);
            let input = part.insert_axis(Axis(0));
            let bar = progress(&model.name);
            let labels = stage(&format!("predict {}", model.name), || {
                if options.save_probabilities && index == 0 {
                    // Each model overwrites the file; the first sub-image is `s01`.
                    let (labels, mut probs) = predict_labels_and_probabilities(
                        input,
                        model_zooms,
                        &settings,
                        model.network.as_ref(),
                        bar.as_ref(),
                    )?;
                    probs.properties.affine =
                        model_affine.map(|row| row.map(|v| f64::from(v as f32)));
                    probabilities = Some(probs);
                    Ok(labels)
                } else {
                    predict_labels(
                        input,
                        model_zooms,
                        &settings,
                        model.network.as_ref(),
                        bar.as_ref(),
                    )
                }
            })?;
            Zip::from(merged).and(&labels).for_each(|m, &l| {
                let mapped = lut.get(l as usize).copied().unwrap_or(0);
                if mapped != 0 {
                    *m = mapped as u8;
                }
            });
        }
    }
    let mut prediction = if split {
        stitch_parts(&merged_parts, shape)
    } else {
        merged_parts.swap_remove(0)
    };

    // 5. Postprocessing at model resolution.
    stage("postprocess", || {
        postprocess(&mut prediction, run, options, model_zooms)
    });
    let preview = match &options.preview {
        Some(groups) => Some(stage("preview", || {
            render_preview(model_input.view(), &model_affine, prediction.view(), groups)
        })?),
        None => None,
    };
    let statistics = match &options.low_res_statistics {
        Some((classes, stats_options)) => {
            let ct = model_input.mapv(|v| ct_to_i16(f64::from(v)));
            let classes: Vec<(u8, &str)> = classes.iter().map(|(l, n)| (*l, n.as_str())).collect();
            Some(
                basic_statistics(
                    prediction.view(),
                    ct.view(),
                    nifti_zooms_from_affine(&model_affine),
                    &classes,
                    *stats_options,
                )
                .map_err(|e| SegmentError::Model(format!("statistics: {e}")))?,
            )
        }
        None => None,
    };
    if options.save_lowres {
        return Ok(PredictedImage {
            labels: prediction,
            affine: model_affine,
            statistics,
            empty_crop: false,
            probabilities,
            preview,
        });
    }

    // 6. Back: order 0 to the canonical shape, undo canonical, undo crop.
    let back = if resolution_mm.is_some() && dims(&prediction.view()) != canonical_shape {
        match &options.label_upsampling {
            LabelUpsampling::Nearest => stage("resample labels back", || {
                change_spacing_labels(
                    prediction.view(),
                    &model_affine,
                    model_zooms,
                    SpacingTarget::Shape(canonical_shape),
                )
            })?
            .map(|r| r.data)
            .unwrap_or(prediction),
            LabelUpsampling::OneHotLinear { keep } => {
                stage("resample labels back (one-hot, order 1)", || {
                    if let Some(keep) = keep {
                        prediction.mapv_inplace(|v| if keep.contains(&v) { v } else { 0 });
                    }
                    resample_labels_one_hot_crop(
                        prediction.view(),
                        canonical_shape,
                        SplineOrder::Linear,
                    )
                })?
            }
        }
    } else {
        prediction
    };
    let original = undo_canonical(back.view(), &canonical_affine, &cropped_affine)?;
    let labels = original.data.into_owned();
    let labels = match bbox {
        Some(bbox) => undo_crop(labels.view(), input_shape, &bbox)?,
        None => labels,
    };
    Ok(PredictedImage {
        labels,
        affine: *affine,
        statistics,
        empty_crop: false,
        probabilities,
        preview,
    })
}

/// nnunet.py's model-resolution postprocessing: auxiliary labels, the task's blob filters,
/// `vertebrae_pp`'s relabelling and dilation, then `--remove_small_blobs` on every class.
fn postprocess(
    prediction: &mut Array3<u8>,
    run: &ModelRun,
    options: &PredictImageOptions<'_>,
    zooms: [f64; 3],
) {
    let pp = &run.postprocessing;
    let spacing = narrow(zooms);
    if let Some(aux) = &pp.auxiliary_labels {
        let labels: Vec<u8> = aux.labels().map(|l| l as u8).collect();
        remove_auxiliary_labels(prediction, &labels);
    }
    let label_of = |names: &[&str]| -> Vec<u8> {
        names
            .iter()
            .filter_map(|n| run.class_map.label(n))
            .map(|l| l as u8)
            .collect()
    };
    if !pp.keep_largest_blob.is_empty() {
        keep_largest_blob_multilabel(prediction, &label_of(pp.keep_largest_blob));
    }
    if let Some(filter) = &pp.remove_small_blobs {
        let interval = BlobSizeInterval::from_min_volume_mm3(filter.min_volume_mm3, spacing);
        remove_small_blobs_multilabel(prediction, &label_of(filter.classes), interval);
    }
    if pp.vertebrae_pp {
        let labels: Vec<(u8, &str)> = run.class_map.iter().map(|(l, n)| (l as u8, n)).collect();
        let voxel_volume = spacing[0] * spacing[1] * spacing[2];
        *prediction = postprocess_vertebrae_pp(
            prediction.view(),
            &labels,
            VERTEBRAE_PP_MIN_SIZE_MM3,
            voxel_volume,
            spacing,
            VERTEBRAE_PP_DILATION_MM,
        );
    }
    if let Some(size_mm3) = options.remove_small_blobs_mm3 {
        let labels: Vec<u8> = run.class_map.labels().map(|l| l as u8).collect();
        remove_small_blobs_all_classes(prediction, &labels, size_mm3, spacing);
    }
}

/// nnunet.py's triple split along z: `[:third+m]`, `[third+1-m : 2*third+m]`, `[2*third+1-m:]`.
fn split_ranges(z: usize) -> Vec<(usize, usize)> {
    let third = z / 3;
    let m = SPLIT_MARGIN;
    vec![
        (0, (third + m).min(z)),
        ((third + 1).saturating_sub(m), (third * 2 + m).min(z)),
        ((third * 2 + 1).saturating_sub(m), z),
    ]
}

/// The inverse of [`split_ranges`]: `[:third] = p1[:-m]`, `[third:2third] = p2[m-1:-m]`,
/// `[2third:] = p3[m-1:]`.
fn stitch_parts(parts: &[Array3<u8>], shape: [usize; 3]) -> Array3<u8> {
    let third = shape[2] / 3;
    let m = SPLIT_MARGIN;
    let mut out = Array3::<u8>::zeros((shape[0], shape[1], shape[2]));
    out.slice_mut(s![.., .., ..third])
        .assign(&parts[0].slice(s![.., .., ..third]));
    out.slice_mut(s![.., .., third..third * 2])
        .assign(&parts[1].slice(s![.., .., m - 1..m - 1 + third]));
    out.slice_mut(s![.., .., third * 2..])
        .assign(&parts[2].slice(s![.., .., m - 1..m - 1 + (shape[2] - third * 2)]));
    out
}

/// numpy `astype(np.int32)` of a float: truncation toward zero.
fn int32_cast(v: f32) -> f32 {
    (v as i32) as f32
}

fn widen(z: [f32; 3]) -> [f64; 3] {
    z.map(f64::from)
}

fn narrow(z: [f64; 3]) -> [f32; 3] {
    z.map(|v| v as f32)
}

fn dims<T>(a: &ArrayView3<T>) -> [usize; 3] {
    let (x, y, z) = a.dim();
    [x, y, z]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_stitch_round_trip() {
        for z in [61usize, 70, 100, 241] {
            let shape = [2, 3, z];
            let full =
                Array3::from_shape_fn((2, 3, z), |(i, j, k)| ((i + j * 7 + k * 13) % 251) as u8);
            let parts: Vec<Array3<u8>> = split_ranges(z)
                .iter()
                .map(|&(a, b)| full.slice(s![.., .., a..b]).to_owned())
                .collect();
            assert_eq!(stitch_parts(&parts, shape), full, "z = {z}");
        }
    }

    #[test]
    fn vertebrae_pp_task_runs_its_postprocessing_at_model_resolution() {
        let registry = totalseg_core::tasks::TaskRegistry::new();
        let task = registry
            .task("vertebrae_pp", totalseg_core::tasks::Variant::Default)
            .expect("task");
        assert!(task.postprocessing.vertebrae_pp);
        let run = ModelRun {
            task_name: task.prediction_task.to_string(),
            models: Vec::new(),
            resolution_mm: task.resolution_mm,
            step_size: task.step_size,
            postprocessing: task.postprocessing,
            class_map: task.class_map,
        };
        let options = PredictImageOptions {
            crop: None,
            force_split: false,
            resampling_order: 1,
            remove_small_blobs_mm3: None,
            low_res_statistics: None,
            save_lowres: false,
            accumulation: AccumulationPrecision::Fp16,
            higher_order_resampling: false,
            label_upsampling: LabelUpsampling::Nearest,
            save_probabilities: false,
            preview: None,
        };
        // Two touching labels in one body (L4 over L5) and a separate L3 above.
        let mut prediction = Array3::<u8>::zeros((12, 12, 30));
        prediction.slice_mut(s![4..8, 4..8, 2..6]).fill(24);
        prediction.slice_mut(s![4..8, 4..8, 6..9]).fill(23);
        prediction.slice_mut(s![4..8, 4..8, 14..20]).fill(22);
        let zooms = [1.5, 1.5, 1.5];
        let labels: Vec<(u8, &str)> = task.class_map.iter().map(|(l, n)| (l as u8, n)).collect();
        let expected = totalseg_core::postprocess::vertebrae::postprocess_vertebrae_pp(
            prediction.view(),
            &labels,
            100.0,
            1.5f32 * 1.5 * 1.5,
            [1.5; 3],
            3.0,
        );
        postprocess(&mut prediction, &run, &options, zooms);
        assert_eq!(prediction, expected);
        // The merged body became one vertebra (L5), the one above L4, both dilated.
        assert_eq!(prediction[[5, 5, 7]], 24);
        assert_eq!(prediction[[5, 5, 16]], 23);
        assert_eq!(prediction[[5, 5, 1]], 24);
    }

    #[test]
    fn split_ranges_match_nnunet_py() {
        // z = 100: third = 33 -> [:53], [14:86], [47:]
        assert_eq!(split_ranges(100), vec![(0, 53), (14, 86), (47, 100)]);
    }
}
