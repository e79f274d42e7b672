//! The sliding window on a Burn device: the padded image is uploaded once, tiles are cut and
//! batched on the device, the logits are gaussian-weighted and summed into device tensors with
//! the same arithmetic as the host's [`LogitAccumulator`](totalseg_core::sliding_window::LogitAccumulator)
//! (fp16 sums by default), folds are averaged and the argmax is taken on the device. Only the
//! label map (or, when the logits must be resampled on the host, the logits) comes back.
//!
//! Written against Burn's generic [`Backend`] so the same code runs (and is tested) on the CPU
//! backend `burn_flex::Flex`; on CUDA it keeps the whole hot path on the GPU.
//!
//! Bit-for-bit agreement with the host path holds when the backend evaluates each elementwise
//! f32 operation separately with IEEE rounding (Flex does). A GPU compiler that contracts the
//! `tile * gaussian + sum` into one fused multiply-add would round once instead of twice, which
//! can move an fp16 sum by one ulp (nnU-Net's PyTorch runs the two as separate kernels).

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Int, Tensor, TensorData};
use ndarray::{Array3, Array4, ArrayView3, ArrayView4};
use totalseg_core::sliding_window::{
    gaussian_importance_map, AccumulationPrecision, SlidingWindowError, SlidingWindowPlan,
};

use totalseg_nn::NetworkOps;

use super::{NetworkShape, PredictorSettings, TileProgress};
use crate::error::SegmentError;

mod normalize;
pub use normalize::{normalize_on_device, normalizes_on_device};

/// Whether the image handed to the device sliding window is normalised already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageIntensities {
    /// Normalised on the host.
    Normalized,
    /// Raw intensities: the plans' normalisation runs on the device first (every channel's
    /// scheme must pass [`normalizes_on_device`]).
    Raw,
}

/// A network that runs batches of tiles already on its device.
pub trait DeviceForward<B: Backend>: NetworkShape {
    /// Logits `[n, classes, p0, p1, p2]` (any float dtype) of fold `fold` for f32 tiles
    /// `[n, channels, p0, p1, p2]`.
    fn forward(&self, fold: usize, tiles: Tensor<B, 5>) -> Result<Tensor<B, 5>, SegmentError>;
}

/// What the device sliding window hands back to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceOutput {
    /// The argmax, taken on the device (the usual case: nothing else crosses the bus).
    Labels,
    /// The fold-averaged logits, for resampling on the host before the argmax.
    Logits,
}

/// The result of a device sliding window, as requested by [`DeviceOutput`].
#[derive(Debug, Clone)]
pub enum DevicePrediction {
    /// Labels `[d0, d1, d2]`.
    Labels(Array3<u16>),
    /// Fold-averaged logits `[classes, d0, d1, d2]` (fp16 values widened for fp16 sums).
    Logits(Array4<f32>),
}

/// A network that runs the whole sliding window on its own device (object-safe face of
/// [`predict_on_device`], used by the predictor).
pub trait DeviceSlidingWindow {
    /// The sliding window over a `[channels, d0, d1, d2]` image (normalised, or raw to be
    /// normalised on the device) with the given tile arithmetic.
    fn predict_on_device(
        &self,
        image: ArrayView4<f32>,
        intensities: ImageIntensities,
        settings: &PredictorSettings,
        accumulation: AccumulationPrecision,
        output: DeviceOutput,
        progress: &dyn TileProgress,
    ) -> Result<DevicePrediction, SegmentError>;
}

