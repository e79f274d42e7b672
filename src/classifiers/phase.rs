//! `totalseg_get_phase`: the contrast phase of a CT, from the median intensity of vessels
//! and organs.
//!
//! The `total --fast` model (and, when the brain is in view, `headneck_bones_vessels`)
//! segments the CT; the median HU of 20 structures feeds five XGBoost regressors that each
//! predict the time since contrast injection; their float32 mean is mapped to a phase.

use std::path::Path;

use totalseg_core::pairwise_sum::pairwise_sum;
use totalseg_core::statistics::{
    python_round, IntensityAggregation, Statistics, StatisticsOptions, StructureStatistics,
};
use totalseg_core::xgboost::XgboostModel;
use weights_converter::pickle::{unpickle, Heap, Object, Value};

use super::{
    json_dict, model_from_document, pprint_dict, read_file, structure, xgboost_document,
    ClassifierError, PyValue,
};

/// `contrast_phase_classifiers_2024_07_19.pkl`, as TotalSegmentator ships it.
const OFFICIAL_CLASSIFIERS: &[u8] =
    include_bytes!("../../resources/classifiers/contrast_phase_classifiers_2024_07_19.pkl");
const OFFICIAL_CLASSIFIERS_NAME: &str = "contrast_phase_classifiers_2024_07_19.pkl";

/// Structures of the `total` task whose intensity is a feature, in feature order.
pub const TOTAL_STRUCTURES: [&str; 16] = [
    "liver",
    "pancreas",
    "urinary_bladder",
    "gallbladder",
    "heart",
    "aorta",
    "inferior_vena_cava",
    "portal_vein_and_splenic_vein",
    "iliac_vena_left",
    "iliac_vena_right",
    "iliac_artery_left",
    "iliac_artery_right",
    "pulmonary_vein",
    "brain",
    "colon",
    "small_bowel",
];

/// Structures of `headneck_bones_vessels` whose intensity is a feature (after the 16 above).
pub const HEADNECK_STRUCTURES: [&str; 4] = [
    "internal_carotid_artery_right",
    "internal_carotid_artery_left",
    "internal_jugular_vein_right",
    "internal_jugular_vein_left",
];

/// The head-and-neck model runs only when the brain is bigger than this (mm³).
pub const HEADNECK_MIN_BRAIN_VOLUME_MM3: f64 = 100.0;

/// The statistics both segmentation runs compute: median intensity, structures at the
/// image border kept.
pub fn phase_statistics_options() -> StatisticsOptions {
    StatisticsOptions {
        exclude_masks_at_border: false,
        aggregation: IntensityAggregation::Median,
        normalized_intensities: false,
        extra_metrics: false,
    }
}

/// The official command's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ContrastPhase {
    /// Predicted seconds since injection (mean of the folds, 2 decimals).
    pub pi_time: f64,
    /// `native`, `arterial_early`, `arterial_late` or `portal_venous`.
    pub phase: &'static str,
    /// Confidence the official mapping gives the phase (0.3, 0.7 or 1.0).
    pub probability: f64,
    /// Lowest fold prediction (2 decimals).
    pub pi_time_min: f64,
    /// Highest fold prediction (2 decimals).
    pub pi_time_max: f64,
    /// Population standard deviation of the fold predictions (4 decimals).
    pub stddev: f64,
}

impl ContrastPhase {
    /// The file `totalseg_get_phase -o` writes (`json.dumps(res, indent=4)`).
    pub fn to_json_string(&self) -> String {
        json_dict(&self.entries())
    }

    /// What the official command prints after `Result:` (`pprint`).
    pub fn to_pprint_string(&self) -> String {
        pprint_dict(&self.entries())
    }

    fn entries(&self) -> [(&'static str, PyValue); 6] {
        [
            ("pi_time", PyValue::Float(self.pi_time)),
            ("phase", PyValue::Str(self.phase.into())),
            ("probability", PyValue::Float(self.probability)),
            ("pi_time_min", PyValue::Float(self.pi_time_min)),
            ("pi_time_max", PyValue::Float(self.pi_time_max)),
            ("stddev", PyValue::Float(self.stddev)),
        ]
    }
}

/// `pi_time_to_phase` of `totalseg_get_phase.py`.
pub fn pi_time_to_phase(pi_time: f64) -> (&'static str, f64) {
    match pi_time {
        t if t < 5.0 => ("native", 1.0),
        t if t < 10.0 => ("native", 0.7),
        t if t < 20.0 => ("arterial_early", 0.7),
        t if t < 30.0 => ("arterial_early", 1.0),
        t if t < 50.0 => ("arterial_late", 1.0),
        t if t < 60.0 => ("arterial_late", 0.7),
        t if t < 90.0 => ("portal_venous", 1.0),
        t if t < 100.0 => ("portal_venous", 0.7),
        _ => ("portal_venous", 0.3),
    }
}

/// The five regressors.
#[derive(Debug, Clone)]
pub struct PhaseClassifier {
    folds: Vec<XgboostModel>,
}

impl PhaseClassifier {
    /// The classifiers shipped with TotalSegmentator.
    pub fn official() -> Result<Self, ClassifierError> {
        Self::from_pickle(OFFICIAL_CLASSIFIERS, OFFICIAL_CLASSIFIERS_NAME)
    }

