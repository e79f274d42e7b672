//! nnU-Net's predictor for one model (all its folds), as `nnUNetPredictor.predict_from_files`
//! runs it on one image: reader axis order, `transpose_forward`, crop to non-zero,
//! normalisation, resampling to the model spacing (only when the shape changes), the
//! gaussian-weighted sliding window with nnU-Net's fp16 sums, fold averaging, the export of
//! the logits to labels ([`totalseg_core::export`]: resampling back and argmax), pasting into
//! the uncropped box and `transpose_backward`.
//!
//! The network is behind [`TileNetwork`], so this module owns tiling, weighting and
//! accumulation independently of Burn (the MONAI `sliding_window_inference` role). A network
//! that runs on an accelerator offers [`TileNetwork::device_sliding_window`] instead: then the
//! tiles, sums, fold average and argmax stay on its device ([`device`]) and only the label
//! map comes back.

pub mod device;

use half::f16;
use ndarray::{s, Array3, Array4, Array5, ArrayView4, ArrayView5, Axis};
use totalseg_core::export::{logits_to_labels, logits_to_probabilities, LogitsResampling};
use totalseg_core::nonzero_crop::{crop_to_nonzero, insert_crop_into_image};
use totalseg_core::normalize::{normalize_channel, IntensityProperties, NormalizationScheme};
use totalseg_core::resample::{compute_new_shape, resample_channels_to_shape, NnunetResampling};
use totalseg_core::sliding_window::{
    add_fold_logits, average_fold_logits, gaussian_importance_map, AccumulationPrecision,
    LogitAccumulator, SlidingWindowPlan,
};
use totalseg_io::probabilities::NnunetProperties;

use crate::error::SegmentError;
use crate::timing::stage;
use device::{DeviceOutput, DevicePrediction, DeviceSlidingWindow, ImageIntensities};

/// What the sliding window needs to know of a network, whether it accumulates on the host
/// ([`TileNetwork`]) or on the network's device ([`device::DeviceForward`]).
pub trait NetworkShape {
    /// Number of output channels (labels, background included).
    fn num_classes(&self) -> usize;
    /// Number of folds whose logits are averaged.
    fn num_folds(&self) -> usize;
    /// How many tiles to send at once.
    fn batch_size(&self) -> usize {
        1
    }
}

/// A network that turns a batch of normalised tiles into logits.
pub trait TileNetwork: NetworkShape {
    /// Logits `[n, classes, p0, p1, p2]` of fold `fold` for tiles `[n, channels, p0, p1, p2]`.
    fn predict_tiles(
        &self,
        fold: usize,
        tiles: ArrayView5<f32>,
    ) -> Result<Array5<f32>, SegmentError>;
    /// Whether the network's logits are fp16 (nnU-Net under CUDA autocast): nnU-Net's fp16
    /// sums then weight the tile in fp16 too ([`AccumulationPrecision::Fp16Autocast`]).
    fn logits_are_fp16(&self) -> bool {
        false
    }
    /// The sliding window on the network's own device, when it runs there; `None` (the
    /// default) keeps tiling and accumulation on the host.
    fn device_sliding_window(&self) -> Option<&dyn DeviceSlidingWindow> {
        None
    }
}

/// The tile arithmetic for `network`: nnU-Net's fp16 sums become the autocast variant when
/// the network itself returns fp16 logits.
pub fn effective_accumulation(
    requested: AccumulationPrecision,
    network: &dyn TileNetwork,
) -> AccumulationPrecision {
    match requested {
        AccumulationPrecision::Fp16 if network.logits_are_fp16() => {
            AccumulationPrecision::Fp16Autocast
        }
        other => other,
    }
}

/// How one input channel is normalised (from the plans).
#[derive(Debug, Clone)]
pub struct ChannelNormalization {
    /// The plans' `normalization_schemes` entry.
    pub scheme: NormalizationScheme,
    /// `foreground_intensity_properties_per_channel` entry (CT normalisation needs it).
    pub properties: Option<IntensityProperties>,
    /// `use_mask_for_norm`.
    pub use_mask_for_norm: bool,
}

