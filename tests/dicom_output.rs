//! DICOM outputs against the official TotalSegmentator 2.18 ones (fixtures/dicom_output, made
//! by tools/fixtures/make_dicom_output_fixtures.py): `-ot dicom_seg` (highdicom 0.28) and
//! `-ot dicom_rtstruct` (rt_utils 1.2 with OpenCV 5.0).
//!
//! The official SEG holds exactly the label map of fixtures/pipeline_edges/dicom_fast_ml
//! (the fixture script checks this), so feeding that label map to our writers must give the
//! same objects: the same attributes, segments, frame functional groups and pixel bytes; the
//! same ROIs, contours and coordinates. Only what is new per run differs: UIDs, creation
//! dates and times, and the software that wrote it.

use std::io::Read;
use std::path::PathBuf;

use dicom_core::value::Value;
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use totalseg_core::tasks::ClassMap;
use totalseg_io::nifti::read_label_map;
use totalsegmentator::output::{save_dicom_rtstruct, save_dicom_seg};
use totalsegmentator::Segmentation;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn series() -> PathBuf {
    repo().join("../shared/data/totalseg-examples/example_ct_dicom")
}

fn official(name: &str) -> DefaultDicomObject {
    let gz = std::fs::read(repo().join("fixtures/dicom_output").join(name)).expect("fixture");
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut bytes)
        .expect("gunzip");
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("official.dcm");
    std::fs::write(&path, bytes).expect("write");
    OpenFileOptions::new()
        .open_file(&path)
        .expect("official SEG")
}

/// The official `--fast --ml` label map of the series as a [`Segmentation`].
fn official_segmentation() -> Segmentation {
    let map =
        read_label_map(&repo().join("fixtures/pipeline_edges/dicom_fast_ml/segmentation.nii.gz"))
            .expect("label map");
    let total = ClassMap::get("total").expect("total");
    Segmentation {
        labels: map.labels,
        affine: map.affine,
        header: map.header,
        classes: total
            .iter()
            .map(|(label, name)| (label as u8, name.to_string()))
            .collect(),
        statistics: None,
        probabilities: None,
        preview: None,
    }
}

/// Differences between two data sets, recursing into sequences; `skip` tags are not compared.
fn differences(a: &InMemDicomObject, b: &InMemDicomObject, skip: &[Tag], at: &str) -> Vec<String> {
    let mut out = Vec::new();
    let tags_a: Vec<Tag> = a.tags().filter(|t| !skip.contains(t)).collect();
    let tags_b: Vec<Tag> = b.tags().filter(|t| !skip.contains(t)).collect();
    if tags_a != tags_b {
        out.push(format!("{at}: tags {tags_a:?} vs {tags_b:?}"));
        return out;
    }
    for tag in tags_a {
        let (ea, eb) = (a.element(tag).expect("a"), b.element(tag).expect("b"));
        let here = format!("{at}/{tag}");
        if ea.vr() != eb.vr() {
            out.push(format!("{here}: VR {:?} vs {:?}", ea.vr(), eb.vr()));
            continue;
        }
        match (ea.value(), eb.value()) {
            (Value::Sequence(sa), Value::Sequence(sb)) => {
                if sa.items().len() != sb.items().len() {
                    out.push(format!(
                        "{here}: {} vs {} items",
                        sa.items().len(),
                        sb.items().len()
                    ));
                    continue;
                }
                for (i, (ia, ib)) in sa.items().iter().zip(sb.items()).enumerate() {
                    out.extend(differences(ia, ib, skip, &format!("{here}[{i}]")));
                }
            }
            (Value::Primitive(_), Value::Primitive(_)) if tag == tags::PIXEL_DATA => {
                let (pa, pb) = (ea.to_bytes().expect("a"), eb.to_bytes().expect("b"));
                if pa != pb {
                    let bits = pa
                        .iter()
                        .zip(pb.iter())
                        .map(|(x, y)| (x ^ y).count_ones())
                        .sum::<u32>();
                    out.push(format!(
                        "{here}: pixel data differs ({} vs {} bytes, {bits} bits)",
                        pa.len(),
                        pb.len()
                    ));
                }
            }
            (Value::Primitive(_), Value::Primitive(_)) => {
                let trim = |s: std::borrow::Cow<str>| s.trim_end_matches(['\0', ' ']).to_string();
                let (va, vb) = (
                    ea.to_str().map(trim).unwrap_or_default(),
                    eb.to_str().map(trim).unwrap_or_default(),
                );
                if va != vb {
                    out.push(format!("{here}: {va:?} vs {vb:?}"));
                }
            }
            _ => out.push(format!("{here}: different kinds of value")),
        }
    }
    out
}

