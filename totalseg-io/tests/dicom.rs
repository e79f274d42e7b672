//! DICOM series input: parity with TotalSegmentator's conversion (dicom2nifti) on the shared
//! example series and on small committed series, and typed errors for bad folders.

mod dicom_common;

use std::path::{Path, PathBuf};

use dicom_common::{axial_stack, write_series, write_slice, SynthSlice};
use serde_json::Value;
use totalseg_io::dicom::{detect_modality, read_dicom_series, DicomErrorKind};
use totalseg_io::nifti::{NiftiDataType, NiftiHeader};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dicom")
}

fn shared_series() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/totalseg-examples/example_ct_dicom")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn affine_of(v: &Value) -> [[f64; 4]; 4] {
    let rows: Vec<Vec<f64>> = v.as_array().expect("rows").iter().map(floats).collect();
    let mut a = [[0.0; 4]; 4];
    for r in 0..4 {
        a[r].copy_from_slice(&rows[r]);
    }
    a
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn example_series_matches_totalsegmentators_conversion() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("example_ct_dicom.json")).expect("fixture"),
    )
    .expect("json");
    let v = read_dicom_series(&shared_series()).expect("example series reads");

    let shape: Vec<usize> = floats(&expected["shape"])
        .iter()
        .map(|&x| x as usize)
        .collect();
    assert_eq!(v.shape().to_vec(), shape);
    // Exact: dicom2nifti's affine, as float32 in the sform.
    assert_eq!(v.affine, affine_of(&expected["affine"]));
    assert_eq!(v.spacing.to_vec(), floats(&expected["zooms"]));

    // The header nibabel reads from the converted file, field by field where it matters
    // for outputs (they copy it).
    let file_header =
        NiftiHeader::parse(&hex(expected["header_hex"].as_str().expect("hex"))).expect("header");
    assert_eq!(v.header.dim, file_header.dim);
    assert_eq!(v.header.pixdim, file_header.pixdim);
    assert_eq!(v.header.xyzt_units, file_header.xyzt_units);
    assert_eq!(v.header.qform_code, file_header.qform_code);
    assert_eq!(v.header.sform_code, file_header.sform_code);
    assert_eq!(v.header.srow_x, file_header.srow_x);
    assert_eq!(v.header.srow_y, file_header.srow_y);
    assert_eq!(v.header.srow_z, file_header.srow_z);
    assert_eq!(
        (v.header.quatern_b, v.header.quatern_c, v.header.quatern_d),
        (
            file_header.quatern_b,
            file_header.quatern_c,
            file_header.quatern_d
        )
    );
    assert_eq!(v.header.data_type().expect("dtype"), NiftiDataType::F64);
    assert_eq!(file_header.data_type().expect("dtype"), NiftiDataType::F64);

    // Voxels: integer HU values, so every sum is exact in f64.
    let data = &v.data;
    let sum: f64 = data.iter().map(|&x| f64::from(x)).sum();
    assert_eq!(sum, expected["sum"].as_f64().expect("sum"));
    for (axis, key) in ["sum_over_i", "sum_over_j", "sum_over_k"]
        .iter()
        .enumerate()
    {
        let want = floats(&expected[*key]);
        let got: Vec<f64> = data
            .axis_iter(ndarray::Axis(axis))
            .map(|plane| plane.iter().map(|&x| f64::from(x)).sum())
            .collect();
        assert_eq!(got, want, "{key}");
    }
    let weighted: f64 = data
        .indexed_iter()
        .map(|((i, j, k), &x)| f64::from(x) * ((i * 7 + j * 13 + k * 31) % 101) as f64)
        .sum();
    assert_eq!(
        weighted,
        expected["weighted_sum"].as_f64().expect("weighted")
    );
    for s in expected["samples"].as_array().expect("samples") {
        let s = floats(s);
        let idx = [s[0] as usize, s[1] as usize, s[2] as usize];
        assert_eq!(f64::from(data[idx]), s[3], "voxel {idx:?}");
    }
}

