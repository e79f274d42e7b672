//! The errors of a segmentation run, each naming what failed and where.

use std::path::PathBuf;

use totalseg_core::crop::CropError;
use totalseg_core::export::ExportError;
use totalseg_core::geometry::GeometryError;
use totalseg_core::resample::ResampleError;
use totalseg_core::sliding_window::SlidingWindowError;
use totalseg_core::tasks::TaskError;

/// Why a segmentation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// Reading or writing an image failed.
    #[error(transparent)]
    Nifti(#[from] totalseg_io::nifti::NiftiError),
    /// Reading a DICOM series failed.
    #[error(transparent)]
    Dicom(#[from] totalseg_io::dicom::DicomError),
    /// Writing a DICOM output (SEG, RT-STRUCT) failed.
    #[error(transparent)]
    DicomOutput(#[from] totalseg_io::dicom::DicomOutputError),
    /// Finding, downloading or converting weights failed.
    #[error(transparent)]
    Weights(Box<totalseg_io::weights::WeightsError>),
    /// The task or its options are not valid.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// Loading or running a network failed.
    #[error("model {model}: {message}")]
    Network {
        /// The model folder or dataset.
        model: String,
        /// What went wrong.
        message: String,
    },
    /// A model's configuration or output does not fit the pipeline.
    #[error("{0}")]
    Model(String),
    /// The input image is not usable.
    #[error("input {path}: {message}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Resampling failed.
    #[error("resampling: {0}")]
    Resample(#[from] ResampleError),
    /// Turning the logits into labels failed.
    #[error("export of the logits: {0}")]
    Export(#[from] ExportError),
    /// Sliding-window inference failed.
    #[error("sliding window: {0}")]
    SlidingWindow(#[from] SlidingWindowError),
    /// Reorientation failed.
    #[error("orientation: {0}")]
    Geometry(#[from] GeometryError),
    /// Cropping failed.
    #[error("cropping: {0}")]
    Crop(#[from] CropError),
    /// Writing outputs failed.
    #[error("output {path}: {source}")]
    Output {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The task needs a pipeline step that is not implemented.
    #[error("task {task} is not supported: {reason}")]
    UnsupportedTask {
        /// The task name.
        task: String,
        /// What it needs.
        reason: String,
    },
    /// A command-line option of the official tool that this one does not implement.
    #[error("option {option} is not supported: {reason}")]
    UnsupportedOption {
        /// The option as spelled on the command line.
        option: String,
        /// Why.
        reason: String,
    },
    /// The requested device cannot be used.
    #[error("device: {0}")]
    Device(String),
    /// The `--preview` image could not be drawn.
    #[error("preview: {0}")]
    Preview(#[from] totalseg_core::preview::PreviewError),
    /// The `--preview` image could not be written.
    #[error(transparent)]
    Png(#[from] totalseg_io::png::PngWriteError),
    /// A modality or contrast-phase classifier could not be loaded or applied.
    #[error(transparent)]
    Classifier(#[from] crate::classifiers::ClassifierError),
}

impl From<totalseg_io::weights::WeightsError> for SegmentError {
    fn from(e: totalseg_io::weights::WeightsError) -> Self {
        SegmentError::Weights(Box::new(e))
    }
}

impl From<totalseg_io::ImageReadError> for SegmentError {
    fn from(e: totalseg_io::ImageReadError) -> Self {
        match e {
            totalseg_io::ImageReadError::Nifti(e) => SegmentError::Nifti(e),
            totalseg_io::ImageReadError::Dicom(e) => SegmentError::Dicom(e),
        }
    }
}