/// Runs the sliding window of `network` on `device` and returns what `output` asks for.
///
/// ```
/// use burn::tensor::Tensor;
/// use burn_flex::{Flex, FlexDevice};
/// use ndarray::Array4;
/// use totalseg_core::normalize::NormalizationScheme;
/// use totalseg_core::export::LogitsResampling;
/// use totalseg_core::resample::NnunetResampling;
/// use totalseg_core::sliding_window::AccumulationPrecision;
/// use totalsegmentator::predictor::device::{
///     predict_on_device, DeviceForward, DeviceOutput, DevicePrediction, ImageIntensities,
/// };
/// use totalsegmentator::predictor::{
///     ChannelNormalization, NetworkShape, NoTileProgress, PredictorSettings,
/// };
/// use totalsegmentator::SegmentError;
///
/// /// Two classes: logit 0 is 0, logit 1 the intensity (class 1 where the image is positive).
/// struct Sign;
/// impl NetworkShape for Sign {
///     fn num_classes(&self) -> usize { 2 }
///     fn num_folds(&self) -> usize { 1 }
///     fn batch_size(&self) -> usize { 2 }
/// }
/// impl DeviceForward<Flex> for Sign {
///     fn forward(&self, _fold: usize, tiles: Tensor<Flex, 5>) -> Result<Tensor<Flex, 5>, SegmentError> {
///         Ok(Tensor::cat(vec![tiles.clone().zeros_like(), tiles], 1))
///     }
/// }
///
/// let settings = PredictorSettings {
///     patch_size: [4, 4, 4],
///     spacing: [1.0; 3],
///     transpose_forward: [0, 1, 2],
///     transpose_backward: [0, 1, 2],
///     channels: vec![ChannelNormalization {
///         scheme: NormalizationScheme::None, properties: None, use_mask_for_norm: false,
///     }],
///     step_size: 0.5,
///     accumulation: AccumulationPrecision::Fp16,
///     data_resampling: NnunetResampling::default(),
///     probabilities_resampling: NnunetResampling::default(),
///     logits_resampling: LogitsResampling::Full,
/// };
/// let image = Array4::from_shape_fn((1, 6, 5, 4), |(_, i, _, _)| if i < 3 { -1.0 } else { 1.0 });
/// let labels = match predict_on_device::<Flex, _>(
///     &Sign, &FlexDevice, image.view(), ImageIntensities::Normalized, &settings,
///     AccumulationPrecision::Fp16, DeviceOutput::Labels, &NoTileProgress,
/// )? {
///     DevicePrediction::Labels(labels) => labels,
///     DevicePrediction::Logits(_) => unreachable!("labels were asked for"),
/// };
/// assert_eq!(labels[[0, 2, 1]], 0);
/// assert_eq!(labels[[5, 2, 1]], 1);
/// # Ok::<(), SegmentError>(())
/// ```
#[allow(clippy::too_many_arguments)] // each is one independent choice of the caller
pub fn predict_on_device<B: NetworkOps, N: DeviceForward<B> + ?Sized>(
    network: &N,
    device: &B::Device,
    image: ArrayView4<f32>,
    intensities: ImageIntensities,
    settings: &PredictorSettings,
    accumulation: AccumulationPrecision,
    output: DeviceOutput,
    progress: &dyn TileProgress,
) -> Result<DevicePrediction, SegmentError> {
    let logits = fold_averaged_logits_on_device(
        network,
        device,
        image,
        intensities,
        settings,
        accumulation,
        progress,
    )?;
    Ok(match output {
        DeviceOutput::Labels => DevicePrediction::Labels(labels_to_host(argmax_on_device(logits))?),
        DeviceOutput::Logits => DevicePrediction::Logits(logits_to_host(logits)?),
    })
}

/// Tiles per batch: the network's batch size, but no more than there are tiles.
fn full_batch_size(network_batch: usize, tiles: usize) -> usize {
    network_batch.clamp(1, tiles.max(1))
}

/// The tile origins of one batch (a chunk of at most `batch` tiles), a short (last) one filled
/// up to `batch` by repeating its last tile; the repeats' logits are dropped. Burn's GPU
/// backends compile and autotune kernels per input shape, batch size included: a last batch of
/// another size (27 tiles in batches of 2, as on a 1.5 mm part of a whole CT) would compile
/// and tune every convolution and matmul once more (about 6 s each on an H200 cold), for one
/// tile's worth of work.
fn padded_batch(group: &[[usize; 3]], batch: usize) -> Vec<[usize; 3]> {
    let mut origins = group.to_vec();
    if let Some(&last) = group.last() {
        origins.resize(batch, last);
    }
    origins
}

