//! [`NetworkOps`] for the CPU backend [`Flex`]: f32 convolutions and instance norms run on
//! this crate's kernels (multi-threaded with rayon, AVX-512 where available); other dtypes
//! (the f16/bf16 precisions) take the generic path.
//!
//! Activations stay in Burn's contiguous NCDHW layout between layers: the convolution reads
//! each input row as a contiguous run (see [`conv3d`]), so nothing is repacked per layer.
//! Only the weights get a layout of their own, once at load time: panels of output channels
//! (`NetworkOps::unet_pack_conv3d`), so the microkernel streams them sequentially.

pub(crate) mod bf16;
pub(crate) mod conv3d;
pub(crate) mod conv_transpose3d;
pub(crate) mod microkernel;
pub(crate) mod norm;

use std::borrow::Cow;

use burn::tensor::{DType, Tensor, TensorData, TensorPrimitive};
use burn_flex::{Flex, FlexTensor};

use super::{generic, ConvParams, NetworkOps, NormParams};
use conv3d::{conv3d_f32, ConvGeometry};
use conv_transpose3d::conv_transpose3d_f32;
use microkernel::Kernel;

fn into_flex<const D: usize>(t: Tensor<Flex, D>) -> FlexTensor {
    t.into_primitive().tensor()
}

fn from_flex<const D: usize>(t: FlexTensor) -> Tensor<Flex, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// The tensor's values in logical (row-major) order, borrowed when already laid out so.
fn contiguous_f32(t: &FlexTensor) -> Cow<'_, [f32]> {
    match t.layout().contiguous_offsets() {
        Some((start, end)) => Cow::Borrowed(&t.storage::<f32>()[start..end]),
        None => Cow::Owned(
            t.to_contiguous()
                .into_data()
                .into_vec::<f32>()
                .unwrap_or_default(),
        ),
    }
}

/// Length of the packed panels of a `[out, in, kd, kh, kw]` weight (`pairs`: bf16 pairs of
/// input channels).
fn packed_len(dims: [usize; 5], pairs: bool) -> usize {
    let [out, cin, kd, kh, kw] = dims;
    let cin = if pairs { cin.div_ceil(2) } else { cin };
    conv3d::panels_width(out) * cin * kd * kh * kw
}

/// The microkernel's weight panels for an f32 weight tensor (any layout); with `pairs`, of
/// bf16 pairs of input channels (see [`bf16`]).
fn pack_conv_weights(weight: &FlexTensor, dims: [usize; 5], pairs: bool) -> Vec<f32> {
    let [out, cin, kd, kh, kw] = dims;
    let taps = kd * kh * kw;
    let k_major = k_major_weight(weight, dims);
    if pairs {
        bf16::pack_weights(&k_major, cin, taps, out)
    } else {
        conv3d::pack_panels(&k_major, cin * taps, out, &conv3d::panel_widths(out))
    }
}

/// The weight as `K x out` row-major values (`K = in * kd * kh * kw`), the order in which
/// [`conv3d::pack_panels`] reads it.
fn k_major_weight(weight: &FlexTensor, dims: [usize; 5]) -> Vec<f32> {
    let [out, rest @ ..] = dims;
    let k_len: usize = rest.iter().product();
    let logical = contiguous_f32(weight);
    let mut k_major = vec![0.0f32; logical.len()];
    for o in 0..out {
        for k in 0..k_len {
            k_major[k * out + o] = logical[o * k_len + k];
        }
    }
    k_major
}

impl NetworkOps for Flex {
    fn unet_activation_dtype(weights: DType) -> DType {
        // The bf16 kernel rounds its inputs itself: f32 activations avoid a cast per block.
        if weights == DType::BF16 && bf16::supported() {
            DType::F32
        } else {
            weights
        }
    }

    fn unet_pack_conv3d(params: &ConvParams<Flex>) -> Option<Tensor<Flex, 1>> {
        let dims = params.weight.dims();
        let packed = match params.weight.dtype() {
            DType::F32 => pack_conv_weights(&into_flex(params.weight.clone()), dims, false),
            DType::BF16 if bf16::supported() => {
                let weight = into_flex(params.weight.clone().cast(DType::F32));
                pack_conv_weights(&weight, dims, true)
            }
            _ => return None,
        };
        let len = packed.len();
        Some(from_flex(FlexTensor::from_data(TensorData::new(
            packed,
            [len],
        ))))
    }

