//! Forward-pass speed of the TotalSegmentator 1.5 mm network (random weights): this crate on
//! the CPU backend against PyTorch on the CPU (`torch.set_num_threads(2)`), in the same run.
//!
//! `cargo bench -p totalseg-nn --bench forward_vs_torch -- [--patch 128] [--precision f32]
//!  [--repeats 2] [--torch-threads 2]`
//!
//! Prints seconds per pass, GFLOP/s (convolutions only) and the ratio of the two times.
//! The PyTorch side is skipped when `python3 -c "import torch"` fails.

mod common;

use std::process::Command;
use std::time::Instant;

use burn::tensor::{Distribution, Tensor};
use burn_flex::{Flex, FlexDevice};
use totalseg_nn::{NnUnetModel, Precision};

/// Builds the same PlainConvUNet as the Rust side with dynamic-network-architectures and times
/// `repeats` passes after one warm-up; prints the mean seconds per pass.
const TORCH_SCRIPT: &str = r#"
import sys, time, torch
from torch import nn
from dynamic_network_architectures.architectures.unet import PlainConvUNet
patch, classes, repeats, threads = (int(a) for a in sys.argv[1:5])
torch.set_num_threads(threads)
net = PlainConvUNet(1, 6, [32, 64, 128, 256, 320, 320], nn.Conv3d, 3, [1, 2, 2, 2, 2, 2],
                    [2] * 6, classes, [2] * 5, conv_bias=True, norm_op=nn.InstanceNorm3d,
                    norm_op_kwargs={"eps": 1e-5, "affine": True}, nonlin=nn.LeakyReLU,
                    nonlin_kwargs={"inplace": True}).eval()
x = torch.randn(1, 1, patch, patch, patch)
def rss_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0
before = rss_kib("VmRSS")
with torch.no_grad():
    net(x)
    start = time.perf_counter()
    for _ in range(repeats):
        net(x)
    print((time.perf_counter() - start) / repeats, (rss_kib("VmHWM") - before) / 1024)
"#;

struct Args {
    patch: usize,
    precision: Precision,
    repeats: usize,
    torch_threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        patch: 128,
        precision: Precision::F32,
        repeats: 2,
        torch_threads: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--patch" => args.patch = value()?.parse().map_err(|e| format!("--patch: {e}"))?,
            "--precision" => args.precision = value()?.parse()?,
            "--repeats" => {
                args.repeats = value()?.parse().map_err(|e| format!("--repeats: {e}"))?
            }
            "--torch-threads" => {
                args.torch_threads = value()?
                    .parse()
                    .map_err(|e| format!("--torch-threads: {e}"))?
            }
            // `cargo bench` passes `--bench`; ignore flags meant for other harnesses.
            _ => {}
        }
    }
    if args.patch == 0 || !args.patch.is_multiple_of(32) {
        return Err(format!(
            "--patch {} must be a positive multiple of 32",
            args.patch
        ));
    }
    args.repeats = args.repeats.max(1);
    Ok(args)
}

/// `VmRSS` or `VmHWM` (peak) of this process in MiB, from `/proc/self/status` (0 elsewhere).
fn memory_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Seconds per pass and the peak working memory of the passes (peak RSS minus the RSS with
/// the model and input loaded), MiB.
fn rust_seconds_per_pass(args: &Args) -> Result<(f64, f64), String> {
    let config = common::totalseg_config(args.patch);
    let model = NnUnetModel::<Flex>::with_random_weights(config, &FlexDevice, args.precision, 7)
        .map_err(|e| e.to_string())?;
    let p = args.patch;
    let input =
        Tensor::<Flex, 5>::random([1, 1, p, p, p], Distribution::Normal(0.0, 1.0), &FlexDevice);
    let run = || -> Result<(), String> {
        let logits = model
            .forward_logits(0, input.clone())
            .map_err(|e| e.to_string())?;
        logits.into_data();
        Ok(())
    };
    let before = memory_mib("VmRSS");
    run()?; // warm-up
    let start = Instant::now();
    for _ in 0..args.repeats {
        run()?;
    }
    let seconds = start.elapsed().as_secs_f64() / args.repeats as f64;
    Ok((seconds, memory_mib("VmHWM") - before))
}

fn torch_seconds_per_pass(args: &Args) -> Option<(f64, f64)> {
    let ok = Command::new("python3")
        .args(["-c", "import torch, dynamic_network_architectures"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        println!("pytorch: not available (python3 -c \"import torch, dynamic_network_architectures\" failed), skipped");
        return None;
    }
    let out = Command::new("python3")
        .args(["-c", TORCH_SCRIPT])
        .args(
            [
                args.patch,
                common::NUM_CLASSES,
                args.repeats,
                args.torch_threads,
            ]
            .map(|v| v.to_string()),
        )
        .output()
        .ok()?;
    if !out.status.success() {
        println!("pytorch: failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut values = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some((values.next()??, values.next()??))
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let config = common::totalseg_config(args.patch);
    let kw = &config.architecture().expect("architecture").arch_kwargs;
    let gflop = common::forward_flops(kw, 1, common::NUM_CLASSES, [args.patch; 3]) / 1e9;
    println!(
        "TotalSegmentator 1.5 mm PlainConvUNet, patch {p}^3, {c} classes: {gflop:.1} GFLOP per pass (convolutions)",
        p = args.patch,
        c = common::NUM_CLASSES
    );
    let (rust, rust_mib) = match rust_seconds_per_pass(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rust forward failed: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "totalseg-nn (burn-flex, {}, {} rayon threads): {rust:.3} s/pass, {:.1} GFLOP/s, \
         peak working memory {rust_mib:.0} MiB",
        args.precision,
        rayon_threads(),
        gflop / rust
    );
    if let Some((torch, torch_mib)) = torch_seconds_per_pass(&args) {
        println!(
            "pytorch (fp32, {} threads): {torch:.3} s/pass, {:.1} GFLOP/s, peak working memory \
             {torch_mib:.0} MiB",
            args.torch_threads,
            gflop / torch
        );
        println!("ratio totalseg-nn / pytorch time: {:.2}x", rust / torch);
    }
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
