//! The DICOM Modality of a series, as TotalSegmentator's CLI reads it to swap `total` and
//! `total_mr` (`dicom_io.detect_dicom_modality`).

use std::path::{Path, PathBuf};

use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;

/// The Modality (e.g. `"CT"`, `"MR"`) of the first readable DICOM file with a non-empty
/// Modality: `path` itself if it is a file, else the folder's `*.dcm` files in name order,
/// or all its files if there are none (not recursive, like the official function). `None`
/// when nothing readable says.
pub fn detect_modality(path: &Path) -> Option<String> {
    let candidates: Vec<PathBuf> = if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let dcm: Vec<PathBuf> = files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
            .cloned()
            .collect();
        if dcm.is_empty() {
            files
        } else {
            dcm
        }
    };
    candidates.iter().find_map(|file| {
        let obj = OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(file)
            .ok()?;
        let modality = obj.element_opt(tags::MODALITY).ok().flatten()?;
        let text = modality.to_str().ok()?;
        let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        (!text.is_empty()).then(|| text.to_string())
    })
}

/// TotalSegmentator's automatic task choice for DICOM input: `total_mr` on a CT series runs
/// `total`, `total` on an MR series runs `total_mr`. Returns the task to run and, when it
/// changed, the warning the official CLI prints.
pub fn task_for_modality(task: &str, modality: Option<&str>) -> (String, Option<&'static str>) {
    match (modality.map(str::to_uppercase).as_deref(), task) {
        (Some("CT"), "total_mr") => (
            "total".into(),
            Some("WARNING: you tried to run MR model, but input modality is CT. Will run CT model instead."),
        ),
        (Some("MR"), "total") => (
            "total_mr".into(),
            Some("WARNING: you tried to run CT model, but input modality is MR. Will run MR model instead."),
        ),
        _ => (task.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_total_and_total_mr_are_swapped() {
        assert_eq!(task_for_modality("total", Some("MR")).0, "total_mr");
        assert_eq!(task_for_modality("total_mr", Some("ct")).0, "total");
        assert_eq!(
            task_for_modality("total", Some("CT")),
            ("total".into(), None)
        );
        assert_eq!(task_for_modality("body", Some("MR")), ("body".into(), None));
        assert_eq!(task_for_modality("total", None), ("total".into(), None));
    }
}
