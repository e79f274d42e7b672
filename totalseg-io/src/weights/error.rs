//! Errors of the weights store. Every variant names the file, folder or URL concerned and,
//! where there is one, the next step for the user.

use std::io;
use std::path::{Path, PathBuf};

/// The error type of the weights store.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// Offline mode and neither a converted nor an nnU-Net copy of the model is on disk.
    #[error(
        "model {model} is not on disk and offline mode forbids downloading it.\n  \
         expected the nnU-Net folder {expected} (with plans.json, dataset.json, fold_*/checkpoint_final.pth)\n  \
         or the converted model {converted}.\n  \
         next step: run `{command}` while online{url_hint}"
    )]
    OfflineMissing {
        /// `<DatasetNNN_name>/<trainer>__<plans>__<configuration>`.
        model: String,
        /// Where the official nnU-Net model folder was looked for (first search root).
        expected: PathBuf,
        /// Where the converted model was looked for.
        converted: PathBuf,
        /// The CLI command that fetches it.
        command: String,
        /// `", or download <url> and unpack it into <dir>"`, or empty.
        url_hint: String,
    },

    /// The model has no published download (the official tool's "TODO" entries).
    #[error(
        "model {model} has no published download; put its nnU-Net folder at {expected} by hand"
    )]
    NoDownloadSource {
        /// `<DatasetNNN_name>/<trainer>__<plans>__<configuration>`.
        model: String,
        /// Where the nnU-Net model folder is expected.
        expected: PathBuf,
    },

    /// A licensed model was requested and no licence key is stored.
    #[error(
        "task {task} needs a TotalSegmentator licence, and none is set in {config_file}.\n  \
         A free licence for non-commercial use: https://backend.totalsegmentator.com/license-academic/ \
         (commercial use: jakob.wasserthal@usb.ch).\n  \
         next step: `{set_command} <aca_...>` (or the Python tool's `totalseg_set_license -l <aca_...>`)"
    )]
    LicenceMissing {
        /// The licensed task name sent to the licence server.
        task: String,
        /// `<home>/config.json`.
        config_file: PathBuf,
        /// Our CLI command that stores a key.
        set_command: String,
    },

    /// A licence key does not have the official format.
    #[error(
        "invalid licence key {key:?}: {reason} (a key has 18 characters and starts with `aca_`)"
    )]
    LicenceFormat {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The licence server rejected the key.
    #[error("the licence server {url} rejected licence key {key:?} (HTTP {status}); check the key or contact support")]
    LicenceRejected {
        /// The licence server address used.
        url: String,
        /// The stored key.
        key: String,
        /// HTTP status of the answer.
        status: u16,
    },

    /// The licence server could not be asked.
    #[error("could not check the licence with {url}: {error}; check the network, or store the key without the online check")]
    LicenceServer {
        /// The address used.
        url: String,
        /// What went wrong.
        #[source]
        error: DownloadError,
    },

    /// `<home>/config.json` exists but cannot be used.
    #[error("config file {path} is not valid: {reason}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A download failed (after retries where retrying made sense).
    #[error(
        "could not download {what} from {url} into {dest}: {error}\n  next step: {}",
        next_step_for(error, url, dest)
    )]
    Download {
        /// The dataset folder name being fetched.
        what: String,
        /// The URL requested.
        url: String,
        /// The folder the archive was to be unpacked into.
        dest: PathBuf,
        /// What went wrong.
        #[source]
        error: DownloadError,
    },

    /// The archive is damaged (bad CRC, truncated, not a zip); it was deleted.
    #[error(
        "the archive downloaded from {url} is corrupt ({reason}); it was deleted ({path}).\n  \
         next step: run the command again to download it afresh; if it fails again the file at \
         that address is broken (try another mirror via TOTALSEG_WEIGHTS_URL_BASE)"
    )]
    CorruptArchive {
        /// Where it came from.
        url: String,
        /// The archive file (now deleted).
        path: PathBuf,
        /// The zip reader's complaint.
        reason: String,
    },

    /// The archive is a valid zip but does not hold the expected nnU-Net folder.
    #[error(
        "the archive from {url} does not hold the expected nnU-Net model {expected} \
         (`{expected_top}/<trainer>__<plans>__<configuration>/` with plans.json, dataset.json \
         and fold_*/checkpoint_final.pth); \
         it holds: {found}. Nothing was unpacked. next step: check the download address"
    )]
    UnexpectedLayout {
        /// Where it came from.
        url: String,
        /// The expected `<DatasetNNN_name>/<trainer>__<plans>__<configuration>`.
        expected: String,
        /// The expected top-level folder.
        expected_top: String,
        /// A summary of what the archive holds.
        found: String,
    },

    /// An archive entry would be written outside the destination (zip slip) or is a link.
    #[error("the archive from {url} holds an unsafe entry {entry:?} (absolute path, `..` or a link); nothing was unpacked")]
    UnsafeArchiveEntry {
        /// Where it came from.
        url: String,
        /// The entry name as stored.
        entry: String,
    },

    /// An nnU-Net model folder exists but lacks files (e.g. an interrupted unpack).
    #[error(
        "the nnU-Net model folder {path} is incomplete (missing {missing}).\n  \
         next step: delete this folder and run again to download it afresh"
    )]
    IncompleteModelFolder {
        /// The model folder.
        path: PathBuf,
        /// What is missing.
        missing: String,
    },

    /// The converter callback failed.
    #[error("converting the nnU-Net model {model_dir} failed: {source}")]
    Conversion {
        /// The nnU-Net model folder given to the converter.
        model_dir: PathBuf,
        /// The converter's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The converter returned success without writing the expected files.
    #[error(
        "the converter reported success for {model_dir} but did not write {missing} into {out_dir}"
    )]
    ConversionIncomplete {
        /// The nnU-Net model folder given to the converter.
        model_dir: PathBuf,
        /// The folder it was to write into.
        out_dir: PathBuf,
        /// The missing file name.
        missing: &'static str,
    },

    /// The disk (or quota) is full.
    #[error("no space left on the device holding {path} while {op}; free some space (a large model needs up to 2x its zip size during unpacking) and run again")]
    DiskFull {
        /// The file or folder being written.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
    },

    /// The process may not write where it must.
    #[error("no permission to write {path} while {op}; make the folder writable or choose another one (TOTALSEG_HOME_DIR / TOTALSEG_WEIGHTS_PATH / --weights-dir)")]
    NotWritable {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
    },

    /// Any other file-system error.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// What went wrong while fetching one URL.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The server answered with an error status that retrying does not fix (or retries ran out).
    #[error("HTTP {status}{} after {attempts} attempt(s)", reason_phrase(*status))]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// No answer in time.
    #[error("timed out ({detail}) after {attempts} attempt(s)")]
    Timeout {
        /// Which phase timed out.
        detail: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The connection could not be made or broke.
    #[error("connection failed ({detail}) after {attempts} attempt(s)")]
    Connection {
        /// The transport error.
        detail: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The body ended before `Content-Length` bytes arrived, on every attempt.
    #[error("transfer ended early: {received} of {expected} bytes after {attempts} attempt(s); the partial file {part} is kept so that the next run resumes it")]
    Truncated {
        /// Bytes on disk.
        received: u64,
        /// Bytes announced.
        expected: u64,
        /// Attempts made.
        attempts: u32,
        /// The partial file kept for resuming.
        part: PathBuf,
    },
    /// More bytes arrived than announced, or a `Content-Range` did not fit.
    #[error("the server's answer is inconsistent: {0}")]
    Inconsistent(String),
    /// The request could not be built (bad URL, bad proxy setting, TLS setup).
    #[error("invalid request: {0}")]
    Request(String),
    /// Writing the downloaded bytes failed.
    #[error("{0}")]
    Local(Box<WeightsError>),
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        401 => " Unauthorized",
        403 => " Forbidden",
        404 => " Not Found",
        408 => " Request Timeout",
        410 => " Gone",
        429 => " Too Many Requests",
        500 => " Internal Server Error",
        502 => " Bad Gateway",
        503 => " Service Unavailable",
        504 => " Gateway Timeout",
        _ => "",
    }
}

