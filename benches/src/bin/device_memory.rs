//! How much device memory the device sliding window reserves: one full-width `total` part
//! network (6 stages 32-320, patch 128³, 25 classes, seeded random weights, f16) through
//! `predict_on_device` on a CT-like image, with cubecl's memory pools as they are and with
//! exact-size allocations (`Backend::memory_persistent_allocations`, what
//! `TOTALSEG_GPU_MEMORY=exact` makes `totalseg` use; see docs/gpu.md "GPU memory").
//!
//! ```text
//! cargo run --release -p totalseg-benches --features wgpu --bin device_memory -- \
//!     --backend wgpu [--shrink K] [--image D0xD1xD2] [--batches 1,2] [--runs 2]
//! cargo run --release -p totalseg-benches --features cuda --bin device_memory -- --backend cuda
//! ```
//!
//! For each batch size and allocation mode it frees what the pools can free, runs the part
//! `--runs` times (the second run shows whether the pools still grow), and prints one
//! `MEMORY` line per run: the bytes the pools reserve before and after (pages stay reserved
//! until a cleanup, so "after" is the run's peak reservation) and the bytes still in use. The
//! label maps of every run must be identical. The default image, 240x128x128 (3 tiles at step
//! 0.8), has whole-volume sums; `--shrink K` divides the patch and the image by K for a slow
//! device (Mesa's lavapipe).
//!
//! cubecl's default pools (`MemoryConfiguration::SubSlices`) are laid out from the device's
//! memory: on CUDA pages of T/16, T/64, T/256 ... bytes for a GPU of T bytes, each taking
//! allocations up to a fraction of the page, so one allocation just above a threshold reserves
//! a whole larger page (4.9 GiB on an 80 GB H100). Lavapipe cannot bind a full-size tile (128 MiB
//! per binding at most), so `--emulate-pools-of GIB` (wgpu only) lays the pools out as CUDA would
//! on a GPU of GIB GiB; with `--shrink 2` (activations 8 times smaller) emulate 1/8 of the real
//! GPU, e.g. `--shrink 2 --emulate-pools-of 10` for an H100, 17.5 for an H200.

use std::time::Instant;

use burn::tensor::Tensor;
use burn_flex::{Flex, FlexDevice};
use ndarray::{Array3, Array4};
use totalseg_benches::{flag_value, FULL_WIDTH_PART_JSON};
use totalseg_core::normalize::NormalizationScheme;
use totalseg_core::sliding_window::AccumulationPrecision;
use totalseg_nn::{ModelConfig, NetworkOps, NnUnetModel, Precision};
use totalsegmentator::predictor::device::{
    predict_on_device, DeviceForward, DeviceOutput, DevicePrediction, ImageIntensities,
};
use totalsegmentator::predictor::{NetworkShape, NoTileProgress, PredictorSettings};
use totalsegmentator::SegmentError;

type BoxError = Box<dyn std::error::Error>;

/// The part network with a batch size.
struct Part<'a, B: NetworkOps> {
    model: &'a NnUnetModel<B>,
    batch: usize,
}

impl<B: NetworkOps> NetworkShape for Part<'_, B> {
    fn num_classes(&self) -> usize {
        self.model.architecture().num_classes
    }
    fn num_folds(&self) -> usize {
        1
    }
    fn batch_size(&self) -> usize {
        self.batch
    }
}

impl<B: NetworkOps> DeviceForward<B> for Part<'_, B> {
    fn forward(&self, fold: usize, tiles: Tensor<B, 5>) -> Result<Tensor<B, 5>, SegmentError> {
        self.model
            .forward_logits(fold, tiles)
            .map_err(|e| SegmentError::Model(e.to_string()))
    }
}

/// A smooth CT-like normalised image `[1, d0, d1, d2]`.
fn ct_image(shape: [usize; 3]) -> Array4<f32> {
    Array4::from_shape_fn((1, shape[0], shape[1], shape[2]), |(_, i, j, k)| {
        let (x, y, z) = (i as f32, j as f32, k as f32);
        let v = 300.0 * (0.11 * x).sin() * (0.07 * y + 0.05 * z).cos()
            + 200.0 * (0.03 * (x + y - z)).sin()
            - 100.0;
        (v.clamp(-1004.0, 1588.0) + 50.0) / 503.0
    })
}

