//! An advisory, exclusive lock per dataset folder, so that concurrent runs (threads or
//! processes) never download, unpack or convert the same dataset at once: the second waits,
//! then finds the first one's result.
//!
//! It is an OS file lock (`flock` on Unix, `LockFileEx` on Windows, through
//! `std::fs::File::lock`), so a crashed holder releases it and no stale lock can remain.
//! The lock file itself is never deleted: deleting it would let a waiter and a newcomer lock
//! two different files.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{io_error, WeightsError};
use super::progress::{ProgressEvent, ProgressSink};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct DatasetLock {
    file: File,
    path: PathBuf,
}

impl DatasetLock {
    /// Takes the lock on `path` (created if missing), waiting for another holder if there is
    /// one (and telling `progress` so).
    pub fn acquire(path: &Path, progress: &dyn ProgressSink) -> Result<Self, WeightsError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_error("creating the lock folder", parent, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io_error("opening the lock file", path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                log::info!("waiting for another process holding {}", path.display());
                progress.event(&ProgressEvent::WaitingForLock { lock_file: path });
                file.lock()
                    .map_err(|e| io_error("locking the lock file", path, e))?;
            }
            Err(TryLockError::Error(e)) => {
                return Err(io_error("locking the lock file", path, e));
            }
        }
        // For a human looking at a lock that seems stuck: who holds it.
        let _ = file
            .set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DatasetLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes the order explicit.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::NoProgress;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn second_holder_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("locks").join("d.lock");
        let first = DatasetLock::acquire(&path, &NoProgress).unwrap();
        let released = Arc::new(AtomicBool::new(false));
        let waited = Arc::new(AtomicBool::new(false));
        let handle = {
            let (path, released, waited) = (path.clone(), released.clone(), waited.clone());
            std::thread::spawn(move || {
                let sink = |e: &ProgressEvent<'_>| {
                    if matches!(e, ProgressEvent::WaitingForLock { .. }) {
                        waited.store(true, Ordering::SeqCst);
                    }
                };
                let _second = DatasetLock::acquire(&path, &sink).unwrap();
                // Only possible once the first was dropped.
                assert!(released.load(Ordering::SeqCst));
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        released.store(true, Ordering::SeqCst);
        drop(first);
        handle.join().unwrap();
        assert!(waited.load(Ordering::SeqCst));
        assert!(path.exists());
    }
}
