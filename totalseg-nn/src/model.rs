//! A converted nnU-Net model folder (`model.json` + `model.safetensors`) loaded for inference.

use std::collections::HashSet;
use std::path::Path;

use crate::ops::NetworkOps;
use burn::tensor::Tensor;

use crate::config::{ArchitectureConfig, ModelConfig};
use crate::error::NnError;
use crate::network::FoldNetwork;
use crate::precision::Precision;
use crate::weights::{check_all_used, FoldWeights, WeightFile};

/// File name of the model description inside a converted model folder.
pub const MODEL_JSON: &str = "model.json";
/// File name of the weights inside a converted model folder.
pub const MODEL_WEIGHTS: &str = "model.safetensors";

/// All folds of one converted nnU-Net model, ready to run.
///
/// ```no_run
/// use burn_flex::{Flex, FlexDevice};
/// use burn::tensor::Tensor;
/// use totalseg_nn::{NnUnetModel, Precision};
///
/// # fn main() -> Result<(), totalseg_nn::NnError> {
/// let model = NnUnetModel::<Flex>::load(
///     std::path::Path::new("models/Dataset291_TotalSegmentator_part1_organs_1559subj"),
///     &FlexDevice,
///     Precision::F32,
/// )?;
/// let patch = model.config().patch_size.clone();
/// let channels = model.architecture().input_channels;
/// let input = Tensor::<Flex, 5>::zeros([1, channels, patch[0], patch[1], patch[2]], &FlexDevice);
/// let logits = model.forward_logits(0, input)?; // first fold
/// assert_eq!(logits.dims()[1], model.architecture().num_classes);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct NnUnetModel<B: NetworkOps> {
    config: ModelConfig,
    architecture: ArchitectureConfig,
    folds: Vec<FoldNetwork<B>>,
    precision: Precision,
}

impl<B: NetworkOps> NnUnetModel<B> {
    /// Loads `<model_dir>/model.json` and every fold from `<model_dir>/model.safetensors`.
    pub fn load(
        model_dir: &Path,
        device: &B::Device,
        precision: Precision,
    ) -> Result<Self, NnError> {
        Self::load_files(
            &model_dir.join(MODEL_JSON),
            &model_dir.join(MODEL_WEIGHTS),
            device,
            precision,
        )
    }

    /// Like [`NnUnetModel::load`], with the two files named explicitly.
    ///
    /// Every tensor is checked against the architecture (name, shape, dtype), and a tensor the
    /// architecture has no place for is an error too.
    pub fn load_files(
        model_json: &Path,
        weights_path: &Path,
        device: &B::Device,
        precision: Precision,
    ) -> Result<Self, NnError> {
        let config = ModelConfig::from_file(model_json)?;
        if !B::supports_dtype(device, precision.dtype()) {
            return Err(NnError::UnsupportedPrecision {
                precision: precision.to_string(),
                backend: B::name(device),
            });
        }
        let arch = config
            .architecture()
            .ok_or_else(|| NnError::MissingArchitecture {
                path: model_json.to_path_buf(),
            })?;
        let file = WeightFile::open(weights_path)?;
        let tensors = file.tensors()?;
        let mut used = HashSet::new();
        let mut folds = Vec::with_capacity(config.folds.len());
        for &fold in &config.folds {
            let mut weights = FoldWeights::<B>::from_file(
                &tensors,
                file.path(),
                fold,
                config.dtype,
                precision.dtype(),
                device,
            );
            folds.push(FoldNetwork::load(&mut weights, fold, arch, precision)?);
            used.extend(weights.into_used());
        }
        check_all_used(&tensors, file.path(), &used)?;
        let architecture = arch.clone();
        Ok(Self {
            config,
            architecture,
            folds,
            precision,
        })
    }