/// Fails on a different SOP class or transfer syntax, or listing every difference of the
/// data sets but those under `skip`.
fn assert_same_except(official: &DefaultDicomObject, ours: &DefaultDicomObject, skip: &[Tag]) {
    assert_eq!(
        ours.meta().media_storage_sop_class_uid(),
        official.meta().media_storage_sop_class_uid()
    );
    assert_eq!(
        ours.meta().transfer_syntax(),
        official.meta().transfer_syntax()
    );
    let diffs = differences(official, ours, skip, "");
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn dicom_seg_equals_the_official_one_for_the_same_labels() {
    let official = official("example_ct_dicom_fast_seg.dcm.gz");
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("seg.dcm");
    let written =
        save_dicom_seg(&official_segmentation(), &series(), &path).expect("our DICOM SEG");
    assert_eq!((written.segments, written.frames), (15, 263));
    let ours = OpenFileOptions::new()
        .open_file(&path)
        .expect("our SEG reads back");

    // New per run, or naming the software that wrote the file.
    let per_run = [
        tags::SOP_INSTANCE_UID,
        tags::SERIES_INSTANCE_UID,
        tags::INSTANCE_CREATION_DATE,
        tags::INSTANCE_CREATION_TIME,
        tags::CONTENT_DATE,
        tags::CONTENT_TIME,
        tags::SOFTWARE_VERSIONS,
        tags::DIMENSION_ORGANIZATION_UID,
        tags::CONTRIBUTING_EQUIPMENT_SEQUENCE,
    ];
    assert_same_except(&official, &ours, &per_run);

    // The source's acquisition equipment is kept (highdicom's first item), then the writer.
    let equipment = |o: &InMemDicomObject| -> Vec<InMemDicomObject> {
        o.element(tags::CONTRIBUTING_EQUIPMENT_SEQUENCE)
            .expect("equipment")
            .items()
            .expect("a sequence")
            .to_vec()
    };
    let (theirs, mine) = (equipment(&official), equipment(&ours));
    assert_eq!(mine.len(), 2);
    let acquisition_diffs = differences(
        &theirs[0],
        &mine[0],
        &[tags::CONTRIBUTION_DATE_TIME],
        "equipment",
    );
    assert!(acquisition_diffs.is_empty(), "{acquisition_diffs:?}");
    let algorithm = ours
        .element(tags::SEGMENT_SEQUENCE)
        .expect("segments")
        .items()
        .expect("items")[0]
        .element(tags::SEGMENTATION_ALGORITHM_IDENTIFICATION_SEQUENCE)
        .expect("algorithm")
        .items()
        .expect("items")[0]
        .element(tags::ALGORITHM_NAME)
        .expect("name")
        .to_str()
        .expect("text")
        .trim()
        .to_string();
    assert_eq!(algorithm, "TotalSegmentator");
    // Fresh UIDs under the UUID arc.
    let uid = ours
        .element(tags::SERIES_INSTANCE_UID)
        .expect("uid")
        .to_str()
        .expect("text");
    let uid = uid.trim_end_matches('\0');
    assert!(uid.starts_with("2.25.") && uid.len() <= 64, "{uid}");
    assert_ne!(
        uid,
        ours.element(tags::SOP_INSTANCE_UID)
            .expect("uid")
            .to_str()
            .expect("text")
            .trim_end_matches('\0')
    );
}

#[test]
fn rtstruct_equals_the_official_one_for_the_same_labels() {
    let official = official("example_ct_dicom_fast_rtstruct.dcm.gz");
    let dir = tempfile::tempdir().expect("tmp");
    let written = save_dicom_rtstruct(&official_segmentation(), &series(), &dir.path().join("rt"))
        .expect("our RT-STRUCT");
    // rt_utils appends .dcm.
    assert_eq!(written.path, dir.path().join("rt.dcm"));
    let ours = OpenFileOptions::new()
        .open_file(&written.path)
        .expect("reads back");
    let contours = official
        .element(tags::ROI_CONTOUR_SEQUENCE)
        .expect("contours")
        .items()
        .expect("items")
        .iter()
        .map(|roi| {
            roi.element(tags::CONTOUR_SEQUENCE)
                .expect("seq")
                .items()
                .expect("items")
                .len()
        })
        .sum::<usize>();
    assert_eq!((written.rois, written.contours), (15, contours));
    // New per run, or naming the software that wrote the file (rt_utils: "Qurit").
    let per_run = [
        tags::SOP_INSTANCE_UID,
        tags::SERIES_INSTANCE_UID,
        tags::INSTANCE_CREATION_DATE,
        tags::INSTANCE_CREATION_TIME,
        tags::STRUCTURE_SET_DATE,
        tags::STRUCTURE_SET_TIME,
        tags::MANUFACTURER,
        tags::MANUFACTURER_MODEL_NAME,
        tags::INSTITUTION_NAME,
    ];
    assert_same_except(&official, &ours, &per_run);
}

/// A folder as the output: the file is named after the new series' UID, as highdicom does.
#[test]
fn dicom_seg_into_a_folder_is_named_by_series_uid() {
    let dir = tempfile::tempdir().expect("tmp");
    let written = save_dicom_seg(&official_segmentation(), &series(), dir.path()).expect("SEG");
    let ours = OpenFileOptions::new()
        .open_file(&written.path)
        .expect("reads back");
    let uid = ours
        .element(tags::SERIES_INSTANCE_UID)
        .expect("uid")
        .to_str()
        .expect("text")
        .trim_end_matches('\0')
        .to_string();
    assert_eq!(written.path, dir.path().join(format!("{uid}.dcm")));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
}

/// Bad inputs give a clear error and leave no file behind.
#[test]
fn dicom_seg_errors_name_the_problem_and_write_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("seg.dcm");
    let mut empty = official_segmentation();
    empty.labels.fill(0);
    let err = save_dicom_seg(&empty, &series(), &path).expect_err("nothing to save");
    assert!(err.to_string().contains("no non-empty segments"), "{err}");
    // rt_utils writes an empty structure set instead (checked after the failures below).
    let rt_dir = tempfile::tempdir().expect("tmp");
    let written = save_dicom_rtstruct(&empty, &series(), &rt_dir.path().join("rt.dcm"))
        .expect("empty RT-STRUCT");
    assert_eq!((written.rois, written.contours), (0, 0));

    let mut shifted = official_segmentation();
    shifted.affine[2][3] += 1.0; // half a slice off the series' 2 mm grid
    let err = save_dicom_seg(&shifted, &series(), &path).expect_err("off the grid");
    assert!(
        err.to_string().contains("does not match the DICOM series"),
        "{err}"
    );

    let err = save_dicom_seg(
        &official_segmentation(),
        &dir.path().join("no_series"),
        &path,
    )
    .expect_err("no series");
    assert!(err.to_string().contains("no_series"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
}
