//! Single layers with nnU-Net's (PyTorch's) semantics: Conv3d, ConvTranspose3d, InstanceNorm3d,
//! average pooling. Weights are loaded by their PyTorch names relative to a module prefix.

use burn::tensor::{DType, Tensor};

use crate::error::NnError;
use crate::ops::{ConvParams, NetworkOps, NormParams};
use crate::weights::FoldWeights;

/// `torch.nn.Conv3d` with "same" padding `(k - 1) / 2` (odd kernels), as nnU-Net builds it.
#[derive(Debug, Clone)]
pub(crate) struct Conv3d<B: NetworkOps> {
    params: ConvParams<B>,
    stride: [usize; 3],
    padding: [usize; 3],
}

/// Shape of a 3-D convolution: channels, kernel, stride, bias.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvSpec {
    pub(crate) in_channels: usize,
    pub(crate) out_channels: usize,
    pub(crate) kernel: [usize; 3],
    pub(crate) stride: [usize; 3],
    pub(crate) bias: bool,
}

impl<B: NetworkOps> Conv3d<B> {
    /// Loads `<module>.weight` `[out, in, kd, kh, kw]` and, with a bias, `<module>.bias` `[out]`.
    pub(crate) fn load(
        weights: &mut FoldWeights<'_, B>,
        module: &str,
        spec: ConvSpec,
    ) -> Result<Self, NnError> {
        let [kd, kh, kw] = spec.kernel;
        let weight = weights.compute_tensor(
            &format!("{module}.weight"),
            [spec.out_channels, spec.in_channels, kd, kh, kw],
        )?;
        let bias = if spec.bias {
            Some(weights.compute_tensor(&format!("{module}.bias"), [spec.out_channels])?)
        } else {
            None
        };
        let mut params = ConvParams {
            packed: None,
            weight,
            bias,
        };
        params.packed = B::unet_pack_conv3d(&params);
        Ok(Self {
            params,
            stride: spec.stride,
            padding: spec.kernel.map(|k| (k - 1) / 2),
        })
    }

    pub(crate) fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        B::unet_conv3d(x, &self.params, self.stride, self.padding)
    }
}

/// `torch.nn.ConvTranspose3d(in, out, kernel_size=stride, stride=stride)`: the decoder's upsampling.
#[derive(Debug, Clone)]
pub(crate) struct ConvTranspose3d<B: NetworkOps> {
    params: ConvParams<B>,
    stride: [usize; 3],
}

impl<B: NetworkOps> ConvTranspose3d<B> {
    /// Loads `<module>.weight` `[in, out, sd, sh, sw]` and, with a bias, `<module>.bias` `[out]`.
    pub(crate) fn load(
        weights: &mut FoldWeights<'_, B>,
        module: &str,
        in_channels: usize,
        out_channels: usize,
        stride: [usize; 3],
        bias: bool,
    ) -> Result<Self, NnError> {
        let [sd, sh, sw] = stride;
        let weight = weights.compute_tensor(
            &format!("{module}.weight"),
            [in_channels, out_channels, sd, sh, sw],
        )?;
        let bias = if bias {
            Some(weights.compute_tensor(&format!("{module}.bias"), [out_channels])?)
        } else {
            None
        };
        Ok(Self {
            params: ConvParams {
                packed: None,
                weight,
                bias,
            },
            stride,
        })
    }

    pub(crate) fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        B::unet_conv_transpose3d(x, &self.params, self.stride)
    }
}

/// `torch.nn.InstanceNorm3d(eps, affine)`: per sample and channel, biased variance, no running
/// statistics. Always computed in f32 (and returns f32), whatever the input dtype.
#[derive(Debug, Clone)]
pub(crate) struct InstanceNorm3d<B: NetworkOps> {
    params: NormParams<B>,
}

impl<B: NetworkOps> InstanceNorm3d<B> {
    /// Loads `<module>.weight` and `<module>.bias` (both `[channels]`) when `affine`.
    pub(crate) fn load(
        weights: &mut FoldWeights<'_, B>,
        module: &str,
        channels: usize,
        eps: f64,
        affine: bool,
    ) -> Result<Self, NnError> {
        let affine = if affine {
            Some((
                weights.f32_tensor(&format!("{module}.weight"), [channels])?,
                weights.f32_tensor(&format!("{module}.bias"), [channels])?,
            ))
        } else {
            None
        };
        Ok(Self {
            params: NormParams { affine, eps },
        })
    }

