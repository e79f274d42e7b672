//! The store: converted model from the cache, else the official nnU-Net folder converted,
//! else the release archive downloaded, unpacked and converted, all under a per-dataset lock.

use std::path::{Path, PathBuf};

use super::dirs::{DirOverrides, StoreDirs};
use super::download::{download_to_file, DownloadRequest};
use super::error::{io_error, DownloadError, WeightsError};
use super::fsutil::{remove_stale_temps, TempDir};
use super::http::HttpOptions;
use super::licence::{
    TotalsegConfig, DEFAULT_LICENCE_SERVER_URL, ENV_LICENCE_SERVER_URL, LICENCE_CONFIG_KEY,
    OFFICIAL_TOOL_VERSION,
};
use super::lock::DatasetLock;
use super::progress::{ProgressEvent, ProgressSink};
use super::source::{join_url, DownloadSource, ModelSource, ModelSpec};
use super::unpack::{unpack_dataset_archive, ExpectedLayout};

/// Where the official release archives are: `<base>/<tag>/<DatasetNNN_name>.zip`.
pub const DEFAULT_RELEASE_URL_BASE: &str =
    "https://github.com/wasserth/TotalSegmentator/releases/download";
/// Environment variable replacing [`DEFAULT_RELEASE_URL_BASE`] (mirrors, tests).
pub const ENV_RELEASE_URL_BASE: &str = "TOTALSEG_WEIGHTS_URL_BASE";
/// File name of the converted weights inside a converted model folder.
pub const CONVERTED_WEIGHTS_FILE: &str = "model.safetensors";
/// File name of the converted model description inside a converted model folder.
pub const CONVERTED_JSON_FILE: &str = "model.json";
/// File inside a converted model folder naming the nnU-Net files it was made from (path,
/// size, modification time): a converted model whose source has changed since is stale.
pub const CONVERTED_SOURCE_FILE: &str = "source.txt";

/// The error type converters return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Converts an nnU-Net model folder (first argument) into our format, writing
/// [`CONVERTED_WEIGHTS_FILE`] and [`CONVERTED_JSON_FILE`] into an existing, empty folder
/// (second argument).
pub type Converter<'a> = dyn Fn(&Path, &Path) -> Result<(), BoxError> + 'a;

/// Behaviour of a [`WeightsStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Never touch the network; a missing model is an error naming the expected folder.
    pub offline: bool,
    /// Base of release URLs ([`DEFAULT_RELEASE_URL_BASE`]).
    pub release_url_base: String,
    /// Licence server ([`DEFAULT_LICENCE_SERVER_URL`]).
    pub licence_server_url: String,
    /// Timeouts, retries, proxy.
    pub http: HttpOptions,
    /// The command that downloads weights, quoted in offline errors.
    pub download_command: String,
    /// The command that stores a licence key, quoted in licence errors.
    pub set_licence_command: String,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            offline: false,
            release_url_base: DEFAULT_RELEASE_URL_BASE.to_string(),
            licence_server_url: DEFAULT_LICENCE_SERVER_URL.to_string(),
            http: HttpOptions::default(),
            download_command: "totalseg download".to_string(),
            set_licence_command: "totalseg set-license".to_string(),
        }
    }
}

impl StoreOptions {
    /// Defaults, with the URLs replaced by `TOTALSEG_WEIGHTS_URL_BASE` and
    /// `TOTALSEG_LICENSE_SERVER_URL` when set.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let defaults = Self::default();
        Self {
            release_url_base: var(ENV_RELEASE_URL_BASE).unwrap_or(defaults.release_url_base),
            licence_server_url: var(ENV_LICENCE_SERVER_URL).unwrap_or(defaults.licence_server_url),
            ..Self::default()
        }
    }
}

