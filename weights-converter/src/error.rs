//! The one error type of the converter: every variant names the file and the problem.

use std::path::PathBuf;

/// Everything that can go wrong while converting an nnU-Net model folder.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A file or folder could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An output file could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is a pre-1.6 `torch.save` (a bare pickle stream), which is not supported.
    #[error("{path}: legacy non-zip torch.save format (torch < 1.6) is not supported; re-save it with torch >= 1.6")]
    LegacyTorchFormat {
        /// The checkpoint file.
        path: PathBuf,
    },
    /// The file is not a (complete) zip archive.
    #[error("{path}: not a PyTorch zip checkpoint (truncated or not a zip file): {reason}")]
    NotZip {
        /// The checkpoint file.
        path: PathBuf,
        /// What the zip reader reported.
        reason: String,
    },
    /// The zip has no `<archive>/data.pkl` entry.
    #[error("{path}: zip archive has no `<archive>/data.pkl` entry; not a torch.save file")]
    MissingDataPkl {
        /// The checkpoint file.
        path: PathBuf,
    },
    /// A zip entry is missing, unreadable or fails its CRC check.
    #[error("{path}: zip entry `{entry}`: {reason}")]
    ZipEntry {
        /// The checkpoint file.
        path: PathBuf,
        /// The entry name inside the archive.
        entry: String,
        /// What went wrong.
        reason: String,
    },
    /// `data.pkl` is not a pickle this reader understands.
    #[error("{path}: corrupt pickle `{entry}` at byte {offset}: {reason}")]
    Pickle {
        /// The checkpoint file.
        path: PathBuf,
        /// The pickle entry inside the archive.
        entry: String,
        /// Byte offset of the failing opcode.
        offset: usize,
        /// What went wrong.
        reason: String,
    },
    /// The pickle is readable but is not an nnU-Net checkpoint with `network_weights`.
    #[error("{path}: no `network_weights` state dict in the checkpoint ({found})")]
    MissingNetworkWeights {
        /// The checkpoint file.
        path: PathBuf,
        /// What the top level holds instead.
        found: String,
    },
    /// An entry of `network_weights` is not a usable tensor.
    #[error("{path}: tensor `{tensor}`: {reason}")]
    BadTensor {
        /// The checkpoint file.
        path: PathBuf,
        /// The state-dict key.
        tensor: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor reaches past the end of its storage file.
    #[error("{path}: tensor `{tensor}` needs {needed} bytes of storage `{storage}` but it holds {available}")]
    StorageTooShort {
        /// The checkpoint file.
        path: PathBuf,
        /// The state-dict key.
        tensor: String,
        /// The storage key (`<archive>/data/<key>`).
        storage: String,
        /// Bytes the tensor's offset, size and stride need.
        needed: u64,
        /// Bytes the storage entry holds.
        available: u64,
    },
    /// A JSON file does not parse.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The JSON file.
        path: PathBuf,
        /// The parser error.
        source: serde_json::Error,
    },
    /// The plans file lacks the requested configuration.
    #[error("{path}: configuration `{configuration}` not in plans (available: {available:?})")]
    MissingConfiguration {
        /// The plans file.
        path: PathBuf,
        /// The configuration asked for.
        configuration: String,
        /// The configurations the plans define.
        available: Vec<String>,
    },
    /// The plans file is missing a field or holds an unexpected value.
    #[error("{path}: {reason}")]
    Plans {
        /// The plans file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The plans describe a network this project does not implement.
    #[error("{path}: unsupported architecture: {reason}")]
    UnsupportedArchitecture {
        /// The plans file.
        path: PathBuf,
        /// What is unsupported.
        reason: String,
    },
    /// dataset.json is missing a field or holds an unexpected value.
    #[error("{path}: {reason}")]
    DatasetJson {
        /// The dataset.json file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The model folder is not laid out as nnU-Net writes it.
    #[error("{path}: {reason}")]
    ModelFolder {
        /// The model folder (or the file inside it).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The weights do not fit the architecture the plans describe, or folds disagree.
    #[error("{path}: weights do not match the plans: {reason}")]
    ArchitectureMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },
}
