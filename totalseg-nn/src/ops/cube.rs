//! The convolution on Burn's GPU backends (cubecl: CUDA, Vulkan) with a kernel chosen by the
//! user, and the reductions of the InstanceNorm and the infinity check with a fixed kernel.
//!
//! Burn autotunes among its convolution kernels (a direct kernel; implicit GEMMs on the tensor
//! cores, with TMA on Hopper GPUs) and keeps the fastest without checking its result.
//! `TOTALSEG_GPU_CONV` picks one instead: `direct` (simplest, slowest), `gemm` (implicit GEMM
//! without TMA) or `autotune` (the default). It tells a wrong kernel from a wrong network on a
//! GPU (docs/gpu.md), and works around one.
//!
//! Burn also autotunes every reduction per shape. The InstanceNorm statistics sum each
//! activation shape along three axes (f32 then f64), which made about 19 of the 43 tunings of a
//! cold `total` run on an H200, each compiling and timing every candidate kernel (about 6 s).
//! They are small next to the convolutions, so they run cubecl's default reduction kernel
//! instead ([`sum_dim_untuned`]), with the same arithmetic as the generic path. So does the
//! sliding window's whole-volume max and min (`NetworkOps::unet_max_and_min`), whose shapes
//! change with every image size.

use std::sync::OnceLock;

use burn::tensor::backend::Backend;
use burn::tensor::module::conv3d as burn_conv3d;
use burn::tensor::{Tensor, TensorPrimitive};
use burn_cubecl::kernel::conv::{conv_forward, ConvStrategy};
use burn_cubecl::kernel::reduce::{reduce_dim, KernelReduceStrategy};
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

use cubek_reduce::components::instructions::ReduceOperationConfig;
use cubek_reduce::ReduceError;

use super::{generic, ConvParams, DeviceMemoryUsage, NetworkOps, NormParams};

/// The convolution kernel of the GPU backends (`TOTALSEG_GPU_CONV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuConvKernel {
    /// Burn's choice, benchmarked per shape (`autotune`).
    Autotune,
    /// The direct kernel (`direct`).
    Direct,
    /// The implicit GEMM on the tensor cores, without TMA (`gemm`).
    ImplicitGemm,
}

impl GpuConvKernel {
    /// The environment variable that chooses the kernel.
    pub const VARIABLE: &'static str = "TOTALSEG_GPU_CONV";

    /// `autotune`, `direct` or `gemm` (any case).
    ///
    /// ```
    /// use totalseg_nn::GpuConvKernel;
    /// assert_eq!(GpuConvKernel::parse("Direct"), Some(GpuConvKernel::Direct));
    /// assert_eq!(GpuConvKernel::parse("tma"), None);
    /// ```
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "autotune" | "" => Some(Self::Autotune),
            "direct" => Some(Self::Direct),
            "gemm" => Some(Self::ImplicitGemm),
            _ => None,
        }
    }

    /// The kernel `TOTALSEG_GPU_CONV` names, read once; an unknown name warns and autotunes.
    pub fn from_env() -> Self {
        static KERNEL: OnceLock<GpuConvKernel> = OnceLock::new();
        *KERNEL.get_or_init(|| {
            let value = std::env::var(Self::VARIABLE).unwrap_or_default();
            Self::parse(&value).unwrap_or_else(|| {
                log::warn!(
                    "{}={value}: unknown convolution kernel (autotune, direct or gemm); autotuning",
                    Self::VARIABLE
                );
                Self::Autotune
            })
        })
    }
}

/// Every cubecl backend without fusion (burn-cuda's default here, burn-wgpu's Vulkan): the
/// generic operators, with the convolution kernel of [`GpuConvKernel::from_env`] and untuned
/// reductions in the InstanceNorm. (CUDA with kernel fusion holds fusion handles instead: there
/// Burn chooses, see `super`.)
impl<R, F, I, BT> NetworkOps for CubeBackend<R, F, I, BT>
where
    R: CubeRuntime,
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn unet_conv3d(
        x: Tensor<Self, 5>,
        params: &ConvParams<Self>,
        stride: [usize; 3],
        padding: [usize; 3],
    ) -> Tensor<Self, 5> {
        conv3d(x, params, stride, padding)
    }

    fn unet_instance_norm(
        x: Tensor<Self, 5>,
        norm: &NormParams<Self>,
        negative_slope: Option<f64>,
    ) -> Tensor<Self, 5> {
        generic::instance_norm_leaky_relu_with(x, norm, negative_slope, sum_dim_untuned)
    }

    fn unet_max_and_min(values: Tensor<Self, 4>) -> Tensor<Self, 1> {
        let untuned = |op| reduce_all_untuned(values.clone(), op);
        match (
            untuned(ReduceOperationConfig::Max),
            untuned(ReduceOperationConfig::Min),
        ) {
            (Ok(max), Ok(min)) => Tensor::cat(vec![max, min], 0),
            (Err(e), _) | (_, Err(e)) => {
                log::warn!(
                    "the default reduction kernel cannot reduce {:?} ({e:?}); autotuning it",
                    values.dims()
                );
                Tensor::cat(vec![values.clone().max(), values.min()], 0)
            }
        }
    }

    fn unet_memory_usage(device: &Self::Device) -> Option<DeviceMemoryUsage> {
        let usage = R::client(device).memory_usage().ok()?;
        Some(DeviceMemoryUsage {
            reserved_bytes: usage.bytes_reserved,
            in_use_bytes: usage.bytes_in_use,
        })
    }
}

