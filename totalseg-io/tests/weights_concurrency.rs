//! Two processes asking for the same model at once end with one download, one conversion and
//! one valid copy: the test binary spawns itself twice as child processes.

mod weights_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use totalseg_io::weights::{BoxError, ProgressEvent};
use weights_support::*;

const ENV_HOME: &str = "WEIGHTS_CHILD_HOME";
const ENV_BASE: &str = "WEIGHTS_CHILD_BASE";
const ENV_LOG: &str = "WEIGHTS_CHILD_LOG";

fn append(log: &Path, line: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    writeln!(f, "{line}").expect("log write");
}

/// The child's work; a no-op in a normal test run (the variables are unset).
#[test]
fn child_process_entry() {
    let (Some(home), Some(base), Some(log)) = (
        std::env::var_os(ENV_HOME),
        std::env::var(ENV_BASE).ok(),
        std::env::var_os(ENV_LOG),
    ) else {
        return;
    };
    let log = PathBuf::from(log);
    let pid = std::process::id();
    let store = store_at(Path::new(&home), &base);
    let convert = |a: &Path, b: &Path| -> Result<(), BoxError> {
        append(&log, &format!("converted {pid}"));
        // Slow enough that a competitor would overlap if the lock did not hold.
        std::thread::sleep(Duration::from_millis(200));
        write_markers(a, b)
    };
    let sink = |e: &ProgressEvent<'_>| {
        if matches!(e, ProgressEvent::WaitingForLock { .. }) {
            append(&log, &format!("waited {pid}"));
        }
    };
    let model = store
        .ensure_converted(&spec_with(release_source()), &convert, &sink)
        .expect("child ensure_converted");
    append(&log, &format!("result {pid} {}", model.weights.display()));
}

fn spawn_child(home: &Path, base: &str, log: &Path) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_process_entry", "--test-threads=1"])
        .env(ENV_HOME, home)
        .env(ENV_BASE, base)
        .env(ENV_LOG, log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child")
}

fn wait_bounded(mut child: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("child did not finish in {limit:?}");
}

#[test]
fn two_processes_download_and_convert_once() {
    // ~0.7 s of transfer (7 chunks of 16 KiB, 100 ms apart) so the second child starts mid-download.
    let server = TestServer::start_full(
        vec![(release_path(), model_zip())],
        Behaviour::Normal,
        None,
        Duration::from_millis(100),
    );
    let home = tempfile::tempdir().unwrap();
    let log = home.path().join("children.log");
    let a = spawn_child(home.path(), &server.base(), &log);
    let b = spawn_child(home.path(), &server.base(), &log);
    for out in [
        wait_bounded(a, Duration::from_secs(30)),
        wait_bounded(b, Duration::from_secs(30)),
    ] {
        assert!(
            out.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let count = |p: &str| lines.iter().filter(|l| l.starts_with(p)).count();
    assert_eq!(count("converted "), 1, "{text}");
    assert_eq!(count("result "), 2, "{text}");
    let results: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("result "))
        .map(|l| l.split_once(' ').map_or("", |(_, path)| path))
        .collect();
    assert_eq!(results[0], results[1], "{text}");
    eprintln!("lock waits: {}", count("waited "));

    let downloads = server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(".zip"))
        .count();
    assert_eq!(downloads, 1, "{:?}", server.requests());
    let model_dir = home.path().join("rs-models").join(DATASET).join(MODEL);
    assert_eq!(
        std::fs::read_to_string(model_dir.join("model.safetensors")).unwrap(),
        "98304"
    );
    assert!(
        tree(home.path())
            .iter()
            .all(|p| !p.contains(".tmp-") && !p.ends_with(".part")),
        "{:?}",
        tree(home.path())
    );
}
