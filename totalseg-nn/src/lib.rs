//! nnU-Net's 3-D U-Nets (`PlainConvUNet`, `ResidualEncoderUNet`) in [Burn](https://burn.dev),
//! loaded from a converted model folder (`model.json` + `model.safetensors`, see
//! `docs/model-format.md`).
//!
//! The networks are written once against Burn's [`Backend`](burn::tensor::backend::Backend)
//! trait: the CPU backend is `burn_flex::Flex`, CUDA is `burn_cuda::Cuda` (feature `cuda`).
//! They run in f32, f16 or bf16 ([`Precision`], chosen at load time); InstanceNorm statistics are
//! always computed in f32.
//!
//! Entry point: [`NnUnetModel::load`], then [`NnUnetModel::forward_logits`] per fold.

mod blocks;
mod config;
mod decoder;
mod error;
mod layers;
mod model;
mod network;
pub mod ops;
mod plain_unet;
mod precision;
mod residual_unet;
mod weights;

pub use config::{
    ArchKwargs, ArchitectureConfig, IntensityProperties, LabelValue, ModelConfig, NetworkKind,
    WeightDtype, MODEL_FORMAT, MODEL_FORMAT_VERSION,
};
pub use error::NnError;
pub use model::{NnUnetModel, MODEL_JSON, MODEL_WEIGHTS};
pub use network::{FoldNetwork, UNet};
#[cfg(any(feature = "cuda", feature = "wgpu"))]
pub use ops::cube::GpuConvKernel;
pub use ops::{ConvParams, DeviceMemoryUsage, NetworkOps, NormParams};
pub use plain_unet::PlainConvUNet;
pub use precision::Precision;
pub use residual_unet::ResidualEncoderUNet;