/// The device counterpart of [`super::predict_logits`]: fold-averaged logits
/// `[classes, d0, d1, d2]` as a device tensor, f16 for the fp16 modes and f32 otherwise.
///
/// Every batch sent to the network holds the same number of tiles: a short last batch repeats
/// its last tile, whose logits are dropped (GPU kernels are compiled and tuned per shape).
pub fn fold_averaged_logits_on_device<B: NetworkOps, N: DeviceForward<B> + ?Sized>(
    network: &N,
    device: &B::Device,
    image: ArrayView4<f32>,
    intensities: ImageIntensities,
    settings: &PredictorSettings,
    accumulation: AccumulationPrecision,
    progress: &dyn TileProgress,
) -> Result<Tensor<B, 4>, SegmentError> {
    let shape = [image.shape()[1], image.shape()[2], image.shape()[3]];
    let plan = SlidingWindowPlan::new(shape, settings.patch_size, settings.step_size)?;
    let padded = match intensities {
        ImageIntensities::Normalized => upload4::<B>(plan.pad_image(image)?.view(), device),
        // nnU-Net pads the normalised image with zeros: normalise first, then pad.
        ImageIntensities::Raw => pad_on_device(
            normalize_on_device(upload4::<B>(image, device), &settings.channels)?,
            &plan,
        ),
    };
    let p = settings.patch_size;
    let gaussian = upload3::<B>(
        gaussian_importance_map(p).mapv(|v| v.to_f32()).view(),
        device,
    );
    let tiles: Vec<[usize; 3]> = plan.tiles().collect();
    let folds = network.num_folds().max(1);
    progress.start((tiles.len() * folds) as u64);
    let classes = network.num_classes();
    if classes == 0 {
        return Err(SlidingWindowError::NoClasses.into());
    }
    let channels = image.shape()[0];
    let batch = full_batch_size(network.batch_size(), tiles.len());
    let arithmetic = TileArithmetic::new(accumulation, gaussian.clone());
    // The summed weights depend only on the plan: one map for every fold.
    let weights = arithmetic.summed_weights(&plan, device, &tiles);

    let mut fold_sum: Option<Tensor<B, 4>> = None;
    for fold in 0..folds {
        let [d0, d1, d2] = plan.padded_shape();
        let mut sums =
            Tensor::<B, 4>::zeros([classes, d0, d1, d2], (device, arithmetic.storage_dtype()));
        for group in tiles.chunks(batch) {
            let batch_input = Tensor::cat(
                padded_batch(group, batch)
                    .iter()
                    .map(|o| {
                        padded
                            .clone()
                            .slice(tile_ranges4(channels, *o, p))
                            .reshape([1, channels, p[0], p[1], p[2]])
                    })
                    .collect(),
                0,
            );
            let out = network.forward(fold, batch_input)?;
            let expected = [batch, classes, p[0], p[1], p[2]];
            if out.dims() != expected {
                return Err(SegmentError::Model(format!(
                    "the network returned logits of shape {:?}, expected {expected:?}",
                    out.dims()
                )));
            }
            for (n, origin) in group.iter().enumerate() {
                let tile = out
                    .clone()
                    .slice([n..n + 1, 0..classes, 0..p[0], 0..p[1], 0..p[2]])
                    .reshape([classes, p[0], p[1], p[2]]);
                sums = arithmetic.add_tile(sums, tile, *origin);
            }
            progress.advance(group.len() as u64);
        }
        let quotient = arithmetic.divide(sums, weights.clone())?;
        let below = plan.pad_below();
        let unpadded = quotient.slice([
            0..classes,
            below[0]..below[0] + shape[0],
            below[1]..below[1] + shape[1],
            below[2]..below[2] + shape[2],
        ]);
        fold_sum = Some(match fold_sum {
            None => unpadded,
            Some(sum) => arithmetic.add_folds(sum, unpadded)?,
        });
    }
    let sum = fold_sum.ok_or_else(|| SegmentError::Model("the model has no folds".into()))?;
    arithmetic.average_folds(sum, folds)
}

