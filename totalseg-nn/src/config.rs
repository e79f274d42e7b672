//! `model.json`: the description of a converted nnU-Net model (docs/model-format.md).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::NnError;

/// The `format` value every `model.json` and `model.safetensors` carries.
pub const MODEL_FORMAT: &str = "totalseg-model";
/// The format version this crate reads.
pub const MODEL_FORMAT_VERSION: u32 = 1;

/// The contents of `model.json`, as written by `weights-converter`.
///
/// Sizes and spacings are in nnU-Net's axis order (after `transpose_forward`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// Always [`MODEL_FORMAT_VERSION`].
    pub format_version: u32,
    /// Where the model came from (folder, checkpoints and their hashes); informational.
    #[serde(default)]
    pub source: serde_json::Value,
    /// nnU-Net dataset name, e.g. `Dataset291_TotalSegmentator_part1_organs_1559subj`.
    pub dataset_name: String,
    /// nnU-Net trainer class the model was trained with.
    pub trainer: String,
    /// nnU-Net plans identifier, e.g. `nnUNetPlans`.
    pub plans_name: String,
    /// nnU-Net configuration, e.g. `3d_fullres`.
    pub configuration: String,
    /// The folds stored in `model.safetensors` (tensor prefix `fold_<k>.`).
    pub folds: Vec<u32>,
    /// Element type of the tensors in `model.safetensors`.
    pub dtype: WeightDtype,
    /// The network; `None` only for an invalid file (reported as [`NnError::MissingArchitecture`]).
    #[serde(default)]
    pub architecture: Option<ArchitectureConfig>,
    /// Network input patch size in voxels.
    pub patch_size: Vec<usize>,
    /// Voxel spacing the model works at (mm).
    pub spacing: Vec<f64>,
    /// Axis permutation applied to the image before the network.
    pub transpose_forward: Vec<usize>,
    /// Axis permutation undoing `transpose_forward`.
    pub transpose_backward: Vec<usize>,
    /// Intensity normalisation per input channel, e.g. `CTNormalization`.
    pub normalization_schemes: Vec<String>,
    /// Whether each channel's normalisation is restricted to the nonzero mask.
    pub use_mask_for_norm: Vec<bool>,
    /// Foreground intensity statistics per input channel (keys `"0"`, `"1"`, ...).
    pub foreground_intensity_properties_per_channel: BTreeMap<String, IntensityProperties>,
    /// nnU-Net resampling functions and their arguments, verbatim.
    #[serde(default)]
    pub resampling: serde_json::Value,
    /// Axes nnU-Net may mirror for test-time augmentation (`null` when the checkpoint has none).
    #[serde(default)]
    pub inference_allowed_mirroring_axes: Option<Vec<usize>>,
    /// Label name to value (region-based models map a name to a list of labels).
    pub labels: BTreeMap<String, LabelValue>,
    /// Input channel index (as a string) to channel name.
    pub channel_names: BTreeMap<String, String>,
    /// The original `plans.json`, verbatim.
    #[serde(default)]
    pub plans: serde_json::Value,
    /// The original `dataset.json`, verbatim.
    #[serde(default)]
    pub dataset_json: serde_json::Value,
}

/// The element type of the tensors in `model.safetensors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDtype {
    /// 32-bit floats (the converter's default).
    F32,
    /// 16-bit IEEE floats.
    F16,
}

/// One entry of `foreground_intensity_properties_per_channel`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntensityProperties {
    /// Mean foreground intensity.
    pub mean: f64,
    /// Standard deviation of foreground intensities.
    pub std: f64,
    /// 0.5th percentile (lower clip of CTNormalization).
    pub percentile_00_5: f64,
    /// 99.5th percentile (upper clip of CTNormalization).
    pub percentile_99_5: f64,
    /// Median foreground intensity.
    #[serde(default)]
    pub median: f64,
    /// Minimum foreground intensity.
    #[serde(default)]
    pub min: f64,
    /// Maximum foreground intensity.
    #[serde(default)]
    pub max: f64,
}

