//! `totalseg set-license`: TotalSegmentator's `totalseg_set_license`, against a local stand-in
//! for the licence server (`POST /is_valid_license_number`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::thread;

const VALID: &str = "aca_1234567890ABCD";

/// Answers `valid_license` when the posted JSON holds [`VALID`], `invalid_license` otherwise.
fn licence_server(requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}/", listener.local_addr().expect("addr"));
    thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            // Headers, then the body up to Content-Length.
            loop {
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let status =
                if text.starts_with("POST /is_valid_license_number") && text.contains(VALID) {
                    "valid_license"
                } else {
                    "invalid_license"
                };
            let body = format!("{{\"status\": \"{status}\"}}");
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    base
}

fn set_license(home: &Path, server: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_totalseg"))
        .arg("set-license")
        .args(args)
        .env("TOTALSEG_HOME_DIR", home)
        .env("TOTALSEG_LICENSE_SERVER_URL", server)
        .output()
        .expect("totalseg runs")
}

fn stored(home: &Path) -> Option<String> {
    let text = std::fs::read_to_string(home.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).expect("config is JSON");
    config["license_number"].as_str().map(str::to_string)
}

#[test]
fn a_valid_number_is_stored_and_others_are_refused() {
    let work = tempfile::tempdir().expect("tmp");
    let home = work.path().join("home");
    let server = licence_server(2);

    let out = set_license(&home, &server, &["-l", "aca_WRONGWRONGWRON"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid license number"));
    assert_eq!(stored(&home), None);

    let out = set_license(&home, &server, &["-l", VALID]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("successfully saved"));
    assert_eq!(stored(&home).as_deref(), Some(VALID));

    // Badly formed numbers fail before any request; -sv skips the server.
    let out = set_license(&home, "http://127.0.0.1:9/", &["-l", "aca_short"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("18 characters"));
    let out = set_license(
        &home,
        "http://127.0.0.1:9/",
        &["-l", "aca_ABCDEFGHIJKLMN", "-sv"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored(&home).as_deref(), Some("aca_ABCDEFGHIJKLMN"));
}
