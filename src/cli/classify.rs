//! `totalseg get-modality` and `totalseg get-phase`: TotalSegmentator's XGBoost side
//! commands, with the segmentation runs they need.

use std::path::Path;
use std::time::Instant;

use totalseg_core::statistics::Statistics;
use totalseg_io::read_image;

use super::args::{GetModalityArgs, GetPhaseArgs};
use super::report::python_absolute;
use super::run::side_segmenter;
use crate::classifiers::modality::{
    image_features, roi_features, roi_statistics_options, ModalityClassifier,
};
use crate::classifiers::phase::{
    needs_headneck, phase_features, phase_statistics_options, statistics_from_json, PhaseClassifier,
};
use crate::error::SegmentError;
use crate::output::write_text_atomically;
use crate::segmenter::Segmenter;
use totalseg_io::nifti::Volume;

/// Statistics of one segmentation run of `segmenter` (built with statistics on).
fn run_statistics(segmenter: &Segmenter, volume: &Volume) -> Result<Statistics, SegmentError> {
    segmenter.segment(volume)?.statistics.ok_or_else(|| {
        SegmentError::Model(format!(
            "the {} run gave no statistics",
            segmenter.task().name
        ))
    })
}

/// The image in `slot`, read from `path` the first time.
fn loaded<'a>(slot: &'a mut Option<Volume>, path: &Path) -> Result<&'a Volume, SegmentError> {
    if slot.is_none() {
        *slot = Some(read_image(path)?);
    }
    slot.as_ref()
        .ok_or_else(|| SegmentError::Model("image not loaded".into()))
}

fn write_result(path: &Path, json: &str, pprint: &str, quiet: bool) -> Result<(), SegmentError> {
    if !quiet {
        println!("Result:");
        println!("{pprint}");
    }
    write_text_atomically(&python_absolute(path), json)
}

/// `totalseg_get_modality`: whole-image intensity features, or (`-n`) the median normalised
/// intensity of 16 structures from `total_mr --fast`.
pub(super) fn get_modality(args: &GetModalityArgs) -> Result<(), SegmentError> {
    let volume = read_image(&args.input)?;
    let result = if args.normalized_intensities {
        let options = roi_statistics_options();
        let segmenter = side_segmenter(
            "total_mr",
            true,
            &args.device,
            &args.location,
            args.quiet,
            |b| b.statistics(Some(options)),
        )?;
        let stats = run_statistics(&segmenter, &volume)?;
        ModalityClassifier::roi_intensities()?.predict(&roi_features(&stats)?)
    } else {
        ModalityClassifier::image_intensities()?.predict(&image_features(volume.data.view()))
    };
    write_result(
        &args.output,
        &result.to_json_string(),
        &result.to_pprint_string(),
        args.quiet,
    )
}

/// `totalseg_get_phase`: statistics of `total --fast` (or `-s`), of `headneck_bones_vessels`
/// when the brain is in view, then the five regressors.
pub(super) fn get_phase(args: &GetPhaseArgs) -> Result<(), SegmentError> {
    get_phase_run(args).inspect_err(|_| {
        if args.debug {
            eprintln!("debug: input {:?}, task get_phase", args.input);
        }
    })
}

fn get_phase_run(args: &GetPhaseArgs) -> Result<(), SegmentError> {
    let say = |status: &str| {
        if !args.quiet {
            println!("{status}");
        }
    };
    let classifier = match &args.model_file {
        Some(path) => PhaseClassifier::from_pickle_file(path)?,
        None => PhaseClassifier::official()?,
    };
    say("Loading data");
    if !args.input.exists() {
        return Err(SegmentError::Input {
            path: args.input.clone(),
            message: "no such file or folder".into(),
        });
    }
    // Read only when a model has to run (with -s and no brain, the image is not needed).
    let mut volume: Option<Volume> = None;
    // One model run with the statistics get_phase reads (`--save_lowres` with `--fast`).
    let run_model = |task: &str, fast: bool, volume: &mut Option<Volume>| {
        let started = Instant::now();
        let segmenter =
            side_segmenter(task, fast, &args.device, &args.location, args.quiet, |b| {
                b.save_lowres(fast)
                    .statistics(Some(phase_statistics_options()))
            })?;
        let stats = run_statistics(&segmenter, loaded(volume, &args.input)?)?;
        say(&format!("  took: {:.2}s", started.elapsed().as_secs_f64()));
        Ok::<_, SegmentError>(stats)
    };

    let (total, total_source) = match &args.existing_stats {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| SegmentError::Input {
                path: path.clone(),
                message: source.to_string(),
            })?;
            let source_name = path.display().to_string();
            (statistics_from_json(&text, &source_name)?, source_name)
        }
        None => {
            say("Running TotalSegmentator model");
            let stats = run_model("total", true, &mut volume)?;
            (stats, "total --fast".to_string())
        }
    };

    let headneck = if needs_headneck(&total, &total_source)? {
        say("Running headneck model");
        Some(run_model("headneck_bones_vessels", false, &mut volume)?)
    } else {
        None
    };

    say("Predicting phase");
    let features = phase_features(&total, headneck.as_ref(), &total_source)?;
    let result = classifier.predict(&features)?;
    say("Done");
    write_result(
        &args.output,
        &result.to_json_string(),
        &result.to_pprint_string(),
        args.quiet,
    )
}
