//! Converts nnU-Net model folders (`plans.json`, `dataset.json`,
//! `fold_<k>/checkpoint_final.pth`) into `model.safetensors` + `model.json`, the format
//! described in `docs/model-format.md`, with no Python: the torch zip container and its
//! pickle are read directly.
//!
//! ```
//! use weights_converter::{convert_model_folder, ConvertOptions, OutputDType};
//! # let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/converter/inherits_from/",
//! #     "Dataset990_ConverterInherits/nnUNetTrainer__nnUNetPlans__3d_fullres_small");
//! # let out = tempfile::tempdir()?;
//! # let (model_folder, output_dir) = (std::path::Path::new(fixture), out.path());
//! // model_folder: e.g. .../Dataset291_.../nnUNetTrainerNoMirroring__nnUNetPlans__3d_fullres
//! let options = ConvertOptions { dtype: OutputDType::F16, ..ConvertOptions::default() };
//! let report = convert_model_folder(model_folder, output_dir, &options)?;
//! assert_eq!(report.folds, vec![0]);
//! assert!(output_dir.join("model.safetensors").is_file());
//! assert!(output_dir.join("model.json").is_file());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod architecture;
mod convert;
pub mod dataset;
mod error;
mod json_file;
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
