//! Where each dataset's weights live on disk and where they are downloaded from.

use super::data::weights::{DATASET_WEIGHTS, RELEASE_URL_BASE};
use super::records::{DatasetWeights, WeightsSource};

impl DatasetWeights {
    /// Weights entry of a dataset id, `None` when the package has none.
    pub fn find(dataset_id: u16) -> Option<&'static DatasetWeights> {
        DATASET_WEIGHTS.iter().find(|w| w.dataset_id == dataset_id)
    }

    /// Every nnU-Net dataset the package knows weights for, in its order.
    pub fn all() -> &'static [DatasetWeights] {
        DATASET_WEIGHTS
    }

    /// Public release zip, `https://github.com/wasserth/TotalSegmentator/releases/download/<tag>/<folder>.zip`;
    /// `None` for licensed or unreleased weights. The zip unpacks into the weights root.
    pub fn download_url(&self) -> Option<String> {
        match self.source {
            WeightsSource::GithubRelease { tag } => {
                Some(format!("{RELEASE_URL_BASE}/{tag}/{}.zip", self.folder_name))
            }
            WeightsSource::LicenseServer { .. } | WeightsSource::Unreleased => None,
        }
    }

    /// Release tag, `None` for licensed or unreleased weights.
    pub fn release_tag(&self) -> Option<&'static str> {
        match self.source {
            WeightsSource::GithubRelease { tag } => Some(tag),
            WeightsSource::LicenseServer { .. } | WeightsSource::Unreleased => None,
        }
    }

    /// True when the weights come from the license server.
    pub fn is_licensed(&self) -> bool {
        matches!(self.source, WeightsSource::LicenseServer { .. })
    }
}
