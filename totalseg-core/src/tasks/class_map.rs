//! `ClassMap`: label value -> class name, as in TotalSegmentator's `map_to_binary.py`.

use super::data::class_maps::CLASS_MAPS;

/// A label map (label value -> class name) in the package's order (ascending labels).
///
/// Cheap to copy: it points into the generated static tables.
///
/// ```
/// use totalseg_core::tasks::ClassMap;
///
/// let total = ClassMap::get("total").expect("total has a class map");
/// assert_eq!(total.len(), 117);
/// assert_eq!(total.name(5), Some("liver"));
/// assert_eq!(total.label("spleen"), Some(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassMap {
    key: &'static str,
    entries: &'static [(u16, &'static str)],
}

impl ClassMap {
    pub(crate) fn new(key: &'static str, entries: &'static [(u16, &'static str)]) -> Self {
        Self { key, entries }
    }

    /// The `class_map` entry of `map_to_binary.py` with this key: a task name, `total_v1`,
    /// `<task>_auxiliary`, ... `None` when there is none.
    pub fn get(key: &str) -> Option<ClassMap> {
        CLASS_MAPS
            .iter()
            .find(|record| record.key == key)
            .map(|record| ClassMap::new(record.key, record.labels))
    }

    /// Every `class_map` key of the package, in its order.
    pub fn keys() -> impl Iterator<Item = &'static str> {
        CLASS_MAPS.iter().map(|record| record.key)
    }

    /// Where this map comes from: a `class_map` key, or the part name for a model of a
    /// multi-model task (e.g. `class_map_part_organs`).
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// Number of classes (background not counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map has no classes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `(label, name)` pairs in ascending label order.
    pub fn entries(&self) -> &'static [(u16, &'static str)] {
        self.entries
    }

    /// `(label, name)` pairs in ascending label order.
    pub fn iter(&self) -> impl Iterator<Item = (u16, &'static str)> + 'static {
        self.entries.iter().copied()
    }

    /// Class names in label order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + 'static {
        self.entries.iter().map(|&(_, name)| name)
    }

    /// Label values in ascending order.
    pub fn labels(&self) -> impl Iterator<Item = u16> + 'static {
        self.entries.iter().map(|&(label, _)| label)
    }

    /// Name of a label, `None` for background or an unknown label.
    pub fn name(&self, label: u16) -> Option<&'static str> {
        self.entries
            .iter()
            .find(|&&(l, _)| l == label)
            .map(|&(_, name)| name)
    }

    /// Label of a class name (exact, case-sensitive), `None` when absent.
    pub fn label(&self, name: &str) -> Option<u16> {
        self.entries
            .iter()
            .find(|&&(_, n)| n == name)
            .map(|&(label, _)| label)
    }

    /// True when the map has a class of this name.
    pub fn contains(&self, name: &str) -> bool {
        self.label(name).is_some()
    }

    /// Largest label value (0 for an empty map).
    pub fn max_label(&self) -> u16 {
        self.labels().max().unwrap_or(0)
    }
}

impl IntoIterator for ClassMap {
    type Item = (u16, &'static str);
    type IntoIter = std::iter::Copied<std::slice::Iter<'static, (u16, &'static str)>>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().copied()
    }
}