/// Everything the predictor needs from a model's plans, in nnU-Net's axis order (after
/// `transpose_forward`).
#[derive(Debug, Clone)]
pub struct PredictorSettings {
    /// Patch (tile) size.
    pub patch_size: [usize; 3],
    /// Target spacing of the configuration.
    pub spacing: [f64; 3],
    /// The plans' `transpose_forward`.
    pub transpose_forward: [usize; 3],
    /// The plans' `transpose_backward`.
    pub transpose_backward: [usize; 3],
    /// Per input channel normalisation.
    pub channels: Vec<ChannelNormalization>,
    /// Sliding-window step as a fraction of the patch (0.5, or 0.8 for the `total` tasks).
    pub step_size: f64,
    /// How tiles are summed (nnU-Net: fp16).
    pub accumulation: AccumulationPrecision,
    /// `resampling_fn_data_kwargs`.
    pub data_resampling: NnunetResampling,
    /// `resampling_fn_probabilities_kwargs`.
    pub probabilities_resampling: NnunetResampling,
    /// How the logits are resampled back when the model spacing differs from the image's
    /// (`Cropped` with TotalSegmentator's `--higher_order_resampling`).
    pub logits_resampling: LogitsResampling,
}

/// Progress of one prediction, for progress bars.
pub trait TileProgress: Sync {
    /// Called once with the total number of tile forward passes (tiles x folds).
    fn start(&self, _total: u64) {}
    /// Called after each batch with the number of tiles done in it.
    fn advance(&self, _tiles: u64) {}
}

/// No progress reporting.
pub struct NoTileProgress;
impl TileProgress for NoTileProgress {}

/// Predicts the label map of `image` (`[channels, i, j, k]` in NIfTI voxel order, spacing
/// in the same order as the NIfTI header's zooms).
///
/// Returns labels over `[i, j, k]` (the argmax of the fold-averaged logits; 0 outside the
/// non-zero crop).
pub fn predict_labels(
    image: ArrayView4<f32>,
    zooms: [f64; 3],
    settings: &PredictorSettings,
    network: &dyn TileNetwork,
    progress: &dyn TileProgress,
) -> Result<Array3<u16>, SegmentError> {
    predict(image, zooms, settings, network, progress, false).map(|(labels, _)| labels)
}

/// nnU-Net's `save_probabilities` output of one prediction: the class probabilities in the
/// reader's axis order (after `transpose_backward`) and the properties pickled beside them.
#[derive(Debug, Clone)]
pub struct NnunetProbabilities {
    /// Softmax probabilities `[classes, d0, d1, d2]`; outside the non-zero crop the
    /// background has probability 1.
    pub probabilities: Array4<f32>,
    /// `spacing`, `shape_before_cropping`, `bbox_used_for_cropping`, ... (the affine is
    /// filled in by the caller, who knows the image's).
    pub properties: NnunetProperties,
}

/// [`predict_labels`] plus the probabilities nnU-Net saves with `save_probabilities`. As in
/// nnU-Net's export with probabilities, the logits always go through the full resampling
/// (TotalSegmentator turns cropped-logits resampling off for `--save_probabilities`), and
/// the labels are the argmax of the resampled logits, as without probabilities.
pub fn predict_labels_and_probabilities(
    image: ArrayView4<f32>,
    zooms: [f64; 3],
    settings: &PredictorSettings,
    network: &dyn TileNetwork,
    progress: &dyn TileProgress,
) -> Result<(Array3<u16>, NnunetProbabilities), SegmentError> {
    let (labels, probabilities) = predict(image, zooms, settings, network, progress, true)?;
    let probabilities = probabilities
        .ok_or_else(|| SegmentError::Model("the probabilities were not computed".into()))?;
    Ok((labels, probabilities))
}

