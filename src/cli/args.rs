//! Command-line arguments of `totalseg`: TotalSegmentator's flags, names and defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Segment anatomical structures in CT images (TotalSegmentator, in Rust).
#[derive(Debug, Parser)]
#[command(
    name = "totalseg",
    version,
    about = "Segment 117 anatomical structures in CT images (TotalSegmentator, pure Rust).",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub segment: SegmentArgs,
}

/// Subcommands besides the default segmentation run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download (and convert) the weights of a task ahead of time.
    Download(DownloadArgs),
    /// Inspect the local weights.
    Weights {
        #[command(subcommand)]
        action: WeightsAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum WeightsAction {
    /// List the models present in the weights store, where they are and their size.
    List(WeightsLocationArgs),
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// Task whose models to fetch.
    #[arg(long = "task", short = 't', default_value = "total")]
    pub task: String,
    /// The 3 mm variant.
    #[arg(long)]
    pub fast: bool,
    /// The 6 mm variant.
    #[arg(long)]
    pub fastest: bool,
    #[command(flatten)]
    pub location: WeightsLocationArgs,
}

#[derive(Debug, Args, Default, Clone)]
pub struct WeightsLocationArgs {
    /// Folder holding existing weights (nnU-Net results folder or converted models).
    #[arg(long = "weights-dir", value_name = "DIR")]
    pub weights_dir: Option<PathBuf>,
    /// Never touch the network; fail with instructions when weights are missing.
    #[arg(long)]
    pub offline: bool,
    /// Licence number for licensed tasks (stored in the config file, as the Python tool does).
    #[arg(short = 'l', long = "license_number")]
    pub license_number: Option<String>,
}

/// The segmentation run: the flags of the official `TotalSegmentator` command.
#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// CT NIfTI image (.nii or .nii.gz).
    #[arg(short = 'i', value_name = "filepath")]
    pub input: Option<PathBuf>,
    /// Output directory for the masks, or the path of the multilabel file with --ml.
    #[arg(short = 'o', value_name = "directory")]
    pub output: Option<PathBuf>,
    /// Save one multilabel image for all classes.
    #[arg(long = "ml")]
    pub ml: bool,
    /// Number of threads for resampling (accepted for compatibility; rayon uses all threads).
    #[arg(long = "nr_thr_resamp", default_value_t = 1)]
    pub nr_thr_resamp: usize,
    /// Spline order for resampling the input image to the model spacing (0-5).
    #[arg(long = "resampling_order", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=5))]
    pub resampling_order: u8,
    /// Number of threads for saving segmentations.
    #[arg(long = "nr_thr_saving", default_value_t = 6)]
    pub nr_thr_saving: usize,
    /// Run the faster lower-resolution model (3 mm).
    #[arg(short = 'f', long)]
    pub fast: bool,
    /// Run the even faster lower-resolution model (6 mm).
    #[arg(long)]
    pub fastest: bool,
    /// With --fast/--fastest, save the segmentation at model resolution.
    #[arg(long = "save_lowres")]
    pub save_lowres: bool,
    /// Which task (model) to run; `--list-tasks` shows them.
    #[arg(long = "task", default_value = "total")]
    pub task: String,
    /// Model size (only for total_v3).
    #[arg(long = "model_size", default_value = "big", value_parser = ["big", "small"])]
    pub model_size: String,
    /// Only these classes (space separated); with the 1.5 mm model only the needed parts run.
    #[arg(long = "roi_subset", num_args = 1..)]
    pub roi_subset: Option<Vec<String>>,
    /// Like --roi_subset, with the more robust 3 mm crop model.
    #[arg(long = "roi_subset_robust", num_args = 1..)]
    pub roi_subset_robust: Option<Vec<String>>,
    /// Use the 3 mm model instead of the 6 mm one for cropping.
    #[arg(long = "robust_crop")]
    pub robust_crop: bool,
    /// Compute volume (mm3) and mean intensity per class into statistics.json (optionally at this path).
    #[arg(short = 's', long = "statistics", num_args = 0..=1, default_missing_value = "", value_name = "filepath")]
    pub statistics: Option<String>,
    /// Also compute statistics for structures touching the image border.
    #[arg(long = "stats_include_incomplete")]
    pub stats_include_incomplete: bool,
    /// Aggregation of intensity statistics.
    #[arg(long = "stats_aggregation", default_value = "mean", value_parser = ["mean", "median"])]
    pub stats_aggregation: String,
    /// Rough body segmentation first, then crop to the body.
    #[arg(long = "body_seg")]
    pub body_seg: bool,
    /// Process the image in 3 chunks along z.
    #[arg(long = "force_split")]
    pub force_split: bool,
    /// Skip saving the segmentations (e.g. only statistics wanted).
    #[arg(long = "skip_saving")]
    pub skip_saving: bool,
    /// Do not write the derived masks (the body task's body.nii.gz and skin.nii.gz).
    #[arg(long = "no_derived_masks")]
    pub no_derived_masks: bool,
    /// Remove connected components smaller than this (mm3, default 200 when given without value).
    #[arg(long = "remove_small_blobs", num_args = 0..=1, default_missing_value = "200", value_name = "mm3")]
    pub remove_small_blobs: Option<f64>,
    /// Device: cpu, gpu or gpu:N.
    #[arg(short = 'd', long = "device", default_value = "gpu")]
    pub device: String,
    /// Network precision: auto (f16 on GPU, f32 on CPU as the reference), f32, f16, bf16.
    #[arg(long = "precision", default_value = "auto", value_parser = ["auto", "f32", "f16", "bf16"])]
    pub precision: String,
    /// Sum the sliding-window tiles in f32 instead of nnU-Net's fp16 (faster, not bit-parity).
    #[arg(long = "f32_accumulation")]
    pub f32_accumulation: bool,
    /// Print no intermediate output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show more intermediate output.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// List all tasks and exit.
    #[arg(long = "list-tasks")]
    pub list_tasks: bool,
    /// List the classes of a task and exit (default: total).
    #[arg(long = "list-classes", num_args = 0..=1, default_missing_value = "total", value_name = "task")]
    pub list_classes: Option<String>,
    #[command(flatten)]
    pub location: WeightsLocationArgs,
}

