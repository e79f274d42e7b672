//! Edge cases of the pipeline against the official tool's outputs (fixtures/pipeline_edges/,
//! made by tools/fixtures/make_edge_fixtures.py with the synthetic-weight models of
//! fixtures/pipeline/weights): an empty crop mask, `--save_lowres`, the body task's derived
//! masks, DICOM input and the DICOM output types on the command line; and the inputs and
//! tasks that must be refused with a clear error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::Array3;
use totalseg_io::nifti::{
    read_label_map, read_nifti, read_nifti_header, write_volume, NiftiDataType, NiftiHeader, Volume,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shared(name: &str) -> PathBuf {
    repo().join("../shared/data/totalseg-examples").join(name)
}

fn official(case: &str) -> PathBuf {
    repo().join("fixtures/pipeline_edges").join(case)
}

/// Runs `totalseg -i input -o output args...` with the synthetic weights, offline, in a
/// fresh home under `work`.
fn totalseg(input: &Path, output: &Path, args: &[&str], work: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_totalseg"))
        .arg("-i")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(args)
        .arg("--weights-dir")
        .arg(repo().join("fixtures/pipeline/weights"))
        .arg("--offline")
        .arg("-q")
        .env("TOTALSEG_HOME_DIR", work.join("home"))
        .env_remove("TOTALSEG_WEIGHTS_PATH")
        .output()
        .expect("totalseg runs")
}

fn run_ok(input: &Path, output: &Path, args: &[&str], work: &Path) {
    let out = totalseg(input, output, args, work);
    assert!(
        out.status.success(),
        "totalseg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs totalseg on `input` (output `<work>/out.nii.gz`), expects it to fail, returns stderr.
fn run_failing(input: &Path, args: &[&str], work: &Path) -> String {
    let out = totalseg(input, &work.join("out.nii.gz"), args, work);
    assert!(!out.status.success(), "totalseg {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// [`assert_same_output`] for each of `files` in our folder and the official one.
fn assert_same_files(ours: &Path, theirs: &Path, files: &[impl AsRef<Path>]) {
    for f in files {
        assert_same_output(&ours.join(f), &theirs.join(f));
    }
}

/// Same header (every field, as the bytes it is written as), label names, shape and voxels.
fn assert_same_output(ours: &Path, theirs: &Path) {
    let a = read_nifti_header(ours).expect("our header");
    let b = read_nifti_header(theirs).expect("official header");
    assert_eq!(
        a.to_bytes().to_vec(),
        b.to_bytes().to_vec(),
        "header of {} differs from {}",
        ours.display(),
        theirs.display()
    );
    let la = read_label_map(ours).expect("ours reads");
    let lb = read_label_map(theirs).expect("official reads");
    assert_eq!(la.names, lb.names, "label names of {}", ours.display());
    assert_eq!(
        la.labels.dim(),
        lb.labels.dim(),
        "shape of {}",
        ours.display()
    );
    let differing = la
        .labels
        .iter()
        .zip(lb.labels.iter())
        .filter(|(x, y)| x != y)
        .count();
    assert_eq!(differing, 0, "voxels differing in {}", ours.display());
}

#[test]
fn empty_crop_mask_gives_an_all_zero_result_like_totalsegmentator() {
    let work = tempfile::tempdir().expect("tmp");
    let input = shared("example_ct_sm.nii.gz");
    let ml = work.path().join("ml/segmentation.nii.gz");
    run_ok(
        &input,
        &ml,
        &["--roi_subset", "liver", "spleen", "--ml"],
        work.path(),
    );
    let map = read_label_map(&ml).expect("reads");
    assert!(map.labels.iter().all(|&v| v == 0), "empty crop: all zero");
    assert_same_output(&ml, &official("empty_crop_ml/segmentation.nii.gz"));

    let per_class = work.path().join("per_class");
    run_ok(
        &input,
        &per_class,
        &["--roi_subset", "liver", "spleen"],
        work.path(),
    );
    let mut files: Vec<String> = std::fs::read_dir(&per_class)
        .expect("output folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["liver.nii.gz", "spleen.nii.gz"]);
    assert_same_files(&per_class, &official("empty_crop/segmentations"), &files);
}

#[test]
fn save_lowres_keeps_the_model_grid_like_totalsegmentator() {
    let work = tempfile::tempdir().expect("tmp");
    let input = shared("example_ct_sm.nii.gz");
    let ml = work.path().join("fast/segmentation.nii.gz");
    run_ok(
        &input,
        &ml,
        &["--fast", "--save_lowres", "--ml"],
        work.path(),
    );
    let ours = read_label_map(&ml).expect("reads");
    assert!(ours.labels.iter().any(|&v| v != 0));
    assert_same_output(&ml, &official("fast_save_lowres_ml/segmentation.nii.gz"));

    let per_class = work.path().join("fastest");
    run_ok(
        &input,
        &per_class,
        &["--fastest", "--save_lowres"],
        work.path(),
    );
    // example_ct_sm is 122x101x30 at 3 mm: the 6 mm model grid is about half that.
    let lowres = read_label_map(&per_class.join("liver.nii.gz")).expect("reads");
    assert_ne!(lowres.labels.dim(), (122, 101, 30));
    assert_same_files(
        &per_class,
        &official("fastest_save_lowres/segmentations"),
        &["liver.nii.gz", "vertebrae_L1.nii.gz", "aorta.nii.gz"],
    );
}

#[test]
fn body_task_writes_derived_body_and_skin_masks() {
    let work = tempfile::tempdir().expect("tmp");
    let out = work.path().join("body");
    run_ok(
        &shared("example_ct_sm.nii.gz"),
        &out,
        &["--task", "body", "--fast"],
        work.path(),
    );
    assert_same_files(
        &out,
        &official("body_fast/segmentations"),
        &[
            "body_trunc.nii.gz",
            "body_extremities.nii.gz",
            "body.nii.gz",
            "skin.nii.gz",
        ],
    );
    let skin = read_label_map(&out.join("skin.nii.gz")).expect("skin");
    assert!(skin.labels.iter().any(|&v| v == 1), "a skin was found");

    // --no_derived_masks (-ndm) and --ml write no derived files.
    let plain = work.path().join("plain");
    run_ok(
        &shared("example_ct_sm.nii.gz"),
        &plain,
        &["--task", "body", "--fast", "-ndm"],
        work.path(),
    );
    assert!(plain.join("body_trunc.nii.gz").exists());
    assert!(!plain.join("body.nii.gz").exists() && !plain.join("skin.nii.gz").exists());
}

#[test]
fn dicom_folder_input_matches_totalsegmentator() {
    let work = tempfile::tempdir().expect("tmp");
    let ml = work.path().join("dicom/segmentation.nii.gz");
    // Asking for the MR model on a CT series runs the CT model, with the official warning.
    let out = totalseg(
        &shared("example_ct_dicom"),
        &ml,
        &["--task", "total_mr", "--fast", "--ml"],
        work.path(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("input modality is CT. Will run CT model instead."),
        "{stderr}"
    );
    assert_matches_official_dicom_fast_ml(&ml);
}

/// Same header, affine and names as the official `--fast --ml` run on the shared series;
/// voxels as the parity suite requires (the fp16 tile sums leave a few near-tie voxels at
/// model resolution: 45 of 5.2 M when measured).
fn assert_matches_official_dicom_fast_ml(ml: &Path) {
    let theirs = official("dicom_fast_ml/segmentation.nii.gz");
    assert_eq!(
        read_nifti_header(ml).expect("ours").to_bytes().to_vec(),
        read_nifti_header(&theirs)
            .expect("official")
            .to_bytes()
            .to_vec()
    );
    let a = read_label_map(ml).expect("ours");
    let b = read_label_map(&theirs).expect("official");
    assert_eq!(a.names, b.names);
    assert_eq!(a.labels.dim(), b.labels.dim());
    let differing = a
        .labels
        .iter()
        .zip(b.labels.iter())
        .filter(|(x, y)| x != y)
        .count();
    assert!(
        differing * 10_000 < a.labels.len(),
        "{differing} voxels differ"
    );
    let (mean, worst) = dice(&a.labels, &b.labels);
    assert!(
        mean >= 0.999 && worst >= 0.99,
        "Dice mean {mean}, worst {worst}"
    );
}

/// A zip file of the series is extracted and read as the folder is (TotalSegmentator's
/// dcm_to_nifti); the zip cannot be the reference of DICOM outputs.
#[test]
fn dicom_zip_input_matches_totalsegmentator() {
    let work = tempfile::tempdir().expect("tmp");
    let zip_path = work.path().join("series.zip");
    let mut writer = zip::ZipWriter::new(std::fs::File::create(&zip_path).expect("create"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(shared("example_ct_dicom"))
        .expect("series")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for file in &files {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        writer
            .start_file(name, zip::write::SimpleFileOptions::default())
            .expect("entry");
        std::io::Write::write_all(&mut writer, &std::fs::read(file).expect("read")).expect("write");
    }
    writer.finish().expect("zip");
    let ml = work.path().join("zip/segmentation.nii.gz");
    run_ok(&zip_path, &ml, &["--fast", "--ml"], work.path());
    assert_matches_official_dicom_fast_ml(&ml);

    let err = run_failing(&zip_path, &["--fast", "-ot", "dicom_seg"], work.path());
    assert!(err.contains("not as a zip file"), "{err}");
}

/// Mean and worst per-class Dice over the labels present in either map.
fn dice(a: &Array3<u8>, b: &Array3<u8>) -> (f64, f64) {
    let (mut inter, mut na, mut nb) = ([0u64; 256], [0u64; 256], [0u64; 256]);
    for (&x, &y) in a.iter().zip(b.iter()) {
        na[x as usize] += 1;
        nb[y as usize] += 1;
        if x == y {
            inter[x as usize] += 1;
        }
    }
    let dices: Vec<f64> = (1..256)
        .filter(|&l| na[l] + nb[l] > 0)
        .map(|l| 2.0 * inter[l] as f64 / (na[l] + nb[l]) as f64)
        .collect();
    assert!(!dices.is_empty(), "no foreground");
    let mean = dices.iter().sum::<f64>() / dices.len() as f64;
    (mean, dices.iter().cloned().fold(1.0, f64::min))
}

#[test]
fn not_a_dicom_folder_is_a_clear_error() {
    let work = tempfile::tempdir().expect("tmp");
    let folder = work.path().join("not_dicom");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::write(folder.join("notes.txt"), "hello").expect("write");
    let err = run_failing(&folder, &["--fast", "--ml"], work.path());
    assert!(err.contains("no DICOM files"), "{err}");
    assert!(err.contains(&folder.display().to_string()), "{err}");
}

#[test]
fn a_2d_image_is_refused_as_totalsegmentator_does() {
    let work = tempfile::tempdir().expect("tmp");
    let eye = [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    // A 2-D NIfTI (dim[0] = 2): the official tool raises "TotalSegmentator does not work
    // for 2D images. Use a 3D image."
    let mut header =
        NiftiHeader::for_new_image([16, 16, 1], &eye, NiftiDataType::I16).expect("header");
    header.dim[0] = 2;
    header.vox_offset = 352.0;
    let mut bytes = header.to_bytes().to_vec();
    bytes.extend_from_slice(&[0; 4]);
    bytes.extend_from_slice(&[0; 16 * 16 * 2]);
    let path = work.path().join("slice.nii");
    std::fs::write(&path, bytes).expect("write");
    let err = run_failing(&path, &["--fast", "--ml"], work.path());
    assert!(err.contains("2D image"), "{err}");
    assert!(err.contains("slice.nii"), "{err}");

    // The same slice stored as a 3-D image of one 1 mm slice: the 3 mm model grid would
    // have no slice at all, so it is refused with the reason (the official tool fails
    // inside scipy here).
    let v = Volume::new(Array3::zeros((16, 16, 1)), eye).expect("volume");
    let path = work.path().join("one_slice.nii");
    write_volume(&path, &v, NiftiDataType::I16).expect("write");
    let err = run_failing(&path, &["--fast", "--ml"], work.path());
    assert!(err.contains("too thin to segment"), "{err}");
    assert!(err.contains("one_slice.nii"), "{err}");
}

#[test]
fn cascade_channel_tasks_are_refused_naming_the_task() {
    // No 2.18 task feeds a cascade channel; a task that did would be refused by name.
    let registry = totalsegmentator::TaskRegistry::new();
    let mut task = registry
        .task("liver_vessels", totalsegmentator::Variant::Default)
        .expect("task");
    task.cascade = true;
    let err = totalsegmentator::segmenter::check_supported(&task).expect_err("refused");
    assert!(matches!(
        err,
        totalsegmentator::SegmentError::UnsupportedTask { ref task, .. } if task == "liver_vessels"
    ));
    assert!(err
        .to_string()
        .contains("task liver_vessels is not supported"));
    for supported in [
        "total",
        "vertebrae_pp",
        "vertebrae_pp_refined",
        "body",
        "teeth",
    ] {
        let task = registry
            .task(supported, totalsegmentator::Variant::Default)
            .expect("task");
        assert!(totalsegmentator::segmenter::check_supported(&task).is_ok());
    }
}

/// TotalSegmentator turns `--save_lowres` off under `--higher_order_resampling`, and with it
/// the refusal of `--save_lowres` with a crop: the output is in the input's geometry, as
/// without `--save_lowres`.
#[test]
fn higher_order_resampling_overrides_save_lowres() {
    let work = tempfile::tempdir().expect("tmp");
    let input = shared("example_ct_sm.nii.gz");
    let plain = work.path().join("ho.nii.gz");
    let lowres = work.path().join("ho_lowres.nii.gz");
    run_ok(&input, &plain, &["--fastest", "--ml", "-ho"], work.path());
    run_ok(
        &input,
        &lowres,
        &["--fastest", "--ml", "-ho", "--save_lowres"],
        work.path(),
    );
    let a = read_label_map(&plain).expect("reads");
    let b = read_label_map(&lowres).expect("reads");
    assert_eq!(a.labels.dim(), (122, 101, 30), "the input's shape");
    assert_eq!(a.labels, b.labels);
    assert!(a.labels.iter().any(|&l| l != 0));
    let with_crop = work.path().join("ho_crop.nii.gz");
    run_ok(
        &input,
        &with_crop,
        &[
            "--fast",
            "-ho",
            "--save_lowres",
            "--roi_subset",
            "liver",
            "--ml",
        ],
        work.path(),
    );
}

#[test]
fn save_lowres_with_a_crop_is_refused() {
    let work = tempfile::tempdir().expect("tmp");
    let err = run_failing(
        &shared("example_ct_sm.nii.gz"),
        &["--fast", "--save_lowres", "--roi_subset", "liver", "--ml"],
        work.path(),
    );
    assert!(
        err.contains("save_lowres is not supported together with cropping"),
        "{err}"
    );
}

#[test]
fn batch_size_variable_is_checked_and_does_not_change_the_output() {
    let work = tempfile::tempdir().expect("tmp");
    let input = shared("example_ct_sm.nii.gz");
    let with_batch = |value: &str, output: &Path| {
        Command::new(env!("CARGO_BIN_EXE_totalseg"))
            .arg("-i")
            .arg(&input)
            .arg("-o")
            .arg(output)
            .args([
                "--fast",
                "--ml",
                "-d",
                "cpu",
                "-q",
                "--offline",
                "--weights-dir",
            ])
            .arg(repo().join("fixtures/pipeline/weights"))
            .env("TOTALSEG_HOME_DIR", work.path().join("home"))
            .env("TOTALSEG_BATCH_SIZE", value)
            .env_remove("TOTALSEG_WEIGHTS_PATH")
            .output()
            .expect("totalseg runs")
    };
    let refused = with_batch("0", &work.path().join("zero.nii.gz"));
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("TOTALSEG_BATCH_SIZE=0"), "{err}");
    assert!(!work.path().join("zero.nii.gz").exists());

    // Three tiles per network call: the official --fast output all the same.
    let output = work.path().join("three.nii.gz");
    let out = with_batch("3", &output);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_output(
        &output,
        &repo().join("fixtures/pipeline/fast_ml/segmentation.nii.gz"),
    );
}

/// Every flag of the official CLI parses; those `totalseg` cannot honour fail with a message
/// naming the flag, before anything is read or written.
#[test]
fn official_flags_we_do_not_implement_fail_naming_the_flag() {
    let work = tempfile::tempdir().expect("tmp");
    let err = run_failing(
        &shared("example_ct_sm.nii.gz"),
        &["--test", "1"],
        work.path(),
    );
    assert!(err.contains("option --test is not supported"), "{err}");
    assert!(!work.path().join("out.nii.gz").exists());
    // Accepted as the official tool accepts them: nifti output, the default NORA tag, a crop
    // path (which TotalSegmentator 2.x does not read either), --debug.
    run_ok(
        &shared("example_ct_sm.nii.gz"),
        &work.path().join("ok.nii.gz"),
        &[
            "--fastest",
            "--ml",
            "-ot",
            "nifti",
            "-t",
            "None",
            "-cp",
            "/nonexistent",
            "--debug",
        ],
        work.path(),
    );
}

/// `--debug` adds where the failing run was pointed.
#[test]
fn debug_flag_prints_the_input_and_task_on_errors() {
    let work = tempfile::tempdir().expect("tmp");
    let missing = work.path().join("missing.nii.gz");
    let err = run_failing(&missing, &["--fastest", "--debug"], work.path());
    assert!(err.contains("debug: input"), "{err}");
    assert!(
        err.contains("missing.nii.gz") && err.contains("task total"),
        "{err}"
    );
}

/// `-ot nifti dicom_seg dicom_rtstruct`: the three files, named as nnunet.py names them,
/// holding the same structures.
#[test]
fn cli_writes_nifti_seg_and_rtstruct_side_by_side() {
    let work = tempfile::tempdir().expect("tmp");
    let out = totalseg(
        &shared("example_ct_dicom"),
        &work.path().join("out/ct.nii.gz"),
        &[
            "--fast",
            "-ot",
            "nifti,dicom_seg",
            "dicom_rtstruct",
            "--statistics",
        ],
        work.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folder = work.path().join("out");
    let nifti = folder.join("ct.nii.gz");
    let seg = folder.join("ct_seg.dcm");
    let rt = folder.join("ct_rtstruct.dcm");
    assert!(nifti.is_file() && seg.is_file() && rt.is_file());
    // DICOM output makes the NIfTI multilabel (nnunet.py forces multilabel_image).
    let labels = read_label_map(&nifti).expect("multilabel NIfTI");
    let present = {
        let mut p: Vec<u8> = labels.labels.iter().copied().filter(|&v| v != 0).collect();
        p.sort_unstable();
        p.dedup();
        p.len()
    };
    let seg = dicom_object::OpenFileOptions::new()
        .open_file(&seg)
        .expect("SEG");
    let segments = seg
        .element(dicom_dictionary_std::tags::SEGMENT_SEQUENCE)
        .expect("segments")
        .items()
        .expect("items")
        .len();
    assert_eq!(segments, present);
    let rt = dicom_object::OpenFileOptions::new()
        .open_file(&rt)
        .expect("RT-STRUCT");
    let rois = rt
        .element(dicom_dictionary_std::tags::STRUCTURE_SET_ROI_SEQUENCE)
        .expect("rois")
        .items()
        .expect("items")
        .len();
    assert_eq!(rois, present);
    // Statistics go next to the outputs (the output file's folder).
    assert!(folder.join("statistics.json").is_file());
}

#[test]
fn cli_refuses_dicom_output_for_a_nifti_input() {
    let work = tempfile::tempdir().expect("tmp");
    let out = totalseg(
        &shared("example_ct_sm.nii.gz"),
        &work.path().join("seg.dcm"),
        &["--fast", "-ot", "dicom_seg"],
        work.path(),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("you also have to use a Dicom image as input"),
        "{err}"
    );
    let out = totalseg(
        &shared("example_ct_dicom"),
        &work.path().join("seg.dcm"),
        &["-ot", "png"],
        work.path(),
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid output types: ['png']"));
    assert!(!work.path().join("seg.dcm").exists());
}

/// `--nora_tag`: each written NIfTI file is added to the NORA project, the multilabel file as
/// an atlas and per-class files as masks, as TotalSegmentator calls NORA; a missing NORA
/// client is a warning, not a failure.
#[test]
fn nora_tag_adds_the_written_files_to_the_project() {
    let work = tempfile::tempdir().expect("tmp");
    let log = work.path().join("nora.log");
    let fake = work.path().join("nora");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .expect("script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let ct = shared("example_ct_sm.nii.gz");
    let run = |output: &Path, args: &[&str], nora: &Path| {
        Command::new(env!("CARGO_BIN_EXE_totalseg"))
            .arg("-i")
            .arg(&ct)
            .arg("-o")
            .arg(output)
            .args(args)
            .args(["--weights-dir"])
            .arg(repo().join("fixtures/pipeline/weights"))
            .args(["--offline", "-q", "-t", "project7"])
            .env("TOTALSEG_HOME_DIR", work.path().join("home"))
            .env("TOTALSEG_NORA_BIN", nora)
            .env_remove("TOTALSEG_WEIGHTS_PATH")
            .output()
            .expect("totalseg runs")
    };
    let ml = work.path().join("seg.nii.gz");
    let out = run(&ml, &["--fast", "--ml"], &fake);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let per_class = work.path().join("segs");
    let out = run(
        &per_class,
        &["--fast", "--roi_subset", "liver", "spleen"],
        &fake,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .expect("nora was called")
        .lines()
        .map(String::from)
        .collect();
    let add =
        |file: &Path, tag: &str| format!("-p project7 --add {} --addtag {tag}", file.display());
    assert_eq!(
        lines,
        vec![
            add(&ml, "atlas"),
            // In class order, as the official per-class loop: spleen is 1, liver 5.
            add(&per_class.join("spleen.nii.gz"), "mask"),
            add(&per_class.join("liver.nii.gz"), "mask"),
        ]
    );
    // No NORA client: the output is written and the run succeeds, with a warning.
    let out = run(
        &work.path().join("again.nii.gz"),
        &["--fast", "--ml"],
        &work.path().join("missing"),
    );
    assert!(out.status.success());
    assert!(work.path().join("again.nii.gz").is_file());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nora_tag: could not run"));
}

/// `--radiomics`: statistics_radiomics.json in the output folder, one entry per class mask
/// in file name order; at 3 mm (no resampling) VoxelVolume is the mask's voxel count x 27.
/// With --ml or a DICOM input it is refused before anything is written.
#[test]
fn radiomics_flag_writes_features_of_every_class_mask() {
    let work = tempfile::tempdir().expect("tmp");
    let output = work.path().join("segmentations");
    run_ok(
        &shared("example_ct_sm.nii.gz"),
        &output,
        &["--fastest", "--radiomics"],
        work.path(),
    );
    let text = std::fs::read_to_string(output.join("statistics_radiomics.json")).expect("json");
    let report: serde_json::Value = serde_json::from_str(&text).expect("parses");
    let report = report.as_object().expect("object");
    let mut files: Vec<String> = std::fs::read_dir(&output)
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".nii.gz"))
        .collect();
    files.sort();
    let names: Vec<&str> = files
        .iter()
        .map(|f| f.trim_end_matches(".nii.gz"))
        .collect();
    assert_eq!(report.keys().map(String::as_str).collect::<Vec<_>>(), names);
    let mut with_features = 0;
    for name in names {
        let mask = read_nifti(&output.join(format!("{name}.nii.gz"))).expect("mask");
        let count = mask.data.iter().filter(|&&v| v == 1.0).count();
        let features = report[name].as_object().expect("features");
        if features.len() == 32 {
            with_features += 1;
            assert_eq!(features["shape_VoxelVolume"], count as f64 * 27.0, "{name}");
        } else {
            assert_eq!(features.len(), 107, "{name}");
            assert!(features.values().all(|v| v == 0.0), "{name}");
        }
    }
    assert!(with_features > 10, "{with_features} masks with features");

    for (input, args, message) in [
        (
            shared("example_ct_sm.nii.gz"),
            &["--fastest", "--radiomics", "--ml"][..],
            "Radiomics not supported for multilabel segmentation",
        ),
        (
            shared("example_ct_dicom"),
            &["--fastest", "-r"][..],
            "Radiomics not supported for DICOM input",
        ),
    ] {
        let err = run_failing(&input, args, work.path());
        assert!(err.contains(message), "{args:?}: {err}");
    }
    assert!(!work.path().join("out.nii.gz").exists());
}

/// The `probabilities` array of an npz written by NumPy or by us: shape and values.
fn read_npz_probabilities(path: &Path) -> (Vec<usize>, Vec<f32>) {
    use std::io::Read;
    let file = std::fs::File::open(path).expect("npz");
    let mut zip = zip::ZipArchive::new(file).expect("npz is a zip");
    let mut entry = zip.by_name("probabilities.npy").expect("probabilities.npy");
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).expect("read npy");
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "npy 1.0");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).expect("ascii header");
    assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"));
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .expect("shape")
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let values: Vec<f32> = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(values.len(), shape.iter().product::<usize>());
    (shape, values)
}

/// `--save_probabilities`: nnU-Net's npz and pkl as the official tool writes them
/// (`tools/fixtures/make_probabilities_fixtures.py`, `--task body --fast`): the pickle
/// byte-identical, the probabilities equal up to the fp16 logit gaps between the networks
/// (the argmax everywhere the same).
#[test]
fn save_probabilities_matches_the_official_files() {
    let work = tempfile::tempdir().expect("tmp");
    let npz = work.path().join("probs/p.npz");
    run_ok(
        &shared("example_ct_sm.nii.gz"),
        &work.path().join("seg.nii.gz"),
        &[
            "--ml",
            "--task",
            "body",
            "--fast",
            "-sp",
            npz.to_str().unwrap(),
        ],
        work.path(),
    );
    let official = official("body_fast_probabilities");
    assert_eq!(
        std::fs::read(work.path().join("probs/p.pkl")).expect("our pkl"),
        std::fs::read(official.join("probs.pkl")).expect("official pkl"),
        "the pickled properties"
    );
    let (shape, ours) = read_npz_probabilities(&npz);
    let (official_shape, theirs) = read_npz_probabilities(&official.join("probs.npz"));
    assert_eq!(shape, official_shape);
    assert_eq!(shape, [3, 15, 50, 61]);
    let max_diff = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let identical = ours.iter().zip(&theirs).filter(|(a, b)| a == b).count();
    assert!(max_diff < 2e-3, "max difference {max_diff}");
    assert!(
        identical * 10 > ours.len() * 9,
        "{identical} of {} identical",
        ours.len()
    );
    // Per voxel the probabilities sum to 1 and the most probable class is the official one.
    let voxels = ours.len() / shape[0];
    for v in 0..voxels {
        let class_of = |p: &[f32]| {
            (0..shape[0]).max_by(|&a, &b| p[a * voxels + v].total_cmp(&p[b * voxels + v]))
        };
        assert_eq!(class_of(&ours), class_of(&theirs), "voxel {v}");
        let sum: f32 = (0..shape[0]).map(|c| ours[c * voxels + v]).sum();
        assert!((sum - 1.0).abs() < 1e-5, "voxel {v} sums to {sum}");
    }
}

/// Runs `totalseg combine-masks -i input -o output -m group extra...`.
fn combine_masks(input: &Path, output: &Path, group: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_totalseg"))
        .arg("combine-masks")
        .arg("-i")
        .arg(input)
        .arg("-o")
        .arg(output)
        .args(["-m", group])
        .args(extra)
        .output()
        .expect("totalseg runs")
}

/// `totalseg combine-masks` against the official `totalseg_combine_masks`
/// (`tools/fixtures/make_combine_masks_fixtures.py`): from the shared multilabel file (with
/// and without `-ml`) and from a folder of per-class masks; headers byte-identical, voxels
/// equal. A missing class file and a multilabel file without label names are clear errors.
#[test]
fn combine_masks_matches_the_official_tool() {
    let work = tempfile::tempdir().expect("tmp");
    let seg = shared("example_seg.nii.gz");
    let fixtures = repo().join("fixtures/combine_masks");
    let ok = |run: Output| {
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    };
    for (group, extra, name) in [
        ("lung", &[][..], "lung_from_multilabel.nii.gz"),
        (
            "vertebrae_ribs",
            &["-ml"][..],
            "vertebrae_ribs_ml_from_multilabel.nii.gz",
        ),
    ] {
        let out = work.path().join(name);
        ok(combine_masks(&seg, &out, group, extra));
        assert_same_output(&out, &fixtures.join(name));
    }

    // A folder of per-class masks, as the official per-class output writes them.
    let folder = work.path().join("segmentations");
    std::fs::create_dir(&folder).expect("mkdir");
    let map = read_label_map(&seg).expect("label map");
    let total = totalseg_core::tasks::ClassMap::get("total").expect("total");
    for (label, name) in total.iter() {
        totalseg_io::nifti::write_class_mask(
            &folder.join(format!("{name}.nii.gz")),
            map.labels.view(),
            label as u8,
            &map.header,
        )
        .expect("mask");
    }
    let out = work.path().join("vertebrae.nii.gz");
    ok(combine_masks(&folder, &out, "vertebrae", &[]));
    assert_same_output(&out, &fixtures.join("vertebrae_from_folder.nii.gz"));

    // Errors name the file and leave nothing behind.
    let failing = |input: &Path, group: &str| {
        let run = combine_masks(input, &work.path().join("failed.nii.gz"), group, &[]);
        assert!(!run.status.success(), "{group} succeeded");
        String::from_utf8_lossy(&run.stderr).into_owned()
    };
    std::fs::remove_file(folder.join("vertebrae_T5.nii.gz")).expect("rm");
    let err = failing(&folder, "vertebrae");
    assert!(
        err.contains("vertebrae_T5.nii.gz") && err.contains("not found"),
        "{err}"
    );
    // The official combined file has no label extension.
    let err = failing(&fixtures.join("lung_from_multilabel.nii.gz"), "lung");
    assert!(err.contains("no label names"), "{err}");
    failing(&seg, "heart");
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".tmp") || n.starts_with("failed"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// As the official tool (`show_license_info`), a licensed task needs a licence number of 18
/// characters in config.json even when its weights are on disk; `-l` stores one.
#[test]
fn licensed_tasks_need_a_stored_licence_as_in_totalsegmentator() {
    let work = tempfile::tempdir().expect("tmp");
    let input = repo().join("fixtures/pipeline/inputs/ct_block_0.8x0.8x2.5.nii.gz");
    let args = ["--task", "pulmonary_artery_landmarks", "--ml"];
    let err = run_failing(&input, &args, work.path());
    assert!(err.contains("needs a TotalSegmentator licence"), "{err}");
    assert!(!work.path().join("out.nii.gz").exists());

    std::fs::create_dir_all(work.path().join("home")).expect("home");
    std::fs::write(
        work.path().join("home/config.json"),
        r#"{"license_number": "aca_short"}"#,
    )
    .expect("config");
    let err = run_failing(&input, &args, work.path());
    assert!(err.contains("18 characters"), "{err}");

    let out = work.path().join("licensed.nii.gz");
    run_ok(
        &input,
        &out,
        &[
            "--task",
            "pulmonary_artery_landmarks",
            "--ml",
            "-l",
            "aca_FIXTURES000000",
        ],
        work.path(),
    );
    assert!(out.is_file());
}