    /// Normalises `x` (any float dtype), then applies `LeakyReLU(negative_slope)` when given;
    /// the result is f32.
    pub(crate) fn forward(&self, x: Tensor<B, 5>, negative_slope: Option<f64>) -> Tensor<B, 5> {
        B::unet_instance_norm(x, &self.params, negative_slope)
    }
}

/// `torch.nn.AvgPool3d(kernel_size=stride, stride=stride)` on sizes divisible by the stride
/// (the residual blocks' skip path; the network checks divisibility at its input).
pub(crate) fn avg_pool_by_stride<B: NetworkOps>(
    x: Tensor<B, 5>,
    stride: [usize; 3],
) -> Tensor<B, 5> {
    let [n, c, d, h, w] = x.dims();
    let [sd, sh, sw] = stride;
    let (od, oh, ow) = (d / sd, h / sh, w / sw);
    let divisor = (sd * sh * sw) as f64;
    // Summed in f32 and rounded back, as PyTorch pools reduced-precision tensors.
    let dtype = x.dtype();
    // Drop a remainder as PyTorch's floor mode does, then average each window via a reshape.
    let x = x
        .slice([0..n, 0..c, 0..od * sd, 0..oh * sh, 0..ow * sw])
        .cast(DType::F32);
    x.reshape([n * c * od, sd, oh, sh, ow, sw])
        .sum_dim(1)
        .sum_dim(3)
        .sum_dim(5)
        .div_scalar(divisor)
        .reshape([n, c, od, oh, ow])
        .cast(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use burn_flex::{Flex, FlexDevice};

    /// Reference instance norm in f64: `(x - mean) / sqrt(var + eps)` per channel.
    fn reference(values: &[f32], channels: usize, eps: f64) -> Vec<f64> {
        let len = values.len() / channels;
        let mut out = Vec::with_capacity(values.len());
        for channel in values.chunks(len) {
            let mean = channel.iter().map(|&v| f64::from(v)).sum::<f64>() / len as f64;
            let var = channel
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / len as f64;
            out.extend(
                channel
                    .iter()
                    .map(|&v| (f64::from(v) - mean) / (var + eps).sqrt()),
            );
        }
        out
    }

    #[test]
    fn instance_norm_statistics_stay_accurate_over_large_tiles() {
        // Smooth activations with a mean far from zero against their spread, 64x64x128 per
        // channel: with a flat f32 sum the error was 8.5e-4, with per-axis sums ~1e-7.
        let (c, d, h, w) = (2usize, 64usize, 64usize, 128usize);
        let values: Vec<f32> = (0..c * d * h * w)
            .map(|i| {
                let channel = i / (d * h * w);
                let offset = if channel == 0 { 1000.0 } else { -300.0 };
                offset + 0.3 + ((i % w) as f32 / w as f32) * 3.0
            })
            .collect();
        let norm = InstanceNorm3d::<Flex> {
            params: NormParams {
                affine: None,
                eps: 1e-5,
            },
        };
        let input = Tensor::<Flex, 5>::from_data(
            TensorData::new(values.clone(), [1, c, d, h, w]),
            &FlexDevice,
        );
        let expected = reference(&values, c, 1e-5);
        // The layer (Flex's own kernel) and the generic path the GPU backends take: there
        // the f64 partial sums give ~1e-7; all-f32 partial sums gave 8.5e-4.
        let layer = norm.forward(input.clone(), None);
        let generic = crate::ops::generic::instance_norm_leaky_relu(input, &norm.params, None);
        for (path, out) in [("layer", layer), ("generic", generic)] {
            let out = out.into_data().into_vec::<f32>().expect("f32 output");
            let max_error = out
                .iter()
                .zip(&expected)
                .map(|(&o, &e)| (f64::from(o) - e).abs())
                .fold(0.0, f64::max);
            // Rounding the mean (~1000) to f32 alone may cost ~4e-5 after dividing by the spread.
            assert!(max_error < 2e-4, "{path}: max error {max_error}");
        }
    }
}