/// A converted model on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertedModel {
    /// `<converted>/<DatasetNNN_name>/<trainer>__<plans>__<cfg>`.
    pub dir: PathBuf,
    /// `<dir>/model.safetensors`.
    pub weights: PathBuf,
    /// `<dir>/model.json`.
    pub json: PathBuf,
}

impl ConvertedModel {
    fn at(dir: PathBuf) -> Self {
        Self {
            weights: dir.join(CONVERTED_WEIGHTS_FILE),
            json: dir.join(CONVERTED_JSON_FILE),
            dir,
        }
    }

    fn is_complete(&self) -> bool {
        self.weights.is_file() && self.json.is_file()
    }
}

/// The weights store. See the [module documentation](crate::weights) for the layout.
///
/// Converting an existing nnU-Net folder, offline:
///
/// ```
/// use std::path::Path;
/// use totalseg_io::weights::{
///     BoxError, DownloadSource, ModelSource, ModelSpec, NoProgress, StoreDirs, StoreOptions,
///     WeightsStore,
/// };
/// let home = std::env::temp_dir().join(format!("weights-doc-{}", std::process::id()));
/// let nnunet = home.join("nnunet/results/Dataset001_demo/nnUNetTrainer__nnUNetPlans__3d_fullres");
/// std::fs::create_dir_all(nnunet.join("fold_0"))?;
/// for file in ["plans.json", "dataset.json", "fold_0/checkpoint_final.pth"] {
///     std::fs::write(nnunet.join(file), b"{}")?;
/// }
/// let mut store = WeightsStore::new(StoreDirs::under(&home), StoreOptions::default());
/// store.set_offline(true);
/// let source = ModelSource {
///     dataset_id: 1,
///     folder_name: "Dataset001_demo".into(),
///     download: DownloadSource::Unavailable,
/// };
/// let spec = ModelSpec::new(source, "nnUNetTrainer", "3d_fullres");
/// let convert = |_nnunet_dir: &Path, out: &Path| -> Result<(), BoxError> {
///     std::fs::write(out.join("model.safetensors"), b"")?;
///     std::fs::write(out.join("model.json"), b"{}")?;
///     Ok(())
/// };
/// let model = store.ensure_converted(&spec, &convert, &NoProgress)?;
/// assert_eq!(
///     model.dir,
///     home.join("rs-models/Dataset001_demo/nnUNetTrainer__nnUNetPlans__3d_fullres")
/// );
/// assert_eq!(store.list_models()?.len(), 2); // the converted and the nnU-Net folder
/// # std::fs::remove_dir_all(&home)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct WeightsStore {
    dirs: StoreDirs,
    options: StoreOptions,
}

impl WeightsStore {
    /// A store over the given folders.
    pub fn new(dirs: StoreDirs, options: StoreOptions) -> Self {
        Self { dirs, options }
    }

    /// Folders from the environment (with `overrides`), options from the environment.
    pub fn from_env(overrides: &DirOverrides) -> Self {
        Self::new(StoreDirs::from_env(overrides), StoreOptions::from_env())
    }

    /// The folders.
    pub fn dirs(&self) -> &StoreDirs {
        &self.dirs
    }

    /// The options.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// Switches offline mode.
    pub fn set_offline(&mut self, offline: bool) {
        self.options.offline = offline;
    }

    /// `<home>/config.json` (licence key).
    pub fn config(&self) -> TotalsegConfig {
        TotalsegConfig::new(self.dirs.config_file())
    }

    /// Where the converted model of `spec` lives (whether or not it exists).
    pub fn converted_dir(&self, spec: &ModelSpec) -> PathBuf {
        self.dirs
            .converted
            .join(&spec.source.folder_name)
            .join(spec.model_folder_name())
    }

    /// The converted model of `spec`, when both of its files exist.
    pub fn find_converted(&self, spec: &ModelSpec) -> Option<ConvertedModel> {
        let model = ConvertedModel::at(self.converted_dir(spec));
        model.is_complete().then_some(model)
    }

