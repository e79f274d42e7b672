//! All-or-nothing output: files are written under temporary names in the destination folder
//! and renamed into place together at the end; on any earlier failure the temporaries are
//! removed and existing outputs are left untouched.

use std::path::{Path, PathBuf};

use crate::error::ConvertError;

/// A set of output files being written.
pub struct AtomicOutputs {
    finals: Vec<PathBuf>,
    temps: Vec<PathBuf>,
    committed: bool,
}

impl AtomicOutputs {
    /// Plans `names` inside `dir`; each gets a hidden temporary name unique to this process.
    pub fn new(dir: &Path, names: &[&str]) -> Self {
        let pid = std::process::id();
        AtomicOutputs {
            finals: names.iter().map(|n| dir.join(n)).collect(),
            temps: names
                .iter()
                .map(|n| dir.join(format!(".{n}.tmp-{pid}")))
                .collect(),
            committed: false,
        }
    }

    /// Where to write file `i` before [`commit`](Self::commit).
    pub fn temp_path(&self, i: usize) -> &Path {
        &self.temps[i]
    }

    /// Renames every temporary onto its final name, in order (so the last name appears last).
    pub fn commit(&mut self) -> Result<(), ConvertError> {
        for (temp, fin) in self.temps.iter().zip(&self.finals) {
            std::fs::rename(temp, fin).map_err(|source| ConvertError::Write {
                path: fin.clone(),
                source,
            })?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicOutputs {
    fn drop(&mut self) {
        if !self.committed {
            for temp in &self.temps {
                // Best effort: a temporary that was never created is not an error.
                let _ = std::fs::remove_file(temp);
            }
        }
    }
}
