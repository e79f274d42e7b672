//! The network description `model.json` carries: `architecture.arch_kwargs` resolved from
//! the plans into explicit per-stage lists and plain numbers, so the network builder never
//! interprets Python class paths or defaults.

use serde::Serialize;
use serde_json::{Map, Value};

/// `network_class_name` written for a plain U-Net.
pub const PLAIN_CONV_UNET: &str = "dynamic_network_architectures.architectures.unet.PlainConvUNet";
/// `network_class_name` written for a residual-encoder U-Net.
pub const RESIDUAL_ENCODER_UNET: &str =
    "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet";

/// Which of the two supported networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkClass {
    /// `PlainConvUNet`.
    PlainConvUNet,
    /// `ResidualEncoderUNet` (`residual_unet.` in older dynamic-network-architectures).
    ResidualEncoderUNet,
}

impl NetworkClass {
    /// The class, from a Python class path; the module part is ignored, as nnU-Net's own
    /// fallback search by class name does.
    pub fn from_class_path(path: &str) -> Option<Self> {
        match path.rsplit('.').next()? {
            "PlainConvUNet" => Some(NetworkClass::PlainConvUNet),
            "ResidualEncoderUNet" => Some(NetworkClass::ResidualEncoderUNet),
            _ => None,
        }
    }

    /// The canonical class path written to `model.json`.
    pub fn class_path(self) -> &'static str {
        match self {
            NetworkClass::PlainConvUNet => PLAIN_CONV_UNET,
            NetworkClass::ResidualEncoderUNet => RESIDUAL_ENCODER_UNET,
        }
    }
}

/// The resolved network hyper-parameters (dynamic-network-architectures constructor
/// arguments with scalars expanded and defaults filled in).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedArchKwargs {
    /// Number of resolution stages.
    pub n_stages: usize,
    /// Channels per stage.
    pub features_per_stage: Vec<usize>,
    /// Kernel size per stage, one entry per spatial axis.
    pub kernel_sizes: Vec<Vec<usize>>,
    /// Stride of each stage's first conv, one entry per spatial axis.
    pub strides: Vec<Vec<usize>>,
    /// Convs per encoder stage (PlainConvUNet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_conv_per_stage: Option<Vec<usize>>,
    /// Residual blocks per encoder stage (ResidualEncoderUNet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_blocks_per_stage: Option<Vec<usize>>,
    /// Convs per decoder stage (`n_stages - 1` entries).
    pub n_conv_per_stage_decoder: Vec<usize>,
    /// Whether convs have a bias.
    pub conv_bias: bool,
    /// InstanceNorm epsilon.
    pub norm_eps: f64,
    /// Whether InstanceNorm has weight and bias.
    pub norm_affine: bool,
    /// LeakyReLU slope (0 for ReLU).
    pub nonlin_negative_slope: f64,
    /// Stem output channels (ResidualEncoderUNet; defaults to `features_per_stage[0]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stem_channels: Option<usize>,
}

/// The `architecture` block of `model.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Architecture {
    /// The network.
    pub class: NetworkClass,
    /// Input channels (image channels, plus one per foreground label in a cascade stage).
    pub input_channels: usize,
    /// Output channels (segmentation heads).
    pub num_classes: usize,
    /// Spatial dimensionality (2 or 3).
    pub spatial_dims: usize,
    /// The resolved hyper-parameters.
    pub kwargs: ResolvedArchKwargs,
}

impl Architecture {
    /// The JSON block: `network_class_name`, `input_channels`, `num_classes` and the resolved
    /// `arch_kwargs` (the plans' own form stays available in `model.json`'s verbatim `plans`).
    pub fn block(&self) -> ArchitectureBlock {
        ArchitectureBlock {
            network_class_name: self.class.class_path(),
            input_channels: self.input_channels,
            num_classes: self.num_classes,
            arch_kwargs: self.kwargs.clone(),
        }
    }

    /// [`block`](Self::block) as a JSON value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.block()).unwrap_or(Value::Null)
    }
}

/// `model.json`'s `architecture`, fields in the documented order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchitectureBlock {
    /// [`PLAIN_CONV_UNET`] or [`RESIDUAL_ENCODER_UNET`].
    pub network_class_name: &'static str,
    /// Input channels.
    pub input_channels: usize,
    /// Output channels.
    pub num_classes: usize,
    /// Resolved hyper-parameters.
    pub arch_kwargs: ResolvedArchKwargs,
}