    /// The converted model of `spec` if it is complete and still matches its nnU-Net source:
    /// when the official folder it was converted from is present, its files must be the ones
    /// recorded at conversion ([`CONVERTED_SOURCE_FILE`]); otherwise (other weights in
    /// `--weights-dir`, an updated release) the model is converted again. Without a source
    /// folder the cache is all there is, and it is used.
    fn find_current_converted(&self, spec: &ModelSpec) -> Option<ConvertedModel> {
        let model = self.find_converted(spec)?;
        let Ok(Some(source)) = self.find_nnunet_model(spec) else {
            return Some(model);
        };
        let recorded = std::fs::read_to_string(model.dir.join(CONVERTED_SOURCE_FILE)).ok();
        if recorded.as_deref() == Some(source_fingerprint(&source).as_str()) {
            Some(model)
        } else {
            log::info!(
                "{} was converted from other weights than {}: converting again",
                model.dir.display(),
                source.display()
            );
            None
        }
    }

    /// The archive URL of `source` (`None` for [`DownloadSource::Unavailable`]).
    pub fn download_url(&self, source: &ModelSource) -> Option<String> {
        match &source.download {
            DownloadSource::Release { tag } => Some(join_url(
                &self.options.release_url_base,
                &[tag, &format!("{}.zip", source.folder_name)],
            )),
            DownloadSource::Url(url) => Some(url.clone()),
            DownloadSource::Licensed { .. } => Some(join_url(
                &self.options.licence_server_url,
                &["download_weights"],
            )),
            DownloadSource::Unavailable => None,
        }
    }

    /// The complete official nnU-Net model folder of `spec` in any search root:
    /// `<root>/<DatasetNNN_name>/<model>/`, else (as nnU-Net resolves ids)
    /// `<root>/DatasetNNN_*/<model>/`. A folder that exists but lacks `plans.json`,
    /// `dataset.json` or every `fold_*/checkpoint_final.pth` is an error when no complete
    /// copy is found.
    pub fn find_nnunet_model(&self, spec: &ModelSpec) -> Result<Option<PathBuf>, WeightsError> {
        let model_folder = spec.model_folder_name();
        let mut incomplete = None;
        for root in &self.dirs.nnunet_roots {
            for dataset in dataset_candidates(root, &spec.source) {
                let dir = dataset.join(&model_folder);
                match model_folder_state(&dir) {
                    FolderState::Complete => return Ok(Some(dir)),
                    FolderState::Incomplete(missing) => {
                        incomplete.get_or_insert((dir, missing));
                    }
                    FolderState::Absent => {}
                }
            }
        }
        match incomplete {
            Some((path, missing)) => Err(WeightsError::IncompleteModelFolder { path, missing }),
            None => Ok(None),
        }
    }

    /// The official nnU-Net model folder of `spec`, downloaded and unpacked into the first
    /// nnU-Net root if no search root has it (unless offline).
    pub fn ensure_nnunet_model(
        &self,
        spec: &ModelSpec,
        progress: &dyn ProgressSink,
    ) -> Result<PathBuf, WeightsError> {
        if let Some(dir) = self.find_nnunet_model(spec)? {
            return Ok(dir);
        }
        if self.options.offline {
            return Err(self.offline_error(spec));
        }
        let _lock = self.lock(&spec.source, progress)?;
        self.ensure_nnunet_model_locked(spec, progress)
    }