/// nnU-Net's per-tile arithmetic (see [`AccumulationPrecision`]) as device tensor ops; each
/// step mirrors one rounding of the host accumulator.
struct TileArithmetic<B: NetworkOps> {
    precision: AccumulationPrecision,
    /// The fp16 importance map widened to f32, `[p0, p1, p2]`.
    gaussian: Tensor<B, 3>,
    /// Values per chunk of the whole-volume steps (see [`Self::by_class_chunks`]).
    chunk_values: usize,
}

/// 2^26 values: f32 temporaries of 256 MiB per chunk.
const CHUNK_VALUES: usize = 1 << 26;

impl<B: NetworkOps> TileArithmetic<B> {
    fn new(precision: AccumulationPrecision, gaussian: Tensor<B, 3>) -> Self {
        Self {
            precision,
            gaussian: gaussian.cast(DType::F32),
            chunk_values: CHUNK_VALUES,
        }
    }

    /// The dtype the sums are stored in.
    fn storage_dtype(&self) -> DType {
        match self.precision {
            AccumulationPrecision::Fp32 => DType::F32,
            _ => DType::F16,
        }
    }

    /// Rounds f32 values to the storage dtype (a no-op for f32 sums).
    fn store<const D: usize>(&self, values: Tensor<B, D>) -> Tensor<B, D> {
        values.cast(self.storage_dtype())
    }

    /// `predicted_logits[sl] += prediction * gaussian`.
    fn add_tile(&self, sums: Tensor<B, 4>, tile: Tensor<B, 4>, origin: [usize; 3]) -> Tensor<B, 4> {
        let [classes, p0, p1, p2] = tile.dims();
        let g = self.gaussian.clone().reshape([1, p0, p1, p2]);
        let weighted = match self.precision {
            // fp16 network output times the fp16 map, product rounded to fp16.
            AccumulationPrecision::Fp16Autocast => tile
                .cast(DType::F16)
                .cast(DType::F32)
                .mul(g)
                .cast(DType::F16)
                .cast(DType::F32),
            _ => tile.cast(DType::F32).mul(g),
        };
        let region = tile_ranges4(classes, origin, [p0, p1, p2]);
        let current = sums.clone().slice(region.clone()).cast(DType::F32);
        let updated = self.store(current.add(weighted));
        sums.slice_assign(region, updated)
    }

    /// `n_predictions[sl] += gaussian` over every tile: `[1, padded...]`.
    fn summed_weights(
        &self,
        plan: &SlidingWindowPlan,
        device: &B::Device,
        tiles: &[[usize; 3]],
    ) -> Tensor<B, 4> {
        let [d0, d1, d2] = plan.padded_shape();
        let [p0, p1, p2] = plan.patch_size();
        let mut weights = Tensor::<B, 4>::zeros([1, d0, d1, d2], (device, self.storage_dtype()));
        let g = self.gaussian.clone().reshape([1, p0, p1, p2]);
        for origin in tiles {
            let region = tile_ranges4(1, *origin, [p0, p1, p2]);
            let current = weights.clone().slice(region.clone()).cast(DType::F32);
            let updated = self.store(current.add(g.clone()));
            weights = weights.slice_assign(region, updated);
        }
        weights
    }

