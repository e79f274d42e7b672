//! The network's hot operators as a Burn backend extension.
//!
//! [`NetworkOps`] names the few operators a U-Net forward pass spends its time in. Each has a
//! default written with Burn's generic tensor ops (what the CUDA backend uses); the CPU backend
//! [`burn_flex::Flex`] overrides them with its own multi-threaded SIMD kernels (module `flex`). The model code
//! only ever calls these methods, so it stays backend-generic.

#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub(crate) mod cube;
pub(crate) mod flex;
pub(crate) mod generic;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor};

/// A conv layer's parameters as [`NetworkOps`] receives them.
#[derive(Debug, Clone)]
pub struct ConvParams<B: Backend> {
    /// `[out, in, kd, kh, kw]`.
    pub weight: Tensor<B, 5>,
    /// `[out]`.
    pub bias: Option<Tensor<B, 1>>,
    /// The weights rearranged once at load time for this backend's kernel (see
    /// [`NetworkOps::unet_pack_conv3d`]); opaque, never used as numbers by Burn.
    pub packed: Option<Tensor<B, 1>>,
}

/// InstanceNorm parameters: `affine` holds `(scale, shift)`, both `[channels]` in f32.
#[derive(Debug, Clone)]
pub struct NormParams<B: Backend> {
    /// `(weight, bias)` when the norm is affine.
    pub affine: Option<(Tensor<B, 1>, Tensor<B, 1>)>,
    /// Added to the variance.
    pub eps: f64,
}

/// What a device's memory pools hold, as the backend reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceMemoryUsage {
    /// Bytes the pools have allocated from the device (what `nvidia-smi` counts, less the
    /// context): pages stay reserved after their tensors are freed, until a cleanup.
    pub reserved_bytes: u64,
    /// Bytes of live tensors.
    pub in_use_bytes: u64,
}

/// Backend extension with the U-Net's operators (PyTorch semantics), each with a generic
/// default.
pub trait NetworkOps: Backend {
    /// The dtype activations are kept in between blocks when the weights are `weights`
    /// (the precision chosen at load time). By default the same; a backend whose kernels
    /// round internally (the CPU's bf16 mode) may keep f32 activations instead and save the
    /// casts.
    fn unet_activation_dtype(weights: DType) -> DType {
        weights
    }

    /// Called once per convolution at load time: a backend may return its kernel's own
    /// arrangement of the weights, handed back in [`ConvParams::packed`].
    fn unet_pack_conv3d(_params: &ConvParams<Self>) -> Option<Tensor<Self, 1>> {
        None
    }

    /// `torch.nn.functional.conv3d(x, weight, bias, stride, padding)` (no dilation, no groups).
    fn unet_conv3d(
        x: Tensor<Self, 5>,
        params: &ConvParams<Self>,
        stride: [usize; 3],
        padding: [usize; 3],
    ) -> Tensor<Self, 5> {
        generic::conv3d(x, params, stride, padding)
    }

    /// `torch.nn.ConvTranspose3d` with kernel = stride and no padding: the decoder's upsampling.
    /// `params.weight` is `[in, out, sd, sh, sw]`.
    fn unet_conv_transpose3d(
        x: Tensor<Self, 5>,
        params: &ConvParams<Self>,
        stride: [usize; 3],
    ) -> Tensor<Self, 5> {
        generic::conv_transpose3d_by_stride(x, params, stride)
    }

    /// `InstanceNorm3d` (biased variance, statistics accumulated as PyTorch's CPU kernel does)
    /// followed, when `negative_slope` is given, by `LeakyReLU`. The result is f32.
    fn unet_instance_norm(
        x: Tensor<Self, 5>,
        norm: &NormParams<Self>,
        negative_slope: Option<f64>,
    ) -> Tensor<Self, 5> {
        generic::instance_norm_leaky_relu(x, norm, negative_slope)
    }

    /// The largest and the smallest value of `values`, as `[2]` in their dtype: what the
    /// device sliding window reads to find infinite logits.
    fn unet_max_and_min(values: Tensor<Self, 4>) -> Tensor<Self, 1> {
        Tensor::cat(vec![values.clone().max(), values.min()], 0)
    }

    /// The memory pools of `device`, where the backend keeps its own (Burn's GPU backends);
    /// `None` elsewhere. On CUDA each thread has its own pools: this is the calling thread's.
    fn unet_memory_usage(_device: &Self::Device) -> Option<DeviceMemoryUsage> {
        None
    }

    /// `torch.cat([a, b], dim=1)`: the decoder's skip concatenation.
    fn unet_cat_channels(a: Tensor<Self, 5>, b: Tensor<Self, 5>) -> Tensor<Self, 5> {
        Tensor::cat(vec![a, b], 1)
    }
}

// Burn's GPU backends without kernel fusion (CUDA, and Vulkan for checks without a GPU):
// `cube`'s impl for `burn_cubecl::CubeBackend`, where the convolution kernel can be chosen.

/// Burn's CUDA backend with kernel fusion: Burn's choice of kernels throughout.
#[cfg(feature = "cuda-fusion")]
impl NetworkOps for burn_cuda::Cuda {}
