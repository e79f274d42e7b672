//! What `totalseg` does with its parsed arguments.

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use totalseg_core::tasks::{format_classes_table, format_tasks_table, ClassMap, TaskRegistry};
use totalseg_io::read_image;
use totalseg_io::weights::{
    check_licence_online, dataset_folders_in_archive, unpack_dataset_archive, validate_licence_key,
    DirOverrides, DownloadBar, ExpectedLayout, HttpOptions, StoreDirs, StoreOptions,
    TotalsegConfig, WeightsStore, DEFAULT_LICENCE_SERVER_URL, ENV_LICENCE_SERVER_URL,
};
use totalseg_nn::Precision;

use super::args::{
    parse_output_types, unsupported_option, Cli, CombineMasksArgs, Command, CropToBodyArgs,
    DownloadArgs, ImportWeightsArgs, OutputType, SegmentArgs, SetLicenseArgs, WeightsAction,
    WeightsLocationArgs,
};
use super::nora::{add_to_nora, NoraTag};
use super::report::{python_absolute, RunReport};
use crate::builder::{Device, SegmenterBuilder};
use crate::combine::combine_masks;
use crate::crop_to_body::{crop_to_body, write_cropped};
use crate::error::SegmentError;
use crate::models::{convert_folder, store_spec};
use crate::output::{
    save_derived_body_masks, save_dicom_rtstruct, save_dicom_seg, save_segmentation,
    statistics_path, write_text_atomically, writes_derived_body_masks, OutputLayout,
};
use crate::predictor::TileProgress;
use crate::preview::{preview_path, write_preview};
use crate::radiomics::radiomics_for_dir;
use crate::segmenter::{check_supported, statistics_options, Segmenter};
use totalseg_core::tasks::Variant;
use totalseg_io::probabilities::{pickle_path, write_probabilities};

/// `totalseg combine-masks`: the union of a class group, then the NORA tag if asked.
fn combine(args: &CombineMasksArgs) -> Result<(), SegmentError> {
    let output = python_absolute(&args.output);
    combine_masks(&args.mask_dir, &args.masks, &output, args.multilabel)?;
    if args.nora_tag != "None" {
        for warning in add_to_nora(&args.nora_tag, &[output], NoraTag::Mask) {
            eprintln!("{warning}");
        }
    }
    Ok(())
}

fn crop_body(args: &CropToBodyArgs) -> Result<(), SegmentError> {
    let quiet = args.quiet;
    let segmenter = side_segmenter("body", true, &args.device, &args.location, quiet, |b| b)?;
    let volume = crate::timing::stage("read input", || read_image(&args.input))?;
    let started = Instant::now();
    if !quiet {
        eprintln!("Generating rough body segmentation...");
    }
    let cropped = crop_to_body(&segmenter, &volume, args.only_trunc)?;
    if args.verbose {
        eprintln!(
            "Rough body segmentation and crop in {:.2}s",
            started.elapsed().as_secs_f64()
        );
    }
    if !quiet {
        eprintln!(
            "  cropping from {:?} to {:?}",
            volume.shape(),
            cropped.shape()
        );
    }
    write_cropped(&python_absolute(&args.output), &cropped)
}

/// `totalseg_set_license`: format check, the licence server's answer (unless skipped), then
/// `license_number` in `<home>/config.json`.
fn set_license(args: &SetLicenseArgs) -> Result<(), SegmentError> {
    let key = args.license_number.as_str();
    validate_licence_key(key)?;
    if !args.skip_validation {
        let server = std::env::var(ENV_LICENCE_SERVER_URL)
            .unwrap_or_else(|_| DEFAULT_LICENCE_SERVER_URL.to_string());
        if !check_licence_online(&server, key, &HttpOptions::default())? {
            return Err(SegmentError::Model(
                "Invalid license number. Please check your license number or contact support."
                    .into(),
            ));
        }
    }
    let dirs = StoreDirs::from_env(&DirOverrides::default());
    TotalsegConfig::new(dirs.config_file()).set_licence_key(key)?;
    println!("License has been successfully saved.");
    Ok(())
}

