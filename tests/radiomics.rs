//! `--radiomics` against the official TotalSegmentator radiomics step (pyradiomics 3.0.1,
//! SimpleITK 2.5): fixtures from `tools/fixtures/make_radiomics_fixtures.py`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use totalsegmentator::radiomics::radiomics_for_dir;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/radiomics")
}

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/totalseg-examples")
}

/// Every structure and feature of `ours` equals `official`, in the same order; returns the
/// number of values compared.
fn assert_same_features(ours: &str, official: &str) -> usize {
    let ours: Value = serde_json::from_str(ours).expect("our JSON parses");
    let official: Value = serde_json::from_str(official).expect("fixture parses");
    let (ours, official) = (ours.as_object().unwrap(), official.as_object().unwrap());
    let names = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(ours), names(official), "structures");
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (structure, expected) in official {
        let (got, expected) = (
            ours[structure].as_object().unwrap(),
            expected.as_object().unwrap(),
        );
        assert_eq!(names(got), names(expected), "features of {structure}");
        for (feature, value) in expected {
            compared += 1;
            if got[feature] != *value {
                mismatches.push(format!(
                    "{structure}.{feature}: ours {} official {value}",
                    got[feature]
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {compared} differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    compared
}

fn check_case(case: &str) {
    let dir = fixtures().join(case);
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("statistics_radiomics.json");
    let (report, _) = radiomics_for_dir(&dir.join("ct.nii.gz"), &dir.join("masks")).unwrap();
    report.write_json(&json).unwrap();
    let official = std::fs::read_to_string(dir.join("statistics_radiomics.json")).unwrap();
    let ours = std::fs::read_to_string(&json).unwrap();
    assert_same_features(&ours, &official);
    assert_eq!(ours, official, "the JSON text itself");
}

#[test]
fn int16_image_resampled_to_3mm_matches_official() {
    check_case("int16_flipped");
}

#[test]
fn float32_oblique_image_resampled_to_3mm_matches_official() {
    check_case("float32_oblique");
}

/// Oblique, with half-voxel ties of the nearest-neighbour mask samples: they round as ITK's
/// SVD-based inverse of the index-to-point matrix makes them round.
#[test]
fn oblique_ties_round_as_itk_rounds_them() {
    check_case("float32_oblique_ties");
}

/// The shared 3 mm example (no resampling: pyradiomics only re-grids the mask) with the 117
/// per-class masks of the official label map: 41 present, of which one is a single voxel
/// (pyradiomics refuses it: all 107 features 0, like the 76 empty masks).
#[test]
fn example_ct_all_117_classes_match_official() {
    use totalseg_core::tasks::ClassMap;
    use totalseg_io::nifti::{read_label_map, write_class_mask};
    let seg = read_label_map(&shared().join("example_seg.nii.gz")).unwrap();
    let masks = tempfile::tempdir().unwrap();
    let total = ClassMap::get("total").unwrap();
    for (label, name) in total.iter() {
        let path = masks.path().join(format!("{name}.nii.gz"));
        write_class_mask(&path, seg.labels.view(), label as u8, &seg.header).unwrap();
    }
    let json = masks.path().join("statistics_radiomics.json");
    let (report, warnings) =
        radiomics_for_dir(&shared().join("example_ct_sm.nii.gz"), masks.path()).unwrap();
    assert_eq!(warnings.len(), 77);
    assert!(warnings
        .iter()
        .any(|w| w.starts_with("lung_middle_lobe_right: WARNING: radiomics raised an exception")));
    report.write_json(&json).unwrap();
    let official = std::fs::read_to_string(fixtures().join("example_ct_sm_total.json")).unwrap();
    let ours = std::fs::read_to_string(&json).unwrap();
    let compared = assert_same_features(&ours, &official);
    assert_eq!(compared, 40 * 32 + 77 * 107);
    assert_eq!(ours, official);
}

/// The same report straight from the label map in memory (`Segmentation::radiomics`), without
/// per-class files: equal to the official JSON.
#[test]
fn radiomics_from_the_label_map_in_memory_matches_official() {
    use totalseg_core::tasks::ClassMap;
    use totalseg_io::nifti::{read_label_map, read_nifti};
    use totalsegmentator::Segmentation;
    let seg = read_label_map(&shared().join("example_seg.nii.gz")).unwrap();
    let ct = read_nifti(&shared().join("example_ct_sm.nii.gz")).unwrap();
    let segmentation = Segmentation {
        labels: seg.labels,
        affine: seg.affine,
        header: seg.header,
        classes: ClassMap::get("total")
            .unwrap()
            .iter()
            .map(|(label, name)| (label as u8, name.to_string()))
            .collect(),
        statistics: None,
        probabilities: None,
        preview: None,
    };
    let report = segmentation.radiomics(&ct).unwrap();
    let official = std::fs::read_to_string(fixtures().join("example_ct_sm_total.json")).unwrap();
    assert_eq!(report.to_json_string(), official);
}
