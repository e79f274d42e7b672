//! `--roi_subset`: validation against a task's classes and the models it needs.

use super::error::{TaskError, UnknownName};
use super::model::ModelSpec;
use super::suggest::suggest;
use super::task::Task;

/// A validated `roi_subset`: classes of one task, in label order, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoiSubset {
    task: &'static str,
    classes: Vec<(u16, &'static str)>,
}

impl RoiSubset {
    /// Task the classes belong to.
    pub fn task(&self) -> &'static str {
        self.task
    }

    /// `(output label, name)` pairs in label order (the order TotalSegmentator writes them).
    pub fn entries(&self) -> &[(u16, &'static str)] {
        &self.classes
    }

    /// Class names in label order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.classes.iter().map(|&(_, name)| name)
    }

    /// Output labels in ascending order.
    pub fn labels(&self) -> impl Iterator<Item = u16> + '_ {
        self.classes.iter().map(|&(label, _)| label)
    }

    /// True when the subset keeps this output label.
    pub fn contains_label(&self, label: u16) -> bool {
        self.classes.iter().any(|&(l, _)| l == label)
    }

    /// True when the subset has a class of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.classes.iter().any(|&(_, n)| n == name)
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Always false for a validated subset; present for API completeness.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }
}

impl Task {
    /// Check `--roi_subset` names against the task's classes.
    ///
    /// TotalSegmentator allows a subset only for tasks whose name starts with `total`; every
    /// unknown name is reported at once, each with the closest class names.
    ///
    /// ```
    /// use totalseg_core::tasks::{TaskError, TaskRegistry, Variant};
    ///
    /// let total = TaskRegistry::new().task("total", Variant::Default)?;
    /// let subset = total.validate_roi_subset(&["liver", "brain"])?;
    /// assert_eq!(subset.labels().collect::<Vec<_>>(), vec![5, 90]);
    /// // Only the models predicting these classes run: organs (291) and muscles (294).
    /// let ids: Vec<u16> = total.models_for_roi_subset(&subset).iter().map(|m| m.dataset_id).collect();
    /// assert_eq!(ids, vec![291, 294]);
    ///
    /// let err = total.validate_roi_subset(&["livr"]).unwrap_err();
    /// assert!(err.to_string().contains("did you mean 'liver'"));
    /// # Ok::<(), TaskError>(())
    /// ```
    pub fn validate_roi_subset<S: AsRef<str>>(&self, names: &[S]) -> Result<RoiSubset, TaskError> {
        if !self.name.starts_with("total") {
            return Err(TaskError::RoiSubsetNotSupported { task: self.name });
        }
        if names.is_empty() {
            return Err(TaskError::EmptyRoiSubset { task: self.name });
        }
        let mut classes = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        for name in names {
            let name = name.as_ref();
            match self.class_map.label(name) {
                Some(label) => {
                    if let Some(class_name) = self.class_map.name(label) {
                        classes.push((label, class_name));
                    }
                }
                None => unknown.push(UnknownName {
                    name: name.to_string(),
                    suggestions: suggest(name, self.class_map.names()),
                }),
            }
        }
        if !unknown.is_empty() {
            return Err(TaskError::UnknownClasses {
                task: self.name,
                unknown,
            });
        }
        classes.sort_unstable();
        classes.dedup();
        Ok(RoiSubset {
            task: self.name,
            classes,
        })
    }

    /// Models to run for a subset: for a multi-model task only the models predicting one of
    /// its classes (in run order), otherwise all models.
    pub fn models_for_roi_subset(&self, subset: &RoiSubset) -> Vec<ModelSpec> {
        if !self.is_multi_model() {
            return self.models.clone();
        }
        self.models
            .iter()
            .filter(|model| subset.names().any(|name| model.labels.contains(name)))
            .copied()
            .collect()
    }
}
