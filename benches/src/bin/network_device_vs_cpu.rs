//! Is the network right on the GPU? Runs the U-Net's operators and one whole full-width `total`
//! part network (6 stages 32-320, patch 128³, 25 classes, seeded random weights) on a device
//! backend and on the CPU backend `burn_flex::Flex` in f32, the reference here (it matches
//! PyTorch to 1e-4), and prints how far apart they are.
//!
//! ```text
//! cargo run --release -p totalseg-benches --features cuda --bin network_device_vs_cpu -- \
//!     --backend cuda [--kernel-cache DIR] [--skip-network] [--shrink K]
//! cargo run --release -p totalseg-benches --bin network_device_vs_cpu -- --backend flex
//! ```
//!
//! Every operator (`NetworkOps`: conv3d at the network's shapes and the 1x1x1 segmentation
//! heads, the transposed conv, the fused
//! InstanceNorm + LeakyReLU) runs in f16 and f32 on the device, on a batch of two different
//! inputs as the sliding window sends them. The whole network runs in f16 on the same batch; its
//! line gives the logits' largest difference and how many voxels' argmax agree with the
//! reference. f16 against f32 on random weights agrees on most voxels, not all (the margins
//! between random logits are small); a kernel that computes the wrong thing agrees on about
//! 1/classes of them. `--backend flex` runs the device side on Flex too (f16 through the same
//! generic code), which is how this binary is checked without a GPU. Built with
//! `--features wgpu`, `--backend wgpu` runs burn's GPU kernels (the cubecl code CUDA also
//! compiles) on Vulkan, e.g. Mesa's software driver lavapipe; `--shrink K` divides every spatial
//! size by K (the network's patch stays a multiple of 32) for such a slow device.
//!
//! Built with `--features cuda-autotune-checks` (or `wgpu-autotune-checks`), every autotuned
//! operation also runs all of cubecl's candidate kernels and compares them (1 % tolerance); an
//! operator whose candidates disagree prints `PANIC` and the values that differ.
//!
//! `--kernel-cache DIR` points cubecl's PTX and autotune caches at DIR (as `totalseg` does with
//! `<home>/kernel-cache`), so a run after `totalseg` reuses its compiled and tuned kernels.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::module::conv3d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor, TensorData};
use burn_flex::{Flex, FlexDevice};
use totalseg_benches::{flag_value, FULL_WIDTH_PART_JSON as PART_JSON};
use totalseg_nn::{ConvParams, ModelConfig, NetworkOps, NnUnetModel, NormParams, Precision};

/// Deterministic values in [-1, 1) (an LCG; the same on every machine).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A smooth, CT-like normalised batch of two different tiles `[2, 1, p, p, p]`.
fn ct_batch(p: usize) -> Vec<f32> {
    let mut data = Vec::with_capacity(2 * p * p * p);
    for tile in 0..2 {
        let phase = tile as f32 * 1.7;
        for i in 0..p {
            for j in 0..p {
                for k in 0..p {
                    let (x, y, z) = (i as f32, j as f32, k as f32);
                    let v = 300.0 * (0.11 * x + phase).sin() * (0.07 * y + 0.05 * z).cos()
                        + 200.0 * (0.03 * (x + y - z) + phase).sin()
                        - 100.0;
                    data.push((v.clamp(-1004.0, 1588.0) + 50.0) / 503.0);
                }
            }
        }
    }
    data
}

fn tensor<B: Backend, const D: usize>(
    data: &[f32],
    shape: [usize; D],
    dtype: DType,
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::<B, D>::from_data(TensorData::new(data.to_vec(), shape), device).cast(dtype)
}

fn to_host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.cast(DType::F32)
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .unwrap_or_default()
}

