//! The contrast phase and the modality of a CT through the library, as `totalseg get-phase`
//! and `totalseg get-modality` compute them: `total --fast` statistics (median HU, border
//! structures kept), the head-and-neck model when the brain is in view, then
//! TotalSegmentator's XGBoost classifiers.
//!
//! ```text
//! cargo run --release --example contrast_phase -- CT.nii.gz [WEIGHTS_DIR]
//! ```

use std::path::{Path, PathBuf};

use totalsegmentator::classifiers::modality::{image_features, ModalityClassifier};
use totalsegmentator::classifiers::phase::{
    needs_headneck, phase_features, phase_statistics_options, PhaseClassifier,
};
use totalsegmentator::{read_nifti, Device, SegmenterBuilder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(ct_path) = args.first() else {
        return Err("usage: contrast_phase CT.nii.gz [WEIGHTS_DIR]".into());
    };
    let weights = args.get(1).map(PathBuf::from);
    let ct = read_nifti(Path::new(ct_path))?;

    let modality =
        ModalityClassifier::image_intensities()?.predict(&image_features(ct.data.view()));
    println!("modality: {}", modality.to_pprint_string());

    let segmenter = |task: &str, fast: bool| {
        SegmenterBuilder::new(task)
            .fast(fast)
            .save_lowres(fast)
            .statistics(Some(phase_statistics_options()))
            .device(Device::Cpu)
            .weights_dir(weights.clone())
            .build()
    };
    let total = segmenter("total", true)?
        .segment(&ct)?
        .statistics
        .ok_or("no statistics")?;
    let headneck = if needs_headneck(&total, ct_path)? {
        segmenter("headneck_bones_vessels", false)?
            .segment(&ct)?
            .statistics
    } else {
        None
    };
    let features = phase_features(&total, headneck.as_ref(), ct_path)?;
    let phase = PhaseClassifier::official()?.predict(&features)?;
    println!("phase: {}", phase.to_pprint_string());
    println!("{}", phase.to_json_string());
    Ok(())
}
