//! Sliding-window parity with nnU-Net 2.8.1: step positions, padding, gaussian importance
//! maps and the fp16 accumulation run through nnU-Net's own `predict_sliding_window_return_logits`
//! with a fake network (fixtures from tools/fixtures/make_core_fixtures.py).

use ndarray::{Array4, Axis};
use serde_json::Value;
use totalseg_core::sliding_window::{
    add_fold_logits, average_fold_logits, compute_steps, gaussian_importance_map,
    AccumulationPrecision, LogitAccumulator, SlidingWindowError, SlidingWindowPlan,
};

fn fixture(name: &str) -> Value {
    let path = format!("{}/../fixtures/core/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn f16_bits(v: &Value) -> Vec<u16> {
    let s = v.as_str().expect("hex string");
    (0..s.len() / 4)
        .map(|i| u16::from_str_radix(&s[4 * i..4 * i + 4], 16).expect("hex"))
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("int") as usize)
        .collect()
}

fn shape3(v: &Value) -> [usize; 3] {
    usizes(v).try_into().expect("3 entries")
}

#[test]
fn example_size_197_patch_128_step_half() {
    assert_eq!(compute_steps(197, 128, 0.5), vec![0, 34, 69]);
}

#[test]
fn steps_match_nnunet() {
    let f = fixture("sliding_window_steps.json");
    let cases = f["steps"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let size = case["size"].as_u64().unwrap() as usize;
        let patch = case["patch"].as_u64().unwrap() as usize;
        let step = case["step"].as_f64().unwrap();
        assert_eq!(
            compute_steps(size, patch, step),
            usizes(&case["steps"]),
            "size {size} patch {patch} step {step}"
        );
    }
}

#[test]
fn padding_matches_pad_nd_image() {
    let f = fixture("sliding_window_steps.json");
    for case in f["padding"].as_array().unwrap() {
        let plan =
            SlidingWindowPlan::new(shape3(&case["shape"]), shape3(&case["patch"]), 0.5).unwrap();
        assert_eq!(plan.padded_shape(), shape3(&case["padded"]));
        assert_eq!(plan.pad_below(), shape3(&case["pad_below"]));
    }
}

#[test]
fn tiles_iterate_axis0_outermost() {
    let plan = SlidingWindowPlan::new([20, 10, 12], [8, 8, 8], 0.5).unwrap();
    let tiles: Vec<[usize; 3]> = plan.tiles().collect();
    assert_eq!(plan.steps()[0], vec![0, 4, 8, 12]);
    assert_eq!(plan.steps()[1], vec![0, 2]);
    assert_eq!(plan.steps()[2], vec![0, 4]);
    assert_eq!(tiles.len(), plan.num_tiles());
    assert_eq!(
        &tiles[..5],
        &[[0, 0, 0], [0, 0, 4], [0, 2, 0], [0, 2, 4], [4, 0, 0]]
    );
}

#[test]
fn small_gaussian_maps_are_bit_identical() {
    let f = fixture("sliding_window_gaussian.json");
    for case in f["small"].as_array().unwrap() {
        let patch = shape3(&case["patch"]);
        let ours: Vec<u16> = gaussian_importance_map(patch)
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(ours, f16_bits(&case["bits"]), "patch {patch:?}");
    }
}

fn fnv1a64(bits: impl Iterator<Item = u16>) -> u64 {
    let mut h = 0xCBF2_9CE4_8422_2325u64;
    for v in bits {
        for b in v.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01B3);
        }
    }
    h
}

#[test]
fn large_gaussian_maps_are_bit_identical() {
    let f = fixture("sliding_window_gaussian.json");
    for case in f["large"].as_array().unwrap() {
        let patch = shape3(&case["patch"]);
        let map = gaussian_importance_map(patch);
        let c = patch.map(|p| p / 2);
        let line = |axis: usize| -> Vec<u16> {
            (0..patch[axis])
                .map(|i| {
                    let mut idx = c;
                    idx[axis] = i;
                    map[idx].to_bits()
                })
                .collect()
        };
        assert_eq!(line(0), f16_bits(&case["line0"]), "patch {patch:?} line 0");
        assert_eq!(line(1), f16_bits(&case["line1"]), "patch {patch:?} line 1");
        assert_eq!(line(2), f16_bits(&case["line2"]), "patch {patch:?} line 2");
        assert_eq!(vec![map[[0, 0, 0]].to_bits()], f16_bits(&case["corner"]));
        let expected: u64 = case["fnv1a64"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            fnv1a64(map.iter().map(|v| v.to_bits())),
            expected,
            "patch {patch:?} digest"
        );
    }
}

