//! The licence key of licensed tasks, stored as the official tool stores it: the key
//! `license_number` in `<home>/config.json` (`totalseg_set_license` / `set_license_number`),
//! format checked as `totalseg_set_license` does (18 characters, starting `aca_`).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::{io_error, DownloadError, WeightsError};
use super::http::HttpOptions;
use super::source::join_url;

/// The official licence server (`download_weights`, `is_valid_license_number`).
pub const DEFAULT_LICENCE_SERVER_URL: &str = "https://backend.totalsegmentator.com:443/";
/// Environment variable replacing [`DEFAULT_LICENCE_SERVER_URL`] (tests, proxies).
pub const ENV_LICENCE_SERVER_URL: &str = "TOTALSEG_LICENSE_SERVER_URL";
/// The official tool version we reproduce, sent as `version` to the licence server as the
/// official tool sends its own version.
pub const OFFICIAL_TOOL_VERSION: &str = "2.18.0";
/// The `config.json` key of the licence.
pub const LICENCE_CONFIG_KEY: &str = "license_number";

/// Checks the key format as `totalseg_set_license` does.
///
/// ```
/// use totalseg_io::weights::validate_licence_key;
/// assert!(validate_licence_key("aca_ABCDEFGHIJKLMN").is_ok());
/// assert!(validate_licence_key("aca_short").is_err());
/// assert!(validate_licence_key("xyz_ABCDEFGHIJKLMN").is_err());
/// ```
pub fn validate_licence_key(key: &str) -> Result<(), WeightsError> {
    let reason = if !key.starts_with("aca_") {
        "it must start with `aca_`"
    } else if key.chars().count() != 18 {
        "it must have exactly 18 characters"
    } else {
        return Ok(());
    };
    Err(WeightsError::LicenceFormat {
        key: key.to_string(),
        reason,
    })
}

/// `<home>/config.json` of the official tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotalsegConfig {
    path: PathBuf,
}

impl TotalsegConfig {
    /// The config file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// `<home>/config.json`.
    pub fn in_home(home: &Path) -> Self {
        Self::new(home.join("config.json"))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The JSON object, or `None` when the file does not exist.
    pub fn read(&self) -> Result<Option<Map<String, Value>>, WeightsError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("reading", &self.path, e)),
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => Err(self.invalid("the top level is not a JSON object".into())),
            Err(e) => Err(self.invalid(e.to_string())),
        }
    }

    /// The stored licence key, if any.
    pub fn licence_key(&self) -> Result<Option<String>, WeightsError> {
        let Some(map) = self.read()? else {
            return Ok(None);
        };
        match map.get(LICENCE_CONFIG_KEY) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => {
                Err(self.invalid(format!("`{LICENCE_CONFIG_KEY}` is not a string: {other}")))
            }
        }
    }

    /// Stores `key` (format-checked) as `license_number`, creating the file the way the
    /// official `setup_totalseg` does when it is missing (`totalseg_id`, `send_usage_stats`,
    /// `prediction_counter`) and keeping all other keys. The file is replaced atomically.
    pub fn set_licence_key(&self, key: &str) -> Result<(), WeightsError> {
        validate_licence_key(key)?;
        let mut map = match self.read()? {
            Some(map) => map,
            None => default_config(),
        };
        if map.get(LICENCE_CONFIG_KEY).and_then(Value::as_str) == Some(key) && self.path.exists() {
            return Ok(());
        }
        map.insert(LICENCE_CONFIG_KEY.into(), Value::String(key.into()));
        self.write(&map)
    }

    fn write(&self, map: &Map<String, Value>) -> Result<(), WeightsError> {
        let parent = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| io_error("creating the folder", parent, e))?;
        // json.dump(config, f, indent=4), as the official tool writes it.
        let mut text = Vec::new();
        let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut text, formatter);
        serde::Serialize::serialize(map, &mut ser).map_err(|e| self.invalid(e.to_string()))?;
        let tmp = self
            .path
            .with_extension(format!("json.tmp-{}", std::process::id()));
        std::fs::write(&tmp, &text).map_err(|e| io_error("writing", &tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io_error("replacing", &self.path, e)
        })
    }

    fn invalid(&self, reason: String) -> WeightsError {
        WeightsError::ConfigFile {
            path: self.path.clone(),
            reason,
        }
    }
}

