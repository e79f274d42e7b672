//! `totalseg`: the TotalSegmentator command line, in Rust.

use std::process::ExitCode;

use clap::Parser;
use totalsegmentator::cli::allocator::{keep_freed_memory_for_reuse, AllocatorTuning};
use totalsegmentator::cli::args::{normalize_argv, Cli};
use totalsegmentator::cli::run::run;

fn main() -> ExitCode {
    // Before anything allocates: the CPU network's large activations are then reused instead
    // of being mapped and page-faulted in afresh for every layer.
    let allocator = keep_freed_memory_for_reuse();
    let cli = Cli::parse_from(normalize_argv(std::env::args()));
    let level = if cli.segment.verbose { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    match allocator {
        AllocatorTuning::Applied => log::debug!("malloc: mmap and trim thresholds raised to 2 GiB"),
        AllocatorTuning::UserChoice(name) => log::debug!("malloc: left as set by {name}"),
        AllocatorTuning::Unavailable => log::debug!("malloc: default settings (not glibc)"),
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR: {e}");
            ExitCode::FAILURE
        }
    }
}
