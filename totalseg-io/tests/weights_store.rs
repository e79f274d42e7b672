//! The weights store end to end against a local HTTP server: cache hits, reuse of an
//! existing installation, offline errors, download + unpack + convert, and failures that
//! must leave the cache unchanged.

mod weights_support;

use std::path::Path;

use totalseg_io::weights::{
    DownloadError, DownloadSource, ModelForm, ModelSource, NoProgress, StoreDirs, StoreOptions,
    WeightsError, WeightsStore, CONVERTED_SOURCE_FILE,
};
use weights_support::*;

fn results(home: &Path) -> std::path::PathBuf {
    home.join("nnunet").join("results")
}

/// No model folder, no partial download, no temporary folder anywhere under `home`.
fn assert_cache_clean(home: &Path) {
    let leftovers: Vec<String> = tree(home)
        .into_iter()
        .filter(|p| {
            p.contains(DATASET) && !p.ends_with(".lock")
                || p.contains(".tmp-")
                || p.ends_with(".part")
        })
        .collect();
    assert!(leftovers.is_empty(), "cache not clean: {leftovers:?}");
}

#[test]
fn downloads_unpacks_converts_then_serves_from_cache() {
    let server = TestServer::start(vec![(release_path(), model_zip())], Behaviour::Normal);
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    let spec = spec_with(release_source());
    let conv = MarkerConverter::new();
    let convert = |a: &Path, b: &Path| conv.convert(a, b);

    let model = store
        .ensure_converted(&spec, &convert, &NoProgress)
        .unwrap();
    assert_eq!(
        model.dir,
        home.path().join("rs-models").join(DATASET).join(MODEL)
    );
    assert_eq!(std::fs::read_to_string(&model.weights).unwrap(), "98304");
    assert!(model.json.is_file());
    let nnunet = results(home.path()).join(DATASET).join(MODEL);
    assert_eq!(*conv.seen.lock().unwrap(), vec![nnunet.clone()]);
    assert_eq!(
        std::fs::read(nnunet.join("fold_0/checkpoint_final.pth")).unwrap(),
        checkpoint_bytes(0, 96 * 1024)
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, format!("/{}", release_path()));
    // No leftovers: no .part, no temporary folders.
    assert!(
        tree(home.path())
            .iter()
            .all(|p| !p.contains(".tmp-") && !p.ends_with(".part")),
        "{:?}",
        tree(home.path())
    );

    // Second call: from the cache, no request, no conversion.
    let again = store
        .ensure_converted(&spec, &convert, &NoProgress)
        .unwrap();
    assert_eq!(again, model);
    assert_eq!(conv.calls(), 1);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn existing_installation_is_converted_without_network() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    // The official tool's weights in a separate TOTALSEG_WEIGHTS_PATH-style folder.
    let installed = install_nnunet_model(elsewhere.path(), DATASET);
    let mut dirs = StoreDirs::under(home.path());
    dirs.nnunet_roots.insert(0, elsewhere.path().to_path_buf());
    let store = WeightsStore::new(
        dirs,
        StoreOptions {
            offline: true,
            release_url_base: "http://127.0.0.1:9/never".into(),
            http: fast_http(),
            ..StoreOptions::default()
        },
    );
    let conv = MarkerConverter::new();
    let convert = |a: &Path, b: &Path| conv.convert(a, b);
    let model = store
        .ensure_converted(&spec_with(release_source()), &convert, &NoProgress)
        .unwrap();
    assert_eq!(conv.seen.lock().unwrap().as_slice(), &[installed]);
    assert!(model.weights.starts_with(home.path().join("rs-models")));
    // Nothing was written into the existing installation.
    assert_eq!(
        tree(elsewhere.path()).len(),
        6,
        "{:?}",
        tree(elsewhere.path())
    );
}

#[test]
fn dataset_folder_is_found_by_id_like_nnunet() {
    let home = tempfile::tempdir().unwrap();
    let renamed = "Dataset297_TotalSegmentator_total_3mm_1559subj_v204";
    let installed = install_nnunet_model(&results(home.path()), renamed);
    let mut store = store_at(home.path(), "http://127.0.0.1:9");
    store.set_offline(true);
    let found = store
        .find_nnunet_model(&spec_with(release_source()))
        .unwrap();
    assert_eq!(found, Some(installed));
}

