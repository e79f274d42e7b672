//! The downloader against a local HTTP server: resume with `Range`, restart without it,
//! truncation, stalls, redirects, progress events, full disk.

mod weights_support;

use std::cell::RefCell;
use std::time::Duration;

use totalseg_io::weights::{
    download_to_file, DownloadError, DownloadRequest, HttpOptions, NoProgress, ProgressEvent,
    WeightsError,
};
use weights_support::*;

fn payload() -> Vec<u8> {
    checkpoint_bytes(7, 200 * 1024)
}

#[test]
fn drop_then_resume_with_range_reports_progress() {
    let data = payload();
    let server = TestServer::start(
        vec![("f.bin".into(), data.clone())],
        Behaviour::DropFirst {
            times: 2,
            after: 50_000,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("f.part");
    let events = RefCell::new(Vec::new());
    let sink = |e: &ProgressEvent<'_>| {
        let s = match e {
            ProgressEvent::DownloadStarted {
                resumed_from,
                total,
                ..
            } => {
                format!("start {resumed_from} {total:?}")
            }
            ProgressEvent::Retrying { attempt, .. } => format!("retry {attempt}"),
            ProgressEvent::DownloadFinished { bytes } => format!("done {bytes}"),
            ProgressEvent::Downloaded { bytes, total } => {
                assert_eq!(*total, Some(data.len() as u64));
                assert!(*bytes <= data.len() as u64);
                return;
            }
            _ => return,
        };
        events.borrow_mut().push(s);
    };
    let url = server.url("f.bin");
    let size = download_to_file(
        &DownloadRequest::Get { url: &url },
        &part,
        &fast_http(),
        &sink,
    )
    .unwrap();
    assert_eq!(size, data.len() as u64);
    assert_eq!(std::fs::read(&part).unwrap(), data);
    let ranges: Vec<Option<String>> = server.requests().into_iter().map(|r| r.range).collect();
    assert_eq!(
        ranges,
        vec![
            None,
            Some("bytes=50000-".into()),
            Some("bytes=100000-".into())
        ]
    );
    let total = data.len();
    assert_eq!(
        events.into_inner(),
        vec![
            format!("start 0 Some({total})"),
            "retry 1".into(),
            format!("start 50000 Some({total})"),
            "retry 2".into(),
            format!("start 100000 Some({total})"),
            format!("done {total}"),
        ]
    );
}

#[test]
fn server_without_range_support_restarts_from_zero() {
    let data = payload();
    let server = TestServer::start(
        vec![("f.bin".into(), data.clone())],
        Behaviour::DropFirstNoRange {
            times: 1,
            after: 60_000,
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("f.part");
    let url = server.url("f.bin");
    download_to_file(
        &DownloadRequest::Get { url: &url },
        &part,
        &fast_http(),
        &NoProgress,
    )
    .unwrap();
    // The second request asked to resume, got 200 and the whole file; no duplicated bytes.
    assert_eq!(std::fs::read(&part).unwrap(), data);
    let ranges: Vec<Option<String>> = server.requests().into_iter().map(|r| r.range).collect();
    assert_eq!(ranges, vec![None, Some("bytes=60000-".into())]);
}

#[test]
fn persistent_truncation_keeps_the_part_and_the_next_run_resumes() {
    let data = payload();
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("f.part");
    {
        // Every answer is cut after 10 000 bytes of its body, and progress is made each time,
        // so only the total-attempts bound stops it.
        let server = TestServer::start(
            vec![("f.bin".into(), data.clone())],
            Behaviour::DropFirst {
                times: 1000,
                after: 10_000,
            },
        );
        let http = HttpOptions {
            max_total_attempts: 3,
            ..fast_http()
        };
        let url = server.url("f.bin");
        let err = download_to_file(
            &DownloadRequest::Get { url: &url },
            &part,
            &http,
            &NoProgress,
        )
        .unwrap_err();
        match &err {
            DownloadError::Truncated {
                received,
                expected,
                attempts,
                part: p,
            } => {
                assert_eq!(
                    (*received, *expected, *attempts),
                    (30_000, data.len() as u64, 3)
                );
                assert_eq!(p, &part);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("resumes"), "{err}");
        assert_eq!(std::fs::metadata(&part).unwrap().len(), 30_000);
    }
    let server = TestServer::start(vec![("f.bin".into(), data.clone())], Behaviour::Normal);
    let url = server.url("f.bin");
    download_to_file(
        &DownloadRequest::Get { url: &url },
        &part,
        &fast_http(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(std::fs::read(&part).unwrap(), data);
    assert_eq!(server.requests()[0].range.as_deref(), Some("bytes=30000-"));
}

#[test]
fn complete_part_is_recognised_by_http_416() {
    let data = payload();
    let server = TestServer::start(vec![("f.bin".into(), data.clone())], Behaviour::Normal);
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("f.part");
    std::fs::write(&part, &data).unwrap();
    let url = server.url("f.bin");
    let n = download_to_file(
        &DownloadRequest::Get { url: &url },
        &part,
        &fast_http(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(std::fs::read(&part).unwrap(), data);
}

#[test]
fn stalled_transfer_times_out_and_is_retried() {
    let data = payload();
    let server = TestServer::start(
        vec![("f.bin".into(), data.clone())],
        Behaviour::StallFirst {
            times: 1,
            after: 20_000,
            stall: Duration::from_millis(1500),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("f.part");
    let http = HttpOptions {
        read_timeout: Duration::from_millis(300),
        ..fast_http()
    };
    let url = server.url("f.bin");
    download_to_file(
        &DownloadRequest::Get { url: &url },
        &part,
        &http,
        &NoProgress,
    )
    .unwrap();
    assert_eq!(std::fs::read(&part).unwrap(), data);
    let ranges: Vec<Option<String>> = server.requests().into_iter().map(|r| r.range).collect();
    assert_eq!(ranges, vec![None, Some("bytes=20000-".into())]);
}

#[test]
fn stall_every_time_ends_in_a_timeout_error() {
    let server = TestServer::start(
        vec![("f.bin".into(), payload())],
        Behaviour::StallFirst {
            times: 1000,
            after: 0,
            stall: Duration::from_millis(800),
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("f.part");
    let http = HttpOptions {
        read_timeout: Duration::from_millis(150),
        max_attempts: 2,
        ..fast_http()
    };
    let url = server.url("f.bin");
    let err = download_to_file(
        &DownloadRequest::Get { url: &url },
        &part,
        &http,
        &NoProgress,
    )
    .unwrap_err();
    assert!(
        matches!(err, DownloadError::Timeout { attempts: 2, .. }),
        "{err:?}"
    );
}

#[test]
fn refused_connection_is_retried_then_reported() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/f.bin");
    let retries = RefCell::new(0);
    let sink = |e: &ProgressEvent<'_>| {
        if matches!(e, ProgressEvent::Retrying { .. }) {
            *retries.borrow_mut() += 1;
        }
    };
    let err = download_to_file(
        &DownloadRequest::Get { url: &url },
        &dir.path().join("f.part"),
        &fast_http(),
        &sink,
    )
    .unwrap_err();
    assert!(
        matches!(err, DownloadError::Connection { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(retries.into_inner(), 3);
}

#[test]
fn redirects_are_followed() {
    let data = payload();
    let server = TestServer::start(vec![("f.bin".into(), data.clone())], Behaviour::Redirect);
    let dir = tempfile::tempdir().unwrap();
    let part = dir.path().join("f.part");
    let url = server.url("f.bin");
    download_to_file(
        &DownloadRequest::Get { url: &url },
        &part,
        &fast_http(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(std::fs::read(&part).unwrap(), data);
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        vec!["/f.bin".to_string(), "/files/f.bin".to_string()]
    );
}

#[cfg(target_os = "linux")]
#[test]
fn full_disk_is_reported_as_such() {
    let server = TestServer::start(vec![("f.bin".into(), payload())], Behaviour::Normal);
    let url = server.url("f.bin");
    // Writes to /dev/full fail with ENOSPC.
    let err = download_to_file(
        &DownloadRequest::Get { url: &url },
        std::path::Path::new("/dev/full"),
        &fast_http(),
        &NoProgress,
    )
    .unwrap_err();
    match &err {
        DownloadError::Local(inner) => {
            assert!(
                matches!(**inner, WeightsError::DiskFull { .. }),
                "{inner:?}"
            );
            assert!(inner.to_string().contains("/dev/full"), "{inner}");
        }
        other => panic!("unexpected {other:?}"),
    }
}