/// `max |a - b|`, `max |a|`, and how many values of `b` are not finite.
fn compare(reference: &[f32], other: &[f32]) -> (f32, f32, usize) {
    if reference.len() != other.len() {
        return (f32::NAN, f32::NAN, other.len());
    }
    let mut max_diff = 0.0f32;
    let mut max_ref = 0.0f32;
    let mut not_finite = 0;
    for (&a, &b) in reference.iter().zip(other) {
        if !b.is_finite() {
            not_finite += 1;
            continue;
        }
        max_diff = max_diff.max((a - b).abs());
        max_ref = max_ref.max(a.abs());
    }
    (max_diff, max_ref, not_finite)
}

/// One operator on both backends: `run` builds its inputs from host data on the given backend.
trait Op {
    fn name(&self) -> String;
    fn run<B: NetworkOps>(&self, dtype: DType, device: &B::Device) -> Vec<f32>;
    /// The dtypes it runs in on the device.
    fn dtypes(&self) -> &'static [DType] {
        &[DType::F16, DType::F32]
    }
}

struct Conv {
    batch: usize,
    kernel: usize,
    cin: usize,
    cout: usize,
    size: usize,
    stride: usize,
    /// Burn's `conv3d` itself on the f16 operands, instead of `NetworkOps::unet_conv3d`
    /// (f32 operands): what f16 tensor-core kernels would give, and how fast.
    raw: bool,
}

impl Op for Conv {
    fn name(&self) -> String {
        format!(
            "conv3d {k}x{k}x{k} {}->{} stride {} on [{}, {}, {}^3]",
            self.cin,
            self.cout,
            self.stride,
            self.batch,
            self.cin,
            self.size,
            k = self.kernel
        ) + if self.raw {
            " (Burn's conv3d on f16 operands)"
        } else {
            ""
        }
    }
    fn dtypes(&self) -> &'static [DType] {
        if self.raw {
            &[DType::F16]
        } else {
            &[DType::F16, DType::F32]
        }
    }
    fn run<B: NetworkOps>(&self, dtype: DType, device: &B::Device) -> Vec<f32> {
        let s = self.size;
        let x = values(self.batch * self.cin * s * s * s, 1);
        let k = self.kernel;
        let taps = k * k * k;
        let scale = 1.0 / ((self.cin * taps) as f32).sqrt();
        let w: Vec<f32> = values(self.cout * self.cin * taps, 2)
            .iter()
            .map(|v| v * scale)
            .collect();
        let bias = values(self.cout, 3);
        let mut params = ConvParams {
            weight: tensor::<B, 5>(&w, [self.cout, self.cin, k, k, k], dtype, device),
            bias: Some(tensor::<B, 1>(&bias, [self.cout], dtype, device)),
            packed: None,
        };
        params.packed = B::unet_pack_conv3d(&params);
        let x = tensor::<B, 5>(&x, [self.batch, self.cin, s, s, s], dtype, device);
        if self.raw {
            let options = ConvOptions::new([self.stride; 3], [k / 2; 3], [1; 3], 1);
            return to_host(conv3d(x, params.weight, params.bias, options));
        }
        to_host(B::unet_conv3d(x, &params, [self.stride; 3], [k / 2; 3]))
    }
}

struct Transposed {
    cin: usize,
    cout: usize,
    size: usize,
}

impl Op for Transposed {
    fn name(&self) -> String {
        format!(
            "conv_transpose3d 2x2x2 {}->{} on [2, {}, {}^3]",
            self.cin, self.cout, self.cin, self.size
        )
    }
    fn run<B: NetworkOps>(&self, dtype: DType, device: &B::Device) -> Vec<f32> {
        let s = self.size;
        let x = values(2 * self.cin * s * s * s, 4);
        let scale = 1.0 / (self.cin as f32).sqrt();
        let w: Vec<f32> = values(self.cin * self.cout * 8, 5)
            .iter()
            .map(|v| v * scale)
            .collect();
        let params = ConvParams {
            weight: tensor::<B, 5>(&w, [self.cin, self.cout, 2, 2, 2], dtype, device),
            bias: Some(tensor::<B, 1>(
                &values(self.cout, 6),
                [self.cout],
                dtype,
                device,
            )),
            packed: None,
        };
        let x = tensor::<B, 5>(&x, [2, self.cin, s, s, s], dtype, device);
        to_host(B::unet_conv_transpose3d(x, &params, [2; 3]))
    }
}

