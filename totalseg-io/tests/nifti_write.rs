//! Writers: compression by extension, atomic replacement, errors, datatypes, affines.

mod nifti_common;

use ndarray::{Array3, ShapeBuilder};
use nifti_common::*;
use totalseg_io::nifti::{
    read_label_map, read_nifti, write_binary_mask, write_class_mask, write_label_map, write_volume,
    write_volume_f32, Endianness, LabelNames, NiftiDataType, NiftiErrorKind, Volume,
};

fn sample_volume() -> Volume {
    let affine = [
        [0.0, 0.0, 2.0, -5.0],
        [0.0, -1.5, 0.0, 6.0],
        [1.25, 0.0, 0.0, 7.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let data = Array3::from_shape_fn((6, 5, 4), |(i, j, k)| (i * 100 + j * 10 + k) as f32 - 200.5);
    Volume::new(data, affine).expect("valid")
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn gzip_is_chosen_by_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volume = sample_volume();
    let gz = dir.path().join("a.nii.gz");
    let plain = dir.path().join("a.nii");
    let upper = dir.path().join("A.NII.GZ");
    write_volume_f32(&gz, &volume).expect("gz");
    write_volume_f32(&plain, &volume).expect("plain");
    write_volume_f32(&upper, &volume).expect("upper");
    let gz_bytes = std::fs::read(&gz).expect("gz");
    let plain_bytes = std::fs::read(&plain).expect("plain");
    assert_eq!(&gz_bytes[..2], &[0x1f, 0x8b]);
    assert_eq!(&std::fs::read(&upper).expect("upper")[..2], &[0x1f, 0x8b]);
    assert_eq!(&plain_bytes[0..4], &348i32.to_le_bytes());
    assert_eq!(gunzip(&gz_bytes), plain_bytes);
    assert_eq!(plain_bytes.len(), 352 + 6 * 5 * 4 * 4);
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn missing_folder_is_an_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volume = sample_volume();
    let target = dir.path().join("no/such/folder/out.nii.gz");
    let err = write_volume_f32(&target, &volume).expect_err("folder missing");
    assert!(matches!(err.kind, NiftiErrorKind::Io { .. }), "{err}");
    assert!(err.to_string().contains("out.nii.gz"), "{err}");
    assert!(!target.exists());
    let labels = Array3::<u8>::zeros((6, 5, 4));
    assert!(write_label_map(&target, labels.view(), &volume.header, None).is_err());
    assert!(write_label_map(
        std::path::Path::new("/"),
        labels.view(),
        &volume.header,
        None
    )
    .is_err());
}

#[test]
fn existing_files_are_replaced_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seg.nii.gz");
    std::fs::write(&path, b"old content").expect("old file");
    let volume = sample_volume();
    let labels = Array3::from_shape_fn((6, 5, 4), |(i, _, _)| i as u8);
    write_label_map(&path, labels.view(), &volume.header, None).expect("overwrite");
    assert_eq!(read_label_map(&path).expect("new file").labels, labels);
    assert!(leftovers(dir.path()).is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert!(
            mode & 0o644 == 0o644,
            "mode {mode:o}: owner rw and others r, like nibabel's files"
        );
    }
}

#[test]
fn shape_mismatch_is_refused_before_touching_the_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volume = sample_volume();
    let path = dir.path().join("bad.nii.gz");
    let labels = Array3::<u8>::zeros((6, 5, 3));
    let err = write_label_map(&path, labels.view(), &volume.header, None).expect_err("mismatch");
    assert!(
        matches!(
            err.kind,
            NiftiErrorKind::ShapeMismatch {
                data: [6, 5, 3],
                header: [6, 5, 4]
            }
        ),
        "{err}"
    );
    let mask = Array3::<bool>::default((1, 1, 1));
    assert!(write_binary_mask(&path, mask.view(), &volume.header).is_err());
    assert!(write_class_mask(&path, labels.view(), 1, &volume.header).is_err());
    assert!(!path.exists());
    assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none());
}

#[test]
fn binary_and_class_masks_agree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volume = sample_volume();
    let labels = grid_labels([6, 5, 4]);
    let a = dir.path().join("a.nii");
    let b = dir.path().join("b.nii");
    write_class_mask(&a, labels.view(), 3, &volume.header).expect("class");
    let mask = labels.mapv(|l| l == 3);
    write_binary_mask(&b, mask.view(), &volume.header).expect("mask");
    assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    let back = read_label_map(&a).expect("read");
    assert_eq!(back.labels, mask.mapv(u8::from));
    assert_eq!(back.names, None);
}