/// The fake network's logits of make_core_fixtures.py `tile_logits`, in u32 arithmetic.
fn tile_logits(tile_index: u32, num_classes: usize, patch: [usize; 3]) -> Array4<f32> {
    let n = patch.iter().product::<usize>();
    let mut out = Array4::<f32>::zeros((num_classes, patch[0], patch[1], patch[2]));
    for (c, mut channel) in out.axis_iter_mut(Axis(0)).enumerate() {
        for (v, value) in channel.iter_mut().enumerate() {
            let mut h = tile_index
                .wrapping_mul(0x9E37_79B1)
                .wrapping_add((c as u32).wrapping_mul(0x85EB_CA77))
                .wrapping_add((v as u32).wrapping_mul(0xC2B2_AE3D))
                .wrapping_add(0x27D4_EB2F);
            h ^= h >> 15;
            h = h.wrapping_mul(0x2C1B_3C6D);
            h ^= h >> 12;
            *value = ((h >> 8) as f32 - 8_388_608.0) / 262_144.0;
        }
        assert_eq!(channel.len(), n);
    }
    out
}

#[test]
fn fp16_accumulation_is_bit_identical_to_nnunet() {
    let f = fixture("sliding_window_accumulation.json");
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let shape = shape3(&case["shape"]);
        let patch = shape3(&case["patch"]);
        let classes = case["classes"].as_u64().unwrap() as usize;
        let step = case["step"].as_f64().unwrap();
        let precision = match case["network_dtype"].as_str().unwrap() {
            "float16" => AccumulationPrecision::Fp16Autocast,
            _ => AccumulationPrecision::Fp16,
        };
        let plan = SlidingWindowPlan::new(shape, patch, step).unwrap();
        assert_eq!(plan.num_tiles() as u64, case["tiles"].as_u64().unwrap());
        let mut acc = LogitAccumulator::new(classes, &plan, precision).unwrap();
        for (t, origin) in plan.tiles().enumerate() {
            acc.add_tile(origin, tile_logits(t as u32, classes, patch).view())
                .unwrap();
        }
        let ours: Vec<u16> = acc
            .finish_f16()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let expected = f16_bits(&case["bits"]);
        let differing = ours.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(ours.len(), expected.len());
        assert_eq!(
            differing,
            0,
            "{precision:?} shape {shape:?}: {differing} of {} values differ",
            ours.len()
        );
    }
}

#[test]
fn autocast_and_f32_modes_differ_from_default_fp16() {
    // Guards against the modes silently sharing one code path.
    let plan = SlidingWindowPlan::new([11, 5, 17], [6, 8, 10], 0.5).unwrap();
    let run = |precision| {
        let mut acc = LogitAccumulator::new(3, &plan, precision).unwrap();
        for (t, origin) in plan.tiles().enumerate() {
            acc.add_tile(origin, tile_logits(t as u32, 3, [6, 8, 10]).view())
                .unwrap();
        }
        acc.finish().unwrap()
    };
    let half = run(AccumulationPrecision::Fp16);
    let autocast = run(AccumulationPrecision::Fp16Autocast);
    let single = run(AccumulationPrecision::Fp32);
    assert_ne!(half, autocast);
    assert_ne!(half, single);
    // The modes differ by accumulated fp16 rounding only: sums reach a few hundred (fp16
    // step 0.25-0.5 there), logits lie in [-32, 32).
    let diffs: Vec<f32> = half
        .iter()
        .zip(single.iter())
        .map(|(a, b)| (a - b).abs())
        .collect();
    let max_diff = diffs.iter().copied().fold(0.0f32, f32::max);
    let mean_diff = diffs.iter().sum::<f32>() / diffs.len() as f32;
    assert!(
        max_diff < 1.0 && mean_diff < 0.05,
        "max diff {max_diff}, mean {mean_diff}"
    );
}

