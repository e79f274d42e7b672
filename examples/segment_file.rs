//! Segments one CT and prints per-class statistics.
//!
//! ```sh
//! cargo run --release --example segment_file -- ct.nii.gz [task] [--fast]
//! ```
//! Weights are found in (or downloaded to) `~/.totalsegmentator`, like the Python tool's.

use std::path::PathBuf;

use totalsegmentator::segmenter::statistics_options;
use totalsegmentator::{read_nifti, Device, SegmenterBuilder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the `totalseg` binary does: glibc then reuses the CPU network's freed activations
    // instead of mapping them afresh for every layer (a fifth less time on the CPU). It changes
    // malloc for the whole process, so it is the program's choice, not the library's.
    totalsegmentator::cli::allocator::keep_freed_memory_for_reuse();
    let mut args = std::env::args().skip(1);
    let input = PathBuf::from(
        args.next()
            .ok_or("usage: segment_file <ct.nii.gz> [task] [--fast]")?,
    );
    let rest: Vec<String> = args.collect();
    let task = rest
        .iter()
        .find(|a| !a.starts_with("--"))
        .map_or("total", String::as_str);
    let fast = rest.iter().any(|a| a == "--fast");

    // Models are loaded once; `segment` can be called for many volumes.
    let segmenter = SegmenterBuilder::new(task)
        .fast(fast)
        .device(Device::Cpu)
        .statistics(Some(statistics_options("mean", false, false)))
        .build()?;
    let ct = read_nifti(&input)?;
    let segmentation = segmenter.segment(&ct)?;

    if let Some(stats) = &segmentation.statistics {
        for (name, s) in &stats.entries {
            if s.volume > 0.0 {
                println!("{name:<40} {:>12.1} mm3  {:>8.1} HU", s.volume, s.intensity);
            }
        }
    }
    Ok(())
}