fn predict(
    image: ArrayView4<f32>,
    zooms: [f64; 3],
    settings: &PredictorSettings,
    network: &dyn TileNetwork,
    progress: &dyn TileProgress,
    with_probabilities: bool,
) -> Result<(Array3<u16>, Option<NnunetProbabilities>), SegmentError> {
    if image.shape()[0] != settings.channels.len() {
        return Err(SegmentError::Model(format!(
            "the model expects {} input channel(s), got {}",
            settings.channels.len(),
            image.shape()[0]
        )));
    }
    // nnU-Net's readers give (z, y, x) = the NIfTI array transposed, spacing reversed; then
    // transpose_forward.
    let tf = settings.transpose_forward;
    let reader_axes = [2usize, 1, 0];
    let axes: [usize; 3] = std::array::from_fn(|a| reader_axes[tf[a]]);
    let data = image.permuted_axes([0, axes[0] + 1, axes[1] + 1, axes[2] + 1]);
    let spacing: [f64; 3] = std::array::from_fn(|a| zooms[axes[a]]);
    let data = data.as_standard_layout().to_owned();

    let crop = crop_to_nonzero(data.view());
    let mut cropped = crop.data;
    // Spatial shape only: axis 0 holds the channels.
    let cropped_shape = dims3(&cropped.shape()[1..]);
    let new_shape = compute_new_shape(cropped_shape, spacing, settings.spacing)?;
    let resample_back = new_shape != cropped_shape;
    // The device normalises the raw crop itself where it can (no resampling in between).
    let on_device = network.device_sliding_window();
    let intensities = if on_device.is_some()
        && !resample_back
        && device::normalizes_on_device(&settings.channels)
    {
        ImageIntensities::Raw
    } else {
        ImageIntensities::Normalized
    };
    if intensities == ImageIntensities::Normalized {
        let nonzero_mask = crop.seg.mapv(|v| v >= 0);
        for (c, norm) in settings.channels.iter().enumerate() {
            let mut channel = cropped.index_axis_mut(Axis(0), c);
            normalize_channel(
                &mut channel,
                norm.scheme,
                norm.properties.as_ref(),
                norm.use_mask_for_norm,
                Some(nonzero_mask.view()),
            )
            .map_err(|e| SegmentError::Model(format!("normalisation: {e}")))?;
        }
    }
    let resampled = if resample_back {
        stage("nnU-Net resampling to the model spacing", || {
            resample_channels_to_shape(
                cropped.view(),
                new_shape,
                spacing,
                settings.spacing,
                &settings.data_resampling,
            )
        })?
    } else {
        cropped
    };

    let prediction = match on_device {
        Some(on_device) => {
            // Labels straight from the device unless the logits go through host resampling.
            let output = if resample_back || with_probabilities {
                DeviceOutput::Logits
            } else {
                DeviceOutput::Labels
            };
            let accumulation = effective_accumulation(settings.accumulation, network);
            on_device.predict_on_device(
                resampled.view(),
                intensities,
                settings,
                accumulation,
                output,
                progress,
            )?
        }
        None => DevicePrediction::Logits(predict_logits(
            resampled.view(),
            settings,
            network,
            progress,
        )?),
    };
    let mut probabilities = None;
    let labels = match prediction {
        DevicePrediction::Labels(labels) => labels,
        DevicePrediction::Logits(logits) if with_probabilities => {
            let (probs, labels) = stage("export of the probabilities", || {
                logits_to_probabilities(
                    logits,
                    cropped_shape,
                    settings.spacing,
                    spacing,
                    &settings.probabilities_resampling,
                )
            })?;
            probabilities = Some(probs);
            labels.mapv(u16::from)
        }
        DevicePrediction::Logits(logits) => stage("export of the logits", || {
            logits_to_labels(
                logits.view(),
                cropped_shape,
                settings.spacing,
                spacing,
                &settings.probabilities_resampling,
                settings.logits_resampling,
            )
        })?
        .mapv(u16::from),
    };
    let full = insert_crop_into_image(labels.view(), crop.bbox, crop.shape_before_cropping, 0u16)
        .map_err(|e| SegmentError::Model(e.to_string()))?;
    // transpose_backward, then back from the reader's (z, y, x) to NIfTI order.
    let tb = settings.transpose_backward;
    let unpermuted = full.permuted_axes(tb);
    let labels = unpermuted
        .permuted_axes(reader_axes)
        .as_standard_layout()
        .to_owned();
    let probabilities = probabilities.map(|cropped| {
        // revert_cropping_on_probabilities: background 1 outside the crop; then
        // transpose_backward (the file keeps the reader's axis order).
        // Each copy of a many-class volume is large: copy only when the crop or the
        // transpose changes something.
        let shape = crop.shape_before_cropping;
        let b = crop.bbox;
        let full = if cropped.shape()[1..] == shape[..] {
            cropped
        } else {
            let mut full = Array4::<f32>::zeros((cropped.shape()[0], shape[0], shape[1], shape[2]));
            full.index_axis_mut(Axis(0), 0).fill(1.0);
            full.slice_mut(s![
                ..,
                b.start[0]..b.end[0],
                b.start[1]..b.end[1],
                b.start[2]..b.end[2]
            ])
            .assign(&cropped);
            full
        };
        let probabilities = if tb == [0, 1, 2] {
            full
        } else {
            full.permuted_axes([0, tb[0] + 1, tb[1] + 1, tb[2] + 1])
                .as_standard_layout()
                .to_owned()
        };
        NnunetProbabilities {
            probabilities,
            properties: NnunetProperties {
                affine: [[0.0; 4]; 4],
                spacing: std::array::from_fn(|a| zooms[reader_axes[a]]),
                shape_before_cropping: shape,
                bbox_used_for_cropping: std::array::from_fn(|a| [b.start[a], b.end[a]]),
                shape_after_cropping: cropped_shape,
            },
        }
    });
    Ok((labels, probabilities))
}