fn next_step_for(error: &DownloadError, url: &str, dest: &Path) -> String {
    let manual = format!(
        "or download {url} by hand and unzip it into {}",
        dest.display()
    );
    match error {
        DownloadError::HttpStatus { status: 404 | 410, .. } => format!(
            "there is no file at this address; check the mirror in TOTALSEG_WEIGHTS_URL_BASE, {manual}"
        ),
        DownloadError::HttpStatus {
            status: 401 | 403, ..
        } => format!("access was refused; check the licence key / mirror permissions, {manual}"),
        DownloadError::HttpStatus { .. } => {
            format!("the server had a problem; try again later, {manual}")
        }
        DownloadError::Timeout { .. } | DownloadError::Connection { .. } => format!(
            "check the network connection and the proxy settings (HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY), then run again, {manual}"
        ),
        DownloadError::Truncated { .. } => {
            "run the same command again: the download resumes where it stopped".to_string()
        }
        DownloadError::Inconsistent(_) => format!("run again; if it persists, {manual}"),
        DownloadError::Request(_) => {
            "check the URL (TOTALSEG_WEIGHTS_URL_BASE) and the proxy variables".to_string()
        }
        DownloadError::Local(inner) => match inner.as_ref() {
            WeightsError::DiskFull { .. } => "free disk space and run again".to_string(),
            WeightsError::NotWritable { .. } => {
                "make the weights folder writable or choose another one".to_string()
            }
            _ => "fix the file-system problem above and run again".to_string(),
        },
    }
}

