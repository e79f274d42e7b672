//! `--report <path>`: TotalSegmentator's machine-readable run report (`build_run_report` in
//! python_api.py), so that automation written for the official tool can read ours.
//!
//! The keys and their order are the official ones. The Python package versions are `null`
//! (no Python runs); `totalseg_rs_version` names this tool's version instead.

use std::path::{Component, Path, PathBuf};

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::args::{parse_output_types, SegmentArgs};
use crate::segmenter::Segmenter;

/// One finished run, as the official report describes it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunReport {
    /// The Python package's version: `null` here.
    pub totalsegmentator_version: Option<String>,
    /// `null` here.
    pub nnunetv2_version: Option<String>,
    /// `null` here.
    pub torch_version: Option<String>,
    /// This tool's version.
    pub totalseg_rs_version: String,
    /// The task as given (`total`, `lung_vessels`, ...).
    pub task: String,
    /// `CT` or `MR`.
    pub modality: String,
    /// Whether the task needs a licence.
    pub license_required: bool,
    /// `cpu` or `gpu`: where the networks ran, after any fallback.
    pub device: Option<String>,
    /// `--fast`.
    pub fast: bool,
    /// `--fastest`.
    pub fastest: bool,
    /// `--save_lowres` together with `--fast` or `--fastest` (and without
    /// `--higher_order_resampling`, which turns it off).
    pub save_lowres: bool,
    /// `--ml`.
    pub multilabel: bool,
    /// `-ot`: the type's name, or a list when several were given (as the official report).
    pub output_type: serde_json::Value,
    /// `--roi_subset` as given.
    pub roi_subset: Option<Vec<String>>,
    /// The input path, absolute.
    pub input: String,
    /// The output path, absolute.
    pub output: Option<String>,
    /// Number of entries in `classes`.
    pub num_classes: usize,
    /// The task's classes (label -> name), filtered by the roi subset.
    #[serde(serialize_with = "serialize_classes")]
    pub classes: Vec<(u16, String)>,
    /// Wall time of the run in seconds, rounded to 2 decimals.
    pub runtime_seconds: f64,
    /// The `*.nii.gz` files in the output folder, sorted (empty for `--ml`).
    pub output_files: Vec<String>,
}

impl RunReport {
    /// The report of a finished `totalseg` run: its arguments, the task as run (after the
    /// DICOM modality swap), where the networks ran and its wall time in seconds.
    pub fn for_run(
        args: &SegmentArgs,
        task_name: &str,
        segmenter: &Segmenter,
        input: &Path,
        output: &Path,
        runtime_seconds: f64,
    ) -> RunReport {
        let task = segmenter.task();
        let roi = args.roi_subset_robust.as_ref().or(args.roi_subset.as_ref());
        let classes: Vec<(u16, String)> = (task.class_map.iter())
            .filter(|(_, name)| roi.is_none_or(|r| r.iter().any(|n| n == name)))
            .map(|(label, name)| (label, name.to_string()))
            .collect();
        RunReport {
            totalsegmentator_version: None,
            nnunetv2_version: None,
            torch_version: None,
            totalseg_rs_version: env!("CARGO_PKG_VERSION").to_string(),
            task: task_name.to_string(),
            modality: task.modality.as_str().to_string(),
            license_required: task.licensed,
            device: segmenter.device_kind().map(|d| d.as_str().to_string()),
            fast: args.fast,
            fastest: args.fastest,
            save_lowres: args.save_lowres
                && (args.fast || args.fastest)
                && !args.higher_order_resampling,
            multilabel: args.ml,
            output_type: output_type_value(args),
            roi_subset: roi.cloned(),
            input: python_absolute(input).display().to_string(),
            output: Some(python_absolute(output).display().to_string()),
            num_classes: classes.len(),
            classes,
            runtime_seconds: round_seconds(runtime_seconds),
            output_files: output_files(output),
        }
    }

    /// The JSON text (`json.dump(report, f, indent=2)`).
    ///
    /// ```
    /// use totalsegmentator::cli::report::RunReport;
    /// let report = RunReport {
    ///     totalsegmentator_version: None,
    ///     nnunetv2_version: None,
    ///     torch_version: None,
    ///     totalseg_rs_version: "0.1.0".into(),
    ///     task: "total".into(),
    ///     modality: "CT".into(),
    ///     license_required: false,
    ///     device: Some("cpu".into()),
    ///     fast: true,
    ///     fastest: false,
    ///     save_lowres: false,
    ///     multilabel: true,
    ///     output_type: "nifti".into(),
    ///     roi_subset: None,
    ///     input: "/data/ct.nii.gz".into(),
    ///     output: Some("/data/seg.nii.gz".into()),
    ///     num_classes: 1,
    ///     classes: vec![(1, "spleen".into())],
    ///     runtime_seconds: 12.5,
    ///     output_files: vec![],
    /// };
    /// let json = report.to_json_string()?;
    /// assert!(json.starts_with("{\n  \"totalsegmentator_version\": null,"));
    /// assert!(json.contains("\"classes\": {\n    \"1\": \"spleen\"\n  },"));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    pub fn to_json_string(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }
}

/// `{str(label): name}` in class-map order (a JSON object whose keys stay in that order).
fn serialize_classes<S: Serializer>(
    classes: &[(u16, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(classes.len()))?;
    for (label, name) in classes {
        map.serialize_entry(&label.to_string(), name)?;
    }
    map.end()
}

/// `Path(p).absolute()`: joined to the working directory, `.` components and a trailing
/// slash dropped, `..` and symbolic links kept.
///
/// ```
/// use std::path::Path;
/// use totalsegmentator::cli::report::python_absolute;
/// assert_eq!(python_absolute(Path::new("/data/./cts/")), Path::new("/data/cts"));
/// assert!(python_absolute(Path::new("a/../b")).ends_with("a/../b"));
/// ```
pub fn python_absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// The sorted names of the `*.nii.gz` entries directly in `output` (none if it is not a
/// folder), as `Path(output).glob("*.nii.gz")` lists them.
pub fn output_files(output: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(output) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".nii.gz"))
        .collect();
    names.sort();
    names
}

/// The report's `output_type`: one name, or the list of names when several were given.
fn output_type_value(args: &SegmentArgs) -> serde_json::Value {
    let names: Vec<&str> = parse_output_types(args.output_type.as_ref())
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.as_str())
        .collect();
    match names.as_slice() {
        [one] => (*one).into(),
        _ => names.into(),
    }
}

/// Python's `round(seconds, 2)`.
pub fn round_seconds(seconds: f64) -> f64 {
    totalseg_core::statistics::python_round(seconds, 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_files_lists_only_nifti_gz_entries_sorted() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["spleen.nii.gz", "aorta.nii.gz", "statistics.json", "x.nii"] {
            std::fs::write(dir.path().join(name), b"").expect("write");
        }
        assert_eq!(output_files(dir.path()), ["aorta.nii.gz", "spleen.nii.gz"]);
        assert!(output_files(&dir.path().join("spleen.nii.gz")).is_empty());
    }

    #[test]
    fn runtime_is_rounded_as_python_rounds() {
        assert_eq!(round_seconds(12.344999), 12.34);
        assert_eq!(round_seconds(0.125), 0.12);
        assert_eq!(round_seconds(3.0), 3.0);
    }
}