    /// The converted model of `spec`: from the cache, else converted from the official
    /// nnU-Net folder (an existing installation is reused), else downloaded, unpacked and
    /// converted. Concurrent callers (threads or processes) wait for each other per dataset.
    ///
    /// ```no_run
    /// use std::path::Path;
    /// use totalseg_io::weights::{
    ///     BoxError, DirOverrides, DownloadBar, DownloadSource, ModelSource, ModelSpec, WeightsStore,
    /// };
    /// let store = WeightsStore::from_env(&DirOverrides::default());
    /// let spec = ModelSpec::new(
    ///     ModelSource {
    ///         dataset_id: 297,
    ///         folder_name: "Dataset297_TotalSegmentator_total_3mm_1559subj".into(),
    ///         download: DownloadSource::Release { tag: "v2.0.0-weights".into() },
    ///     },
    ///     "nnUNetTrainer_4000epochs_NoMirroring",
    ///     "3d_fullres",
    /// );
    /// let convert = |nnunet_dir: &Path, out_dir: &Path| -> Result<(), BoxError> {
    ///     // weights_converter::convert_model_folder(nnunet_dir, out_dir, ...)
    ///     Ok(())
    /// };
    /// let model = store.ensure_converted(&spec, &convert, &DownloadBar::new())?;
    /// println!("{}", model.weights.display());
    /// # Ok::<(), totalseg_io::weights::WeightsError>(())
    /// ```
    pub fn ensure_converted(
        &self,
        spec: &ModelSpec,
        converter: &Converter<'_>,
        progress: &dyn ProgressSink,
    ) -> Result<ConvertedModel, WeightsError> {
        if let Some(model) = self.find_current_converted(spec) {
            return Ok(model);
        }
        // Offline and nothing to convert: say so without touching the cache (no lock file).
        if self.options.offline && self.find_nnunet_model(spec)?.is_none() {
            return Err(self.offline_error(spec));
        }
        let _lock = self.lock(&spec.source, progress)?;
        // Another process may have finished while this one waited.
        if let Some(model) = self.find_current_converted(spec) {
            return Ok(model);
        }
        let nnunet_dir = match self.find_nnunet_model(spec)? {
            Some(dir) => dir,
            None => self.ensure_nnunet_model_locked(spec, progress)?,
        };
        self.convert_locked(spec, &nnunet_dir, converter, progress)
    }

    /// `<converted>/.locks/<DatasetNNN_name>.lock`, held while a dataset is fetched or
    /// converted.
    pub fn lock_file(&self, source: &ModelSource) -> PathBuf {
        self.dirs
            .converted
            .join(".locks")
            .join(format!("{}.lock", source.folder_name))
    }

    fn lock(
        &self,
        source: &ModelSource,
        progress: &dyn ProgressSink,
    ) -> Result<DatasetLock, WeightsError> {
        DatasetLock::acquire(&self.lock_file(source), progress)
    }