/// Reads `configuration["architecture"]` (after [`crate::plans::Plans::resolve_configuration_dict`])
/// into the resolved form. Errors name the offending key.
pub fn resolve_architecture(
    configuration: &Map<String, Value>,
    input_channels: usize,
    num_classes: usize,
) -> Result<Architecture, String> {
    let arch = configuration
        .get("architecture")
        .and_then(Value::as_object)
        .ok_or("configuration has no `architecture` object")?;
    let class_path = arch
        .get("network_class_name")
        .and_then(Value::as_str)
        .ok_or("`architecture.network_class_name` is not a string")?;
    let class = NetworkClass::from_class_path(class_path).ok_or_else(|| {
        format!("network class {class_path:?} (only PlainConvUNet and ResidualEncoderUNet are implemented)")
    })?;
    let kwargs = arch
        .get("arch_kwargs")
        .and_then(Value::as_object)
        .ok_or("`architecture.arch_kwargs` is not an object")?;

    let spatial_dims = match kwargs.get("conv_op").and_then(Value::as_str) {
        Some(op) if op.ends_with("Conv3d") => 3,
        Some(op) if op.ends_with("Conv2d") => 2,
        Some(op) if op.ends_with("Conv1d") => 1,
        Some(op) => return Err(format!("conv_op {op:?} is not a ConvNd")),
        None => configuration
            .get("patch_size")
            .and_then(Value::as_array)
            .map(Vec::len)
            .ok_or("no `conv_op` and no `patch_size` to tell the dimensionality")?,
    };
    let n_stages = usize_of(kwargs.get("n_stages"), "n_stages")?;
    if n_stages == 0 {
        return Err("`n_stages` is 0".into());
    }
    let features_per_stage = per_stage(
        kwargs.get("features_per_stage"),
        n_stages,
        "features_per_stage",
    )?;
    let kernel_sizes = per_stage_axes(
        kwargs.get("kernel_sizes"),
        n_stages,
        spatial_dims,
        "kernel_sizes",
    )?;
    let strides = per_stage_axes(kwargs.get("strides"), n_stages, spatial_dims, "strides")?;
    let decoder = per_stage(
        kwargs.get("n_conv_per_stage_decoder"),
        n_stages - 1,
        "n_conv_per_stage_decoder",
    )?;
    let (n_conv_per_stage, n_blocks_per_stage, stem_channels) = match class {
        NetworkClass::PlainConvUNet => {
            if kwargs.get("nonlin_first").and_then(Value::as_bool) == Some(true) {
                return Err("`nonlin_first: true` is not implemented".into());
            }
            (
                Some(per_stage(
                    kwargs.get("n_conv_per_stage"),
                    n_stages,
                    "n_conv_per_stage",
                )?),
                None,
                None,
            )
        }
        NetworkClass::ResidualEncoderUNet => {
            match kwargs.get("block") {
                None | Some(Value::Null) => {}
                Some(Value::String(b)) if b.ends_with("BasicBlockD") => {}
                Some(other) => {
                    return Err(format!("block {other} (only BasicBlockD is implemented)"))
                }
            }
            if !matches!(kwargs.get("bottleneck_channels"), None | Some(Value::Null)) {
                return Err("`bottleneck_channels` (BottleneckD) is not implemented".into());
            }
            let stem = match kwargs.get("stem_channels") {
                None | Some(Value::Null) => features_per_stage[0],
                v => usize_of(v, "stem_channels")?,
            };
            (
                None,
                Some(per_stage(
                    kwargs.get("n_blocks_per_stage"),
                    n_stages,
                    "n_blocks_per_stage",
                )?),
                Some(stem),
            )
        }
    };

    let conv_bias = match kwargs.get("conv_bias") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(format!("`conv_bias` is {other}, not a bool")),
    };
    let (norm_eps, norm_affine) = resolve_norm(kwargs)?;
    let nonlin_negative_slope = resolve_nonlin(kwargs)?;

    Ok(Architecture {
        class,
        input_channels,
        num_classes,
        spatial_dims,
        kwargs: ResolvedArchKwargs {
            n_stages,
            features_per_stage,
            kernel_sizes,
            strides,
            n_conv_per_stage,
            n_blocks_per_stage,
            n_conv_per_stage_decoder: decoder,
            conv_bias,
            norm_eps,
            norm_affine,
            nonlin_negative_slope,
            stem_channels,
        },
    })
}

