//! The structure groups `--preview` draws for each task (`roi_groups` of `preview.py`).

use super::data::preview_groups::PREVIEW_GROUPS;
use super::ClassMap;

/// The groups of class names `preview.py` draws for `task` (one image column each), `None`
/// for a task it has no layout for (the official tool then fails with a KeyError).
///
/// ```
/// let groups = totalseg_core::tasks::preview_groups("total").expect("total has a layout");
/// assert_eq!(groups.len(), 8);
/// assert_eq!(groups[0][0], "humerus_left");
/// assert!(totalseg_core::tasks::preview_groups("no_such_task").is_none());
/// ```
pub fn preview_groups(task: &str) -> Option<&'static [&'static [&'static str]]> {
    PREVIEW_GROUPS
        .iter()
        .find(|(name, _)| *name == task)
        .map(|(_, groups)| *groups)
}

/// [`preview_groups`] as labels of `class_map`; `Err` names the first class the map lacks
/// (where the official tool fails with a KeyError).
pub fn preview_label_groups(
    task: &str,
    class_map: &ClassMap,
) -> Option<Result<Vec<Vec<u16>>, &'static str>> {
    let groups = preview_groups(task)?;
    Some(
        groups
            .iter()
            .map(|group| {
                group
                    .iter()
                    .map(|&name| class_map.label(name).ok_or(name))
                    .collect()
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_names_classes_of_its_task() {
        let mut checked = 0;
        for (task, _) in PREVIEW_GROUPS {
            // total_v3 and vertebrae_pp_refined are output names without a class map here.
            let Some(map) = ClassMap::get(task) else {
                continue;
            };
            let groups = preview_label_groups(task, &map).expect("listed");
            assert!(groups.is_ok(), "{task}: {:?} is not a class", groups.err());
            checked += 1;
        }
        assert!(checked > 40, "{checked}");
    }
}
