//! `ResidualEncoderUNet` (dynamic-network-architectures), the network of nnU-Net's ResEnc plans.

use crate::ops::NetworkOps;
use burn::tensor::activation::leaky_relu;
use burn::tensor::{DType, Tensor};

use crate::blocks::{ConvNormAct, StackedConvBlocks};
use crate::config::ArchKwargs;
use crate::decoder::UNetDecoder;
use crate::error::NnError;
use crate::layers::{avg_pool_by_stride, ConvSpec};
use crate::weights::FoldWeights;

/// A U-Net whose encoder is a stem conv followed by stages of residual basic blocks
/// (ResNet-D style); the decoder is the same as [`crate::PlainConvUNet`]'s.
///
/// Built by [`crate::NnUnetModel::load`]; run it through [`crate::FoldNetwork::forward_logits`],
/// which checks the input shape.
#[derive(Debug, Clone)]
pub struct ResidualEncoderUNet<B: NetworkOps> {
    /// `encoder.stem`: one conv block from the input channels to `stem_channels`.
    stem: StackedConvBlocks<B>,
    /// Encoder stages above the bottleneck (`encoder.stages.<s>.blocks.<b>`); their outputs are the skips.
    skip_stages: Vec<Vec<BasicBlockD<B>>>,
    /// The lowest-resolution encoder stage.
    bottleneck: Vec<BasicBlockD<B>>,
    decoder: UNetDecoder<B>,
}

impl<B: NetworkOps> ResidualEncoderUNet<B> {
    pub(crate) fn load(
        weights: &mut FoldWeights<'_, B>,
        kw: &ArchKwargs,
        input_channels: usize,
        num_classes: usize,
        n_blocks_per_stage: &[usize],
    ) -> Result<Self, NnError> {
        let stem_channels = kw.stem_channels.unwrap_or(kw.features_per_stage[0]);
        let stem = StackedConvBlocks::load(
            weights,
            "encoder.stem",
            1,
            input_channels,
            stem_channels,
            kw.kernel_sizes[0],
            [1, 1, 1],
            kw,
        )?;
        let mut stages = Vec::with_capacity(kw.n_stages);
        let mut in_channels = stem_channels;
        for (s, &num_blocks) in n_blocks_per_stage.iter().enumerate() {
            let out_channels = kw.features_per_stage[s];
            let mut blocks = Vec::with_capacity(num_blocks);
            for b in 0..num_blocks {
                blocks.push(BasicBlockD::load(
                    weights,
                    &format!("encoder.stages.{s}.blocks.{b}"),
                    if b == 0 { in_channels } else { out_channels },
                    out_channels,
                    kw.kernel_sizes[s],
                    if b == 0 { kw.strides[s] } else { [1, 1, 1] },
                    kw,
                )?);
            }
            stages.push(blocks);
            in_channels = out_channels;
        }
        let bottleneck = stages.pop().ok_or_else(|| NnError::InvalidInput {
            reason: "a U-Net needs at least one encoder stage".into(),
        })?;
        Ok(Self {
            stem,
            skip_stages: stages,
            bottleneck,
            decoder: UNetDecoder::load(weights, kw, num_classes)?,
        })
    }

    /// Logits (f32) at the input's resolution. `x` must have the network's input channels and
    /// spatial sizes divisible by the total stride.
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let run_stage = |x, blocks: &[BasicBlockD<B>]| blocks.iter().fold(x, |x, b| b.forward(x));
        let mut x = self.stem.forward(x);
        let mut skips = Vec::with_capacity(self.skip_stages.len());
        for stage in &self.skip_stages {
            x = run_stage(x, stage);
            skips.push(x.clone());
        }
        let bottleneck = run_stage(x, &self.bottleneck);
        self.decoder.forward(bottleneck, skips)
    }
}

/// dynamic-network-architectures' `BasicBlockD`:
/// `LeakyReLU(norm(conv2(LeakyReLU(norm(conv1(x))))) + skip(x))`, where the skip average-pools
/// (kernel = stride) when the block strides and projects with a bias-free 1x1x1 conv + norm when
/// the channel count changes.
///
/// Names: `<module>.conv1.*`, `<module>.conv2.*`, `<module>.skip.<i>.*` (i = 1 after a pool, else 0).
#[derive(Debug, Clone)]
pub(crate) struct BasicBlockD<B: NetworkOps> {
    conv1: ConvNormAct<B>,
    conv2: ConvNormAct<B>,
    /// `Some(stride)` when the skip path average-pools.
    skip_pool: Option<[usize; 3]>,
    skip_projection: Option<ConvNormAct<B>>,
    negative_slope: f64,
    compute: DType,
}

impl<B: NetworkOps> BasicBlockD<B> {
    fn load(
        weights: &mut FoldWeights<'_, B>,
        module: &str,
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 3],
        stride: [usize; 3],
        kw: &ArchKwargs,
    ) -> Result<Self, NnError> {
        let conv = |in_channels, kernel, stride, bias| ConvSpec {
            in_channels,
            out_channels,
            kernel,
            stride,
            bias,
        };
        let conv1 = ConvNormAct::load(
            weights,
            &format!("{module}.conv1"),
            conv(in_channels, kernel, stride, kw.conv_bias),
            kw,
            true,
        )?;
        let conv2 = ConvNormAct::load(
            weights,
            &format!("{module}.conv2"),
            conv(out_channels, kernel, [1, 1, 1], kw.conv_bias),
            kw,
            false,
        )?;
        let skip_pool = (stride != [1, 1, 1]).then_some(stride);
        let skip_projection = if in_channels != out_channels {
            let index = usize::from(skip_pool.is_some());
            Some(ConvNormAct::load(
                weights,
                &format!("{module}.skip.{index}"),
                conv(in_channels, [1, 1, 1], [1, 1, 1], false),
                kw,
                false,
            )?)
        } else {
            None
        };
        Ok(Self {
            conv1,
            conv2,
            skip_pool,
            skip_projection,
            negative_slope: kw.nonlin_negative_slope,
            compute: B::unet_activation_dtype(weights.compute_dtype()),
        })
    }

    fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        let pooled = match self.skip_pool {
            Some(stride) => avg_pool_by_stride(x.clone(), stride),
            None => x.clone(),
        };
        let residual = match &self.skip_projection {
            Some(projection) => projection.forward_f32(pooled),
            None => pooled.cast(DType::F32),
        };
        let out = self.conv2.forward_f32(self.conv1.forward(x));
        leaky_relu(out + residual, self.negative_slope).cast(self.compute)
    }
}
