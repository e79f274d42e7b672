//! Unpacking a release archive: name checks (zip slip, links) and the expected
//! `<DatasetNNN_name>/<trainer>__<plans>__<cfg>/plans.json` layout before anything is
//! written, then extraction into a temporary folder next to the destination (reading every
//! entry to its end, which checks its CRC), then renames into place.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use super::error::{io_error, WeightsError};
use super::fsutil::TempDir;

/// What an archive is expected to hold.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedLayout<'a> {
    /// The top-level folder, `DatasetNNN_name`.
    pub folder_name: &'a str,
    /// The model folder that must be in it (`<trainer>__<plans>__<cfg>`), or `None` for any
    /// model folder. A model folder counts when it holds `plans.json`, `dataset.json` and at
    /// least one `fold_*/checkpoint_final.pth`.
    pub model_folder: Option<&'a str>,
}

/// Unpacks the `folder_name/` part of `archive` into `dest_root/folder_name`.
///
/// Nothing is written unless every entry name is safe and the layout matches; the files are
/// written into `dest_root/.tmp-unpack-*` first (reading each entry to its end checks its
/// CRC) and renamed into place only when all succeeded. When `dest_root/folder_name`
/// already exists (another model of the same dataset), the new model folders are moved into
/// it and existing entries are left as they are. Entries outside `folder_name/` are ignored.
/// `origin` (the URL) only serves error messages. Returns `dest_root/folder_name`.
///
/// A damaged archive gives [`WeightsError::CorruptArchive`] (the archive is not deleted here).
pub fn unpack_dataset_archive(
    archive: &Path,
    layout: ExpectedLayout<'_>,
    dest_root: &Path,
    origin: &str,
) -> Result<PathBuf, WeightsError> {
    let corrupt = |reason: String| WeightsError::CorruptArchive {
        url: origin.to_string(),
        path: archive.to_path_buf(),
        reason,
    };
    let file = File::open(archive).map_err(|e| io_error("opening the archive", archive, e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| corrupt(e.to_string()))?;

    let plan = plan_extraction(&mut zip, layout, origin, &corrupt)?;

    let tmp = TempDir::create_in(dest_root, &format!("unpack-{}", layout.folder_name))?;
    let mut buf = vec![0u8; 256 * 1024];
    for (index, rel) in &plan.entries {
        let mut entry = zip.by_index(*index).map_err(|e| corrupt(e.to_string()))?;
        let out_path = tmp.path().join(rel);
        if entry.is_dir() {
            std::fs::create_dir_all(&out_path)
                .map_err(|e| io_error("creating a folder while unpacking", &out_path, e))?;
            continue;
        }
        if let Some(parent) = out_path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_error("creating a folder while unpacking", parent, e))?;
        }
        let expected = entry.size();
        let mut out = File::create(&out_path)
            .map_err(|e| io_error("creating a file while unpacking", &out_path, e))?;
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(corrupt(format!("entry {}: {e}", entry.name()))),
            };
            out.write_all(&buf[..n])
                .map_err(|e| io_error("writing a file while unpacking", &out_path, e))?;
            written += n as u64;
        }
        if written != expected {
            return Err(corrupt(format!(
                "entry {} has {written} bytes, its header says {expected}",
                entry.name()
            )));
        }
        out.sync_all()
            .map_err(|e| io_error("writing a file while unpacking", &out_path, e))?;
    }

    let unpacked = tmp.path().join(layout.folder_name);
    let target = dest_root.join(layout.folder_name);
    move_into_place(&unpacked, &target)?;
    Ok(target)
}

