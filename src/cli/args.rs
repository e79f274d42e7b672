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
    /// Combine class masks into one binary mask (TotalSegmentator's totalseg_combine_masks).
    CombineMasks(CombineMasksArgs),
    /// Crop a CT to the body found by the body model (TotalSegmentator's crop_to_body).
    CropToBody(CropToBodyArgs),
    /// Store the licence number for licensed tasks (TotalSegmentator's totalseg_set_license).
    SetLicense(SetLicenseArgs),
    /// Predict whether an image is CT or MR (TotalSegmentator's totalseg_get_modality).
    GetModality(GetModalityArgs),
    /// Predict the contrast phase of a CT (TotalSegmentator's totalseg_get_phase).
    GetPhase(GetPhaseArgs),
    /// Show the tasks and their classes (TotalSegmentator's totalseg_info).
    Info(InfoArgs),
    /// Unpack a manually downloaded weights zip into the weights folder (TotalSegmentator's
    /// totalseg_import_weights), for machines without internet access.
    ImportWeights(ImportWeightsArgs),
}

/// `totalseg import-weights -i DatasetNNN_name.zip`: the flag of `totalseg_import_weights`.
#[derive(Debug, Args)]
pub struct ImportWeightsArgs {
    /// The weights zip file (a release archive holding `DatasetNNN_name/<model folder>/`).
    #[arg(short = 'i', long = "weights_file", value_name = "filepath")]
    pub weights_file: PathBuf,
    #[command(flatten)]
    pub location: WeightsLocationArgs,
}

/// `totalseg info [-lt | -cl -ta TASK] [--json]`: the flags of `totalseg_info` (`-lt`, `-cl`,
/// `-ta` are rewritten to the long names by [`normalize_argv`]).
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// List all tasks with modality, license and number of classes.
    #[arg(long = "list-tasks", conflicts_with = "classes")]
    pub list_tasks: bool,
    /// List the classes (index -> name) of the task given with --task.
    #[arg(long = "classes")]
    pub classes: bool,
    /// Task to show the classes of (with --classes).
    #[arg(long = "task", value_name = "task")]
    pub task: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long = "json")]
    pub as_json: bool,
}

