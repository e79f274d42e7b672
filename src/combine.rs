//! `totalseg combine-masks`: TotalSegmentator's `totalseg_combine_masks` (`libs.combine_masks`),
//! the union of a group of class masks (lung, vertebrae, ribs, ...) as one binary file.

use std::path::Path;

use ndarray::{Array3, Zip};
use totalseg_core::tasks::combine_mask_classes;
use totalseg_io::nifti::{
    read_label_map, read_nifti, write_label_map, LabelNames, NiftiDataType, NiftiHeader,
};

use crate::error::SegmentError;

/// The union of the masks of `group` (one of
/// [`totalseg_core::tasks::COMBINE_MASK_GROUPS`]), from a TotalSegmentator output folder of
/// per-class files or from a multilabel file with its label names, written to `output` as a
/// uint8 0/1 image with a fresh header on the masks' affine. With `multilabel`, label 1 is
/// named after the group in the label extension. Returns the number of voxels set.
///
/// ```no_run
/// use std::path::Path;
/// let voxels = totalsegmentator::combine::combine_masks(
///     Path::new("segmentations"), "lung", Path::new("lung.nii.gz"), false)?;
/// println!("{voxels} lung voxels");
/// # Ok::<(), totalsegmentator::SegmentError>(())
/// ```
pub fn combine_masks(
    input: &Path,
    group: &str,
    output: &Path,
    multilabel: bool,
) -> Result<usize, SegmentError> {
    let classes = combine_mask_classes(group).ok_or_else(|| {
        SegmentError::Model(format!(
            "combine masks: no class list for '{group}' (the official tool fails on it too)"
        ))
    })?;
    let (combined, affine) = if input.is_file() {
        combine_from_multilabel(input, &classes)?
    } else {
        combine_from_folder(input, &classes)?
    };
    let (a, b, c) = combined.dim();
    let header = NiftiHeader::for_new_image([a, b, c], &affine, NiftiDataType::U8)
        .map_err(|kind| totalseg_io::nifti::NiftiError::at(output, kind))?;
    let names: Option<LabelNames> = multilabel.then(|| [(1u8, group.to_string())].into());
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| SegmentError::Output {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    // The NIfTI writer goes through a temporary file: a failure leaves no partial output.
    write_label_map(output, combined.view(), &header, names.as_ref())?;
    Ok(combined.iter().filter(|&&v| v == 1).count())
}

/// `combined[img_data == label_id] = 1` for the group's labels of a multilabel file.
fn combine_from_multilabel(
    path: &Path,
    classes: &[String],
) -> Result<(Array3<u8>, totalseg_io::nifti::Affine), SegmentError> {
    let map = read_label_map(path)?;
    let names = map.names.ok_or_else(|| SegmentError::Input {
        path: path.to_path_buf(),
        message: "has no label names (TotalSegmentator's label extension): cannot find the classes"
            .into(),
    })?;
    let mut labels = Vec::new();
    for class in classes {
        match names.iter().find(|(_, n)| *n == class) {
            Some((&label, _)) => labels.push(label),
            None => {
                return Err(SegmentError::Input {
                    path: path.to_path_buf(),
                    message: format!("has no class {class} in its label names"),
                })
            }
        }
    }
    let combined = map.labels.mapv(|v| u8::from(labels.contains(&v)));
    Ok((combined, map.affine))
}

/// `combined[img > 0.5] = 1` over `<folder>/<class>.nii.gz`; every file must exist, and the
/// first one gives the grid.
fn combine_from_folder(
    folder: &Path,
    classes: &[String],
) -> Result<(Array3<u8>, totalseg_io::nifti::Affine), SegmentError> {
    let path_of = |class: &str| folder.join(format!("{class}.nii.gz"));
    for class in classes {
        if !path_of(class).is_file() {
            return Err(SegmentError::Input {
                path: path_of(class),
                message: "not found. Did you run TotalSegmentator successfully?".into(),
            });
        }
    }
    let reference = read_nifti(&path_of(&classes[0]))?;
    let mut combined = Array3::<u8>::zeros(reference.data.raw_dim());
    for class in classes {
        let path = path_of(class);
        let mask = read_nifti(&path)?;
        if mask.data.dim() != combined.dim() {
            return Err(SegmentError::Input {
                path,
                message: format!(
                    "has shape {:?}, {} has {:?}",
                    mask.data.dim(),
                    classes[0],
                    combined.dim()
                ),
            });
        }
        Zip::from(&mut combined).and(&mask.data).for_each(|c, &v| {
            if v > 0.5 {
                *c = 1;
            }
        });
    }
    Ok((combined, reference.affine))
}