/// TotalSegmentator's multi-letter single-dash flags (`-ml`, `-ta`, `-rs`, ...) and the long
/// names they stand for. clap only knows one-letter short flags, so these are rewritten
/// before parsing; users can paste their TotalSegmentator command lines unchanged.
const SINGLE_DASH_ALIASES: &[(&str, &str)] = &[
    ("-ml", "--ml"),
    ("-nr", "--nr_thr_resamp"),
    ("-ro", "--resampling_order"),
    ("-ns", "--nr_thr_saving"),
    ("-ff", "--fastest"),
    ("-sl", "--save_lowres"),
    ("-ta", "--task"),
    ("-ms", "--model_size"),
    ("-rs", "--roi_subset"),
    ("-rsr", "--roi_subset_robust"),
    ("-rc", "--robust_crop"),
    ("-sii", "--stats_include_incomplete"),
    ("-sa", "--stats_aggregation"),
    ("-bs", "--body_seg"),
    ("-fs", "--force_split"),
    ("-ss", "--skip_saving"),
    ("-ndm", "--no_derived_masks"),
    ("-rmb", "--remove_small_blobs"),
    ("-lt", "--list-tasks"),
    ("-lc", "--list-classes"),
    ("--list_tasks", "--list-tasks"),
    ("--list_classes", "--list-classes"),
];

/// Rewrites TotalSegmentator-style multi-letter single-dash flags to their long form.
pub fn normalize_argv<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    args.into_iter()
        .map(|a| {
            SINGLE_DASH_ALIASES
                .iter()
                .find(|(short, _)| *short == a)
                .map(|(_, long)| (*long).to_string())
                .unwrap_or(a)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Cli {
        let argv = normalize_argv(line.split_whitespace().map(String::from));
        Cli::try_parse_from(argv).expect("valid command line")
    }

    #[test]
    fn totalsegmentator_command_lines_parse_unchanged() {
        let cli =
            parse("totalseg -i ct.nii.gz -o seg.nii.gz -ml -ta total -rs liver spleen -d cpu -q");
        assert!(cli.segment.ml);
        assert_eq!(cli.segment.task, "total");
        assert_eq!(
            cli.segment.roi_subset,
            Some(vec!["liver".to_string(), "spleen".to_string()])
        );
        assert_eq!(cli.segment.device, "cpu");
        assert!(cli.segment.quiet);
    }

    #[test]
    fn optional_value_flags_take_their_defaults() {
        let cli = parse("totalseg -i a.nii -o out --statistics --remove_small_blobs --fast");
        assert_eq!(cli.segment.statistics.as_deref(), Some(""));
        assert_eq!(cli.segment.remove_small_blobs, Some(200.0));
        let cli = parse("totalseg -i a.nii -o out -rmb 50 -s stats.json");
        assert_eq!(cli.segment.remove_small_blobs, Some(50.0));
        assert_eq!(cli.segment.statistics.as_deref(), Some("stats.json"));
        let cli = parse("totalseg -lc");
        assert_eq!(cli.segment.list_classes.as_deref(), Some("total"));
    }

    #[test]
    fn subcommands_parse() {
        let cli = parse("totalseg download --task total --fast --offline");
        match cli.command {
            Some(Command::Download(d)) => {
                assert!(d.fast);
                assert!(d.location.offline);
            }
            other => panic!("expected download, got {other:?}"),
        }
        let cli = parse("totalseg weights list --weights-dir /x");
        assert!(matches!(cli.command, Some(Command::Weights { .. })));
    }

    #[test]
    fn resampling_order_out_of_range_is_rejected() {
        let argv = normalize_argv(
            "totalseg -i a.nii -o b -ro 7"
                .split_whitespace()
                .map(String::from),
        );
        assert!(Cli::try_parse_from(argv).is_err());
    }
}
