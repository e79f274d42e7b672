//! [`SegmenterBuilder`]: task, variant, roi subset, device, precision and weights location,
//! turned into a [`Segmenter`] whose models load once.

pub mod cuda_driver;
pub mod gpu;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use totalseg_core::sliding_window::AccumulationPrecision;
use totalseg_core::statistics::StatisticsOptions;
use totalseg_core::tasks::{ModelSize, TaskOptions, TaskRegistry, Variant};
use totalseg_io::weights::{
    DirOverrides, NoProgress, ProgressSink, StoreDirs, StoreOptions, TotalsegConfig, WeightsError,
    WeightsStore,
};
use totalseg_nn::Precision;

use crate::error::SegmentError;
use crate::models::{BatchSizePolicy, BurnModelProvider};
use crate::pipeline::ModelProvider;
use crate::segmenter::{DeviceKind, RunOptions, Segmenter};
use gpu::{decide_device, probe_cuda, DeviceDecision};

/// Where the networks run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The CPU (burn-flex).
    Cpu,
    /// CUDA GPU number N (burn-cuda, feature `cuda`).
    Gpu(usize),
}

impl FromStr for Device {
    type Err = SegmentError;

    /// TotalSegmentator's device names: `cpu`, `gpu`, `gpu:N` (also `cuda`, `cuda:N`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "cpu" => Ok(Device::Cpu),
            "gpu" | "cuda" => Ok(Device::Gpu(0)),
            _ => s
                .strip_prefix("gpu:")
                .or_else(|| s.strip_prefix("cuda:"))
                .and_then(|n| n.parse().ok())
                .map(Device::Gpu)
                .ok_or_else(|| {
                    SegmentError::Device(format!(
                        "invalid device '{s}': use 'cpu', 'gpu' or 'gpu:N' (N the GPU number)"
                    ))
                }),
        }
    }
}

/// Builds a [`Segmenter`].
///
/// ```no_run
/// use totalsegmentator::{read_nifti, SegmenterBuilder};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let segmenter = SegmenterBuilder::new("total").fast(true).device("cpu".parse()?).build()?;
/// let ct = read_nifti(std::path::Path::new("ct.nii.gz"))?;
/// let seg = segmenter.segment(&ct)?;
/// for (name, voxels) in seg.voxel_counts() {
///     println!("{name}: {voxels} voxels");
/// }
/// # Ok(())
/// # }
/// ```
pub struct SegmenterBuilder {
    task: String,
    variant: Variant,
    model_size: ModelSize,
    roi_subset: Option<Vec<String>>,
    run: RunOptions,
    device: Device,
    precision: Option<Precision>,
    dirs: DirOverrides,
    offline: bool,
    batch_size: Option<usize>,
    threads: Option<usize>,
    download_progress: Box<dyn ProgressSink + Send + Sync>,
}

impl SegmenterBuilder {
    /// A builder for `task` (e.g. `total`), default variant, CPU, f32.
    pub fn new(task: &str) -> Self {
        Self {
            task: task.to_string(),
            variant: Variant::Default,
            model_size: ModelSize::Big,
            roi_subset: None,
            run: RunOptions::default(),
            device: Device::Cpu,
            precision: None,
            dirs: DirOverrides::default(),
            offline: false,
            batch_size: None,
            threads: None,
            download_progress: Box::new(NoProgress),
        }
    }

    /// The 3 mm model (`--fast`).
    pub fn fast(mut self, on: bool) -> Self {
        if on {
            self.variant = Variant::Fast;
        }
        self
    }

    /// The 6 mm model (`--fastest`).
    pub fn fastest(mut self, on: bool) -> Self {
        if on {
            self.variant = Variant::Fastest;
        }
        self
    }

    /// `--model_size small` (total_v3 only).
    pub fn small_model(mut self, on: bool) -> Self {
        if on {
            self.model_size = ModelSize::Small;
        }
        self
    }