    /// `predicted_logits /= n_predictions` (f32 quotient of the stored values, rounded to the
    /// storage dtype); an infinite quotient is an error, as in nnU-Net.
    fn divide(
        &self,
        sums: Tensor<B, 4>,
        weights: Tensor<B, 4>,
    ) -> Result<Tensor<B, 4>, SegmentError> {
        let weights = weights.cast(DType::F32);
        let mut infinite = false;
        let quotient = self.by_class_chunks(sums, |chunk, _| {
            let quotient = self.store(chunk.cast(DType::F32).div(weights.clone()));
            infinite |= has_infinite(quotient.clone())?;
            Ok(quotient)
        })?;
        if infinite {
            let count = count_true(quotient.is_inf().int())?;
            return Err(SlidingWindowError::InfiniteLogits {
                count: count.max(1),
            }
            .into());
        }
        Ok(quotient)
    }

    /// `prediction += fold_logits` in the storage dtype.
    fn add_folds(
        &self,
        sum: Tensor<B, 4>,
        fold: Tensor<B, 4>,
    ) -> Result<Tensor<B, 4>, SegmentError> {
        self.by_class_chunks(sum, |chunk, classes| {
            let [_, d0, d1, d2] = chunk.dims();
            let other = fold.clone().slice([classes, 0..d0, 0..d1, 0..d2]);
            Ok(self.store(chunk.cast(DType::F32).add(other.cast(DType::F32))))
        })
    }

    /// `prediction /= n_folds` (skipped for one fold, as nnU-Net does).
    fn average_folds(&self, sum: Tensor<B, 4>, folds: usize) -> Result<Tensor<B, 4>, SegmentError> {
        if folds <= 1 {
            return Ok(sum);
        }
        self.by_class_chunks(sum, |chunk, _| {
            Ok(self.store(chunk.cast(DType::F32).div_scalar(folds as f32)))
        })
    }

    /// Replaces `values` `[classes, ...]` by `step(chunk, classes)` a few classes at a time,
    /// written back in place: the f32 temporaries of `step` then cover at most
    /// `chunk_values` values, not the whole volume (a 1.5 mm part of a large CT has ~3e8
    /// logits, 1.1 GiB per f32 copy).
    fn by_class_chunks(
        &self,
        values: Tensor<B, 4>,
        mut step: impl FnMut(Tensor<B, 4>, std::ops::Range<usize>) -> Result<Tensor<B, 4>, SegmentError>,
    ) -> Result<Tensor<B, 4>, SegmentError> {
        let [classes, d0, d1, d2] = values.dims();
        let per_class = (d0 * d1 * d2).max(1);
        let chunk = (self.chunk_values / per_class).clamp(1, classes.max(1));
        let mut values = values;
        for start in (0..classes).step_by(chunk) {
            let range = [start..(start + chunk).min(classes), 0..d0, 0..d1, 0..d2];
            let updated = step(values.clone().slice(range.clone()), range[0].clone())?;
            values = values.slice_assign(range, updated);
        }
        Ok(values)
    }
}

/// Whether `values` holds an infinity: its max and min, two reductions with no full-size
/// temporary (a mask and its integer sum would cost 5 bytes per value), read in one copy
/// (untuned on the GPU backends, see [`NetworkOps::unet_max_and_min`]).
fn has_infinite<B: NetworkOps>(values: Tensor<B, 4>) -> Result<bool, SegmentError> {
    let extremes = B::unet_max_and_min(values)
        .cast(DType::F32)
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| SegmentError::Model(format!("reading logits from the device: {e:?}")))?;
    Ok(extremes.iter().any(|v| v.is_infinite()))
}

