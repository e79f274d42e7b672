//! Bad model folders and bad checkpoint files: each gives a typed error naming the file,
//! and a failed conversion leaves no output behind.

mod common;

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};

use common::{fixtures, model_folder};
use weights_converter::torch::NnUnetCheckpoint;
use weights_converter::{convert_model_folder, ConvertError, ConvertOptions};

/// A writable copy of a fixture's model folder, named `<trainer>__<plans>__<configuration>`.
fn copy_model_folder(root: &Path, dir: &Path) -> PathBuf {
    let src = model_folder(root);
    let dst = dir.join(src.file_name().unwrap());
    copy_dir(&src, &dst);
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

fn small_model(dir: &Path) -> PathBuf {
    copy_model_folder(&fixtures().join("converter/inherits_from"), dir)
}

fn convert(src: &Path, dir: &Path) -> Result<(), ConvertError> {
    convert_model_folder(src, &dir.join("out"), &ConvertOptions::default()).map(|_| ())
}

fn checkpoint_of(src: &Path) -> PathBuf {
    src.join("fold_0/checkpoint_final.pth")
}

/// Rewrites the zip at `path` with `edit` applied to each (name, bytes) entry (None drops it).
fn rewrite_zip(path: &Path, edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) {
    let data = std::fs::read(path).unwrap();
    let mut zin = zip::ZipArchive::new(Cursor::new(data)).unwrap();
    let mut out = Cursor::new(Vec::new());
    {
        let mut zout = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for i in 0..zin.len() {
            let mut file = zin.by_index(i).unwrap();
            let name = file.name().to_owned();
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes).unwrap();
            if let Some(bytes) = edit(&name, bytes) {
                zout.start_file(name, options).unwrap();
                zout.write_all(&bytes).unwrap();
            }
        }
        zout.finish().unwrap();
    }
    std::fs::write(path, out.into_inner()).unwrap();
}

fn assert_names_file<T: std::fmt::Debug>(
    result: Result<T, ConvertError>,
    file: &Path,
) -> ConvertError {
    let err = result.expect_err("expected an error");
    let message = err.to_string();
    assert!(
        message.contains(&file.display().to_string()),
        "{message} does not name {}",
        file.display()
    );
    err
}

#[test]
fn missing_dataset_json() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_model(dir.path());
    std::fs::remove_file(src.join("dataset.json")).unwrap();
    let err = assert_names_file(convert(&src, dir.path()), &src.join("dataset.json"));
    assert!(matches!(err, ConvertError::ModelFolder { .. }), "{err}");
    assert!(
        !dir.path().join("out").exists(),
        "nothing is created before the inputs check out"
    );
}

#[test]
fn no_fold_folders() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_model(dir.path());
    std::fs::remove_dir_all(src.join("fold_0")).unwrap();
    let err = assert_names_file(convert(&src, dir.path()), &src);
    assert!(err.to_string().contains("fold_"), "{err}");
    let options = ConvertOptions {
        folds: Some(vec![0]),
        ..ConvertOptions::default()
    };
    let err = convert_model_folder(&src, &dir.path().join("out"), &options).unwrap_err();
    assert!(err.to_string().contains("fold 0"), "{err}");
}

#[test]
fn plans_without_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_model(dir.path());
    let renamed = src.with_file_name("nnUNetTrainer__nnUNetPlans__3d_lowres");
    std::fs::rename(&src, &renamed).unwrap();
    let options = ConvertOptions {
        configuration: Some("3d_lowres".into()),
        ..ConvertOptions::default()
    };
    let err = convert_model_folder(&renamed, &dir.path().join("out"), &options).unwrap_err();
    match &err {
        ConvertError::MissingConfiguration {
            path,
            configuration,
            available,
        } => {
            assert_eq!(path, &renamed.join("plans.json"));
            assert_eq!(configuration, "3d_lowres");
            assert!(available.contains(&"3d_fullres_small".to_string()));
        }
        other => panic!("expected MissingConfiguration, got {other}"),
    }
    // Without the override, the folder name disagrees with the checkpoint's configuration.
    let err = convert(&renamed, dir.path()).unwrap_err();
    assert!(err.to_string().contains("3d_fullres_small"), "{err}");
}

#[test]
fn non_zip_and_truncated_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_model(dir.path());
    let pth = checkpoint_of(&src);
    let original = std::fs::read(&pth).unwrap();

    std::fs::write(&pth, b"this is not a zip file at all").unwrap();
    let err = assert_names_file(convert(&src, dir.path()), &pth);
    assert!(matches!(err, ConvertError::NotZip { .. }), "{err}");

    std::fs::write(&pth, &original[..original.len() / 2]).unwrap();
    let err = assert_names_file(convert(&src, dir.path()), &pth);
    assert!(matches!(err, ConvertError::NotZip { .. }), "{err}");

    std::fs::write(&pth, b"").unwrap();
    assert_names_file(convert(&src, dir.path()), &pth);
}

#[test]
fn zip_without_data_pkl() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_model(dir.path());
    let pth = checkpoint_of(&src);
    rewrite_zip(&pth, |name, bytes| {
        (!name.ends_with("data.pkl")).then_some(bytes)
    });
    let err = assert_names_file(convert(&src, dir.path()), &pth);
    assert!(matches!(err, ConvertError::MissingDataPkl { .. }), "{err}");
}

