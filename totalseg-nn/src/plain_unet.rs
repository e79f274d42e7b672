//! `PlainConvUNet` (dynamic-network-architectures), the network of nnU-Net's default plans.

use crate::ops::NetworkOps;
use burn::tensor::Tensor;

use crate::blocks::StackedConvBlocks;
use crate::config::ArchKwargs;
use crate::decoder::UNetDecoder;
use crate::error::NnError;
use crate::weights::FoldWeights;

/// A U-Net whose encoder stages are stacks of conv-norm-LeakyReLU blocks; each stage's first
/// convolution carries the stage's stride.
///
/// Built by [`crate::NnUnetModel::load`]; run it through [`crate::FoldNetwork::forward_logits`],
/// which checks the input shape.
#[derive(Debug, Clone)]
pub struct PlainConvUNet<B: NetworkOps> {
    /// Encoder stages above the bottleneck (`encoder.stages.<s>.0`); their outputs are the skips.
    skip_stages: Vec<StackedConvBlocks<B>>,
    /// The lowest-resolution encoder stage.
    bottleneck: StackedConvBlocks<B>,
    decoder: UNetDecoder<B>,
}

impl<B: NetworkOps> PlainConvUNet<B> {
    pub(crate) fn load(
        weights: &mut FoldWeights<'_, B>,
        kw: &ArchKwargs,
        input_channels: usize,
        num_classes: usize,
        n_conv_per_stage: &[usize],
    ) -> Result<Self, NnError> {
        let mut stages = Vec::with_capacity(kw.n_stages);
        let mut in_channels = input_channels;
        for (s, &num_convs) in n_conv_per_stage.iter().enumerate() {
            stages.push(StackedConvBlocks::load(
                weights,
                // The stage is an nn.Sequential around the conv stack, hence the `.0`.
                &format!("encoder.stages.{s}.0"),
                num_convs,
                in_channels,
                kw.features_per_stage[s],
                kw.kernel_sizes[s],
                kw.strides[s],
                kw,
            )?);
            in_channels = kw.features_per_stage[s];
        }
        let bottleneck = stages.pop().ok_or_else(|| NnError::InvalidInput {
            reason: "a U-Net needs at least one encoder stage".into(),
        })?;
        Ok(Self {
            skip_stages: stages,
            bottleneck,
            decoder: UNetDecoder::load(weights, kw, num_classes)?,
        })
    }

    /// Logits (f32) at the input's resolution. `x` must have the network's input channels and
    /// spatial sizes divisible by the total stride.
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let mut skips = Vec::with_capacity(self.skip_stages.len());
        let mut x = x;
        for stage in &self.skip_stages {
            x = stage.forward(x);
            skips.push(x.clone());
        }
        let bottleneck = self.bottleneck.forward(x);
        self.decoder.forward(bottleneck, skips)
    }
}
