//! Test helpers for the weights store: a small HTTP/1.1 server on 127.0.0.1 (std only,
//! one request per connection, stops on drop or after a minute), synthetic nnU-Net model
//! archives, and a marker-writing converter.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use totalseg_io::weights::{
    BoxError, DownloadSource, HttpOptions, ModelSource, ModelSpec, ProxySetting, StoreDirs,
    StoreOptions, WeightsStore,
};

pub const DATASET: &str = "Dataset297_TotalSegmentator_total_3mm_1559subj";
pub const TRAINER: &str = "nnUNetTrainer_4000epochs_NoMirroring";
pub const MODEL: &str = "nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres";
pub const TAG: &str = "v2.0.0-weights";

/// How the server misbehaves.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Serves files, honours `Range` (206).
    Normal,
    /// Ignores `Range`: always 200 with the whole file.
    NoRange,
    /// The first `times` file answers announce the full length, send `after` bytes and close.
    DropFirst { times: usize, after: usize },
    /// Like `DropFirst`, and ignores `Range`.
    DropFirstNoRange { times: usize, after: usize },
    /// The first `times` requests get `code`.
    StatusFirst { code: u16, times: usize },
    /// The first `times` file answers send headers and `after` bytes, then stall for `stall`.
    StallFirst {
        times: usize,
        after: usize,
        stall: Duration,
    },
    /// `GET /<x>` answers 302 to `/files/<x>`, which serves the file.
    Redirect,
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct Licensed {
    /// The key the licence server accepts.
    pub valid_key: String,
    /// The archive `/download_weights` serves for a valid key.
    pub archive: Vec<u8>,
}

