//! Round trips on the shared TotalSegmentator example files, and byte-identical
//! re-creation of the official outputs from the official inputs.

mod nifti_common;

use nifti_common::*;
use totalseg_io::nifti::{
    read_label_map, read_nifti, read_nifti_header, write_class_mask, write_label_map, write_volume,
    NiftiDataType,
};

/// read -> write (same datatype) -> read keeps data, affine and every header byte; the
/// decompressed file is the original's, byte for byte.
#[test]
fn images_round_trip_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, datatype, shape) in [
        ("example_ct.nii.gz", NiftiDataType::I32, [122, 101, 112]),
        ("example_ct_sm.nii.gz", NiftiDataType::I16, [122, 101, 30]),
        ("example_mr_sm.nii.gz", NiftiDataType::I16, [117, 91, 20]),
    ] {
        let path = example(name);
        let volume = read_nifti(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(volume.shape(), shape, "{name}");
        assert_eq!(volume.header.data_type().expect("known"), datatype);
        assert_eq!(volume.spacing, [3.0, 3.0, 3.0]);
        assert_eq!(volume.source.as_deref(), Some(path.as_path()));

        let out = dir.path().join(name);
        write_volume(&out, &volume, datatype).expect("write");
        let back = read_nifti(&out).expect("read back");
        assert_eq!(back.data, volume.data, "{name}: data");
        assert_eq!(back.affine, volume.affine, "{name}: affine");
        assert_eq!(
            back.header.to_bytes(),
            volume.header.to_bytes(),
            "{name}: header"
        );
        assert_eq!(
            gunzip(&std::fs::read(&out).expect("written")),
            gunzip(&std::fs::read(&path).expect("example")),
            "{name}: decompressed file"
        );
    }
}

#[test]
fn mr_example_is_lps() {
    let mr = read_nifti(&example("example_mr_sm.nii.gz")).expect("readable");
    assert_eq!(mr.header.sform_code, 2);
    assert!(mr.affine[0][0] < 0.0 && mr.affine[1][1] < 0.0 && mr.affine[2][2] > 0.0);
    // The affine is nibabel's: srow values widened from float32.
    assert_eq!(mr.affine[0][3], 168.599_639_892_578_12);
}

/// The official `--ml` outputs, rebuilt from the official input's header, the output's
/// labels and the output's label names, are byte-identical after decompression.
#[test]
fn label_maps_are_byte_identical_to_totalsegmentators() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (input, output, n_names) in [
        ("example_ct_sm.nii.gz", "example_seg.nii.gz", 117),
        ("example_ct_sm.nii.gz", "example_seg_fast.nii.gz", 117),
        ("example_ct_sm.nii.gz", "example_seg_roi_subset.nii.gz", 2),
        ("example_mr_sm.nii.gz", "example_seg_mr.nii.gz", 50),
        (
            "example_ct.nii.gz",
            "example_seg_fast_force_split.nii.gz",
            117,
        ),
    ] {
        let header = read_nifti_header(&example(input)).expect("input header");
        let official = read_label_map(&example(output)).unwrap_or_else(|e| panic!("{e}"));
        let names = official.names.clone().expect("label extension");
        assert_eq!(names.len(), n_names, "{output}");
        assert!(official.labels.iter().any(|&l| l > 0));

        let ours = dir.path().join(output);
        write_label_map(&ours, official.labels.view(), &header, Some(&names)).expect("write");
        let ours_bytes = gunzip(&std::fs::read(&ours).expect("written"));
        let official_bytes = gunzip(&std::fs::read(example(output)).expect("example"));
        assert_eq!(ours_bytes.len(), official_bytes.len(), "{output}");
        assert!(ours_bytes == official_bytes, "{output}: bytes differ");

        let back = read_label_map(&ours).expect("read back");
        assert_eq!(back.labels, official.labels);
        assert_eq!(back.names.as_ref(), Some(&names));
        assert_eq!(back.header.extensions, official.header.extensions);
    }
}

#[test]
fn label_names_are_totalsegmentators() {
    let seg = read_label_map(&example("example_seg.nii.gz")).expect("readable");
    let names = seg.names.expect("names");
    assert_eq!(names[&1], "spleen");
    assert_eq!(names[&5], "liver");
    assert_eq!(names[&90], "brain");
    assert_eq!(names[&117], "costal_cartilages");
    assert_eq!(*names.keys().next().expect("non-empty"), 1);
    let roi = read_label_map(&example("example_seg_roi_subset.nii.gz")).expect("readable");
    let roi_names: Vec<_> = roi.names.expect("names").into_iter().collect();
    assert_eq!(
        roi_names,
        vec![(5, "liver".to_string()), (90, "brain".to_string())]
    );
}

/// `--fast` writes one binary file per class; ours for the liver is the official one.
#[test]
fn class_mask_is_byte_identical_to_totalsegmentators() {
    let header = read_nifti_header(&example("example_ct_sm.nii.gz")).expect("header");
    let seg = read_label_map(&example("example_seg_fast.nii.gz")).expect("labels");
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = dir.path().join("liver.nii.gz");
    write_class_mask(&ours, seg.labels.view(), 5, &header).expect("write");
    let official =
        gunzip(&std::fs::read(example("example_seg_fast/liver.nii.gz")).expect("example"));
    let ours = gunzip(&std::fs::read(&ours).expect("written"));
    assert_eq!(ours.len(), official.len());
    assert!(ours == official, "liver mask bytes differ");
    assert_eq!(ours[352..].iter().filter(|&&v| v == 1).count(), 39350);
}