/// The sliding window over a normalised `[channels, d0, d1, d2]` image: fold-averaged logits
/// `[classes, d0, d1, d2]`, with nnU-Net's fp16 arithmetic by default.
pub fn predict_logits(
    image: ArrayView4<f32>,
    settings: &PredictorSettings,
    network: &dyn TileNetwork,
    progress: &dyn TileProgress,
) -> Result<Array4<f32>, SegmentError> {
    let shape = dims3(&image.shape()[1..]);
    let plan = SlidingWindowPlan::new(shape, settings.patch_size, settings.step_size)?;
    let padded = plan.pad_image(image)?;
    let gaussian = gaussian_importance_map(settings.patch_size);
    let tiles: Vec<[usize; 3]> = plan.tiles().collect();
    let folds = network.num_folds().max(1);
    progress.start((tiles.len() * folds) as u64);
    let classes = network.num_classes();
    let batch = network.batch_size().max(1);
    let channels = image.shape()[0];
    let p = settings.patch_size;

    let accumulation = effective_accumulation(settings.accumulation, network);
    let mut fold_sum: Option<FoldSum> = None;
    for fold in 0..folds {
        let mut acc =
            LogitAccumulator::with_importance_map(classes, &plan, accumulation, gaussian.view())?;
        for group in tiles.chunks(batch) {
            let mut input = Array5::<f32>::zeros((group.len(), channels, p[0], p[1], p[2]));
            for (n, origin) in group.iter().enumerate() {
                input
                    .index_axis_mut(Axis(0), n)
                    .assign(&padded.slice(plan.tile_slice(*origin)));
            }
            let out = network.predict_tiles(fold, input.view())?;
            let expected = [group.len(), classes, p[0], p[1], p[2]];
            if out.shape() != expected {
                return Err(SegmentError::Model(format!(
                    "the network returned logits of shape {:?}, expected {expected:?}",
                    out.shape()
                )));
            }
            for (n, origin) in group.iter().enumerate() {
                acc.add_tile(*origin, out.index_axis(Axis(0), n))?;
            }
            progress.advance(group.len() as u64);
        }
        fold_sum = Some(match fold_sum {
            None => FoldSum::first(acc)?,
            Some(sum) => sum.add(acc)?,
        });
    }
    match fold_sum {
        Some(sum) => sum.average(folds),
        None => Err(SegmentError::Model("the model has no folds".into())),
    }
}

/// nnU-Net's fold loop: `prediction += fold_logits` in the logits' dtype (fp16 in 2.8), then
/// `prediction /= n_folds`.
enum FoldSum {
    Half(Array4<f16>),
    Single(Array4<f32>),
}

impl FoldSum {
    fn first(acc: LogitAccumulator) -> Result<Self, SegmentError> {
        Ok(match acc.precision() {
            AccumulationPrecision::Fp32 => FoldSum::Single(acc.finish()?),
            _ => FoldSum::Half(acc.finish_f16()?),
        })
    }

    fn add(self, acc: LogitAccumulator) -> Result<Self, SegmentError> {
        Ok(match self {
            FoldSum::Single(mut sum) => {
                sum += &acc.finish()?;
                FoldSum::Single(sum)
            }
            FoldSum::Half(mut sum) => {
                add_fold_logits(&mut sum, acc.finish_f16()?.view())?;
                FoldSum::Half(sum)
            }
        })
    }

    fn average(self, folds: usize) -> Result<Array4<f32>, SegmentError> {
        Ok(match self {
            FoldSum::Single(mut sum) => {
                if folds > 1 {
                    sum.mapv_inplace(|v| v / folds as f32);
                }
                sum
            }
            FoldSum::Half(mut sum) => {
                average_fold_logits(&mut sum, folds);
                sum.mapv(f16::to_f32)
            }
        })
    }
}

/// Argmax over the channel axis as `torch.argmax`: ties go to the lowest channel, the first
/// NaN counts as the maximum ([`totalseg_core::postprocess::argmax_channels`], widened to the
/// pipeline's `u16` labels).
pub fn argmax_channels(logits: ArrayView4<f32>) -> Result<Array3<u16>, SegmentError> {
    let labels = totalseg_core::postprocess::argmax_channels(logits)
        .map_err(|e| SegmentError::Model(format!("argmax over the logits: {e}")))?;
    Ok(labels.mapv(u16::from))
}

