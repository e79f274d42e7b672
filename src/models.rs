//! Models on a Burn backend: found or downloaded and converted by the weights store, loaded
//! once, run tile by tile for the predictor.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::tensor::{Tensor, TensorData};
use ndarray::{Array5, ArrayView5};
use totalseg_core::normalize::{IntensityProperties, NormalizationScheme};
use totalseg_core::resample::{NnunetResampling, SplineOrder};
use totalseg_core::sliding_window::AccumulationPrecision;
use totalseg_core::tasks::{self, Folds, WeightsSource};
use totalseg_io::weights::{self, DownloadSource, ModelSource, ProgressSink, WeightsStore};
use totalseg_nn::NetworkOps;
use totalseg_nn::{ModelConfig, NnUnetModel, Precision};
use weights_converter::{convert_model_folder, ConvertOptions};

use crate::error::SegmentError;
use crate::pipeline::{LoadedModel, ModelProvider};
use crate::predictor::{ChannelNormalization, PredictorSettings, TileNetwork};

/// One model's folds on backend `B`, as a [`TileNetwork`].
pub struct BurnTileNetwork<B: NetworkOps> {
    model: NnUnetModel<B>,
    device: B::Device,
    /// Positions in `model.folds()` of the folds the task asks for.
    fold_indices: Vec<usize>,
    batch_size: usize,
}

