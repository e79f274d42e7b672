//! `totalseg info`: TotalSegmentator's `totalseg_info`, the task and class registry as text
//! or JSON, without weights or a GPU. Same output as the official command, except that the
//! developer task `test` (not runnable here, see `TaskRegistry::skipped_tasks`) is not listed.

use std::fmt::Write as _;

use totalseg_core::statistics::python_json_string as json_string;
use totalseg_core::tasks::{format_classes_table, TaskError, TaskRegistry, LICENSE_URL};

use super::args::InfoArgs;
use crate::error::SegmentError;

/// What `totalseg info` prints for `args`.
pub(super) fn info_text(args: &InfoArgs) -> Result<String, SegmentError> {
    let registry = TaskRegistry::new();
    if args.classes {
        let task = args.task.as_deref().ok_or_else(|| {
            SegmentError::Model(
                "--classes requires --task/-ta (e.g. totalseg info --classes -ta total)".into(),
            )
        })?;
        return Ok(if args.as_json {
            classes_json(&registry, task, "")?
        } else {
            format_classes_table(&registry, task)?
        });
    }
    if args.list_tasks {
        return Ok(if args.as_json {
            tasks_json(&registry)?
        } else {
            tasks_table(&registry)?
        });
    }
    Ok(if args.as_json {
        registry_json(&registry)?
    } else {
        format!(
            "{}\n\nUse '--classes -ta <task>' to list a task's classes, or '--json' for \
             machine-readable output.",
            tasks_table(&registry)?
        )
    })
}

/// registry.py `format_tasks_table`.
fn tasks_table(registry: &TaskRegistry) -> Result<String, TaskError> {
    let name_width = registry
        .task_names()
        .map(str::len)
        .max()
        .unwrap_or(0)
        .max(4);
    let header = format!("{:<name_width$}  MODALITY  LICENSE  CLASSES", "TASK");
    let mut out = format!("{header}\n{}\n", "-".repeat(header.len()));
    let mut count = 0;
    for info in registry.tasks() {
        let licence = if info.licensed() { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "{:<name_width$}  {:<8}  {licence:<7}  {}",
            info.name(),
            info.modality().as_str(),
            info.class_map()?.len()
        );
        count += 1;
    }
    let _ = write!(
        out,
        "\n{count} tasks. Licensed tasks need a (free for non-commercial) license: {LICENSE_URL}"
    );
    Ok(out)
}

/// `json.dumps(list_tasks(), indent=2)`.
fn tasks_json(registry: &TaskRegistry) -> Result<String, TaskError> {
    let items = registry
        .tasks()
        .map(|info| {
            Ok(format!(
                "  {{\n    \"name\": {},\n    \"modality\": \"{}\",\n    \"license_required\": {},\n    \"num_classes\": {}\n  }}",
                json_string(info.name()),
                info.modality().as_str(),
                info.licensed(),
                info.class_map()?.len()
            ))
        })
        .collect::<Result<Vec<_>, TaskError>>()?;
    Ok(format!("[\n{}\n]", items.join(",\n")))
}

/// `json.dumps({str(idx): name ...}, indent=2)`, every line after the first indented by
/// `indent` (to nest it).
fn classes_json(registry: &TaskRegistry, task: &str, indent: &str) -> Result<String, TaskError> {
    let classes = registry.info(task)?.class_map()?;
    if classes.is_empty() {
        return Ok("{}".into());
    }
    let items: Vec<String> = classes
        .iter()
        .map(|(label, name)| format!("{indent}  \"{label}\": {}", json_string(name)))
        .collect();
    Ok(format!("{{\n{}\n{indent}}}", items.join(",\n")))
}

/// `json.dumps(task_registry(), indent=2)`.
fn registry_json(registry: &TaskRegistry) -> Result<String, TaskError> {
    let tasks = registry
        .tasks()
        .map(|info| {
            Ok(format!(
                "    {}: {{\n      \"modality\": \"{}\",\n      \"license_required\": {},\n      \"classes\": {}\n    }}",
                json_string(info.name()),
                info.modality().as_str(),
                info.licensed(),
                classes_json(registry, info.name(), "      ")?
            ))
        })
        .collect::<Result<Vec<_>, TaskError>>()?;
    Ok(format!(
        "{{\n  \"totalsegmentator_version\": {},\n  \"tasks\": {{\n{}\n  }}\n}}",
        json_string(registry.version()),
        tasks.join(",\n")
    ))
}
