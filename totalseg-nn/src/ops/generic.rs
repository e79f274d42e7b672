//! [`super::NetworkOps`]' defaults, written with Burn's generic tensor operations.

use burn::tensor::activation::leaky_relu;
use burn::tensor::backend::Backend;
use burn::tensor::module::conv3d as burn_conv3d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor};

use super::{ConvParams, NormParams};

/// `conv3d` with PyTorch autocast's numerics for reduced-precision operands: f16 (or bf16)
/// values are exact in f32, so the convolution runs in f32 (products exact, sums in f32, as
/// cuDNN accumulates) and its output is rounded back to the operands' dtype, as autocast
/// returns it. Burn's own GPU kernels would sum in the operands' dtype instead (its direct
/// conv kernel does): on burn-wgpu, f16 sums put 320-channel 3x3x3 convs 4e-2 (relative) off
/// the f32 result, against ~1e-3 for f16 operands with f32 sums.
pub(crate) fn conv3d<B: Backend>(
    x: Tensor<B, 5>,
    params: &ConvParams<B>,
    stride: [usize; 3],
    padding: [usize; 3],
) -> Tensor<B, 5> {
    conv3d_with(x, params, stride, padding, burn_conv3d)
}

/// [`conv3d`] with the f32 convolution itself done by `conv` (a backend's choice of kernel).
pub(crate) fn conv3d_with<B: Backend>(
    x: Tensor<B, 5>,
    params: &ConvParams<B>,
    stride: [usize; 3],
    padding: [usize; 3],
    conv: impl FnOnce(Tensor<B, 5>, Tensor<B, 5>, Option<Tensor<B, 1>>, ConvOptions<3>) -> Tensor<B, 5>,
) -> Tensor<B, 5> {
    let dtype = x.dtype();
    let options = ConvOptions::new(stride, padding, [1, 1, 1], 1);
    if dtype == DType::F32 && params.weight.dtype() == DType::F32 {
        return conv(x, params.weight.clone(), params.bias.clone(), options);
    }
    conv(
        x.cast(DType::F32),
        params.weight.clone().cast(DType::F32),
        params.bias.clone().map(|b| b.cast(DType::F32)),
        options,
    )
    .cast(dtype)
}

/// Kernel = stride means every input voxel writes its own disjoint `sd x sh x sw` output block:
/// one matrix product `[in] x [in, out * sd * sh * sw]` per voxel, then a depth-to-space
/// reshuffle. (Burn's direct transposed-convolution kernels are much slower than this GEMM.)
/// Reduced-precision operands are multiplied in f32 and the result rounded back, as in
/// [`conv3d`].
pub(crate) fn conv_transpose3d_by_stride<B: Backend>(
    x: Tensor<B, 5>,
    params: &ConvParams<B>,
    stride: [usize; 3],
) -> Tensor<B, 5> {
    let dtype = x.dtype();
    if dtype != DType::F32 || params.weight.dtype() != DType::F32 {
        let as_f32 = ConvParams {
            weight: params.weight.clone().cast(DType::F32),
            bias: params.bias.clone().map(|b| b.cast(DType::F32)),
            packed: None,
        };
        return conv_transpose3d_by_stride(x.cast(DType::F32), &as_f32, stride).cast(dtype);
    }
    let [n, cin, d, h, w] = x.dims();
    let [_, cout, sd, sh, sw] = params.weight.dims();
    debug_assert_eq!([sd, sh, sw], stride);
    let block = sd * sh * sw;
    // [n, d*h*w, in] x [in, out*block] -> [n, d*h*w, out*block]
    let columns = x.reshape([n, cin, d * h * w]).swap_dims(1, 2);
    let weight = params.weight.clone().reshape([1, cin, cout * block]);
    let y = columns.matmul(weight);
    // [n, d, h, w, out, sd, sh, sw] -> [n, out, d, sd, h, sh, w, sw]
    let y = y
        .reshape([n * d, h, w, cout, sd, sh, sw])
        .permute([0, 3, 4, 1, 5, 2, 6])
        .reshape([n, d, cout, sd * h * sh * w * sw])
        .swap_dims(1, 2)
        .reshape([n, cout, d * sd, h * sh, w * sw]);
    match &params.bias {
        Some(bias) => y + bias.clone().reshape([1, cout, 1, 1, 1]),
        None => y,
    }
}

