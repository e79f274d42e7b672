//! Statistics parity with TotalSegmentator 2.18's `get_basic_statistics`: the JSON text it
//! writes, byte for byte (fixtures from tools/fixtures/make_core_fixtures.py).

use ndarray::Array3;
use serde_json::Value;
use totalseg_core::statistics::{
    basic_statistics, ct_to_i16, python_float_repr, IntensityAggregation, StatisticsOptions,
};

fn fixture() -> Value {
    let path = format!(
        "{}/../fixtures/core/statistics.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Inputs {
    seg: Array3<u8>,
    ct: Array3<i16>,
    spacing: [f32; 3],
    classes: Vec<(u8, String)>,
}

fn inputs(f: &Value) -> Inputs {
    let d: Vec<usize> = f["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let shape = (d[0], d[1], d[2]);
    let seg = Array3::from_shape_vec(
        shape,
        f["seg"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect(),
    )
    .unwrap();
    let ct_f64: Vec<f64> = f["ct_f64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    let ct = Array3::from_shape_vec(shape, ct_f64.into_iter().map(ct_to_i16).collect()).unwrap();
    let hex = f["spacing"].as_str().unwrap();
    let spacing: [f32; 3] = std::array::from_fn(|i| {
        f32::from_bits(u32::from_str_radix(&hex[8 * i..8 * i + 8], 16).unwrap())
    });
    let classes = f["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c[0].as_u64().unwrap() as u8,
                c[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Inputs {
        seg,
        ct,
        spacing,
        classes,
    }
}

#[test]
fn ct_cast_truncates_like_numpy() {
    let f = fixture();
    let expected: Vec<i16> = f["ct_i16"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap() as i16)
        .collect();
    let ours: Vec<i16> = f["ct_f64"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| ct_to_i16(x.as_f64().unwrap()))
        .collect();
    assert_eq!(ours, expected);
    assert_eq!(ct_to_i16(-0.7), 0);
    assert_eq!(ct_to_i16(-1.7), -1);
}

#[test]
fn json_output_is_byte_identical_for_every_option() {
    let f = fixture();
    let inp = inputs(&f);
    let outputs = f["outputs"].as_array().unwrap();
    // exclude x metric x normalized x extra (--statistics_extra).
    assert_eq!(outputs.len(), 16);
    for case in outputs {
        let options = StatisticsOptions {
            exclude_masks_at_border: case["exclude"].as_bool().unwrap(),
            aggregation: match case["metric"].as_str().unwrap() {
                "median" => IntensityAggregation::Median,
                _ => IntensityAggregation::Mean,
            },
            normalized_intensities: case["normalized"].as_bool().unwrap(),
            extra_metrics: case["extra"].as_bool().unwrap(),
        };
        let stats = basic_statistics(
            inp.seg.view(),
            inp.ct.view(),
            inp.spacing,
            &inp.classes,
            options,
        )
        .unwrap();
        assert_eq!(
            stats.to_json_string(),
            case["json"].as_str().unwrap(),
            "{options:?}"
        );
    }
}

#[test]
fn roi_subset_keeps_class_map_order() {
    let f = fixture();
    let inp = inputs(&f);
    // get_basic_statistics filters the class map, keeping its order.
    let subset: Vec<(u8, String)> = inp
        .classes
        .iter()
        .filter(|(_, n)| n == "spleen" || n == "liver")
        .cloned()
        .collect();
    let stats = basic_statistics(
        inp.seg.view(),
        inp.ct.view(),
        inp.spacing,
        &subset,
        StatisticsOptions::default(),
    )
    .unwrap();
    assert_eq!(
        stats.to_json_string(),
        f["roi_subset_json"].as_str().unwrap()
    );
}

#[test]
fn float_repr_matches_python() {
    let f = fixture();
    for pair in f["float_repr"].as_array().unwrap() {
        let expected = pair[1].as_str().unwrap();
        // Parse Python's repr (shortest round-trip digits) with Rust's exact parser.
        let value: f64 = expected.parse().unwrap();
        assert_eq!(python_float_repr(value), expected);
    }
}

#[test]
fn example_statistics_file_round_trips_through_the_formatter() {
    // The reference output shipped with the examples: re-format its numbers and layout.
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/totalseg-examples/example_seg_fast/statistics.json"
    );
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("skipping: {path} not present");
        return;
    };
    let parsed: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    // serde_json's map sorts keys; take the file's order from its lines.
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("    \"")?.strip_suffix("\": {"))
        .collect();
    assert_eq!(names.len(), parsed.len());
    let entries: Vec<String> = names
        .iter()
        .map(|name| (name, &parsed[*name]))
        .map(|(name, v)| {
            format!(
                "    \"{name}\": {{\n        \"volume\": {},\n        \"intensity\": {}\n    }}",
                python_float_repr(v["volume"].as_f64().unwrap()),
                python_float_repr(v["intensity"].as_f64().unwrap())
            )
        })
        .collect();
    assert_eq!(format!("{{\n{}\n}}", entries.join(",\n")), text);
}

#[test]
fn shape_mismatch_is_an_error() {
    let seg = Array3::<u8>::zeros((4, 4, 4));
    let ct = Array3::<i16>::zeros((4, 4, 5));
    assert!(basic_statistics(
        seg.view(),
        ct.view(),
        [1.0; 3],
        &[(1u8, "a")],
        StatisticsOptions::default()
    )
    .is_err());
}
