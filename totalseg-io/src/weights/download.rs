//! Streaming a URL into a `.part` file: retries with exponential backoff on transient
//! failures, `Range` resume when the server answers 206 (restart when it answers 200),
//! size check against `Content-Length`, progress events.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use super::error::{io_error, DownloadError};
use super::http::{classify, status_is_transient, Failure, HttpOptions};
use super::progress::{ProgressEvent, ProgressSink};

/// What to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadRequest<'a> {
    /// `GET url`; resumable with `Range`.
    Get {
        /// The URL.
        url: &'a str,
    },
    /// `POST url` with a JSON body (the licence server); restarted from zero on retry.
    PostJson {
        /// The URL.
        url: &'a str,
        /// The JSON body.
        body: &'a [u8],
    },
}

impl DownloadRequest<'_> {
    /// The URL requested.
    pub fn url(&self) -> &str {
        match self {
            DownloadRequest::Get { url } | DownloadRequest::PostJson { url, .. } => url,
        }
    }

    fn resumable(&self) -> bool {
        matches!(self, DownloadRequest::Get { .. })
    }
}

/// Downloads `request` into `part`, resuming from the bytes already in `part` when the
/// request is a `GET` and the server honours `Range`. Returns the file's size.
///
/// On a transient failure (connect error, timeout, HTTP 5xx/408/429, body shorter than
/// `Content-Length`) it waits `http.backoff(n)` and tries again; `n` counts failures in a
/// row without new bytes, and gives up after `http.max_attempts` of them (or
/// `http.max_total_attempts` attempts in all). After a truncated transfer the partial file is
/// kept so a later call resumes it; after any other failure the caller decides.
///
/// ```no_run
/// use totalseg_io::weights::{download_to_file, DownloadRequest, HttpOptions, NoProgress};
/// let size = download_to_file(
///     &DownloadRequest::Get { url: "https://example.org/a.zip" },
///     std::path::Path::new("/tmp/a.zip.part"),
///     &HttpOptions::default(),
///     &NoProgress,
/// )?;
/// # Ok::<(), totalseg_io::weights::DownloadError>(())
/// ```
pub fn download_to_file(
    request: &DownloadRequest<'_>,
    part: &Path,
    http: &HttpOptions,
    progress: &dyn ProgressSink,
) -> Result<u64, DownloadError> {
    let agent = http.agent_for(request.url())?;
    let mut attempts = 0u32;
    let mut failures_in_row = 0u32;
    loop {
        attempts += 1;
        let have_before = if request.resumable() {
            existing_len(part)?
        } else {
            truncate(part)?;
            0
        };
        match attempt(&agent, request, part, have_before, progress) {
            Ok(size) => {
                progress.event(&ProgressEvent::DownloadFinished { bytes: size });
                return Ok(size);
            }
            Err(Attempt::Fatal(e)) => return Err(e.into_error(attempts)),
            Err(Attempt::Retry(kind)) => {
                let have_after = existing_len(part)?;
                failures_in_row = if have_after > have_before {
                    1
                } else {
                    failures_in_row + 1
                };
                if failures_in_row >= http.max_attempts || attempts >= http.max_total_attempts {
                    return Err(kind.into_error(attempts, part));
                }
                let delay = http.backoff(failures_in_row);
                let reason = kind.describe();
                log::warn!(
                    "download of {} failed (attempt {attempts}): {reason}; retrying in {delay:?}",
                    request.url()
                );
                progress.event(&ProgressEvent::Retrying {
                    attempt: attempts,
                    delay,
                    reason: &reason,
                });
                std::thread::sleep(delay);
            }
        }
    }
}

/// A failure worth retrying.
enum Transient {
    Timeout(String),
    Connection(String),
    Truncated { received: u64, expected: u64 },
    Status(u16),
    Inconsistent(String),
}

impl Transient {
    fn describe(&self) -> String {
        match self {
            Transient::Timeout(d) => format!("timed out: {d}"),
            Transient::Connection(d) => format!("connection failed: {d}"),
            Transient::Truncated { received, expected } => {
                format!("transfer ended at {received} of {expected} bytes")
            }
            Transient::Status(s) => format!("HTTP {s}"),
            Transient::Inconsistent(d) => d.clone(),
        }
    }

    fn into_error(self, attempts: u32, part: &Path) -> DownloadError {
        match self {
            Transient::Timeout(detail) => DownloadError::Timeout { detail, attempts },
            Transient::Connection(detail) => DownloadError::Connection { detail, attempts },
            Transient::Truncated { received, expected } => DownloadError::Truncated {
                received,
                expected,
                attempts,
                part: part.to_path_buf(),
            },
            Transient::Status(status) => DownloadError::HttpStatus { status, attempts },
            Transient::Inconsistent(d) => DownloadError::Inconsistent(d),
        }
    }
}

/// A failure retrying does not fix.
enum Fatal {
    Status(u16),
    Other(DownloadError),
}

impl Fatal {
    fn into_error(self, attempts: u32) -> DownloadError {
        match self {
            Fatal::Status(status) => DownloadError::HttpStatus { status, attempts },
            Fatal::Other(e) => e,
        }
    }
}

enum Attempt {
    Retry(Transient),
    Fatal(Fatal),
}

impl From<DownloadError> for Attempt {
    fn from(e: DownloadError) -> Self {
        Attempt::Fatal(Fatal::Other(e))
    }
}

fn local(op: &'static str, path: &Path, e: io::Error) -> DownloadError {
    DownloadError::Local(Box::new(io_error(op, path, e)))
}