fn dims3(shape: &[usize]) -> [usize; 3] {
    [shape[0], shape[1], shape[2]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array5;

    /// A "network" whose logit k is the input times k: argmax is the top class where the
    /// input is positive, class 0 elsewhere.
    struct Linear {
        classes: usize,
    }

    impl NetworkShape for Linear {
        fn num_classes(&self) -> usize {
            self.classes
        }
        fn num_folds(&self) -> usize {
            1
        }
    }

    impl TileNetwork for Linear {
        fn predict_tiles(
            &self,
            _fold: usize,
            tiles: ArrayView5<f32>,
        ) -> Result<Array5<f32>, SegmentError> {
            let (n, _, a, b, c) = tiles.dim();
            Ok(Array5::from_shape_fn(
                (n, self.classes, a, b, c),
                |(n, k, i, j, l)| tiles[[n, 0, i, j, l]] * k as f32,
            ))
        }
    }

    fn settings(patch: [usize; 3]) -> PredictorSettings {
        PredictorSettings {
            patch_size: patch,
            spacing: [1.0, 1.0, 1.0],
            transpose_forward: [0, 1, 2],
            transpose_backward: [0, 1, 2],
            channels: vec![ChannelNormalization {
                scheme: NormalizationScheme::Ct,
                properties: Some(IntensityProperties {
                    mean: 0.0,
                    std: 100.0,
                    percentile_00_5: -1000.0,
                    percentile_99_5: 1000.0,
                }),
                use_mask_for_norm: false,
            }],
            step_size: 0.5,
            accumulation: AccumulationPrecision::Fp16,
            data_resampling: NnunetResampling::default(),
            probabilities_resampling: NnunetResampling::default(),
            logits_resampling: LogitsResampling::Full,
        }
    }

    #[test]
    fn labels_come_back_in_nifti_axis_order() {
        // An anisotropic image with a positive block at one corner: the labels must mark
        // exactly that block, whatever the internal transposes.
        let (a, b, c) = (9usize, 6usize, 5usize);
        let image = Array4::from_shape_fn((1, a, b, c), |(_, i, j, k)| {
            if i < 3 && j >= 4 && k == 1 {
                500.0
            } else {
                -500.0
            }
        });
        let labels = predict_labels(
            image.view(),
            [1.0, 1.0, 1.0],
            &settings([4, 4, 4]),
            &Linear { classes: 3 },
            &NoTileProgress,
        )
        .unwrap();
        assert_eq!(labels.dim(), (a, b, c));
        for ((i, j, k), &l) in labels.indexed_iter() {
            let inside = i < 3 && j >= 4 && k == 1;
            assert_eq!(l, if inside { 2 } else { 0 }, "voxel {:?}", (i, j, k));
        }
    }

    #[test]
    fn argmax_ties_go_to_the_lowest_channel() {
        let logits =
            Array4::from_shape_vec((3, 1, 1, 2), vec![1.0, 0.0, 1.0, 2.0, 0.5, 2.0]).unwrap();
        let labels = argmax_channels(logits.view()).unwrap();
        assert_eq!(labels.iter().copied().collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn argmax_takes_the_first_nan_as_torch_does() {
        // torch.argmax over dim 0 of [[1, 0, 1, nan], [nan, 0, 1, 2], [2, nan, 0.5, nan]]
        // gives [1, 2, 0, 0] (checked with torch 2.15, f32 and f16).
        let nan = f32::NAN;
        let logits = Array4::from_shape_vec(
            (3, 1, 1, 4),
            vec![1.0, 0.0, 1.0, nan, nan, 0.0, 1.0, 2.0, 2.0, nan, 0.5, nan],
        )
        .unwrap();
        let labels = argmax_channels(logits.view()).unwrap();
        assert_eq!(labels.iter().copied().collect::<Vec<_>>(), vec![1, 2, 0, 0]);
    }

    #[test]
    fn wrong_channel_count_is_an_error() {
        let image = Array4::<f32>::zeros((2, 4, 4, 4));
        let err = predict_labels(
            image.view(),
            [1.0; 3],
            &settings([4, 4, 4]),
            &Linear { classes: 2 },
            &NoTileProgress,
        );
        assert!(err.is_err());
    }
}
