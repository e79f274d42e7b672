//! Progress reporting: events the store emits, a no-op sink, closures as sinks, and an
//! `indicatif` bar with byte counts, rate and ETA for the CLI.

use std::path::Path;
use std::time::Duration;

/// Something the store is doing, for progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent<'a> {
    /// Another process holds the dataset's lock; this one waits for it.
    WaitingForLock {
        /// The lock file.
        lock_file: &'a Path,
    },
    /// A transfer (attempt) started.
    DownloadStarted {
        /// The URL requested.
        url: &'a str,
        /// Bytes already on disk that this attempt resumes from (0 when starting afresh).
        resumed_from: u64,
        /// Total size when the server announced it.
        total: Option<u64>,
    },
    /// Bytes on disk so far (including resumed bytes).
    Downloaded {
        /// Bytes on disk.
        bytes: u64,
        /// Total size when known.
        total: Option<u64>,
    },
    /// An attempt failed transiently; the next starts after `delay`.
    Retrying {
        /// The attempt that failed (1-based).
        attempt: u32,
        /// Delay before the next attempt.
        delay: Duration,
        /// Why it failed.
        reason: &'a str,
    },
    /// The whole file is on disk.
    DownloadFinished {
        /// Its size.
        bytes: u64,
    },
    /// The archive is being checked and unpacked.
    Unpacking {
        /// The archive file.
        archive: &'a Path,
    },
    /// The converter runs on this nnU-Net model folder.
    Converting {
        /// The nnU-Net model folder.
        model_dir: &'a Path,
    },
}

/// Receives [`ProgressEvent`]s. Implemented for closures `Fn(&ProgressEvent)`.
pub trait ProgressSink {
    /// Called for each event, in order, from the calling thread.
    fn event(&self, event: &ProgressEvent<'_>);
}

impl<F: Fn(&ProgressEvent<'_>)> ProgressSink for F {
    fn event(&self, event: &ProgressEvent<'_>) {
        self(event)
    }
}

/// Ignores all events.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn event(&self, _event: &ProgressEvent<'_>) {}
}

/// A terminal progress bar (bytes, total, rate, ETA) with messages for the other events.
///
/// ```no_run
/// use totalseg_io::weights::{DownloadBar, ProgressSink, ProgressEvent};
/// let bar = DownloadBar::new();
/// bar.event(&ProgressEvent::Downloaded { bytes: 1 << 20, total: Some(4 << 20) });
/// ```
#[derive(Debug)]
pub struct DownloadBar {
    bar: indicatif::ProgressBar,
}

impl Default for DownloadBar {
    fn default() -> Self {
        Self::new()
    }
}

impl DownloadBar {
    /// A bar drawn on stderr (hidden when stderr is not a terminal).
    pub fn new() -> Self {
        Self::with_bar(indicatif::ProgressBar::new(0))
    }

    /// Wraps an existing bar (e.g. one inside an `indicatif::MultiProgress`).
    pub fn with_bar(bar: indicatif::ProgressBar) -> Self {
        let style = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        Self { bar }
    }

    /// The underlying bar.
    pub fn bar(&self) -> &indicatif::ProgressBar {
        &self.bar
    }
}

impl ProgressSink for DownloadBar {
    fn event(&self, event: &ProgressEvent<'_>) {
        match event {
            ProgressEvent::WaitingForLock { lock_file } => self.bar.println(format!(
                "waiting for another process to finish (lock {})",
                lock_file.display()
            )),
            ProgressEvent::DownloadStarted {
                url,
                resumed_from,
                total,
            } => {
                self.bar.set_message("downloading");
                if *resumed_from > 0 {
                    self.bar
                        .println(format!("resuming {url} at byte {resumed_from}"));
                } else {
                    self.bar.println(format!("downloading {url}"));
                }
                if let Some(t) = total {
                    self.bar.set_length(*t);
                }
                self.bar.set_position(*resumed_from);
                // Resumed bytes did not arrive now: restart the rate/ETA estimate from here.
                self.bar.reset_eta();
            }
            ProgressEvent::Downloaded { bytes, total } => {
                if let Some(t) = total {
                    self.bar.set_length(*t);
                }
                self.bar.set_position(*bytes);
            }
            ProgressEvent::Retrying {
                attempt,
                delay,
                reason,
            } => self.bar.println(format!(
                "attempt {attempt} failed ({reason}); retrying in {:.1} s",
                delay.as_secs_f64()
            )),
            ProgressEvent::DownloadFinished { bytes } => {
                self.bar.set_position(*bytes);
                self.bar.finish_with_message("downloaded");
            }
            ProgressEvent::Unpacking { archive } => {
                self.bar.println(format!("unpacking {}", archive.display()))
            }
            ProgressEvent::Converting { model_dir } => self.bar.println(format!(
                "converting {} to the Rust model format",
                model_dir.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn closures_are_sinks() {
        let seen = RefCell::new(Vec::new());
        let sink = |e: &ProgressEvent<'_>| {
            if let ProgressEvent::Downloaded { bytes, total } = e {
                seen.borrow_mut().push((*bytes, *total));
            }
        };
        let dyn_sink: &dyn ProgressSink = &sink;
        dyn_sink.event(&ProgressEvent::Downloaded {
            bytes: 5,
            total: Some(10),
        });
        assert_eq!(seen.borrow().as_slice(), &[(5, Some(10))]);
    }

    #[test]
    fn bar_tracks_position() {
        let bar = DownloadBar::with_bar(indicatif::ProgressBar::hidden());
        bar.event(&ProgressEvent::DownloadStarted {
            url: "http://x",
            resumed_from: 3,
            total: Some(10),
        });
        assert_eq!(bar.bar().position(), 3);
        bar.event(&ProgressEvent::Downloaded {
            bytes: 7,
            total: Some(10),
        });
        assert_eq!(bar.bar().position(), 7);
        assert_eq!(bar.bar().length(), Some(10));
    }
}
