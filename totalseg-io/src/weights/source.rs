//! What the store is asked for: a model (one trained configuration) inside a dataset folder,
//! and where that dataset folder's release archive comes from.

/// Where one nnU-Net dataset folder (one release zip) comes from.
///
/// The root crate maps TotalSegmentator tasks to this description; the store does not know
/// task names except for the licence-server request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSource {
    /// nnU-Net dataset id, e.g. `297` (used to find a folder named `Dataset297_*` as nnU-Net does).
    pub dataset_id: u32,
    /// The dataset folder name, identical to the zip's top-level folder and file stem,
    /// e.g. `Dataset297_TotalSegmentator_total_3mm_1559subj`.
    pub folder_name: String,
    /// How the archive is fetched when it is not on disk.
    pub download: DownloadSource,
}

/// How a dataset archive is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadSource {
    /// A public release asset: `GET <release url base>/<tag>/<folder_name>.zip`
    /// (base: [`crate::weights::DEFAULT_RELEASE_URL_BASE`] or `TOTALSEG_WEIGHTS_URL_BASE`).
    Release {
        /// The release tag, e.g. `v2.0.0-weights`.
        tag: String,
    },
    /// An explicit archive URL (a private mirror).
    Url(String),
    /// A licensed model: `POST <licence server>/download_weights` with the JSON body
    /// `{"license_number", "task", "version"}` as the official tool sends it.
    Licensed {
        /// The official task name sent as `task`, e.g. `heartchambers_highres`.
        task_name: String,
    },
    /// The official tool publishes no weights for it; the folder must be placed by hand.
    Unavailable,
}

/// One trained model: a `<trainer>__<plans>__<configuration>` folder inside a dataset folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// The dataset folder and its download.
    pub source: ModelSource,
    /// nnU-Net trainer name, e.g. `nnUNetTrainer_4000epochs_NoMirroring`.
    pub trainer: String,
    /// Plans identifier, e.g. `nnUNetPlans`.
    pub plans: String,
    /// Configuration, e.g. `3d_fullres`.
    pub configuration: String,
}

impl ModelSpec {
    /// A model of the default plans (`nnUNetPlans`).
    pub fn new(source: ModelSource, trainer: &str, configuration: &str) -> Self {
        Self {
            source,
            trainer: trainer.to_string(),
            plans: "nnUNetPlans".to_string(),
            configuration: configuration.to_string(),
        }
    }

    /// `<trainer>__<plans>__<configuration>`, the model folder's name inside the dataset folder.
    pub fn model_folder_name(&self) -> String {
        format!("{}__{}__{}", self.trainer, self.plans, self.configuration)
    }

    /// `<DatasetNNN_name>/<trainer>__<plans>__<configuration>`, for messages and listings.
    pub fn display_name(&self) -> String {
        format!("{}/{}", self.source.folder_name, self.model_folder_name())
    }
}

/// Joins a base URL and path parts with single slashes.
pub(crate) fn join_url(base: &str, parts: &[&str]) -> String {
    let mut url = base.trim_end_matches('/').to_string();
    for part in parts {
        url.push('/');
        url.push_str(part.trim_matches('/'));
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_follow_nnunet() {
        let spec = ModelSpec::new(
            ModelSource {
                dataset_id: 297,
                folder_name: "Dataset297_TotalSegmentator_total_3mm_1559subj".into(),
                download: DownloadSource::Release {
                    tag: "v2.0.0-weights".into(),
                },
            },
            "nnUNetTrainer_4000epochs_NoMirroring",
            "3d_fullres",
        );
        assert_eq!(
            spec.model_folder_name(),
            "nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres"
        );
        assert_eq!(
            spec.display_name(),
            "Dataset297_TotalSegmentator_total_3mm_1559subj/nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres"
        );
    }

    #[test]
    fn urls_are_joined_with_single_slashes() {
        assert_eq!(
            join_url("https://h/releases/download/", &["v2/", "D.zip"]),
            "https://h/releases/download/v2/D.zip"
        );
        assert_eq!(
            join_url("http://h:1", &["download_weights"]),
            "http://h:1/download_weights"
        );
    }
}
