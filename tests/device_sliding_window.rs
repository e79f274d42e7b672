//! The device-side sliding window (tiles batched on the device, fp16 sums in device tensors,
//! fold averaging and argmax on the device) against the host path, both on the CPU backend
//! `burn_flex::Flex` with small random-weight U-Nets: identical labels and bit-identical
//! fold-averaged logits for nnU-Net's fp16 sums, the autocast variant and f32 sums.

use burn_flex::{Flex, FlexDevice};
use ndarray::{Array4, ArrayView4};
use totalseg_core::sliding_window::AccumulationPrecision;
use totalseg_core::tasks::Folds;
use totalseg_nn::{ModelConfig, NnUnetModel, Precision};
use totalsegmentator::models::{predictor_settings, BurnTileNetwork, SlidingWindowSite};
use totalsegmentator::predictor::device::{
    argmax_on_device, fold_averaged_logits_on_device, logits_to_host, ImageIntensities,
};
use totalsegmentator::predictor::{
    argmax_channels, effective_accumulation, predict_labels, predict_logits, NoTileProgress,
    PredictorSettings, TileNetwork,
};

/// A 3-stage PlainConvUNet with `folds` folds, 4 classes, patch 8x16x16, 1.5 mm.
fn config(folds: &[u32]) -> ModelConfig {
    let folds = folds
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let json = format!(
        r#"{{
      "format": "totalseg-model", "format_version": 1, "dataset_name": "Dataset999_Device",
      "trainer": "nnUNetTrainer", "plans_name": "nnUNetPlans", "configuration": "3d_fullres",
      "folds": [{folds}], "dtype": "f32",
      "architecture": {{
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "input_channels": 1, "num_classes": 4,
        "arch_kwargs": {{"n_stages": 3, "features_per_stage": [4, 8, 16],
          "kernel_sizes": [[1, 3, 3], [3, 3, 3], [3, 3, 3]],
          "strides": [[1, 1, 1], [1, 2, 2], [2, 2, 2]],
          "n_conv_per_stage": [2, 2, 2], "n_conv_per_stage_decoder": [2, 2],
          "conv_bias": true, "norm_eps": 1e-5, "norm_affine": true,
          "nonlin_negative_slope": 0.01}}}},
      "patch_size": [8, 16, 16], "spacing": [1.5, 1.5, 1.5],
      "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
      "normalization_schemes": ["CTNormalization"], "use_mask_for_norm": [false],
      "foreground_intensity_properties_per_channel": {{"0": {{"mean": 40.0, "std": 300.0,
        "percentile_00_5": -1000.0, "percentile_99_5": 1500.0}}}},
      "labels": {{"background": 0, "a": 1, "b": 2, "c": 3}}, "channel_names": {{"0": "CT"}}
    }}"#
    );
    ModelConfig::from_json_str(&json, "device-test/model.json".as_ref()).expect("valid config")
}

fn model(folds: &[u32], precision: Precision) -> NnUnetModel<Flex> {
    NnUnetModel::<Flex>::with_random_weights(config(folds), &FlexDevice, precision, 7)
        .expect("random model")
}

/// Host and device networks over the same weights.
fn networks(
    folds: &[u32],
    precision: Precision,
    device_batch: usize,
) -> (BurnTileNetwork<Flex>, BurnTileNetwork<Flex>) {
    let m = model(folds, precision);
    let host = BurnTileNetwork::new(m.clone(), FlexDevice, Folds::AllAvailable, 1).expect("host");
    let device = BurnTileNetwork::new(m, FlexDevice, Folds::AllAvailable, device_batch)
        .expect("device")
        .with_sliding_window_site(SlidingWindowSite::Device);
    (host, device)
}

/// A smooth synthetic "CT" with structure on every scale, `[1, a, b, c]`.
fn ct(shape: [usize; 3]) -> Array4<f32> {
    Array4::from_shape_fn((1, shape[0], shape[1], shape[2]), |(_, i, j, k)| {
        let (x, y, z) = (i as f32, j as f32, k as f32);
        300.0 * (0.4 * x).sin() * (0.3 * y + 0.2 * z).cos() + 200.0 * (0.15 * (x + y - z)).sin()
            - 100.0
    })
}

/// The normalised image the sliding window sees (CT normalisation of the test config).
fn normalised(shape: [usize; 3]) -> Array4<f32> {
    ct(shape).mapv(|v| (v.clamp(-1000.0, 1500.0) - 40.0) / 300.0)
}

fn settings(accumulation: AccumulationPrecision) -> PredictorSettings {
    let mut s = predictor_settings(&config(&[0])).expect("settings");
    s.accumulation = accumulation;
    s.step_size = 0.5;
    s
}

