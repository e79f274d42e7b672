//! dynamic-network-architectures' `UNetDecoder`, shared by PlainConvUNet and ResidualEncoderUNet.

use crate::ops::NetworkOps;
use burn::tensor::{DType, Tensor};

use crate::blocks::StackedConvBlocks;
use crate::config::ArchKwargs;
use crate::error::NnError;
use crate::layers::{Conv3d, ConvSpec, ConvTranspose3d};
use crate::weights::FoldWeights;

/// The decoder: per stage (lowest resolution first) a transposed convolution upsampling the
/// stage below, concatenation `[upsampled, skip]`, then a stack of conv blocks; at inference
/// only the last (full-resolution) segmentation head is applied.
///
/// Names: `decoder.transpconvs.<s>.*`, `decoder.stages.<s>.convs.<i>.*`, `decoder.seg_layers.<s>.*`.
#[derive(Debug, Clone)]
pub(crate) struct UNetDecoder<B: NetworkOps> {
    transpconvs: Vec<ConvTranspose3d<B>>,
    stages: Vec<StackedConvBlocks<B>>,
    seg_head: Conv3d<B>,
}

impl<B: NetworkOps> UNetDecoder<B> {
    pub(crate) fn load(
        weights: &mut FoldWeights<'_, B>,
        kw: &ArchKwargs,
        num_classes: usize,
    ) -> Result<Self, NnError> {
        let features = &kw.features_per_stage;
        let n = kw.n_stages;
        let mut transpconvs = Vec::with_capacity(n - 1);
        let mut stages = Vec::with_capacity(n - 1);
        for s in 0..n - 1 {
            // Decoder stage s merges encoder stage `below` into the skip of stage `level`.
            let below = n - 1 - s;
            let level = n - 2 - s;
            transpconvs.push(ConvTranspose3d::load(
                weights,
                &format!("decoder.transpconvs.{s}"),
                features[below],
                features[level],
                kw.strides[below],
                kw.conv_bias,
            )?);
            stages.push(StackedConvBlocks::load(
                weights,
                &format!("decoder.stages.{s}"),
                kw.n_conv_per_stage_decoder[s],
                2 * features[level],
                features[level],
                kw.kernel_sizes[level],
                [1, 1, 1],
                kw,
            )?);
            // The deep-supervision heads are stored but unused at inference: check, don't load.
            if s < n - 2 {
                weights.check_unused(
                    &format!("decoder.seg_layers.{s}.weight"),
                    &[num_classes, features[level], 1, 1, 1],
                )?;
                weights.check_unused(&format!("decoder.seg_layers.{s}.bias"), &[num_classes])?;
            }
        }
        let seg_head = Conv3d::load(
            weights,
            &format!("decoder.seg_layers.{}", n - 2),
            ConvSpec {
                in_channels: features[0],
                out_channels: num_classes,
                kernel: [1, 1, 1],
                stride: [1, 1, 1],
                bias: true,
            },
        )?;
        Ok(Self {
            transpconvs,
            stages,
            seg_head,
        })
    }

    /// `skips` are the outputs of the encoder stages above the bottleneck, in the order computed
    /// (full resolution first); returns f32 logits at full resolution.
    pub(crate) fn forward(
        &self,
        bottleneck: Tensor<B, 5>,
        skips: Vec<Tensor<B, 5>>,
    ) -> Tensor<B, 5> {
        let mut x = bottleneck;
        let stages = self.transpconvs.iter().zip(&self.stages);
        for ((transpconv, stage), skip) in stages.zip(skips.into_iter().rev()) {
            let upsampled = transpconv.forward(x);
            x = stage.forward(B::unet_cat_channels(upsampled, skip));
        }
        self.seg_head.forward(x).cast(DType::F32)
    }
}
