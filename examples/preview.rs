//! The `--preview` image of a label map on its CT (both on the grid nnU-Net saw: canonical,
//! at the model's spacing), as TotalSegmentator's `generate_preview` draws it.
//!
//! ```text
//! cargo run --release --example preview -- CT.nii.gz LABELS.nii.gz TASK OUT.png
//! ```

use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ct, labels, task, out] = args.as_slice() else {
        return Err("usage: preview CT.nii.gz LABELS.nii.gz TASK OUT.png".into());
    };
    let start = Instant::now();
    totalsegmentator::preview::preview_for_files(
        Path::new(ct),
        Path::new(labels),
        task,
        Path::new(out),
    )?;
    println!("{out} in {:.2} s", start.elapsed().as_secs_f64());
    Ok(())
}