/// InstanceNorm with torch's defaults (eps 1e-5, affine False) under the plans' kwargs.
fn resolve_norm(kwargs: &Map<String, Value>) -> Result<(f64, bool), String> {
    match kwargs.get("norm_op").and_then(Value::as_str) {
        Some(op)
            if op
                .rsplit('.')
                .next()
                .is_some_and(|n| n.starts_with("InstanceNorm")) => {}
        Some(op) => return Err(format!("norm_op {op:?} (only InstanceNorm is implemented)")),
        None => {
            return Err("no `norm_op` (networks without normalisation are not implemented)".into())
        }
    }
    let norm_kwargs = match kwargs.get("norm_op_kwargs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => return Err(format!("`norm_op_kwargs` is {other}, not an object")),
    };
    if norm_kwargs
        .get("track_running_stats")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Err("InstanceNorm with `track_running_stats: true` is not implemented".into());
    }
    let eps = match norm_kwargs.get("eps") {
        None => 1e-5,
        Some(v) => v.as_f64().ok_or("`norm_op_kwargs.eps` is not a number")?,
    };
    let affine = match norm_kwargs.get("affine") {
        None => false,
        Some(v) => v.as_bool().ok_or("`norm_op_kwargs.affine` is not a bool")?,
    };
    Ok((eps, affine))
}

/// LeakyReLU slope (torch default 0.01), or 0 for ReLU.
fn resolve_nonlin(kwargs: &Map<String, Value>) -> Result<f64, String> {
    let name = match kwargs.get("nonlin").and_then(Value::as_str) {
        Some(op) => op.rsplit('.').next().unwrap_or(op),
        None => {
            return Err("no `nonlin` (networks without a nonlinearity are not implemented)".into())
        }
    };
    match name {
        "ReLU" => Ok(0.0),
        "LeakyReLU" => match kwargs
            .get("nonlin_kwargs")
            .and_then(Value::as_object)
            .and_then(|k| k.get("negative_slope"))
        {
            None => Ok(0.01),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| "`nonlin_kwargs.negative_slope` is not a number".to_string()),
        },
        other => Err(format!(
            "nonlin {other:?} (only LeakyReLU and ReLU are implemented)"
        )),
    }
}

fn usize_of(value: Option<&Value>, key: &str) -> Result<usize, String> {
    value
        .and_then(Value::as_u64)
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| format!("`{key}` is not a non-negative int"))
}

/// A per-stage list of ints, or one int for every stage (as dynamic-network-architectures accepts).
fn per_stage(value: Option<&Value>, n: usize, key: &str) -> Result<Vec<usize>, String> {
    match value {
        Some(Value::Array(items)) => {
            if items.len() != n {
                return Err(format!("`{key}` has {} entries, expected {n}", items.len()));
            }
            items.iter().map(|v| usize_of(Some(v), key)).collect()
        }
        Some(v @ Value::Number(_)) => Ok(vec![usize_of(Some(v), key)?; n]),
        _ => Err(format!("`{key}` is missing or not a list of ints")),
    }
}