    /// Only these classes (`--roi_subset`); `robust` uses the 3 mm crop model.
    pub fn roi_subset(mut self, classes: Vec<String>, robust: bool) -> Self {
        self.roi_subset = Some(classes);
        self.run.roi_subset_robust = robust;
        self
    }

    /// `--robust_crop`.
    pub fn robust_crop(mut self, on: bool) -> Self {
        self.run.robust_crop = on;
        self
    }

    /// `--body_seg`.
    pub fn body_seg(mut self, on: bool) -> Self {
        self.run.body_seg = on;
        self
    }

    /// `--force_split`.
    pub fn force_split(mut self, on: bool) -> Self {
        self.run.force_split = on;
        self
    }

    /// `--resampling_order` (0-5, default 1).
    pub fn resampling_order(mut self, order: u8) -> Self {
        self.run.resampling_order = order;
        self
    }

    /// `--remove_small_blobs` threshold in mm3.
    pub fn remove_small_blobs(mut self, mm3: Option<f64>) -> Self {
        self.run.remove_small_blobs_mm3 = mm3;
        self
    }

    /// Compute statistics with these options (`--statistics`).
    pub fn statistics(mut self, options: Option<StatisticsOptions>) -> Self {
        self.run.statistics = options;
        self
    }

    /// `--save_lowres`.
    pub fn save_lowres(mut self, on: bool) -> Self {
        self.run.save_lowres = on;
        self
    }

    /// `--higher_order_resampling`: nnU-Net resamples the image to the model spacing itself
    /// (order 3 instead of TotalSegmentator's order 1 and int32 cast) and brings the logits
    /// back with cropped-logits resampling (smooth, interpolated label borders) instead of
    /// nearest-neighbour upsampling of the labels. Disables `save_lowres`.
    pub fn higher_order_resampling(mut self, on: bool) -> Self {
        self.run.higher_order_resampling = on;
        self
    }

    /// `--higher_order_resampling_LEGACY`: the labels go back from the model resolution to
    /// the input's grid as cropped one-hot masks interpolated with order 1 (smoother borders
    /// than order 0). No effect together with `higher_order_resampling`.
    pub fn higher_order_resampling_legacy(mut self, on: bool) -> Self {
        self.run.higher_order_resampling_legacy = on;
        self
    }

    /// `--save_probabilities`: keep nnU-Net's class probabilities of the task's last model
    /// in [`crate::Segmentation::probabilities`] (large: classes x voxels float32).
    pub fn save_probabilities(mut self, on: bool) -> Self {
        self.run.save_probabilities = on;
        self
    }

    /// `--preview`: draw TotalSegmentator's preview image of the segmentation
    /// ([`crate::Segmentation::preview`]). Building fails later, at `segment`, for a task
    /// without a preview layout.
    pub fn preview(mut self, on: bool) -> Self {
        self.run.preview = on;
        self
    }

    /// Sum tiles in f32 instead of nnU-Net's fp16 (faster, not bit-parity).
    pub fn f32_accumulation(mut self, on: bool) -> Self {
        if on {
            self.run.accumulation = AccumulationPrecision::Fp32;
        }
        self
    }

    /// Where the networks run. A GPU that cannot be used (no driver, no NVRTC, no such
    /// device, too little free memory, a failing first kernel) falls back to the CPU with a
    /// warning ([`gpu::decide_device`]).
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Network precision (default: f32 on CPU, f16 on GPU as nnU-Net's autocast).
    pub fn precision(mut self, precision: Option<Precision>) -> Self {
        self.precision = precision;
        self
    }

    /// Folder with existing weights (`--weights-dir`; beats `TOTALSEG_WEIGHTS_PATH`).
    pub fn weights_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.dirs.weights_dir = dir;
        self
    }