    fn unet_conv3d(
        x: Tensor<Flex, 5>,
        params: &ConvParams<Flex>,
        stride: [usize; 3],
        padding: [usize; 3],
    ) -> Tensor<Flex, 5> {
        let [batch, in_channels, d, h, w] = x.dims();
        let dims = params.weight.dims();
        let [out_channels, weight_in, kd, kh, kw] = dims;
        // bf16 weights (`Precision::BF16`) select the reduced-precision kernel where the
        // processor has one; its inputs arrive in f32 (cast here) and are rounded to bf16.
        let reduced = params.weight.dtype() == DType::BF16 && bf16::supported();
        let weight_ok = params.weight.dtype() == DType::F32 || reduced;
        let bias_ok = params
            .bias
            .as_ref()
            .is_none_or(|b| b.dtype() == DType::F32 || (reduced && b.dtype() == DType::BF16));
        let x = if reduced { x.cast(DType::F32) } else { x };
        let geometry = ConvGeometry {
            batch,
            in_channels,
            out_channels,
            input: [d, h, w],
            kernel: [kd, kh, kw],
            stride,
            padding,
        };
        let fast = x.dtype() == DType::F32 && weight_ok && bias_ok && weight_in == in_channels;
        let Some(out_dims) = geometry.output().filter(|_| fast) else {
            return generic::conv3d(x, params, stride, padding);
        };
        // The panels packed at load time, else packed now (weights built outside a model).
        let packed_tensor = params.packed.clone().map(into_flex);
        let expected = packed_len(dims, reduced);
        let packed = match packed_tensor.as_ref().map(contiguous_f32) {
            Some(values) if values.len() == expected => values,
            _ => {
                let weight = if reduced {
                    params.weight.clone().cast(DType::F32)
                } else {
                    params.weight.clone()
                };
                Cow::Owned(pack_conv_weights(&into_flex(weight), dims, reduced))
            }
        };
        let input = into_flex(x);
        let input_values = contiguous_f32(&input);
        let bias = params.bias.clone().map(|b| into_flex(b.cast(DType::F32)));
        let bias_values = bias.as_ref().map(contiguous_f32);
        let output = if reduced {
            bf16::conv3d_bf16(&input_values, &packed, bias_values.as_deref(), &geometry)
        } else {
            conv3d_f32(
                &input_values,
                &packed,
                bias_values.as_deref(),
                &geometry,
                Kernel::detect(),
            )
        };
        let [od, oh, ow] = out_dims;
        from_flex(FlexTensor::from_data(TensorData::new(
            output,
            [batch, out_channels, od, oh, ow],
        )))
    }

    fn unet_conv_transpose3d(
        x: Tensor<Flex, 5>,
        params: &ConvParams<Flex>,
        stride: [usize; 3],
    ) -> Tensor<Flex, 5> {
        let dims = x.dims();
        let [batch, cin, d, h, w] = dims;
        let [weight_in, cout, sd, sh, sw] = params.weight.dims();
        // The reduced-precision mode's bf16 activations and weights run in f32 here (the
        // transposed convolutions are a small part of the work); the result keeps the
        // activations' dtype for the concatenation that follows.
        if params.weight.dtype() == DType::BF16 && bf16::supported() {
            let dtype = x.dtype();
            let as_f32 = ConvParams {
                packed: None,
                weight: params.weight.clone().cast(DType::F32),
                bias: params.bias.clone().map(|b| b.cast(DType::F32)),
            };
            return Self::unet_conv_transpose3d(x.cast(DType::F32), &as_f32, stride).cast(dtype);
        }
        let fast = x.dtype() == DType::F32
            && params.weight.dtype() == DType::F32
            && params.bias.as_ref().is_none_or(|b| b.dtype() == DType::F32)
            && weight_in == cin
            && [sd, sh, sw] == stride;
        if !fast {
            return generic::conv_transpose3d_by_stride(x, params, stride);
        }
        let input = into_flex(x);
        let weight = into_flex(params.weight.clone());
        let bias = params.bias.clone().map(|b| b.into_primitive().tensor());
        let output = conv_transpose3d_f32(
            &contiguous_f32(&input),
            &contiguous_f32(&weight),
            bias.as_ref().map(contiguous_f32).as_deref(),
            dims,
            cout,
            stride,
            Kernel::detect(),
        );
        from_flex(FlexTensor::from_data(TensorData::new(
            output,
            [batch, cout, d * sd, h * sh, w * sw],
        )))
    }