/// A per-stage list of per-axis sizes; an int stands for the same size on every axis (and,
/// at the top level, for every stage).
fn per_stage_axes(
    value: Option<&Value>,
    n: usize,
    dims: usize,
    key: &str,
) -> Result<Vec<Vec<usize>>, String> {
    let stage = |v: &Value| -> Result<Vec<usize>, String> {
        let axes = per_stage(Some(v), dims, key)?;
        if axes.contains(&0) {
            return Err(format!("`{key}` contains 0"));
        }
        Ok(axes)
    };
    match value {
        Some(Value::Array(items)) => {
            if items.len() != n {
                return Err(format!("`{key}` has {} entries, expected {n}", items.len()));
            }
            items.iter().map(stage).collect()
        }
        Some(v @ Value::Number(_)) => Ok(vec![stage(v)?; n]),
        _ => Err(format!("`{key}` is missing or not a list")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(kwargs: Value, class: &str) -> Map<String, Value> {
        json!({"patch_size": [64, 64, 64], "architecture": {"network_class_name": class, "arch_kwargs": kwargs}})
            .as_object()
            .cloned()
            .unwrap()
    }

    fn plain_kwargs() -> Value {
        json!({
            "n_stages": 3, "features_per_stage": [4, 8, 16],
            "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3], [3, 3, 3], [3, 3, 3]],
            "strides": [[1, 1, 1], [2, 2, 2], [1, 2, 2]],
            "n_conv_per_stage": [2, 2, 2], "n_conv_per_stage_decoder": [2, 2],
            "conv_bias": true,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": true},
            "dropout_op": null, "dropout_op_kwargs": null,
            "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": true}
        })
    }

    #[test]
    fn resolves_plain_unet_with_torch_defaults() {
        let a = resolve_architecture(&config(plain_kwargs(), PLAIN_CONV_UNET), 1, 5).unwrap();
        assert_eq!(a.class, NetworkClass::PlainConvUNet);
        assert_eq!(a.kwargs.strides[2], vec![1, 2, 2]);
        assert_eq!(a.kwargs.n_conv_per_stage, Some(vec![2, 2, 2]));
        assert_eq!(a.kwargs.nonlin_negative_slope, 0.01);
        assert_eq!(a.kwargs.norm_eps, 1e-5);
        assert!(a.kwargs.norm_affine && a.kwargs.conv_bias);
        let j = a.to_json();
        assert_eq!(j["num_classes"], 5);
        assert_eq!(j["arch_kwargs"]["nonlin_negative_slope"], 0.01);
        assert!(
            j["arch_kwargs"].get("norm_op").is_none(),
            "only resolved fields"
        );
        assert!(j["arch_kwargs"].get("n_blocks_per_stage").is_none());
    }

    #[test]
    fn expands_scalars_and_reads_explicit_slope() {
        let mut k = plain_kwargs();
        k["features_per_stage"] = json!(8);
        k["kernel_sizes"] = json!(3);
        k["strides"] = json!([1, 2, [1, 2, 2]]);
        k["n_conv_per_stage"] = json!(1);
        k["nonlin_kwargs"] = json!({"negative_slope": 0.2});
        k["norm_op_kwargs"] = json!({});
        let a = resolve_architecture(&config(k, PLAIN_CONV_UNET), 1, 2).unwrap();
        assert_eq!(a.kwargs.features_per_stage, vec![8, 8, 8]);
        assert_eq!(a.kwargs.kernel_sizes, vec![vec![3, 3, 3]; 3]);
        assert_eq!(
            a.kwargs.strides,
            vec![vec![1, 1, 1], vec![2, 2, 2], vec![1, 2, 2]]
        );
        assert_eq!(a.kwargs.nonlin_negative_slope, 0.2);
        assert!(
            !a.kwargs.norm_affine,
            "torch's InstanceNorm default is affine=False"
        );
    }

    #[test]
    fn residual_unet_from_old_module_path() {
        let mut k = plain_kwargs();
        let map = k.as_object_mut().unwrap();
        map.remove("n_conv_per_stage");
        map.insert("n_blocks_per_stage".into(), json!([1, 3, 4]));
        let a = resolve_architecture(
            &config(
                k,
                "dynamic_network_architectures.architectures.residual_unet.ResidualEncoderUNet",
            ),
            1,
            2,
        )
        .unwrap();
        assert_eq!(a.class, NetworkClass::ResidualEncoderUNet);
        assert_eq!(a.kwargs.stem_channels, Some(4));
        assert_eq!(a.to_json()["network_class_name"], RESIDUAL_ENCODER_UNET);
    }

    #[test]
    fn rejects_what_cannot_be_built() {
        let cases: Vec<(&str, Value)> = vec![
            ("n_stages", json!(4)),
            ("strides", json!([[1, 1], [2, 2], [2, 2]])),
            ("norm_op", json!("torch.nn.BatchNorm3d")),
            ("nonlin", json!("torch.nn.GELU")),
            ("nonlin_first", json!(true)),
            ("n_conv_per_stage_decoder", json!([2, 2, 2])),
        ];
        for (key, value) in cases {
            let mut k = plain_kwargs();
            k[key] = value;
            assert!(
                resolve_architecture(&config(k, PLAIN_CONV_UNET), 1, 2).is_err(),
                "{key}"
            );
        }
        assert!(resolve_architecture(&config(plain_kwargs(), "x.Primus"), 1, 2).is_err());
    }
}
