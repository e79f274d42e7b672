//! Normalisation and crop_to_nonzero parity with nnU-Net 2.8.1 (fixtures from
//! tools/fixtures/make_core_fixtures.py), compared bit for bit.

use ndarray::{Array3, Array4};
use serde_json::Value;
use totalseg_core::nonzero_crop::{crop_to_nonzero, insert_crop_into_image, BoundingBox};
use totalseg_core::normalize::{
    ct_normalize, normalize_channel, zscore_normalize, IntensityProperties, NormalizationScheme,
    NormalizeError,
};

fn fixture() -> Value {
    let path = format!(
        "{}/../fixtures/core/normalize.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn f32_bits(v: &Value) -> Vec<u32> {
    let s = v.as_str().expect("hex string");
    (0..s.len() / 8)
        .map(|i| u32::from_str_radix(&s[8 * i..8 * i + 8], 16).expect("hex"))
        .collect()
}

fn f32s(v: &Value) -> Vec<f32> {
    f32_bits(v).into_iter().map(f32::from_bits).collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn bits_of(a: impl IntoIterator<Item = f32>) -> Vec<u32> {
    a.into_iter().map(f32::to_bits).collect()
}

#[test]
fn ct_normalization_is_bit_identical() {
    let f = &fixture()["ct"];
    let shape = usizes(&f["shape"]);
    let mut image =
        Array3::from_shape_vec((shape[0], shape[1], shape[2]), f32s(&f["input"])).unwrap();
    let props: IntensityProperties = serde_json::from_value(f["props"].clone()).unwrap();
    ct_normalize(&mut image, &props);
    assert_eq!(bits_of(image.iter().copied()), f32_bits(&f["expected"]));
}

#[test]
fn ct_normalization_through_scheme_name() {
    let f = &fixture()["ct"];
    let shape = usizes(&f["shape"]);
    let mut image =
        Array3::from_shape_vec((shape[0], shape[1], shape[2]), f32s(&f["input"])).unwrap();
    let props: IntensityProperties = serde_json::from_value(f["props"].clone()).unwrap();
    let scheme = NormalizationScheme::from_plans_name("CTNormalization").unwrap();
    normalize_channel(&mut image, scheme, Some(&props), false, None).unwrap();
    assert_eq!(bits_of(image.iter().copied()), f32_bits(&f["expected"]));
    assert!(matches!(
        normalize_channel(&mut image, scheme, None, false, None),
        Err(NormalizeError::MissingIntensityProperties)
    ));
    assert!(NormalizationScheme::from_plans_name("Foo").is_err());
}

#[test]
fn zscore_without_mask_is_bit_identical() {
    let f = &fixture()["zscore"];
    let shape = usizes(&f["shape"]);
    let mut image =
        Array3::from_shape_vec((shape[0], shape[1], shape[2]), f32s(&f["input"])).unwrap();
    zscore_normalize(&mut image, None).unwrap();
    assert_eq!(
        bits_of(image.iter().copied()),
        f32_bits(&f["expected_plain"])
    );
}

#[test]
fn zscore_with_mask_is_bit_identical() {
    let f = &fixture()["zscore"];
    let shape = usizes(&f["shape"]);
    let dims = (shape[0], shape[1], shape[2]);
    let mut image = Array3::from_shape_vec(dims, f32s(&f["input"])).unwrap();
    let mask_bits: Vec<bool> = f["mask"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| c == '1')
        .collect();
    let mask = Array3::from_shape_vec(dims, mask_bits).unwrap();
    let scheme = NormalizationScheme::from_plans_name("ZScoreNormalization").unwrap();
    normalize_channel(&mut image, scheme, None, true, Some(mask.view())).unwrap();
    assert_eq!(
        bits_of(image.iter().copied()),
        f32_bits(&f["expected_masked"])
    );
}

#[test]
fn crop_to_nonzero_matches_nnunet() {
    let f = &fixture()["crop"];
    let shape = usizes(&f["shape"]);
    let data = Array4::from_shape_vec((shape[0], shape[1], shape[2], shape[3]), f32s(&f["input"]))
        .unwrap();
    let crop = crop_to_nonzero(data.view());
    let bbox: Vec<Vec<usize>> = f["bbox"].as_array().unwrap().iter().map(usizes).collect();
    for (a, expected) in bbox.iter().enumerate() {
        assert_eq!(
            vec![crop.bbox.start[a], crop.bbox.end[a]],
            *expected,
            "axis {a}"
        );
    }
    let seg: Vec<i8> = f["seg"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap() as i8)
        .collect();
    assert_eq!(crop.seg.iter().copied().collect::<Vec<_>>(), seg);
    assert!(seg.contains(&-1) && seg.contains(&0));
    assert_eq!(bits_of(crop.data.iter().copied()), f32_bits(&f["cropped"]));
    assert_eq!(crop.shape_before_cropping, [shape[1], shape[2], shape[3]]);

    let empty = crop_to_nonzero(Array4::<f32>::zeros((1, 3, 4, 5)).view());
    let expected: Vec<Vec<usize>> = f["empty_bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(usizes)
        .collect();
    assert_eq!(expected, vec![vec![0, 3], vec![0, 4], vec![0, 5]]);
    assert_eq!(
        empty.bbox,
        BoundingBox {
            start: [0, 0, 0],
            end: [3, 4, 5]
        }
    );
}

#[test]
fn insert_crop_restores_the_box() {
    let crop = Array3::from_elem((2, 3, 1), 7u8);
    let bbox = BoundingBox {
        start: [1, 0, 4],
        end: [3, 3, 5],
    };
    let full = insert_crop_into_image(crop.view(), bbox, [4, 3, 6], 0).unwrap();
    assert_eq!(full.iter().filter(|&&v| v == 7).count(), 6);
    assert_eq!(full[[1, 0, 4]], 7);
    assert_eq!(full[[0, 0, 4]], 0);
    assert!(insert_crop_into_image(crop.view(), bbox, [2, 3, 6], 0).is_err());
}
