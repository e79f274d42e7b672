//! Text for `--list-tasks` and `--list-classes TASK`.

use std::fmt::Write as _;

use super::error::TaskError;
use super::records::{Modality, Variant};
use super::registry::{TaskInfo, TaskRegistry};

/// Where licensed tasks get their (free for non-commercial use) license; printed by registry.py.
pub const LICENSE_URL: &str = "https://backend.totalsegmentator.com/license-academic/";

/// One variant of a task in `--list-tasks`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VariantSummary {
    /// The variant.
    pub variant: Variant,
    /// Dataset ids of its model(s).
    pub dataset_ids: &'static [u16],
    /// Target spacing (x, y, z) in mm; `None`: native spacing.
    pub resolution_mm: Option<[f64; 3]>,
}

/// One row of `--list-tasks`.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSummary {
    /// Task name.
    pub name: &'static str,
    /// Image modality.
    pub modality: Modality,
    /// Variants with their own model.
    pub variants: Vec<VariantSummary>,
    /// True when the task needs a license.
    pub licensed: bool,
    /// Number of output classes.
    pub num_classes: usize,
}

impl TaskSummary {
    /// The summary of one task.
    pub fn of(info: &TaskInfo) -> Result<Self, TaskError> {
        let variants = info
            .variants()
            .map(|variant| VariantSummary {
                variant,
                dataset_ids: info.dataset_ids(variant).unwrap_or(&[]),
                resolution_mm: info.resolution_mm(variant).flatten(),
            })
            .collect();
        Ok(Self {
            name: info.name(),
            modality: info.modality(),
            variants,
            licensed: info.licensed(),
            num_classes: info.class_map()?.len(),
        })
    }
}

impl TaskRegistry {
    /// One summary per task, in `--list-tasks` order.
    pub fn summaries(&self) -> Result<Vec<TaskSummary>, TaskError> {
        self.tasks().map(|info| TaskSummary::of(&info)).collect()
    }
}

/// The `--list-tasks` table: name, modality, variants, models (dataset ids per variant),
/// resolution (mm per variant, `native` when not resampled), license, number of classes.
///
/// ```
/// use totalseg_core::tasks::{format_tasks_table, TaskRegistry};
///
/// let table = format_tasks_table(&TaskRegistry::new())?;
/// let total = table.lines().find(|l| l.starts_with("total ")).expect("total row");
/// assert!(total.contains("default/fast/fastest"));
/// assert!(total.contains("291-295/297/298"));
/// assert!(total.contains("1.5/3/6"));
/// # Ok::<(), totalseg_core::tasks::TaskError>(())
/// ```
pub fn format_tasks_table(registry: &TaskRegistry) -> Result<String, TaskError> {
    let rows: Vec<[String; 7]> = registry
        .summaries()?
        .iter()
        .map(|summary| {
            let variants: Vec<&str> = summary
                .variants
                .iter()
                .map(|v| v.variant.as_str())
                .collect();
            let models: Vec<String> = summary
                .variants
                .iter()
                .map(|v| format_ids(v.dataset_ids))
                .collect();
            let resolutions: Vec<String> = summary
                .variants
                .iter()
                .map(|v| {
                    v.resolution_mm
                        .map_or_else(|| "native".to_string(), format_spacing)
                })
                .collect();
            [
                summary.name.to_string(),
                summary.modality.to_string(),
                variants.join("/"),
                models.join("/"),
                resolutions.join("/"),
                if summary.licensed { "yes" } else { "no" }.to_string(),
                summary.num_classes.to_string(),
            ]
        })
        .collect();
    let header = [
        "TASK",
        "MODALITY",
        "VARIANTS",
        "MODELS",
        "RESOLUTION_MM",
        "LICENSE",
        "CLASSES",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let format_row = |cells: &[&str]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut out = String::new();
    let header_line = format_row(&header);
    let _ = writeln!(out, "{header_line}");
    let _ = writeln!(out, "{}", "-".repeat(header_line.len()));
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        let _ = writeln!(out, "{}", format_row(&cells));
    }
    let _ = writeln!(out);
    let _ = write!(
        out,
        "{} tasks. Licensed tasks need a (free for non-commercial) license: {LICENSE_URL}",
        rows.len()
    );
    Ok(out)
}

/// The `--list-classes TASK` listing, formatted exactly like TotalSegmentator's
/// `format_classes_table`: a title line, a blank line, then `label  name` per class.
///
/// ```
/// use totalseg_core::tasks::{format_classes_table, TaskRegistry};
///
/// let text = format_classes_table(&TaskRegistry::new(), "body")?;
/// assert_eq!(text, "Task 'body'  [CT, open license, 2 classes]\n\n   1  body_trunc\n   2  body_extremities");
/// # Ok::<(), totalseg_core::tasks::TaskError>(())
/// ```
pub fn format_classes_table(registry: &TaskRegistry, task: &str) -> Result<String, TaskError> {
    let info = registry.info(task)?;
    let classes = info.class_map()?;
    let license = if info.licensed() {
        "license required"
    } else {
        "open license"
    };
    let mut out = format!(
        "Task '{}'  [{}, {license}, {} classes]\n",
        info.name(),
        info.modality(),
        classes.len()
    );
    for (label, name) in classes.iter() {
        let _ = write!(out, "\n{label:>4}  {name}");
    }
    Ok(out)
}

/// Dataset ids with runs of consecutive ids collapsed (`291-295`, `778,779`).
fn format_ids(ids: &[u16]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut index = 0;
    while index < ids.len() {
        let start = index;
        while index + 1 < ids.len() && ids[index + 1] == ids[index] + 1 {
            index += 1;
        }
        parts.push(if index - start >= 2 {
            format!("{}-{}", ids[start], ids[index])
        } else {
            ids[start..=index]
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        });
        index += 1;
    }
    parts.join(",")
}

/// `1.5` for isotropic spacing, `0.75x0.75x1` otherwise (at most 3 decimals).
fn format_spacing(spacing: [f64; 3]) -> String {
    let number = |v: f64| {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    if spacing[0] == spacing[1] && spacing[1] == spacing[2] {
        number(spacing[0])
    } else {
        spacing.map(number).join("x")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_collapse_runs_of_three_or_more() {
        assert_eq!(format_ids(&[291, 292, 293, 294, 295]), "291-295");
        assert_eq!(format_ids(&[778, 779]), "778,779");
        assert_eq!(format_ids(&[8]), "8");
        assert_eq!(format_ids(&[1, 2, 3, 7]), "1-3,7");
    }

    #[test]
    fn spacing_is_compact() {
        assert_eq!(format_spacing([1.5; 3]), "1.5");
        assert_eq!(format_spacing([6.0; 3]), "6");
        assert_eq!(format_spacing([0.75, 0.75, 1.0]), "0.75x0.75x1");
        assert_eq!(
            format_spacing([0.47251562774181366, 0.47251562774181366, 0.8500002026557922]),
            "0.473x0.473x0.85"
        );
    }
}