/// Argmax over the channel axis of `[classes, d0, d1, d2]`, ties to the lowest channel and the
/// first NaN counting as the maximum (as `torch.argmax` and the host's
/// [`super::argmax_channels`]); compares in the logits' dtype.
pub fn argmax_on_device<B: Backend>(logits: Tensor<B, 4>) -> Tensor<B, 3, Int> {
    let [classes, d0, d1, d2] = logits.dims();
    let device = logits.device();
    let channel = |k: usize| {
        logits
            .clone()
            .slice([k..k + 1, 0..d0, 0..d1, 0..d2])
            .reshape([d0, d1, d2])
    };
    let mut best = channel(0);
    let mut labels = Tensor::<B, 3, Int>::zeros([d0, d1, d2], &device);
    for k in 1..classes {
        let value = channel(k);
        // `v > best`, or `v` the first NaN (a NaN best compares false and stays).
        let first_nan = value
            .clone()
            .is_nan()
            .bool_and(best.clone().is_nan().bool_not());
        let better = value.clone().greater(best.clone()).bool_or(first_nan);
        best = best.mask_where(better.clone(), value);
        labels = labels.mask_fill(better, k as i64);
    }
    labels
}

/// Copies a device label map to the host.
pub fn labels_to_host<B: Backend>(labels: Tensor<B, 3, Int>) -> Result<Array3<u16>, SegmentError> {
    let [d0, d1, d2] = labels.dims();
    let data = labels
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .map_err(|e| SegmentError::Model(format!("reading labels from the device: {e:?}")))?;
    let values = data
        .into_iter()
        .map(|v| {
            u16::try_from(v).map_err(|_| SegmentError::Model(format!("label {v} out of range")))
        })
        .collect::<Result<Vec<u16>, _>>()?;
    Array3::from_shape_vec((d0, d1, d2), values)
        .map_err(|e| SegmentError::Model(format!("label map shape: {e}")))
}

/// Copies device logits to the host as f32 (exact for f16 values).
pub fn logits_to_host<B: Backend>(logits: Tensor<B, 4>) -> Result<Array4<f32>, SegmentError> {
    let [c, d0, d1, d2] = logits.dims();
    let data = logits
        .cast(DType::F32)
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_err(|e| SegmentError::Model(format!("reading logits from the device: {e:?}")))?;
    Array4::from_shape_vec((c, d0, d1, d2), data)
        .map_err(|e| SegmentError::Model(format!("logits shape: {e}")))
}

fn count_true<B: Backend>(mask: Tensor<B, 4, Int>) -> Result<usize, SegmentError> {
    let total = mask
        .sum()
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .map_err(|e| SegmentError::Model(format!("reading a count from the device: {e:?}")))?;
    Ok(total.first().copied().unwrap_or(0).max(0) as usize)
}

fn tile_ranges4(
    channels: usize,
    origin: [usize; 3],
    patch: [usize; 3],
) -> [std::ops::Range<usize>; 4] {
    [
        0..channels,
        origin[0]..origin[0] + patch[0],
        origin[1]..origin[1] + patch[1],
        origin[2]..origin[2] + patch[2],
    ]
}

/// [`SlidingWindowPlan::pad_image`] on the device: zeros around the image.
fn pad_on_device<B: Backend>(image: Tensor<B, 4>, plan: &SlidingWindowPlan) -> Tensor<B, 4> {
    let [channels, d0, d1, d2] = image.dims();
    let [p0, p1, p2] = plan.padded_shape();
    let [b0, b1, b2] = plan.pad_below();
    Tensor::<B, 4>::zeros([channels, p0, p1, p2], (&image.device(), DType::F32))
        .slice_assign([0..channels, b0..b0 + d0, b1..b1 + d1, b2..b2 + d2], image)
}

fn upload4<B: Backend>(values: ArrayView4<f32>, device: &B::Device) -> Tensor<B, 4> {
    let shape = values.shape().to_vec();
    let data: Vec<f32> = values.iter().copied().collect();
    Tensor::from_data(TensorData::new(data, shape), (device, DType::F32))
}

