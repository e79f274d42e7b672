//! `totalseg_get_modality`: CT or MR, from the image's intensities.
//!
//! Two ways, as the official command offers: from four whole-image features (mean, std,
//! min, max of the voxel values; fast, needs unnormalised values), or (`-n`) from the
//! median normalised intensity inside 16 structures that the `total_mr --fast` model finds
//! (works on normalised images). Either way five XGBoost folds each vote CT (0) or MR (1);
//! the vote mean decides, and is the probability.

use ndarray::ArrayView3;
use totalseg_core::pairwise_sum::pairwise_sum_by;
use totalseg_core::statistics::{IntensityAggregation, Statistics, StatisticsOptions};
pub use totalseg_core::tasks::Modality;
use totalseg_core::xgboost::XgboostModel;

use super::{json_dict, pprint_dict, structure, xgboost_model, ClassifierError, PyValue};

/// The intensity-only classifiers (`modality_classifiers_2025_02_24.json.<fold>`).
const IMAGE_CLASSIFIERS: [(&str, &[u8]); 5] = [
    (
        "modality_classifiers_2025_02_24.json.0",
        include_bytes!("../../resources/classifiers/modality_classifiers_2025_02_24.json.0"),
    ),
    (
        "modality_classifiers_2025_02_24.json.1",
        include_bytes!("../../resources/classifiers/modality_classifiers_2025_02_24.json.1"),
    ),
    (
        "modality_classifiers_2025_02_24.json.2",
        include_bytes!("../../resources/classifiers/modality_classifiers_2025_02_24.json.2"),
    ),
    (
        "modality_classifiers_2025_02_24.json.3",
        include_bytes!("../../resources/classifiers/modality_classifiers_2025_02_24.json.3"),
    ),
    (
        "modality_classifiers_2025_02_24.json.4",
        include_bytes!("../../resources/classifiers/modality_classifiers_2025_02_24.json.4"),
    ),
];

/// The region classifiers (`modality_classifiers_normalized_2025_02_24.json.<fold>`).
const ROI_CLASSIFIERS: [(&str, &[u8]); 5] = [
    (
        "modality_classifiers_normalized_2025_02_24.json.0",
        include_bytes!(
            "../../resources/classifiers/modality_classifiers_normalized_2025_02_24.json.0"
        ),
    ),
    (
        "modality_classifiers_normalized_2025_02_24.json.1",
        include_bytes!(
            "../../resources/classifiers/modality_classifiers_normalized_2025_02_24.json.1"
        ),
    ),
    (
        "modality_classifiers_normalized_2025_02_24.json.2",
        include_bytes!(
            "../../resources/classifiers/modality_classifiers_normalized_2025_02_24.json.2"
        ),
    ),
    (
        "modality_classifiers_normalized_2025_02_24.json.3",
        include_bytes!(
            "../../resources/classifiers/modality_classifiers_normalized_2025_02_24.json.3"
        ),
    ),
    (
        "modality_classifiers_normalized_2025_02_24.json.4",
        include_bytes!(
            "../../resources/classifiers/modality_classifiers_normalized_2025_02_24.json.4"
        ),
    ),
];

/// The `total_mr` structures whose median normalised intensity the region classifiers read,
/// in the order `get_modality_from_rois` passes them (the models' own feature names list
/// brain last, but XGBoost takes a plain list by position).
pub const ROI_STRUCTURES: [&str; 16] = [
    "brain",
    "esophagus",
    "colon",
    "spinal_cord",
    "scapula_left",
    "scapula_right",
    "femur_left",
    "femur_right",
    "hip_left",
    "hip_right",
    "gluteus_maximus_left",
    "gluteus_maximus_right",
    "autochthon_left",
    "autochthon_right",
    "iliopsoas_left",
    "iliopsoas_right",
];

/// The official command's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModalityPrediction {
    /// The majority of the five folds.
    pub modality: Modality,
    /// Share of the folds that voted for it (0.6, 0.8 or 1.0).
    pub probability: f64,
}

impl ModalityPrediction {
    /// The file `totalseg_get_modality -o` writes (`json.dumps(res, indent=4)`).
    pub fn to_json_string(&self) -> String {
        json_dict(&self.entries())
    }

    /// What the official command prints after `Result:` (`pprint`).
    pub fn to_pprint_string(&self) -> String {
        pprint_dict(&self.entries())
    }

    fn entries(&self) -> [(&'static str, PyValue); 2] {
        [
            // The official JSON spells it in lower case (`ct`, `mr`).
            (
                "modality",
                PyValue::Str(self.modality.as_str().to_ascii_lowercase()),
            ),
            ("probability", PyValue::Float(self.probability)),
        ]
    }
}

/// The five folds of one of the two classifier sets.
#[derive(Debug, Clone)]
pub struct ModalityClassifier {
    folds: Vec<XgboostModel>,
}

impl ModalityClassifier {
    /// The intensity-only classifiers shipped with TotalSegmentator.
    pub fn image_intensities() -> Result<Self, ClassifierError> {
        Self::from_embedded(&IMAGE_CLASSIFIERS)
    }

    /// The region classifiers (`-n`) shipped with TotalSegmentator.
    pub fn roi_intensities() -> Result<Self, ClassifierError> {
        Self::from_embedded(&ROI_CLASSIFIERS)
    }

