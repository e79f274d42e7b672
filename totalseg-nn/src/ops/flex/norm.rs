//! InstanceNorm (+ LeakyReLU) over contiguous f32 NCDHW data, one `(n, c)` plane per task.
//!
//! Same arithmetic as the generic path (and PyTorch's CPU kernel): sums of each contiguous
//! row of `w` values in (16 lanes of) f32, the row sums accumulated in f64; the variance from the centred
//! values (two passes), not from `E[x^2] - mean^2`.

use rayon::prelude::*;

/// Normalises every plane of `data` (`planes` of `plane_len` values, row length `row_len`) in
/// place: `(x - mean) / sqrt(var + eps) * scale[c] + shift[c]`, then `LeakyReLU(slope)`.
/// `affine` holds per-channel `(scale, shift)`; plane `p` is channel `p % channels`.
pub(crate) fn instance_norm_in_place(
    data: &mut [f32],
    plane_len: usize,
    row_len: usize,
    channels: usize,
    affine: Option<(&[f32], &[f32])>,
    eps: f64,
    negative_slope: Option<f32>,
) {
    if plane_len == 0 || row_len == 0 {
        return;
    }
    data.par_chunks_mut(plane_len)
        .enumerate()
        .for_each(|(p, plane)| {
            let c = p % channels;
            let count = plane_len as f64;
            let mean = plane
                .chunks(row_len)
                .map(|row| lane_sum(row, |x| x))
                .sum::<f64>()
                / count;
            let mean32 = mean as f32;
            let variance = plane
                .chunks(row_len)
                .map(|row| {
                    lane_sum(row, |x| {
                        let d = x - mean32;
                        d * d
                    })
                })
                .sum::<f64>()
                / count;
            let inv_std = 1.0 / ((variance as f32) + eps as f32).sqrt();
            let (factor, shift) = match affine {
                Some((scale, shift)) => (inv_std * scale[c], shift[c]),
                None => (inv_std, 0.0),
            };
            match negative_slope {
                Some(slope) => plane.iter_mut().for_each(|x| {
                    let y = (*x - mean32) * factor + shift;
                    *x = if y >= 0.0 { y } else { y * slope };
                }),
                None => plane
                    .iter_mut()
                    .for_each(|x| *x = (*x - mean32) * factor + shift),
            }
        });
}

/// `sum(f(x))` over one row: 16 f32 lanes (each adds at most `len / 16` values, so the
/// rounding stays small and the loop vectorises), the lanes added in f64.
fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    const LANES: usize = 16;
    let mut lanes = [0.0f32; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f(x);
        }
    }
    let tail: f64 = rest.iter().map(|&x| f64::from(f(x))).sum();
    lanes.iter().map(|&l| f64::from(l)).sum::<f64>() + tail
}