/// A label value in `dataset.json`: one integer, or a list of integers for a region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LabelValue {
    /// A single label.
    Single(i64),
    /// A region made of several labels.
    Region(Vec<i64>),
}

/// The `architecture` block of `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchitectureConfig {
    /// `dynamic_network_architectures....PlainConvUNet` or `....ResidualEncoderUNet`.
    pub network_class_name: String,
    /// Number of image channels the network reads.
    pub input_channels: usize,
    /// Number of output channels (segmentation heads, background included).
    pub num_classes: usize,
    /// The network's constructor arguments, resolved (see docs/model-format.md).
    pub arch_kwargs: ArchKwargs,
}

/// Resolved constructor arguments of PlainConvUNet / ResidualEncoderUNet.
///
/// Unknown fields are rejected: a field this crate does not understand could change the network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchKwargs {
    /// Number of resolution stages (encoder stages, the bottleneck included).
    pub n_stages: usize,
    /// Feature channels of each stage.
    pub features_per_stage: Vec<usize>,
    /// Convolution kernel size of each stage, per axis.
    pub kernel_sizes: Vec<[usize; 3]>,
    /// Downsampling stride of each stage's first convolution, per axis.
    pub strides: Vec<[usize; 3]>,
    /// Convolutions per encoder stage (PlainConvUNet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_conv_per_stage: Option<Vec<usize>>,
    /// Residual blocks per encoder stage (ResidualEncoderUNet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_blocks_per_stage: Option<Vec<usize>>,
    /// Convolutions per decoder stage (`n_stages - 1` entries, lowest resolution first).
    pub n_conv_per_stage_decoder: Vec<usize>,
    /// Whether the convolutions (and transposed convolutions) have a bias.
    pub conv_bias: bool,
    /// InstanceNorm epsilon.
    pub norm_eps: f64,
    /// Whether InstanceNorm has a learned scale and shift.
    pub norm_affine: bool,
    /// LeakyReLU negative slope (0 for ReLU).
    pub nonlin_negative_slope: f64,
    /// Output channels of the stem (ResidualEncoderUNet only; `features_per_stage[0]` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stem_channels: Option<usize>,
}

/// The two network families nnU-Net's default plans produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkKind {
    /// `PlainConvUNet`: stacks of conv-norm-LeakyReLU.
    PlainConvUNet,
    /// `ResidualEncoderUNet`: a stem and residual basic blocks in the encoder, plain decoder.
    ResidualEncoderUNet,
}