    /// Home folder (beats `TOTALSEG_HOME_DIR`).
    pub fn home_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.dirs.home = dir;
        self
    }

    /// Never download (`--offline`).
    pub fn offline(mut self, on: bool) -> Self {
        self.offline = on;
        self
    }

    /// Tiles per network call (default: 1 on the CPU, from the free memory on a GPU).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n.max(1));
        self
    }

    /// Worker threads (default: all cores).
    pub fn threads(mut self, n: Option<usize>) -> Self {
        self.threads = n;
        self
    }

    /// Where download progress goes (e.g. [`totalseg_io::weights::DownloadBar`]).
    pub fn download_progress(mut self, sink: Box<dyn ProgressSink + Send + Sync>) -> Self {
        self.download_progress = sink;
        self
    }

    /// Resolves the task and prepares the model provider (models load on first use).
    pub fn build(self) -> Result<Segmenter, SegmentError> {
        let (device, precision, batch_size) = (self.device, self.precision, self.batch_size);
        let mut chosen = None;
        let mut segmenter = self.build_with_provider(|store, download_progress| {
            let (provider, kind) =
                make_provider(device, precision, store, batch_size, download_progress)?;
            chosen = Some(kind);
            Ok(provider)
        })?;
        segmenter.device_kind = chosen;
        Ok(segmenter)
    }

    /// As [`build`](Self::build), with the models from the provider `make_provider` makes out
    /// of the builder's weights store and download progress: a
    /// [`BurnModelProvider`] on another Burn backend, say. The builder's device, precision and
    /// batch size are left to that provider.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use burn_flex::{Flex, FlexDevice};
    /// use totalseg_nn::Precision;
    /// use totalsegmentator::models::{BatchSizePolicy, BurnModelProvider, SlidingWindowSite};
    /// use totalsegmentator::SegmenterBuilder;
    ///
    /// // The CPU backend with its sliding window on the Burn device, as the GPU runs it.
    /// let segmenter = SegmenterBuilder::new("total").fast(true).offline(true).build_with_provider(
    ///     |store, progress| {
    ///         Ok(Arc::new(
    ///             BurnModelProvider::<Flex>::new(
    ///                 store, FlexDevice, Precision::F32, BatchSizePolicy::Fixed(2), progress,
    ///             )
    ///             .with_sliding_window_site(SlidingWindowSite::Device),
    ///         ))
    ///     },
    /// )?;
    /// assert_eq!(segmenter.task().name, "total");
    /// # Ok::<(), totalsegmentator::SegmentError>(())
    /// ```
    pub fn build_with_provider(
        self,
        make_provider: impl FnOnce(
            WeightsStore,
            Box<dyn ProgressSink + Send + Sync>,
        )
            -> Result<Arc<dyn ModelProvider + Send + Sync>, SegmentError>,
    ) -> Result<Segmenter, SegmentError> {
        if let Some(n) = self.threads {
            // Fails only if the pool was already set up (a second builder): keep that one.
            let _ = rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build_global();
        }
        let registry = TaskRegistry::new();
        let task = registry.resolve(
            &self.task,
            TaskOptions {
                variant: self.variant,
                model_size: self.model_size,
            },
        )?;
        let mut run = self.run;
        if let Some(names) = &self.roi_subset {
            run.roi_subset = Some(task.validate_roi_subset(names)?);
        }
        if run.save_lowres && task.requested_variant == Variant::Default {
            return Err(SegmentError::Model(
                "--save_lowres only works together with --fast or --fastest".into(),
            ));
        }
        let mut options = StoreOptions::from_env();
        options.offline = self.offline;
        options.download_command = format!("totalseg download --task {}", self.task);
        options.set_licence_command = "totalseg -l <licence number> ...".into();
        let store = WeightsStore::new(StoreDirs::from_env(&self.dirs), options);
        if task.licensed {
            check_stored_licence(&store, task.name)?;
        }
        let provider = make_provider(store, self.download_progress)?;
        Ok(Segmenter::with_provider(task, run, provider))
    }
}