    /// Classifiers from a pickle like the official one (`-m`): a dict of pickled
    /// `xgboost.XGBRegressor`s, whose boosters hold the model as UBJSON bytes.
    pub fn from_pickle_file(path: &Path) -> Result<Self, ClassifierError> {
        Self::from_pickle(&read_file(path)?, &path.display().to_string())
    }

    /// See [`Self::from_pickle_file`].
    pub fn from_pickle(bytes: &[u8], name: &str) -> Result<Self, ClassifierError> {
        let format_error = |message: String| ClassifierError::Format {
            name: name.to_string(),
            message,
        };
        let pickled = unpickle(bytes).map_err(|e| format_error(format!("not a pickle: {e}")))?;
        let heap = &pickled.heap;
        let folds = heap
            .dict_items(&pickled.root)
            .ok_or_else(|| format_error("not a dict of classifiers".into()))?;
        if folds.is_empty() {
            return Err(format_error("no classifiers in the dict".into()));
        }
        let folds = folds
            .iter()
            .map(|(key, regressor)| {
                let fold = format!("{name}[{}]", describe_key(key));
                let raw =
                    booster_bytes(heap, regressor).ok_or_else(|| ClassifierError::Format {
                        name: fold.clone(),
                        message: "not a pickled XGBoost model with its booster bytes".into(),
                    })?;
                let doc = xgboost_document(raw, &fold)?;
                // A pickled booster holds {"Config": ..., "Model": ...}.
                model_from_document(doc.get("Model").unwrap_or(&doc), &fold)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { folds })
    }

    /// Number of features a row needs.
    pub fn num_features(&self) -> usize {
        self.folds.first().map_or(0, XgboostModel::num_features)
    }

    /// The regressors, in the pickle's order.
    pub fn folds(&self) -> &[XgboostModel] {
        &self.folds
    }

    /// The phase from the 20 features ([`phase_features`]): float32 fold predictions,
    /// their NumPy float32 mean and std, rounded as the official command rounds.
    ///
    /// ```
    /// use totalsegmentator::classifiers::phase::PhaseClassifier;
    /// let classifier = PhaseClassifier::official()?;
    /// // Unenhanced CT: organs and vessels at their native HU, no head.
    /// let mut features = vec![55.0, 40.0, 10.0, 15.0, 40.0, 40.0, 40.0, 40.0, 40.0, 40.0,
    ///                         40.0, 40.0, 40.0, 0.0, 20.0, 30.0];
    /// features.extend([0.0; 4]);
    /// let phase = classifier.predict(&features)?;
    /// assert_eq!(phase.phase, "native");
    /// # Ok::<(), totalsegmentator::classifiers::ClassifierError>(())
    /// ```
    pub fn predict(&self, features: &[f64]) -> Result<ContrastPhase, ClassifierError> {
        if features.len() != self.num_features() {
            return Err(ClassifierError::Statistics {
                source_name: "features".into(),
                message: format!(
                    "{} features given, the classifier needs {}",
                    features.len(),
                    self.num_features()
                ),
            });
        }
        let preds: Vec<f32> = self.folds.iter().map(|m| m.predict(features)).collect();
        let n = preds.len() as f32;
        let mean = pairwise_sum(&preds) / n;
        let squares: Vec<f32> = preds.iter().map(|&p| (p - mean) * (p - mean)).collect();
        let std = (pairwise_sum(&squares) / n).sqrt();
        let min = preds.iter().copied().fold(f32::INFINITY, f32::min);
        let max = preds.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let pi_time = python_round(f64::from(mean), 2);
        let (phase, probability) = pi_time_to_phase(pi_time);
        Ok(ContrastPhase {
            pi_time,
            phase,
            probability,
            pi_time_min: python_round(f64::from(min), 2),
            pi_time_max: python_round(f64::from(max), 2),
            stddev: python_round(f64::from(std), 4),
        })
    }
}

fn describe_key(key: &Value) -> String {
    match key {
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.to_string(),
        _ => "?".into(),
    }
}

/// The UBJSON bytes of a pickled `XGBRegressor`: `state["_Booster"]`'s state `["handle"]`,
/// a `bytearray(b"...")`.
fn booster_bytes<'a>(heap: &'a Heap, regressor: &Value) -> Option<&'a [u8]> {
    let state = call_state(heap, regressor)?;
    let booster = heap.dict_get(state, "_Booster")?;
    let handle = heap.dict_get(call_state(heap, booster)?, "handle")?;
    match handle {
        Value::Bytes(b) => Some(b),
        other => match heap.object(other)? {
            Object::Call(call) => match heap.sequence(&call.args)?.first()? {
                Value::Bytes(b) => Some(b),
                _ => None,
            },
            _ => None,
        },
    }
}

