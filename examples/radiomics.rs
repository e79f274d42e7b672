//! Radiomics features of the class masks in a folder, as `totalseg --radiomics` computes
//! them after segmenting (pyradiomics shape + first-order at 3 mm, TotalSegmentator's JSON).
//!
//! ```text
//! cargo run --release --example radiomics -- CT.nii.gz MASK_FOLDER OUT.json
//! ```

use std::path::PathBuf;
use std::time::Instant;

use totalsegmentator::radiomics::radiomics_for_dir;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [ct, masks, out] = args.as_slice() else {
        return Err("usage: radiomics CT.nii.gz MASK_FOLDER OUT.json".into());
    };
    let start = Instant::now();
    let (report, warnings) = radiomics_for_dir(ct, masks)?;
    report.write_json(out)?;
    let with_features = report.entries.iter().filter(|(_, f)| f.len() == 32).count();
    println!(
        "{} masks ({with_features} with features, {} all 0) in {:.2} s -> {}",
        report.entries.len(),
        warnings.len(),
        start.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