    fn unet_instance_norm(
        x: Tensor<Flex, 5>,
        norm: &NormParams<Flex>,
        negative_slope: Option<f64>,
    ) -> Tensor<Flex, 5> {
        let dims = x.dims();
        let [_, channels, d, h, w] = dims;
        let affine_f32 = norm
            .affine
            .as_ref()
            .is_none_or(|(s, b)| s.dtype() == DType::F32 && b.dtype() == DType::F32);
        if x.dtype() != DType::F32 || !affine_f32 {
            return generic::instance_norm_leaky_relu(x, norm, negative_slope);
        }
        let flex = into_flex(x);
        let mut values = match flex.layout().contiguous_offsets() {
            // Reuse the buffer when this tensor owns it exactly (the usual case: a conv output).
            Some((0, end)) if flex.is_unique() && flex.bytes().len() == end * 4 => {
                flex.into_data().into_vec::<f32>().unwrap_or_default()
            }
            _ => contiguous_f32(&flex).into_owned(),
        };
        let affine = norm.affine.as_ref().map(|(scale, shift)| {
            (
                contiguous_f32(&scale.clone().into_primitive().tensor()).into_owned(),
                contiguous_f32(&shift.clone().into_primitive().tensor()).into_owned(),
            )
        });
        norm::instance_norm_in_place(
            &mut values,
            d * h * w,
            w,
            channels,
            affine.as_ref().map(|(s, b)| (s.as_slice(), b.as_slice())),
            norm.eps,
            negative_slope.map(|s| s as f32),
        );
        from_flex(FlexTensor::from_data(TensorData::new(values, dims)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::backend::Backend;
    use burn::tensor::Distribution;
    use burn_flex::FlexDevice;

    fn random(shape: [usize; 5], seed: u64) -> Tensor<Flex, 5> {
        Flex::seed(&FlexDevice, seed);
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &FlexDevice)
    }

    fn max_abs_diff(a: Tensor<Flex, 5>, b: Tensor<Flex, 5>) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let a = a.into_data().into_vec::<f32>().expect("f32");
        let b = b.into_data().into_vec::<f32>().expect("f32");
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// (input dims, in, out, kernel, stride): the network's shapes plus odd sizes, channel
    /// counts that are not multiples of the 12-channel tile, and tiles spanning several rows.
    type Case = ([usize; 3], usize, usize, usize, [usize; 3]);
    const CASES: &[Case] = &[
        ([9, 10, 11], 1, 5, 3, [1, 1, 1]),
        ([8, 8, 40], 3, 12, 3, [1, 1, 1]),
        ([7, 9, 13], 4, 13, 3, [2, 2, 2]),
        ([6, 8, 10], 5, 7, 3, [1, 2, 2]),
        ([5, 6, 35], 2, 30, 3, [2, 1, 2]),
        ([4, 4, 4], 6, 25, 1, [1, 1, 1]),
        ([3, 5, 3], 16, 24, 3, [1, 1, 1]),
        ([2, 2, 2], 8, 4, 3, [2, 2, 2]),
        ([3, 4, 70], 3, 8, 3, [2, 2, 2]),
        ([2, 3, 64], 2, 20, 3, [1, 1, 1]),
        ([3, 4, 33], 40, 20, 3, [1, 1, 1]),
        ([2, 2, 40], 5, 64, 3, [1, 2, 2]),
    ];

    fn check_against_burn(kernel: Kernel) {
        for (i, &(dims, cin, cout, k, stride)) in CASES.iter().enumerate() {
            let seed = i as u64 * 10;
            let x = random([2, cin, dims[0], dims[1], dims[2]], seed);
            let weight = random([cout, cin, k, k, k], seed + 1);
            let bias: Tensor<Flex, 1> = random([1, 1, 1, 1, cout], seed + 2).reshape([cout]);
            let padding = [(k - 1) / 2; 3];
            let params = ConvParams {
                packed: None,
                weight: weight.clone(),
                bias: Some(bias.clone()),
            };
            let expected = generic::conv3d(x.clone(), &params, stride, padding);
            let geometry = ConvGeometry {
                batch: 2,
                in_channels: cin,
                out_channels: cout,
                input: dims,
                kernel: [k; 3],
                stride,
                padding,
            };
            let flex_x = into_flex(x.clone());
            let flex_w = into_flex(weight.clone());
            let flex_b = into_flex(bias.clone().reshape([1, 1, 1, 1, cout]));
            let out = conv3d_f32(
                &contiguous_f32(&flex_x),
                &pack_conv_weights(&flex_w, [cout, cin, k, k, k], false),
                Some(&contiguous_f32(&flex_b)),
                &geometry,
                kernel,
            );
            let out_dims = geometry.output().expect("valid geometry");
            let ours = from_flex(FlexTensor::from_data(TensorData::new(
                out,
                [2, cout, out_dims[0], out_dims[1], out_dims[2]],
            )));
            // f32 sums of K = in * 27 products in another order: relative tolerance.
            let scale = 1.0 + expected.clone().abs().max().into_scalar();
            let tolerance = 1e-5 * scale;
            let diff = max_abs_diff(ours, expected.clone());
            assert!(diff < tolerance, "case {i} ({kernel:?}): max diff {diff}");

            // Through the backend extension, packing the weights per call.
            let mut params = ConvParams {
                packed: None,
                weight,
                bias: Some(bias),
            };
            let via_trait = Flex::unet_conv3d(x.clone(), &params, stride, padding);
            let diff = max_abs_diff(via_trait, expected.clone());
            assert!(diff < tolerance, "case {i} via NetworkOps: max diff {diff}");
            // With the panels packed at load time, as the model layers do.
            params.packed = Flex::unet_pack_conv3d(&params);
            assert!(params.packed.is_some());
            let via_trait = Flex::unet_conv3d(x.clone(), &params, stride, padding);
            let diff = max_abs_diff(via_trait, expected);
            assert!(diff < tolerance, "case {i} via NetworkOps: max diff {diff}");
        }
    }

    #[test]
    fn portable_conv3d_matches_burn() {
        check_against_burn(Kernel::Portable);
    }

    #[test]
    fn avx2_conv3d_matches_burn() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            check_against_burn(Kernel::Avx2);
        }
    }