#[test]
fn small_series_in_other_orientations_match_dicom2nifti() {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("synthetic.json")).expect("fixture"),
    )
    .expect("json");
    let cases = expected.as_object().expect("cases");
    assert!(cases.len() >= 3);
    for (name, case) in cases {
        let v = read_dicom_series(&fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let shape: Vec<usize> = floats(&case["shape"]).iter().map(|&x| x as usize).collect();
        assert_eq!(v.shape().to_vec(), shape, "{name}");
        assert_eq!(v.affine, affine_of(&case["affine"]), "{name}");
        assert_eq!(v.spacing.to_vec(), floats(&case["zooms"]), "{name}");
        // Values in C order of nibabel's get_fdata().
        let want = floats(&case["data"]);
        let got: Vec<f64> = v.data.iter().map(|&x| f64::from(x)).collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn synthetic_axial_series_any_file_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut slices = axial_stack(5, 2.5, 3, 4);
    // Files in an order unrelated to position; a non-DICOM file beside them is ignored.
    slices.swap(0, 3);
    slices.swap(1, 4);
    write_series(dir.path(), &slices);
    std::fs::write(dir.path().join("README.txt"), "not DICOM").expect("write");
    let v = read_dicom_series(dir.path()).expect("reads");
    // (columns, rows, slices) in LAS order: i runs along -x (columns, already R->L after
    // the flip of LPS x), j is the reversed row index, k ascends in z.
    assert_eq!(v.shape(), [4, 3, 5]);
    for k in 0..5 {
        for j in 0..3 {
            for i in 0..4 {
                let row = 2 - j;
                let stored = (row * 10 + i + 100 * k) as f32;
                assert_eq!(v.data[[i, j, k]], stored - 1024.0, "[{i}, {j}, {k}]");
            }
        }
    }
    // Column spacing 0.75 along x (negated: L), row spacing 0.5 along y, slices 2.5 mm.
    assert_eq!(v.affine[0], [-0.75, 0.0, 0.0, 10.0]);
    assert_eq!(v.affine[1], [0.0, 0.5, 0.0, 20.0 - 0.5 * 2.0]);
    assert_eq!(v.affine[2], [0.0, 0.0, 2.5, 0.0]);
    assert_eq!(v.spacing, [0.75, 0.5, 2.5]);
    assert_eq!(v.source.as_deref(), Some(dir.path()));
}

#[test]
fn signed_12_bit_values_are_sign_extended_and_rescaled() {
    let dir = tempfile::tempdir().expect("tmp");
    let slices: Vec<SynthSlice> = axial_stack(4, 1.0, 2, 2)
        .into_iter()
        .map(|mut s| {
            s.signed = true;
            s.bits_stored = 12;
            // -5 in 12 bits with garbage in the 4 unused high bits.
            s.pixels = vec![0xF000 | (0x1000 - 5), 7, 0x0FFF, 0x0800];
            s.rescale = Some((2.0, 0.5));
            s
        })
        .collect();
    write_series(dir.path(), &slices);
    let v = read_dicom_series(dir.path()).expect("reads");
    // Row 0 is j = 1 after the y flip.
    let expect = |stored: f64| (stored * 2.0 + 0.5) as f32;
    assert_eq!(v.data[[0, 1, 0]], expect(-5.0));
    assert_eq!(v.data[[1, 1, 0]], expect(7.0));
    assert_eq!(v.data[[0, 0, 0]], expect(-1.0));
    assert_eq!(v.data[[1, 0, 0]], expect(-2048.0));
}

#[test]
fn localizers_and_exact_duplicates_are_dropped() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut slices = axial_stack(5, 2.0, 3, 3);
    slices.push(slices[2].clone());
    let mut localizer = SynthSlice::axial(0.0, 3, 3, |_, _| 9);
    localizer.image_type = vec!["ORIGINAL".into(), "PRIMARY".into(), "LOCALIZER".into()];
    localizer.orientation = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0];
    slices.push(localizer);
    write_series(dir.path(), &slices);
    let v = read_dicom_series(dir.path()).expect("reads");
    assert_eq!(v.shape(), [3, 3, 5]);
}

fn error_of(dir: &Path) -> DicomErrorKind {
    let err = read_dicom_series(dir).expect_err("must fail");
    assert_eq!(err.folder, dir, "the error names the folder");
    assert!(err.to_string().contains(&dir.display().to_string()));
    *err.kind
}

fn file_name(p: &Path) -> String {
    p.file_name().expect("name").to_string_lossy().into_owned()
}

