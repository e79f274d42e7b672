//! Reading the JSON files of a model folder (plans.json, dataset.json) with errors naming them.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::ConvertError;

/// The text of `path`.
pub(crate) fn read_text(path: &Path) -> Result<String, ConvertError> {
    std::fs::read_to_string(path).map_err(|source| ConvertError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `text` parsed as a JSON object; `not_object` is the error when it is valid JSON of
/// another kind.
pub(crate) fn parse_object(
    path: &Path,
    text: &str,
    not_object: impl FnOnce() -> ConvertError,
) -> Result<Map<String, Value>, ConvertError> {
    let value: Value = serde_json::from_str(text).map_err(|source| ConvertError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(not_object()),
    }
}