    #[test]
    fn detected_conv3d_matches_burn() {
        // Avx512 where the processor has it (this machine does), else Portable again.
        check_against_burn(Kernel::detect());
    }

    #[test]
    fn conv_transpose_matches_burn() {
        // (input dims, in, out, stride): tiles that wrap rows, a partial last tile, channel
        // products that are not multiples of 4, anisotropic strides.
        let cases: &[([usize; 3], usize, usize, [usize; 3])] = &[
            ([4, 4, 4], 8, 6, [2, 2, 2]),
            ([3, 5, 7], 5, 3, [2, 2, 2]),
            ([2, 3, 40], 4, 5, [1, 2, 2]),
            ([2, 2, 3], 3, 7, [1, 1, 1]),
        ];
        for (i, &(dims, cin, cout, stride)) in cases.iter().enumerate() {
            let x = random([2, cin, dims[0], dims[1], dims[2]], 20 + i as u64);
            let params = ConvParams {
                packed: None,
                weight: random([cin, cout, stride[0], stride[1], stride[2]], 30 + i as u64),
                bias: Some(random([1, 1, 1, 1, cout], 40 + i as u64).reshape([cout])),
            };
            let burn_reference = burn::tensor::module::conv_transpose3d(
                x.clone(),
                params.weight.clone(),
                params.bias.clone(),
                burn::tensor::ops::ConvTransposeOptions::new(stride, [0; 3], [0; 3], [1; 3], 1),
            );
            let generic = generic::conv_transpose3d_by_stride(x.clone(), &params, stride);
            let ours = Flex::unet_conv_transpose3d(x, &params, stride);
            let diff = max_abs_diff(ours, burn_reference.clone());
            assert!(diff < 1e-4, "case {i}: ours vs burn {diff}");
            let diff = max_abs_diff(generic, burn_reference);
            assert!(diff < 1e-4, "case {i}: generic vs burn {diff}");
        }
    }

