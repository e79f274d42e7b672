//! Parity of the orientation code with nibabel / TotalSegmentator on
//! `fixtures/resample/orientation.json` (made by `tools/fixtures/make_resample_fixtures.py`):
//! all 48 axis codes, oblique and sheared affines, degenerate affines, `ornt_transform`.

use ndarray::Array3;
use serde_json::Value;
use totalseg_core::geometry::{
    as_closest_canonical, io_orientation, ornt_transform, undo_canonical, Affine, GeometryError,
    Orientation, OrientedAxis,
};

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/resample/orientation.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("orientation.json")).expect("json")
}

fn affine(v: &Value) -> Affine {
    let rows = v.as_array().unwrap();
    std::array::from_fn(|r| {
        let row = rows[r].as_array().unwrap();
        std::array::from_fn(|c| row[c].as_f64().unwrap())
    })
}

fn oriented(v: &Value) -> Option<OrientedAxis> {
    let pair = v.as_array()?;
    Some(OrientedAxis {
        axis: pair[0].as_u64().unwrap() as usize,
        flipped: pair[1].as_i64().unwrap() == -1,
    })
}

fn orientation(v: &Value) -> Orientation {
    let rows = v.as_array().unwrap();
    Orientation::new([0, 1, 2].map(|i| oriented(&rows[i]).unwrap())).unwrap()
}

fn assert_affine_close(name: &str, got: &Affine, want: &Affine) {
    for r in 0..4 {
        for c in 0..4 {
            assert!(
                (got[r][c] - want[r][c]).abs() <= 1e-6,
                "{name}: affine {got:?} vs {want:?}"
            );
        }
    }
}

fn input_data(f: &Value) -> Array3<i16> {
    let s = f["data_shape"].as_array().unwrap();
    let shape = (
        s[0].as_u64().unwrap() as usize,
        s[1].as_u64().unwrap() as usize,
        s[2].as_u64().unwrap() as usize,
    );
    Array3::from_shape_vec(shape, (0..60).collect()).unwrap()
}

#[test]
fn closest_canonical_and_back_match_nibabel_for_all_axis_codes() {
    let f = fixture();
    let data = input_data(&f);
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 52);
    let mut codes = std::collections::HashSet::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let aff = affine(&c["affine"]);
        let want_ornt = orientation(&c["io_orientation"]);
        let got_ornt = Orientation::from_partial(io_orientation(&aff).unwrap()).unwrap();
        assert_eq!(got_ornt, want_ornt, "{name}: io_orientation");
        assert_eq!(
            got_ornt.axis_codes(),
            c["axis_codes"].as_str().unwrap(),
            "{name}: axis codes"
        );
        codes.insert(got_ornt.axis_codes());

        let can = as_closest_canonical(data.view(), &aff).unwrap();
        let shape: Vec<usize> = c["canonical_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(can.data.shape(), &shape[..], "{name}: canonical shape");
        let want: Vec<i16> = c["canonical_data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as i16)
            .collect();
        assert_eq!(
            can.data.iter().copied().collect::<Vec<_>>(),
            want,
            "{name}: canonical data"
        );
        assert_affine_close(name, &can.affine, &affine(&c["canonical_affine"]));
        assert_eq!(can.orientation, want_ornt);
        // nibabel returns the very same image when nothing moves; we borrow.
        assert_eq!(
            can.data.is_view(),
            c["canonical_is_input"].as_bool().unwrap(),
            "{name}: shortcut"
        );
        if can.data.is_view() {
            assert_eq!(
                can.affine, aff,
                "{name}: identity keeps the affine bit for bit"
            );
        }

        let back = undo_canonical(can.data.view(), &can.affine, &aff).unwrap();
        assert_eq!(back.data, data, "{name}: undo_canonical data");
        assert_affine_close(name, &back.affine, &affine(&c["undo_affine"]));
        assert_affine_close(name, &back.affine, &aff);
    }
    assert!(
        codes.len() >= 48,
        "all 48 axis codes covered, got {}",
        codes.len()
    );
}

#[test]
fn degenerate_affines_drop_axes_like_nibabel_and_refuse_to_reorient() {
    let f = fixture();
    let data = input_data(&f);
    for c in f["degenerate"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let aff = affine(&c["affine"]);
        let got = io_orientation(&aff).unwrap();
        let want: Vec<Option<OrientedAxis>> = c["io_orientation"]
            .as_array()
            .unwrap()
            .iter()
            .map(oriented)
            .collect();
        assert_eq!(got.to_vec(), want, "{name}");
        let dropped = want.iter().position(Option::is_none).unwrap();
        assert!(matches!(
            as_closest_canonical(data.view(), &aff),
            Err(GeometryError::DroppedAxis { axis }) if axis == dropped
        ));
    }
    let mut nan = affine(&f["cases"][0]["affine"]);
    nan[1][2] = f64::NAN;
    assert!(matches!(
        io_orientation(&nan),
        Err(GeometryError::NonFiniteAffine { row: 1, col: 2, .. })
    ));
}

#[test]
fn ornt_transform_matches_nibabel() {
    let f = fixture();
    let cases = f["ornt_transform"].as_array().unwrap();
    assert!(cases.len() >= 36);
    for c in cases {
        let got = ornt_transform(&orientation(&c["start"]), &orientation(&c["end"]));
        assert_eq!(got, orientation(&c["result"]), "{c}");
    }
}

#[test]
fn orientation_rejects_non_permutations() {
    let rows = [
        OrientedAxis {
            axis: 0,
            flipped: false,
        },
        OrientedAxis {
            axis: 0,
            flipped: true,
        },
        OrientedAxis {
            axis: 2,
            flipped: false,
        },
    ];
    assert!(matches!(
        Orientation::new(rows),
        Err(GeometryError::NotAPermutation { .. })
    ));
}
