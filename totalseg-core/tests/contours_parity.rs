//! `find_contours` against OpenCV 5.0's `findContours(mask, RETR_TREE, CHAIN_APPROX_SIMPLE)`
//! on the masks of fixtures/contours (tools/fixtures/make_contour_fixtures.py): the same
//! points in the same order, the same contour order and the same hierarchy.

use ndarray::Array2;
use serde_json::Value;
use totalseg_core::contours::{find_contours, Contour};

/// OpenCV's hierarchy rows `[next, previous, first child, parent]` for contours in order.
fn hierarchy(contours: &[Contour]) -> Vec<[i64; 4]> {
    let n = contours.len();
    let siblings = |i: usize| -> Vec<usize> {
        (0..n)
            .filter(|&j| contours[j].parent == contours[i].parent)
            .collect()
    };
    (0..n)
        .map(|i| {
            let sib = siblings(i);
            let at = sib.iter().position(|&j| j == i).expect("itself");
            let next = sib.get(at + 1).map_or(-1, |&j| j as i64);
            let prev = if at == 0 { -1 } else { sib[at - 1] as i64 };
            let child = (0..n)
                .find(|&j| contours[j].parent == Some(i))
                .map_or(-1, |j| j as i64);
            let parent = contours[i].parent.map_or(-1, |p| p as i64);
            [next, prev, child, parent]
        })
        .collect()
}

#[test]
fn contours_match_opencv() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/contours/contours.json"
    );
    let fixture: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 50);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let rows: Vec<&str> = case["mask"]
            .as_array()
            .expect("mask")
            .iter()
            .map(|r| r.as_str().expect("row"))
            .collect();
        let (h, w) = (rows.len(), rows[0].len());
        let mask = Array2::from_shape_fn((h, w), |(r, c)| rows[r].as_bytes()[c] == b'1');
        let ours = find_contours(mask.view());
        let theirs: Vec<Vec<[i32; 2]>> = case["contours"]
            .as_array()
            .expect("contours")
            .iter()
            .map(|c| {
                c.as_array()
                    .expect("points")
                    .iter()
                    .map(|p| {
                        [
                            p[0].as_i64().expect("x") as i32,
                            p[1].as_i64().expect("y") as i32,
                        ]
                    })
                    .collect()
            })
            .collect();
        let points: Vec<Vec<[i32; 2]>> = ours.iter().map(|c| c.points.clone()).collect();
        assert_eq!(points, theirs, "{name}");
        let their_hierarchy: Vec<[i64; 4]> = case["hierarchy"]
            .as_array()
            .expect("hierarchy")
            .iter()
            .map(|h| std::array::from_fn(|k| h[k].as_i64().expect("index")))
            .collect();
        assert_eq!(hierarchy(&ours), their_hierarchy, "{name}");
    }
}