    #[test]
    fn instance_norm_matches_generic_path() {
        let x = random([2, 3, 5, 6, 7], 7);
        let scale = random([1, 1, 1, 1, 3], 8).reshape([3]);
        let shift = random([1, 1, 1, 1, 3], 9).reshape([3]);
        for affine in [None, Some((scale, shift))] {
            for slope in [None, Some(0.01)] {
                let norm = NormParams {
                    affine: affine.clone(),
                    eps: 1e-5,
                };
                let expected = generic::instance_norm_leaky_relu(x.clone(), &norm, slope);
                let ours = Flex::unet_instance_norm(x.clone(), &norm, slope);
                let diff = max_abs_diff(ours, expected);
                assert!(
                    diff < 1e-5,
                    "affine {} slope {slope:?}: {diff}",
                    norm.affine.is_some()
                );
            }
        }
    }

    #[test]
    fn bf16_convolution_matches_f32_within_bf16_rounding() {
        if !bf16::supported() {
            return; // nothing to test on a processor without AVX-512 BF16
        }
        for (i, &(dims, cin, cout, k, stride)) in CASES.iter().enumerate() {
            let x = random([2, cin, dims[0], dims[1], dims[2]], 50 + i as u64);
            let f32_params = ConvParams {
                packed: None,
                weight: random([cout, cin, k, k, k], 60 + i as u64),
                bias: Some(random([1, 1, 1, 1, cout], 70 + i as u64).reshape([cout])),
            };
            let padding = [(k - 1) / 2; 3];
            let bf16_params = ConvParams {
                packed: None,
                weight: f32_params.weight.clone().cast(DType::BF16),
                bias: f32_params.bias.clone().map(|b| b.cast(DType::BF16)),
            };
            // Reference: the same bf16-rounded values, multiplied and summed in f32.
            let rounded = ConvParams {
                packed: None,
                weight: bf16_params.weight.clone().cast(DType::F32),
                bias: bf16_params.bias.clone().map(|b| b.cast(DType::F32)),
            };
            // Inputs already on the bf16 grid, so that both sides see the same values (Burn's
            // own cast and `half`'s may round exact ties differently).
            let x_rounded = x.clone().cast(DType::BF16).cast(DType::F32);
            let expected = generic::conv3d(x_rounded.clone(), &rounded, stride, padding);
            let ours = Flex::unet_conv3d(x_rounded.clone(), &bf16_params, stride, padding);
            assert_eq!(ours.dtype(), DType::F32);
            let packed_params = ConvParams {
                packed: Flex::unet_pack_conv3d(&bf16_params),
                ..bf16_params.clone()
            };
            let with_packed = Flex::unet_conv3d(x_rounded, &packed_params, stride, padding);
            assert_eq!(max_abs_diff(with_packed, ours.clone()), 0.0);
            let scale = 1.0 + expected.clone().abs().max().into_scalar();
            let diff = max_abs_diff(ours, expected);
            assert!(
                diff < 1e-5 * scale,
                "case {i}: bf16 kernel vs rounded f32 {diff}"
            );
        }
    }

    #[test]
    fn non_f32_inputs_take_the_generic_path() {
        let x = random([1, 2, 4, 4, 4], 3);
        let weight = random([3, 2, 3, 3, 3], 4);
        let params = ConvParams {
            packed: None,
            weight,
            bias: None,
        };
        let expected = generic::conv3d(x.clone(), &params, [1; 3], [1; 3]);
        let half = ConvParams {
            packed: None,
            weight: params.weight.clone().cast(DType::F16),
            bias: None,
        };
        let ours = Flex::unet_conv3d(x.cast(DType::F16), &half, [1; 3], [1; 3]).cast(DType::F32);
        assert!(max_abs_diff(ours, expected) < 0.1);
    }
}
