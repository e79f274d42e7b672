//! The models of one prediction and how they are obtained.

use std::sync::Arc;

use totalseg_core::tasks::{ClassMap, ModelSpec, Postprocessing};

use crate::error::SegmentError;
use crate::predictor::{PredictorSettings, TileNetwork};

/// A loaded model: its predictor settings (step size filled in per run) and its network.
pub struct LoadedModel {
    /// `DatasetNNN_...` folder name, for messages.
    pub name: String,
    /// Settings from the model's plans.
    pub settings: PredictorSettings,
    /// The network (all folds).
    pub network: Box<dyn TileNetwork + Send + Sync>,
}

/// Gives loaded models for model specs (loading each once).
pub trait ModelProvider: Sync {
    /// The model for `spec`, loaded on first use.
    fn model(&self, spec: &ModelSpec) -> Result<Arc<LoadedModel>, SegmentError>;
}

/// What one `nnUNet_predict_image` call runs.
pub struct ModelRun {
    /// Task name the prediction runs under (decides postprocessing and class map).
    pub task_name: String,
    /// Models in the order their outputs are merged, with the LUT model label -> output label.
    pub models: Vec<(ModelSpec, Vec<u16>)>,
    /// Target spacing (x, y, z) in mm, `None` to keep the input spacing.
    pub resolution_mm: Option<[f64; 3]>,
    /// Sliding-window step.
    pub step_size: f64,
    /// Postprocessing at model resolution.
    pub postprocessing: Postprocessing,
    /// Output class map.
    pub class_map: ClassMap,
}
