//! `totalseg import-weights -i <zip>` (TotalSegmentator's totalseg_import_weights): a release
//! archive unpacked into the weights folder is used offline as a downloaded one is; archives
//! that are not weights are refused without writing anything.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const BODY: &str = "Dataset300_body_6mm_1559subj";

/// Zips `folder` as `<top>/...` entries (the layout of the official release archives).
fn zip_folder(folder: &Path, top: &str, out: &Path) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(out).expect("create"));
    let options = zip::write::SimpleFileOptions::default();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("list")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path.strip_prefix(folder).expect("inside");
            let name = format!("{top}/{}", rel.to_string_lossy());
            if path.is_dir() {
                zip.add_directory(format!("{name}/"), options).expect("dir");
                pending.push(path);
            } else {
                zip.start_file(name, options).expect("file");
                std::io::Write::write_all(&mut zip, &std::fs::read(&path).expect("read"))
                    .expect("write");
            }
        }
    }
    zip.finish().expect("zip");
}

fn totalseg(args: &[&std::ffi::OsStr], home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_totalseg"))
        .args(args)
        .env("TOTALSEG_HOME_DIR", home)
        .env_remove("TOTALSEG_WEIGHTS_PATH")
        .output()
        .expect("totalseg runs")
}

#[test]
fn imported_weights_are_used_offline() {
    let work = tempfile::tempdir().expect("tmp");
    let source = repo().join("fixtures/pipeline/weights").join(BODY);
    let archive = work.path().join("body.zip");
    zip_folder(&source, BODY, &archive);
    let weights = work.path().join("weights");
    let home = work.path().join("home");

    let out = totalseg(
        &[
            "import-weights".as_ref(),
            "-i".as_ref(),
            archive.as_os_str(),
            "--weights-dir".as_ref(),
            weights.as_os_str(),
        ],
        &home,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = "nnUNetTrainer__nnUNetPlans__3d_fullres";
    for file in ["plans.json", "dataset.json", "fold_0/checkpoint_final.pth"] {
        assert_eq!(
            std::fs::read(weights.join(BODY).join(model).join(file)).expect("imported"),
            std::fs::read(source.join(model).join(file)).expect("source"),
            "{file}"
        );
    }

    let ct = repo().join("../shared/data/totalseg-examples/example_ct_sm.nii.gz");
    let seg = work.path().join("body.nii.gz");
    let out = totalseg(
        &[
            "-i".as_ref(),
            ct.as_os_str(),
            "-o".as_ref(),
            seg.as_os_str(),
            "--task".as_ref(),
            "body".as_ref(),
            "--fast".as_ref(),
            "--ml".as_ref(),
            "-d".as_ref(),
            "cpu".as_ref(),
            "-q".as_ref(),
            "--offline".as_ref(),
            "--weights-dir".as_ref(),
            weights.as_os_str(),
        ],
        &home,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(seg.is_file());
}

#[test]
fn archives_that_are_not_weights_are_refused() {
    let work = tempfile::tempdir().expect("tmp");
    let weights = work.path().join("weights");
    let home = work.path().join("home");
    let run = |archive: &Path| {
        totalseg(
            &[
                "import-weights".as_ref(),
                "-i".as_ref(),
                archive.as_os_str(),
                "--weights-dir".as_ref(),
                weights.as_os_str(),
            ],
            &home,
        )
    };

    // No DatasetNNN_ folder at the top.
    let other = work.path().join("other.zip");
    zip_folder(&repo().join("fixtures/info"), "info", &other);
    let out = run(&other);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("other.zip") && err.contains("DatasetNNN_name"),
        "{err}"
    );

    // A dataset folder without a complete model folder.
    let partial_src = work.path().join("partial");
    std::fs::create_dir_all(partial_src.join("model")).expect("mkdir");
    std::fs::write(partial_src.join("model/plans.json"), "{}").expect("write");
    let partial = work.path().join("partial.zip");
    zip_folder(&partial_src, BODY, &partial);
    let out = run(&partial);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(BODY), "{err}");

    // A truncated archive.
    let good = work.path().join("good.zip");
    zip_folder(
        &repo().join("fixtures/pipeline/weights").join(BODY),
        BODY,
        &good,
    );
    let bytes = std::fs::read(&good).expect("read");
    let truncated = work.path().join("truncated.zip");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let out = run(&truncated);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated.zip"));

    // Nothing was left in the weights folder (temporary unpack folders included).
    let left: Vec<_> = std::fs::read_dir(&weights)
        .map(|d| d.map(|e| e.expect("entry").file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}
