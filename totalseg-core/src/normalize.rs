//! nnU-Net's intensity normalisation schemes
//! (preprocessing/normalization/default_normalization_schemes.py), float32 like nnU-Net.
//!
//! Every function works on one channel in place, any dimensionality; reductions (means,
//! standard deviations) run over the array's logical C order, as NumPy's do on nnU-Net's
//! C-contiguous arrays.

use ndarray::{ArrayBase, ArrayView, DataMut, Dimension, Zip};
use serde::Deserialize;

use crate::pairwise_sum::pairwise_sum;

/// `eps` of nnU-Net's schemes for a float32 target.
const EPS: f32 = 1e-8;

/// What went wrong normalising.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// A normalisation scheme name from plans.json that nnU-Net does not define.
    #[error("unknown normalisation scheme '{0}' (expected CTNormalization, ZScoreNormalization, NoNormalization, RescaleTo01Normalization or RGBTo01Normalization)")]
    UnknownScheme(String),
    /// CTNormalization needs `foreground_intensity_properties_per_channel`.
    #[error("CTNormalization needs the channel's foreground intensity properties")]
    MissingIntensityProperties,
    /// `use_mask_for_norm` without a mask.
    #[error("use_mask_for_norm is set but no non-zero mask was given")]
    MissingMask,
    /// Mask and image shapes differ.
    #[error("mask shape {mask:?} differs from image shape {image:?}")]
    MaskShapeMismatch {
        /// Image shape.
        image: Vec<usize>,
        /// Mask shape.
        mask: Vec<usize>,
    },
    /// RGBTo01Normalization requires values in [0, 255].
    #[error("RGBTo01Normalization expects values in [0, 255], found range [{min}, {max}]")]
    NotRgb {
        /// Smallest value.
        min: f32,
        /// Largest value.
        max: f32,
    },
}

/// One channel's entry of plans.json `foreground_intensity_properties_per_channel`
/// (other keys such as `median`, `min`, `max` are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct IntensityProperties {
    /// Mean foreground intensity.
    pub mean: f64,
    /// Standard deviation of the foreground intensity.
    pub std: f64,
    /// 0.5th percentile: lower clip bound.
    pub percentile_00_5: f64,
    /// 99.5th percentile: upper clip bound.
    pub percentile_99_5: f64,
}

/// A normalisation scheme named in plans.json `normalization_schemes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormalizationScheme {
    /// `CTNormalization`: clip to the dataset percentiles, then dataset z-score.
    Ct,
    /// `ZScoreNormalization`: per-image z-score (optionally within the non-zero mask).
    ZScore,
    /// `NoNormalization`: cast to float32 only.
    None,
    /// `RescaleTo01Normalization`: min-max to [0, 1].
    RescaleTo01,
    /// `RGBTo01Normalization`: divide by 255.
    RgbTo01,
}

impl NormalizationScheme {
    /// Parses nnU-Net's class name.
    pub fn from_plans_name(name: &str) -> Result<Self, NormalizeError> {
        match name {
            "CTNormalization" => Ok(Self::Ct),
            "ZScoreNormalization" => Ok(Self::ZScore),
            "NoNormalization" => Ok(Self::None),
            "RescaleTo01Normalization" => Ok(Self::RescaleTo01),
            "RGBTo01Normalization" => Ok(Self::RgbTo01),
            other => Err(NormalizeError::UnknownScheme(other.to_string())),
        }
    }
}

/// nnU-Net's `CTNormalization.run`: `np.clip(image, p00_5, p99_5)`, `image -= mean`,
/// `image /= max(std, 1e-8)`, all in float32 with the float64 plan values rounded to
/// float32 first (NumPy's scalar casting), exactly as nnU-Net computes it.
///
/// ```
/// use ndarray::array;
/// use totalseg_core::normalize::{ct_normalize, IntensityProperties};
/// let props = IntensityProperties { mean: 100.0, std: 50.0, percentile_00_5: -1000.0, percentile_99_5: 1000.0 };
/// let mut image = array![-2000.0f32, 100.0, 150.0];
/// ct_normalize(&mut image, &props);
/// assert_eq!(image.to_vec(), vec![-22.0, 0.0, 1.0]);
/// ```
pub fn ct_normalize<S, D>(image: &mut ArrayBase<S, D>, props: &IntensityProperties)
where
    S: DataMut<Elem = f32>,
    D: Dimension,
{
    let lower = props.percentile_00_5 as f32;
    let upper = props.percentile_99_5 as f32;
    let mean = props.mean as f32;
    // Python `max(std, 1e-8)` on the float64 plan value, then NumPy casts it to float32.
    let std = props.std.max(1e-8) as f32;
    image.map_inplace(|v| {
        let clipped = numpy_clip(*v, lower, upper);
        *v = (clipped - mean) / std;
    });
}

/// NumPy's float clip: `min(max(x, lo), hi)` with NaN passing through.
fn numpy_clip(x: f32, lower: f32, upper: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let raised = if x > lower { x } else { lower };
    if raised < upper {
        raised
    } else {
        upper
    }
}

