//! What is on disk, for `totalseg weights list`.

use std::path::{Path, PathBuf};

use super::error::{io_error, WeightsError};
use super::fsutil::{dir_size, is_hidden};
use super::store::{
    checkpoint_folds, model_folder_state, FolderState, WeightsStore, CONVERTED_JSON_FILE,
    CONVERTED_WEIGHTS_FILE,
};

/// Which form a model on disk has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ModelForm {
    /// Our converted format (`model.safetensors` + `model.json`).
    Converted,
    /// The official nnU-Net folder (`plans.json`, `dataset.json`, `fold_*/checkpoint_final.pth`).
    NnUnet,
}

/// One model folder found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledModel {
    /// Its form.
    pub form: ModelForm,
    /// `DatasetNNN_name`.
    pub dataset_folder: String,
    /// `<trainer>__<plans>__<configuration>`.
    pub model_folder: String,
    /// The model folder.
    pub path: PathBuf,
    /// Bytes of all files under it.
    pub size_bytes: u64,
    /// nnU-Net folds with a `checkpoint_final.pth` (empty for converted models).
    pub folds: Vec<u32>,
    /// Whether all required files are present.
    pub complete: bool,
}

impl WeightsStore {
    /// All converted models and all official nnU-Net model folders in this store's folders,
    /// sorted by form, dataset, model and path. Missing folders count as empty.
    pub fn list_models(&self) -> Result<Vec<InstalledModel>, WeightsError> {
        let mut out = Vec::new();
        for (dataset, model, path) in model_dirs(&self.dirs().converted, |_| true)? {
            let complete = path.join(CONVERTED_WEIGHTS_FILE).is_file()
                && path.join(CONVERTED_JSON_FILE).is_file();
            out.push(InstalledModel {
                form: ModelForm::Converted,
                dataset_folder: dataset,
                model_folder: model,
                size_bytes: dir_size(&path),
                folds: Vec::new(),
                complete,
                path,
            });
        }
        let mut seen_roots: Vec<&Path> = Vec::new();
        for root in &self.dirs().nnunet_roots {
            if seen_roots.contains(&root.as_path()) {
                continue;
            }
            seen_roots.push(root);
            // nnU-Net model folders are named `<trainer>__<plans>__<configuration>`.
            for (dataset, model, path) in model_dirs(root, |m| m.split("__").count() == 3)? {
                out.push(InstalledModel {
                    form: ModelForm::NnUnet,
                    dataset_folder: dataset,
                    model_folder: model,
                    size_bytes: dir_size(&path),
                    folds: checkpoint_folds(&path),
                    complete: matches!(model_folder_state(&path), FolderState::Complete),
                    path,
                });
            }
        }
        out.sort_by(|a, b| {
            (a.form, &a.dataset_folder, &a.model_folder, &a.path).cmp(&(
                b.form,
                &b.dataset_folder,
                &b.model_folder,
                &b.path,
            ))
        });
        Ok(out)
    }
}

/// `(dataset, model, path)` for every `<root>/<dataset>/<model>/` folder, hidden entries
/// (locks, temporary folders) skipped.
fn model_dirs(
    root: &Path,
    keep_model: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String, PathBuf)>, WeightsError> {
    let mut out = Vec::new();
    let datasets = match std::fs::read_dir(root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_error("listing", root, e)),
    };
    for dataset in datasets.flatten() {
        let dataset_path = dataset.path();
        if is_hidden(&dataset_path) || !dataset_path.is_dir() {
            continue;
        }
        let Ok(models) = std::fs::read_dir(&dataset_path) else {
            continue;
        };
        for model in models.flatten() {
            let path = model.path();
            let name = model.file_name().to_string_lossy().into_owned();
            if is_hidden(&path) || !path.is_dir() || !keep_model(&name) {
                continue;
            }
            out.push((
                dataset.file_name().to_string_lossy().into_owned(),
                name,
                path,
            ));
        }
    }
    Ok(out)
}