#[test]
fn corrupt_pickle() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_model(dir.path());
    let pth = checkpoint_of(&src);
    // A valid zip whose pickle stops half way (CRC is right, the pickle is not).
    rewrite_zip(&pth, |name, bytes| {
        Some(if name.ends_with("data.pkl") {
            bytes[..bytes.len() / 2].to_vec()
        } else {
            bytes
        })
    });
    let err = assert_names_file(convert(&src, dir.path()), &pth);
    match &err {
        ConvertError::Pickle { entry, .. } => assert!(entry.ends_with("data.pkl")),
        other => panic!("expected Pickle, got {other}"),
    }
}

#[test]
fn pickle_without_network_weights() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_model(dir.path());
    let pth = checkpoint_of(&src);
    std::fs::copy(fixtures().join("converter/not_a_checkpoint.pth"), &pth).unwrap();
    let err = assert_names_file(convert(&src, dir.path()), &pth);
    assert!(
        matches!(err, ConvertError::MissingNetworkWeights { .. }),
        "{err}"
    );
}

#[test]
fn storage_shorter_than_its_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_model(dir.path());
    let pth = checkpoint_of(&src);
    // Storage 0 is the first conv's weight; cut it to 3 bytes with a correct CRC.
    rewrite_zip(&pth, |name, bytes| {
        Some(if name.ends_with("/data/0") {
            bytes[..3].to_vec()
        } else {
            bytes
        })
    });
    let err = assert_names_file(convert(&src, dir.path()), &pth);
    match &err {
        ConvertError::StorageTooShort {
            storage,
            available,
            needed,
            ..
        } => {
            assert_eq!(storage, "0");
            assert_eq!(*available, 3);
            assert!(*needed > 3);
        }
        other => panic!("expected StorageTooShort, got {other}"),
    }
    assert!(!dir.path().join("out/model.safetensors").exists());
}

#[test]
fn corrupted_storage_bytes_fail_the_crc() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_model(dir.path());
    let pth = checkpoint_of(&src);
    let mut data = std::fs::read(&pth).unwrap();
    let archive = zip::ZipArchive::new(Cursor::new(data.clone())).unwrap();
    let name = archive
        .file_names()
        .find(|n| n.ends_with("/data/0"))
        .unwrap()
        .to_owned();
    let mut archive = archive;
    let start = archive.by_name(&name).unwrap().data_start() as usize;
    data[start] ^= 0x40;
    std::fs::write(&pth, data).unwrap();
    let err = assert_names_file(convert(&src, dir.path()), &pth);
    assert!(matches!(err, ConvertError::ZipEntry { .. }), "{err}");
}

#[test]
fn a_failed_conversion_keeps_existing_outputs_and_leaves_no_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_model(dir.path());
    let out = dir.path().join("out");
    convert_model_folder(&src, &out, &ConvertOptions::default()).unwrap();
    let before = std::fs::read(out.join("model.safetensors")).unwrap();
    let json_before = std::fs::read(out.join("model.json")).unwrap();

    // Fails while streaming tensors, after the output file was opened.
    rewrite_zip(&checkpoint_of(&src), |name, bytes| {
        Some(if name.ends_with("/data/3") {
            bytes[..1].to_vec()
        } else {
            bytes
        })
    });
    assert!(convert_model_folder(&src, &out, &ConvertOptions::default()).is_err());
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        before
    );
    assert_eq!(std::fs::read(out.join("model.json")).unwrap(), json_before);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn fold_with_different_layout_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let src = copy_model_folder(&fixtures().join("networks/plain_aniso_2folds"), dir.path());
    // Fold 1 replaced by a checkpoint of another network.
    let other = model_folder(&fixtures().join("networks/plain_oldformat"));
    std::fs::copy(
        checkpoint_of(&other),
        src.join("fold_1/checkpoint_final.pth"),
    )
    .unwrap();
    let err = convert(&src, dir.path()).unwrap_err();
    assert!(
        matches!(err, ConvertError::ArchitectureMismatch { .. }),
        "{err}"
    );
}

#[test]
fn weights_that_disagree_with_dataset_json() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_model(dir.path());
    let text = std::fs::read_to_string(src.join("dataset.json")).unwrap();
    std::fs::write(
        src.join("dataset.json"),
        text.replace("\"alpha\": 1", "\"alpha\": 1, \"beta\": 3"),
    )
    .unwrap();
    let err = assert_names_file(convert(&src, dir.path()), &checkpoint_of(&src));
    assert!(err.to_string().contains("seg_layers"), "{err}");
}

#[test]
fn in_memory_checkpoints_read_like_files() {
    let path = checkpoint_of(&model_folder(&fixtures().join("converter/inherits_from")));
    let data = std::fs::read(&path).unwrap();
    let len = data.len() as u64;
    let archive =
        weights_converter::torch::TorchArchive::from_reader(&path, Cursor::new(data), len).unwrap();
    let from_memory = NnUnetCheckpoint::from_archive(archive).unwrap();
    let from_file = NnUnetCheckpoint::open(&path).unwrap();
    assert_eq!(from_memory.network_weights, from_file.network_weights);
}
