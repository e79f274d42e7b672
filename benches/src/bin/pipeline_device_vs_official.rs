//! The whole pipeline the GPU runs, on any Burn backend, against the official tool's output.
//!
//! Runs the parity cases of `fixtures/pipeline/` (the official TotalSegmentator's outputs on
//! small synthetic-weight models, see its README) through a `Segmenter` whose models run on
//! the chosen backend with their sliding window on the device, exactly as `--device gpu` sets
//! them up: tiles batched on the device, fp16 sums, argmax on the device. Prints per case the
//! labels' Dice against the official output and how many voxels differ.
//!
//! ```text
//! cargo run --release -p totalseg-benches --bin pipeline_device_vs_official -- \
//!     [--backend flex|cuda|wgpu] [--precision f32|f16] [--cases total_ml,fast_ml] \
//!     [--repo DIR] [--examples DIR] [--kernel-cache DIR] [--batch N]
//! ```
//!
//! `--backend cuda` needs `--features cuda`; `--backend wgpu` needs `--features wgpu` and a
//! Vulkan driver (Mesa's lavapipe runs burn's GPU kernels on the CPU:
//! `apt install mesa-vulkan-drivers`). The official outputs were made on the CPU in f32, so
//! `--precision f32` must agree (mean Dice >= 0.999, as the CPU's parity tests require; the
//! exit status says whether it did), and f16 shows what half precision costs on these models.
//! Measured on the CPU backend (2026-11-27, `--backend flex`): f32 mean Dice 1.00000
//! (`fast_ml`) and 0.99998 (`total_ml`); f16 0.99539 and 0.89946, the small classes of the
//! tiny `total` parts losing most. A GPU in f16 should land near the latter. `--repo` is the repository root
//! (default `.`), `--examples` the folder of TotalSegmentator's example CTs (default
//! `<repo>/../shared/data/totalseg-examples`). Only the multilabel (`--ml`) cases are run.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn_flex::{Flex, FlexDevice};
use serde_json::Value;
use totalseg_benches::{dice_of_maps, flag_value, print_dice};
use totalseg_io::nifti::read_label_map;
use totalseg_nn::{NetworkOps, Precision};
use totalsegmentator::models::{BatchSizePolicy, BurnModelProvider, SlidingWindowSite};
use totalsegmentator::{read_nifti, SegmenterBuilder};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

struct Options {
    repo: PathBuf,
    examples: PathBuf,
    precision: Precision,
    batch: usize,
    cases: Option<Vec<String>>,
}

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| flag_value(&args, name);
    let backend = value("--backend").unwrap_or("flex");
    let repo = PathBuf::from(value("--repo").unwrap_or("."));
    let examples = value("--examples")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("../shared/data/totalseg-examples"));
    let precision: Precision = match value("--precision") {
        Some(p) => p.parse()?,
        None if backend == "flex" => Precision::F32,
        None => Precision::F16,
    };
    let options = Options {
        repo,
        examples,
        precision,
        batch: match value("--batch") {
            Some(n) => n
                .parse()
                .map_err(|_| format!("--batch {n}: not a number"))?,
            None => 2,
        },
        cases: value("--cases").map(|c| c.split(',').map(str::to_string).collect()),
    };
    match backend {
        "flex" => run_cases::<Flex>(FlexDevice, "Flex", &options),
        #[cfg(feature = "cuda")]
        "cuda" => {
            if let Some(dir) = value("--kernel-cache") {
                totalsegmentator::builder::gpu::configure_kernel_caches(dir.as_ref());
            }
            run_cases::<burn_cuda::Cuda>(burn_cuda::CudaDevice { index: 0 }, "CUDA", &options)
        }
        #[cfg(feature = "wgpu")]
        "wgpu" => {
            run_cases::<burn_wgpu::Vulkan>(burn_wgpu::WgpuDevice::DefaultDevice, "Vulkan", &options)
        }
        other => Err(format!("unknown or not built --backend {other}").into()),
    }
}

