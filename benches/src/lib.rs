//! Bench helpers.

use std::path::Path;

use ndarray::Array3;
use totalseg_io::nifti::read_label_map;

/// The value after `--name` on the command line (`--repeats 3` -> `Some("3")`).
///
/// ```
/// let args = ["bench", "--repeats", "3"].map(String::from);
/// assert_eq!(totalseg_benches::flag_value(&args, "--repeats"), Some("3"));
/// assert_eq!(totalseg_benches::flag_value(&args, "--backend"), None);
/// ```
pub fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// `total` part 1's architecture at the released widths (tools/bench/make_fullwidth_models.py).
pub const FULL_WIDTH_PART_JSON: &str = r#"{
  "format": "totalseg-model", "format_version": 1,
  "dataset_name": "Dataset291_TotalSegmentator_part1_organs_1559subj",
  "trainer": "nnUNetTrainerNoMirroring", "plans_name": "nnUNetPlans", "configuration": "3d_fullres",
  "folds": [0], "dtype": "f32",
  "architecture": {
    "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
    "input_channels": 1, "num_classes": 25,
    "arch_kwargs": {"n_stages": 6, "features_per_stage": [32, 64, 128, 256, 320, 320],
      "kernel_sizes": [[3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3], [3, 3, 3]],
      "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2], [2, 2, 2]],
      "n_conv_per_stage": [2, 2, 2, 2, 2, 2], "n_conv_per_stage_decoder": [2, 2, 2, 2, 2],
      "conv_bias": true, "norm_eps": 1e-5, "norm_affine": true, "nonlin_negative_slope": 0.01}},
  "patch_size": [128, 128, 128], "spacing": [1.5, 1.5, 1.5],
  "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
  "normalization_schemes": ["CTNormalization"], "use_mask_for_norm": [false],
  "foreground_intensity_properties_per_channel": {"0": {"mean": -50.0, "std": 503.0,
    "percentile_00_5": -1004.0, "percentile_99_5": 1588.0}},
  "labels": {"background": 0, "c1": 1, "c2": 2, "c3": 3, "c4": 4, "c5": 5, "c6": 6, "c7": 7,
    "c8": 8, "c9": 9, "c10": 10, "c11": 11, "c12": 12, "c13": 13, "c14": 14, "c15": 15,
    "c16": 16, "c17": 17, "c18": 18, "c19": 19, "c20": 20, "c21": 21, "c22": 22, "c23": 23,
    "c24": 24},
  "channel_names": {"0": "CT"}
}"#;

/// Sliding-window settings for one 1.5 mm channel normalised by `scheme`, a cubic patch of
/// `patch` and step `step` (0.5 in nnU-Net, 0.8 for the `total` tasks).
pub fn one_channel_settings(
    patch: usize,
    step: f64,
    scheme: totalseg_core::normalize::NormalizationScheme,
    accumulation: totalseg_core::sliding_window::AccumulationPrecision,
) -> totalsegmentator::predictor::PredictorSettings {
    use totalseg_core::export::LogitsResampling;
    use totalseg_core::resample::NnunetResampling;
    totalsegmentator::predictor::PredictorSettings {
        patch_size: [patch; 3],
        spacing: [1.5; 3],
        transpose_forward: [0, 1, 2],
        transpose_backward: [0, 1, 2],
        channels: vec![totalsegmentator::predictor::ChannelNormalization {
            scheme,
            properties: None,
            use_mask_for_norm: false,
        }],
        step_size: step,
        accumulation,
        data_resampling: NnunetResampling::default(),
        probabilities_resampling: NnunetResampling::default(),
        logits_resampling: LogitsResampling::Full,
    }
}

/// One label's agreement between two label maps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabelDice {
    /// The label value.
    pub label: u8,
    /// `2 |A and B| / (|A| + |B|)`.
    pub dice: f64,
    /// Voxels with this label in ours.
    pub ours: u64,
    /// Voxels with this label in the official output.
    pub official: u64,
}

/// Dice per label (1..=255) present in either of two label-map files of the same shape.
pub fn dice_per_class(
    ours: &Path,
    official: &Path,
) -> Result<Vec<LabelDice>, Box<dyn std::error::Error>> {
    Ok(dice_of_maps(
        &read_label_map(ours)?.labels,
        &read_label_map(official)?.labels,
    )?)
}

/// Dice per label (1..=255) present in either of two label maps; an error if their shapes
/// differ.
pub fn dice_of_maps(ours: &Array3<u8>, official: &Array3<u8>) -> Result<Vec<LabelDice>, String> {
    if ours.dim() != official.dim() {
        return Err(format!(
            "shapes differ: ours {:?}, official {:?}",
            ours.dim(),
            official.dim()
        ));
    }
    Ok(dice_of_labels(
        ours.iter().copied(),
        official.iter().copied(),
    ))
}

/// Dice per label (1..=255) present in either sequence of labels.
///
/// ```
/// let dice = totalseg_benches::dice_of_labels([0, 1, 1, 2].into_iter(), [0, 1, 2, 2].into_iter());
/// assert_eq!(dice.len(), 2);
/// assert!((dice[0].dice - 2.0 / 3.0).abs() < 1e-12);
/// ```
pub fn dice_of_labels(
    ours: impl Iterator<Item = u8>,
    official: impl Iterator<Item = u8>,
) -> Vec<LabelDice> {
    let mut in_a = [0u64; 256];
    let mut in_b = [0u64; 256];
    let mut both = [0u64; 256];
    for (x, y) in ours.zip(official) {
        in_a[x as usize] += 1;
        in_b[y as usize] += 1;
        if x == y {
            both[x as usize] += 1;
        }
    }
    (1..256)
        .filter(|&l| in_a[l] + in_b[l] > 0)
        .map(|l| LabelDice {
            label: l as u8,
            dice: 2.0 * both[l] as f64 / (in_a[l] + in_b[l]) as f64,
            ours: in_a[l],
            official: in_b[l],
        })
        .collect()
}

/// Prints the mean and worst Dice and the labels below 0.99.
pub fn print_dice(dice: &[LabelDice]) {
    if dice.is_empty() {
        println!("Dice: both outputs are all background");
        return;
    }
    let mean = dice.iter().map(|d| d.dice).sum::<f64>() / dice.len() as f64;
    let worst = dice
        .iter()
        .copied()
        .min_by(|x, y| x.dice.total_cmp(&y.dice))
        .unwrap_or(dice[0]);
    println!(
        "Dice ours vs official over {} classes present: mean {:.5}, worst {:.5} (label {}, {} vs {} voxels)",
        dice.len(),
        mean,
        worst.dice,
        worst.label,
        worst.ours,
        worst.official
    );
    let below: Vec<_> = dice.iter().filter(|d| d.dice < 0.99).collect();
    println!("classes with Dice < 0.99: {}", below.len());
    for d in below.iter().take(10) {
        println!(
            "  label {}: Dice {:.4} ({} vs {} voxels)",
            d.label, d.dice, d.ours, d.official
        );
    }
}
