//! nnU-Net `plans.json`: picking a configuration, merging `inherits_from`, and rewriting the
//! older plans format (no `architecture` block) exactly as nnunetv2's `ConfigurationManager`
//! does.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::error::ConvertError;
use crate::json_file::{parse_object, read_text};

/// A parsed `plans.json`, with its original text kept for embedding verbatim.
#[derive(Debug, Clone)]
pub struct Plans {
    path: PathBuf,
    text: String,
    root: Map<String, Value>,
}

impl Plans {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, ConvertError> {
        Self::from_text(path, read_text(path)?)
    }

    /// Parses plans text; `path` is used in error messages.
    pub fn from_text(path: &Path, text: String) -> Result<Self, ConvertError> {
        let root = parse_object(path, &text, || ConvertError::Plans {
            path: path.to_path_buf(),
            reason: "plans is not a JSON object".into(),
        })?;
        let plans = Plans {
            path: path.to_path_buf(),
            text,
            root,
        };
        plans.configurations()?;
        Ok(plans)
    }

    /// The plans file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text, unchanged.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A top-level field.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.root.get(key)
    }

    fn configurations(&self) -> Result<&Map<String, Value>, ConvertError> {
        match self.root.get("configurations") {
            Some(Value::Object(configs)) => Ok(configs),
            _ => Err(self.error("plans have no `configurations` object")),
        }
    }

    /// Names of the configurations the plans define.
    pub fn configuration_names(&self) -> Vec<String> {
        self.configurations()
            .map(|c| c.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> ConvertError {
        ConvertError::Plans {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// The configuration `name` as nnU-Net sees it: parents of `inherits_from` merged in
    /// (the child's keys win, one level deep, like Python's `dict.update`), and an older-format
    /// configuration rewritten to carry an `architecture` block.
    ///
    /// ```
    /// use weights_converter::plans::Plans;
    /// let text = r#"{"configurations": {
    ///     "base": {"patch_size": [64, 64, 64], "batch_size": 2, "architecture": {}},
    ///     "child": {"inherits_from": "base", "batch_size": 4}}}"#;
    /// let plans = Plans::from_text("plans.json".as_ref(), text.into()).unwrap();
    /// let child = plans.resolve_configuration_dict("child").unwrap();
    /// assert_eq!(child["batch_size"], 4);
    /// assert_eq!(child["patch_size"][0], 64);
    /// ```
    pub fn resolve_configuration_dict(
        &self,
        name: &str,
    ) -> Result<Map<String, Value>, ConvertError> {
        let mut merged = self.inherited(name, &mut Vec::new())?;
        if !merged.contains_key("architecture") {
            convert_old_format(&mut merged).map_err(|reason| {
                self.error(format!(
                    "configuration `{name}` (older plans format without `architecture`): {reason}"
                ))
            })?;
        }
        Ok(merged)
    }

    fn inherited(
        &self,
        name: &str,
        visited: &mut Vec<String>,
    ) -> Result<Map<String, Value>, ConvertError> {
        let configs = self.configurations()?;
        let config = match configs.get(name) {
            Some(Value::Object(config)) => config.clone(),
            Some(_) => return Err(self.error(format!("configuration `{name}` is not an object"))),
            None if visited.is_empty() => {
                return Err(ConvertError::MissingConfiguration {
                    path: self.path.clone(),
                    configuration: name.to_owned(),
                    available: self.configuration_names(),
                })
            }
            None => {
                return Err(self.error(format!(
                    "configuration `{}` inherits from `{name}`, which does not exist",
                    visited.last().map(String::as_str).unwrap_or_default()
                )))
            }
        };
        let parent = match config.get("inherits_from") {
            None => return Ok(config),
            Some(Value::String(parent)) => parent.clone(),
            Some(_) => {
                return Err(self.error(format!(
                    "configuration `{name}`: `inherits_from` is not a string"
                )))
            }
        };
        visited.push(name.to_owned());
        if visited.contains(&parent) {
            return Err(self.error(format!(
                "circular `inherits_from` chain: {} -> {parent}",
                visited.join(" -> ")
            )));
        }
        let mut base = self.inherited(&parent, visited)?;
        base.extend(config);
        Ok(base)
    }
}

/// Builds the `architecture` block from the older keys, as `ConfigurationManager.__init__`.
fn convert_old_format(config: &mut Map<String, Value>) -> Result<(), String> {
    let class_name = match config.get("UNet_class_name") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err("no `architecture` block and no `UNet_class_name`".into()),
    };
    let (network_class_name, blocks_key) = match class_name.as_str() {
        "PlainConvUNet" => (
            "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "n_conv_per_stage",
        ),
        "ResidualEncoderUNet" => (
            "dynamic_network_architectures.architectures.residual_unet.ResidualEncoderUNet",
            "n_blocks_per_stage",
        ),
        other => {
            return Err(format!(
                "unknown `UNet_class_name` {other:?}; the old format only knows PlainConvUNet and ResidualEncoderUNet"
            ))
        }
    };
    let required = |key: &str| config.get(key).cloned().ok_or(format!("missing `{key}`"));
    let encoder_convs = required("n_conv_per_stage_encoder")?;
    let n_stages = encoder_convs
        .as_array()
        .map(Vec::len)
        .ok_or("`n_conv_per_stage_encoder` is not a list")?;
    let dim = config
        .get("patch_size")
        .and_then(Value::as_array)
        .map(Vec::len)
        .ok_or("missing `patch_size`")?;
    let base = required("UNet_base_num_features")?
        .as_u64()
        .ok_or("`UNet_base_num_features` is not an int")?;
    let max = required("unet_max_num_features")?
        .as_u64()
        .ok_or("`unet_max_num_features` is not an int")?;
    let features: Vec<u64> = (0..n_stages)
        .map(|i| {
            u32::try_from(i)
                .ok()
                .and_then(|i| 2u64.checked_pow(i))
                .and_then(|p| base.checked_mul(p))
                .map_or(max, |f| f.min(max))
        })
        .collect();
    let (conv_op, norm_op) = match dim {
        1 => (
            "torch.nn.modules.conv.Conv1d",
            "torch.nn.modules.instancenorm.InstanceNorm1d",
        ),
        2 => (
            "torch.nn.modules.conv.Conv2d",
            "torch.nn.modules.instancenorm.InstanceNorm2d",
        ),
        3 => (
            "torch.nn.modules.conv.Conv3d",
            "torch.nn.modules.instancenorm.InstanceNorm3d",
        ),
        other => return Err(format!("patch_size has {other} dims; expected 1, 2 or 3")),
    };
    let mut kwargs = Map::new();
    kwargs.insert("n_stages".into(), json!(n_stages));
    kwargs.insert("features_per_stage".into(), json!(features));
    kwargs.insert("conv_op".into(), json!(conv_op));
    kwargs.insert("kernel_sizes".into(), required("conv_kernel_sizes")?);
    kwargs.insert("strides".into(), required("pool_op_kernel_sizes")?);
    kwargs.insert(blocks_key.into(), encoder_convs);
    kwargs.insert(
        "n_conv_per_stage_decoder".into(),
        required("n_conv_per_stage_decoder")?,
    );
    kwargs.insert("conv_bias".into(), json!(true));
    kwargs.insert("norm_op".into(), json!(norm_op));
    kwargs.insert(
        "norm_op_kwargs".into(),
        json!({"eps": 1e-05, "affine": true}),
    );
    kwargs.insert("dropout_op".into(), Value::Null);
    kwargs.insert("dropout_op_kwargs".into(), Value::Null);
    kwargs.insert("nonlin".into(), json!("torch.nn.LeakyReLU"));
    kwargs.insert("nonlin_kwargs".into(), json!({"inplace": true}));
    for key in [
        "UNet_class_name",
        "UNet_base_num_features",
        "n_conv_per_stage_encoder",
        "n_conv_per_stage_decoder",
        "num_pool_per_axis",
        "pool_op_kernel_sizes",
        "conv_kernel_sizes",
        "unet_max_num_features",
    ] {
        config.remove(key);
    }
    config.insert(
        "architecture".into(),
        json!({
            "network_class_name": network_class_name,
            "arch_kwargs": kwargs,
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
        }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(text: &str) -> Plans {
        Plans::from_text(Path::new("plans.json"), text.into()).unwrap()
    }

    #[test]
    fn converts_old_format_like_configuration_manager() {
        let p = plans(
            r#"{"configurations": {"3d_fullres": {
                "patch_size": [96, 160, 160],
                "UNet_class_name": "PlainConvUNet", "UNet_base_num_features": 32,
                "unet_max_num_features": 320, "n_conv_per_stage_encoder": [2,2,2,2,2,2,2],
                "n_conv_per_stage_decoder": [2,2,2,2,2,2], "num_pool_per_axis": [4,5,5],
                "pool_op_kernel_sizes": [[1,1,1],[1,2,2],[2,2,2],[2,2,2],[2,2,2],[2,2,2],[1,2,2]],
                "conv_kernel_sizes": [[1,3,3],[3,3,3],[3,3,3],[3,3,3],[3,3,3],[3,3,3],[3,3,3]]}}}"#,
        );
        let c = p.resolve_configuration_dict("3d_fullres").unwrap();
        let arch = &c["architecture"];
        assert_eq!(
            arch["network_class_name"],
            "dynamic_network_architectures.architectures.unet.PlainConvUNet"
        );
        let k = &arch["arch_kwargs"];
        assert_eq!(k["n_stages"], 7);
        assert_eq!(
            k["features_per_stage"],
            json!([32, 64, 128, 256, 320, 320, 320])
        );
        assert_eq!(k["conv_op"], "torch.nn.modules.conv.Conv3d");
        assert_eq!(k["strides"][1], json!([1, 2, 2]));
        assert_eq!(k["kernel_sizes"][0], json!([1, 3, 3]));
        assert_eq!(k["n_conv_per_stage"], json!([2, 2, 2, 2, 2, 2, 2]));
        assert_eq!(k["norm_op_kwargs"]["eps"], 1e-5);
        assert!(c.get("UNet_class_name").is_none() && c.get("num_pool_per_axis").is_none());
        assert_eq!(c["patch_size"], json!([96, 160, 160]));
    }

    #[test]
    fn old_format_residual_unet_uses_blocks_per_stage() {
        let p = plans(
            r#"{"configurations": {"c": {"patch_size": [64, 64],
                "UNet_class_name": "ResidualEncoderUNet", "UNet_base_num_features": 16,
                "unet_max_num_features": 32, "n_conv_per_stage_encoder": [1, 3, 4],
                "n_conv_per_stage_decoder": [1, 1], "num_pool_per_axis": [2, 2],
                "pool_op_kernel_sizes": [[1,1],[2,2],[2,2]], "conv_kernel_sizes": [[3,3],[3,3],[3,3]]}}}"#,
        );
        let c = p.resolve_configuration_dict("c").unwrap();
        let k = &c["architecture"]["arch_kwargs"];
        assert_eq!(k["n_blocks_per_stage"], json!([1, 3, 4]));
        assert!(k.get("n_conv_per_stage").is_none());
        assert_eq!(k["features_per_stage"], json!([16, 32, 32]));
        assert_eq!(k["conv_op"], "torch.nn.modules.conv.Conv2d");
    }

    #[test]
    fn unknown_old_class_and_missing_keys_are_errors() {
        let p =
            plans(r#"{"configurations": {"c": {"patch_size": [8], "UNet_class_name": "Foo"}}}"#);
        let err = p.resolve_configuration_dict("c").unwrap_err().to_string();
        assert!(err.contains("Foo"), "{err}");
        let p = plans(
            r#"{"configurations": {"c": {"patch_size": [8], "UNet_class_name": "PlainConvUNet"}}}"#,
        );
        let err = p.resolve_configuration_dict("c").unwrap_err().to_string();
        assert!(err.contains("n_conv_per_stage_encoder"), "{err}");
    }

    #[test]
    fn inheritance_chains_merge_and_cycles_fail() {
        let p = plans(
            r#"{"configurations": {
                "a": {"architecture": {"x": 1}, "spacing": [1, 1, 1], "batch_size": 2},
                "b": {"inherits_from": "a", "batch_size": 3},
                "c": {"inherits_from": "b", "spacing": [2, 2, 2]},
                "loop1": {"inherits_from": "loop2"}, "loop2": {"inherits_from": "loop1"},
                "orphan": {"inherits_from": "nope"}}}"#,
        );
        let c = p.resolve_configuration_dict("c").unwrap();
        assert_eq!(c["batch_size"], 3);
        assert_eq!(c["spacing"], json!([2, 2, 2]));
        assert_eq!(c["architecture"]["x"], 1);
        assert!(p
            .resolve_configuration_dict("loop1")
            .unwrap_err()
            .to_string()
            .contains("circular"));
        assert!(p
            .resolve_configuration_dict("orphan")
            .unwrap_err()
            .to_string()
            .contains("nope"));
        assert!(matches!(
            p.resolve_configuration_dict("missing"),
            Err(ConvertError::MissingConfiguration { .. })
        ));
    }
}
