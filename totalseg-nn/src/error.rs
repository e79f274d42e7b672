//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running a converted nnU-Net model.
///
/// Every variant names the file (and tensor) it is about, so a message is actionable on its own.
#[derive(Debug, thiserror::Error)]
pub enum NnError {
    /// A file could not be opened, mapped or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// `model.json` is not valid JSON or does not have the expected fields and types.
    #[error("invalid model description {path}: {source}")]
    Json {
        /// The `model.json` file.
        path: PathBuf,
        /// What serde_json reported.
        source: serde_json::Error,
    },

    /// `model.json` has no `architecture` block, so no network can be built from it.
    #[error("{path} has no `architecture` block; convert the model again with weights-converter")]
    MissingArchitecture {
        /// The `model.json` file.
        path: PathBuf,
    },

    /// `model.json` parses but describes something inconsistent or unsupported.
    #[error("invalid model description {path}: {reason}")]
    InvalidConfig {
        /// The `model.json` file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The network class named in `model.json` is not one this crate implements.
    #[error("{path}: unsupported network class `{class_name}` (supported: PlainConvUNet, ResidualEncoderUNet)")]
    UnsupportedNetwork {
        /// The `model.json` file.
        path: PathBuf,
        /// The `network_class_name` found.
        class_name: String,
    },

    /// `model.safetensors` is not a valid safetensors file or lacks the format metadata.
    #[error("invalid weights file {path}: {reason}")]
    InvalidWeightsFile {
        /// The weights file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A tensor the architecture needs is not in the weights file.
    #[error("{path}: missing tensor `{name}`")]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// The full tensor name, fold prefix included.
        name: String,
    },

    /// The weights file holds a tensor the architecture has no place for.
    #[error("{path}: unexpected tensor `{name}` (not part of the architecture in model.json)")]
    UnexpectedTensor {
        /// The weights file.
        path: PathBuf,
        /// The full tensor name.
        name: String,
    },

    /// A tensor has a different shape than the architecture implies.
    #[error("{path}: tensor `{name}` has shape {found:?}, the architecture needs {expected:?}")]
    ShapeMismatch {
        /// The weights file.
        path: PathBuf,
        /// The full tensor name.
        name: String,
        /// The shape implied by `model.json`.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },

    /// A tensor has a different element type than `model.json` declares (or one that is not supported).
    #[error("{path}: tensor `{name}` has dtype {found}, expected {expected}")]
    DtypeMismatch {
        /// The weights file.
        path: PathBuf,
        /// The full tensor name.
        name: String,
        /// The dtype declared in `model.json`.
        expected: String,
        /// The dtype in the file.
        found: String,
    },

    /// The requested compute precision is not supported by the backend on this device.
    #[error("precision {precision} is not supported by backend {backend}")]
    UnsupportedPrecision {
        /// The requested precision.
        precision: String,
        /// The backend's name.
        backend: String,
    },

    /// A network input does not fit the architecture.
    #[error("invalid network input: {reason}")]
    InvalidInput {
        /// What is wrong with the input.
        reason: String,
    },
}