impl ModelConfig {
    /// Reads and validates `model.json`.
    pub fn from_file(path: &Path) -> Result<Self, NnError> {
        let text = std::fs::read_to_string(path).map_err(|source| NnError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json_str(&text, path)
    }

    /// Parses and validates `model.json` text; `path` is only used in error messages.
    pub fn from_json_str(text: &str, path: &Path) -> Result<Self, NnError> {
        let config: ModelConfig = serde_json::from_str(text).map_err(|source| NnError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks that the description is complete and consistent (done by the constructors above;
    /// call it on a config built in code). `path` is only used in error messages.
    pub fn validate(&self, path: &Path) -> Result<(), NnError> {
        self.validate_impl(path)
    }

    /// The architecture block (present after successful parsing).
    pub fn architecture(&self) -> Option<&ArchitectureConfig> {
        self.architecture.as_ref()
    }

    fn validate_impl(&self, path: &Path) -> Result<(), NnError> {
        let invalid = |reason: String| NnError::InvalidConfig {
            path: path.to_path_buf(),
            reason,
        };
        if self.format != MODEL_FORMAT {
            return Err(invalid(format!(
                "format is `{}`, expected `{MODEL_FORMAT}`",
                self.format
            )));
        }
        if self.format_version != MODEL_FORMAT_VERSION {
            return Err(invalid(format!(
                "format_version is {}, this build reads {MODEL_FORMAT_VERSION}",
                self.format_version
            )));
        }
        if self.folds.is_empty() {
            return Err(invalid("`folds` is empty".into()));
        }
        let mut folds = self.folds.clone();
        folds.sort_unstable();
        folds.dedup();
        if folds.len() != self.folds.len() {
            return Err(invalid(format!("`folds` repeats a fold: {:?}", self.folds)));
        }
        let arch = self
            .architecture
            .as_ref()
            .ok_or_else(|| NnError::MissingArchitecture {
                path: path.to_path_buf(),
            })?;
        arch.validate(path)?;
        let dims = arch.arch_kwargs.strides.first().map_or(3, |s| s.len());
        if self.patch_size.len() != dims || self.patch_size.contains(&0) {
            return Err(invalid(format!(
                "patch_size {:?} must have {dims} positive entries",
                self.patch_size
            )));
        }
        let total = arch.arch_kwargs.total_stride();
        for (axis, (&size, &stride)) in self.patch_size.iter().zip(total.iter()).enumerate() {
            if size % stride != 0 {
                return Err(invalid(format!(
                    "patch_size {:?} is not divisible by the network's total stride {total:?} on axis {axis}",
                    self.patch_size
                )));
            }
        }
        Ok(())
    }
}

impl ArchitectureConfig {
    /// Which network family `network_class_name` names (its last dotted component decides,
    /// since nnU-Net has used both `...unet.ResidualEncoderUNet` and `...residual_unet.ResidualEncoderUNet`).
    pub fn network_kind(&self) -> Option<NetworkKind> {
        match self.network_class_name.rsplit('.').next() {
            Some("PlainConvUNet") => Some(NetworkKind::PlainConvUNet),
            Some("ResidualEncoderUNet") => Some(NetworkKind::ResidualEncoderUNet),
            _ => None,
        }
    }

    fn validate(&self, path: &Path) -> Result<(), NnError> {
        let invalid = |reason: String| NnError::InvalidConfig {
            path: path.to_path_buf(),
            reason,
        };
        let kind = self
            .network_kind()
            .ok_or_else(|| NnError::UnsupportedNetwork {
                path: path.to_path_buf(),
                class_name: self.network_class_name.clone(),
            })?;
        if self.input_channels == 0 || self.num_classes == 0 {
            return Err(invalid(
                "input_channels and num_classes must be positive".into(),
            ));
        }
        let kw = &self.arch_kwargs;
        let n = kw.n_stages;
        if n < 2 {
            return Err(invalid(format!(
                "n_stages is {n}; a U-Net needs at least 2"
            )));
        }
        let check_len = |name: &str, len: usize, want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(invalid(format!(
                    "{name} has {len} entries, expected {want}"
                )))
            }
        };
        check_len("features_per_stage", kw.features_per_stage.len(), n)?;
        check_len("kernel_sizes", kw.kernel_sizes.len(), n)?;
        check_len("strides", kw.strides.len(), n)?;
        check_len(
            "n_conv_per_stage_decoder",
            kw.n_conv_per_stage_decoder.len(),
            n - 1,
        )?;
        let per_stage = match kind {
            NetworkKind::PlainConvUNet => ("n_conv_per_stage", &kw.n_conv_per_stage),
            NetworkKind::ResidualEncoderUNet => ("n_blocks_per_stage", &kw.n_blocks_per_stage),
        };
        let counts = per_stage.1.as_ref().ok_or_else(|| {
            invalid(format!(
                "{} needs `{}` in arch_kwargs",
                self.network_class_name, per_stage.0
            ))
        })?;
        check_len(per_stage.0, counts.len(), n)?;
        let other = match kind {
            NetworkKind::PlainConvUNet => ("n_blocks_per_stage", &kw.n_blocks_per_stage),
            NetworkKind::ResidualEncoderUNet => ("n_conv_per_stage", &kw.n_conv_per_stage),
        };
        if kind == NetworkKind::PlainConvUNet && kw.stem_channels.is_some() {
            return Err(invalid(format!(
                "`stem_channels` does not apply to {}",
                self.network_class_name
            )));
        }
        if kw.stem_channels == Some(0) {
            return Err(invalid("stem_channels must be positive".into()));
        }
        if other.1.is_some() {
            return Err(invalid(format!(
                "`{}` does not apply to {}",
                other.0, self.network_class_name
            )));
        }
        if counts.contains(&0) || kw.n_conv_per_stage_decoder.contains(&0) {
            return Err(invalid(
                "every stage needs at least one convolution or block".into(),
            ));
        }
        if kw.features_per_stage.contains(&0) {
            return Err(invalid("features_per_stage must be positive".into()));
        }
        if kw.kernel_sizes.iter().flatten().any(|&k| k % 2 == 0) {
            return Err(invalid(format!(
                "kernel_sizes {:?} must be odd (nnU-Net pads (k-1)/2)",
                kw.kernel_sizes
            )));
        }
        if kw.strides.iter().flatten().any(|&s| s == 0) {
            return Err(invalid("strides must be positive".into()));
        }
        if !(kw.norm_eps.is_finite() && kw.norm_eps > 0.0) {
            return Err(invalid(format!(
                "norm_eps {} must be positive",
                kw.norm_eps
            )));
        }
        if !kw.nonlin_negative_slope.is_finite() {
            return Err(invalid("nonlin_negative_slope must be finite".into()));
        }
        Ok(())
    }
}

impl ArchKwargs {
    /// The product of all stage strides per axis: input sizes must be multiples of it.
    pub fn total_stride(&self) -> [usize; 3] {
        self.strides.iter().fold([1, 1, 1], |acc, s| {
            [acc[0] * s[0], acc[1] * s[1], acc[2] * s[2]]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch(class: &str) -> ArchitectureConfig {
        ArchitectureConfig {
            network_class_name: class.into(),
            input_channels: 1,
            num_classes: 2,
            arch_kwargs: ArchKwargs {
                n_stages: 3,
                features_per_stage: vec![4, 8, 16],
                kernel_sizes: vec![[3, 3, 3]; 3],
                strides: vec![[1, 1, 1], [1, 2, 2], [2, 2, 1]],
                n_conv_per_stage: Some(vec![2, 2, 2]),
                n_blocks_per_stage: None,
                n_conv_per_stage_decoder: vec![2, 2],
                conv_bias: true,
                norm_eps: 1e-5,
                norm_affine: true,
                nonlin_negative_slope: 0.01,
                stem_channels: None,
            },
        }
    }

    #[test]
    fn network_kind_reads_the_last_dotted_component() {
        let kind = |c: &str| arch(c).network_kind();
        assert_eq!(
            kind("dynamic_network_architectures.architectures.unet.PlainConvUNet"),
            Some(NetworkKind::PlainConvUNet)
        );
        // nnU-Net's old-plans conversion names a module that has since moved.
        assert_eq!(
            kind("dynamic_network_architectures.architectures.residual_unet.ResidualEncoderUNet"),
            Some(NetworkKind::ResidualEncoderUNet)
        );
        assert_eq!(kind("PlainConvUNet"), Some(NetworkKind::PlainConvUNet));
        assert_eq!(kind("x.PlainConvUNetV2"), None);
    }

    #[test]
    fn total_stride_multiplies_per_axis() {
        assert_eq!(arch("PlainConvUNet").arch_kwargs.total_stride(), [2, 4, 2]);
    }

    #[test]
    fn validation_catches_inconsistent_lists() {
        let path = Path::new("model.json");
        assert!(arch("PlainConvUNet").validate(path).is_ok());

        let mut a = arch("PlainConvUNet");
        a.arch_kwargs.n_conv_per_stage_decoder = vec![2, 2, 2];
        assert!(matches!(
            a.validate(path),
            Err(NnError::InvalidConfig { .. })
        ));

        // ResEnc needs n_blocks_per_stage instead of n_conv_per_stage.
        let a = arch("ResidualEncoderUNet");
        assert!(matches!(
            a.validate(path),
            Err(NnError::InvalidConfig { .. })
        ));

        let mut a = arch("PlainConvUNet");
        a.arch_kwargs.kernel_sizes[1] = [3, 2, 3];
        assert!(matches!(
            a.validate(path),
            Err(NnError::InvalidConfig { .. })
        ));

        let mut a = arch("PlainConvUNet");
        a.arch_kwargs.n_stages = 1;
        assert!(matches!(
            a.validate(path),
            Err(NnError::InvalidConfig { .. })
        ));
    }
}
