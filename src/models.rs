//! Models on a Burn backend: found or downloaded and converted by the weights store, loaded
//! once (and kept on their device for every later image and part), run tile by tile for the
//! host predictor or as a whole sliding window on the device.

pub mod batch_size;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};

use burn::tensor::{Tensor, TensorData};
use ndarray::{Array5, ArrayView4, ArrayView5};
use totalseg_core::export::LogitsResampling;
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
use crate::predictor::device::{
    predict_on_device, DeviceForward, DeviceOutput, DevicePrediction, DeviceSlidingWindow,
    ImageIntensities,
};
use crate::predictor::{
    ChannelNormalization, NetworkShape, PredictorSettings, TileNetwork, TileProgress,
};
use batch_size::{batch_size_for_free_memory, TileFootprint};

/// Where a Burn network's sliding window runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlidingWindowSite {
    /// Tiles cut, weighted and summed on the host; the device only runs the network (the
    /// CPU backend: its host accumulator is parallel and measured at parity).
    #[default]
    Host,
    /// Everything from the padded image to the argmax on the device (CUDA).
    Device,
}

/// One model's folds on backend `B`, as a [`TileNetwork`].
pub struct BurnTileNetwork<B: NetworkOps> {
    model: NnUnetModel<B>,
    device: B::Device,
    /// Positions in `model.folds()` of the folds the task asks for.
    fold_indices: Vec<usize>,
    batch_size: usize,
    site: SlidingWindowSite,
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
            site: SlidingWindowSite::Host,
        })
    }

    /// Runs the sliding window at `site` (default: the host).
    pub fn with_sliding_window_site(mut self, site: SlidingWindowSite) -> Self {
        self.site = site;
        self
    }

    fn network_error(&self, message: String) -> SegmentError {
        SegmentError::Network {
            model: self.model.config().dataset_name.clone(),
            message,
        }
    }

    fn fold_index(&self, fold: usize) -> Result<usize, SegmentError> {
        self.fold_indices
            .get(fold)
            .copied()
            .ok_or_else(|| self.network_error(format!("fold position {fold} out of range")))
    }
}

impl<B: NetworkOps> NetworkShape for BurnTileNetwork<B> {
    fn num_classes(&self) -> usize {
        self.model.architecture().num_classes
    }

    fn num_folds(&self) -> usize {
        self.fold_indices.len()
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

impl<B: NetworkOps> DeviceForward<B> for BurnTileNetwork<B> {
    fn forward(&self, fold: usize, tiles: Tensor<B, 5>) -> Result<Tensor<B, 5>, SegmentError> {
        let index = self.fold_index(fold)?;
        self.model
            .forward_logits(index, tiles)
            .map_err(|e| self.network_error(e.to_string()))
    }
}

/// A network with its batch size overridden (the one-tile retry after a device failure).
struct WithBatchSize<'a, N> {
    network: &'a N,
    batch_size: usize,
}

impl<N: NetworkShape> NetworkShape for WithBatchSize<'_, N> {
    fn num_classes(&self) -> usize {
        self.network.num_classes()
    }
    fn num_folds(&self) -> usize {
        self.network.num_folds()
    }
    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

impl<B: NetworkOps, N: DeviceForward<B>> DeviceForward<B> for WithBatchSize<'_, N> {
    fn forward(&self, fold: usize, tiles: Tensor<B, 5>) -> Result<Tensor<B, 5>, SegmentError> {
        self.network.forward(fold, tiles)
    }
}

