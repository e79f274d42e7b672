//! Small file-system helpers: self-removing temporary folders next to their destination
//! (so the final step is a rename on the same file system), stale-temp cleanup, sizes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{io_error, WeightsError};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `.tmp-<label>~`: the prefix of every temporary folder made for `label`. The `~` cannot
/// occur in dataset or model folder names, so one label's prefix never matches another's.
pub(crate) fn temp_prefix(label: &str) -> String {
    format!(".tmp-{label}~")
}

/// A temporary folder removed on drop unless [`TempDir::keep`] was called.
#[derive(Debug)]
pub(crate) struct TempDir {
    path: PathBuf,
    armed: bool,
}

impl TempDir {
    /// Creates `<parent>/.tmp-<label>~<pid>-<n>` (and `parent` if needed).
    pub(crate) fn create_in(parent: &Path, label: &str) -> Result<Self, WeightsError> {
        std::fs::create_dir_all(parent).map_err(|e| io_error("creating the folder", parent, e))?;
        let name = format!(
            "{}{}-{}",
            temp_prefix(label),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = parent.join(name);
        std::fs::create_dir(&path)
            .map_err(|e| io_error("creating a temporary folder", &path, e))?;
        Ok(Self { path, armed: true })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the removal on drop (its content was moved away or is wanted).
    pub(crate) fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.armed {
            if let Err(e) = std::fs::remove_dir_all(&self.path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    log::warn!(
                        "could not remove temporary folder {}: {e}",
                        self.path.display()
                    );
                }
            }
        }
    }
}

/// Removes temporary folders of `label` left in `parent` by killed processes.
/// Only call while holding the lock that guards `label`.
pub(crate) fn remove_stale_temps(parent: &Path, label: &str) {
    let prefix = temp_prefix(label);
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let path = entry.path();
            log::info!("removing stale temporary folder {}", path.display());
            let result = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = result {
                log::warn!("could not remove {}: {e}", path.display());
            }
        }
    }
}

/// Total size in bytes of the files under `path` (links not followed).
pub(crate) fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Whether `path` is a hidden (dot) entry, e.g. our temporary folders and lock folder.
pub(crate) fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_clean_up_unless_kept() {
        let root = tempfile::tempdir().unwrap();
        let t = TempDir::create_in(root.path(), "x").unwrap();
        let p = t.path().to_path_buf();
        std::fs::write(p.join("f"), b"abc").unwrap();
        assert_eq!(dir_size(&p), 3);
        drop(t);
        assert!(!p.exists());

        let t = TempDir::create_in(root.path(), "x").unwrap();
        let p = t.path().to_path_buf();
        t.keep();
        assert!(p.exists());
        assert!(is_hidden(&p));
    }

    #[test]
    fn stale_cleanup_only_touches_its_label() {
        let root = tempfile::tempdir().unwrap();
        let mine = TempDir::create_in(root.path(), "unpack-A").unwrap();
        let other = TempDir::create_in(root.path(), "unpack-A-b").unwrap();
        let (mine_p, other_p) = (mine.path().to_path_buf(), other.path().to_path_buf());
        mine.keep();
        other.keep();
        remove_stale_temps(root.path(), "unpack-A");
        assert!(!mine_p.exists());
        assert!(other_p.exists());
    }
}
