//! The conv blocks shared by both networks (dynamic-network-architectures'
//! `ConvDropoutNormReLU` and `StackedConvBlocks`).

use crate::ops::NetworkOps;
use burn::tensor::{DType, Tensor};

use crate::config::ArchKwargs;
use crate::error::NnError;
use crate::layers::{Conv3d, ConvSpec, InstanceNorm3d};
use crate::weights::FoldWeights;

/// Conv3d -> InstanceNorm3d -> LeakyReLU (the nonlinearity is absent where nnU-Net passes
/// `nonlin=None`: the second conv of a residual block and its skip projection).
///
/// Names: `<module>.conv.{weight,bias}`, `<module>.norm.{weight,bias}`.
#[derive(Debug, Clone)]
pub(crate) struct ConvNormAct<B: NetworkOps> {
    conv: Conv3d<B>,
    norm: InstanceNorm3d<B>,
    negative_slope: Option<f64>,
    compute: DType,
}

impl<B: NetworkOps> ConvNormAct<B> {
    /// Loads the block; `with_nonlin` false drops the LeakyReLU.
    pub(crate) fn load(
        weights: &mut FoldWeights<'_, B>,
        module: &str,
        spec: ConvSpec,
        kw: &ArchKwargs,
        with_nonlin: bool,
    ) -> Result<Self, NnError> {
        Ok(Self {
            conv: Conv3d::load(weights, &format!("{module}.conv"), spec)?,
            norm: InstanceNorm3d::load(
                weights,
                &format!("{module}.norm"),
                spec.out_channels,
                kw.norm_eps,
                kw.norm_affine,
            )?,
            negative_slope: with_nonlin.then_some(kw.nonlin_negative_slope),
            compute: B::unet_activation_dtype(weights.compute_dtype()),
        })
    }

    /// The block's output in f32 (normalisation and activation run in f32).
    pub(crate) fn forward_f32(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        self.norm.forward(self.conv.forward(x), self.negative_slope)
    }

    /// The block's output in the compute dtype.
    pub(crate) fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        self.forward_f32(x).cast(self.compute)
    }
}

/// `n` [`ConvNormAct`] blocks in a row; only the first one strides.
///
/// Names: `<module>.convs.<i>.*`.
#[derive(Debug, Clone)]
pub(crate) struct StackedConvBlocks<B: NetworkOps> {
    convs: Vec<ConvNormAct<B>>,
}

impl<B: NetworkOps> StackedConvBlocks<B> {
    /// Loads `num_convs` blocks from `in_channels` to `out_channels` with the given kernel;
    /// the first applies `first_stride`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn load(
        weights: &mut FoldWeights<'_, B>,
        module: &str,
        num_convs: usize,
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 3],
        first_stride: [usize; 3],
        kw: &ArchKwargs,
    ) -> Result<Self, NnError> {
        let mut convs = Vec::with_capacity(num_convs);
        for i in 0..num_convs {
            let spec = ConvSpec {
                in_channels: if i == 0 { in_channels } else { out_channels },
                out_channels,
                kernel,
                stride: if i == 0 { first_stride } else { [1, 1, 1] },
                bias: kw.conv_bias,
            };
            convs.push(ConvNormAct::load(
                weights,
                &format!("{module}.convs.{i}"),
                spec,
                kw,
                true,
            )?);
        }
        Ok(Self { convs })
    }

    pub(crate) fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        self.convs.iter().fold(x, |x, block| block.forward(x))
    }
}