impl<B: NetworkOps> DeviceSlidingWindow for BurnTileNetwork<B> {
    /// Burn's CUDA runtime panics when the device runs out of memory or a kernel fails: the
    /// panic is caught, a batch of several tiles is retried one tile at a time, and a second
    /// failure becomes a [`SegmentError::Device`] naming the model and the way out.
    fn predict_on_device(
        &self,
        image: ArrayView4<f32>,
        intensities: ImageIntensities,
        settings: &PredictorSettings,
        accumulation: AccumulationPrecision,
        output: DeviceOutput,
        progress: &dyn TileProgress,
    ) -> Result<DevicePrediction, SegmentError> {
        let attempt = |batch_size: usize| {
            let network = WithBatchSize {
                network: self,
                batch_size,
            };
            catch_unwind(AssertUnwindSafe(|| {
                predict_on_device(
                    &network,
                    &self.device,
                    image,
                    intensities,
                    settings,
                    accumulation,
                    output,
                    progress,
                )
            }))
        };
        let predict = |_: ()| match attempt(self.batch_size) {
            Ok(result) => result,
            Err(panic) if self.batch_size > 1 => {
                log::warn!(
                    "{}: the device failed with {} tiles per batch ({}); retrying one tile at a time",
                    self.model.config().dataset_name,
                    self.batch_size,
                    panic_message(panic.as_ref())
                );
                attempt(1).unwrap_or_else(|panic| {
                    Err(device_failure(self, &panic_message(panic.as_ref())))
                })
            }
            Err(panic) => Err(device_failure(self, &panic_message(panic.as_ref()))),
        };
        let result = match DeviceAllocation::from_env() {
            DeviceAllocation::ExactSize => {
                B::memory_persistent_allocations(&self.device, (), predict)
            }
            DeviceAllocation::Pools => predict(()),
        };
        if crate::timing::enabled() {
            if let Some(usage) = B::unet_memory_usage(&self.device) {
                eprintln!(
                    "[timing] {}: device memory reserved {}, in use {}",
                    self.model.config().dataset_name,
                    crate::timing::format_bytes(usage.reserved_bytes),
                    crate::timing::format_bytes(usage.in_use_bytes)
                );
            }
        }
        // Hand the memory pools' free pages back to the device: the next part's tensors have
        // other sizes, and the pools would otherwise keep every part's pages.
        B::memory_cleanup(&self.device);
        result
    }
}

/// How the device sliding window takes device memory (`TOTALSEG_GPU_MEMORY`).
///
/// cubecl's default pools on CUDA are laid out from the GPU's size: pages of a sixteenth, a
/// sixty-fourth, a 256th ... of its memory, each taking allocations up to a fraction of the
/// page, and pages stay reserved. One allocation past a threshold reserves a whole larger page:
/// the f32 operand of the decoder's last convolution (64 channels of a 128³ tile, 512 MiB) takes
/// a 4.9 GiB page on an 80 GB H100; for two tiles (1 GiB) an 8.8 GiB page on an H200.
/// Exact-size buffers, reused for every tile (each tile allocates the same sizes), never take
/// a larger page, but buffers of different sizes cannot share one. Which reserves less depends
/// on the GPU: measured with the pools laid out as CUDA's on a scaled-down H100 and H200
/// (`device_memory` bench, docs/gpu.md "GPU memory"), exact sizes reserved 15 % less on the
/// H100 and 66 % more on the H200 at one tile per batch, so the pools stay the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceAllocation {
    /// cubecl's default pools (`pools`, the default).
    Pools,
    /// One buffer of exactly the size asked for, reused for the same size (`exact`; Burn's
    /// `memory_persistent_allocations`), freed after each model.
    ExactSize,
}

impl DeviceAllocation {
    /// The environment variable that chooses.
    pub const VARIABLE: &'static str = "TOTALSEG_GPU_MEMORY";

    /// `pools` or `exact` (any case; empty is the default, `pools`).
    ///
    /// ```
    /// use totalsegmentator::models::DeviceAllocation;
    /// assert_eq!(DeviceAllocation::parse(" Exact"), Some(DeviceAllocation::ExactSize));
    /// assert_eq!(DeviceAllocation::parse(""), Some(DeviceAllocation::Pools));
    /// assert_eq!(DeviceAllocation::parse("big"), None);
    /// ```
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "pools" | "" => Some(Self::Pools),
            "exact" => Some(Self::ExactSize),
            _ => None,
        }
    }

    /// The choice of `TOTALSEG_GPU_MEMORY`, read once; an unknown value warns and uses the
    /// pools.
    pub fn from_env() -> Self {
        static CHOICE: std::sync::OnceLock<DeviceAllocation> = std::sync::OnceLock::new();
        *CHOICE.get_or_init(|| {
            let value = std::env::var(Self::VARIABLE).unwrap_or_default();
            Self::parse(&value).unwrap_or_else(|| {
                log::warn!(
                    "{}={value}: unknown (pools or exact); using the pools",
                    Self::VARIABLE
                );
                Self::Pools
            })
        })
    }
}

fn device_failure<B: NetworkOps>(network: &BurnTileNetwork<B>, message: &str) -> SegmentError {
    SegmentError::Device(format!(
        "model {} failed on {:?} ({message}); if the GPU is out of memory, close other GPU \
         programs or run with --device cpu",
        network.model.config().dataset_name,
        network.device
    ))
}