#[test]
fn offline_miss_names_folder_url_and_command_and_writes_nothing() {
    let home = tempfile::tempdir().unwrap();
    let mut store = store_at(home.path(), "http://127.0.0.1:9/base");
    store.set_offline(true);
    let conv = MarkerConverter::new();
    let convert = |a: &Path, b: &Path| conv.convert(a, b);
    let err = store
        .ensure_converted(&spec_with(release_source()), &convert, &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, WeightsError::OfflineMissing { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    let expected = results(home.path()).join(DATASET).join(MODEL);
    assert!(msg.contains(&expected.display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("http://127.0.0.1:9/base/{TAG}/{DATASET}.zip")),
        "{msg}"
    );
    assert!(msg.contains("totalseg download"), "{msg}");
    assert_eq!(conv.calls(), 0);
    assert!(tree(home.path()).is_empty(), "{:?}", tree(home.path()));
}

#[test]
fn not_found_is_a_clear_error_and_leaves_nothing() {
    let server = TestServer::start(vec![], Behaviour::Normal);
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    let conv = MarkerConverter::new();
    let convert = |a: &Path, b: &Path| conv.convert(a, b);
    let err = store
        .ensure_converted(&spec_with(release_source()), &convert, &NoProgress)
        .unwrap_err();
    match &err {
        WeightsError::Download {
            error:
                DownloadError::HttpStatus {
                    status: 404,
                    attempts: 1,
                },
            url,
            ..
        } => assert_eq!(url, &server.url(&release_path())),
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("HTTP 404") && msg.contains(&server.url(&release_path())),
        "{msg}"
    );
    assert!(msg.contains("next step"), "{msg}");
    assert_eq!(server.requests().len(), 1, "404 is not retried");
    assert_eq!(conv.calls(), 0);
    assert_cache_clean(home.path());
}

#[test]
fn server_errors_are_retried_then_succeed() {
    let server = TestServer::start(
        vec![(release_path(), model_zip())],
        Behaviour::StatusFirst {
            code: 503,
            times: 2,
        },
    );
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    let convert = |a: &Path, b: &Path| write_markers(a, b);
    store
        .ensure_converted(&spec_with(release_source()), &convert, &NoProgress)
        .unwrap();
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn persistent_server_errors_give_up_with_the_status() {
    let server = TestServer::start(
        vec![(release_path(), model_zip())],
        Behaviour::StatusFirst {
            code: 500,
            times: 1000,
        },
    );
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    let err = store
        .ensure_nnunet_model(&spec_with(release_source()), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(
            err,
            WeightsError::Download {
                error: DownloadError::HttpStatus {
                    status: 500,
                    attempts: 4
                },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 4);
    assert_cache_clean(home.path());
}

#[test]
fn dropped_connection_resumes_with_range_and_converts() {
    let zip = model_zip();
    let server = TestServer::start(
        vec![(release_path(), zip.clone())],
        Behaviour::DropFirst {
            times: 1,
            after: zip.len() / 2,
        },
    );
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    let convert = |a: &Path, b: &Path| write_markers(a, b);
    let model = store
        .ensure_converted(&spec_with(release_source()), &convert, &NoProgress)
        .unwrap();
    assert!(model.weights.is_file());
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].range, None);
    assert_eq!(
        requests[1].range.as_deref(),
        Some(format!("bytes={}-", zip.len() / 2).as_str())
    );
}

#[test]
fn corrupt_zip_is_rejected_deleted_and_nothing_unpacked() {
    let server = TestServer::start(
        vec![(release_path(), corrupt_model_zip())],
        Behaviour::Normal,
    );
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    let conv = MarkerConverter::new();
    let convert = |a: &Path, b: &Path| conv.convert(a, b);
    let err = store
        .ensure_converted(&spec_with(release_source()), &convert, &NoProgress)
        .unwrap_err();
    match &err {
        WeightsError::CorruptArchive { url, reason, .. } => {
            assert_eq!(url, &server.url(&release_path()));
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("run the command again"), "{err}");
    assert_eq!(conv.calls(), 0);
    assert_cache_clean(home.path());
}

#[test]
fn archive_without_the_dataset_folder_is_an_unexpected_layout() {
    let wrong = zip_of("SomethingElse", &model_files(MODEL, &[0]), false);
    let server = TestServer::start(vec![(release_path(), wrong)], Behaviour::Normal);
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    let err = store
        .ensure_nnunet_model(&spec_with(release_source()), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, WeightsError::UnexpectedLayout { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("SomethingElse") && msg.contains(DATASET),
        "{msg}"
    );
    assert_cache_clean(home.path());
}

#[test]
fn archive_without_the_requested_model_is_an_unexpected_layout() {
    let other_model = "nnUNetTrainer__nnUNetPlans__3d_lowres";
    let zip = zip_of(DATASET, &model_files(other_model, &[0]), false);
    let server = TestServer::start(vec![(release_path(), zip)], Behaviour::Normal);
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    let err = store
        .ensure_nnunet_model(&spec_with(release_source()), &NoProgress)
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(other_model) && msg.contains(MODEL), "{msg}");
    assert_cache_clean(home.path());
}

#[test]
fn zip_slip_entries_are_rejected_before_writing() {
    let mut files = model_files(MODEL, &[0]);
    files.push(("../../escaped.txt".to_string(), b"evil".to_vec()));
    let zip = zip_of(DATASET, &files, false);
    let server = TestServer::start(vec![(release_path(), zip)], Behaviour::Normal);
    let outer = tempfile::tempdir().unwrap();
    let home = outer.path().join("a").join("home");
    let store = store_at(&home, &server.base());
    let err = store
        .ensure_nnunet_model(&spec_with(release_source()), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, WeightsError::UnsafeArchiveEntry { .. }),
        "{err:?}"
    );
    assert!(tree(outer.path()).iter().all(|p| !p.contains("escaped")));
    assert_cache_clean(&home);
}

#[test]
fn failed_or_incomplete_conversion_leaves_no_converted_folder() {
    let server = TestServer::start(vec![(release_path(), model_zip())], Behaviour::Normal);
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    let spec = spec_with(release_source());

    let failing = |_: &Path, out: &Path| -> Result<(), totalseg_io::weights::BoxError> {
        std::fs::write(out.join("model.safetensors"), b"half")?;
        Err("unsupported architecture".into())
    };
    let err = store
        .ensure_converted(&spec, &failing, &NoProgress)
        .unwrap_err();
    assert!(matches!(err, WeightsError::Conversion { .. }), "{err:?}");
    assert!(err.to_string().contains("unsupported architecture"));

    let lazy = |_: &Path, _: &Path| -> Result<(), totalseg_io::weights::BoxError> { Ok(()) };
    let err = store
        .ensure_converted(&spec, &lazy, &NoProgress)
        .unwrap_err();
    assert!(
        matches!(
            err,
            WeightsError::ConversionIncomplete {
                missing: "model.safetensors",
                ..
            }
        ),
        "{err:?}"
    );
    let converted: Vec<String> = tree(&home.path().join("rs-models"))
        .into_iter()
        .filter(|p| !p.starts_with(".locks"))
        .collect();
    assert_eq!(
        converted,
        vec![DATASET.to_string()],
        "only the empty dataset folder"
    );
    // The download itself was kept: the next try converts without downloading.
    let convert = |a: &Path, b: &Path| write_markers(a, b);
    store
        .ensure_converted(&spec, &convert, &NoProgress)
        .unwrap();
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn second_model_is_merged_into_an_existing_dataset_folder() {
    let other_model = "nnUNetTrainer__nnUNetPlans__3d_lowres";
    let mut files = model_files(MODEL, &[0]);
    files.extend(model_files(other_model, &[0]));
    let server = TestServer::start(
        vec![(release_path(), zip_of(DATASET, &files, false))],
        Behaviour::Normal,
    );
    let home = tempfile::tempdir().unwrap();
    // The dataset folder exists with only the other model, carrying a local marker.
    let ds = results(home.path()).join(DATASET);
    for (name, data) in model_files(other_model, &[0]) {
        let p = ds.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    std::fs::write(ds.join(other_model).join("local-marker"), b"keep me").unwrap();

    let store = store_at(home.path(), &server.base());
    let dir = store
        .ensure_nnunet_model(&spec_with(release_source()), &NoProgress)
        .unwrap();
    assert_eq!(dir, ds.join(MODEL));
    assert!(ds.join(other_model).join("local-marker").is_file());
    assert!(tree(home.path()).iter().all(|p| !p.contains(".tmp-")));
}

#[test]
fn incomplete_installed_folder_is_reported_with_the_fix() {
    let home = tempfile::tempdir().unwrap();
    let dir = install_nnunet_model(&results(home.path()), DATASET);
    std::fs::remove_file(dir.join("fold_0/checkpoint_final.pth")).unwrap();
    let store = store_at(home.path(), "http://127.0.0.1:9");
    let err = store
        .find_nnunet_model(&spec_with(release_source()))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("checkpoint_final.pth") && msg.contains("delete this folder"),
        "{msg}"
    );
}

#[test]
fn stale_temporary_folders_of_killed_runs_are_removed() {
    let server = TestServer::start(vec![(release_path(), model_zip())], Behaviour::Normal);
    let home = tempfile::tempdir().unwrap();
    let stale = results(home.path()).join(format!(".tmp-unpack-{DATASET}~99999-0"));
    std::fs::create_dir_all(stale.join(DATASET)).unwrap();
    let store = store_at(home.path(), &server.base());
    store
        .ensure_nnunet_model(&spec_with(release_source()), &NoProgress)
        .unwrap();
    assert!(!stale.exists());
}

#[test]
fn unavailable_source_says_where_to_put_the_folder() {
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), "http://127.0.0.1:9");
    let source = ModelSource {
        download: DownloadSource::Unavailable,
        ..release_source()
    };
    let err = store
        .ensure_nnunet_model(&spec_with(source), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, WeightsError::NoDownloadSource { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(DATASET));
}

#[test]
fn list_reports_converted_and_nnunet_models_with_sizes() {
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), "http://127.0.0.1:9");
    assert!(store.list_models().unwrap().is_empty());
    install_nnunet_model(&results(home.path()), DATASET);
    let convert = |a: &Path, b: &Path| write_markers(a, b);
    let mut offline = store.clone();
    offline.set_offline(true);
    offline
        .ensure_converted(&spec_with(release_source()), &convert, &NoProgress)
        .unwrap();

    let list = store.list_models().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0].form, ModelForm::Converted);
    assert_eq!(list[0].dataset_folder, DATASET);
    assert_eq!(list[0].model_folder, MODEL);
    assert!(list[0].complete);
    let len = |name: &str| std::fs::metadata(list[0].path.join(name)).unwrap().len();
    // The weights marker (5 bytes), the description and the record of the source files.
    assert_eq!(
        list[0].size_bytes,
        5 + len("model.json") + len(CONVERTED_SOURCE_FILE)
    );
    assert_eq!(list[1].form, ModelForm::NnUnet);
    assert_eq!(list[1].folds, vec![0]);
    assert!(list[1].complete);
    assert!(list[1].size_bytes > 96 * 1024);
}

