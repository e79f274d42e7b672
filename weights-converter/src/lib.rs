//! Converts nnU-Net model folders (`plans.json`, `dataset.json`,
//! `fold_<k>/checkpoint_final.pth`) into `model.safetensors` + `model.json`, the format
//! described in `docs/model-format.md`, with no Python: the torch zip container and its
//! pickle are read directly.
//!
//! ```no_run
//! use weights_converter::{convert_model_folder, ConvertOptions, OutputDType};
//! let options = ConvertOptions { dtype: OutputDType::F16, ..ConvertOptions::default() };
//! let report = convert_model_folder(
//!     "nnunet/results/Dataset291_TotalSegmentator_part1_organs_1559subj/nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres".as_ref(),
//!     "models/organs".as_ref(),
//!     &options,
//! )?;
//! println!("{} folds, {} parameters each", report.folds.len(), report.parameters_per_fold);
//! # Ok::<(), weights_converter::ConvertError>(())
//! ```

pub mod architecture;
mod convert;
pub mod dataset;
mod error;
pub mod model_folder;
pub mod model_json;
mod output;
pub mod pickle;
pub mod plans;
pub mod safetensors_writer;
pub mod state_dict;
pub mod torch;

pub use convert::{
    convert_model_folder, ConvertOptions, ConvertReport, MODEL_JSON_FILE, SAFETENSORS_FILE,
};
pub use error::ConvertError;
pub use safetensors_writer::OutputDType;