/// The text of a caught panic (Burn's GPU backends report device failures by panicking).
///
/// ```
/// let panic = std::panic::catch_unwind(|| panic!("out of memory")).unwrap_err();
/// assert_eq!(totalsegmentator::models::panic_message(panic.as_ref()), "out of memory");
/// ```
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

impl<B: NetworkOps> TileNetwork for BurnTileNetwork<B> {
    fn logits_are_fp16(&self) -> bool {
        self.model.precision() == Precision::F16
    }

    fn device_sliding_window(&self) -> Option<&dyn DeviceSlidingWindow> {
        match self.site {
            SlidingWindowSite::Host => None,
            SlidingWindowSite::Device => Some(self),
        }
    }

    fn predict_tiles(
        &self,
        fold: usize,
        tiles: ArrayView5<f32>,
    ) -> Result<Array5<f32>, SegmentError> {
        let shape = tiles.shape().to_vec();
        let values: Vec<f32> = tiles.iter().copied().collect();
        let input = Tensor::<B, 5>::from_data(TensorData::new(values, shape.clone()), &self.device);
        let network_error = |message: String| self.network_error(message);
        let index = self.fold_index(fold)?;
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
        logits_resampling: LogitsResampling::Full,
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

/// How a provider sizes the tile batches of the models it loads.
#[derive(Clone)]
pub enum BatchSizePolicy {
    /// This many tiles per network call.
    Fixed(usize),
    /// From the device's free memory, read after each model is loaded (see
    /// [`batch_size::batch_size_for_free_memory`]); `None` from the query means one tile.
    FromFreeMemory(Arc<dyn Fn() -> Option<u64> + Send + Sync>),
}

impl std::fmt::Debug for BatchSizePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSizePolicy::Fixed(n) => write!(f, "Fixed({n})"),
            BatchSizePolicy::FromFreeMemory(_) => f.write_str("FromFreeMemory"),
        }
    }
}

impl BatchSizePolicy {
    /// The batch size for a model of `architecture` on tiles of `patch_size` at `precision`.
    pub fn batch_size(
        &self,
        architecture: &totalseg_nn::ArchitectureConfig,
        patch_size: [usize; 3],
        precision: Precision,
    ) -> usize {
        match self {
            BatchSizePolicy::Fixed(n) => (*n).max(1),
            BatchSizePolicy::FromFreeMemory(free) => free().map_or(1, |bytes| {
                batch_size_for_free_memory(
                    bytes,
                    &TileFootprint::of(architecture, patch_size, precision),
                )
            }),
        }
    }
}

/// Loads models on backend `B` through a [`WeightsStore`], each once: a model stays loaded
/// on its device (shared through an `Arc`) for every later image, part and `Segmenter` call.
pub struct BurnModelProvider<B: NetworkOps> {
    store: WeightsStore,
    device: B::Device,
    precision: Precision,
    batch: BatchSizePolicy,
    site: SlidingWindowSite,
    progress: Box<dyn ProgressSink + Send + Sync>,
    loaded: Mutex<HashMap<String, Arc<LoadedModel>>>,
}

impl<B: NetworkOps> BurnModelProvider<B> {
    /// A provider loading into `device` at `precision`, the sliding window on the host.
    pub fn new(
        store: WeightsStore,
        device: B::Device,
        precision: Precision,
        batch: BatchSizePolicy,
        progress: Box<dyn ProgressSink + Send + Sync>,
    ) -> Self {
        Self {
            store,
            device,
            precision,
            batch,
            site: SlidingWindowSite::Host,
            progress,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Where the loaded networks run their sliding window.
    pub fn with_sliding_window_site(mut self, site: SlidingWindowSite) -> Self {
        self.site = site;
        self
    }

    /// How many models are loaded.
    pub fn loaded_models(&self) -> usize {
        self.loaded.lock().map_or(0, |loaded| loaded.len())
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
        let batch_size =
            self.batch
                .batch_size(model.architecture(), settings.patch_size, self.precision);
        log::debug!("{key}: {batch_size} tile(s) per network call");
        let network = BurnTileNetwork::new(model, self.device.clone(), spec.folds, batch_size)?
            .with_sliding_window_site(self.site);
        let model = Arc::new(LoadedModel {
            name: key.clone(),
            settings,
            network: Box::new(network),
        });
        loaded.insert(key, Arc::clone(&model));
        Ok(model)
    }
}
