//! The networks reproduce PyTorch's logits on every network fixture
//! (fixtures/networks, made by tools/fixtures/make_network_fixtures.py with nnU-Net's own
//! network construction).
//!
//! Reduced precisions are judged against what PyTorch itself achieves in fp16 (CPU autocast,
//! `logits_f16` in the fixture): with logits of magnitude 5-9, fp16 activations alone put
//! PyTorch 1.2e-2..1.8e-2 away from its fp32 logits, so an absolute 1e-2 bound would fail the
//! reference implementation too.

mod common;

use burn_flex::{Flex, FlexDevice};
use common::{
    fixture_folds, max_abs_diff, model_dir, read_reference, reference_path, FileDtype, RefTensor,
    FIXTURES,
};
use totalseg_nn::{NnUnetModel, Precision};

/// How far one fold's logits are from PyTorch fp32, next to PyTorch fp16's own distance.
struct FoldError {
    fold: u32,
    ours: f32,
    pytorch_f16: f32,
    max_abs_logit: f32,
}

fn max_abs_between(a: &RefTensor, b: &RefTensor) -> f32 {
    a.values
        .iter()
        .zip(&b.values)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn fold_errors(name: &str, file: FileDtype, precision: Precision) -> Vec<FoldError> {
    let dir = model_dir(name, file);
    let model = NnUnetModel::<Flex>::load(dir.path(), &FlexDevice, precision)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let folds = fixture_folds(name);
    assert_eq!(model.folds().len(), folds.len());
    folds
        .iter()
        .enumerate()
        .map(|(index, &fold)| {
            assert_eq!(model.folds()[index].fold(), fold);
            let reference = read_reference(&reference_path(name, fold, folds[0]));
            let logits = model
                .forward_logits(index, reference["input"].to_burn())
                .unwrap_or_else(|e| panic!("{name} fold {fold}: {e}"));
            let expected = &reference["logits"];
            FoldError {
                fold,
                ours: max_abs_diff(logits, expected),
                pytorch_f16: max_abs_between(&reference["logits_f16"], expected),
                max_abs_logit: expected.values.iter().fold(0.0, |m, v| m.max(v.abs())),
            }
        })
        .collect()
}

/// Checks `accept` on every fold of every fixture, reporting all failures at once.
fn check_all(
    file: FileDtype,
    precision: Precision,
    what: &str,
    accept: impl Fn(&FoldError) -> bool,
) {
    let mut failures = Vec::new();
    for name in FIXTURES {
        for e in fold_errors(name, file, precision) {
            if !accept(&e) {
                failures.push(format!(
                    "{name} fold {}: max abs error {:e} (PyTorch fp16: {:e}, max |logit| {})",
                    e.fold, e.ours, e.pytorch_f16, e.max_abs_logit
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{what}:\n{}", failures.join("\n"));
}

#[test]
fn f32_matches_pytorch_within_1e_4() {
    check_all(FileDtype::F32, Precision::F32, "f32 vs PyTorch fp32", |e| {
        e.ours <= 1e-4
    });
}

#[test]
fn f16_is_as_close_to_fp32_as_pytorch_fp16() {
    check_all(FileDtype::F32, Precision::F16, "f16 vs PyTorch fp32", |e| {
        e.ours <= 1.25 * e.pytorch_f16 && e.ours <= 1e-2 * e.max_abs_logit
    });
}

#[test]
fn bf16_error_stays_within_its_coarser_rounding() {
    // bf16 keeps 3 fewer mantissa bits than fp16: 8x the rounding step.
    check_all(
        FileDtype::F32,
        Precision::BF16,
        "bf16 vs PyTorch fp32",
        |e| e.ours <= 10.0 * e.pytorch_f16,
    );
}

#[test]
fn f16_weight_file_computed_in_f32_beats_full_fp16() {
    // Rounding only the weights must cost less than rounding weights and activations.
    check_all(
        FileDtype::F16,
        Precision::F32,
        "f16 weights, f32 compute",
        |e| e.ours <= e.pytorch_f16 && e.ours > 0.0,
    );
}

#[test]
fn different_folds_give_different_logits() {
    // Guards against every fold silently loading fold 0's tensors.
    let name = "plain_aniso_2folds";
    let dir = model_dir(name, FileDtype::F32);
    let model = NnUnetModel::<Flex>::load(dir.path(), &FlexDevice, Precision::F32).unwrap();
    let reference = read_reference(&reference_path(name, 0, 0));
    let fold1 = model
        .forward_logits(1, reference["input"].to_burn())
        .unwrap();
    assert!(max_abs_diff(fold1, &reference["logits"]) > 0.1);
}

#[test]
fn random_weights_model_runs_every_fold() {
    let config = totalseg_nn::ModelConfig::from_file(
        &common::fixture_dir("resenc").join("expected_model.json"),
    )
    .unwrap();
    let model =
        NnUnetModel::<Flex>::with_random_weights(config, &FlexDevice, Precision::F32, 1).unwrap();
    let input = burn::tensor::Tensor::<Flex, 5>::ones([1, 1, 16, 16, 24], &FlexDevice);
    let logits = model.forward_logits(0, input).unwrap();
    assert_eq!(logits.dims(), [1, 3, 16, 16, 24]);
    let values = logits.into_data().to_vec::<f32>().unwrap();
    assert!(values.iter().all(|v| v.is_finite()));
}