pub struct TestServer {
    port: u16,
    log: Arc<Mutex<Vec<Logged>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

struct Shared {
    files: HashMap<String, Vec<u8>>,
    behaviour: Behaviour,
    licensed: Option<Licensed>,
    chunk_delay: Duration,
    misbehaved: AtomicUsize,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl TestServer {
    pub fn start(files: Vec<(String, Vec<u8>)>, behaviour: Behaviour) -> Self {
        Self::start_full(files, behaviour, None, Duration::ZERO)
    }

    pub fn start_full(
        files: Vec<(String, Vec<u8>)>,
        behaviour: Behaviour,
        licensed: Option<Licensed>,
        chunk_delay: Duration,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            files: files.into_iter().collect(),
            behaviour,
            licensed,
            chunk_delay,
            misbehaved: AtomicUsize::new(0),
            log: log.clone(),
        });
        let stop_flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut workers = Vec::new();
            while !stop_flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let shared = shared.clone();
                        workers.push(std::thread::spawn(move || {
                            let _ = handle_connection(stream, &shared);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Self {
            port,
            log,
            stop,
            handle: Some(handle),
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base(), path.trim_start_matches('/'))
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().expect("log").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn handle_connection(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let range = headers.get("range").cloned();
    shared.log.lock().expect("log").push(Logged {
        method: method.clone(),
        path: path.clone(),
        range: range.clone(),
        body: body.clone(),
    });

    if let Behaviour::StatusFirst { code, times } = shared.behaviour {
        if shared.misbehaved.fetch_add(1, Ordering::SeqCst) < times {
            return respond(&mut stream, code, &[], b"try later");
        }
    }

    if method == "POST" {
        return handle_licence_post(&mut stream, shared, &path, &body);
    }

    let key = path.trim_start_matches('/');
    if matches!(shared.behaviour, Behaviour::Redirect) {
        if let Some(rest) = key.strip_prefix("files/") {
            return serve_file(&mut stream, shared, shared.files.get(rest), range, true);
        }
        let location = format!("/files/{key}");
        return respond(&mut stream, 302, &[("Location", location.as_str())], b"");
    }
    serve_file(&mut stream, shared, shared.files.get(key), range, false)
}

fn handle_licence_post(
    stream: &mut TcpStream,
    shared: &Shared,
    path: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let Some(lic) = &shared.licensed else {
        return respond(stream, 404, &[], b"no licence server here");
    };
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let key_ok = json["license_number"].as_str() == Some(lic.valid_key.as_str());
    match path {
        "/download_weights" if key_ok => respond(
            stream,
            200,
            &[("Content-Type", "application/zip")],
            &lic.archive,
        ),
        "/download_weights" => respond(stream, 403, &[], br#"{"status": "invalid_license"}"#),
        "/is_valid_license_number" => {
            let status = if key_ok {
                "valid_license"
            } else {
                "invalid_license"
            };
            let answer = format!(r#"{{"status": "{status}"}}"#);
            respond(stream, 200, &[], answer.as_bytes())
        }
        _ => respond(stream, 404, &[], b""),
    }
}

fn serve_file(
    stream: &mut TcpStream,
    shared: &Shared,
    file: Option<&Vec<u8>>,
    range: Option<String>,
    _redirected: bool,
) -> std::io::Result<()> {
    let Some(data) = file else {
        return respond(stream, 404, &[], b"Not Found");
    };
    let total = data.len();
    let honour_range = !matches!(
        shared.behaviour,
        Behaviour::NoRange | Behaviour::DropFirstNoRange { .. }
    );
    let start = match (honour_range, range) {
        (true, Some(r)) => r
            .trim()
            .strip_prefix("bytes=")
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|n| n.parse::<usize>().ok()),
        _ => None,
    };
    if let Some(s) = start {
        if s >= total {
            let cr = format!("bytes */{total}");
            return respond(stream, 416, &[("Content-Range", cr.as_str())], b"");
        }
    }
    let (status, from) = match start {
        Some(s) => (206, s),
        None => (200, 0),
    };
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\nAccept-Ranges: bytes\r\n",
        total - from
    );
    if status == 206 {
        head.push_str(&format!(
            "Content-Range: bytes {from}-{}/{total}\r\n",
            total - 1
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;

    // How much of the body this answer sends before misbehaving.
    let (cut, stall) = match shared.behaviour {
        Behaviour::DropFirst { times, after } | Behaviour::DropFirstNoRange { times, after }
            if shared.misbehaved.fetch_add(1, Ordering::SeqCst) < times =>
        {
            (Some(after.min(total - from)), None)
        }
        Behaviour::StallFirst {
            times,
            after,
            stall,
        } if shared.misbehaved.fetch_add(1, Ordering::SeqCst) < times => {
            (Some(after.min(total - from)), Some(stall))
        }
        _ => (None, None),
    };
    let end = cut.map_or(total, |c| from + c);
    for chunk in data[from..end].chunks(16 * 1024) {
        stream.write_all(chunk)?;
        stream.flush()?;
        if !shared.chunk_delay.is_zero() {
            std::thread::sleep(shared.chunk_delay);
        }
    }
    if let Some(d) = stall {
        std::thread::sleep(d);
    }
    // Dropping the stream closes the connection (early when cut).
    Ok(())
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

/// Deterministic, poorly compressible bytes with a marker at the start.
pub fn checkpoint_bytes(fold: u32, len: usize) -> Vec<u8> {
    let mut out = format!("CHECKPOINT-MARKER-{fold}:").into_bytes();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(fold);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 24) as u8);
    }
    out
}

/// Files of a synthetic nnU-Net model folder, relative to the dataset folder.
pub fn model_files(model: &str, folds: &[u32]) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        (
            format!("{model}/plans.json"),
            br#"{"dataset_name": "synthetic", "plans_name": "nnUNetPlans"}"#.to_vec(),
        ),
        (
            format!("{model}/dataset.json"),
            br#"{"labels": {"background": 0, "spleen": 1}}"#.to_vec(),
        ),
    ];
    for &k in folds {
        files.push((
            format!("{model}/fold_{k}/checkpoint_final.pth"),
            checkpoint_bytes(k, 96 * 1024),
        ));
    }
    files
}

/// A zip holding `<top>/<relative path>` for each file; `stored` avoids compression.
pub fn zip_of(top: &str, files: &[(String, Vec<u8>)], stored: bool) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut cursor);
        let method = if stored {
            zip::CompressionMethod::Stored
        } else {
            zip::CompressionMethod::Deflated
        };
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        zip.add_directory(format!("{top}/"), options).expect("dir");
        for (name, data) in files {
            let full = if top.is_empty() {
                name.clone()
            } else {
                format!("{top}/{name}")
            };
            zip.start_file(full, options).expect("start");
            zip.write_all(data).expect("write");
        }
        zip.finish().expect("finish");
    }
    cursor.into_inner()
}

/// The release archive of the synthetic model.
pub fn model_zip() -> Vec<u8> {
    zip_of(DATASET, &model_files(MODEL, &[0]), false)
}

/// The release archive, stored, with one byte of a checkpoint flipped (CRC mismatch).
pub fn corrupt_model_zip() -> Vec<u8> {
    let mut bytes = zip_of(DATASET, &model_files(MODEL, &[0]), true);
    let marker = b"CHECKPOINT-MARKER-0:";
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("marker in stored zip");
    bytes[at + 5000] ^= 0xFF;
    bytes
}

pub fn release_source() -> ModelSource {
    ModelSource {
        dataset_id: 297,
        folder_name: DATASET.to_string(),
        download: DownloadSource::Release {
            tag: TAG.to_string(),
        },
    }
}

pub fn spec_with(source: ModelSource) -> ModelSpec {
    ModelSpec::new(source, TRAINER, "3d_fullres")
}

/// The path the release archive has on the test server.
pub fn release_path() -> String {
    format!("{TAG}/{DATASET}.zip")
}

/// Fast retries, short timeouts, no proxy (the server is on 127.0.0.1).
pub fn fast_http() -> HttpOptions {
    HttpOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_millis(1500),
        max_attempts: 4,
        max_total_attempts: 20,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        proxy: ProxySetting::Direct,
        ..HttpOptions::default()
    }
}

