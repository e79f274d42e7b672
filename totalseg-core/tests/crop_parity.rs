//! Parity of cropping with TotalSegmentator's `crop_to_mask` / `undo_crop` on
//! `fixtures/resample/crop.json` (made by `tools/fixtures/make_resample_fixtures.py`).

use ndarray::Array3;
use serde_json::Value;
use totalseg_core::crop::{crop_to_mask, nonzero_bbox, undo_crop, BoundingBox, CropError};

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/resample/crop.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("crop.json")).expect("json")
}

fn arr3<T>(v: &Value, f: impl Fn(&Value) -> T) -> [T; 3] {
    let a = v.as_array().unwrap();
    [f(&a[0]), f(&a[1]), f(&a[2])]
}

fn affine(v: &Value) -> [[f64; 4]; 4] {
    let rows = v.as_array().unwrap();
    std::array::from_fn(|r| {
        let row = rows[r].as_array().unwrap();
        std::array::from_fn(|c| row[c].as_f64().unwrap())
    })
}

#[test]
fn crop_to_mask_and_undo_crop_match_totalsegmentator() {
    let f = fixture();
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let shape = arr3(&c["shape"], |v| v.as_u64().unwrap() as usize);
        let image_vals: Vec<i16> = c["image"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as i16)
            .collect();
        let image = Array3::from_shape_vec(shape, image_vals).unwrap();
        let mut mask = Array3::<u8>::zeros(shape);
        for v in c["mask_voxels"].as_array().unwrap() {
            let v: Vec<usize> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            mask[[v[0], v[1], v[2]]] = v[3] as u8;
        }
        let aff = affine(&c["affine"]);
        let zooms = arr3(&c["zooms"], |v| v.as_f64().unwrap());
        let addon = arr3(&c["addon_mm"], |v| v.as_f64().unwrap());
        let (cropped, cropped_affine, bbox) =
            crop_to_mask(image.view(), &aff, zooms, mask.view(), addon).unwrap();

        let want_bbox: Vec<[usize; 2]> = c["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                [
                    b[0].as_u64().unwrap() as usize,
                    b[1].as_u64().unwrap() as usize,
                ]
            })
            .collect();
        let want = BoundingBox {
            start: [want_bbox[0][0], want_bbox[1][0], want_bbox[2][0]],
            end: [want_bbox[0][1], want_bbox[1][1], want_bbox[2][1]],
        };
        assert_eq!(bbox, want, "{name}: bbox");
        let want_shape = arr3(&c["cropped_shape"], |v| v.as_u64().unwrap() as usize);
        assert_eq!(cropped.shape(), &want_shape[..], "{name}: cropped shape");
        let want_affine = affine(&c["cropped_affine"]);
        for r in 0..4 {
            for col in 0..4 {
                assert!(
                    (cropped_affine[r][col] - want_affine[r][col]).abs() <= 1e-6,
                    "{name}: affine"
                );
            }
        }
        for ((i, j, k), &v) in cropped.indexed_iter() {
            assert_eq!(
                v,
                image[[i + bbox.start[0], j + bbox.start[1], k + bbox.start[2]]],
                "{name}"
            );
        }
        let back = undo_crop(cropped.view(), shape, &bbox).unwrap();
        for ((i, j, k), &v) in back.indexed_iter() {
            let inside =
                (0..3).all(|a| [i, j, k][a] >= bbox.start[a] && [i, j, k][a] < bbox.end[a]);
            assert_eq!(
                v,
                if inside { image[[i, j, k]] } else { 0 },
                "{name}: undo_crop at {i},{j},{k}"
            );
        }
    }
}

#[test]
fn nonzero_bbox_is_half_open_and_full_when_empty() {
    let mut mask = Array3::from_elem((6, 7, 8), false);
    assert_eq!(nonzero_bbox(mask.view()), BoundingBox::full([6, 7, 8]));
    mask[[5, 0, 3]] = true;
    mask[[2, 6, 7]] = true;
    assert_eq!(
        nonzero_bbox(mask.view()),
        BoundingBox {
            start: [2, 0, 3],
            end: [6, 7, 8]
        }
    );
}

#[test]
fn crop_errors_are_typed() {
    let image = Array3::<i16>::zeros((4, 4, 4));
    let mask = Array3::<u8>::zeros((4, 4, 5));
    let id = [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    assert!(matches!(
        crop_to_mask(image.view(), &id, [1.0; 3], mask.view(), [3.0; 3]),
        Err(CropError::ShapeMismatch { .. })
    ));
    let mask = Array3::<u8>::zeros((4, 4, 4));
    assert!(matches!(
        crop_to_mask(image.view(), &id, [1.0, 0.0, 1.0], mask.view(), [3.0; 3]),
        Err(CropError::InvalidZoom { axis: 1, .. })
    ));
    let bbox = BoundingBox {
        start: [0, 0, 0],
        end: [2, 2, 5],
    };
    assert!(matches!(
        undo_crop(image.view(), [4, 4, 4], &bbox),
        Err(CropError::BoxOutsideImage { .. })
    ));
    let bbox = BoundingBox {
        start: [0, 0, 0],
        end: [2, 2, 2],
    };
    assert!(matches!(
        undo_crop(image.view(), [4, 4, 4], &bbox),
        Err(CropError::ShapeMismatch { .. })
    ));
}
