//! The TotalSegmentator 1.5 mm network (Dataset291-295 `3d_fullres`, nnUNetPlans) as a
//! model.json-equivalent config, and its convolution FLOP count.

#![allow(dead_code)]

use totalseg_nn::{ArchKwargs, ModelConfig};

/// Output channels of the part-1 (organs) model: 24 classes + background.
pub const NUM_CLASSES: usize = 25;

/// The `total` 1.5 mm architecture (6 stages, 32-64-128-256-320-320, kernel 3, stride 2)
/// with a cubic patch of `patch` voxels per side (128 in the real plans).
pub fn totalseg_config(patch: usize) -> ModelConfig {
    let json = serde_json::json!({
        "format": "totalseg-model",
        "format_version": 1,
        "dataset_name": "Dataset291_TotalSegmentator_part1_organs_1559subj",
        "trainer": "nnUNetTrainerNoMirroring",
        "plans_name": "nnUNetPlans",
        "configuration": "3d_fullres",
        "folds": [0],
        "dtype": "f32",
        "architecture": {
            "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "input_channels": 1,
            "num_classes": NUM_CLASSES,
            "arch_kwargs": {
                "n_stages": 6,
                "features_per_stage": [32, 64, 128, 256, 320, 320],
                "kernel_sizes": [[3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
                "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]],
                "n_conv_per_stage": [2, 2, 2, 2, 2, 2],
                "n_conv_per_stage_decoder": [2, 2, 2, 2, 2],
                "conv_bias": true,
                "norm_eps": 1e-5,
                "norm_affine": true,
                "nonlin_negative_slope": 0.01
            }
        },
        "patch_size": [patch, patch, patch],
        "spacing": [1.5, 1.5, 1.5],
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "normalization_schemes": ["CTNormalization"],
        "use_mask_for_norm": [false],
        "foreground_intensity_properties_per_channel": {
            "0": {"mean": 0.0, "std": 1.0, "percentile_00_5": -1000.0, "percentile_99_5": 1000.0}
        },
        "labels": {"background": 0},
        "channel_names": {"0": "CT"}
    });
    serde_json::from_value(json).expect("valid bench config")
}

/// Floating-point operations (2 per multiply-add) of the convolutions and transposed
/// convolutions of one forward pass at `patch` (norms and activations are not counted).
pub fn forward_flops(
    kw: &ArchKwargs,
    input_channels: usize,
    num_classes: usize,
    patch: [usize; 3],
) -> f64 {
    let counts = kw.n_conv_per_stage.as_ref().expect("PlainConvUNet");
    let mut size = patch;
    let mut sizes = Vec::new();
    let mut flops = 0.0;
    let mut in_ch = input_channels;
    for (s, &convs) in counts.iter().enumerate() {
        size = [0, 1, 2].map(|a| size[a] / kw.strides[s][a]);
        sizes.push(size);
        let voxels = (size[0] * size[1] * size[2]) as f64;
        let k: usize = kw.kernel_sizes[s].iter().product();
        let out = kw.features_per_stage[s];
        for c in 0..convs {
            let cin = if c == 0 { in_ch } else { out };
            flops += 2.0 * voxels * (cin * out * k) as f64;
        }
        in_ch = out;
    }
    for s in 0..kw.n_stages - 1 {
        let below = kw.n_stages - 1 - s;
        let level = kw.n_stages - 2 - s;
        let low = sizes[below];
        let high = sizes[level];
        let stride: usize = kw.strides[below].iter().product();
        let f_low = kw.features_per_stage[below];
        let f = kw.features_per_stage[level];
        flops += 2.0 * (low[0] * low[1] * low[2]) as f64 * (f_low * f * stride) as f64;
        let voxels = (high[0] * high[1] * high[2]) as f64;
        let k: usize = kw.kernel_sizes[level].iter().product();
        for c in 0..kw.n_conv_per_stage_decoder[s] {
            let cin = if c == 0 { 2 * f } else { f };
            flops += 2.0 * voxels * (cin * f * k) as f64;
        }
    }
    let full = sizes[0];
    flops += 2.0
        * (full[0] * full[1] * full[2]) as f64
        * (kw.features_per_stage[0] * num_classes) as f64;
    flops
}
