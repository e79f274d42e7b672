//! Errors of task and class lookups.

use std::fmt;

use super::records::Variant;

/// A name the user gave that matched nothing, with the closest known names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// The name as given.
    pub name: String,
    /// Known names close to it (edit distance or substring), best first; may be empty.
    pub suggestions: Vec<&'static str>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.name)?;
        if !self.suggestions.is_empty() {
            write!(
                f,
                " (did you mean {}?)",
                quoted_list(&self.suggestions, " or ")
            )?;
        }
        Ok(())
    }
}

/// Errors of [`TaskRegistry`](super::TaskRegistry) lookups and [`Task`](super::Task) planning.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskError {
    /// No task of this name.
    #[error("unknown task {0}; run --list-tasks to see all tasks")]
    UnknownTask(UnknownName),
    /// `--fast` on a task that forbids it (TotalSegmentator: "task X does not work with option --fast").
    #[error("task '{task}' does not work with option --{variant}")]
    VariantNotSupported {
        /// Task name.
        task: &'static str,
        /// The variant asked for.
        variant: Variant,
    },
    /// `--model_size small` exists only for `total_v3`.
    #[error("model size 'small' is only supported for task 'total_v3', not '{task}'")]
    ModelSizeNotSupported {
        /// Task name.
        task: &'static str,
    },
    /// Class names not in the task's class map.
    #[error("unknown class{} for task '{task}': {}; run --list-classes {task} to see all classes",
        if .unknown.len() == 1 { "" } else { "es" },
        .unknown.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))]
    UnknownClasses {
        /// Task name.
        task: &'static str,
        /// Every unknown name, in the order given.
        unknown: Vec<UnknownName>,
    },
    /// `roi_subset` given for a task whose name does not start with `total`.
    #[error(
        "roi_subset only works with the 'total' tasks (total, total_v3, total_mr), not '{task}'"
    )]
    RoiSubsetNotSupported {
        /// Task name.
        task: &'static str,
    },
    /// An empty `roi_subset`.
    #[error("roi_subset for task '{task}' is empty")]
    EmptyRoiSubset {
        /// Task name.
        task: &'static str,
    },
    /// The crop pre-pass model does not know a class the crop needs (e.g. `vertebrae_L6`, which
    /// `total_v3` has but the `total` crop model has not).
    #[error("class '{class}' cannot be cropped to: the crop model of task '{task}' ({crop_task}) has no such class")]
    CropClassUnavailable {
        /// Task being planned.
        task: &'static str,
        /// Class map of the crop pre-pass.
        crop_task: &'static str,
        /// The missing class.
        class: String,
    },
    /// Inconsistent generated tables (a bug in the generator, not user input).
    #[error("task registry data is inconsistent: {0}")]
    Inconsistent(String),
}

fn quoted_list(names: &[&str], last_separator: &str) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{}{last_separator}{last}", rest.join(", ")),
    }
}
