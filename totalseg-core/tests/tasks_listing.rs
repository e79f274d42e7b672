//! `--list-tasks` and `--list-classes` text.

use totalseg_core::tasks::{format_classes_table, format_tasks_table, TaskError, TaskRegistry};

#[test]
fn tasks_table_has_one_row_per_task() {
    let registry = TaskRegistry::new();
    let table = format_tasks_table(&registry).expect("table");
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TASK"));
    for column in [
        "MODALITY",
        "VARIANTS",
        "MODELS",
        "RESOLUTION_MM",
        "LICENSE",
        "CLASSES",
    ] {
        assert!(lines[0].contains(column), "{column}");
    }
    assert!(lines[1].chars().all(|c| c == '-'));
    let rows = &lines[2..2 + registry.task_names().count()];
    for (row, name) in rows.iter().zip(registry.task_names()) {
        assert_eq!(row.split_whitespace().next(), Some(name));
    }
    assert_eq!(
        lines.last().copied(),
        Some("52 tasks. Licensed tasks need a (free for non-commercial) license: https://backend.totalsegmentator.com/license-academic/")
    );
    let cells = |name: &str| -> Vec<String> {
        let row = rows
            .iter()
            .find(|r| r.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name}"));
        row.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(
        cells("total"),
        [
            "total",
            "CT",
            "default/fast/fastest",
            "291-295/297/298",
            "1.5/3/6",
            "no",
            "117"
        ]
    );
    assert_eq!(
        cells("total_mr"),
        [
            "total_mr",
            "MR",
            "default/fast/fastest",
            "850,851/852/853",
            "1.5/3/6",
            "no",
            "50"
        ]
    );
    assert_eq!(
        cells("body"),
        ["body", "CT", "default/fast", "299/300", "1.5/6", "no", "2"]
    );
    assert_eq!(cells("cerebral_bleed")[4], "native");
    assert_eq!(cells("lung_vessels")[4], "0.703x0.703x1");
    assert_eq!(cells("heartchambers_highres")[5], "yes");
}

#[test]
fn summaries_match_the_registry() {
    let registry = TaskRegistry::new();
    let summaries = registry.summaries().expect("summaries");
    assert_eq!(summaries.len(), 52);
    let total = &summaries[0];
    assert_eq!(total.name, "total");
    assert_eq!(total.num_classes, 117);
    assert_eq!(total.variants.len(), 3);
    assert_eq!(total.variants[1].dataset_ids, &[297]);
    assert_eq!(total.variants[2].resolution_mm, Some([6.0; 3]));
}

#[test]
fn classes_table_matches_the_package_format() {
    let registry = TaskRegistry::new();
    let text = format_classes_table(&registry, "total").expect("total");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Task 'total'  [CT, open license, 117 classes]");
    assert_eq!(lines[1], "");
    assert_eq!(lines[2], "   1  spleen");
    assert_eq!(lines[6], "   5  liver");
    assert_eq!(lines[118], " 117  costal_cartilages");
    assert_eq!(lines.len(), 119);
    assert!(!text.ends_with('\n'));

    let licensed = format_classes_table(&registry, "heartchambers_highres").expect("licensed");
    assert!(licensed.starts_with(
        "Task 'heartchambers_highres'  [CT, license required, 7 classes]\n\n   1  heart_myocardium"
    ));

    let mr = format_classes_table(&registry, "total_mr").expect("mr");
    assert!(mr.starts_with("Task 'total_mr'  [MR, open license, 50 classes]"));
}

#[test]
fn classes_table_of_unknown_task_is_an_error() {
    let err = format_classes_table(&TaskRegistry::new(), "totall").unwrap_err();
    assert!(matches!(err, TaskError::UnknownTask(_)));
}