    fn from_embedded(files: &[(&str, &[u8])]) -> Result<Self, ClassifierError> {
        let folds = files
            .iter()
            .map(|(name, bytes)| xgboost_model(bytes, name))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { folds })
    }

    /// Votes of the folds on one feature row, then the official decision: mean vote
    /// below 0.5 is CT with probability `1 - mean`, else MR with probability `mean`.
    ///
    /// ```
    /// use totalsegmentator::classifiers::modality::{image_features, Modality, ModalityClassifier};
    /// let ct = ndarray::Array3::from_shape_fn((20, 20, 20), |(i, j, k)| {
    ///     if (i + j + k) % 3 == 0 { -1000.0 } else { 40.0 + (i * j) as f32 }
    /// });
    /// let classifier = ModalityClassifier::image_intensities()?;
    /// let result = classifier.predict(&image_features(ct.view()));
    /// assert_eq!(result.modality, Modality::Ct);
    /// # Ok::<(), totalsegmentator::classifiers::ClassifierError>(())
    /// ```
    pub fn predict(&self, features: &[f64]) -> ModalityPrediction {
        let votes: Vec<f64> = self
            .folds
            .iter()
            .map(|m| f64::from(m.predict_class(features)))
            .collect();
        // np.mean of the int64 votes: float64 sum divided by the count.
        let mean = votes.iter().sum::<f64>() / votes.len() as f64;
        if mean < 0.5 {
            ModalityPrediction {
                modality: Modality::Ct,
                probability: 1.0 - mean,
            }
        } else {
            ModalityPrediction {
                modality: Modality::Mr,
                probability: mean,
            }
        }
    }

    /// Number of features a row needs.
    pub fn num_features(&self) -> usize {
        self.folds.first().map_or(0, XgboostModel::num_features)
    }

    /// The five folds, in order.
    pub fn folds(&self) -> &[XgboostModel] {
        &self.folds
    }
}

/// `get_features`: mean, population std, min and max of `get_fdata()` (float64), summed
/// with NumPy's pairwise order over nibabel's memory order (first axis fastest).
///
/// `data` is indexed `[i, j, k]` like `get_fdata()`.
pub fn image_features(data: ArrayView3<f32>) -> [f64; 4] {
    let (nx, ny, nz) = data.dim();
    let n = nx * ny * nz;
    if n == 0 {
        return [f64::NAN; 4];
    }
    let at = |flat: usize| {
        let i = flat % nx;
        let j = (flat / nx) % ny;
        let k = flat / (nx * ny);
        f64::from(data[[i, j, k]])
    };
    let mean = pairwise_sum_by(0, n, &at) / n as f64;
    let variance = pairwise_sum_by(0, n, &|flat| {
        let d = at(flat) - mean;
        d * d
    }) / n as f64;
    let (min, max) = data
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(f64::from(v)), hi.max(f64::from(v)))
        });
    [mean, variance.sqrt(), min, max]
}

/// The statistics the `-n` run computes (`total_mr --fast`): median of the min-max
/// normalised intensities, structures at the border kept.
pub fn roi_statistics_options() -> StatisticsOptions {
    StatisticsOptions {
        exclude_masks_at_border: false,
        aggregation: IntensityAggregation::Median,
        normalized_intensities: true,
        extra_metrics: false,
    }
}

/// The `-n` features: each of [`ROI_STRUCTURES`]' `intensity` in statistics computed with
/// median aggregation on normalised intensities, borders included.
pub fn roi_features(stats: &Statistics) -> Result<Vec<f64>, ClassifierError> {
    ROI_STRUCTURES
        .iter()
        .map(|name| Ok(structure(stats, name, "total_mr")?.intensity))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_classifiers_load() {
        let image = ModalityClassifier::image_intensities().unwrap();
        assert_eq!(image.folds.len(), 5);
        assert_eq!(image.num_features(), 4);
        let roi = ModalityClassifier::roi_intensities().unwrap();
        assert_eq!(roi.num_features(), 16);
    }

    #[test]
    fn features_follow_numpy() {
        let data = ndarray::Array3::from_shape_fn((3, 4, 5), |(i, j, k)| {
            (i as f32) * 10.0 - (j as f32) + (k as f32) * 0.5
        });
        let [mean, std, min, max] = image_features(data.view());
        let values: Vec<f64> = data.iter().map(|&v| f64::from(v)).collect();
        let m = values.iter().sum::<f64>() / 60.0;
        let s = (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 60.0).sqrt();
        assert!((mean - m).abs() < 1e-12);
        assert!((std - s).abs() < 1e-12);
        assert_eq!((min, max), (-3.0, 22.0));
    }

    #[test]
    fn probability_is_the_share_of_agreeing_folds() {
        let image = ModalityClassifier::image_intensities().unwrap();
        // Typical CT (air, soft tissue, bone) and typical MR (0..~1000, no negatives).
        let ct = image.predict(&[-500.0, 480.0, -1024.0, 3071.0]);
        assert_eq!(ct.modality, Modality::Ct);
        let mr = image.predict(&[180.0, 220.0, 0.0, 1400.0]);
        assert_eq!(mr.modality, Modality::Mr);
        for p in [ct.probability, mr.probability] {
            assert!([0.6, 0.8, 1.0].contains(&p), "{p}");
        }
    }
}