/// Every axis of `x` reduced by `op` with cubecl's default kernel, the last (contiguous) axis
/// first, as `[1]`. (Burn's `max()` autotunes each axis' reduction per anchored shape: a few
/// new tunings for every new image size.)
fn reduce_all_untuned<B, R, const D: usize>(
    x: Tensor<B, D>,
    op: ReduceOperationConfig,
) -> Result<Tensor<B, 1>, ReduceError>
where
    B: Backend<FloatTensorPrimitive = CubeTensor<R>>,
    R: CubeRuntime,
{
    (0..D)
        .rev()
        .try_fold(x, |x, dim| reduce_dim_untuned(x, dim, op))
        .map(|x| x.reshape([1]))
}

/// `x.sum_dim(dim)` by cubecl's default reduction kernel (no autotuning); a reduction it
/// refuses falls back to Burn's autotuned one.
pub(crate) fn sum_dim_untuned<B, R>(x: Tensor<B, 5>, dim: usize) -> Tensor<B, 5>
where
    B: Backend<FloatTensorPrimitive = CubeTensor<R>>,
    R: CubeRuntime,
{
    reduce_dim_untuned(x.clone(), dim, ReduceOperationConfig::Sum).unwrap_or_else(|e| {
        log::warn!(
            "the default reduction kernel cannot sum axis {dim} of {:?} ({e:?}); autotuning it",
            x.dims()
        );
        x.sum_dim(dim)
    })
}

/// Axis `dim` of `x` reduced by `op` with cubecl's default kernel (what Burn uses without its
/// `autotune` feature); the axis keeps length 1.
fn reduce_dim_untuned<B, R, const D: usize>(
    x: Tensor<B, D>,
    dim: usize,
    op: ReduceOperationConfig,
) -> Result<Tensor<B, D>, ReduceError>
where
    B: Backend<FloatTensorPrimitive = CubeTensor<R>>,
    R: CubeRuntime,
{
    let reduced = reduce_dim::<R>(
        x.into_primitive().tensor(),
        None,
        dim,
        KernelReduceStrategy::Unspecified,
        op,
    )?;
    Ok(Tensor::from_primitive(TensorPrimitive::Float(reduced)))
}

/// [`generic::conv3d`] (same numerics) with the kernel [`GpuConvKernel::from_env`] names; a
/// kernel that cannot run this shape falls back to Burn's choice.
pub(crate) fn conv3d<B, R>(
    x: Tensor<B, 5>,
    params: &ConvParams<B>,
    stride: [usize; 3],
    padding: [usize; 3],
) -> Tensor<B, 5>
where
    B: Backend<FloatTensorPrimitive = CubeTensor<R>>,
    R: CubeRuntime,
{
    let kernel = GpuConvKernel::from_env();
    let strategy = match kernel {
        GpuConvKernel::Autotune => return generic::conv3d(x, params, stride, padding),
        GpuConvKernel::Direct => ConvStrategy::Direct,
        GpuConvKernel::ImplicitGemm => ConvStrategy::ImplicitGemm,
    };
    generic::conv3d_with(x, params, stride, padding, |x, weight, bias, options| {
        let chosen = conv_forward::<R, 3>(
            x.clone().into_primitive().tensor(),
            weight.clone().into_primitive().tensor(),
            bias.clone().map(|b| b.into_primitive().tensor()),
            options.clone(),
            strategy,
        );
        match chosen {
            Ok(out) => Tensor::from_primitive(TensorPrimitive::Float(out)),
            Err(e) => {
                log::warn!(
                    "{}: the {kernel:?} convolution cannot run {:?} ({e:?}); autotuning it",
                    GpuConvKernel::VARIABLE,
                    x.dims()
                );
                burn_conv3d(x, weight, bias, options)
            }
        }
    })
}
