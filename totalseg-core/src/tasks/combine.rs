//! The class groups of `totalseg_combine_masks -m` (TotalSegmentator's `libs.combine_masks`).

use super::data::class_maps::PART_MAPS;

/// The group names `-m` accepts, in the official order.
pub const COMBINE_MASK_GROUPS: [&str; 9] = [
    "lung",
    "lung_left",
    "lung_right",
    "vertebrae",
    "ribs",
    "vertebrae_ribs",
    "heart",
    "pelvis",
    "body",
];

/// The classes a group combines, in the official order; `None` for an unknown group.
/// "heart" is accepted by the official parser but has no class list there (it then treats
/// the string as a list of one-letter class names and fails): it is `None` here too.
///
/// ```
/// use totalseg_core::tasks::combine_mask_classes;
/// assert_eq!(combine_mask_classes("lung_left").unwrap(),
///            ["lung_upper_lobe_left", "lung_lower_lobe_left"]);
/// assert_eq!(combine_mask_classes("vertebrae").unwrap().len(), 26);
/// assert_eq!(combine_mask_classes("ribs").unwrap()[12], "rib_right_1");
/// ```
pub fn combine_mask_classes(group: &str) -> Option<Vec<String>> {
    let ribs = || {
        (1..=12)
            .map(|i| format!("rib_left_{i}"))
            .chain((1..=12).map(|i| format!("rib_right_{i}")))
            .collect::<Vec<_>>()
    };
    let vertebrae = || -> Vec<String> {
        PART_MAPS
            .iter()
            .find(|p| p.task == "total" && p.part_name == "class_map_part_vertebrae")
            .map(|p| p.labels.iter().map(|(_, n)| n.to_string()).collect())
            .unwrap_or_default()
    };
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
    Some(match group {
        "ribs" => ribs(),
        "vertebrae" => vertebrae(),
        "vertebrae_ribs" => vertebrae().into_iter().chain(ribs()).collect(),
        "lung" => names(&[
            "lung_upper_lobe_left",
            "lung_lower_lobe_left",
            "lung_upper_lobe_right",
            "lung_middle_lobe_right",
            "lung_lower_lobe_right",
        ]),
        "lung_left" => names(&["lung_upper_lobe_left", "lung_lower_lobe_left"]),
        "lung_right" => names(&[
            "lung_upper_lobe_right",
            "lung_middle_lobe_right",
            "lung_lower_lobe_right",
        ]),
        "pelvis" => names(&["femur_left", "femur_right", "hip_left", "hip_right"]),
        "body" => names(&["body_trunc", "body_extremities"]),
        _ => return None,
    })
}