struct Norm {
    channels: usize,
    size: usize,
}

impl Op for Norm {
    fn name(&self) -> String {
        format!(
            "instance_norm + leaky_relu on [2, {}, {}^3] (mean 3, spread 0.5)",
            self.channels, self.size
        )
    }
    fn run<B: NetworkOps>(&self, dtype: DType, device: &B::Device) -> Vec<f32> {
        let s = self.size;
        // An offset mean, as conv outputs have: the statistics must not lose it.
        let x: Vec<f32> = values(2 * self.channels * s * s * s, 7)
            .iter()
            .map(|v| 3.0 + 0.5 * v)
            .collect();
        let c = self.channels;
        let norm = NormParams {
            affine: Some((
                tensor::<B, 1>(&vec![1.5; c], [c], DType::F32, device),
                tensor::<B, 1>(&vec![0.1; c], [c], DType::F32, device),
            )),
            eps: 1e-5,
        };
        let x = tensor::<B, 5>(&x, [2, c, s, s, s], dtype, device);
        to_host(B::unet_instance_norm(x, &norm, Some(0.01)))
    }
}

fn check_op<D: NetworkOps>(op: &impl Op, device: &D::Device) {
    let reference = op.run::<Flex>(DType::F32, &FlexDevice);
    for &dtype in op.dtypes() {
        // Twice: the first run compiles and tunes its kernels, the second is the speed.
        let mut seconds = Vec::new();
        let mut out = Vec::new();
        for _ in 0..2 {
            let start = Instant::now();
            // Built with cubecl's autotune checks, a disagreeing candidate kernel panics:
            // report it and go on with the next operator.
            match catch_unwind(AssertUnwindSafe(|| op.run::<D>(dtype, device))) {
                Ok(values) => out = values,
                Err(panic) => {
                    println!(
                        "OP {} {dtype:?}: PANIC {}",
                        op.name(),
                        panic_text(panic.as_ref())
                    );
                    break;
                }
            }
            seconds.push(start.elapsed().as_secs_f64());
        }
        let [first, again] = seconds[..] else {
            continue;
        };
        let (diff, max_ref, bad) = compare(&reference, &out);
        println!(
            "OP {} {dtype:?}: max |diff| {diff:.3e} (max |ref| {max_ref:.3e}, relative {:.2e}), non-finite {bad}, {first:.2} s first, {again:.3} s again",
            op.name(),
            diff / max_ref.max(f32::MIN_POSITIVE)
        );
    }
}

/// The first lines of a caught panic's text: which values differ (the rest is a backtrace).
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = totalsegmentator::models::panic_message(panic);
    text.lines().take(6).collect::<Vec<_>>().join(" | ")
}

/// Argmax over the class axis of `[n, classes, v]` logits (flattened), ties to the lowest.
fn argmax(logits: &[f32], n: usize, classes: usize) -> Vec<usize> {
    let v = logits.len() / (n * classes).max(1);
    let mut labels = Vec::with_capacity(n * v);
    for b in 0..n {
        for i in 0..v {
            let mut best = 0;
            for k in 1..classes {
                if logits[(b * classes + k) * v + i] > logits[(b * classes + best) * v + i] {
                    best = k;
                }
            }
            labels.push(best);
        }
    }
    labels
}

