//! `--preview`: TotalSegmentator's `preview_<task>.png`, drawn from the image nnU-Net was
//! given and its label map (see [`totalseg_core::preview`] for what is drawn).

use std::path::{Path, PathBuf};

use ndarray::ArrayView3;
use totalseg_core::geometry::Affine;
use totalseg_core::preview::{render_preview, PreviewImage};
use totalseg_core::tasks::{preview_label_groups, ClassMap};
use totalseg_io::nifti::read_nifti;
use totalseg_io::png::write_png_rgb;

use crate::error::SegmentError;

/// The label groups `preview.py` draws for `task` (`output_task_name`), as labels of
/// `class_map` (the task's output classes). An error for a task without a layout, where the
/// official tool fails with a KeyError after segmenting.
pub fn preview_groups_for_task(
    task: &str,
    class_map: &ClassMap,
) -> Result<Vec<Vec<u8>>, SegmentError> {
    let unsupported = |reason: String| SegmentError::UnsupportedOption {
        option: "--preview".into(),
        reason,
    };
    let groups = preview_label_groups(task, class_map)
        .ok_or_else(|| {
            unsupported(format!(
                "TotalSegmentator has no preview layout for task {task}"
            ))
        })?
        .map_err(|name| {
            unsupported(format!(
                "the preview layout of {task} names {name}, not a class of it"
            ))
        })?;
    Ok(groups
        .into_iter()
        .map(|g| g.into_iter().filter_map(|l| u8::try_from(l).ok()).collect())
        .collect())
}

/// Where the official tool writes the preview: `preview_<task>.png` in the output folder, or
/// next to the `--ml` file.
pub fn preview_path(output: &Path, multilabel: bool, task: &str) -> PathBuf {
    let dir = if multilabel {
        output.parent().unwrap_or(Path::new("")).to_path_buf()
    } else {
        output.to_path_buf()
    };
    dir.join(format!("preview_{task}.png"))
}

/// Draws the preview of `labels` on the grid of `ct` (canonical, at the model's spacing).
pub fn preview_image(
    ct: ArrayView3<f32>,
    affine: &Affine,
    labels: ArrayView3<u8>,
    task: &str,
) -> Result<PreviewImage, SegmentError> {
    let map = ClassMap::get(task).ok_or_else(|| SegmentError::UnsupportedOption {
        option: "--preview".into(),
        reason: format!("task {task} has no class map to draw"),
    })?;
    let groups = preview_groups_for_task(task, &map)?;
    Ok(render_preview(ct, affine, labels, &groups)?)
}

/// Draws the preview of a label-map file on a CT file (same grid) and writes it as a PNG.
///
/// ```no_run
/// use std::path::Path;
/// totalsegmentator::preview::preview_for_files(
///     Path::new("ct_3mm.nii.gz"),
///     Path::new("segmentation_3mm.nii.gz"),
///     "total",
///     Path::new("preview_total.png"),
/// )?;
/// # Ok::<(), totalsegmentator::error::SegmentError>(())
/// ```
pub fn preview_for_files(
    ct: &Path,
    labels: &Path,
    task: &str,
    out: &Path,
) -> Result<(), SegmentError> {
    let ct = read_nifti(ct)?;
    let labels = read_nifti(labels)?;
    let labels = labels.data.mapv(|v| {
        if (0.0..=255.0).contains(&v) {
            v as u8
        } else {
            0
        }
    });
    let image = preview_image(ct.data.view(), &ct.affine, labels.view(), task)?;
    write_preview(out, &image)
}

/// Writes a preview image as a PNG (through a temporary file).
pub fn write_preview(path: &Path, image: &PreviewImage) -> Result<(), SegmentError> {
    Ok(write_png_rgb(path, image.width, image.height, &image.rgb)?)
}
