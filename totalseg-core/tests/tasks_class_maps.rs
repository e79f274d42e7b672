//! Class maps: counts, known labels, multi-model part maps against the task maps.

use std::collections::BTreeSet;

use totalseg_core::tasks::{ClassMap, TaskRegistry, Variant};

fn class_map(key: &str) -> ClassMap {
    ClassMap::get(key).unwrap_or_else(|| panic!("no class map '{key}'"))
}

#[test]
fn total_has_117_classes_numbered_1_to_117() {
    let total = class_map("total");
    assert_eq!(total.len(), 117);
    assert_eq!(
        total.labels().collect::<Vec<_>>(),
        (1..=117).collect::<Vec<u16>>()
    );
    let names: BTreeSet<_> = total.names().collect();
    assert_eq!(names.len(), 117, "class names are unique");
}

#[test]
fn total_known_labels() {
    let total = class_map("total");
    for (label, name) in [
        (1, "spleen"),
        (2, "kidney_right"),
        (5, "liver"),
        (26, "vertebrae_S1"),
        (51, "heart"),
        (52, "aorta"),
        (90, "brain"),
        (117, "costal_cartilages"),
    ] {
        assert_eq!(total.name(label), Some(name), "label {label}");
        assert_eq!(total.label(name), Some(label), "name {name}");
    }
    assert_eq!(total.name(0), None);
    assert_eq!(total.name(118), None);
    assert_eq!(total.label("Liver"), None, "lookups are case-sensitive");
}

#[test]
fn total_v3_replaces_s1_with_l6() {
    let v3 = class_map("total_v3");
    assert_eq!(v3.len(), 117);
    assert_eq!(v3.name(26), Some("vertebrae_L6"));
    assert!(!v3.contains("vertebrae_S1"));
}

#[test]
fn total_mr_has_50_classes() {
    let mr = class_map("total_mr");
    assert_eq!(mr.len(), 50);
    assert_eq!(mr.name(1), Some("spleen"));
    assert_eq!(mr.label("liver"), Some(5));
}

fn assert_parts_cover_task(task: &str, expected: &[(u16, usize)]) {
    let resolved = TaskRegistry::new()
        .task(task, Variant::Default)
        .expect("task resolves");
    let found: Vec<(u16, usize)> = resolved
        .models
        .iter()
        .map(|m| (m.dataset_id, m.labels.len()))
        .collect();
    assert_eq!(found, expected, "{task}: part sizes");
    let mut union = BTreeSet::new();
    for model in &resolved.models {
        // Each part is numbered 1..n in its own output.
        assert_eq!(
            model.labels.labels().collect::<Vec<_>>(),
            (1..=model.labels.len() as u16).collect::<Vec<_>>()
        );
        for name in model.labels.names() {
            assert!(union.insert(name), "{task}: '{name}' in two parts");
        }
    }
    let task_names: BTreeSet<_> = resolved.class_map.names().collect();
    assert_eq!(
        union, task_names,
        "{task}: union of parts equals the task map"
    );
}

#[test]
fn total_parts_are_24_26_18_23_26_and_cover_the_117_classes() {
    assert_parts_cover_task(
        "total",
        &[(291, 24), (292, 26), (293, 18), (294, 23), (295, 26)],
    );
}

#[test]
fn total_v3_parts_cover_its_classes() {
    assert_parts_cover_task(
        "total_v3",
        &[(831, 24), (832, 26), (833, 18), (834, 23), (835, 26)],
    );
}

#[test]
fn total_mr_parts_cover_its_classes() {
    assert_parts_cover_task("total_mr", &[(850, 29), (851, 21)]);
}

#[test]
fn headneck_muscles_parts_cover_its_classes() {
    assert_parts_cover_task("headneck_muscles", &[(778, 11), (779, 12)]);
}

#[test]
fn part_names_and_keys() {
    let total = TaskRegistry::new()
        .task("total", Variant::Default)
        .expect("total");
    let keys: Vec<_> = total.models.iter().map(|m| m.labels.key()).collect();
    assert_eq!(
        keys,
        [
            "class_map_part_organs",
            "class_map_part_vertebrae",
            "class_map_part_cardiac",
            "class_map_part_muscles",
            "class_map_part_ribs"
        ]
    );
    assert_eq!(total.models[0].labels.name(1), Some("spleen"));
}

#[test]
fn output_label_lut_maps_part_labels_by_name() {
    let total = TaskRegistry::new()
        .task("total", Variant::Default)
        .expect("total");
    for model in &total.models {
        let lut = total.output_label_lut(model);
        assert_eq!(lut[0], 0, "background stays background");
        for (part_label, name) in model.labels.iter() {
            assert_eq!(
                total.class_map.name(lut[usize::from(part_label)]),
                Some(name)
            );
        }
    }
    // Muscles part: brain is label 90 of the merged output.
    let muscles = &total.models[3];
    let brain = muscles
        .labels
        .label("brain")
        .expect("brain in muscles part");
    assert_eq!(total.output_label_lut(muscles)[usize::from(brain)], 90);
}

#[test]
fn auxiliary_maps_are_dropped_from_output() {
    let registry = TaskRegistry::new();
    let cysts = registry
        .task("kidney_cysts", Variant::Default)
        .expect("kidney_cysts");
    let aux = cysts.models[0]
        .auxiliary_labels
        .expect("kidney_cysts has auxiliary labels");
    assert_eq!(aux.entries(), &[(3, "kidney_left"), (4, "kidney_right")]);
    assert_eq!(cysts.postprocessing.auxiliary_labels, Some(aux));
    assert_eq!(cysts.models[0].num_output_channels(), 5);
    let lut = cysts.output_label_lut(&cysts.models[0]);
    assert_eq!(lut, vec![0, 1, 2]);
    for task in ["appendicular_bones", "face_mr", "renal_arteries"] {
        let resolved = registry.task(task, Variant::Default).expect("task");
        assert!(resolved.postprocessing.auxiliary_labels.is_some(), "{task}");
    }
    let total = registry.task("total", Variant::Default).expect("total");
    assert_eq!(total.postprocessing.auxiliary_labels, None);
}

#[test]
fn every_task_has_a_non_empty_class_map_with_unique_names() {
    let registry = TaskRegistry::new();
    for info in registry.tasks() {
        let map = info.class_map().expect("class map");
        assert!(!map.is_empty(), "{}", info.name());
        let names: BTreeSet<_> = map.names().collect();
        assert_eq!(names.len(), map.len(), "{}: duplicate names", info.name());
        assert!(
            map.labels().all(|l| l > 0),
            "{}: label 0 is background",
            info.name()
        );
    }
}

#[test]
fn v1_order_map_exists() {
    let v1 = class_map("total_v1");
    assert_eq!(v1.name(1), Some("spleen"));
    assert!(ClassMap::keys().any(|k| k == "total_v1"));
    assert!(ClassMap::get("no_such_map").is_none());
}