/// A converted model made from other weights than the nnU-Net folder now found (another
/// `--weights-dir`, an updated release) is converted again instead of being reused; with no
/// source folder left, the cached model is what there is.
#[test]
fn converted_model_from_other_weights_is_converted_again() {
    let home = tempfile::tempdir().unwrap();
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let store_for = |root: &Path| {
        let mut dirs = StoreDirs::under(home.path());
        dirs.nnunet_roots.insert(0, root.to_path_buf());
        WeightsStore::new(
            dirs,
            StoreOptions {
                offline: true,
                http: fast_http(),
                ..StoreOptions::default()
            },
        )
    };
    let conv = MarkerConverter::new();
    let convert = |a: &Path, b: &Path| conv.convert(a, b);
    let spec = spec_with(release_source());
    let installed = install_nnunet_model(first.path(), DATASET);
    let model = store_for(first.path())
        .ensure_converted(&spec, &convert, &NoProgress)
        .unwrap();
    assert_eq!(conv.calls(), 1);
    // The same weights again: served from the cache.
    store_for(first.path())
        .ensure_converted(&spec, &convert, &NoProgress)
        .unwrap();
    assert_eq!(conv.calls(), 1);

    // Other weights (a longer checkpoint) in another folder: converted from them.
    let other = install_nnunet_model(second.path(), DATASET);
    std::fs::write(
        other.join("fold_0/checkpoint_final.pth"),
        checkpoint_bytes(0, 4096),
    )
    .unwrap();
    store_for(second.path())
        .ensure_converted(&spec, &convert, &NoProgress)
        .unwrap();
    assert_eq!(conv.calls(), 2);
    assert_eq!(conv.seen.lock().unwrap().last(), Some(&other));
    assert_eq!(
        std::fs::read_to_string(&model.weights).unwrap(),
        "4096",
        "the cache now holds the second weights"
    );

    // The first folder's checkpoint replaced in place (same path, other content).
    std::fs::write(
        installed.join("fold_0/checkpoint_final.pth"),
        checkpoint_bytes(0, 100),
    )
    .unwrap();
    store_for(first.path())
        .ensure_converted(&spec, &convert, &NoProgress)
        .unwrap();
    assert_eq!(conv.calls(), 3);
    assert_eq!(std::fs::read_to_string(&model.weights).unwrap(), "100");

    // No source folder at all: the cached model is used.
    let empty = tempfile::tempdir().unwrap();
    store_for(empty.path())
        .ensure_converted(&spec, &convert, &NoProgress)
        .unwrap();
    assert_eq!(conv.calls(), 3);
}