pub(crate) fn instance_norm_leaky_relu<B: Backend>(
    x: Tensor<B, 5>,
    norm: &NormParams<B>,
    negative_slope: Option<f64>,
) -> Tensor<B, 5> {
    instance_norm_leaky_relu_with(x, norm, negative_slope, |t, dim| t.sum_dim(dim))
}

/// [`instance_norm_leaky_relu`] with the statistics' sums along one axis done by `sum_dim` (a
/// backend's choice of reduction kernel; same arithmetic).
pub(crate) fn instance_norm_leaky_relu_with<B: Backend>(
    x: Tensor<B, 5>,
    norm: &NormParams<B>,
    negative_slope: Option<f64>,
    sum_dim: impl Fn(Tensor<B, 5>, usize) -> Tensor<B, 5>,
) -> Tensor<B, 5> {
    let c = x.dims()[1];
    let x = x.cast(DType::F32);
    let mean = spatial_mean(x.clone(), &sum_dim);
    let centered = x - mean;
    let variance = spatial_mean(centered.clone().square(), &sum_dim);
    let inv_std = (variance + norm.eps).sqrt().recip();
    // Fold the affine scale into the per-channel factor: one full-size multiply, one add.
    let y = match &norm.affine {
        Some((scale, shift)) => {
            let factor = inv_std * scale.clone().reshape([1, c, 1, 1, 1]);
            centered * factor + shift.clone().reshape([1, c, 1, 1, 1])
        }
        None => centered * inv_std,
    };
    match negative_slope {
        Some(slope) => leaky_relu(y, slope),
        None => y,
    }
}

