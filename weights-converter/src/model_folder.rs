//! The nnU-Net model folder layout: `<trainer>__<plans>__<configuration>/` with `plans.json`,
//! `dataset.json` and `fold_<k>/<checkpoint>`.

use std::path::{Path, PathBuf};

use crate::error::ConvertError;

/// The three parts of a model folder name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFolderName {
    /// Trainer class, e.g. `nnUNetTrainer_4000epochs_NoMirroring`.
    pub trainer: String,
    /// Plans identifier, e.g. `nnUNetPlans`.
    pub plans: String,
    /// Configuration, e.g. `3d_fullres`.
    pub configuration: String,
}

impl ModelFolderName {
    /// Splits `<trainer>__<plans>__<configuration>`; `None` unless there are exactly three
    /// non-empty parts.
    ///
    /// ```
    /// use weights_converter::model_folder::ModelFolderName;
    /// let n = ModelFolderName::parse("nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres").unwrap();
    /// assert_eq!(n.trainer, "nnUNetTrainer_4000epochs_NoMirroring");
    /// assert_eq!(n.configuration, "3d_fullres");
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        let parts: Vec<&str> = name.split("__").collect();
        match parts.as_slice() {
            [trainer, plans, configuration]
                if !trainer.is_empty() && !plans.is_empty() && !configuration.is_empty() =>
            {
                Some(ModelFolderName {
                    trainer: trainer.to_string(),
                    plans: plans.to_string(),
                    configuration: configuration.to_string(),
                })
            }
            _ => None,
        }
    }
}

/// The checkpoint path of fold `fold`.
pub fn checkpoint_path(folder: &Path, fold: u32, checkpoint_name: &str) -> PathBuf {
    folder.join(format!("fold_{fold}")).join(checkpoint_name)
}

/// Folds present in `folder`, as nnU-Net's `auto_detect_available_folds`: every `fold_<int>`
/// directory holding `checkpoint_name` (`fold_all` is skipped), sorted.
pub fn discover_folds(folder: &Path, checkpoint_name: &str) -> Result<Vec<u32>, ConvertError> {
    let entries = std::fs::read_dir(folder).map_err(|source| ConvertError::Read {
        path: folder.to_path_buf(),
        source,
    })?;
    let mut folds = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConvertError::Read {
            path: folder.to_path_buf(),
            source,
        })?;
        let name = entry.file_name();
        let Some(fold) = name
            .to_str()
            .and_then(|n| n.strip_prefix("fold_"))
            .and_then(|k| k.parse::<u32>().ok())
        else {
            continue;
        };
        if checkpoint_path(folder, fold, checkpoint_name).is_file() {
            folds.push(fold);
        }
    }
    folds.sort_unstable();
    folds.dedup();
    if folds.is_empty() {
        return Err(ConvertError::ModelFolder {
            path: folder.to_path_buf(),
            reason: format!("no fold_<k>/{checkpoint_name} found (fold_all is not used)"),
        });
    }
    Ok(folds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_need_three_parts() {
        assert!(ModelFolderName::parse("nnUNetTrainer__nnUNetPlans").is_none());
        assert!(ModelFolderName::parse("a__b__c__d").is_none());
        assert!(ModelFolderName::parse("a____c").is_none());
        assert_eq!(
            ModelFolderName::parse(
                "nnUNetTrainerNoMirroring__nnUNetResEncUNetMPlans__3d_fullres_high"
            )
            .unwrap()
            .plans,
            "nnUNetResEncUNetMPlans"
        );
    }

    #[test]
    fn discovers_numbered_folds_with_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        for (fold, with_checkpoint) in [
            ("fold_2", true),
            ("fold_0", true),
            ("fold_1", false),
            ("fold_all", true),
            ("fold_x", true),
        ] {
            std::fs::create_dir(dir.path().join(fold)).unwrap();
            if with_checkpoint {
                std::fs::write(dir.path().join(fold).join("checkpoint_final.pth"), b"").unwrap();
            }
        }
        assert_eq!(
            discover_folds(dir.path(), "checkpoint_final.pth").unwrap(),
            vec![0, 2]
        );
        assert!(matches!(
            discover_folds(dir.path(), "checkpoint_best.pth"),
            Err(ConvertError::ModelFolder { .. })
        ));
    }
}
