//! The weights store: finds a model's converted weights in the cache, else converts the
//! official nnU-Net folder (reusing an existing TotalSegmentator installation), else
//! downloads the official release archive, unpacks it and converts it.
//!
//! # Layout on disk
//!
//! ```text
//! <home>/                                  $TOTALSEG_HOME_DIR, default ~/.totalsegmentator
//!   config.json                            the official tool's config; licence in "license_number"
//!   nnunet/results/                        $TOTALSEG_WEIGHTS_PATH / --weights-dir replaces it
//!     DatasetNNN_name/                     one release zip = this folder (official layout)
//!       <trainer>__<plans>__<cfg>/         plans.json, dataset.json, fold_*/checkpoint_final.pth
//!     .DatasetNNN_name.zip.part            a download in progress (kept to resume)
//!     .tmp-unpack-DatasetNNN_name~*/       unpacking in progress (removed on failure)
//!   rs-models/                             $TOTALSEG_RS_MODELS_DIR replaces it
//!     DatasetNNN_name/<trainer>__<plans>__<cfg>/
//!       model.safetensors                  written by the converter (docs/model-format.md)
//!       model.json
//!     .locks/DatasetNNN_name.lock          per-dataset lock (never deleted)
//! ```
//!
//! Downloads are unpacked exactly where the official tool unpacks them, so the Python tool and
//! this one share the nnU-Net folders. When `TOTALSEG_WEIGHTS_PATH` (or `--weights-dir`) is
//! set, `<home>/nnunet/results` is still searched (read-only).
//!
//! # Environment
//!
//! | variable | meaning |
//! |---|---|
//! | `TOTALSEG_HOME_DIR` | home folder (official) |
//! | `TOTALSEG_WEIGHTS_PATH` | nnU-Net results folder (official) |
//! | `TOTALSEG_RS_MODELS_DIR` | converted models (ours) |
//! | `TOTALSEG_WEIGHTS_URL_BASE` | replaces `https://github.com/wasserth/TotalSegmentator/releases/download` (mirrors, tests): archive URL = `<base>/<tag>/<DatasetNNN_name>.zip` |
//! | `TOTALSEG_LICENSE_SERVER_URL` | replaces `https://backend.totalsegmentator.com:443/` |
//! | `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY` (and lower case) | proxy, as Python `requests` reads them |
//!
//! # Guarantees
//!
//! * A model folder appears in the cache only complete: unpacking and conversion write into
//!   hidden temporary folders beside their destination and rename at the end; failures remove
//!   them (and leftovers of killed processes are removed by the next run under the lock).
//! * Concurrent runs (threads or processes) serialise per dataset on an OS file lock; the
//!   second one waits, then finds the first one's result.
//! * Downloads retry transient failures with exponential backoff, resume with `Range` (and
//!   restart when the server ignores it), check `Content-Length`, and the archive is checked
//!   entry by entry (CRC) while being unpacked into the temporary folder.

mod dirs;
mod download;
mod error;
mod fsutil;
mod http;
mod licence;
mod list;
mod lock;
mod progress;
mod proxy;
mod source;
mod store;
mod unpack;

pub use dirs::{DirOverrides, StoreDirs, ENV_CONVERTED_DIR, ENV_HOME_DIR, ENV_WEIGHTS_PATH};
pub use download::{download_to_file, DownloadRequest};
pub use error::{DownloadError, WeightsError};
pub use http::{HttpOptions, ProxySetting};
pub use licence::{
    check_licence_online, validate_licence_key, TotalsegConfig, DEFAULT_LICENCE_SERVER_URL,
    ENV_LICENCE_SERVER_URL, LICENCE_CONFIG_KEY, OFFICIAL_TOOL_VERSION,
};
pub use list::{InstalledModel, ModelForm};
pub use lock::DatasetLock;
pub use progress::{DownloadBar, NoProgress, ProgressEvent, ProgressSink};
pub use proxy::proxy_for_url;
pub use source::{DownloadSource, ModelSource, ModelSpec};
pub use store::{
    BoxError, ConvertedModel, Converter, StoreOptions, WeightsStore, CONVERTED_JSON_FILE,
    CONVERTED_SOURCE_FILE, CONVERTED_WEIGHTS_FILE, DEFAULT_RELEASE_URL_BASE, ENV_RELEASE_URL_BASE,
};
pub use unpack::{dataset_folders_in_archive, unpack_dataset_archive, ExpectedLayout};