/// Maps an I/O error to the typed error, singling out a full disk and missing permissions.
pub(crate) fn io_error(op: &'static str, path: &Path, source: io::Error) -> WeightsError {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    const EACCES: i32 = 13;
    const EPERM: i32 = 1;
    const EROFS: i32 = 30;
    let path = path.to_path_buf();
    match (source.kind(), source.raw_os_error()) {
        (io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded, _)
        | (_, Some(ENOSPC | EDQUOT)) => WeightsError::DiskFull { path, op },
        (io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem, _)
        | (_, Some(EACCES | EPERM | EROFS)) => WeightsError::NotWritable { path, op },
        _ => WeightsError::Io { op, path, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_and_eacces_are_singled_out() {
        let p = Path::new("/x/y");
        assert!(matches!(
            io_error("writing", p, io::Error::from_raw_os_error(28)),
            WeightsError::DiskFull { .. }
        ));
        assert!(matches!(
            io_error("writing", p, io::Error::from_raw_os_error(13)),
            WeightsError::NotWritable { .. }
        ));
        assert!(matches!(
            io_error("writing", p, io::Error::from_raw_os_error(30)),
            WeightsError::NotWritable { .. }
        ));
        assert!(matches!(
            io_error("writing", p, io::Error::other("x")),
            WeightsError::Io { .. }
        ));
        let msg = io_error("unpacking", p, io::Error::from_raw_os_error(28)).to_string();
        assert!(msg.contains("/x/y") && msg.contains("no space"), "{msg}");
    }

    #[test]
    fn not_found_message_names_url_status_and_next_step() {
        let e = WeightsError::Download {
            what: "Dataset1_x".into(),
            url: "http://h/a.zip".into(),
            dest: PathBuf::from("/w/results"),
            error: DownloadError::HttpStatus {
                status: 404,
                attempts: 1,
            },
        };
        let msg = e.to_string();
        assert!(msg.contains("HTTP 404 Not Found"), "{msg}");
        assert!(msg.contains("http://h/a.zip"), "{msg}");
        assert!(msg.contains("/w/results"), "{msg}");
        assert!(msg.contains("TOTALSEG_WEIGHTS_URL_BASE"), "{msg}");
    }
}