/// Step 0.8 as in the `total` tasks, fp16 sums as nnU-Net.
fn settings(patch: usize) -> PredictorSettings {
    totalseg_benches::one_channel_settings(
        patch,
        0.8,
        NormalizationScheme::None,
        AccumulationPrecision::Fp16,
    )
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Reserved and in-use bytes, or zeros where the backend has no pools.
fn usage<B: NetworkOps>(device: &B::Device) -> (u64, u64) {
    B::unet_memory_usage(device).map_or((0, 0), |u| (u.reserved_bytes, u.in_use_bytes))
}

fn measure<B: NetworkOps>(device: &B::Device, args: &Options) -> Result<(), BoxError> {
    let config = ModelConfig::from_json_str(FULL_WIDTH_PART_JSON, "memory/model.json".as_ref())?;
    let model = NnUnetModel::<B>::with_random_weights(config, device, Precision::F16, 7)?;
    let patch = (128 / args.shrink).max(32);
    let shape = args.image.map(|d| (d / args.shrink).max(patch));
    let image = ct_image(shape);
    let settings = settings(patch);
    B::memory_cleanup(device);
    let (weights, _) = usage::<B>(device);
    println!(
        "MEMORY setup: patch {patch}³, image {shape:?}, weights and pools after loading {:.3} GiB",
        gib(weights)
    );
    let mut first: Option<Array3<u16>> = None;
    for &batch in &args.batches {
        for exact in [false, true] {
            B::memory_cleanup(device);
            let part = Part {
                model: &model,
                batch,
            };
            for run in 0..args.runs {
                let (before, _) = usage::<B>(device);
                let start = Instant::now();
                let predict = |_: ()| {
                    predict_on_device::<B, _>(
                        &part,
                        device,
                        image.view(),
                        ImageIntensities::Normalized,
                        &settings,
                        AccumulationPrecision::Fp16,
                        DeviceOutput::Labels,
                        &NoTileProgress,
                    )
                };
                let prediction = if exact {
                    B::memory_persistent_allocations(device, (), predict)
                } else {
                    predict(())
                }?;
                let seconds = start.elapsed().as_secs_f64();
                let (after, in_use) = usage::<B>(device);
                let DevicePrediction::Labels(labels) = prediction else {
                    return Err("labels were asked for".into());
                };
                let same = match &first {
                    None => {
                        first = Some(labels);
                        "first".to_string()
                    }
                    Some(reference) => {
                        let differ = reference
                            .iter()
                            .zip(labels.iter())
                            .filter(|(a, b)| a != b)
                            .count();
                        format!("{differ} labels differ from the first run")
                    }
                };
                println!(
                    "MEMORY batch {batch} {} run {run}: reserved {:.3} -> {:.3} GiB (+{:.3}), in use after {:.3} GiB, {seconds:.1} s, {same}",
                    if exact { "exact-size" } else { "pools" },
                    gib(before),
                    gib(after),
                    gib(after.saturating_sub(before)),
                    gib(in_use),
                );
            }
        }
    }
    // The activations the forward pass needs at once, for comparison with the pools.
    let voxels = (patch * patch * patch) as u64;
    println!(
        "MEMORY reference sizes: one f16 32-channel activation at the patch {:.3} GiB, f16 sums of the image {:.3} GiB",
        gib(voxels * 32 * 2),
        gib((shape[0] * shape[1] * shape[2]) as u64 * 25 * 2)
    );
    Ok(())
}

struct Options {
    shrink: usize,
    emulate_pools_of: Option<f64>,
    image: [usize; 3],
    batches: Vec<usize>,
    runs: usize,
}

fn parse(args: &[String]) -> Result<Options, BoxError> {
    let value = |name: &str| flag_value(args, name);
    let number = |name: &str, text: &str| -> Result<usize, BoxError> {
        text.parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{name} {text}: expected a whole number of at least 1").into())
    };
    let shrink = value("--shrink").map_or(Ok(1), |v| number("--shrink", v))?;
    let emulate_pools_of = match value("--emulate-pools-of") {
        Some(v) => Some(
            v.parse::<f64>()
                .ok()
                .filter(|g| *g >= 1.0)
                .ok_or_else(|| format!("--emulate-pools-of {v}: expected GiB, at least 1"))?,
        ),
        None => None,
    };
    let runs = value("--runs").map_or(Ok(2), |v| number("--runs", v))?;
    let batches = match value("--batches") {
        Some(list) => list
            .split(',')
            .map(|v| number("--batches", v))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![1, 2],
    };
    let image = match value("--image") {
        Some(text) => {
            let sizes = text
                .split('x')
                .map(|v| number("--image", v))
                .collect::<Result<Vec<_>, _>>()?;
            <[usize; 3]>::try_from(sizes)
                .map_err(|_| format!("--image {text}: expected D0xD1xD2"))?
        }
        None => [240, 128, 128],
    };
    Ok(Options {
        shrink,
        emulate_pools_of,
        image,
        batches,
        runs,
    })
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let options = parse(&args)?;
    let backend = flag_value(&args, "--backend").unwrap_or("flex");
    if options.emulate_pools_of.is_some() && backend != "wgpu" {
        return Err("--emulate-pools-of needs --backend wgpu".into());
    }
    match backend {
        "flex" => measure::<Flex>(&FlexDevice, &options),
        #[cfg(feature = "cuda")]
        "cuda" => {
            if let Some(dir) = flag_value(&args, "--kernel-cache") {
                totalsegmentator::builder::gpu::configure_kernel_caches(dir.as_ref());
            }
            measure::<burn_cuda::Cuda>(&burn_cuda::CudaDevice { index: 0 }, &options)
        }
        #[cfg(feature = "wgpu")]
        "wgpu" => {
            let device = burn_wgpu::WgpuDevice::DefaultDevice;
            if let Some(gib) = options.emulate_pools_of {
                let max_page = (gib * (1u64 << 30) as f64) as u64 / 4;
                let memory_config = burn_wgpu::MemoryConfiguration::Custom {
                    pool_options: cuda_sub_slice_pools(max_page, CUDA_ALIGNMENT),
                };
                burn_wgpu::init_setup::<burn_wgpu::graphics::Vulkan>(
                    &device,
                    burn_wgpu::RuntimeOptions {
                        memory_config,
                        ..Default::default()
                    },
                );
                println!("MEMORY pools laid out as CUDA's on a GPU of {gib} GiB");
            }
            measure::<burn_wgpu::Vulkan>(&device, &options)
        }
        other => Err(format!("unknown or not built --backend {other}").into()),
    }
}

/// cubecl-cuda's memory alignment (cubecl-cuda 0.10 `runtime.rs`).
#[cfg(feature = "wgpu")]
const CUDA_ALIGNMENT: u64 = 512;

/// The pools cubecl-runtime 0.10's `MemoryConfiguration::SubSlices` preset builds
/// (`memory_manage.rs`, `from_configuration`) for a largest page of `max_page` bytes, which
/// cubecl-cuda sets to a quarter of the GPU's memory: an exclusive pool for the smallest
/// allocations, then sliced pools of pages `max_page / 4^k` taking slices up to
/// `page / 2^k`, smallest first, and one of `max_page` pages.
#[cfg(feature = "wgpu")]
fn cuda_sub_slice_pools(
    max_page: u64,
    alignment: u64,
) -> Vec<cubecl_runtime::memory_management::MemoryPoolOptions> {
    use cubecl_runtime::memory_management::{MemoryPoolOptions, PoolType};
    const MB: u64 = 1024 * 1024;
    let pool = |pool_type| MemoryPoolOptions {
        pool_type,
        dealloc_period: None,
    };
    let mut sliced = Vec::new();
    let mut current = max_page;
    let mut base = 1u32;
    while current >= 32 * MB {
        current = (current / 4).next_multiple_of(alignment);
        sliced.push(PoolType::SlicedPages {
            page_size: current,
            max_slice_size: current / 2u64.pow(base),
        });
        base += 1;
    }
    let largest = max_page / alignment * alignment;
    std::iter::once(PoolType::ExclusivePages { max_alloc_size: 0 })
        .chain(sliced.into_iter().rev())
        .chain(std::iter::once(PoolType::SlicedPages {
            page_size: largest,
            max_slice_size: largest,
        }))
        .map(pool)
        .collect()
}
