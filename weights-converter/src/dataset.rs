//! nnU-Net `dataset.json`: channel and label counts, with nnU-Net's `LabelManager` rules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::ConvertError;
use crate::json_file::{parse_object, read_text};

/// A parsed `dataset.json`, with its original text kept for embedding verbatim.
#[derive(Debug, Clone)]
pub struct DatasetJson {
    path: PathBuf,
    text: String,
    root: Map<String, Value>,
}

/// `labels` and `channel_names` as written (key order kept).
#[derive(serde::Deserialize)]
struct RawParts<'a> {
    #[serde(borrow)]
    labels: Option<&'a RawValue>,
    #[serde(borrow)]
    channel_names: Option<&'a RawValue>,
    #[serde(borrow)]
    modality: Option<&'a RawValue>,
}

impl DatasetJson {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, ConvertError> {
        Self::from_text(path, read_text(path)?)
    }

    /// Parses dataset.json text; `path` is used in error messages.
    pub fn from_text(path: &Path, text: String) -> Result<Self, ConvertError> {
        let root = parse_object(path, &text, || ConvertError::DatasetJson {
            path: path.to_path_buf(),
            reason: "dataset.json is not a JSON object".into(),
        })?;
        let dataset = DatasetJson {
            path: path.to_path_buf(),
            text,
            root,
        };
        dataset.label_values()?;
        dataset.num_image_channels()?;
        Ok(dataset)
    }

    /// The file's text, unchanged.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn error(&self, reason: impl Into<String>) -> ConvertError {
        ConvertError::DatasetJson {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn channels(&self) -> Option<(&'static str, &Map<String, Value>)> {
        // Older dataset.json files say `modality`; nnU-Net prefers it when present.
        if let Some(Value::Object(m)) = self.root.get("modality") {
            return Some(("modality", m));
        }
        match self.root.get("channel_names") {
            Some(Value::Object(m)) => Some(("channel_names", m)),
            _ => None,
        }
    }

    /// Number of image channels (`modality` or `channel_names` entries).
    pub fn num_image_channels(&self) -> Result<usize, ConvertError> {
        match self.channels() {
            Some((_, m)) if !m.is_empty() => Ok(m.len()),
            Some((key, _)) => Err(self.error(format!("`{key}` is empty"))),
            None => Err(self.error("no `channel_names` (or `modality`) object")),
        }
    }

    /// `labels` values per name (ints or lists of ints for regions), without `ignore`.
    fn label_values(&self) -> Result<Vec<(String, Vec<i64>, bool)>, ConvertError> {
        let labels = match self.root.get("labels") {
            Some(Value::Object(m)) => m,
            _ => return Err(self.error("no `labels` object")),
        };
        if !labels.contains_key("background") {
            return Err(self.error("`labels` has no `background` entry (it must be label 0)"));
        }
        let int = |v: &Value| {
            v.as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
        };
        let mut out = Vec::with_capacity(labels.len());
        for (name, value) in labels {
            if name == "ignore" {
                continue;
            }
            let (values, is_list) = match value {
                Value::Array(items) => (items.iter().map(int).collect::<Option<Vec<_>>>(), true),
                other => (int(other).map(|i| vec![i]), false),
            };
            let values = values.ok_or_else(|| {
                self.error(format!("label `{name}` is not an int or a list of ints"))
            })?;
            out.push((name.clone(), values, is_list));
        }
        Ok(out)
    }

    /// Output channels of the network: the number of distinct labels (background included),
    /// or, for region-based training, the number of non-background regions.
    pub fn num_segmentation_heads(&self) -> Result<usize, ConvertError> {
        let labels = self.label_values()?;
        let has_regions = labels.iter().any(|(_, v, is_list)| *is_list && v.len() > 1);
        if has_regions {
            let regions = labels
                .iter()
                .filter(|(_, v, _)| {
                    let distinct: BTreeSet<_> = v.iter().collect();
                    !(distinct.len() == 1 && distinct.contains(&0))
                })
                .count();
            return Ok(regions);
        }
        Ok(self.all_labels()?.len())
    }

    /// Distinct label values, `ignore` excluded.
    fn all_labels(&self) -> Result<BTreeSet<i64>, ConvertError> {
        Ok(self
            .label_values()?
            .into_iter()
            .flat_map(|(_, v, _)| v)
            .collect())
    }

    /// Labels other than 0 (the extra inputs of a cascade stage).
    pub fn num_foreground_labels(&self) -> Result<usize, ConvertError> {
        Ok(self.all_labels()?.iter().filter(|&&l| l != 0).count())
    }

    /// `labels` and the channel names, exactly as written.
    pub fn raw_labels_and_channels(&self) -> Result<(Box<RawValue>, Box<RawValue>), ConvertError> {
        let parts: RawParts =
            serde_json::from_str(&self.text).map_err(|source| ConvertError::Json {
                path: self.path.clone(),
                source,
            })?;
        let labels = parts.labels.ok_or_else(|| self.error("no `labels`"))?;
        let channels = parts
            .modality
            .or(parts.channel_names)
            .ok_or_else(|| self.error("no `channel_names` (or `modality`)"))?;
        Ok((labels.to_owned(), channels.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(text: &str) -> Result<DatasetJson, ConvertError> {
        DatasetJson::from_text(Path::new("dataset.json"), text.into())
    }

    #[test]
    fn counts_labels_channels_and_keeps_order() {
        let d = dataset(
            r#"{"channel_names": {"0": "CT"}, "labels": {"background": 0, "spleen": 1, "kidney": 2, "ignore": 3}}"#,
        )
        .unwrap();
        assert_eq!(d.num_image_channels().unwrap(), 1);
        assert_eq!(d.num_segmentation_heads().unwrap(), 3);
        assert_eq!(d.num_foreground_labels().unwrap(), 2);
        let (labels, channels) = d.raw_labels_and_channels().unwrap();
        assert_eq!(
            labels.get(),
            r#"{"background": 0, "spleen": 1, "kidney": 2, "ignore": 3}"#
        );
        assert_eq!(channels.get(), r#"{"0": "CT"}"#);
    }

    #[test]
    fn regions_count_non_background_regions() {
        let d = dataset(
            r#"{"modality": {"0": "MR", "1": "T2"}, "labels": {"background": 0, "whole": [1, 2, 3], "core": [2, 3], "enh": 3},
                "regions_class_order": [1, 2, 3]}"#,
        )
        .unwrap();
        assert_eq!(d.num_image_channels().unwrap(), 2);
        assert_eq!(d.num_segmentation_heads().unwrap(), 3);
    }

    #[test]
    fn missing_pieces_are_errors() {
        assert!(dataset(r#"{"channel_names": {"0": "CT"}, "labels": {"spleen": 1}}"#).is_err());
        assert!(dataset(r#"{"labels": {"background": 0}}"#).is_err());
        assert!(dataset(
            r#"{"channel_names": {"0": "CT"}, "labels": {"background": 0, "x": "a"}}"#
        )
        .is_err());
        assert!(dataset("[1]").is_err());
    }
}