/// The `DatasetNNN_name` folders at the top of a weights archive, sorted (what
/// `totalseg import-weights` unpacks; entries elsewhere are ignored).
pub fn dataset_folders_in_archive(archive: &Path) -> Result<Vec<String>, WeightsError> {
    let corrupt = |reason: String| WeightsError::CorruptArchive {
        url: archive.display().to_string(),
        path: archive.to_path_buf(),
        reason,
    };
    let file = File::open(archive).map_err(|e| io_error("opening the archive", archive, e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| corrupt(e.to_string()))?;
    let mut folders = BTreeSet::new();
    for index in 0..zip.len() {
        let entry = zip
            .by_index_raw(index)
            .map_err(|e| corrupt(e.to_string()))?;
        let Some(rel) = safe_relative_path(entry.name()) else {
            continue;
        };
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        // Only `DatasetNNN_...` folders: a file at the top has no `/` after it.
        if let Some(first) = first.filter(|f| is_dataset_folder_name(f)) {
            if rel.components().count() > 1 || entry.is_dir() {
                folders.insert(first);
            }
        }
    }
    Ok(folders.into_iter().collect())
}

/// `Dataset` followed by digits and `_`, as nnU-Net names dataset folders.
fn is_dataset_folder_name(name: &str) -> bool {
    name.strip_prefix("Dataset").is_some_and(|rest| {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with('_')
    })
}

struct Plan {
    /// (entry index, safe relative path starting with the folder name)
    entries: Vec<(usize, PathBuf)>,
}

/// Checks all names and the layout from the central directory (no decompression).
fn plan_extraction<R: Read + io::Seek>(
    zip: &mut zip::ZipArchive<R>,
    layout: ExpectedLayout<'_>,
    origin: &str,
    corrupt: &dyn Fn(String) -> WeightsError,
) -> Result<Plan, WeightsError> {
    let mut entries = Vec::new();
    let mut top_level = BTreeSet::new();
    // model folder -> which of (plans.json, dataset.json, fold_*/checkpoint_final.pth) it has
    let mut models: BTreeMap<String, [bool; 3]> = BTreeMap::new();
    for index in 0..zip.len() {
        let entry = zip
            .by_index_raw(index)
            .map_err(|e| corrupt(e.to_string()))?;
        let name = entry.name().to_string();
        let unsafe_entry = || WeightsError::UnsafeArchiveEntry {
            url: origin.to_string(),
            entry: name.clone(),
        };
        let rel = safe_relative_path(&name).ok_or_else(unsafe_entry)?;
        if entry.enclosed_name().is_none() || entry.is_symlink() {
            return Err(unsafe_entry());
        }
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let Some(first) = parts.first() else {
            continue;
        };
        if first == "__MACOSX" {
            continue;
        }
        top_level.insert(first.clone());
        if first != layout.folder_name {
            continue;
        }
        if parts.len() >= 3 && !entry.is_dir() {
            let files = models.entry(parts[1].clone()).or_default();
            match (parts.len(), parts[2].as_str()) {
                (3, "plans.json") => files[0] = true,
                (3, "dataset.json") => files[1] = true,
                (4, fold) if fold.starts_with("fold_") && parts[3] == "checkpoint_final.pth" => {
                    files[2] = true
                }
                _ => {}
            }
        }
        entries.push((index, rel));
    }

    let complete = |files: &[bool; 3]| files.iter().all(|&f| f);
    let layout_ok = match layout.model_folder {
        Some(model) => models.get(model).is_some_and(complete),
        None => models.values().any(complete),
    };
    if !layout_ok {
        let found = if top_level.contains(layout.folder_name) {
            format!(
                "{}/ with model folders [{}]",
                layout.folder_name,
                models
                    .iter()
                    .map(|(name, files)| if complete(files) {
                        name.clone()
                    } else {
                        format!("{name} (incomplete)")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            let names: Vec<String> = top_level.into_iter().take(10).collect();
            format!("top-level entries [{}]", names.join(", "))
        };
        return Err(WeightsError::UnexpectedLayout {
            url: origin.to_string(),
            expected: match layout.model_folder {
                Some(m) => format!("{}/{m}", layout.folder_name),
                None => layout.folder_name.to_string(),
            },
            expected_top: layout.folder_name.to_string(),
            found,
        });
    }
    Ok(Plan { entries })
}

/// The entry name as a relative path of normal components, or `None` when it is absolute,
/// has a drive prefix, contains `..`, NUL, or is empty. Backslashes count as separators.
pub(crate) fn safe_relative_path(name: &str) -> Option<PathBuf> {
    if name.contains('\0') {
        return None;
    }
    let normalised = name.replace('\\', "/");
    if normalised.starts_with('/') || normalised.split('/').next()?.contains(':') {
        return None;
    }
    let mut out = PathBuf::new();
    for part in normalised.split('/') {
        match part {
            "" | "." => continue,
            ".." => return None,
            p => {
                let component = Path::new(p).components().next()?;
                if !matches!(component, Component::Normal(_)) {
                    return None;
                }
                out.push(p);
            }
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Renames `unpacked` to `target`, or merges its children into an existing `target`
/// (children already there are kept).
fn move_into_place(unpacked: &Path, target: &Path) -> Result<(), WeightsError> {
    if !target.exists() {
        return std::fs::rename(unpacked, target)
            .map_err(|e| io_error("moving the unpacked folder into place at", target, e));
    }
    let children = std::fs::read_dir(unpacked)
        .map_err(|e| io_error("listing the unpacked folder", unpacked, e))?;
    for child in children {
        let child = child.map_err(|e| io_error("listing the unpacked folder", unpacked, e))?;
        let dest = target.join(child.file_name());
        if dest.exists() {
            log::info!("keeping existing {}", dest.display());
            continue;
        }
        std::fs::rename(child.path(), &dest)
            .map_err(|e| io_error("moving an unpacked folder into place at", &dest, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_names_are_rejected() {
        for bad in [
            "../evil",
            "a/../../evil",
            "a/../b",
            "/etc/passwd",
            "\\evil",
            "..\\evil",
            "C:/x",
            "c:x",
            "",
            "a\0b",
        ] {
            assert_eq!(safe_relative_path(bad), None, "{bad:?}");
        }
        assert_eq!(
            safe_relative_path("Dataset1_x/./m/plans.json"),
            Some(PathBuf::from("Dataset1_x/m/plans.json"))
        );
        assert_eq!(
            safe_relative_path("Dataset1_x/m/"),
            Some(PathBuf::from("Dataset1_x/m"))
        );
    }

    #[test]
    fn dataset_folders_are_found_at_the_top_only() {
        assert!(is_dataset_folder_name(
            "Dataset297_TotalSegmentator_total_3mm_1559subj"
        ));
        assert!(!is_dataset_folder_name("Dataset_x"));
        assert!(!is_dataset_folder_name("DatasetX_1"));
        assert!(!is_dataset_folder_name("data"));

        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("w.zip");
        let mut zip = zip::ZipWriter::new(File::create(&archive).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        for name in [
            "Dataset300_body_6mm_1559subj/m/plans.json",
            "Dataset299_body_1559subj/",
            "Dataset1_file_at_top.txt",
            "nested/Dataset5_x/plans.json",
            "../Dataset6_evil/plans.json",
        ] {
            if name.ends_with('/') {
                zip.add_directory(name, options).unwrap();
            } else {
                zip.start_file(name, options).unwrap();
                zip.write_all(b"{}").unwrap();
            }
        }
        zip.finish().unwrap();
        assert_eq!(
            dataset_folders_in_archive(&archive).unwrap(),
            vec![
                "Dataset299_body_1559subj".to_string(),
                "Dataset300_body_6mm_1559subj".to_string()
            ]
        );
        std::fs::write(&archive, b"PK\x03\x04 truncated").unwrap();
        assert!(matches!(
            dataset_folders_in_archive(&archive),
            Err(WeightsError::CorruptArchive { .. })
        ));
    }
}
