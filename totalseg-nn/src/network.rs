//! One fold's network, whichever family it is, with a checked forward pass.

use crate::ops::NetworkOps;
use burn::tensor::{DType, Tensor};

use crate::config::{ArchitectureConfig, NetworkKind};
use crate::error::NnError;
use crate::plain_unet::PlainConvUNet;
use crate::precision::Precision;
use crate::residual_unet::ResidualEncoderUNet;
use crate::weights::FoldWeights;

/// A network of either supported family.
#[derive(Debug, Clone)]
pub enum UNet<B: NetworkOps> {
    /// nnU-Net's default `PlainConvUNet`.
    Plain(PlainConvUNet<B>),
    /// nnU-Net ResEnc plans' `ResidualEncoderUNet`.
    Residual(ResidualEncoderUNet<B>),
}

impl<B: NetworkOps> UNet<B> {
    /// Builds the network described by `arch`, taking its tensors from `weights`.
    pub(crate) fn load(
        weights: &mut FoldWeights<'_, B>,
        arch: &ArchitectureConfig,
    ) -> Result<Self, NnError> {
        let kw = &arch.arch_kwargs;
        // Validation guarantees the per-stage count list matching the network kind exists.
        let missing = |what: &str| NnError::InvalidInput {
            reason: format!("architecture lacks {what}"),
        };
        match arch.network_kind() {
            Some(NetworkKind::PlainConvUNet) => {
                let counts = kw
                    .n_conv_per_stage
                    .as_deref()
                    .ok_or_else(|| missing("n_conv_per_stage"))?;
                PlainConvUNet::load(weights, kw, arch.input_channels, arch.num_classes, counts)
                    .map(UNet::Plain)
            }
            Some(NetworkKind::ResidualEncoderUNet) => {
                let counts = kw
                    .n_blocks_per_stage
                    .as_deref()
                    .ok_or_else(|| missing("n_blocks_per_stage"))?;
                ResidualEncoderUNet::load(
                    weights,
                    kw,
                    arch.input_channels,
                    arch.num_classes,
                    counts,
                )
                .map(UNet::Residual)
            }
            None => Err(missing("a supported network_class_name")),
        }
    }

    /// Runs the network without checking the input (see [`FoldNetwork::forward_logits`]).
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        match self {
            UNet::Plain(net) => net.forward(x),
            UNet::Residual(net) => net.forward(x),
        }
    }
}

/// The network of one cross-validation fold.
#[derive(Debug, Clone)]
pub struct FoldNetwork<B: NetworkOps> {
    fold: u32,
    network: UNet<B>,
    input_channels: usize,
    total_stride: [usize; 3],
    compute: DType,
}

impl<B: NetworkOps> FoldNetwork<B> {
    pub(crate) fn load(
        weights: &mut FoldWeights<'_, B>,
        fold: u32,
        arch: &ArchitectureConfig,
        precision: Precision,
    ) -> Result<Self, NnError> {
        Ok(Self {
            fold,
            network: UNet::load(weights, arch)?,
            input_channels: arch.input_channels,
            total_stride: arch.arch_kwargs.total_stride(),
            compute: B::unet_activation_dtype(precision.dtype()),
        })
    }

    /// The fold number (`fold_<k>` in nnU-Net).
    pub fn fold(&self) -> u32 {
        self.fold
    }

    /// The network itself.
    pub fn network(&self) -> &UNet<B> {
        &self.network
    }

    /// Logits `[batch, num_classes, d, h, w]` (f32) for `input` `[batch, input_channels, d, h, w]`
    /// (any float dtype; it is cast to the model's precision). Spatial sizes must be multiples of
    /// the network's total stride (any nnU-Net patch size is).
    pub fn forward_logits(&self, input: Tensor<B, 5>) -> Result<Tensor<B, 5>, NnError> {
        let [batch, channels, d, h, w] = input.dims();
        if batch == 0 || channels != self.input_channels {
            return Err(NnError::InvalidInput {
                reason: format!(
                    "input shape {:?} needs a non-empty batch and {} channels",
                    input.dims(),
                    self.input_channels
                ),
            });
        }
        for (size, stride) in [d, h, w].into_iter().zip(self.total_stride) {
            if size == 0 || size % stride != 0 {
                return Err(NnError::InvalidInput {
                    reason: format!(
                        "spatial size {:?} must be a positive multiple of the total stride {:?}",
                        [d, h, w],
                        self.total_stride
                    ),
                });
            }
        }
        Ok(self.network.forward(input.cast(self.compute)))
    }
}