#[test]
fn not_a_folder_and_no_dicom_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("ct.dcm");
    std::fs::write(&file, b"x").expect("write");
    assert!(matches!(error_of(&file), DicomErrorKind::NotAFolder));
    assert!(matches!(
        error_of(&dir.path().join("missing")),
        DicomErrorKind::NotAFolder
    ));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    std::fs::write(empty.join("notes.txt"), vec![b'a'; 400]).expect("write");
    assert!(matches!(
        error_of(&empty),
        DicomErrorKind::NoDicomFiles { files: 1 }
    ));
}

#[test]
fn corrupt_dicom_file_is_named() {
    let dir = tempfile::tempdir().expect("tmp");
    write_series(dir.path(), &axial_stack(4, 1.0, 2, 2));
    let mut bytes = vec![0u8; 128];
    bytes.extend_from_slice(b"DICM");
    bytes.extend_from_slice(&[0xFF; 40]);
    let bad = dir.path().join("broken.dcm");
    std::fs::write(&bad, bytes).expect("write");
    match error_of(dir.path()) {
        DicomErrorKind::Unreadable { file, .. } => assert_eq!(file, bad),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn mixed_series_are_refused_naming_both() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut slices = axial_stack(6, 1.0, 2, 2);
    for s in &mut slices[3..] {
        s.series_uid = "1.2.826.0.1.3680043.2.1125.99".into();
    }
    write_series(dir.path(), &slices);
    match error_of(dir.path()) {
        DicomErrorKind::MixedSeries { series } => {
            let uids: Vec<&str> = series.iter().map(|(u, _, _)| u.as_str()).collect();
            assert_eq!(
                uids,
                [
                    "1.2.826.0.1.3680043.2.1125.1",
                    "1.2.826.0.1.3680043.2.1125.99"
                ]
            );
            assert_eq!((series[0].1, series[1].1), (3, 3));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_missing_slice_is_reported_between_its_neighbours() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut slices = axial_stack(7, 2.0, 2, 2);
    slices.remove(4); // z = 8 missing
    write_series(dir.path(), &slices);
    match error_of(dir.path()) {
        DicomErrorKind::InconsistentSliceSpacing {
            before,
            after,
            expected_mm,
            found_mm,
            missing_slices,
        } => {
            // Files are written in z order: slice_003 (z = 6) then slice_004 (z = 10).
            assert_eq!(file_name(&before), "slice_003.dcm");
            assert_eq!(file_name(&after), "slice_004.dcm");
            assert_eq!((expected_mm, found_mm, missing_slices), (2.0, 4.0, 1));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn irregular_spacing_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut slices = axial_stack(6, 2.0, 2, 2);
    slices[5].position[2] = 8.0 + 2.9;
    write_series(dir.path(), &slices);
    match error_of(dir.path()) {
        DicomErrorKind::InconsistentSliceSpacing {
            missing_slices,
            found_mm,
            ..
        } => {
            assert_eq!(missing_slices, 0);
            assert!((found_mm - 2.9).abs() < 1e-9);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Within dicom2nifti's tolerance (0.1 + 5 %): accepted.
    let ok = tempfile::tempdir().expect("tmp");
    let mut slices = axial_stack(6, 2.0, 2, 2);
    slices[5].position[2] = 8.0 + 2.15;
    write_series(ok.path(), &slices);
    assert!(read_dicom_series(ok.path()).is_ok());
}

#[test]
fn too_few_slices_duplicates_and_tilt() {
    let dir = tempfile::tempdir().expect("tmp");
    write_series(dir.path(), &axial_stack(3, 1.0, 2, 2));
    assert!(matches!(
        error_of(dir.path()),
        DicomErrorKind::TooFewSlices { found: 3 }
    ));

    let dup = tempfile::tempdir().expect("tmp");
    let mut slices = axial_stack(5, 1.0, 2, 2);
    let mut twin = slices[1].clone();
    twin.pixels = vec![1, 2, 3, 4];
    slices.push(twin);
    write_series(dup.path(), &slices);
    assert!(matches!(
        error_of(dup.path()),
        DicomErrorKind::DuplicatePosition { .. }
    ));

    let tilt = tempfile::tempdir().expect("tmp");
    let slices: Vec<SynthSlice> = axial_stack(5, 1.0, 2, 2)
        .into_iter()
        .map(|mut s| {
            s.position[1] = s.position[2] * 0.5; // 26.6 degrees of gantry tilt
            s
        })
        .collect();
    write_series(tilt.path(), &slices);
    assert!(matches!(
        error_of(tilt.path()),
        DicomErrorKind::NotOrthogonal { .. }
    ));
}

#[test]
fn mixed_sizes_orientations_and_colour_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut slices = axial_stack(5, 1.0, 2, 2);
    slices[3] = SynthSlice::axial(3.0, 3, 2, |_, _| 0);
    write_series(dir.path(), &slices);
    match error_of(dir.path()) {
        DicomErrorKind::InconsistentSlices { file, .. } => {
            assert_eq!(file_name(&file), "slice_003.dcm")
        }
        other => panic!("unexpected {other:?}"),
    }

    let orient = tempfile::tempdir().expect("tmp");
    let mut slices = axial_stack(8, 1.0, 2, 2);
    for s in &mut slices[4..] {
        s.orientation = [0.0, 1.0, 0.0, 0.0, 0.0, -1.0];
    }
    write_series(orient.path(), &slices);
    assert!(matches!(
        error_of(orient.path()),
        DicomErrorKind::InconsistentOrientation { .. }
    ));

    let colour = tempfile::tempdir().expect("tmp");
    let slices: Vec<SynthSlice> = axial_stack(4, 1.0, 2, 2)
        .into_iter()
        .map(|mut s| {
            s.samples_per_pixel = 3;
            s.pixels = vec![0; 12];
            s
        })
        .collect();
    write_series(colour.path(), &slices);
    assert!(matches!(
        error_of(colour.path()),
        DicomErrorKind::Unsupported { .. }
    ));
}

#[test]
fn dicom_without_image_slices() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut s = SynthSlice::axial(0.0, 2, 2, |_, _| 0);
    s.series_uid = String::new(); // written without SeriesInstanceUID: not an imaging slice
    write_slice(&dir.path().join("report.dcm"), &s);
    assert!(matches!(
        error_of(dir.path()),
        DicomErrorKind::NoImageSlices { files: 1 }
    ));
}

#[test]
fn modality_is_read_as_the_official_cli_reads_it() {
    assert_eq!(detect_modality(&shared_series()).as_deref(), Some("CT"));
    let dir = tempfile::tempdir().expect("tmp");
    let slices: Vec<SynthSlice> = axial_stack(4, 1.0, 2, 2)
        .into_iter()
        .map(|mut s| {
            s.modality = "MR".into();
            s
        })
        .collect();
    write_series(dir.path(), &slices);
    assert_eq!(detect_modality(dir.path()).as_deref(), Some("MR"));
    let file = dir.path().join("slice_000.dcm");
    assert_eq!(detect_modality(&file).as_deref(), Some("MR"));
    let empty = tempfile::tempdir().expect("tmp");
    std::fs::write(empty.path().join("a.txt"), "x").expect("write");
    assert_eq!(detect_modality(empty.path()), None);
}

#[test]
fn a_zip_of_the_series_reads_as_the_folder_does() {
    // TotalSegmentator's dcm_to_nifti extracts a zip and converts the folder: same volume.
    let dir = tempfile::tempdir().expect("tmp");
    let zip_path = dir.path().join("example_ct_dicom.zip");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&zip_path).expect("create"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared_series())
        .expect("series")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    writer
        .add_directory("series/", zip::write::SimpleFileOptions::default())
        .expect("dir");
    for file in &files {
        let name = format!(
            "series/{}",
            file.file_name().expect("name").to_string_lossy()
        );
        writer
            .start_file(name, zip::write::SimpleFileOptions::default())
            .expect("entry");
        std::io::Write::write_all(&mut writer, &std::fs::read(file).expect("read")).expect("write");
    }
    writer.finish().expect("zip");

    assert_eq!(
        totalseg_io::InputKind::of(&zip_path),
        totalseg_io::InputKind::DicomZip
    );
    let from_zip = totalseg_io::read_image(&zip_path).expect("zip reads");
    let from_folder = read_dicom_series(&shared_series()).expect("folder reads");
    assert_eq!(from_zip.data, from_folder.data);
    assert_eq!(from_zip.affine, from_folder.affine);
    assert_eq!(from_zip.spacing, from_folder.spacing);
    assert_eq!(from_zip.header.dim, from_folder.header.dim);
    assert_eq!(from_zip.source.as_deref(), Some(zip_path.as_path()));
}