    fn ensure_nnunet_model_locked(
        &self,
        spec: &ModelSpec,
        progress: &dyn ProgressSink,
    ) -> Result<PathBuf, WeightsError> {
        if let Some(dir) = self.find_nnunet_model(spec)? {
            return Ok(dir);
        }
        let root = self.dirs.download_root().to_path_buf();
        let expected = root
            .join(&spec.source.folder_name)
            .join(spec.model_folder_name());
        let Some(url) = self.download_url(&spec.source) else {
            return Err(WeightsError::NoDownloadSource {
                model: spec.display_name(),
                expected,
            });
        };
        if self.options.offline {
            return Err(self.offline_error(spec));
        }
        // Licensed downloads carry the key in a POST body, as the official tool sends it.
        let licensed_body = match &spec.source.download {
            DownloadSource::Licensed { task_name } => {
                let config = self.config();
                let Some(key) = config.licence_key()? else {
                    return Err(WeightsError::LicenceMissing {
                        task: task_name.clone(),
                        config_file: config.path().to_path_buf(),
                        set_command: self.options.set_licence_command.clone(),
                    });
                };
                Some((
                    key.clone(),
                    serde_json::json!({
                        LICENCE_CONFIG_KEY: key,
                        "task": task_name,
                        "version": OFFICIAL_TOOL_VERSION,
                    })
                    .to_string(),
                ))
            }
            _ => None,
        };

        std::fs::create_dir_all(&root)
            .map_err(|e| io_error("creating the weights folder", &root, e))?;
        let folder = &spec.source.folder_name;
        remove_stale_temps(&root, &format!("unpack-{folder}"));
        let part = root.join(format!(".{folder}.zip.part"));
        let request = match &licensed_body {
            Some((_, body)) => DownloadRequest::PostJson {
                url: &url,
                body: body.as_bytes(),
            },
            None => DownloadRequest::Get { url: &url },
        };
        if let Err(error) = download_to_file(&request, &part, &self.options.http, progress) {
            let resumable = matches!(request, DownloadRequest::Get { .. })
                && matches!(
                    error,
                    DownloadError::Truncated { .. }
                        | DownloadError::Timeout { .. }
                        | DownloadError::Connection { .. }
                )
                && std::fs::metadata(&part).is_ok_and(|m| m.len() > 0);
            if !resumable {
                let _ = std::fs::remove_file(&part);
            }
            if let (Some((key, _)), DownloadError::HttpStatus { status, .. }) =
                (&licensed_body, &error)
            {
                if matches!(status, 400 | 401 | 403) {
                    return Err(WeightsError::LicenceRejected {
                        url,
                        key: key.clone(),
                        status: *status,
                    });
                }
            }
            return Err(WeightsError::Download {
                what: folder.clone(),
                url,
                dest: root,
                error,
            });
        }

        progress.event(&ProgressEvent::Unpacking { archive: &part });
        let model_folder = spec.model_folder_name();
        let layout = ExpectedLayout {
            folder_name: folder,
            model_folder: Some(&model_folder),
        };
        match unpack_dataset_archive(&part, layout, &root, &url) {
            Ok(_) => {
                let _ = std::fs::remove_file(&part);
            }
            Err(e) => {
                // Keep a good archive when only the local disk failed: the next run finds it
                // complete (HTTP 416 on resume) and unpacks it again without downloading.
                let local_failure = matches!(
                    e,
                    WeightsError::DiskFull { .. }
                        | WeightsError::NotWritable { .. }
                        | WeightsError::Io { .. }
                );
                if !local_failure {
                    let _ = std::fs::remove_file(&part);
                }
                return Err(e);
            }
        }
        match self.find_nnunet_model(spec)? {
            Some(dir) => Ok(dir),
            None => Err(WeightsError::IncompleteModelFolder {
                path: expected,
                missing: "the model folder after unpacking".to_string(),
            }),
        }
    }

    /// The error for a model that is missing while offline.
    fn offline_error(&self, spec: &ModelSpec) -> WeightsError {
        let root = self.dirs.download_root();
        let expected = root
            .join(&spec.source.folder_name)
            .join(spec.model_folder_name());
        let url_hint = match (&spec.source.download, self.download_url(&spec.source)) {
            (DownloadSource::Licensed { .. }, _) => {
                " (a licensed model: store the licence key first)".to_string()
            }
            (_, Some(url)) => format!(", or download {url} and unzip it into {}", root.display()),
            (_, None) => " (no published download: place the folder by hand)".to_string(),
        };
        WeightsError::OfflineMissing {
            model: spec.display_name(),
            expected,
            converted: self.converted_dir(spec),
            command: self.options.download_command.clone(),
            url_hint,
        }
    }

