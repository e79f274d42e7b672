//! nnU-Net's gaussian importance map (`compute_gaussian`), reproduced bit for bit.

use half::f16;
use ndarray::Array3;

use crate::pairwise_sum::pairwise_sum;

/// nnU-Net's `sigma_scale`: sigma = patch size / 8 on every axis.
pub const DEFAULT_SIGMA_SCALE: f64 = 1.0 / 8.0;
/// nnU-Net's `value_scaling_factor` at inference: the map's maximum is 10.
pub const DEFAULT_VALUE_SCALING_FACTOR: f64 = 10.0;
/// scipy's default `truncate` of `gaussian_filter`: the kernel reaches 4 sigma.
pub const GAUSSIAN_TRUNCATE: f64 = 4.0;

/// scipy's `_gaussian_kernel1d(sigma, order=0, radius)`: `exp(-0.5 / sigma^2 * x^2)` for
/// `x in -radius..=radius`, divided by its (NumPy pairwise) sum. Length `2 * radius + 1`.
///
/// ```
/// use totalseg_core::sliding_window::gaussian_kernel_1d;
/// let k = gaussian_kernel_1d(2.0, 8);
/// assert_eq!(k.len(), 17);
/// assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
/// ```
pub fn gaussian_kernel_1d(sigma: f64, radius: usize) -> Vec<f64> {
    let factor = -0.5 / (sigma * sigma);
    let r = radius as i64;
    let phi: Vec<f64> = (-r..=r).map(|x| (factor * (x * x) as f64).exp()).collect();
    let sum = pairwise_sum(&phi);
    phi.into_iter().map(|v| v / sum).collect()
}

/// The 1-D profile that `gaussian_filter1d(mode="constant", cval=0)` makes of a delta at
/// `size / 2`: the kernel centred there, zero beyond its radius.
fn filtered_delta_profile(size: usize, sigma: f64) -> Vec<f64> {
    // scipy: lw = int(truncate * sd + 0.5)
    let radius = (GAUSSIAN_TRUNCATE * sigma + 0.5) as usize;
    let kernel = gaussian_kernel_1d(sigma, radius);
    let centre = size / 2;
    (0..size)
        .map(|i| {
            let offset = i as i64 - centre as i64;
            if offset.unsigned_abs() as usize <= radius {
                kernel[(offset + radius as i64) as usize]
            } else {
                0.0
            }
        })
        .collect()
}

/// nnU-Net's importance map with its defaults (sigma = patch / 8, maximum 10), in fp16.
///
/// ```
/// use totalseg_core::sliding_window::gaussian_importance_map;
/// let g = gaussian_importance_map([16, 8, 12]);
/// assert_eq!(g[[8, 4, 6]].to_f32(), 10.0);
/// assert!(g.iter().all(|v| v.to_f32() > 0.0));
/// ```
pub fn gaussian_importance_map(patch_size: [usize; 3]) -> Array3<f16> {
    gaussian_importance_map_with(
        patch_size,
        DEFAULT_SIGMA_SCALE,
        DEFAULT_VALUE_SCALING_FACTOR,
    )
}

/// `compute_gaussian(patch_size, sigma_scale, value_scaling_factor, dtype=torch.float16)`.
///
/// nnU-Net filters a delta at index `size // 2` with scipy's `gaussian_filter` (sigma =
/// `size * sigma_scale`, mode constant, truncate 4) in float64, divides by
/// `max / value_scaling_factor`, converts to fp16 (through float32, as `torch` does) and
/// replaces the zeros (underflow far from the centre) by the smallest non-zero value.
///
/// Separable filtering of a delta is exact up to one rounding per product: after the
/// pass along axis 0 the line holds the kernel itself, each later pass multiplies by one
/// kernel weight. So `map[i, j, k] = (g0[i] * g1[j]) * g2[k]` in float64 equals scipy's
/// result bit for bit without running the full convolution.
pub fn gaussian_importance_map_with(
    patch_size: [usize; 3],
    sigma_scale: f64,
    value_scaling_factor: f64,
) -> Array3<f16> {
    let profiles: [Vec<f64>; 3] = std::array::from_fn(|a| {
        filtered_delta_profile(patch_size[a], patch_size[a] as f64 * sigma_scale)
    });
    let [p0, p1, p2] = patch_size;
    let values = Array3::from_shape_fn((p0, p1, p2), |(i, j, k)| {
        (profiles[0][i] * profiles[1][j]) * profiles[2][k]
    });
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let divisor = max / value_scaling_factor;
    // torch converts float64 -> float16 through float32.
    let mut map = values.mapv(|v| f16::from_f32((v / divisor) as f32));
    let smallest_nonzero = map
        .iter()
        .copied()
        .filter(|v| *v != f16::ZERO)
        .fold(f16::INFINITY, f16::min);
    map.mapv_inplace(|v| if v == f16::ZERO { smallest_nonzero } else { v });
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_is_symmetric_around_centre() {
        let p = filtered_delta_profile(9, 1.125);
        for d in 1..=4 {
            assert_eq!(p[4 - d], p[4 + d]);
        }
    }

    #[test]
    fn even_patch_peaks_at_half_size() {
        let g = gaussian_importance_map([8, 8, 8]);
        assert_eq!(g[[4, 4, 4]].to_f32(), 10.0);
        assert!(g[[3, 4, 4]] < g[[4, 4, 4]]);
        assert_eq!(g[[3, 4, 4]], g[[5, 4, 4]]);
    }
}