fn upload3<B: Backend>(values: ArrayView3<f32>, device: &B::Device) -> Tensor<B, 3> {
    let shape = values.shape().to_vec();
    let data: Vec<f32> = values.iter().copied().collect();
    Tensor::from_data(TensorData::new(data, shape), (device, DType::F32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_flex::{Flex, FlexDevice};

    /// Deterministic values in `[low, low + 8)`, `[c, 3, 4, 5]`.
    fn values(classes: usize, low: f32, seed: u32) -> Tensor<Flex, 4> {
        let mut state = seed.wrapping_mul(2_654_435_761) | 1;
        let data: Vec<f32> = (0..classes * 60)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                low + (state >> 8) as f32 / (1u32 << 24) as f32 * 8.0
            })
            .collect();
        Tensor::from_data(TensorData::new(data, [classes, 3, 4, 5]), &FlexDevice)
    }

    fn bits(t: Tensor<Flex, 4>) -> Vec<u32> {
        t.cast(DType::F32)
            .into_data()
            .into_vec::<f32>()
            .expect("f32")
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    #[test]
    fn class_chunks_give_the_whole_volume_result() {
        for precision in [AccumulationPrecision::Fp16, AccumulationPrecision::Fp32] {
            let gaussian = Tensor::<Flex, 3>::ones([2, 2, 2], &FlexDevice);
            let whole = TileArithmetic::<Flex>::new(precision, gaussian.clone());
            // 60 values per class: chunks of 2, 2 and 1 of the 5 classes.
            let chunked = TileArithmetic {
                chunk_values: 2 * 60 + 7,
                ..TileArithmetic::new(precision, gaussian)
            };
            let sums = whole.store(values(5, -4.0, 1));
            let weights = whole.store(values(1, 0.5, 2));
            let other = whole.store(values(5, -4.0, 3));
            for arithmetic in [&whole, &chunked] {
                assert_eq!(arithmetic.storage_dtype(), whole.storage_dtype());
            }
            let expected = whole.divide(sums.clone(), weights.clone()).expect("finite");
            let got = chunked.divide(sums.clone(), weights).expect("finite");
            assert_eq!(bits(got), bits(expected.clone()), "{precision:?} divide");
            let expected = whole
                .add_folds(sums.clone(), other.clone())
                .and_then(|s| whole.average_folds(s, 3))
                .expect("folds");
            let got = chunked
                .add_folds(sums, other)
                .and_then(|s| chunked.average_folds(s, 3))
                .expect("folds");
            assert_eq!(bits(got), bits(expected), "{precision:?} folds");
        }
    }

    #[test]
    fn every_batch_has_the_same_number_of_tiles() {
        let tiles: Vec<[usize; 3]> = (0..5).map(|i| [i, 0, 0]).collect();
        let batch = full_batch_size(2, tiles.len());
        let batches: Vec<_> = tiles
            .chunks(batch)
            .map(|g| padded_batch(g, batch))
            .collect();
        assert!(batches.iter().all(|b| b.len() == 2), "{batches:?}");
        assert_eq!(batches[2], vec![[4, 0, 0], [4, 0, 0]]);
        // Never more tiles than the image has, and at least one.
        assert_eq!(full_batch_size(4, 3), 3);
        assert_eq!(full_batch_size(0, 3), 1);
        assert_eq!(full_batch_size(2, 0), 1);
    }

    #[test]
    fn an_infinity_in_any_chunk_is_reported() {
        let gaussian = Tensor::<Flex, 3>::ones([2, 2, 2], &FlexDevice);
        let chunked = TileArithmetic {
            chunk_values: 60,
            ..TileArithmetic::new(AccumulationPrecision::Fp16, gaussian)
        };
        // One class of five divides by a weight small enough to overflow fp16.
        let mut sums = values(5, 1.0, 4);
        sums = sums.slice_assign(
            [3..4, 0..3, 0..4, 0..5],
            Tensor::full([1, 3, 4, 5], 60000.0, &FlexDevice),
        );
        let weights = Tensor::<Flex, 4>::full([1, 3, 4, 5], 0.5, &FlexDevice);
        let error = chunked
            .divide(chunked.store(sums), chunked.store(weights))
            .expect_err("fp16 overflow");
        assert!(
            error
                .to_string()
                .contains(": 60 accumulated logits are infinite"),
            "{error}"
        );
    }
}