pub fn store_at(home: &Path, server_base: &str) -> WeightsStore {
    WeightsStore::new(
        StoreDirs::under(home),
        StoreOptions {
            release_url_base: server_base.to_string(),
            licence_server_url: format!("{server_base}/"),
            http: fast_http(),
            ..StoreOptions::default()
        },
    )
}

/// A converter that checks the nnU-Net folder and writes marker files; counts its calls.
pub struct MarkerConverter {
    pub calls: AtomicUsize,
    pub seen: Mutex<Vec<PathBuf>>,
}

impl MarkerConverter {
    pub fn new() -> Self {
        Self {
            calls: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        }
    }

    pub fn convert(&self, nnunet_dir: &Path, out_dir: &Path) -> Result<(), BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen
            .lock()
            .expect("seen")
            .push(nnunet_dir.to_path_buf());
        write_markers(nnunet_dir, out_dir)
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Checks the model folder and writes `model.safetensors` / `model.json` markers.
pub fn write_markers(nnunet_dir: &Path, out_dir: &Path) -> Result<(), BoxError> {
    for f in ["plans.json", "dataset.json", "fold_0/checkpoint_final.pth"] {
        if !nnunet_dir.join(f).is_file() {
            return Err(format!("{} lacks {f}", nnunet_dir.display()).into());
        }
    }
    let ckpt = std::fs::read(nnunet_dir.join("fold_0/checkpoint_final.pth"))?;
    std::fs::write(out_dir.join("model.safetensors"), format!("{}", ckpt.len()))?;
    std::fs::write(
        out_dir.join("model.json"),
        format!("{{\"source\": {:?}}}", nnunet_dir.display().to_string()),
    )?;
    Ok(())
}

/// All paths under `root`, relative, sorted (files and folders).
pub fn tree(root: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(
                p.strip_prefix(base)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned(),
            );
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Writes a complete synthetic nnU-Net model folder at `<results>/<dataset>/<MODEL>`.
pub fn install_nnunet_model(results: &Path, dataset: &str) -> PathBuf {
    let ds = results.join(dataset);
    for (name, data) in model_files(MODEL, &[0]) {
        let p = ds.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, data).expect("write");
    }
    ds.join(MODEL)
}