#[test]
fn single_tile_returns_the_tile_in_f32_mode() {
    let plan = SlidingWindowPlan::new([6, 8, 10], [6, 8, 10], 0.5).unwrap();
    let tile = tile_logits(3, 2, [6, 8, 10]);
    let mut acc = LogitAccumulator::new(2, &plan, AccumulationPrecision::Fp32).unwrap();
    acc.add_tile([0, 0, 0], tile.view()).unwrap();
    let out = acc.finish().unwrap();
    for (a, b) in out.iter().zip(tile.iter()) {
        assert!(
            (a - b).abs() <= 4.0 * f32::EPSILON * b.abs().max(1.0),
            "{a} vs {b}"
        );
    }
}

#[test]
fn fp16_overflow_is_reported() {
    let plan = SlidingWindowPlan::new([4, 4, 4], [4, 4, 4], 0.5).unwrap();
    let mut acc = LogitAccumulator::new(1, &plan, AccumulationPrecision::Fp16).unwrap();
    acc.add_tile([0, 0, 0], Array4::from_elem((1, 4, 4, 4), 1.0e5).view())
        .unwrap();
    assert!(matches!(
        acc.finish(),
        Err(SlidingWindowError::InfiniteLogits { .. })
    ));
}

#[test]
fn wrong_tile_shape_and_origin_are_errors() {
    let plan = SlidingWindowPlan::new([9, 9, 9], [4, 4, 4], 0.5).unwrap();
    let mut acc = LogitAccumulator::new(2, &plan, AccumulationPrecision::Fp16).unwrap();
    let bad = Array4::<f32>::zeros((3, 4, 4, 4));
    assert!(matches!(
        acc.add_tile([0, 0, 0], bad.view()),
        Err(SlidingWindowError::TileShapeMismatch { .. })
    ));
    let good = Array4::<f32>::zeros((2, 4, 4, 4));
    assert!(matches!(
        acc.add_tile([6, 0, 0], good.view()),
        Err(SlidingWindowError::TileOutOfBounds { .. })
    ));
    assert!(LogitAccumulator::new(0, &plan, AccumulationPrecision::Fp16).is_err());
}

#[test]
fn padding_is_removed_and_pad_image_places_the_image() {
    let plan = SlidingWindowPlan::new([3, 9, 5], [6, 4, 8], 0.5).unwrap();
    assert_eq!(plan.padded_shape(), [6, 9, 8]);
    let image = Array4::from_shape_fn((1, 3, 9, 5), |(_, a, b, c)| {
        (a * 100 + b * 10 + c) as f32 + 1.0
    });
    let padded = plan.pad_image(image.view()).unwrap();
    assert_eq!(padded[[0, 1, 0, 1]], 1.0);
    assert_eq!(padded[[0, 0, 0, 0]], 0.0);
    assert_eq!(padded.sum(), image.sum());
    let mut acc = LogitAccumulator::new(1, &plan, AccumulationPrecision::Fp16).unwrap();
    for origin in plan.tiles() {
        let tile = padded.slice(plan.tile_slice(origin)).to_owned();
        acc.add_tile(origin, tile.view()).unwrap();
    }
    let out = acc.finish().unwrap();
    assert_eq!(out.shape(), image.shape());
    for (a, b) in out.iter().zip(image.iter()) {
        assert!((a - b).abs() <= b.abs() * 2e-3, "{a} vs {b}");
    }
}

#[test]
fn fold_average_is_bit_identical_to_nnunet() {
    let f = fixture("sliding_window_accumulation.json");
    let d = usizes(&f["folds"]["shape"]);
    let to_array = |v: &Value| {
        let values: Vec<half::f16> = f16_bits(v).into_iter().map(half::f16::from_bits).collect();
        Array4::from_shape_vec((d[0], d[1], d[2], d[3]), values).unwrap()
    };
    let inputs: Vec<Array4<half::f16>> = f["folds"]["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(to_array)
        .collect();
    let mut total = inputs[0].clone();
    for fold in &inputs[1..] {
        add_fold_logits(&mut total, fold.view()).unwrap();
    }
    average_fold_logits(&mut total, inputs.len());
    assert_eq!(total, to_array(&f["folds"]["expected"]));
    let wrong = Array4::from_elem((1, 1, 1, 1), half::f16::ZERO);
    assert!(add_fold_logits(&mut total, wrong.view()).is_err());
}
