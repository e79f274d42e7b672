//! The opt-in reduced-precision CPU convolution (`Precision::BF16` on the CPU backend, where
//! the processor has AVX-512 BF16): inputs and weights rounded to bf16, products summed in
//! f32 by `vdpbf16ps`, which does twice the multiply-adds of an f32 FMA per instruction.
//!
//! It reuses the f32 convolution's tiling unchanged by packing two input channels into one
//! 32-bit value: the input becomes `[n, ceil(in / 2), d, h, w]` of bf16 pairs `(2p, 2p + 1)`
//! and the weights `[ceil(in / 2) * taps, out]` of pairs, so every row pointer, gather and
//! zero fill of `conv3d_f32` moves pairs; only the microkernel multiplies them as bf16.

use rayon::prelude::*;

use super::conv3d::{conv3d_f32, pack_panels, panel_widths, ConvGeometry};
use super::microkernel::Kernel;

/// Whether this processor runs the bf16 kernel (x86-64 with AVX-512F and AVX-512 BF16).
pub(crate) fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `x` rounded to the nearest bf16, ties to even (what PyTorch's and Burn's casts do); NaN
/// stays NaN.
pub(crate) fn bf16_bits(x: f32) -> u16 {
    half::bf16::from_f32(x).to_bits()
}

/// Two bf16 values as one 32-bit word, `low` first in memory (the lower half of the lane,
/// which `vdpbf16ps` pairs with the lower half of the weight's lane).
fn pair(low: f32, high: f32) -> f32 {
    f32::from_bits(u32::from(bf16_bits(low)) | (u32::from(bf16_bits(high)) << 16))
}

/// `[n, c, voxels]` f32 -> `[n, ceil(c / 2), voxels]` of bf16 pairs (a zero channel pads an
/// odd count).
fn pair_channels(input: &[f32], batch: usize, channels: usize, voxels: usize) -> Vec<f32> {
    let pairs = channels.div_ceil(2);
    let mut out = vec![0.0f32; batch * pairs * voxels];
    out.par_chunks_mut(voxels.max(1))
        .enumerate()
        .for_each(|(index, dst)| {
            let (n, p) = (index / pairs, index % pairs);
            let low = &input[(n * channels + 2 * p) * voxels..][..voxels];
            let high = (2 * p + 1 < channels)
                .then(|| &input[(n * channels + 2 * p + 1) * voxels..][..voxels]);
            for (i, d) in dst.iter_mut().enumerate() {
                *d = pair(low[i], high.map_or(0.0, |h| h[i]));
            }
        });
    out
}

/// `[in * taps, out]` (K-major) f32 weights -> `[ceil(in / 2) * taps, out]` pairs: row
/// `(p, tap)` pairs the rows of channels `2p` and `2p + 1`.
fn pair_weights(weight_k_major: &[f32], channels: usize, taps: usize, out: usize) -> Vec<f32> {
    let pairs = channels.div_ceil(2);
    let mut packed = vec![0.0f32; pairs * taps * out];
    for p in 0..pairs {
        for t in 0..taps {
            let low = &weight_k_major[((2 * p) * taps + t) * out..][..out];
            let high = (2 * p + 1 < channels)
                .then(|| &weight_k_major[((2 * p + 1) * taps + t) * out..][..out]);
            let dst = &mut packed[(p * taps + t) * out..][..out];
            for (o, d) in dst.iter_mut().enumerate() {
                *d = pair(low[o], high.map_or(0.0, |h| h[o]));
            }
        }
    }
    packed
}

/// The microkernel's panels of bf16 weight pairs for `K x out` (K-major) f32 weights.
pub(crate) fn pack_weights(
    weight_k_major: &[f32],
    channels: usize,
    taps: usize,
    out: usize,
) -> Vec<f32> {
    let pairs = pair_weights(weight_k_major, channels, taps, out);
    pack_panels(&pairs, channels.div_ceil(2) * taps, out, &panel_widths(out))
}

/// `conv3d_f32` with inputs rounded to bf16, weights packed by [`pack_weights`] and f32
/// accumulation. The caller checks [`supported`].
pub(crate) fn conv3d_bf16(
    input: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    geometry: &ConvGeometry,
) -> Vec<f32> {
    let g = *geometry;
    let voxels: usize = g.input.iter().product();
    let inputs = pair_channels(input, g.batch, g.in_channels, voxels);
    let paired = ConvGeometry {
        in_channels: g.in_channels.div_ceil(2),
        ..g
    };
    conv3d_f32(&inputs, packed, bias, &paired, Kernel::Avx512Bf16)
}