/// NumPy's float32 `mean()` and `std()` of values in C order: pairwise float32 sums, the
/// division by the count in float64, rounded back to float32.
fn numpy_mean_std(values: &[f32]) -> (f32, f32) {
    let n = values.len() as f64;
    let mean = (f64::from(pairwise_sum(values)) / n) as f32;
    let squares: Vec<f32> = values
        .iter()
        .map(|&v| {
            let d = v - mean;
            d * d
        })
        .collect();
    let variance = (f64::from(pairwise_sum(&squares)) / n) as f32;
    (mean, variance.sqrt())
}

/// nnU-Net's `ZScoreNormalization.run`. Without a mask: subtract the image mean and divide
/// by `max(std, 1e-8)`. With `mask` (nnU-Net's `seg >= 0`, the non-zero mask, when
/// `use_mask_for_norm` is true): statistics and normalisation only inside the mask, other
/// voxels unchanged. An empty mask changes nothing (NumPy's NaN statistics touch no voxel).
pub fn zscore_normalize<S, D>(
    image: &mut ArrayBase<S, D>,
    mask: Option<ArrayView<bool, D>>,
) -> Result<(), NormalizeError>
where
    S: DataMut<Elem = f32>,
    D: Dimension,
{
    match mask {
        None => {
            let values: Vec<f32> = image.iter().copied().collect();
            if values.is_empty() {
                return Ok(());
            }
            let (mean, std) = numpy_mean_std(&values);
            let divisor = if EPS > std { EPS } else { std };
            image.map_inplace(|v| *v = (*v - mean) / divisor);
        }
        Some(mask) => {
            if mask.shape() != image.shape() {
                return Err(NormalizeError::MaskShapeMismatch {
                    image: image.shape().to_vec(),
                    mask: mask.shape().to_vec(),
                });
            }
            let values: Vec<f32> = image
                .iter()
                .zip(mask.iter())
                .filter_map(|(&v, &m)| m.then_some(v))
                .collect();
            if values.is_empty() {
                return Ok(());
            }
            let (mean, std) = numpy_mean_std(&values);
            let divisor = if EPS > std { EPS } else { std };
            Zip::from(image).and(&mask).for_each(|v, &m| {
                if m {
                    *v = (*v - mean) / divisor;
                }
            });
        }
    }
    Ok(())
}

/// nnU-Net's `RescaleTo01Normalization.run`: `image -= min`, `image /= max(max, 1e-8)`.
pub fn rescale_to_01<S, D>(image: &mut ArrayBase<S, D>)
where
    S: DataMut<Elem = f32>,
    D: Dimension,
{
    let min = image.iter().copied().fold(f32::INFINITY, f32::min);
    image.map_inplace(|v| *v -= min);
    let max = image.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let divisor = if max < EPS { EPS } else { max };
    image.map_inplace(|v| *v /= divisor);
}

/// nnU-Net's `RGBTo01Normalization.run`: checks the range [0, 255], divides by 255.
pub fn rgb_to_01<S, D>(image: &mut ArrayBase<S, D>) -> Result<(), NormalizeError>
where
    S: DataMut<Elem = f32>,
    D: Dimension,
{
    let min = image.iter().copied().fold(f32::INFINITY, f32::min);
    let max = image.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if min < 0.0 || max > 255.0 {
        return Err(NormalizeError::NotRgb { min, max });
    }
    image.map_inplace(|v| *v /= 255.0);
    Ok(())
}

/// Applies one channel's scheme as nnU-Net's `DefaultPreprocessor._normalize` does.
///
/// `nonzero_mask` is `seg[0] >= 0` from [`crate::nonzero_crop::crop_to_nonzero`]; only
/// [`NormalizationScheme::ZScore`] uses it, and only when `use_mask_for_norm` is true.
pub fn normalize_channel<S, D>(
    image: &mut ArrayBase<S, D>,
    scheme: NormalizationScheme,
    properties: Option<&IntensityProperties>,
    use_mask_for_norm: bool,
    nonzero_mask: Option<ArrayView<bool, D>>,
) -> Result<(), NormalizeError>
where
    S: DataMut<Elem = f32>,
    D: Dimension,
{
    match scheme {
        NormalizationScheme::Ct => {
            let props = properties.ok_or(NormalizeError::MissingIntensityProperties)?;
            ct_normalize(image, props);
            Ok(())
        }
        NormalizationScheme::ZScore => {
            if use_mask_for_norm {
                let mask = nonzero_mask.ok_or(NormalizeError::MissingMask)?;
                zscore_normalize(image, Some(mask))
            } else {
                zscore_normalize(image, None)
            }
        }
        NormalizationScheme::None => Ok(()),
        NormalizationScheme::RescaleTo01 => {
            rescale_to_01(image);
            Ok(())
        }
        NormalizationScheme::RgbTo01 => rgb_to_01(image),
    }
}
