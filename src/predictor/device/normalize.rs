//! Intensity normalisation on the device: the GPU path uploads the raw crop once and
//! normalises it there, so the host neither makes nor sends a normalised copy.
//!
//! Only the schemes that need no statistics of the image run here: CT normalisation (clip
//! to the plans' 0.5 and 99.5 percentiles, subtract the mean, divide by the std: three
//! separately rounded f32 operations, as NumPy and the host's
//! [`ct_normalize`](totalseg_core::normalize::ct_normalize) do) and none. Z-scoring needs the
//! image's own mean and std and stays on the host, as do the rescaling schemes.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use totalseg_core::normalize::NormalizationScheme;

use crate::error::SegmentError;
use crate::predictor::ChannelNormalization;

/// Whether every channel's normalisation can run on the device ([`normalize_on_device`]).
///
/// ```
/// use totalseg_core::normalize::{IntensityProperties, NormalizationScheme};
/// use totalsegmentator::predictor::device::normalizes_on_device;
/// use totalsegmentator::predictor::ChannelNormalization;
/// let channel = |scheme| ChannelNormalization { scheme, properties: None, use_mask_for_norm: false };
/// assert!(normalizes_on_device(&[channel(NormalizationScheme::Ct)]));
/// assert!(!normalizes_on_device(&[channel(NormalizationScheme::ZScore)]));
/// ```
pub fn normalizes_on_device(channels: &[ChannelNormalization]) -> bool {
    channels.iter().all(|c| {
        matches!(
            c.scheme,
            NormalizationScheme::Ct | NormalizationScheme::None
        )
    })
}

/// Normalises each channel of the f32 image `[channels, d0, d1, d2]` on its device.
pub fn normalize_on_device<B: Backend>(
    image: Tensor<B, 4>,
    channels: &[ChannelNormalization],
) -> Result<Tensor<B, 4>, SegmentError> {
    let [count, d0, d1, d2] = image.dims();
    if count != channels.len() {
        return Err(SegmentError::Model(format!(
            "the image has {count} channel(s), the model normalises {}",
            channels.len()
        )));
    }
    let normalized = channels
        .iter()
        .enumerate()
        .map(|(c, norm)| {
            let channel = image.clone().slice([c..c + 1, 0..d0, 0..d1, 0..d2]);
            match norm.scheme {
                NormalizationScheme::None => Ok(channel),
                NormalizationScheme::Ct => {
                    let props = norm.properties.as_ref().ok_or_else(|| {
                        SegmentError::Model(
                            "CT normalisation without intensity properties in the plans".into(),
                        )
                    })?;
                    // The host's f32 constants: the plan's float64 values cast once, the std
                    // after Python's `max(std, 1e-8)`.
                    let lower = props.percentile_00_5 as f32;
                    let upper = props.percentile_99_5 as f32;
                    let mean = props.mean as f32;
                    let std = props.std.max(1e-8) as f32;
                    Ok(channel.clamp(lower, upper).sub_scalar(mean).div_scalar(std))
                }
                other => Err(SegmentError::Model(format!(
                    "{other:?} normalisation runs on the host, not on the device"
                ))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tensor::cat(normalized, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{DType, TensorData};
    use burn_flex::{Flex, FlexDevice};
    use ndarray::Array4;
    use totalseg_core::normalize::{ct_normalize, IntensityProperties};

    /// Bit-identical to the host's `ct_normalize` on values around, at and beyond both
    /// percentiles, with a std whose reciprocal is inexact (a multiply would differ).
    #[test]
    fn ct_normalisation_on_the_device_is_bit_identical_to_the_host() {
        let props = IntensityProperties {
            mean: 88.4127,
            std: 152.77,
            percentile_00_5: -968.0,
            percentile_99_5: 1203.4,
        };
        let shape = (2, 7, 9, 11);
        let mut state = 12345u32;
        let raw = Array4::from_shape_fn(shape, |(c, i, _, _)| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let v = (state >> 8) as f32 / (1 << 24) as f32 * 3000.0 - 1500.0;
            match (c, i) {
                (_, 0) => -968.0,
                (_, 1) => 1203.4,
                (1, _) => v.round(),
                _ => v,
            }
        });
        let channels = vec![
            ChannelNormalization {
                scheme: NormalizationScheme::Ct,
                properties: Some(props),
                use_mask_for_norm: false,
            };
            2
        ];
        let mut host = raw.clone();
        ct_normalize(&mut host, &props);
        let data = TensorData::new(raw.iter().copied().collect::<Vec<f32>>(), raw.shape());
        let tensor = Tensor::<Flex, 4>::from_data(data, (&FlexDevice, DType::F32));
        let device = normalize_on_device(tensor, &channels)
            .expect("normalised")
            .into_data()
            .into_vec::<f32>()
            .expect("f32");
        let differing = host
            .iter()
            .zip(&device)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(differing, 0, "of {} values", device.len());
    }

    #[test]
    fn schemes_needing_image_statistics_are_refused() {
        let channels = [ChannelNormalization {
            scheme: NormalizationScheme::ZScore,
            properties: None,
            use_mask_for_norm: false,
        }];
        let tensor = Tensor::<Flex, 4>::zeros([1, 2, 2, 2], &FlexDevice);
        let err = normalize_on_device(tensor, &channels).expect_err("z-score stays on the host");
        assert!(err.to_string().contains("runs on the host"), "{err}");
    }
}