    /// A model with deterministic pseudo-random weights (He-scaled uniform convolutions, identity
    /// norms) for every fold in `config`: for benchmarks and for testing code around the network.
    ///
    /// ```
    /// use burn::tensor::Tensor;
    /// use burn_flex::{Flex, FlexDevice};
    /// use totalseg_nn::{ModelConfig, NnUnetModel, Precision};
    ///
    /// let json = r#"{
    ///   "format": "totalseg-model", "format_version": 1, "dataset_name": "Dataset999_Demo",
    ///   "trainer": "nnUNetTrainer", "plans_name": "nnUNetPlans", "configuration": "3d_fullres",
    ///   "folds": [0], "dtype": "f32",
    ///   "architecture": {
    ///     "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    ///     "input_channels": 1, "num_classes": 3,
    ///     "arch_kwargs": {"n_stages": 3, "features_per_stage": [4, 8, 16],
    ///       "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
    ///       "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
    ///       "n_conv_per_stage": [2, 2, 2], "n_conv_per_stage_decoder": [2, 2],
    ///       "conv_bias": true, "norm_eps": 1e-5, "norm_affine": true,
    ///       "nonlin_negative_slope": 0.01}},
    ///   "patch_size": [8, 16, 16], "spacing": [3.0, 1.5, 1.5],
    ///   "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
    ///   "normalization_schemes": ["CTNormalization"], "use_mask_for_norm": [false],
    ///   "foreground_intensity_properties_per_channel": {"0": {"mean": 0.0, "std": 1.0,
    ///     "percentile_00_5": -1000.0, "percentile_99_5": 1000.0}},
    ///   "labels": {"background": 0, "liver": 1, "spleen": 2}, "channel_names": {"0": "CT"}
    /// }"#;
    /// let config = ModelConfig::from_json_str(json, "demo/model.json".as_ref())?;
    /// let model = NnUnetModel::<Flex>::with_random_weights(config, &FlexDevice, Precision::F16, 42)?;
    /// let input = Tensor::<Flex, 5>::ones([1, 1, 8, 16, 16], &FlexDevice);
    /// let logits = model.forward_logits(0, input)?;
    /// assert_eq!(logits.dims(), [1, 3, 8, 16, 16]);
    /// # Ok::<(), totalseg_nn::NnError>(())
    /// ```
    pub fn with_random_weights(
        config: ModelConfig,
        device: &B::Device,
        precision: Precision,
        seed: u64,
    ) -> Result<Self, NnError> {
        let path = Path::new("<model.json in memory>");
        config.validate(path)?;
        if !B::supports_dtype(device, precision.dtype()) {
            return Err(NnError::UnsupportedPrecision {
                precision: precision.to_string(),
                backend: B::name(device),
            });
        }
        let architecture = config
            .architecture()
            .ok_or_else(|| NnError::MissingArchitecture {
                path: path.to_path_buf(),
            })?
            .clone();
        let mut folds = Vec::with_capacity(config.folds.len());
        for &fold in &config.folds {
            let mut weights =
                FoldWeights::<B>::random(seed ^ u64::from(fold), precision.dtype(), device);
            folds.push(FoldNetwork::load(
                &mut weights,
                fold,
                &architecture,
                precision,
            )?);
        }
        Ok(Self {
            config,
            architecture,
            folds,
            precision,
        })
    }

    /// The parsed `model.json` (patch size, spacing, labels, normalisation properties, ...).
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The network architecture (the `architecture` block of `model.json`).
    pub fn architecture(&self) -> &ArchitectureConfig {
        &self.architecture
    }

    /// The precision the networks run in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The networks, one per fold, in `model.json`'s fold order.
    pub fn folds(&self) -> &[FoldNetwork<B>] {
        &self.folds
    }

    /// Logits of the fold at position `fold_index` in [`NnUnetModel::folds`]; see
    /// [`FoldNetwork::forward_logits`].
    pub fn forward_logits(
        &self,
        fold_index: usize,
        input: Tensor<B, 5>,
    ) -> Result<Tensor<B, 5>, NnError> {
        let fold = self
            .folds
            .get(fold_index)
            .ok_or_else(|| NnError::InvalidInput {
                reason: format!(
                    "fold index {fold_index} out of range: the model has {} folds",
                    self.folds.len()
                ),
            })?;
        fold.forward_logits(input)
    }
}