/// `totalseg_import_weights`: every `DatasetNNN_name/` folder of the zip, checked (safe
/// names, a complete model folder) and unpacked into the weights folder; models are
/// converted on first use as downloaded ones are.
fn import_weights(args: &ImportWeightsArgs) -> Result<(), SegmentError> {
    let archive = python_absolute(&args.weights_file);
    let dirs = StoreDirs::from_env(&overrides(&args.location));
    let root = dirs.download_root();
    let folders = dataset_folders_in_archive(&archive)?;
    if folders.is_empty() {
        return Err(SegmentError::Input {
            path: archive,
            message: "no DatasetNNN_name/ folder at the top of the zip: not a TotalSegmentator weights archive".into(),
        });
    }
    std::fs::create_dir_all(root).map_err(|source| SegmentError::Output {
        path: root.to_path_buf(),
        source,
    })?;
    println!(
        "Extracting file {} to {}",
        archive.display(),
        root.display()
    );
    for folder in &folders {
        let layout = ExpectedLayout {
            folder_name: folder,
            model_folder: None,
        };
        let target =
            unpack_dataset_archive(&archive, layout, root, &archive.display().to_string())?;
        println!("  {}", target.display());
    }
    Ok(())
}

/// A segmenter for a side command: progress bars unless quiet, licence stored if given.
pub(super) fn side_segmenter(
    task: &str,
    fast: bool,
    device: &str,
    location: &WeightsLocationArgs,
    quiet: bool,
    configure: impl FnOnce(SegmenterBuilder) -> SegmenterBuilder,
) -> Result<Segmenter, SegmentError> {
    store_licence(location)?;
    let device: Device = device.parse()?;
    let mut builder = SegmenterBuilder::new(task)
        .fast(fast)
        .device(device)
        .weights_dir(location.weights_dir.clone())
        .offline(location.offline);
    if !quiet {
        builder = builder.download_progress(Box::new(DownloadBar::new()));
    }
    let mut segmenter = configure(builder).build()?;
    if !quiet {
        segmenter.set_progress(Box::new(|name: &str| -> Box<dyn TileProgress> {
            Box::new(TileBar::new(name))
        }));
    }
    Ok(segmenter)
}

/// Runs the command line.
pub fn run(cli: Cli) -> Result<(), SegmentError> {
    match cli.command {
        Some(Command::Download(args)) => download(&args),
        Some(Command::Weights {
            action: WeightsAction::List(location),
        }) => list_weights(&location),
        Some(Command::CombineMasks(args)) => combine(&args),
        Some(Command::CropToBody(args)) => crop_body(&args),
        Some(Command::SetLicense(args)) => set_license(&args),
        Some(Command::GetModality(args)) => super::classify::get_modality(&args),
        Some(Command::GetPhase(args)) => super::classify::get_phase(&args),
        Some(Command::ImportWeights(args)) => import_weights(&args),
        Some(Command::Info(args)) => {
            println!("{}", super::info::info_text(&args)?);
            Ok(())
        }
        None => segment(cli.segment),
    }
}

fn segment(args: SegmentArgs) -> Result<(), SegmentError> {
    let debug = args
        .debug
        .then(|| (args.input.clone(), args.task.clone(), args.output.clone()));
    segment_run(args).inspect_err(|_| {
        // TotalSegmentator's --debug: where the failing run was pointed.
        if let Some((input, task, output)) = debug {
            eprintln!("debug: input {input:?}, task {task}, output {output:?}");
        }
    })
}