/// Non-standard memory layouts (Fortran order, transposed views) are written by index.
#[test]
fn any_memory_layout_writes_the_same_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volume = sample_volume();
    let labels = grid_labels([6, 5, 4]);
    let fortran = Array3::from_shape_vec((6, 5, 4).f(), {
        let mut v = Vec::new();
        for k in 0..4 {
            for j in 0..5 {
                for i in 0..6 {
                    v.push(labels[[i, j, k]]);
                }
            }
        }
        v
    })
    .expect("shape");
    let a = dir.path().join("a.nii");
    let b = dir.path().join("b.nii");
    write_label_map(&a, labels.view(), &volume.header, None).expect("c order");
    write_label_map(&b, fortran.view(), &volume.header, None).expect("f order");
    assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    // The file order is Fortran: the data block is the Fortran array's memory.
    assert_eq!(
        &std::fs::read(&a).expect("a")[352..],
        fortran.as_slice_memory_order().expect("contiguous")
    );
}

#[test]
fn every_datatype_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let volume = sample_volume();
    let non_negative = volume.data.mapv(|v| (v + 200.5).round());
    for (datatype, data) in [
        (NiftiDataType::F32, volume.data.clone()),
        (NiftiDataType::F64, volume.data.clone()),
        (NiftiDataType::I16, volume.data.mapv(f32::trunc)),
        (NiftiDataType::I32, volume.data.mapv(f32::trunc)),
        (NiftiDataType::I64, volume.data.mapv(f32::trunc)),
        (
            NiftiDataType::I8,
            volume.data.mapv(|v| v.trunc().clamp(-128.0, 127.0)),
        ),
        (NiftiDataType::U8, non_negative.mapv(|v| v.min(255.0))),
        (NiftiDataType::U16, non_negative.clone()),
        (NiftiDataType::U32, non_negative.clone()),
        (NiftiDataType::U64, non_negative.clone()),
    ] {
        for endianness in [Endianness::Little, Endianness::Big] {
            let mut v = volume.clone();
            v.data = data.clone();
            v.header.endianness = endianness;
            let path = dir.path().join("v.nii.gz");
            write_volume(&path, &v, datatype).expect("write");
            let back = read_nifti(&path).expect("read");
            assert_eq!(back.data, data, "{datatype:?} {endianness:?}");
            assert_eq!(back.header.data_type().expect("known"), datatype);
            assert_eq!(back.header.endianness, endianness);
            assert_eq!(back.affine, volume.affine);
        }
    }
}

/// Changing a volume's affine updates sform (code 2) and qform (code 0) on write, as
/// nibabel's `to_file_map` does; an unchanged one keeps the header's transforms.
#[test]
fn a_changed_affine_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ct = read_nifti(&example("example_ct_sm.nii.gz")).expect("example");
    let mut moved = ct.clone();
    moved.affine[0][3] += 12.0;
    moved.affine[2][2] = 1.5;
    let path = dir.path().join("moved.nii");
    write_volume_f32(&path, &moved).expect("write");
    let back = read_nifti(&path).expect("read");
    assert_eq!(back.affine, moved.affine);
    assert_eq!((back.header.sform_code, back.header.qform_code), (2, 0));
    assert_eq!(back.header.pixdim[3], 1.5);

    let same = dir.path().join("same.nii");
    write_volume_f32(&same, &ct).expect("write");
    let back = read_nifti(&same).expect("read");
    assert_eq!(
        (back.header.sform_code, back.header.qform_code),
        (ct.header.sform_code, ct.header.qform_code)
    );
}

#[test]
fn label_names_survive_a_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let official = read_label_map(&example("example_seg.nii.gz")).expect("example");
    let names = official.names.clone().expect("names");
    let path = dir.path().join("seg.nii.gz");
    write_label_map(
        &path,
        official.labels.view(),
        &official.header,
        Some(&names),
    )
    .expect("write");
    let back = read_label_map(&path).expect("read");
    assert_eq!(back.names, Some(names.clone()));
    // Writing on a header that already has a label extension appends another, as nibabel
    // would; the first one is what readers use.
    assert_eq!(back.header.extensions.len(), 2);

    let odd: LabelNames = [(1, "a & b".to_string()), (200, "x]]>y <z>".to_string())].into();
    let ct = sample_volume();
    let labels = Array3::<u8>::from_elem((6, 5, 4), 200);
    let path = dir.path().join("odd.nii");
    write_label_map(&path, labels.view(), &ct.header, Some(&odd)).expect("write");
    assert_eq!(read_label_map(&path).expect("read").names, Some(odd));
}

#[test]
fn four_d_inputs_write_totalsegmentators_header() {
    // TotalSegmentator rebuilds a 4D input as Nifti1Image(first volume, affine): its
    // outputs carry that header (sform code 2, qform code 0, no xyzt units).
    let volume = read_nifti(&fixture_dir().join("read_4d_int16.nii.gz")).expect("4D");
    assert_eq!(volume.header.dim, [3, 5, 4, 3, 1, 1, 1, 1]);
    assert_eq!((volume.header.sform_code, volume.header.qform_code), (2, 0));
    assert_eq!(volume.header.xyzt_units, 0);
    assert_eq!(
        volume.header.data_type().expect("known"),
        NiftiDataType::F64
    );
}
