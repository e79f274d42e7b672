//! TotalSegmentator's data flow around the nnU-Net predictor (`python_api.totalsegmentator`
//! and `nnunet.nnUNet_predict_image`): optional crop pre-pass, crop, closest-canonical
//! reorientation, resampling to the task resolution (int32 cast), optional triple split,
//! one or more models merged by class name, postprocessing at model resolution, resampling
//! back (order 0, or cropped one-hot order 1), undoing the reorientation and the crop.

mod image;
mod models;

pub use image::{predict_image, LabelUpsampling, PredictImageOptions, PredictedImage};
pub use models::{LoadedModel, ModelProvider, ModelRun};
