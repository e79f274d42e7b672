//! Where the store keeps things, resolved like the official tool (`config.py`
//! `get_totalseg_dir` / `get_weights_dir`) plus our converted-model folder.

use std::ffi::OsString;
use std::path::PathBuf;

/// Environment variable naming the home folder (official tool).
pub const ENV_HOME_DIR: &str = "TOTALSEG_HOME_DIR";
/// Environment variable naming the nnU-Net results folder holding the weights (official tool).
pub const ENV_WEIGHTS_PATH: &str = "TOTALSEG_WEIGHTS_PATH";
/// Environment variable naming the folder of converted models (ours; default `<home>/rs-models`).
pub const ENV_CONVERTED_DIR: &str = "TOTALSEG_RS_MODELS_DIR";

/// Explicit choices that beat the environment (e.g. the CLI's `--weights-dir`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirOverrides {
    /// Home folder (holds `config.json`); beats `TOTALSEG_HOME_DIR`.
    pub home: Option<PathBuf>,
    /// nnU-Net results folder (downloads land here); beats `TOTALSEG_WEIGHTS_PATH`.
    pub weights_dir: Option<PathBuf>,
    /// Converted-model folder; beats `TOTALSEG_RS_MODELS_DIR`.
    pub converted_dir: Option<PathBuf>,
}

/// The folders of one store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDirs {
    /// Home: `config.json` (licence key) lives here.
    pub home: PathBuf,
    /// nnU-Net results folders searched for `<DatasetNNN_name>/<model>/`, in order.
    /// The first one is where downloads are unpacked; the others (e.g. the default
    /// `<home>/nnunet/results` when `TOTALSEG_WEIGHTS_PATH` points elsewhere) are only read.
    pub nnunet_roots: Vec<PathBuf>,
    /// Converted models: `<converted>/<DatasetNNN_name>/<trainer>__<plans>__<cfg>/`
    /// `{model.safetensors, model.json}`; lock files in `<converted>/.locks/`.
    pub converted: PathBuf,
}

impl StoreDirs {
    /// Resolves the folders from the process environment and the given overrides.
    pub fn from_env(overrides: &DirOverrides) -> Self {
        Self::resolve(overrides, &|name| std::env::var_os(name))
    }

    /// Resolves the folders from an environment lookup (pure; for tests and embedding).
    ///
    /// * home: `overrides.home`, else `$TOTALSEG_HOME_DIR`, else `~/.totalsegmentator`
    ///   (`/tmp/.totalsegmentator` when the user's home is `/` or unknown, as the official tool
    ///   does inside containers);
    /// * nnU-Net results: `overrides.weights_dir`, else `$TOTALSEG_WEIGHTS_PATH`, else
    ///   `<home>/nnunet/results`; when an explicit folder is set, `<home>/nnunet/results` is
    ///   still searched (read-only) so an existing installation is reused;
    /// * converted: `overrides.converted_dir`, else `$TOTALSEG_RS_MODELS_DIR`, else
    ///   `<home>/rs-models`.
    pub fn resolve(overrides: &DirOverrides, env: &dyn Fn(&str) -> Option<OsString>) -> Self {
        let non_empty = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = overrides
            .home
            .clone()
            .or_else(|| non_empty(ENV_HOME_DIR))
            .unwrap_or_else(|| {
                let user_home = non_empty("HOME").or_else(|| non_empty("USERPROFILE"));
                match user_home {
                    Some(h) if h != std::path::Path::new("/") => h,
                    _ => PathBuf::from("/tmp"),
                }
                .join(".totalsegmentator")
            });
        let default_results = home.join("nnunet").join("results");
        let mut nnunet_roots = Vec::new();
        match overrides
            .weights_dir
            .clone()
            .or_else(|| non_empty(ENV_WEIGHTS_PATH))
        {
            Some(explicit) => {
                let same = explicit == default_results;
                nnunet_roots.push(explicit);
                if !same {
                    nnunet_roots.push(default_results);
                }
            }
            None => nnunet_roots.push(default_results),
        }
        let converted = overrides
            .converted_dir
            .clone()
            .or_else(|| non_empty(ENV_CONVERTED_DIR))
            .unwrap_or_else(|| home.join("rs-models"));
        Self {
            home,
            nnunet_roots,
            converted,
        }
    }

    /// All folders under one root (tests, embedding): `<root>/nnunet/results`,
    /// `<root>/rs-models`, `config.json` in `<root>`.
    pub fn under(root: impl Into<PathBuf>) -> Self {
        let home = root.into();
        Self {
            nnunet_roots: vec![home.join("nnunet").join("results")],
            converted: home.join("rs-models"),
            home,
        }
    }

    /// The folder downloads are unpacked into (the first nnU-Net root).
    pub fn download_root(&self) -> &std::path::Path {
        // `resolve` and `under` always push one root; an empty list is a caller's construction.
        self.nnunet_roots
            .first()
            .map(PathBuf::as_path)
            .unwrap_or(self.home.as_path())
    }

    /// `<home>/config.json`, where the licence key is stored.
    pub fn config_file(&self) -> PathBuf {
        self.home.join("config.json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_follow_the_official_tool() {
        let d = StoreDirs::resolve(&DirOverrides::default(), &env_of(&[("HOME", "/home/u")]));
        assert_eq!(d.home, PathBuf::from("/home/u/.totalsegmentator"));
        assert_eq!(
            d.nnunet_roots,
            vec![PathBuf::from("/home/u/.totalsegmentator/nnunet/results")]
        );
        assert_eq!(
            d.converted,
            PathBuf::from("/home/u/.totalsegmentator/rs-models")
        );
        assert_eq!(
            d.config_file(),
            PathBuf::from("/home/u/.totalsegmentator/config.json")
        );
    }

    #[test]
    fn root_home_maps_to_tmp_like_the_docker_workaround() {
        let d = StoreDirs::resolve(&DirOverrides::default(), &env_of(&[("HOME", "/")]));
        assert_eq!(d.home, PathBuf::from("/tmp/.totalsegmentator"));
    }

    #[test]
    fn env_and_overrides_take_precedence() {
        let env = env_of(&[
            ("HOME", "/home/u"),
            ("TOTALSEG_HOME_DIR", "/h"),
            ("TOTALSEG_WEIGHTS_PATH", "/w"),
        ]);
        let d = StoreDirs::resolve(&DirOverrides::default(), &env);
        assert_eq!(d.home, PathBuf::from("/h"));
        assert_eq!(
            d.nnunet_roots,
            vec![PathBuf::from("/w"), PathBuf::from("/h/nnunet/results")]
        );
        assert_eq!(d.download_root(), std::path::Path::new("/w"));
        assert_eq!(d.converted, PathBuf::from("/h/rs-models"));

        let o = DirOverrides {
            home: None,
            weights_dir: Some("/cli".into()),
            converted_dir: Some("/conv".into()),
        };
        let d = StoreDirs::resolve(&o, &env);
        assert_eq!(d.nnunet_roots[0], PathBuf::from("/cli"));
        assert_eq!(d.converted, PathBuf::from("/conv"));
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let env = env_of(&[("HOME", "/home/u"), ("TOTALSEG_HOME_DIR", "")]);
        let d = StoreDirs::resolve(&DirOverrides::default(), &env);
        assert_eq!(d.home, PathBuf::from("/home/u/.totalsegmentator"));
    }
}