/// The official tool's offline licence check (`show_license_info`), made before a licensed
/// task runs even when its weights are on disk: a licence number of 18 characters must be
/// stored in `<home>/config.json`.
fn check_stored_licence(store: &WeightsStore, task: &str) -> Result<(), SegmentError> {
    let config = TotalsegConfig::in_home(&store.dirs().home);
    match config.licence_key()? {
        None => Err(WeightsError::LicenceMissing {
            task: task.to_string(),
            config_file: config.path().to_path_buf(),
            set_command: "totalseg set-license -l".into(),
        }
        .into()),
        Some(key) if key.chars().count() != 18 => Err(WeightsError::LicenceFormat {
            key,
            reason: "it must have exactly 18 characters",
        }
        .into()),
        Some(_) => Ok(()),
    }
}

fn make_provider(
    device: Device,
    precision: Option<Precision>,
    store: WeightsStore,
    batch_size: Option<usize>,
    progress: Box<dyn ProgressSink + Send + Sync>,
) -> Result<(Arc<dyn ModelProvider + Send + Sync>, DeviceKind), SegmentError> {
    let kernel_cache = store.dirs().home.join("kernel-cache");
    #[cfg(feature = "cuda")]
    if matches!(device, Device::Gpu(_)) {
        gpu::configure_kernel_caches(&kernel_cache);
    }
    match decide_device(device, probe_cuda) {
        DeviceDecision::Cpu { fallback } => {
            if let Some(message) = fallback {
                log::warn!("{message}");
            }
            let provider = BurnModelProvider::<burn_flex::Flex>::new(
                store,
                burn_flex::FlexDevice,
                precision.unwrap_or(Precision::F32),
                BatchSizePolicy::Fixed(batch_size.unwrap_or(1)),
                progress,
            );
            Ok((Arc::new(provider), DeviceKind::Cpu))
        }
        DeviceDecision::Cuda { index, free_bytes } => {
            // Remove once a GPU run has matched the official tool (docs/gpu.md): the one
            // measured run did not.
            log::warn!(
                "the GPU path is experimental: its labels have not yet matched the official \
                 tool's (docs/gpu.md); use --device cpu for validated results"
            );
            if gpu::kernel_cache_is_empty(&kernel_cache) {
                log::warn!(
                    "first GPU run with the kernel cache {}: the GPU kernels are compiled and \
                     tuned now (minutes, once per machine)",
                    kernel_cache.display()
                );
            }
            let provider =
                cuda_provider(index, free_bytes, precision, store, batch_size, progress)?;
            Ok((provider, DeviceKind::Gpu))
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_provider(
    index: usize,
    free_bytes: u64,
    precision: Option<Precision>,
    store: WeightsStore,
    batch_size: Option<usize>,
    progress: Box<dyn ProgressSink + Send + Sync>,
) -> Result<Arc<dyn ModelProvider + Send + Sync>, SegmentError> {
    log::info!(
        "running on CUDA device {index} ({} MiB free)",
        free_bytes >> 20
    );
    let batch = match batch_size {
        Some(n) => BatchSizePolicy::Fixed(n),
        None => BatchSizePolicy::FromFreeMemory(Arc::new(move || cuda_driver::free_bytes(index))),
    };
    Ok(Arc::new(
        BurnModelProvider::<burn_cuda::Cuda>::new(
            store,
            burn_cuda::CudaDevice { index },
            precision.unwrap_or(Precision::F16),
            batch,
            progress,
        )
        .with_sliding_window_site(crate::models::SlidingWindowSite::Device),
    ))
}

/// Unreachable in practice: without the `cuda` feature the probe never reports a usable GPU.
#[cfg(not(feature = "cuda"))]
fn cuda_provider(
    index: usize,
    _free_bytes: u64,
    _precision: Option<Precision>,
    _store: WeightsStore,
    _batch_size: Option<usize>,
    _progress: Box<dyn ProgressSink + Send + Sync>,
) -> Result<Arc<dyn ModelProvider + Send + Sync>, SegmentError> {
    Err(SegmentError::Device(format!(
        "GPU {index}: this build has no GPU support (build with --features cuda)"
    )))
}