/// `totalseg get-modality -i <image> -o <json>`: the flags of `totalseg_get_modality`.
#[derive(Debug, Args)]
pub struct GetModalityArgs {
    /// CT or MR image (NIfTI file, or folder or zip file of DICOM slices).
    #[arg(short = 'i', value_name = "filepath")]
    pub input: PathBuf,
    /// Output JSON file.
    #[arg(short = 'o', value_name = "filepath")]
    pub output: PathBuf,
    /// Device for the total_mr model of -n: gpu (falls back to the CPU when CUDA is not
    /// usable) or cpu.
    #[arg(short = 'd', long = "device", default_value = "gpu")]
    pub device: String,
    /// Print no output to stdout.
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Use normalised intensities within regions that the total_mr model finds (for images
    /// whose intensities were normalised).
    #[arg(short = 'n')]
    pub normalized_intensities: bool,
    #[command(flatten)]
    pub location: WeightsLocationArgs,
}

/// `totalseg get-phase -i <CT> -o <json>`: the flags of `totalseg_get_phase`.
#[derive(Debug, Args)]
pub struct GetPhaseArgs {
    /// CT image (NIfTI file, or folder or zip file of DICOM slices).
    #[arg(short = 'i', value_name = "filepath")]
    pub input: PathBuf,
    /// Output JSON file.
    #[arg(short = 'o', value_name = "filepath")]
    pub output: PathBuf,
    /// Classifier pickle to use instead of the official one.
    #[arg(short = 'm', value_name = "filepath")]
    pub model_file: Option<PathBuf>,
    /// Existing statistics.json of a `total --fast -sa median -sii` run: the total model is
    /// not run.
    #[arg(short = 's', value_name = "filepath")]
    pub existing_stats: Option<PathBuf>,
    /// Device: gpu (falls back to the CPU when CUDA is not usable) or cpu.
    #[arg(short = 'd', long = "device", default_value = "gpu")]
    pub device: String,
    /// Print no output to stdout.
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Accepted for compatibility (the models always run in this process).
    #[arg(long = "call_via_subprocess")]
    pub call_via_subprocess: bool,
    /// On errors, also print the input path and task.
    #[arg(long = "debug")]
    pub debug: bool,
    #[command(flatten)]
    pub location: WeightsLocationArgs,
}

/// `totalseg set-license -l aca_...`: the flags of `totalseg_set_license`.
#[derive(Debug, Args)]
pub struct SetLicenseArgs {
    /// TotalSegmentator licence number (18 characters, starting with aca_).
    #[arg(short = 'l', long = "license_number")]
    pub license_number: String,
    /// Do not ask the licence server whether the number is valid.
    #[arg(long = "skip_validation")]
    pub skip_validation: bool,
}

/// `totalseg crop-to-body -i <CT> -o <cropped CT>`: the flags of `crop_to_body`.
#[derive(Debug, Args)]
pub struct CropToBodyArgs {
    /// CT NIfTI image, or folder or zip file of DICOM slices.
    #[arg(short = 'i', value_name = "filepath")]
    pub input: PathBuf,
    /// Cropped NIfTI image (int32).
    #[arg(short = 'o', value_name = "filepath")]
    pub output: PathBuf,
    /// Crop to the trunc instead of the entire body.
    #[arg(short = 't', long = "only_trunc")]
    pub only_trunc: bool,
    /// Number of threads for resampling (accepted for compatibility).
    #[arg(long = "nr_thr_resamp", default_value_t = 1)]
    pub nr_thr_resamp: usize,
    /// Number of threads for saving (accepted for compatibility).
    #[arg(long = "nr_thr_saving", default_value_t = 6)]
    pub nr_thr_saving: usize,
    /// Device: gpu (falls back to the CPU when CUDA is not usable) or cpu.
    #[arg(short = 'd', long = "device", default_value = "gpu")]
    pub device: String,
    /// Print no intermediate output.
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
    /// Print more intermediate output.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    #[command(flatten)]
    pub location: WeightsLocationArgs,
}

/// `totalseg combine-masks -i <output folder or multilabel file> -o <file> -m <group>`.
#[derive(Debug, Args)]
pub struct CombineMasksArgs {
    /// TotalSegmentator output folder with the per-class masks, or a multilabel file.
    #[arg(short = 'i', value_name = "directory")]
    pub mask_dir: PathBuf,
    /// Output path for the combined mask.
    #[arg(short = 'o', value_name = "filepath")]
    pub output: PathBuf,
    /// The group of masks to combine.
    #[arg(short = 'm', long = "masks", value_parser = clap::builder::PossibleValuesParser::new(totalseg_core::tasks::COMBINE_MASK_GROUPS))]
    pub masks: String,
    /// Add the group name as label 1 in TotalSegmentator's label extension.
    #[arg(long = "multilabel", alias = "ml")]
    pub multilabel: bool,
    /// Add the output to this NORA project as a mask.
    #[arg(short = 't', long = "nora_tag", default_value = "None")]
    pub nora_tag: String,
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
    /// CT NIfTI image (.nii or .nii.gz), or folder or zip file of DICOM slices.
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
    /// In the multilabel file (--ml) of task total, number the classes as TotalSegmentator v1
    /// did; classes new in v2 are dropped.
    #[arg(long = "v1_order")]
    pub v1_order: bool,
    /// Write a JSON run report (versions, device, task, classes, runtime, output files) here.
    #[arg(long = "report", value_name = "filepath")]
    pub report: Option<PathBuf>,
    /// With --statistics: also n_voxels, intensity std/min/max, centroid_vox and bbox_vox.
    #[arg(long = "statistics_extra")]
    pub statistics_extra: bool,
    /// On an error, also print the input path and the task.
    #[arg(long = "debug")]
    pub debug: bool,
    /// Folder of masks to crop with. Accepted for compatibility: TotalSegmentator 2.x reads no
    /// masks from it either (crop masks come from its own crop model).
    #[arg(long = "crop_path", value_name = "directory")]
    pub crop_path: Option<PathBuf>,
    /// Add the written NIfTI files to this NORA project (`nora -p <tag> --add <file>`); None: don't.
    #[arg(short = 't', long = "nora_tag", default_value = "None")]
    pub nora_tag: String,
    /// Output type(s): nifti, dicom_seg, dicom_rtstruct (the DICOM types need a DICOM input).
    /// Several may be given (`-ot nifti dicom_seg` or `-ot nifti,dicom_seg`).
    #[arg(long = "output_type", num_args = 1.., value_delimiter = ',')]
    pub output_type: Option<Vec<String>>,
    /// Write `preview_<task>.png`: the structures as smoothed surfaces seen from the front,
    /// one column per group, as the official tool draws them.
    #[arg(short = 'p', long = "preview")]
    pub preview: bool,
    /// Compute radiomics features (pyradiomics shape and first-order, at 3 mm) of every
    /// class mask into statistics_radiomics.json (NIfTI input, not with --ml).
    #[arg(short = 'r', long = "radiomics")]
    pub radiomics: bool,
    /// Save nnU-Net's class probabilities of the last model to this .npz path (and its
    /// properties to the same path with suffix .pkl), as the official tool does. Only for
    /// experienced users: the array is on the model's input grid, in nnU-Net's axis order.
    #[arg(long = "save_probabilities", value_name = "filepath")]
    pub save_probabilities: Option<PathBuf>,
    /// Let nnU-Net resample the image to the model spacing (order 3) and bring the logits
    /// back with cropped-logits resampling: smoother masks than upsampling the labels.
    #[arg(long = "higher_order_resampling", alias = "high_order_resampling")]
    pub higher_order_resampling: bool,
    /// Bring the labels back to the input's grid as cropped one-hot masks interpolated with
    /// order 1 (smoother than order 0).
    #[arg(
        long = "higher_order_resampling_LEGACY",
        alias = "high_order_resampling_LEGACY"
    )]
    pub higher_order_resampling_legacy: bool,
    /// The official tool's unit-test switch (0, 1 or 3); only 0 is supported.
    #[arg(long = "test", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=3), hide = true)]
    pub test: u8,
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
    ("-v1o", "--v1_order"),
    ("-rp", "--report"),
    ("-sx", "--statistics_extra"),
    ("-cp", "--crop_path"),
    ("-ot", "--output_type"),
    ("-sp", "--save_probabilities"),
    ("-sv", "--skip_validation"),
    ("-ho", "--higher_order_resampling"),
    ("-lt", "--list-tasks"),
    ("-lc", "--list-classes"),
    ("-cl", "--classes"),
    ("--list_tasks", "--list-tasks"),
    ("--list_classes", "--list-classes"),
];

