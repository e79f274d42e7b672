//! Licensed models: the key from `<home>/config.json` is POSTed to the licence server as the
//! official tool does; a missing key or a rejected one is a clear error.

mod weights_support;

use std::path::Path;

use totalseg_io::weights::{
    check_licence_online, DownloadSource, ModelSource, NoProgress, WeightsError,
    OFFICIAL_TOOL_VERSION,
};
use weights_support::*;

const KEY: &str = "aca_1234567890ABCD";

fn licensed_source() -> ModelSource {
    ModelSource {
        download: DownloadSource::Licensed {
            task_name: "heartchambers_highres".into(),
        },
        ..release_source()
    }
}

fn licence_server() -> TestServer {
    TestServer::start_full(
        vec![],
        Behaviour::Normal,
        Some(Licensed {
            valid_key: KEY.into(),
            archive: model_zip(),
        }),
        std::time::Duration::ZERO,
    )
}

#[test]
fn licensed_download_posts_key_task_and_version() {
    let server = licence_server();
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    store.config().set_licence_key(KEY).unwrap();
    let convert = |a: &Path, b: &Path| write_markers(a, b);
    let model = store
        .ensure_converted(&spec_with(licensed_source()), &convert, &NoProgress)
        .unwrap();
    assert!(model.weights.is_file());
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/download_weights");
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "license_number": KEY,
            "task": "heartchambers_highres",
            "version": OFFICIAL_TOOL_VERSION,
        })
    );
}

#[test]
fn missing_licence_names_the_config_file_and_the_command() {
    let server = licence_server();
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    let err = store
        .ensure_nnunet_model(&spec_with(licensed_source()), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, WeightsError::LicenceMissing { .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("heartchambers_highres"), "{msg}");
    assert!(
        msg.contains(&home.path().join("config.json").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("totalseg set-license"), "{msg}");
    assert!(server.requests().is_empty(), "no request without a key");
}

#[test]
fn rejected_licence_is_reported_and_nothing_is_kept() {
    let server = licence_server();
    let home = tempfile::tempdir().unwrap();
    let store = store_at(home.path(), &server.base());
    store
        .config()
        .set_licence_key("aca_WRONGWRONGWRON")
        .unwrap();
    let err = store
        .ensure_nnunet_model(&spec_with(licensed_source()), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, WeightsError::LicenceRejected { status: 403, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1, "a rejection is not retried");
    assert!(
        tree(home.path())
            .iter()
            .all(|p| !p.ends_with(".part") && !p.contains(DATASET) || p.ends_with(".lock")),
        "{:?}",
        tree(home.path())
    );
}

#[test]
fn online_licence_check_asks_the_server() {
    let server = licence_server();
    let http = fast_http();
    assert!(check_licence_online(&server.base(), KEY, &http).unwrap());
    assert!(!check_licence_online(&server.base(), "aca_WRONGWRONGWRON", &http).unwrap());
    let body: serde_json::Value = serde_json::from_slice(&server.requests()[0].body).unwrap();
    assert_eq!(body, serde_json::json!({ "license_number": KEY }));
    assert_eq!(server.requests()[0].path, "/is_valid_license_number");
}