fn check_network<D: NetworkOps>(
    device: &D::Device,
    precision: Precision,
    shrink: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = ModelConfig::from_json_str(PART_JSON, "network-check/model.json".as_ref())?;
    // The network's five 2x downsamplings need multiples of 32.
    let p = (128 / shrink).max(32);
    let input = ct_batch(p);
    let reference = {
        let model = NnUnetModel::<Flex>::with_random_weights(
            config.clone(),
            &FlexDevice,
            Precision::F32,
            7,
        )?;
        let x = tensor::<Flex, 5>(&input, [2, 1, p, p, p], DType::F32, &FlexDevice);
        to_host(model.forward_logits(0, x)?)
    };
    let model = NnUnetModel::<D>::with_random_weights(config, device, precision, 7)?;
    for run in 0..2 {
        let start = Instant::now();
        let x = tensor::<D, 5>(&input, [2, 1, p, p, p], DType::F32, device);
        let out = to_host(model.forward_logits(0, x)?);
        let seconds = start.elapsed().as_secs_f64();
        let (diff, max_ref, bad) = compare(&reference, &out);
        let classes = 25;
        let a = argmax(&reference, 2, classes);
        let b = argmax(&out, 2, classes);
        let agree = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        let per_tile = a.len() / 2;
        let agree_tile: Vec<String> = (0..2)
            .map(|t| {
                let same = a[t * per_tile..(t + 1) * per_tile]
                    .iter()
                    .zip(&b[t * per_tile..(t + 1) * per_tile])
                    .filter(|(x, y)| x == y)
                    .count();
                format!("{:.4}", same as f64 / per_tile as f64)
            })
            .collect();
        println!(
            "NETWORK run {run} {precision:?}: logits max |diff| {diff:.3e} (max |ref| {max_ref:.3e}), non-finite {bad}, argmax agreement {:.4} (tiles {}), {seconds:.2} s",
            agree as f64 / a.len() as f64,
            agree_tile.join(", ")
        );
    }
    Ok(())
}

/// `shrink` divides every spatial size (a software GPU is too slow for the real ones).
fn run_checks<D: NetworkOps>(
    device: &D::Device,
    network: bool,
    shrink: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let shrink = shrink.max(1);
    let small = |size: usize| (size / shrink).max(4);
    // The network's conv shapes at batch 2 (what the sliding window sends), the 1x1x1
    // segmentation heads of a `total` part (25 classes) and of `--fast` (118) included.
    for (kernel, cin, cout, size, stride) in [
        (3, 1, 32, 128, 1),
        (3, 32, 32, 128, 1),
        (3, 32, 64, 128, 2),
        (3, 256, 320, 16, 2),
        (3, 320, 320, 8, 1),
        (3, 320, 320, 8, 2),
        (1, 32, 25, 128, 1),
        (1, 32, 118, 64, 1),
    ] {
        for raw in [false, true] {
            check_op::<D>(
                &Conv {
                    batch: 2,
                    kernel,
                    cin,
                    cout,
                    size: small(size),
                    stride,
                    raw,
                },
                device,
            );
        }
    }
    check_op::<D>(
        &Transposed {
            cin: 320,
            cout: 320,
            size: small(4),
        },
        device,
    );
    check_op::<D>(
        &Transposed {
            cin: 64,
            cout: 32,
            size: small(64),
        },
        device,
    );
    check_op::<D>(
        &Norm {
            channels: 32,
            size: small(128),
        },
        device,
    );
    check_op::<D>(
        &Norm {
            channels: 320,
            size: small(8),
        },
        device,
    );
    if network {
        check_network::<D>(device, Precision::F16, shrink)?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| flag_value(&args, name);
    let network = !args.iter().any(|a| a == "--skip-network");
    let shrink: usize = match value("--shrink") {
        Some(v) => v
            .parse()
            .map_err(|_| format!("--shrink {v}: expected a whole number"))?,
        None => 1,
    };
    match value("--backend").unwrap_or("flex") {
        "flex" => run_checks::<Flex>(&FlexDevice, network, shrink),
        #[cfg(feature = "cuda")]
        "cuda" => {
            if let Some(dir) = value("--kernel-cache") {
                totalsegmentator::builder::gpu::configure_kernel_caches(dir.as_ref());
            }
            run_checks::<burn_cuda::Cuda>(&burn_cuda::CudaDevice { index: 0 }, network, shrink)
        }
        #[cfg(feature = "wgpu")]
        "wgpu" => {
            run_checks::<burn_wgpu::Vulkan>(&burn_wgpu::WgpuDevice::DefaultDevice, network, shrink)
        }
        other => Err(format!("unknown or not built --backend {other}").into()),
    }
}