fn device_logits(
    network: &BurnTileNetwork<Flex>,
    image: ArrayView4<f32>,
    settings: &PredictorSettings,
) -> Array4<f32> {
    let accumulation = effective_accumulation(settings.accumulation, network);
    let logits = fold_averaged_logits_on_device::<Flex, _>(
        network,
        &FlexDevice,
        image,
        ImageIntensities::Normalized,
        settings,
        accumulation,
        &NoTileProgress,
    )
    .expect("device sliding window");
    logits_to_host(logits).expect("logits to host")
}

fn assert_bit_identical(host: &Array4<f32>, device: &Array4<f32>, what: &str) {
    assert_eq!(host.shape(), device.shape(), "{what}: shapes");
    let differing = host
        .iter()
        .zip(device.iter())
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    let max = host
        .iter()
        .zip(device.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert_eq!(
        differing,
        0,
        "{what}: {differing} of {} logits differ (max |diff| {max})",
        host.len()
    );
}

#[test]
fn device_logits_equal_the_host_accumulator_bit_for_bit() {
    // 2 folds, tiles overlapping on every axis (step 0.5), padding on axis 0 (6 < 8).
    let image = normalised([6, 27, 21]);
    for (accumulation, precision) in [
        (AccumulationPrecision::Fp16, Precision::F32),
        (AccumulationPrecision::Fp32, Precision::F32),
        (AccumulationPrecision::Fp16, Precision::F16),
        (AccumulationPrecision::Fp16Autocast, Precision::F32),
    ] {
        let (host, device) = networks(&[0, 1], precision, 3);
        let s = settings(accumulation);
        let expected = predict_logits(image.view(), &s, &host, &NoTileProgress).expect("host");
        let got = device_logits(&device, image.view(), &s);
        let what = format!("{accumulation:?} with an {precision} network");
        assert_bit_identical(&expected, &got, &what);
        // The fp16 modes really are fp16: every value is an fp16 number.
        if accumulation != AccumulationPrecision::Fp32 {
            assert!(got
                .iter()
                .all(|&v| half::f16::from_f32(v).to_f32().to_bits() == v.to_bits()));
        }
        // The device argmax is the host argmax.
        let labels_device = argmax_on_device(
            burn::tensor::Tensor::<Flex, 4>::from_data(
                burn::tensor::TensorData::new(got.iter().copied().collect(), got.shape().to_vec()),
                &FlexDevice,
            )
            .cast(burn::tensor::DType::F16),
        );
        let labels_device =
            totalsegmentator::predictor::device::labels_to_host(labels_device).expect("labels");
        if accumulation != AccumulationPrecision::Fp32 {
            assert_eq!(
                labels_device,
                argmax_channels(expected.view()).expect("argmax"),
                "{what}"
            );
        }
    }
}

#[test]
fn device_argmax_breaks_ties_and_nans_as_torch_does() {
    // 5 classes over 4x3x7 voxels: values from a few levels, so many voxels tie, and NaNs in
    // every channel position (first, middle, last, several in one voxel, all channels).
    let (classes, shape) = (5, [4, 3, 7]);
    let voxels = shape.iter().product::<usize>();
    let mut logits = Array4::<f32>::from_shape_fn((classes, shape[0], shape[1], shape[2]), |i| {
        ((i.0 * 7 + i.1 * 5 + i.2 * 3 + i.3) % 4) as f32 - 1.5
    });
    for (n, value) in logits.iter_mut().enumerate() {
        let (class, voxel) = (n / voxels, n % voxels);
        if voxel % 5 == class || (voxel % 11 == 0) || (voxel % 7 == 3 && class >= 2) {
            *value = f32::NAN;
        }
    }
    let expected = argmax_channels(logits.view()).expect("argmax");
    for dtype in [burn::tensor::DType::F32, burn::tensor::DType::F16] {
        let on_device = burn::tensor::Tensor::<Flex, 4>::from_data(
            burn::tensor::TensorData::new(
                logits.iter().copied().collect(),
                logits.shape().to_vec(),
            ),
            &FlexDevice,
        )
        .cast(dtype);
        let got = totalsegmentator::predictor::device::labels_to_host(argmax_on_device(on_device))
            .expect("labels");
        assert_eq!(got, expected, "{dtype:?}");
    }
    // The case is not trivial: NaNs win some voxels, ties others.
    assert!(expected.iter().any(|&l| l == 0) && expected.iter().any(|&l| l == 4));
}

#[test]
fn batch_size_does_not_change_the_device_sums() {
    let image = normalised([9, 20, 33]);
    let s = settings(AccumulationPrecision::Fp16);
    let (_, one) = networks(&[0], Precision::F32, 1);
    let (_, five) = networks(&[0], Precision::F32, 5);
    let a = device_logits(&one, image.view(), &s);
    let b = device_logits(&five, image.view(), &s);
    assert_bit_identical(&a, &b, "batch 1 vs batch 5");
}

#[test]
fn predict_labels_is_the_same_on_device_and_host() {
    // Labels through the whole predictor (crop, normalisation, device argmax, uncrop), with a
    // zero border the non-zero crop removes; 3 folds averaged in fp16.
    let mut image = ct([14, 23, 18]);
    image.slice_mut(ndarray::s![.., .., 0..2, ..]).fill(0.0);
    let (host, device) = networks(&[0, 1, 2], Precision::F32, 4);
    let s = settings(AccumulationPrecision::Fp16);
    let zooms = [1.5, 1.5, 1.5];
    let a = predict_labels(image.view(), zooms, &s, &host, &NoTileProgress).expect("host");
    let b = predict_labels(image.view(), zooms, &s, &device, &NoTileProgress).expect("device");
    assert_eq!(a.dim(), (14, 23, 18));
    assert_eq!(a, b);
    // Not a degenerate map: several classes occur.
    let mut seen = [false; 4];
    a.iter().for_each(|&l| seen[l as usize] = true);
    assert!(seen.iter().filter(|&&s| s).count() >= 2, "{seen:?}");
}

#[test]
fn resampled_predictions_bring_the_logits_back_for_host_resampling() {
    // The image is at 2.0 mm, the model at 1.5 mm: the device returns logits, the host
    // resamples them back and takes the argmax, as on the host path.
    let image = ct([10, 14, 12]);
    let (host, device) = networks(&[0], Precision::F32, 2);
    let s = settings(AccumulationPrecision::Fp16);
    let zooms = [2.0, 2.0, 2.0];
    let a = predict_labels(image.view(), zooms, &s, &host, &NoTileProgress).expect("host");
    let b = predict_labels(image.view(), zooms, &s, &device, &NoTileProgress).expect("device");
    assert_eq!(a.dim(), (10, 14, 12));
    assert_eq!(a, b);
}

#[test]
fn only_the_device_site_offers_a_device_sliding_window() {
    let (host, device) = networks(&[0], Precision::F32, 1);
    assert!(host.device_sliding_window().is_none());
    assert!(device.device_sliding_window().is_some());
    // An f16 network's fp16 sums follow nnU-Net's autocast arithmetic.
    let (half_host, _) = networks(&[0], Precision::F16, 1);
    assert_eq!(
        effective_accumulation(AccumulationPrecision::Fp16, &half_host),
        AccumulationPrecision::Fp16Autocast
    );
    assert_eq!(
        effective_accumulation(AccumulationPrecision::Fp32, &half_host),
        AccumulationPrecision::Fp32
    );
    assert_eq!(
        effective_accumulation(AccumulationPrecision::Fp16, &host),
        AccumulationPrecision::Fp16
    );
}

/// Class 1's logit is the intensity times 3e4: fp16 sums overflow on the brighter voxels.
struct Loud;

impl totalsegmentator::predictor::NetworkShape for Loud {
    fn num_classes(&self) -> usize {
        2
    }
    fn num_folds(&self) -> usize {
        1
    }
    fn batch_size(&self) -> usize {
        2
    }
}

impl TileNetwork for Loud {
    fn predict_tiles(
        &self,
        _: usize,
        tiles: ndarray::ArrayView5<f32>,
    ) -> Result<ndarray::Array5<f32>, totalsegmentator::SegmentError> {
        let (n, _, a, b, c) = tiles.dim();
        let mut out = ndarray::Array5::<f32>::zeros((n, 2, a, b, c));
        out.index_axis_mut(ndarray::Axis(1), 1)
            .assign(&tiles.index_axis(ndarray::Axis(1), 0).mapv(|v| v * 3e4));
        Ok(out)
    }
}

impl totalsegmentator::predictor::device::DeviceForward<Flex> for Loud {
    fn forward(
        &self,
        _: usize,
        tiles: burn::tensor::Tensor<Flex, 5>,
    ) -> Result<burn::tensor::Tensor<Flex, 5>, totalsegmentator::SegmentError> {
        let loud = tiles.clone().mul_scalar(3e4);
        Ok(burn::tensor::Tensor::cat(vec![tiles.zeros_like(), loud], 1))
    }
}

#[test]
fn infinite_fp16_sums_are_the_same_error_on_device_and_host() {
    let image = normalised([9, 20, 33]);
    let s = settings(AccumulationPrecision::Fp16);
    let host = predict_logits(image.view(), &s, &Loud, &NoTileProgress)
        .expect_err("the host's fp16 sums overflow");
    let device = fold_averaged_logits_on_device::<Flex, _>(
        &Loud,
        &FlexDevice,
        image.view(),
        ImageIntensities::Normalized,
        &s,
        AccumulationPrecision::Fp16,
        &NoTileProgress,
    )
    .expect_err("the device's fp16 sums overflow");
    let message = host.to_string();
    assert!(message.contains("infinite"), "{message}");
    assert_eq!(device.to_string(), message);
    // Not every logit: the count is the overflowing ones only.
    let count: usize = message
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("a count");
    assert!(count > 0 && count < image.len(), "{count}");
}
