//! The sliding window's accumulation on the CPU: the host accumulator (`LogitAccumulator`,
//! parallel over classes) against the device-side path (`predictor::device`, Burn tensor ops)
//! on the CPU backend `burn_flex::Flex`, with a network that costs nothing (the tile's
//! intensities scaled per class), so only tiling, weighting, summing, division, fold averaging
//! and the copy back are timed. This is what decides which path the CPU uses.
//!
//! Sizes: 25 classes, a 1.5 mm part's patch 128³ on a 200x160x160 image (step 0.5,
//! 12 tiles), fp16 sums, one fold; `--shrink K` divides the image and the patch by K. Both outputs are compared (must be bit-identical). Prints the
//! best of `--repeats` (default 3) per path. Usage:
//!
//! ```text
//! cargo run --release -p totalseg-benches --bin sliding_window_device_vs_host [-- --repeats N]
//! ```
//!
//! Built with `--features cuda`, `--backend cuda` runs the device path on burn-cuda instead and
//! checks it against the host accumulator for all three accumulation arithmetics (fp16 sums,
//! the autocast variant, f32): this is how the GPU's sums are checked bit for bit against the
//! host's (a compiler contracting `sum + tile * g` into one FMA would show here). It then checks
//! the device argmax (`argmax_on_device` + `labels_to_host`, which the sums above do not reach)
//! against the host's `argmax_channels` on fp16 logits with many ties, for 25 and 118 classes.
//! Built with `--features wgpu`, `--backend wgpu` runs the same checks on burn-wgpu over Vulkan
//! (burn's GPU kernels on Mesa's software driver lavapipe where there is no GPU).

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use burn::tensor::{DType, TensorData};
use burn_flex::{Flex, FlexDevice};
use ndarray::{Array4, Array5, ArrayView5, Axis};
use totalseg_benches::flag_value;
use totalseg_core::normalize::NormalizationScheme;
use totalseg_core::sliding_window::AccumulationPrecision;
use totalseg_nn::NetworkOps;
use totalsegmentator::predictor::device::{
    argmax_on_device, fold_averaged_logits_on_device, labels_to_host, logits_to_host,
    DeviceForward, ImageIntensities,
};
use totalsegmentator::predictor::{
    argmax_channels, predict_logits, NetworkShape, NoTileProgress, PredictorSettings, TileNetwork,
};
use totalsegmentator::SegmentError;

const CLASSES: usize = 25;

/// Logit k = tile * (k + 1) / CLASSES: no network cost, distinct per class.
struct Scaled;

impl NetworkShape for Scaled {
    fn num_classes(&self) -> usize {
        CLASSES
    }
    fn num_folds(&self) -> usize {
        1
    }
}

impl TileNetwork for Scaled {
    fn predict_tiles(&self, _: usize, tiles: ArrayView5<f32>) -> Result<Array5<f32>, SegmentError> {
        let (n, _, a, b, c) = tiles.dim();
        let mut out = Array5::<f32>::zeros((n, CLASSES, a, b, c));
        for (k, mut channel) in out.axis_iter_mut(Axis(1)).enumerate() {
            let scale = (k + 1) as f32 / CLASSES as f32;
            channel.assign(&tiles.index_axis(Axis(1), 0).mapv(|v| v * scale));
        }
        Ok(out)
    }
}

impl<B: Backend> DeviceForward<B> for Scaled {
    fn forward(&self, _: usize, tiles: Tensor<B, 5>) -> Result<Tensor<B, 5>, SegmentError> {
        let scales: Vec<f32> = (0..CLASSES)
            .map(|k| (k + 1) as f32 / CLASSES as f32)
            .collect();
        let scales = Tensor::<B, 1>::from_floats(scales.as_slice(), &tiles.device())
            .reshape([1, CLASSES, 1, 1, 1]);
        Ok(tiles.mul(scales))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| flag_value(&args, name);
    let repeats: usize = value("--repeats").and_then(|v| v.parse().ok()).unwrap_or(3);
    let shrink: usize = value("--shrink")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let sizes = Sizes {
        image: [200 / shrink, 160 / shrink, 160 / shrink],
        patch: 128 / shrink,
        repeats,
    };
    match value("--backend").unwrap_or("flex") {
        "flex" => compare::<Flex>(&FlexDevice, "Flex", &[AccumulationPrecision::Fp16], sizes),
        #[cfg(feature = "cuda")]
        "cuda" => compare::<burn_cuda::Cuda>(
            &burn_cuda::CudaDevice { index: 0 },
            "CUDA",
            &[
                AccumulationPrecision::Fp16,
                AccumulationPrecision::Fp16Autocast,
                AccumulationPrecision::Fp32,
            ],
            sizes,
        ),
        #[cfg(feature = "wgpu")]
        "wgpu" => compare::<burn_wgpu::Vulkan>(
            &burn_wgpu::WgpuDevice::DefaultDevice,
            "Vulkan",
            &[
                AccumulationPrecision::Fp16,
                AccumulationPrecision::Fp16Autocast,
                AccumulationPrecision::Fp32,
            ],
            sizes,
        ),
        other => Err(format!("unknown or not built --backend {other}").into()),
    }
}

/// The image, the patch (a cube) and the number of timed repeats.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    image: [usize; 3],
    patch: usize,
    repeats: usize,
}