fn existing_len(part: &Path) -> Result<u64, DownloadError> {
    match std::fs::metadata(part) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(local("reading the size of", part, e)),
    }
}

fn truncate(part: &Path) -> Result<(), DownloadError> {
    File::create(part)
        .map(drop)
        .map_err(|e| local("creating the download file", part, e))
}

/// `bytes <start>-<end>/<total>` -> (start, total); `bytes */<total>` -> (None, total).
fn parse_content_range(value: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let start = match range.trim() {
        "*" => None,
        r => Some(r.split_once('-')?.0.trim().parse().ok()?),
    };
    Some((start, total))
}

fn header<'r>(resp: &'r ureq::http::Response<ureq::Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn attempt(
    agent: &ureq::Agent,
    request: &DownloadRequest<'_>,
    part: &Path,
    have: u64,
    progress: &dyn ProgressSink,
) -> Result<u64, Attempt> {
    let sent = match request {
        DownloadRequest::Get { url } => {
            let mut req = agent.get(*url);
            if have > 0 {
                req = req.header("Range", format!("bytes={have}-"));
            }
            req.call()
        }
        DownloadRequest::PostJson { url, body } => agent
            .post(*url)
            .header("Content-Type", "application/json")
            .send(*body),
    };
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return Err(match classify(&e) {
                Failure::Transient {
                    timeout: true,
                    detail,
                } => Attempt::Retry(Transient::Timeout(detail)),
                Failure::Transient { detail, .. } => Attempt::Retry(Transient::Connection(detail)),
                Failure::Fatal(d) => Attempt::Fatal(Fatal::Other(DownloadError::Request(d))),
            })
        }
    };

    let status = resp.status().as_u16();
    let content_length: Option<u64> =
        header(&resp, "content-length").and_then(|v| v.trim().parse().ok());
    let content_range = header(&resp, "content-range").and_then(parse_content_range);

    // Decide where this body starts in the file and how long the file will be.
    let (start, total) = match status {
        206 => match content_range {
            Some((Some(start), total)) if start == have => {
                (start, total.or(content_length.map(|n| have + n)))
            }
            _ => {
                // The server resumed somewhere else: start afresh.
                truncate(part)?;
                return Err(Attempt::Retry(Transient::Inconsistent(format!(
                    "the server answered a resume at byte {have} with Content-Range {:?}; restarting",
                    header(&resp, "content-range").unwrap_or("(none)")
                ))));
            }
        },
        200 => {
            if have > 0 {
                log::info!(
                    "{} does not support resuming (HTTP 200 to a Range request); restarting",
                    request.url()
                );
                truncate(part)?;
            }
            (0, content_length)
        }
        416 if have > 0 => {
            // Range past the end: complete already when the file's size is the total.
            if let Some((None, Some(total))) = content_range {
                if total == have {
                    return Ok(have);
                }
            }
            truncate(part)?;
            return Err(Attempt::Retry(Transient::Inconsistent(format!(
                "the server refused a resume at byte {have} (HTTP 416); restarting"
            ))));
        }
        s if status_is_transient(s) => return Err(Attempt::Retry(Transient::Status(s))),
        s => return Err(Attempt::Fatal(Fatal::Status(s))),
    };

    progress.event(&ProgressEvent::DownloadStarted {
        url: request.url(),
        resumed_from: start,
        total,
    });

    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(part)
        .map_err(|e| local("opening the download file", part, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut body = resp.into_body().into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    let mut on_disk = start;
    let read_failure = loop {
        match body.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => {
                on_disk += n as u64;
                if let Some(t) = total {
                    if on_disk > t {
                        drop(out);
                        truncate(part)?;
                        return Err(Attempt::Fatal(Fatal::Other(DownloadError::Inconsistent(
                            format!("the server sent more than the announced {t} bytes"),
                        ))));
                    }
                }
                out.write_all(&buf[..n])
                    .map_err(|e| local("writing the download file", part, e))?;
                progress.event(&ProgressEvent::Downloaded {
                    bytes: on_disk,
                    total,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Some(e),
        }
    };
    // Keep what arrived so the next attempt resumes after it.
    let file = out
        .into_inner()
        .map_err(|e| local("writing the download file", part, e.into_error()))?;
    file.sync_all()
        .map_err(|e| local("writing the download file", part, e))?;

    // ureq wraps its own errors (e.g. a read timeout) in the io::Error of the body reader.
    let read_failure = read_failure.map(|e| classify(&ureq::Error::from(e)));
    match (read_failure, total) {
        (None, Some(t)) if on_disk < t => Err(Attempt::Retry(Transient::Truncated {
            received: on_disk,
            expected: t,
        })),
        (None, _) => Ok(on_disk),
        (
            Some(Failure::Transient {
                timeout: true,
                detail,
            }),
            _,
        ) => Err(Attempt::Retry(Transient::Timeout(detail))),
        (Some(Failure::Fatal(detail)), _) => {
            Err(Attempt::Fatal(Fatal::Other(DownloadError::Request(detail))))
        }
        (Some(Failure::Transient { .. }), Some(t)) => Err(Attempt::Retry(Transient::Truncated {
            received: on_disk,
            expected: t,
        })),
        (Some(Failure::Transient { detail, .. }), None) => {
            Err(Attempt::Retry(Transient::Connection(detail)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((Some(100), Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((Some(0), None)));
        assert_eq!(parse_content_range("bytes */200"), Some((None, Some(200))));
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes x-1/2"), None);
    }
}
