//! `weights-converter <nnunet model folder> <output dir> [--dtype f32|f16] [--folds 0,1]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use weights_converter::{convert_model_folder, ConvertOptions, OutputDType};

/// Convert an nnU-Net model folder to model.safetensors + model.json.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// nnU-Net model folder: <trainer>__<plans>__<configuration> with plans.json, dataset.json, fold_*/
    src: PathBuf,
    /// Output folder (created if missing).
    dst: PathBuf,
    /// dtype of the written weights.
    #[arg(long, default_value = "f32")]
    dtype: OutputDType,
    /// Folds to convert, comma-separated (default: every fold_<k> with a checkpoint).
    #[arg(long, value_delimiter = ',')]
    folds: Option<Vec<u32>>,
    /// Configuration to use instead of the one in the folder name.
    #[arg(long)]
    configuration: Option<String>,
    /// Checkpoint file inside each fold folder.
    #[arg(long, default_value = "checkpoint_final.pth")]
    checkpoint: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = ConvertOptions {
        dtype: args.dtype,
        folds: args.folds,
        configuration: args.configuration,
        checkpoint_name: args.checkpoint,
    };
    let start = Instant::now();
    match convert_model_folder(&args.src, &args.dst, &options) {
        Ok(report) => {
            println!(
                "{} ({}): folds {:?}, {} tensors / {} parameters per fold ({} aliases dropped), {} bytes -> {} in {:.2} s",
                report.configuration,
                report.network_class_name,
                report.folds,
                report.tensors_per_fold,
                report.parameters_per_fold,
                report.aliases_dropped_per_fold,
                report.safetensors_bytes,
                args.dst.display(),
                start.elapsed().as_secs_f64()
            );
            if !report.skipped_non_float.is_empty() {
                println!("skipped non-float buffers: {:?}", report.skipped_non_float);
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