    fn convert_locked(
        &self,
        spec: &ModelSpec,
        nnunet_dir: &Path,
        converter: &Converter<'_>,
        progress: &dyn ProgressSink,
    ) -> Result<ConvertedModel, WeightsError> {
        let final_dir = self.converted_dir(spec);
        let parent = final_dir
            .parent()
            .unwrap_or(self.dirs.converted.as_path())
            .to_path_buf();
        let label = format!("convert-{}", spec.model_folder_name());
        remove_stale_temps(&parent, &label);
        let tmp = TempDir::create_in(&parent, &label)?;
        progress.event(&ProgressEvent::Converting {
            model_dir: nnunet_dir,
        });
        converter(nnunet_dir, tmp.path()).map_err(|source| WeightsError::Conversion {
            model_dir: nnunet_dir.to_path_buf(),
            source,
        })?;
        let source_file = tmp.path().join(CONVERTED_SOURCE_FILE);
        std::fs::write(&source_file, source_fingerprint(nnunet_dir))
            .map_err(|e| io_error("writing", &source_file, e))?;
        for file in [CONVERTED_WEIGHTS_FILE, CONVERTED_JSON_FILE] {
            if !tmp.path().join(file).is_file() {
                return Err(WeightsError::ConversionIncomplete {
                    model_dir: nnunet_dir.to_path_buf(),
                    out_dir: tmp.path().to_path_buf(),
                    missing: file,
                });
            }
        }
        if final_dir.exists() {
            // An incomplete leftover (find_converted said no, and we hold the lock).
            std::fs::remove_dir_all(&final_dir)
                .map_err(|e| io_error("removing the incomplete converted model", &final_dir, e))?;
        }
        std::fs::rename(tmp.path(), &final_dir)
            .map_err(|e| io_error("moving the converted model into place at", &final_dir, e))?;
        tmp.keep();
        Ok(ConvertedModel::at(final_dir))
    }
}

/// `<root>/<folder_name>` first, then other `<root>/DatasetNNN_*` folders (sorted).
fn dataset_candidates(root: &Path, source: &ModelSource) -> Vec<PathBuf> {
    let mut out = vec![root.join(&source.folder_name)];
    let prefix = format!("Dataset{:03}_", source.dataset_id);
    if let Ok(entries) = std::fs::read_dir(root) {
        let mut others: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(&prefix) && name != source.folder_name
            })
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        others.sort();
        out.extend(others);
    }
    out
}

pub(crate) enum FolderState {
    Absent,
    Incomplete(String),
    Complete,
}

/// Whether an nnU-Net model folder has `plans.json`, `dataset.json` and a checkpoint.
pub(crate) fn model_folder_state(dir: &Path) -> FolderState {
    if !dir.is_dir() {
        return FolderState::Absent;
    }
    let mut missing = Vec::new();
    for file in ["plans.json", "dataset.json"] {
        if !dir.join(file).is_file() {
            missing.push(file.to_string());
        }
    }
    if checkpoint_folds(dir).is_empty() {
        missing.push("fold_*/checkpoint_final.pth".to_string());
    }
    if missing.is_empty() {
        FolderState::Complete
    } else {
        FolderState::Incomplete(missing.join(", "))
    }
}

/// What identifies the nnU-Net files a model is converted from: the folder's canonical path,
/// then per file (plans, dataset, each fold's checkpoint) its size and modification time.
fn source_fingerprint(dir: &Path) -> String {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mut text = format!("{}\n", canonical.display());
    let mut files = vec!["plans.json".to_string(), "dataset.json".to_string()];
    files.extend(
        checkpoint_folds(dir)
            .into_iter()
            .map(|k| format!("fold_{k}/checkpoint_final.pth")),
    );
    for file in files {
        let (len, modified) = match std::fs::metadata(dir.join(&file)) {
            Ok(meta) => {
                let modified = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                (meta.len(), modified)
            }
            Err(_) => (0, 0),
        };
        text.push_str(&format!("{file}\t{len}\t{modified}\n"));
    }
    text
}

/// Fold numbers `k` with `fold_<k>/checkpoint_final.pth`, sorted.
pub(crate) fn checkpoint_folds(dir: &Path) -> Vec<u32> {
    let mut folds: Vec<u32> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let k = name.strip_prefix("fold_")?.parse().ok()?;
                    e.path().join("checkpoint_final.pth").is_file().then_some(k)
                })
                .collect()
        })
        .unwrap_or_default();
    folds.sort_unstable();
    folds
}
