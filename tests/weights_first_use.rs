//! A fresh machine: no weights anywhere, the release URL pointing at a local HTTP server that
//! serves the official release zip layout. `totalseg --fast` must download, unpack, convert and
//! give the same result as with the weights pre-installed (and as the official tool).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use totalseg_io::nifti::read_label_map;

const DATASET: &str = "Dataset297_TotalSegmentator_total_3mm_1559subj";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The release zip of one dataset folder: `<Dataset>/...` entries, as the official zips are.
fn release_zip(dataset_dir: &Path) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let root = dataset_dir.parent().expect("weights root");
        let mut stack = vec![dataset_dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .expect("read dir")
                .map(|e| e.expect("entry").path())
                .collect();
            entries.sort();
            for path in entries {
                let name = path
                    .strip_prefix(root)
                    .expect("inside root")
                    .to_string_lossy()
                    .replace('\\', "/");
                if path.is_dir() {
                    zip.add_directory(format!("{name}/"), options)
                        .expect("dir entry");
                    stack.push(path);
                } else {
                    zip.start_file(name, options).expect("file entry");
                    zip.write_all(&std::fs::read(&path).expect("read file"))
                        .expect("write entry");
                }
            }
        }
        zip.finish().expect("finish zip");
    }
    buf.into_inner()
}

/// Serves `body` for GET `<anything>/<DATASET>.zip` on 127.0.0.1; counts requests; stops after
/// `max_requests` connections.
fn serve(body: Vec<u8>, max_requests: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    thread::spawn(move || {
        for stream in listener.incoming().take(max_requests) {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let head = String::from_utf8_lossy(&request);
            let wanted = head
                .lines()
                .next()
                .is_some_and(|l| l.contains(&format!("/{DATASET}.zip")));
            if wanted {
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/zip\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(header.as_bytes());
                let _ = stream.write_all(&body);
            } else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        }
    });
    (base, hits)
}

fn totalseg(
    home: &Path,
    output: &Path,
    extra: &[&str],
    url_base: Option<&str>,
) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_totalseg"));
    cmd.arg("-i")
        .arg(repo().join("../shared/data/totalseg-examples/example_ct_sm.nii.gz"))
        .arg("-o")
        .arg(output)
        .args(["--fast", "--ml", "-d", "cpu", "-q"])
        .args(extra)
        .env("TOTALSEG_HOME_DIR", home)
        .env_remove("TOTALSEG_WEIGHTS_PATH")
        .env_remove("TOTALSEG_RS_MODELS_DIR");
    match url_base {
        Some(base) => cmd.env("TOTALSEG_WEIGHTS_URL_BASE", base),
        None => cmd.env_remove("TOTALSEG_WEIGHTS_URL_BASE"),
    };
    cmd.output().expect("totalseg runs")
}

#[test]
fn fast_run_on_a_fresh_home_downloads_converts_and_matches_preinstalled_weights() {
    let weights = repo().join("fixtures/pipeline/weights");
    let zip = release_zip(&weights.join(DATASET));
    let (base, hits) = serve(zip, 8);
    let tmp = tempfile::tempdir().expect("temp dir");

    // Fresh home, weights only on the "internet".
    let home = tmp.path().join("home");
    let downloaded = tmp.path().join("downloaded.nii.gz");
    let out = totalseg(&home, &downloaded, &[], Some(&base));
    assert!(
        out.status.success(),
        "first run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "one download");
    assert!(
        home.join("nnunet/results").join(DATASET).is_dir(),
        "release unpacked where the Python tool keeps it"
    );

    // Second run: cached, no request.
    let again = tmp.path().join("again.nii.gz");
    let out = totalseg(&home, &again, &["--offline"], Some(&base));
    assert!(
        out.status.success(),
        "cached run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1, "no second download");

    // Pre-installed weights (another fresh home).
    let preinstalled = tmp.path().join("preinstalled.nii.gz");
    let out = totalseg(
        &tmp.path().join("home2"),
        &preinstalled,
        &[
            "--offline",
            "--weights-dir",
            weights.to_str().expect("utf-8 path"),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "pre-installed run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let a = read_label_map(&downloaded).expect("downloaded-run output");
    let b = read_label_map(&again).expect("cached-run output");
    let c = read_label_map(&preinstalled).expect("pre-installed-run output");
    assert_eq!(a.labels, b.labels);
    assert_eq!(a.labels, c.labels);
    assert!(a.labels.iter().any(|&v| v != 0), "a non-empty segmentation");
}

#[test]
fn offline_without_weights_names_the_folder_and_the_download_command() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let home = tmp.path().join("home");
    let out = totalseg(&home, &tmp.path().join("seg.nii.gz"), &["--offline"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(DATASET),
        "error names the dataset folder: {stderr}"
    );
    assert!(
        stderr.contains("totalseg download"),
        "error says how to get the weights: {stderr}"
    );
    assert!(!tmp.path().join("seg.nii.gz").exists(), "no output written");
}