/// Times both paths for each arithmetic and reports whether their logits agree bit for bit.
fn compare<B: NetworkOps>(
    device: &B::Device,
    backend: &str,
    arithmetics: &[AccumulationPrecision],
    sizes: Sizes,
) -> Result<(), Box<dyn std::error::Error>> {
    let Sizes {
        image: [a, b, c],
        patch,
        repeats,
    } = sizes;
    let shape = (1, a, b, c);
    let image = Array4::from_shape_fn(shape, |(_, i, j, k)| {
        ((i as f32 * 0.1).sin() + (j as f32 * 0.07).cos() * (k as f32 * 0.05).sin()) * 3.0
    });
    for &accumulation in arithmetics {
        let settings = settings(patch, NormalizationScheme::ZScore, accumulation);
        let mut best_host = f64::MAX;
        let mut best_device = f64::MAX;
        let mut host_logits = None;
        let mut device_logits = None;
        for _ in 0..repeats {
            let start = Instant::now();
            let logits = predict_logits(image.view(), &settings, &Scaled, &NoTileProgress)?;
            best_host = best_host.min(start.elapsed().as_secs_f64());
            host_logits = Some(logits);

            let start = Instant::now();
            let logits = fold_averaged_logits_on_device::<B, _>(
                &Scaled,
                device,
                image.view(),
                ImageIntensities::Normalized,
                &settings,
                accumulation,
                &NoTileProgress,
            )?;
            let logits = logits_to_host(logits)?;
            best_device = best_device.min(start.elapsed().as_secs_f64());
            device_logits = Some(logits);
        }
        let (differing, max_diff) = match (&host_logits, &device_logits) {
            (Some(a), Some(b)) if a.shape() == b.shape() => {
                a.iter()
                    .zip(b.iter())
                    .fold((0usize, 0.0f32), |(n, m), (x, y)| {
                        (
                            n + usize::from(x.to_bits() != y.to_bits()),
                            m.max((x - y).abs()),
                        )
                    })
            }
            _ => (usize::MAX, f32::NAN),
        };
        println!(
            "sliding window, {CLASSES} classes, image {:?}, patch {patch}^3, {accumulation:?} sums, best of {repeats}:",
            &image.shape()[1..]
        );
        println!("  host accumulator (rayon): {best_host:.2} s");
        println!("  device path on {backend}: {best_device:.2} s");
        println!(
            "  device/host: {:.2}x; outputs bit-identical: {} ({differing} logits differ, max |diff| {max_diff})",
            best_device / best_host,
            differing == 0
        );
    }
    for classes in [25, 118] {
        check_argmax::<B>(device, backend, classes)?;
    }
    check_infinity::<B>(device, backend, &image, patch);
    Ok(())
}

/// One 1.5 mm channel, cubic patch, step 0.5.
fn settings(
    patch: usize,
    scheme: NormalizationScheme,
    accumulation: AccumulationPrecision,
) -> PredictorSettings {
    totalseg_benches::one_channel_settings(patch, 0.5, scheme, accumulation)
}

/// The fp16 sums of an image scaled past fp16's range must fail on the device as on the host
/// (nnU-Net's "Encountered inf in predicted array"): the device reads each chunk's max and min.
fn check_infinity<B: NetworkOps>(
    device: &B::Device,
    backend: &str,
    image: &Array4<f32>,
    patch: usize,
) {
    // |values| up to 3e5, no normalisation: fp16 tops out at 65504.
    let image = image.mapv(|v| v * 1e5);
    let settings = settings(
        patch,
        NormalizationScheme::None,
        AccumulationPrecision::Fp16,
    );
    let host = predict_logits(image.view(), &settings, &Scaled, &NoTileProgress).err();
    let on_device = fold_averaged_logits_on_device::<B, _>(
        &Scaled,
        device,
        image.view(),
        ImageIntensities::Normalized,
        &settings,
        AccumulationPrecision::Fp16,
        &NoTileProgress,
    )
    .err();
    let text = |e: &Option<SegmentError>| e.as_ref().map_or("none".to_string(), |e| e.to_string());
    println!(
        "infinite fp16 sums on {backend}: same error on both: {} (host: {}; device: {})",
        host.is_some() && text(&host) == text(&on_device),
        text(&host),
        text(&on_device)
    );
}

/// Device argmax against the host's on `[classes, 48, 40, 32]` logits: a few values each
/// (multiples of 1/8, exact in fp16), so ties are frequent and must go to the lowest class. Also
/// on a spatially cropped view of them, as the sliding window hands over its padded sums.
fn check_argmax<B: Backend>(
    device: &B::Device,
    backend: &str,
    classes: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let shape = (classes, 48, 40, 32);
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ classes as u64;
    let logits = Array4::from_shape_simple_fn(shape, || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 59) as f32 - 16.0) / 8.0
    });
    let values: Vec<f32> = logits.iter().copied().collect();
    let crop = [3..45, 2..39, 5..30];
    let mut report = Vec::new();
    for dtype in [DType::F16, DType::F32] {
        for cropped in [false, true] {
            let tensor = Tensor::<B, 4>::from_data(
                TensorData::new(values.clone(), [shape.0, shape.1, shape.2, shape.3]),
                device,
            )
            .cast(dtype);
            let (tensor, expected) = if cropped {
                let [a, b, c] = crop.clone();
                (
                    tensor.slice([0..classes, a.clone(), b.clone(), c.clone()]),
                    argmax_channels(logits.slice(ndarray::s![.., a, b, c]))?,
                )
            } else {
                (tensor, argmax_channels(logits.view())?)
            };
            let labels = labels_to_host(argmax_on_device(tensor))?;
            let differing = if labels.shape() == expected.shape() {
                labels
                    .iter()
                    .zip(expected.iter())
                    .filter(|(a, b)| a != b)
                    .count()
            } else {
                usize::MAX
            };
            let what = if cropped { "cropped" } else { "whole" };
            report.push(format!("{dtype:?} {what} {differing}/{}", expected.len()));
        }
    }
    println!(
        "argmax on {backend}, {classes} classes: labels differing from the host's: {}",
        report.join(", ")
    );
    Ok(())
}