fn call_state<'a>(heap: &'a Heap, value: &Value) -> Option<&'a Value> {
    match heap.object(value)? {
        Object::Call(call) => call.state.as_ref(),
        _ => None,
    }
}

/// Reads statistics as `totalseg_get_phase -s` takes them: the `statistics.json` of a
/// TotalSegmentator run (`{"liver": {"volume": ..., "intensity": ...}, ...}`).
pub fn statistics_from_json(text: &str, source_name: &str) -> Result<Statistics, ClassifierError> {
    let bad = |message: String| ClassifierError::Statistics {
        source_name: source_name.to_string(),
        message,
    };
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let map = doc
        .as_object()
        .ok_or_else(|| bad("not a JSON object of structures".into()))?;
    let entries = map
        .iter()
        .map(|(name, entry)| {
            let number = |key: &str| {
                entry
                    .get(key)
                    .and_then(serde_json::Value::as_f64)
                    .ok_or_else(|| bad(format!("{name}: no number {key:?}")))
            };
            Ok((
                name.clone(),
                StructureStatistics {
                    volume: number("volume")?,
                    intensity: number("intensity")?,
                    extra: None,
                },
            ))
        })
        .collect::<Result<Vec<_>, ClassifierError>>()?;
    Ok(Statistics { entries })
}

/// Whether the official command runs the head-and-neck model: brain volume above
/// [`HEADNECK_MIN_BRAIN_VOLUME_MM3`].
pub fn needs_headneck(total: &Statistics, source_name: &str) -> Result<bool, ClassifierError> {
    Ok(structure(total, "brain", source_name)?.volume > HEADNECK_MIN_BRAIN_VOLUME_MM3)
}

/// The 20 features: [`TOTAL_STRUCTURES`]' intensities from the `total` statistics, then
/// [`HEADNECK_STRUCTURES`]' from the head-and-neck statistics (0.0 each without them).
pub fn phase_features(
    total: &Statistics,
    headneck: Option<&Statistics>,
    source_name: &str,
) -> Result<Vec<f64>, ClassifierError> {
    let mut features = TOTAL_STRUCTURES
        .iter()
        .map(|name| Ok(structure(total, name, source_name)?.intensity))
        .collect::<Result<Vec<_>, ClassifierError>>()?;
    for name in HEADNECK_STRUCTURES {
        features.push(match headneck {
            Some(stats) => structure(stats, name, "headneck_bones_vessels")?.intensity,
            None => 0.0,
        });
    }
    Ok(features)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_pickle_has_five_regressors_of_twenty_features() {
        let c = PhaseClassifier::official().unwrap();
        assert_eq!(c.folds.len(), 5);
        assert_eq!(c.num_features(), 20);
        assert!(c.predict(&[0.0; 19]).is_err());
    }

    #[test]
    fn phase_mapping_follows_the_official_table() {
        assert_eq!(pi_time_to_phase(4.99), ("native", 1.0));
        assert_eq!(pi_time_to_phase(5.0), ("native", 0.7));
        assert_eq!(pi_time_to_phase(19.99), ("arterial_early", 0.7));
        assert_eq!(pi_time_to_phase(29.0), ("arterial_early", 1.0));
        assert_eq!(pi_time_to_phase(30.0), ("arterial_late", 1.0));
        assert_eq!(pi_time_to_phase(55.0), ("arterial_late", 0.7));
        assert_eq!(pi_time_to_phase(60.0), ("portal_venous", 1.0));
        assert_eq!(pi_time_to_phase(95.0), ("portal_venous", 0.7));
        assert_eq!(pi_time_to_phase(100.0), ("portal_venous", 0.3));
    }

    #[test]
    fn statistics_files_are_read_and_checked() {
        let stats = statistics_from_json(
            r#"{"brain": {"volume": 250.5, "intensity": 33.0}, "liver": {"volume": 1.0, "intensity": 60}}"#,
            "s.json",
        )
        .unwrap();
        assert!(needs_headneck(&stats, "s.json").unwrap());
        let err = phase_features(&stats, None, "s.json").unwrap_err();
        assert!(err.to_string().contains("pancreas"), "{err}");
        assert!(statistics_from_json("[1]", "s.json").is_err());
        assert!(
            statistics_from_json(r#"{"liver": {"volume": 1}}"#, "s.json")
                .unwrap_err()
                .to_string()
                .contains("intensity")
        );
    }

    #[test]
    fn bad_pickles_are_errors() {
        assert!(PhaseClassifier::from_pickle(b"not a pickle", "x.pkl").is_err());
        // pickle.dumps({}, protocol=2)
        assert!(PhaseClassifier::from_pickle(b"\x80\x02}q\x00.", "x.pkl").is_err());
        // pickle.dumps({0: 1}, protocol=2)
        assert!(PhaseClassifier::from_pickle(b"\x80\x02}q\x00K\x00K\x01s.", "x.pkl").is_err());
    }
}