fn segment_run(args: SegmentArgs) -> Result<(), SegmentError> {
    let registry = TaskRegistry::new();
    if args.list_tasks {
        println!("{}", format_tasks_table(&registry)?);
        return Ok(());
    }
    if let Some(task) = &args.list_classes {
        println!("{}", format_classes_table(&registry, task)?);
        return Ok(());
    }
    let (Some(input), Some(output)) = (args.input.clone(), args.output.clone()) else {
        return Err(SegmentError::Model(
            "the following arguments are required for segmentation: -i <input> -o <output>".into(),
        ));
    };
    if let Some((option, reason)) = unsupported_option(&args) {
        return Err(SegmentError::UnsupportedOption {
            option: option.to_string(),
            reason,
        });
    }
    let output_types =
        parse_output_types(args.output_type.as_ref()).map_err(SegmentError::Model)?;
    let dicom_output = output_types.iter().any(|t| t.is_dicom());
    // Once: telling a zip from a folder opens the file.
    let input_kind = totalseg_io::InputKind::of(&input);
    if dicom_output {
        // By name, as the official tool decides: a missing folder then fails when read.
        match input_kind {
            totalseg_io::InputKind::DicomFolder => {}
            // The outputs refer to the source slices, which the zip only holds while read.
            totalseg_io::InputKind::DicomZip => {
                return Err(SegmentError::Model(
                    "To use output type dicom_rtstruct or dicom_seg give the DICOM series as a folder, not as a zip file.".into(),
                ))
            }
            totalseg_io::InputKind::Nifti => {
                return Err(SegmentError::Model(
                    "To use output type dicom_rtstruct or dicom_seg you also have to use a Dicom image as input.".into(),
                ))
            }
        }
        if args.save_lowres {
            return Err(SegmentError::Model(
                "save_lowres only supports nifti output.".into(),
            ));
        }
    }
    if args.radiomics {
        // The official tool raises these after segmenting; refuse before the work instead.
        if args.ml || dicom_output {
            return Err(SegmentError::Model(
                "Radiomics not supported for multilabel segmentation. Use without --ml option."
                    .into(),
            ));
        }
        if input_kind.is_dicom() {
            return Err(SegmentError::Model(
                "Radiomics not supported for DICOM input. Use nifti input.".into(),
            ));
        }
    }
    if args.crop_path.is_some() {
        log::info!("--crop_path: accepted; TotalSegmentator 2.x reads no masks from it either");
    }
    store_licence(&args.location)?;
    let start = Instant::now();
    let quiet = args.quiet;
    if !quiet {
        eprintln!(
            "\nIf you use this tool please cite: https://pubs.rsna.org/doi/10.1148/ryai.230024\n"
        );
    }
    let device: Device = args.device.parse()?;
    let precision = match args.precision.as_str() {
        "f32" => Some(Precision::F32),
        "f16" => Some(Precision::F16),
        "bf16" => Some(Precision::BF16),
        _ => None,
    };
    let (roi, robust) = match (&args.roi_subset_robust, &args.roi_subset) {
        (Some(r), _) => (Some(r.clone()), true),
        (None, Some(r)) => (Some(r.clone()), false),
        (None, None) => (None, false),
    };
    let statistics = args.statistics.as_ref().map(|_| {
        statistics_options(
            &args.stats_aggregation,
            args.stats_include_incomplete,
            args.statistics_extra,
        )
    });
    // The official CLI swaps total and total_mr to match a DICOM series' Modality.
    let mut task_name = args.task.clone();
    if input.exists() && input_kind == totalseg_io::InputKind::DicomFolder {
        let modality = totalseg_io::dicom::detect_modality(&input);
        let (chosen, warning) =
            totalseg_io::dicom::task_for_modality(&task_name, modality.as_deref());
        if let Some(warning) = warning {
            eprintln!("{warning}");
        }
        task_name = chosen;
    }
    if args.preview && totalseg_core::tasks::preview_groups(&task_name).is_none() {
        // The official tool fails with a KeyError after segmenting; say so before.
        return Err(SegmentError::UnsupportedOption {
            option: "--preview".into(),
            reason: format!("TotalSegmentator has no preview layout for task {task_name}"),
        });
    }
    let mut builder = SegmenterBuilder::new(&task_name)
        .fast(args.fast)
        .fastest(args.fastest)
        .small_model(args.model_size == "small")
        .robust_crop(args.robust_crop)
        .body_seg(args.body_seg)
        .force_split(args.force_split)
        .resampling_order(args.resampling_order)
        .remove_small_blobs(args.remove_small_blobs)
        .statistics(statistics)
        .save_lowres(args.save_lowres)
        .higher_order_resampling(args.higher_order_resampling)
        .higher_order_resampling_legacy(args.higher_order_resampling_legacy)
        .save_probabilities(args.save_probabilities.is_some())
        .preview(args.preview)
        .f32_accumulation(args.f32_accumulation)
        .device(device)
        .precision(precision)
        .weights_dir(args.location.weights_dir.clone())
        .offline(args.location.offline);
    if let Some(classes) = roi {
        builder = builder.roi_subset(classes, robust);
    }
    if let Ok(value) = std::env::var(BATCH_SIZE_VARIABLE) {
        builder = builder.batch_size(parse_batch_size(&value)?);
    }
    if !quiet {
        builder = builder.download_progress(Box::new(DownloadBar::new()));
    }
    // Refuse unsupported tasks before any weights are looked up or downloaded.
    let variant = if args.fastest {
        Variant::Fastest
    } else if args.fast {
        Variant::Fast
    } else {
        Variant::Default
    };
    check_supported(&registry.task(&task_name, variant)?)?;
    let mut segmenter = crate::timing::stage("set up models", || builder.build())?;
    if let Some(message) = segmenter.task().info_message {
        if !quiet {
            eprintln!("{message}");
        }
    }
    if !quiet {
        segmenter.set_progress(Box::new(|name: &str| -> Box<dyn TileProgress> {
            Box::new(TileBar::new(name))
        }));
    }

    if !quiet && input_kind.is_dicom() {
        eprintln!("Converting dicom to nifti...");
    }
    let volume = crate::timing::stage("read input", || read_image(&input))?;
    if !quiet {
        let [a, b, c] = volume.shape();
        eprintln!(
            "Input {}: {a}x{b}x{c} voxels, spacing {:.3?} mm",
            input.display(),
            volume.spacing
        );
    }
    let mut segmentation = crate::timing::stage("segment", || segmenter.segment(&volume))?;
    // nnunet.py reorders only the label map of task total; its statistics keep v2's classes.
    if args.v1_order && task_name == "total" {
        if args.ml {
            let v1 = ClassMap::get("total_v1").ok_or_else(|| {
                SegmentError::Model("the class map total_v1 is missing from the registry".into())
            })?;
            let roi: Option<Vec<String>> = (segmenter.options().roi_subset.as_ref())
                .map(|r| r.names().map(String::from).collect());
            segmentation = segmentation.renumbered(v1.iter(), roi.as_deref());
        } else if !quiet {
            eprintln!("--v1_order changes only the multilabel file (--ml); the per-class files are as without it");
        }
    }
    // DICOM outputs hold all classes in one object, so TotalSegmentator makes the
    // segmentation multilabel for them.
    let layout = if args.ml || dicom_output {
        OutputLayout::Multilabel
    } else {
        OutputLayout::PerClass
    };
    if !args.skip_saving {
        let mut written = crate::timing::stage("write output", || {
            save_outputs(
                &segmentation,
                &input,
                &output,
                &output_types,
                &task_name,
                layout,
                args.nr_thr_saving.max(1),
            )
        })?;
        // TotalSegmentator tags only what its single-type NIfTI branch writes (not the
        // derived body/skin masks).
        if args.nora_tag != "None" && output_types == [OutputType::Nifti] {
            let tag = match layout {
                OutputLayout::Multilabel => NoraTag::Atlas,
                OutputLayout::PerClass => NoraTag::Mask,
            };
            for warning in add_to_nora(&args.nora_tag, &written, tag) {
                eprintln!("{warning}");
            }
        }
        let derives = segmenter.task().postprocessing.derived_body_masks;
        if writes_derived_body_masks(&segmentation, derives, layout, args.no_derived_masks) {
            if !quiet {
                eprintln!("Creating body.nii.gz and skin.nii.gz");
            }
            written.extend(save_derived_body_masks(&segmentation, &volume, &output)?);
        }
        if args.verbose {
            for path in &written {
                eprintln!("  wrote {}", path.display());
            }
        }
    }
    if let (Some(custom), Some(stats)) = (&args.statistics, &segmentation.statistics) {
        let custom = (!custom.is_empty()).then(|| PathBuf::from(custom));
        let path = statistics_path(custom.as_deref(), &output, layout);
        write_text_atomically(&path, &stats.to_json_string())?;
        if !quiet {
            eprintln!("Statistics written to {}", path.display());
        }
    }
    if let Some(image) = &segmentation.preview {
        let path = preview_path(&output, args.ml, &task_name);
        write_preview(&path, image)?;
        if !quiet {
            eprintln!("Preview written to {}", path.display());
        }
    }
    if let Some(path) = &args.save_probabilities {
        match &segmentation.probabilities {
            Some(p) => {
                write_probabilities(path, p.probabilities.view(), &p.properties).map_err(|e| {
                    SegmentError::Output {
                        path: e.path,
                        source: e.source,
                    }
                })?;
                if !quiet {
                    eprintln!(
                        "Probabilities written to {} and {}",
                        path.display(),
                        pickle_path(path).display()
                    );
                }
            }
            // nnunet.py returns before nnU-Net runs when the crop is empty.
            None => eprintln!("No probabilities: no model ran (empty crop)."),
        }
    }
    if args.radiomics {
        if !quiet {
            eprintln!("Calculating radiomics...");
        }
        let started = Instant::now();
        let (report, warnings) = radiomics_for_dir(&input, &output)?;
        write_text_atomically(
            &output.join("statistics_radiomics.json"),
            &report.to_json_string(),
        )?;
        if !quiet {
            for warning in warnings {
                eprintln!("{warning}");
            }
            eprintln!("  calculated in {:.2}s", started.elapsed().as_secs_f64());
        }
    }
    if let Some(path) = &args.report {
        let runtime = start.elapsed().as_secs_f64();
        let report = RunReport::for_run(&args, &task_name, &segmenter, &input, &output, runtime);
        let text = report
            .to_json_string()
            .map_err(|e| SegmentError::Model(format!("run report: {e}")))?;
        let path = python_absolute(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| SegmentError::Output {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        write_text_atomically(&path, &text)?;
        if !quiet {
            eprintln!("Run report written to {}", path.display());
        }
    }
    if !quiet {
        eprintln!(
            "Done in {:.1} s, peak memory {}",
            start.elapsed().as_secs_f64(),
            peak_memory().map_or_else(|| "unknown".to_string(), crate::timing::format_bytes)
        );
    }
    Ok(())
}

/// Writes every requested output type, as nnunet.py lays them out: one type goes to
/// `output` itself; several go into `output` (a folder) or next to it (a file), named
/// `<base>.nii.gz` and `<base>_seg.dcm`, where `<base>` is `<task>_segmentation` for a
/// folder and the file's name up to its first dot otherwise.
fn save_outputs(
    segmentation: &crate::Segmentation,
    input: &std::path::Path,
    output: &std::path::Path,
    types: &[OutputType],
    task_name: &str,
    layout: OutputLayout,
    threads: usize,
) -> Result<Vec<PathBuf>, SegmentError> {
    let write_one = |kind: OutputType, path: &std::path::Path| match kind {
        OutputType::Nifti => save_segmentation(segmentation, path, layout, threads),
        OutputType::DicomSeg => Ok(vec![save_dicom_seg(segmentation, input, path)?.path]),
        OutputType::DicomRtstruct => Ok(vec![save_dicom_rtstruct(segmentation, input, path)?.path]),
    };
    if let [single] = types {
        return write_one(*single, output);
    }
    let (folder, base) = if output.is_dir() {
        (output.to_path_buf(), format!("{task_name}_segmentation"))
    } else {
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let base = name.split('.').next().unwrap_or_default().to_string();
        let folder = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
        (folder, base)
    };
    std::fs::create_dir_all(&folder).map_err(|source| SegmentError::Output {
        path: folder.clone(),
        source,
    })?;
    let mut written = Vec::new();
    for &kind in types {
        let path = match kind {
            OutputType::Nifti => folder.join(format!("{base}.nii.gz")),
            OutputType::DicomSeg => folder.join(format!("{base}_seg.dcm")),
            OutputType::DicomRtstruct => folder.join(format!("{base}_rtstruct.dcm")),
        };
        written.extend(write_one(kind, &path)?);
    }
    Ok(written)
}

/// Tiles per network call, overriding the default (1 on the CPU, from the free memory on a
/// GPU): for measuring the GPU's speed and memory at a given batch size.
pub const BATCH_SIZE_VARIABLE: &str = "TOTALSEG_BATCH_SIZE";

/// A [`BATCH_SIZE_VARIABLE`] value: a whole number of at least 1.
///
/// ```
/// use totalsegmentator::cli::run::parse_batch_size;
/// assert_eq!(parse_batch_size(" 2 ").unwrap(), 2);
/// assert!(parse_batch_size("0").is_err());
/// assert!(parse_batch_size("two").is_err());
/// ```
pub fn parse_batch_size(value: &str) -> Result<usize, SegmentError> {
    match value.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(SegmentError::Model(format!(
            "{BATCH_SIZE_VARIABLE}={value}: expected a whole number of tiles, at least 1"
        ))),
    }
}

/// `-l/--license_number`: stored in the home's config.json as the Python tool does.
pub(super) fn store_licence(location: &WeightsLocationArgs) -> Result<(), SegmentError> {
    if let Some(key) = &location.license_number {
        let dirs = StoreDirs::from_env(&overrides(location));
        TotalsegConfig::new(dirs.config_file()).set_licence_key(key)?;
    }
    Ok(())
}

fn overrides(location: &WeightsLocationArgs) -> DirOverrides {
    DirOverrides {
        weights_dir: location.weights_dir.clone(),
        ..DirOverrides::default()
    }
}

fn store(location: &WeightsLocationArgs) -> WeightsStore {
    let mut options = StoreOptions::from_env();
    options.offline = location.offline;
    WeightsStore::new(StoreDirs::from_env(&overrides(location)), options)
}

fn download(args: &DownloadArgs) -> Result<(), SegmentError> {
    store_licence(&args.location)?;
    let registry = TaskRegistry::new();
    let variant = if args.fast {
        totalseg_core::tasks::Variant::Fast
    } else if args.fastest {
        totalseg_core::tasks::Variant::Fastest
    } else {
        totalseg_core::tasks::Variant::Default
    };
    let task = registry.task(&args.task, variant)?;
    let store = store(&args.location);
    for spec in &task.models {
        let converted =
            store.ensure_converted(&store_spec(spec), &convert_folder, &DownloadBar::new())?;
        println!("{}", converted.dir.display());
    }
    Ok(())
}

fn list_weights(location: &WeightsLocationArgs) -> Result<(), SegmentError> {
    let store = store(location);
    let models = store.list_models()?;
    if models.is_empty() {
        println!(
            "No models in {} or {:?}",
            store.dirs().converted.display(),
            store.dirs().nnunet_roots
        );
        return Ok(());
    }
    println!("{:<10} {:<60} {:>10}  PATH", "FORM", "MODEL", "SIZE");
    for m in models {
        println!(
            "{:<10} {:<60} {:>10}  {}{}",
            format!("{:?}", m.form),
            format!("{}/{}", m.dataset_folder, m.model_folder),
            crate::timing::format_bytes(m.size_bytes),
            m.path.display(),
            if m.complete { "" } else { "  (incomplete)" }
        );
    }
    Ok(())
}

/// A progress bar over a model's tiles.
pub(super) struct TileBar(ProgressBar);

impl TileBar {
    pub(super) fn new(name: &str) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:40!} [{bar:30}] {pos}/{len} tiles {elapsed_precise} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        let short = name.split('/').next().unwrap_or(name);
        bar.set_message(short.to_string());
        Self(bar)
    }
}

impl TileProgress for TileBar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
    }
    fn advance(&self, tiles: u64) {
        self.0.inc(tiles);
        if self.0.length() == Some(self.0.position()) {
            self.0.finish();
        }
    }
}

/// Peak resident memory of this process (VmHWM), Linux only.
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
