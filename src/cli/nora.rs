//! `--nora_tag` (`-t`): registering the written NIfTI files in a NORA imaging platform
//! project, as TotalSegmentator does after saving: `nora -p <project> --add <file> --addtag
//! atlas` for the multilabel file, `--addtag mask` for each per-class file.
//!
//! TotalSegmentator runs `/opt/nora/src/node/nora` through the shell and ignores its exit
//! status; here a missing or failing `nora` gives a warning and the run goes on the same way.
//! `TOTALSEG_NORA_BIN` points at another `nora` executable.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where TotalSegmentator runs NORA's command-line client from.
pub const DEFAULT_NORA_BIN: &str = "/opt/nora/src/node/nora";

/// Environment variable naming the `nora` executable instead of [`DEFAULT_NORA_BIN`].
pub const NORA_BIN_VARIABLE: &str = "TOTALSEG_NORA_BIN";

/// How a file is tagged in the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoraTag {
    /// The multilabel file (`--ml`).
    Atlas,
    /// A per-class binary mask.
    Mask,
}

impl NoraTag {
    fn as_str(self) -> &'static str {
        match self {
            NoraTag::Atlas => "atlas",
            NoraTag::Mask => "mask",
        }
    }
}

/// The `nora` executable: `TOTALSEG_NORA_BIN` when set, else TotalSegmentator's path.
pub fn nora_bin() -> PathBuf {
    std::env::var_os(NORA_BIN_VARIABLE)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_NORA_BIN), PathBuf::from)
}

/// Adds each of `files` to NORA project `project` with tag `tag`. Returns the warnings (one
/// per file NORA did not take), which the caller prints; nothing here stops the run.
pub fn add_to_nora(project: &str, files: &[PathBuf], tag: NoraTag) -> Vec<String> {
    let bin = nora_bin();
    files
        .iter()
        .filter_map(|file| add_one(&bin, project, file, tag).err())
        .collect()
}

fn add_one(bin: &Path, project: &str, file: &Path, tag: NoraTag) -> Result<(), String> {
    let status = Command::new(bin)
        .arg("-p")
        .arg(project)
        .arg("--add")
        .arg(file)
        .arg("--addtag")
        .arg(tag.as_str())
        .status()
        .map_err(|e| format!("--nora_tag: could not run {}: {e}", bin.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "--nora_tag: {} --add {} exited with {status}",
            bin.display(),
            file.display()
        ))
    }
}
