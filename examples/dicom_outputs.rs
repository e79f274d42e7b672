//! Segments a DICOM series and writes the result as a DICOM SEG and an RT Structure Set next
//! to each other, referring back to the series (what `totalseg -ot dicom_seg dicom_rtstruct`
//! writes).
//!
//! ```sh
//! cargo run --release --example dicom_outputs -- <dicom folder> <output folder> [--fast]
//! ```
//! Weights are found in (or downloaded to) `~/.totalsegmentator`, like the Python tool's.

use std::path::PathBuf;

use totalsegmentator::output::{save_dicom_rtstruct, save_dicom_seg};
use totalsegmentator::{Device, SegmenterBuilder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    totalsegmentator::cli::allocator::keep_freed_memory_for_reuse();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: dicom_outputs <dicom folder> <output folder> [--fast]";
    let series = PathBuf::from(args.first().ok_or(usage)?);
    let out = PathBuf::from(args.get(1).ok_or(usage)?);
    let fast = args.iter().any(|a| a == "--fast");

    let segmenter = SegmenterBuilder::new("total")
        .fast(fast)
        .device(Device::Cpu)
        .build()?;
    // The same reader as for NIfTI files: the series becomes the volume dicom2nifti makes.
    let ct = totalseg_io::read_image(&series)?;
    let segmentation = segmenter.segment(&ct)?;

    std::fs::create_dir_all(&out)?;
    let seg = save_dicom_seg(&segmentation, &series, &out.join("segmentation_seg.dcm"))?;
    println!(
        "{}: {} segments in {} frames",
        seg.path.display(),
        seg.segments,
        seg.frames
    );
    let rt = save_dicom_rtstruct(
        &segmentation,
        &series,
        &out.join("segmentation_rtstruct.dcm"),
    )?;
    println!(
        "{}: {} ROIs, {} contours",
        rt.path.display(),
        rt.rois,
        rt.contours
    );
    Ok(())
}
