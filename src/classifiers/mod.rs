//! TotalSegmentator's XGBoost side commands: the imaging modality of an image
//! (`totalseg_get_modality`, [`modality`]) and the contrast phase of a CT
//! (`totalseg_get_phase`, [`phase`]).
//!
//! The classifiers are the ones TotalSegmentator ships in its `resources/` folder, embedded
//! in the binary unchanged (XGBoost UBJSON files and the pickled phase regressors); they
//! are evaluated by [`totalseg_core::xgboost`].

pub mod modality;
pub mod phase;

use std::path::{Path, PathBuf};

use serde_json::Value;
use totalseg_core::statistics::{
    python_float_repr, python_json_object, python_json_string, Statistics, StructureStatistics,
};
use totalseg_core::xgboost::{XgboostModel, XgboostModelError};
use totalseg_io::ubjson::{parse_ubjson, UbjsonError};

/// Why a classifier could not be loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum ClassifierError {
    /// The model file could not be read.
    #[error("classifier {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The model's bytes are not a UBJSON or JSON document.
    #[error("classifier {name}: {message}")]
    Format {
        /// The model (file name or embedded resource).
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The document is not a usable XGBoost model.
    #[error("classifier {name}: {source}")]
    Model {
        /// The model.
        name: String,
        /// What is wrong with it.
        source: XgboostModelError,
    },
    /// A feature the classifier needs is missing from the statistics.
    #[error("statistics {source_name}: {message}")]
    Statistics {
        /// Where the statistics came from.
        source_name: String,
        /// What is missing.
        message: String,
    },
}

/// Reads an XGBoost model document from JSON text or UBJSON bytes (what
/// `Booster.save_model` writes, whatever the file is called, as XGBoost guesses by content).
pub(crate) fn xgboost_document(bytes: &[u8], name: &str) -> Result<Value, ClassifierError> {
    let format_error = |message: String| ClassifierError::Format {
        name: name.to_string(),
        message,
    };
    if looks_like_json_text(bytes) {
        serde_json::from_slice(bytes).map_err(|e| format_error(format!("invalid JSON: {e}")))
    } else {
        parse_ubjson(bytes).map_err(|e: UbjsonError| format_error(e.to_string()))
    }
}

/// An XGBoost model from its document bytes.
pub(crate) fn xgboost_model(bytes: &[u8], name: &str) -> Result<XgboostModel, ClassifierError> {
    let doc = xgboost_document(bytes, name)?;
    model_from_document(&doc, name)
}

pub(crate) fn model_from_document(
    doc: &Value,
    name: &str,
) -> Result<XgboostModel, ClassifierError> {
    XgboostModel::from_json(doc).map_err(|source| ClassifierError::Model {
        name: name.to_string(),
        source,
    })
}

/// JSON text starts with `{` and then whitespace, a quote or `}`; a UBJSON object's `{` is
/// followed by a type marker (`i`, `U`, `L`, ...).
fn looks_like_json_text(bytes: &[u8]) -> bool {
    let mut rest = bytes.iter().skip_while(|b| b.is_ascii_whitespace());
    match rest.next() {
        Some(b'{') => matches!(
            rest.next(),
            Some(b'"' | b'}' | b' ' | b'\n' | b'\r' | b'\t')
        ),
        _ => false,
    }
}

/// The entry of `name` in `stats`, or an error naming where the statistics came from.
pub(crate) fn structure<'a>(
    stats: &'a Statistics,
    name: &str,
    source_name: &str,
) -> Result<&'a StructureStatistics, ClassifierError> {
    stats.get(name).ok_or_else(|| ClassifierError::Statistics {
        source_name: source_name.to_string(),
        message: format!("no structure {name:?}"),
    })
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, ClassifierError> {
    std::fs::read(path).map_err(|source| ClassifierError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// `pprint.pprint` of a flat dict of strings and floats: keys sorted, on one line when it
/// fits in 80 columns, else one entry per line.
pub(crate) fn pprint_dict(entries: &[(&str, PyValue)]) -> String {
    let mut sorted: Vec<&(&str, PyValue)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let items: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("'{k}': {}", v.repr()))
        .collect();
    let one_line = format!("{{{}}}", items.join(", "));
    if one_line.len() <= 80 {
        one_line
    } else {
        format!("{{{}}}", items.join(",\n "))
    }
}

/// `json.dumps(dict, indent=4)` of a flat dict of strings and floats.
pub(crate) fn json_dict(entries: &[(&str, PyValue)]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("    {}: {}", python_json_string(k), v.json()))
        .collect();
    python_json_object(&items, "")
}

/// A value of the result dicts the side commands print and write.
#[derive(Debug, Clone)]
pub(crate) enum PyValue {
    Str(String),
    Float(f64),
}

impl PyValue {
    fn repr(&self) -> String {
        match self {
            PyValue::Str(s) => format!("'{s}'"),
            PyValue::Float(x) => python_float_repr(*x),
        }
    }

    fn json(&self) -> String {
        match self {
            PyValue::Str(s) => python_json_string(s),
            PyValue::Float(x) => python_float_repr(*x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pprint_wraps_long_dicts_and_sorts_keys() {
        let short = [
            ("modality", PyValue::Str("ct".into())),
            ("probability", PyValue::Float(1.0)),
        ];
        assert_eq!(
            pprint_dict(&short),
            "{'modality': 'ct', 'probability': 1.0}"
        );
        let long = [
            ("pi_time", PyValue::Float(73.21)),
            ("phase", PyValue::Str("portal_venous".into())),
            ("probability", PyValue::Float(1.0)),
            ("pi_time_min", PyValue::Float(65.2)),
            ("pi_time_max", PyValue::Float(80.11)),
            ("stddev", PyValue::Float(5.1234)),
        ];
        assert_eq!(
            pprint_dict(&long),
            "{'phase': 'portal_venous',\n 'pi_time': 73.21,\n 'pi_time_max': 80.11,\n \
             'pi_time_min': 65.2,\n 'probability': 1.0,\n 'stddev': 5.1234}"
        );
        assert_eq!(
            json_dict(&short),
            "{\n    \"modality\": \"ct\",\n    \"probability\": 1.0\n}"
        );
    }

    #[test]
    fn json_text_and_ubjson_are_told_apart() {
        assert!(looks_like_json_text(b" {\"learner\": {}}"));
        assert!(looks_like_json_text(b"{}"));
        assert!(!looks_like_json_text(b"{L\0\0\0\0\0\0\0\x07learner{}}"));
        assert!(!looks_like_json_text(b""));
        assert!(matches!(
            xgboost_model(b"{\"learner\": 1", "m.json"),
            Err(ClassifierError::Format { .. })
        ));
        assert!(matches!(
            xgboost_model(b"{i\x01a}", "m.ubj"),
            Err(ClassifierError::Format { .. })
        ));
    }
}