/// The first option on the command line that `totalseg` cannot honour, and why: a clear
/// error instead of a silently different result.
pub fn unsupported_option(args: &SegmentArgs) -> Option<(&'static str, String)> {
    (args.test != 0).then(|| {
        (
            "--test",
            "the official tool's unit-test modes are not part of totalseg".to_string(),
        )
    })
}

/// One kind of output file (`-ot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputType {
    /// NIfTI label map(s).
    Nifti,
    /// A DICOM SEG referring to the input series.
    DicomSeg,
    /// A DICOM RT Structure Set of contours referring to the input series.
    DicomRtstruct,
}

impl OutputType {
    /// The name `-ot` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputType::Nifti => "nifti",
            OutputType::DicomSeg => "dicom_seg",
            OutputType::DicomRtstruct => "dicom_rtstruct",
        }
    }

    /// DICOM outputs need a DICOM input and force one multilabel segmentation.
    pub fn is_dicom(self) -> bool {
        self != OutputType::Nifti
    }
}

/// The `-ot` values as TotalSegmentator's `normalize_output_types` reads them: `nifti` when
/// none, `dicom` meaning `dicom_rtstruct`; anything else is an error listing the choices.
///
/// ```
/// use totalsegmentator::cli::args::{parse_output_types, OutputType};
/// assert_eq!(parse_output_types(None).unwrap(), vec![OutputType::Nifti]);
/// let given = vec!["nifti".to_string(), "dicom_seg".to_string()];
/// assert_eq!(parse_output_types(Some(&given)).unwrap(), vec![OutputType::Nifti, OutputType::DicomSeg]);
/// assert!(parse_output_types(Some(&vec!["png".to_string()])).is_err());
/// ```
pub fn parse_output_types(given: Option<&Vec<String>>) -> Result<Vec<OutputType>, String> {
    let Some(given) = given else {
        return Ok(vec![OutputType::Nifti]);
    };
    let mut types = Vec::new();
    let mut invalid = Vec::new();
    for name in given.iter().flat_map(|g| g.split(',')) {
        match name {
            "nifti" => types.push(OutputType::Nifti),
            "dicom_seg" => types.push(OutputType::DicomSeg),
            "dicom_rtstruct" | "dicom" => types.push(OutputType::DicomRtstruct),
            other => invalid.push(format!("'{other}'")),
        }
    }
    if !invalid.is_empty() || types.is_empty() {
        return Err(format!(
            "Invalid output types: [{}]. Allowed are: ['dicom_rtstruct', 'dicom_seg', 'nifti']",
            invalid.join(", ")
        ));
    }
    Ok(types)
}

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
    fn newer_official_flags_parse_in_their_short_forms() {
        let cli =
            parse("totalseg -i a.nii -o b.nii -ml -v1o -rp r.json -s -sx -cp masks -t None -ho");
        let s = &cli.segment;
        assert!(s.v1_order && s.statistics_extra && s.higher_order_resampling);
        assert_eq!(s.report.as_deref(), Some(std::path::Path::new("r.json")));
        assert_eq!(s.crop_path.as_deref(), Some(std::path::Path::new("masks")));
        assert_eq!(unsupported_option(s), None);
        let cli = parse("totalseg -i a.nii -o b -ot nifti dicom_seg");
        assert_eq!(
            cli.segment.output_type,
            Some(vec!["nifti".to_string(), "dicom_seg".to_string()])
        );
        assert_eq!(unsupported_option(&cli.segment), None);
        for rtstruct in ["dicom_rtstruct", "nifti,dicom", "dicom"] {
            let cli = parse(&format!("totalseg -i a.nii -o b -ot {rtstruct}"));
            assert_eq!(unsupported_option(&cli.segment), None, "{rtstruct}");
            let types = parse_output_types(cli.segment.output_type.as_ref()).expect("valid");
            assert!(types.contains(&OutputType::DicomRtstruct), "{rtstruct}");
        }
        let err = parse_output_types(Some(&vec!["nifti".into(), "png".into()]))
            .expect_err("png is no output type");
        assert!(err.contains("'png'") && err.contains("dicom_seg"), "{err}");
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