/// `setup_totalseg`'s new config: a random `totalseg_` + 8 upper-case letters/digits id.
fn default_config() -> Map<String, Value> {
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        hasher.write_u128(t.as_nanos());
    }
    let mut bits = hasher.finish();
    let id: String = (0..8)
        .map(|_| {
            let c = ALPHABET[(bits % ALPHABET.len() as u64) as usize] as char;
            bits /= ALPHABET.len() as u64;
            c
        })
        .collect();
    let mut map = Map::new();
    map.insert(
        "totalseg_id".into(),
        Value::String(format!("totalseg_{id}")),
    );
    map.insert("send_usage_stats".into(), Value::Bool(true));
    map.insert("prediction_counter".into(), Value::from(0));
    map
}

/// Asks the licence server whether `key` is valid (`POST <server>/is_valid_license_number`,
/// as the official `is_valid_license` does). `Ok(false)` when the server says it is not.
pub fn check_licence_online(
    server_url: &str,
    key: &str,
    http: &HttpOptions,
) -> Result<bool, WeightsError> {
    let url = join_url(server_url, &["is_valid_license_number"]);
    let fail = |error: DownloadError| WeightsError::LicenceServer {
        url: url.clone(),
        error,
    };
    let agent = http.agent_for(&url).map_err(fail)?;
    let body = serde_json::json!({ LICENCE_CONFIG_KEY: key }).to_string();
    let mut resp = agent
        .post(&url)
        .header("Content-Type", "application/json")
        .send(body.as_bytes())
        .map_err(|e| {
            fail(DownloadError::Connection {
                detail: e.to_string(),
                attempts: 1,
            })
        })?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(fail(DownloadError::HttpStatus {
            status,
            attempts: 1,
        }));
    }
    let text = resp.body_mut().read_to_string().map_err(|e| {
        fail(DownloadError::Connection {
            detail: e.to_string(),
            attempts: 1,
        })
    })?;
    let answer: Value = serde_json::from_str(&text)
        .map_err(|e| fail(DownloadError::Inconsistent(format!("not JSON: {e}"))))?;
    Ok(answer.get("status").and_then(Value::as_str) == Some("valid_license"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_format() {
        assert!(validate_licence_key("aca_1234567890ABCD").is_ok());
        let e = validate_licence_key("aca_1234567890ABC").unwrap_err();
        assert!(e.to_string().contains("18 characters"), "{e}");
        let e = validate_licence_key("ACA_1234567890ABCD").unwrap_err();
        assert!(e.to_string().contains("aca_"), "{e}");
    }

    #[test]
    fn set_creates_config_like_setup_totalseg() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TotalsegConfig::in_home(&dir.path().join("home"));
        assert_eq!(cfg.licence_key().unwrap(), None);
        cfg.set_licence_key("aca_1234567890ABCD").unwrap();
        let map = cfg.read().unwrap().unwrap();
        assert_eq!(map["license_number"], "aca_1234567890ABCD");
        assert_eq!(map["send_usage_stats"], true);
        assert_eq!(map["prediction_counter"], 0);
        let id = map["totalseg_id"].as_str().unwrap();
        assert!(id.starts_with("totalseg_") && id.len() == 17, "{id}");
        assert!(id[9..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        let text = std::fs::read_to_string(cfg.path()).unwrap();
        assert!(
            text.contains("\n    \"license_number\": \"aca_1234567890ABCD\""),
            "{text}"
        );
    }

    #[test]
    fn set_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TotalsegConfig::in_home(dir.path());
        std::fs::write(
            cfg.path(),
            r#"{"totalseg_id": "totalseg_ABC", "prediction_counter": 41, "license_number": "aca_OLDOLDOLDOLDOL"}"#,
        )
        .unwrap();
        assert_eq!(
            cfg.licence_key().unwrap().as_deref(),
            Some("aca_OLDOLDOLDOLDOL")
        );
        cfg.set_licence_key("aca_NEWNEWNEWNEWNE").unwrap();
        let map = cfg.read().unwrap().unwrap();
        assert_eq!(map["prediction_counter"], 41);
        assert_eq!(map["totalseg_id"], "totalseg_ABC");
        assert_eq!(map["license_number"], "aca_NEWNEWNEWNEWNE");
        assert!(cfg.set_licence_key("bad").is_err());
        assert_eq!(
            cfg.licence_key().unwrap().as_deref(),
            Some("aca_NEWNEWNEWNEWNE")
        );
    }

    #[test]
    fn broken_config_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TotalsegConfig::in_home(dir.path());
        std::fs::write(cfg.path(), "{not json").unwrap();
        let e = cfg.licence_key().unwrap_err();
        assert!(e.to_string().contains("config.json"), "{e}");
    }
}