fn run_cases<B: NetworkOps>(device: B::Device, name: &str, options: &Options) -> BenchResult<()>
where
    B::Device: Send + Sync,
{
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(
        options.repo.join("fixtures/pipeline/manifest.json"),
    )?)?;
    let cases = manifest["cases"]
        .as_array()
        .ok_or("fixtures/pipeline/manifest.json has no cases")?;
    let home = std::env::temp_dir().join(format!("pipeline-device-check-{}", std::process::id()));
    let mut failures = 0;
    for case in cases {
        let case_name = case["name"].as_str().unwrap_or("?");
        if let Some(wanted) = &options.cases {
            if !wanted.iter().any(|w| w == case_name) {
                continue;
            }
        }
        let args: Vec<&str> = case["cli_args"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !args.contains(&"--ml") {
            continue;
        }
        let start = Instant::now();
        match run_case::<B>(case, &args, &device, &home, options) {
            Ok(mean) => {
                println!(
                    "CASE {case_name} on {name} {}: mean Dice {mean:.5}, {:.1} s",
                    options.precision,
                    start.elapsed().as_secs_f64()
                );
                // The official outputs are f32 CPU runs: only f32 must match them.
                if mean < 0.999 && options.precision == Precision::F32 {
                    failures += 1;
                }
            }
            Err(e) => {
                println!("CASE {case_name} on {name}: failed: {e}");
                failures += 1;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&home);
    if failures > 0 {
        return Err(format!("{failures} case(s) failed or, in f32, below mean Dice 0.999").into());
    }
    Ok(())
}

/// Segments one manifest case on `device`; returns the mean Dice against the official output.
fn run_case<B: NetworkOps>(
    case: &Value,
    args: &[&str],
    device: &B::Device,
    home: &Path,
    options: &Options,
) -> BenchResult<f64>
where
    B::Device: Send + Sync,
{
    let input = case["input"].as_str().ok_or("case without input")?;
    let input = match input.strip_prefix("shared:") {
        Some(file) => options.examples.join(file),
        None => options.repo.join(input),
    };
    let official = options
        .repo
        .join(case["output"].as_str().ok_or("case without output")?);
    let mut builder = SegmenterBuilder::new("total")
        .fast(args.contains(&"--fast"))
        .fastest(args.contains(&"--fastest"))
        .body_seg(args.contains(&"--body_seg"))
        .force_split(args.contains(&"--force_split"))
        .weights_dir(Some(options.repo.join("fixtures/pipeline/weights")))
        .home_dir(Some(home.to_path_buf()))
        .offline(true);
    if let Some(at) = args.iter().position(|a| *a == "--roi_subset") {
        let classes = args[at + 1..]
            .iter()
            .take_while(|a| !a.starts_with('-'))
            .map(|a| a.to_string())
            .collect();
        builder = builder.roi_subset(classes, false);
    }
    let (precision, batch) = (options.precision, options.batch);
    let device = device.clone();
    let segmenter = builder.build_with_provider(move |store, progress| {
        Ok(Arc::new(
            BurnModelProvider::<B>::new(
                store,
                device,
                precision,
                BatchSizePolicy::Fixed(batch),
                progress,
            )
            .with_sliding_window_site(SlidingWindowSite::Device),
        ))
    })?;
    let volume = read_nifti(&input)?;
    let ours = segmenter.segment(&volume)?;
    let official = read_label_map(&official)?;
    let dice = dice_of_maps(&ours.labels, &official.labels)?;
    let differing = ours
        .labels
        .iter()
        .zip(official.labels.iter())
        .filter(|(a, b)| a != b)
        .count();
    let background = ours.labels.iter().filter(|&&v| v == 0).count();
    println!(
        "{}: {differing} of {} voxels differ; background ours {:.3}, official {:.3}",
        case["name"].as_str().unwrap_or("?"),
        ours.labels.len(),
        background as f64 / ours.labels.len() as f64,
        official.labels.iter().filter(|&&v| v == 0).count() as f64 / ours.labels.len() as f64
    );
    print_dice(&dice);
    Ok(if dice.is_empty() {
        1.0
    } else {
        dice.iter().map(|d| d.dice).sum::<f64>() / dice.len() as f64
    })
}