/// Per sample and channel mean over the three spatial axes, `[n, c, 1, 1, 1]`: f32 sums along
/// the last axis only, then the (w times fewer) partial sums accumulated in f64.
///
/// PyTorch's CPU instance norm accumulates its statistics in f64. A flat f32 sum over a whole
/// 128^3 tile (`mean_dim` of the flattened axes: 8 SIMD lanes of 262144 sequential adds) drifts
/// on smooth activations whose mean is large against their spread; after centering, a 6-stage
/// U-Net's logits were off by up to 0.17 against PyTorch's (now ~6e-4, PyTorch's own f32 noise).
fn spatial_mean<B: Backend>(
    x: Tensor<B, 5>,
    sum_dim: &impl Fn(Tensor<B, 5>, usize) -> Tensor<B, 5>,
) -> Tensor<B, 5> {
    let [_, _, d, h, w] = x.dims();
    let rows = sum_dim(x, 4).cast(DType::F64);
    sum_dim(sum_dim(rows, 3), 2)
        .div_scalar((d * h * w) as f64)
        .cast(DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;
    use burn_flex::{Flex, FlexDevice};
    use half::f16;

    /// Deterministic values in [-1, 1), rounded to f16 (so they are the exact operands).
    fn f16_values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
                f16::from_f32(2.0 * unit - 1.0).to_f32()
            })
            .collect()
    }

    fn f16_tensor<const D: usize>(values: &[f32], shape: [usize; D]) -> Tensor<Flex, D> {
        Tensor::<Flex, D>::from_data(TensorData::new(values.to_vec(), shape), &FlexDevice)
            .cast(DType::F16)
    }

    /// Largest error of `got` (f16) against the exact sums `expected` = `(sum, sum of |terms|)`,
    /// relative to what rounding only the output allows: half the f16 spacing at the sum plus
    /// f32 summation noise (2^-20 of the terms' magnitude). At most 1 when the sums are f32;
    /// f16 partial sums overshoot it many times.
    fn worst_error_over_output_rounding(got: Tensor<Flex, 5>, expected: &[(f64, f64)]) -> f64 {
        assert_eq!(got.dtype(), DType::F16);
        let got = got
            .cast(DType::F32)
            .into_data()
            .into_vec::<f32>()
            .expect("f32");
        assert_eq!(got.len(), expected.len());
        got.iter()
            .zip(expected)
            .map(|(&g, &(sum, magnitude))| {
                // The spacing of f16 values at |sum| (2^-24 below the normal range).
                let exponent = sum.abs().max(6.1e-5).log2().floor();
                let half_ulp = 0.5 * 2f64.powf(exponent - 10.0);
                (f64::from(g) - sum).abs() / (half_ulp + magnitude * 2f64.powi(-20))
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn f16_conv3d_sums_in_f32_and_rounds_only_its_output() {
        // 96 channels x 27 taps: summed in f16 this drifts by several f16 ulps.
        let (cin, cout, s) = (96, 4, 5);
        let x = f16_values(cin * s * s * s, 1);
        let w: Vec<f32> = f16_values(cout * cin * 27, 2);
        let b = f16_values(cout, 3);
        let params = ConvParams {
            weight: f16_tensor(&w, [cout, cin, 3, 3, 3]),
            bias: Some(f16_tensor(&b, [cout])),
            packed: None,
        };
        let out = conv3d(f16_tensor(&x, [1, cin, s, s, s]), &params, [1; 3], [1; 3]);
        let mut expected = Vec::with_capacity(cout * s * s * s);
        let at = |c: usize, i: isize, j: isize, k: isize| -> f64 {
            let inside = |v: isize| (0..s as isize).contains(&v);
            if inside(i) && inside(j) && inside(k) {
                f64::from(x[((c * s + i as usize) * s + j as usize) * s + k as usize])
            } else {
                0.0
            }
        };
        for o in 0..cout {
            for i in 0..s as isize {
                for j in 0..s as isize {
                    for k in 0..s as isize {
                        let (mut sum, mut magnitude) = (f64::from(b[o]), f64::from(b[o]).abs());
                        for c in 0..cin {
                            for t in 0..27usize {
                                let (a, bb, cc) = (t / 9, (t / 3) % 3, t % 3);
                                let weight = f64::from(w[(o * cin + c) * 27 + t]);
                                let term = weight
                                    * at(
                                        c,
                                        i + a as isize - 1,
                                        j + bb as isize - 1,
                                        k + cc as isize - 1,
                                    );
                                sum += term;
                                magnitude += term.abs();
                            }
                        }
                        expected.push((sum, magnitude));
                    }
                }
            }
        }
        let worst = worst_error_over_output_rounding(out, &expected);
        assert!(
            worst <= 1.0,
            "worst error {worst} x what output rounding allows"
        );
    }

    #[test]
    fn f16_transposed_conv_sums_in_f32_and_rounds_only_its_output() {
        let (cin, cout, s) = (512, 2, 2);
        let x = f16_values(cin * s * s * s, 4);
        let w = f16_values(cin * cout * 8, 5);
        let params = ConvParams {
            weight: f16_tensor(&w, [cin, cout, 2, 2, 2]),
            bias: None,
            packed: None,
        };
        let out = conv_transpose3d_by_stride(f16_tensor(&x, [1, cin, s, s, s]), &params, [2; 3]);
        let o = 2 * s;
        let mut expected = vec![(0.0f64, 0.0f64); cout * o * o * o];
        for co in 0..cout {
            for i in 0..o {
                for j in 0..o {
                    for k in 0..o {
                        let tap = ((i % 2) * 2 + j % 2) * 2 + k % 2;
                        let voxel = ((i / 2) * s + j / 2) * s + k / 2;
                        let terms = (0..cin).map(|c| {
                            f64::from(x[c * s * s * s + voxel])
                                * f64::from(w[(c * cout + co) * 8 + tap])
                        });
                        expected[((co * o + i) * o + j) * o + k] = terms
                            .fold((0.0, 0.0), |(sum, magnitude), t| {
                                (sum + t, magnitude + t.abs())
                            });
                    }
                }
            }
        }
        let worst = worst_error_over_output_rounding(out, &expected);
        assert!(
            worst <= 1.0,
            "worst error {worst} x what output rounding allows"
        );
    }
}