impl<B: NetworkOps> BurnTileNetwork<B> {
    /// Wraps `model`, using the folds `folds` (all when `AllAvailable`).
    pub fn new(
        model: NnUnetModel<B>,
        device: B::Device,
        folds: Folds,
        batch_size: usize,
    ) -> Result<Self, SegmentError> {
        let present: Vec<u32> = model.folds().iter().map(|f| f.fold()).collect();
        let fold_indices = match folds {
            Folds::AllAvailable => (0..present.len()).collect(),
            Folds::List(wanted) => wanted
                .iter()
                .map(|&w| {
                    present
                        .iter()
                        .position(|&p| p == u32::from(w))
                        .ok_or_else(|| SegmentError::Network {
                            model: model.config().dataset_name.clone(),
                            message: format!(
                                "fold {w} is needed but the converted model has folds {present:?}"
                            ),
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Self {
            model,
            device,
            fold_indices,
            batch_size: batch_size.max(1),
        })
    }
}

impl<B: NetworkOps> TileNetwork for BurnTileNetwork<B> {
    fn num_classes(&self) -> usize {
        self.model.architecture().num_classes
    }

    fn num_folds(&self) -> usize {
        self.fold_indices.len()
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn predict_tiles(
        &self,
        fold: usize,
        tiles: ArrayView5<f32>,
    ) -> Result<Array5<f32>, SegmentError> {
        let shape = tiles.shape().to_vec();
        let values: Vec<f32> = tiles.iter().copied().collect();
        let input = Tensor::<B, 5>::from_data(TensorData::new(values, shape.clone()), &self.device);
        let network_error = |message: String| SegmentError::Network {
            model: self.model.config().dataset_name.clone(),
            message,
        };
        let index = *self
            .fold_indices
            .get(fold)
            .ok_or_else(|| network_error(format!("fold position {fold} out of range")))?;
        let logits = self
            .model
            .forward_logits(index, input)
            .map_err(|e| network_error(e.to_string()))?;
        let dims = logits.dims();
        let data = logits
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_err(|e| network_error(format!("reading logits: {e:?}")))?;
        Array5::from_shape_vec((dims[0], dims[1], dims[2], dims[3], dims[4]), data)
            .map_err(|e| network_error(format!("logits shape: {e}")))
    }
}

/// Predictor settings from a converted model's `model.json`.
pub fn predictor_settings(config: &ModelConfig) -> Result<PredictorSettings, SegmentError> {
    let bad = |what: String| {
        SegmentError::Model(format!("model.json of {}: {what}", config.dataset_name))
    };
    let triple = |v: &[usize], name: &str| -> Result<[usize; 3], SegmentError> {
        <[usize; 3]>::try_from(v)
            .map_err(|_| bad(format!("{name} must have 3 entries, has {}", v.len())))
    };
    let spacing = <[f64; 3]>::try_from(config.spacing.as_slice()).map_err(|_| {
        bad(format!(
            "spacing must have 3 entries, has {}",
            config.spacing.len()
        ))
    })?;
    let mut channels = Vec::new();
    for (c, scheme) in config.normalization_schemes.iter().enumerate() {
        let scheme =
            NormalizationScheme::from_plans_name(scheme).map_err(|e| bad(e.to_string()))?;
        let properties = config
            .foreground_intensity_properties_per_channel
            .get(&c.to_string())
            .map(|p| IntensityProperties {
                mean: p.mean,
                std: p.std,
                percentile_00_5: p.percentile_00_5,
                percentile_99_5: p.percentile_99_5,
            });
        channels.push(ChannelNormalization {
            scheme,
            properties,
            use_mask_for_norm: config.use_mask_for_norm.get(c).copied().unwrap_or(false),
        });
    }
    Ok(PredictorSettings {
        patch_size: triple(&config.patch_size, "patch_size")?,
        spacing,
        transpose_forward: triple(&config.transpose_forward, "transpose_forward")?,
        transpose_backward: triple(&config.transpose_backward, "transpose_backward")?,
        channels,
        step_size: 0.5,
        accumulation: AccumulationPrecision::Fp16,
        data_resampling: resampling_kwargs(
            &config.resampling,
            "resampling_fn_data_kwargs",
            SplineOrder::Cubic,
        ),
        probabilities_resampling: resampling_kwargs(
            &config.resampling,
            "resampling_fn_probabilities_kwargs",
            SplineOrder::Linear,
        ),
    })
}

/// nnU-Net's resampling kwargs (`order`, `order_z`, `force_separate_z`), defaults where absent.
fn resampling_kwargs(
    resampling: &serde_json::Value,
    key: &str,
    default_order: SplineOrder,
) -> NnunetResampling {
    let kwargs = &resampling[key];
    let order = |name: &str, default: SplineOrder| {
        kwargs[name]
            .as_u64()
            .and_then(|o| SplineOrder::from_scipy(o as u8).ok())
            .unwrap_or(default)
    };
    NnunetResampling {
        order: order("order", default_order),
        order_z: order("order_z", SplineOrder::Nearest),
        force_separate_z: kwargs["force_separate_z"].as_bool(),
        ..NnunetResampling::default()
    }
}

/// The weights-store description of a registry model.
pub fn store_spec(spec: &tasks::ModelSpec) -> weights::ModelSpec {
    let download = match spec.weights.source {
        WeightsSource::GithubRelease { tag } => DownloadSource::Release {
            tag: tag.to_string(),
        },
        WeightsSource::LicenseServer { task } => DownloadSource::Licensed {
            task_name: task.to_string(),
        },
        WeightsSource::Unreleased => DownloadSource::Unavailable,
    };
    weights::ModelSpec {
        source: ModelSource {
            dataset_id: u32::from(spec.dataset_id),
            folder_name: spec.weights.folder_name.to_string(),
            download,
        },
        trainer: spec.trainer.to_string(),
        plans: spec.plans.to_string(),
        configuration: spec.configuration.to_string(),
    }
}

/// The converter the weights store calls on a fresh nnU-Net folder.
pub fn convert_folder(src: &Path, dst: &Path) -> Result<(), weights::BoxError> {
    convert_model_folder(src, dst, &ConvertOptions::default())?;
    Ok(())
}

/// Loads models on backend `B` through a [`WeightsStore`], each once.
pub struct BurnModelProvider<B: NetworkOps> {
    store: WeightsStore,
    device: B::Device,
    precision: Precision,
    batch_size: usize,
    progress: Box<dyn ProgressSink + Send + Sync>,
    loaded: Mutex<HashMap<String, Arc<LoadedModel>>>,
}

impl<B: NetworkOps> BurnModelProvider<B> {
    /// A provider loading into `device` at `precision`.
    pub fn new(
        store: WeightsStore,
        device: B::Device,
        precision: Precision,
        batch_size: usize,
        progress: Box<dyn ProgressSink + Send + Sync>,
    ) -> Self {
        Self {
            store,
            device,
            precision,
            batch_size,
            progress,
            loaded: Mutex::new(HashMap::new()),
        }
    }
}

impl<B: NetworkOps> ModelProvider for BurnModelProvider<B>
where
    B::Device: Send + Sync,
{
    fn model(&self, spec: &tasks::ModelSpec) -> Result<Arc<LoadedModel>, SegmentError> {
        let key = format!(
            "{}/{}",
            spec.weights.folder_name,
            spec.trainer_folder_name()
        );
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| SegmentError::Model("model cache poisoned by an earlier panic".into()))?;
        if let Some(model) = loaded.get(&key) {
            return Ok(Arc::clone(model));
        }
        let converted = self.store.ensure_converted(
            &store_spec(spec),
            &convert_folder,
            self.progress.as_ref(),
        )?;
        let model =
            NnUnetModel::<B>::load(&converted.dir, &self.device, self.precision).map_err(|e| {
                SegmentError::Network {
                    model: converted.dir.display().to_string(),
                    message: e.to_string(),
                }
            })?;
        let settings = predictor_settings(model.config())?;
        let network =
            BurnTileNetwork::new(model, self.device.clone(), spec.folds, self.batch_size)?;
        let model = Arc::new(LoadedModel {
            name: key.clone(),
            settings,
            network: Box::new(network),
        });
        loaded.insert(key, Arc::clone(&model));
        Ok(model)
    }
}
