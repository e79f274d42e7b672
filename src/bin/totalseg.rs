//! `totalseg`: the TotalSegmentator command line, in Rust.

use std::process::ExitCode;

use clap::Parser;
use totalsegmentator::cli::args::{normalize_argv, Cli};
use totalsegmentator::cli::run::run;

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize_argv(std::env::args()));
    let level = if cli.segment.verbose { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level)).init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ERROR: {e}");
            ExitCode::FAILURE
        }
    }
}
