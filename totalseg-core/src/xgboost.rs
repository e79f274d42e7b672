//! Prediction with XGBoost tree ensembles, as TotalSegmentator's side commands use them:
//! `totalseg_get_modality` (binary classifiers) and `totalseg_get_phase` (regressors).
//!
//! The model is XGBoost's own JSON document (`Booster.save_model`, the same tree in JSON
//! or UBJSON). Prediction follows XGBoost's CPU predictor in float32: features become
//! float32, each tree is walked with `value < split_condition` going left (NaN takes the
//! default branch), the leaf values are added in tree order to the base margin, and the
//! objective's transform gives the output (identity for regression, XGBoost's sigmoid for
//! logistic objectives).

use serde_json::Value;

/// Why a model document cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum XgboostModelError {
    /// A field is missing or has the wrong type.
    #[error("XGBoost model: {0}")]
    Malformed(String),
    /// A valid XGBoost model that this predictor does not evaluate.
    #[error("XGBoost model not supported: {0}")]
    Unsupported(String),
}

/// What the raw sum of leaves (the margin) is turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// `reg:squarederror` and other identity-link regressions: the margin itself.
    Regression,
    /// `binary:logistic` / `reg:logistic`: the sigmoid of the margin (a probability).
    Logistic,
}

/// One regression tree, in XGBoost's flat node arrays.
#[derive(Debug, Clone)]
struct Tree {
    left: Vec<i32>,
    right: Vec<i32>,
    feature: Vec<u32>,
    /// Split threshold of inner nodes; the leaf value of leaves (as XGBoost stores it).
    condition: Vec<f32>,
    default_left: Vec<bool>,
}

impl Tree {
    fn leaf_value(&self, features: &[f32]) -> f32 {
        let mut node = 0usize;
        // Node indices were checked in `from_json`, and children always point further
        // down the tree, so this loop ends.
        while self.left[node] >= 0 {
            let value = features[self.feature[node] as usize];
            let go_left = if value.is_nan() {
                self.default_left[node]
            } else {
                value < self.condition[node]
            };
            node = if go_left {
                self.left[node]
            } else {
                self.right[node]
            } as usize;
        }
        self.condition[node]
    }
}

/// A gradient-boosted tree ensemble with one output.
///
/// ```
/// use totalseg_core::xgboost::{Objective, XgboostModel};
/// let doc = serde_json::json!({"learner": {
///     "learner_model_param": {"base_score": "5E-1", "num_feature": "1", "num_class": "0"},
///     "objective": {"name": "reg:squarederror"},
///     "gradient_booster": {"name": "gbtree", "model": {"trees": [{
///         "left_children": [1, -1, -1], "right_children": [2, -1, -1],
///         "split_indices": [0, 0, 0], "split_conditions": [10.0, -1.0, 1.0],
///         "default_left": [1, 0, 0], "split_type": [0, 0, 0]
///     }]}}
/// }});
/// let model = XgboostModel::from_json(&doc)?;
/// assert_eq!(model.objective(), Objective::Regression);
/// assert_eq!(model.predict(&[3.0]), -0.5);
/// assert_eq!(model.predict(&[12.0]), 1.5);
/// assert_eq!(model.predict(&[f64::NAN]), -0.5); // missing: default branch (left)
/// # Ok::<(), totalseg_core::xgboost::XgboostModelError>(())
/// ```
#[derive(Debug, Clone)]
pub struct XgboostModel {
    trees: Vec<Tree>,
    base_margin: f32,
    objective: Objective,
    num_features: usize,
}

impl XgboostModel {
    /// Reads XGBoost's model document: the object with a `learner` key (what
    /// `save_model` writes, or the `Model` part of a pickled booster).
    pub fn from_json(doc: &Value) -> Result<Self, XgboostModelError> {
        let learner = field(doc, "learner")?;
        let params = field(learner, "learner_model_param")?;
        let num_class = number_string(params, "num_class").unwrap_or(0.0);
        if num_class > 1.0 {
            return Err(XgboostModelError::Unsupported(format!(
                "{num_class} classes (only one output per model)"
            )));
        }
        if number_string(params, "num_target").unwrap_or(1.0) != 1.0 {
            return Err(XgboostModelError::Unsupported(
                "more than one target".into(),
            ));
        }
        let num_features = number_string(params, "num_feature")? as usize;
        let base_score = number_string(params, "base_score")? as f32;

        let objective_name = field(field(learner, "objective")?, "name")?
            .as_str()
            .ok_or_else(|| malformed("objective name is not a string"))?;
        let objective = match objective_name {
            "reg:squarederror" | "reg:linear" | "reg:absoluteerror" | "reg:pseudohubererror" => {
                Objective::Regression
            }
            "binary:logistic" | "reg:logistic" => Objective::Logistic,
            other => {
                return Err(XgboostModelError::Unsupported(format!(
                    "objective {other:?}"
                )))
            }
        };
        // XGBoost keeps the base score as a probability for logistic objectives and
        // starts from its logit (`ProbToMargin`, in float).
        let base_margin = match objective {
            Objective::Regression => base_score,
            Objective::Logistic => {
                if !(base_score > 0.0 && base_score < 1.0) {
                    return Err(malformed(format!(
                        "base_score {base_score} is not a probability"
                    )));
                }
                -(1.0f32 / base_score - 1.0f32).ln()
            }
        };

        let booster = field(learner, "gradient_booster")?;
        let booster_name = field(booster, "name")?.as_str().unwrap_or("");
        if booster_name != "gbtree" {
            return Err(XgboostModelError::Unsupported(format!(
                "booster {booster_name:?} (only gbtree)"
            )));
        }
        let trees = field(field(booster, "model")?, "trees")?
            .as_array()
            .ok_or_else(|| malformed("trees is not an array"))?
            .iter()
            .enumerate()
            .map(|(i, t)| read_tree(t, num_features).map_err(|e| in_tree(i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            trees,
            base_margin,
            objective,
            num_features,
        })
    }

    /// How the margin is turned into the output.
    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// Number of features a row must have.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    /// Number of trees.
    pub fn num_trees(&self) -> usize {
        self.trees.len()
    }

    /// The raw score (`output_margin=True`): base margin plus every tree's leaf, in float32.
    ///
    /// # Panics
    /// If `features` has fewer than [`Self::num_features`] values.
    pub fn predict_margin(&self, features: &[f64]) -> f32 {
        assert!(
            features.len() >= self.num_features,
            "{} features given, the model needs {}",
            features.len(),
            self.num_features
        );
        let row: Vec<f32> = features.iter().map(|&v| v as f32).collect();
        self.trees
            .iter()
            .fold(self.base_margin, |sum, tree| sum + tree.leaf_value(&row))
    }

    /// The model's output: the margin for regression, the probability of class 1 for a
    /// logistic model (what `XGBRegressor.predict` / `predict_proba[:, 1]` give).
    pub fn predict(&self, features: &[f64]) -> f32 {
        let margin = self.predict_margin(features);
        match self.objective {
            Objective::Regression => margin,
            Objective::Logistic => sigmoid(margin),
        }
    }

    /// `XGBClassifier.predict` of a binary classifier: class 1 when the probability is
    /// above 0.5.
    pub fn predict_class(&self, features: &[f64]) -> u8 {
        u8::from(self.predict(features) > 0.5)
    }
}

/// XGBoost's `common::Sigmoid` in float32 (exponent clamped so that it cannot overflow).
fn sigmoid(x: f32) -> f32 {
    const EPS: f32 = 1e-16;
    let e = (-x).min(88.7f32).exp();
    1.0f32 / (e + 1.0f32 + EPS)
}

fn malformed(what: impl Into<String>) -> XgboostModelError {
    XgboostModelError::Malformed(what.into())
}

fn in_tree(index: usize, e: XgboostModelError) -> XgboostModelError {
    match e {
        XgboostModelError::Malformed(m) => malformed(format!("tree {index}: {m}")),
        XgboostModelError::Unsupported(m) => {
            XgboostModelError::Unsupported(format!("tree {index}: {m}"))
        }
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, XgboostModelError> {
    v.get(key)
        .ok_or_else(|| malformed(format!("missing field {key:?}")))
}

/// XGBoost writes model parameters as strings: `"100"`, `"5E-1"`, or a one-element
/// vector `"[5.2008104E-1]"` (base_score since XGBoost 3).
fn number_string(params: &Value, key: &str) -> Result<f64, XgboostModelError> {
    let v = field(params, key)?;
    if let Some(x) = v.as_f64() {
        return Ok(x);
    }
    let text = v
        .as_str()
        .ok_or_else(|| malformed(format!("{key} is neither a number nor a string")))?;
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    if inner.contains(',') {
        return Err(XgboostModelError::Unsupported(format!(
            "{key} has several values ({text})"
        )));
    }
    inner
        .trim()
        .parse::<f64>()
        .map_err(|_| malformed(format!("{key} = {text:?} is not a number")))
}

fn numbers<'a>(
    tree: &'a Value,
    key: &str,
) -> Result<impl Iterator<Item = Option<f64>> + 'a, XgboostModelError> {
    Ok(field(tree, key)?
        .as_array()
        .ok_or_else(|| malformed(format!("{key} is not an array")))?
        .iter()
        .map(|v| match v {
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            other => other.as_f64(),
        }))
}

fn int_array(tree: &Value, key: &str) -> Result<Vec<i64>, XgboostModelError> {
    numbers(tree, key)?
        .map(|v| {
            v.filter(|x| x.fract() == 0.0)
                .map(|x| x as i64)
                .ok_or_else(|| malformed(format!("{key} holds a non-integer")))
        })
        .collect()
}

fn read_tree(tree: &Value, num_features: usize) -> Result<Tree, XgboostModelError> {
    let left = int_array(tree, "left_children")?;
    let right = int_array(tree, "right_children")?;
    let feature = int_array(tree, "split_indices")?;
    let condition: Vec<f32> = numbers(tree, "split_conditions")?
        .map(|v| v.map(|x| x as f32).unwrap_or(f32::NAN))
        .collect();
    let default_left = int_array(tree, "default_left")?;
    let n = left.len();
    if n == 0 {
        return Err(malformed("no nodes"));
    }
    if [
        right.len(),
        feature.len(),
        condition.len(),
        default_left.len(),
    ]
    .iter()
    .any(|&len| len != n)
    {
        return Err(malformed("node arrays of different lengths"));
    }
    if let Ok(types) = int_array(tree, "split_type") {
        if types.iter().any(|&t| t != 0) {
            return Err(XgboostModelError::Unsupported("categorical splits".into()));
        }
    }
    for i in 0..n {
        if left[i] < 0 {
            if condition[i].is_nan() {
                return Err(malformed(format!("leaf {i} has no value")));
            }
            continue;
        }
        // Children come after their parent, so a walk always ends at a leaf.
        let child_ok = |c: i64| c > i as i64 && (c as usize) < n;
        if !child_ok(left[i]) || !child_ok(right[i]) {
            return Err(malformed(format!("node {i} has invalid children")));
        }
        if feature[i] < 0 || feature[i] as usize >= num_features {
            return Err(malformed(format!(
                "node {i} splits on feature {} of {num_features}",
                feature[i]
            )));
        }
    }
    Ok(Tree {
        left: left.iter().map(|&c| c as i32).collect(),
        right: right.iter().map(|&c| c as i32).collect(),
        feature: feature.iter().map(|&f| f.max(0) as u32).collect(),
        condition,
        default_left: default_left.iter().map(|&d| d != 0).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stump(objective: &str, base_score: &str) -> Value {
        json!({"learner": {
            "learner_model_param": {"base_score": base_score, "num_feature": "2", "num_class": "0", "num_target": "1"},
            "objective": {"name": objective},
            "gradient_booster": {"name": "gbtree", "model": {"trees": [
                {"left_children": [1, -1, -1], "right_children": [2, -1, -1],
                 "split_indices": [1, 0, 0], "split_conditions": [0.5, -2.0, 2.0],
                 "default_left": [0, 0, 0], "split_type": [0, 0, 0]},
                {"left_children": [-1], "right_children": [-1],
                 "split_indices": [0], "split_conditions": [0.25],
                 "default_left": [0], "split_type": [0]}
            ]}}
        }})
    }

    #[test]
    fn walks_trees_and_adds_leaves_to_the_base_score() {
        let m = XgboostModel::from_json(&stump("reg:squarederror", "[1E0]")).unwrap();
        assert_eq!(m.num_trees(), 2);
        assert_eq!(m.predict(&[0.0, 0.0]), 1.0 - 2.0 + 0.25);
        assert_eq!(m.predict(&[0.0, 0.5]), 1.0 + 2.0 + 0.25); // not < 0.5: right
        assert_eq!(m.predict(&[0.0, f64::NAN]), 3.25); // default right
                                                       // features are compared in float32
        assert_eq!(m.predict(&[0.0, 0.499_999_999_9]), 3.25);
    }

    #[test]
    fn logistic_models_start_from_the_logit_and_apply_the_sigmoid() {
        let m = XgboostModel::from_json(&stump("binary:logistic", "5E-1")).unwrap();
        assert_eq!(m.objective(), Objective::Logistic);
        let margin = m.predict_margin(&[0.0, 1.0]);
        assert_eq!(margin, 2.25);
        let p = m.predict(&[0.0, 1.0]);
        assert!((f64::from(p) - 1.0 / (1.0 + (-2.25f64).exp())).abs() < 1e-6);
        assert_eq!(m.predict_class(&[0.0, 1.0]), 1);
        assert_eq!(m.predict_class(&[0.0, 0.0]), 0);
        assert!(XgboostModel::from_json(&stump("binary:logistic", "1.5")).is_err());
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        let mut doc = stump("multi:softprob", "0.5");
        assert!(matches!(
            XgboostModel::from_json(&doc),
            Err(XgboostModelError::Unsupported(_))
        ));
        doc = stump("reg:squarederror", "0.5");
        doc["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"] =
            json!([1, 0, -1]);
        assert!(
            XgboostModelError::to_string(&XgboostModel::from_json(&doc).unwrap_err())
                .contains("tree 0")
        );
        doc = stump("reg:squarederror", "0.5");
        doc["learner"]["gradient_booster"]["model"]["trees"][0]["split_indices"] = json!([7, 0, 0]);
        assert!(XgboostModel::from_json(&doc).is_err());
        doc = stump("reg:squarederror", "0.5");
        doc["learner"]["gradient_booster"]["model"]["trees"][0]["split_type"] = json!([1, 0, 0]);
        assert!(matches!(
            XgboostModel::from_json(&doc),
            Err(XgboostModelError::Unsupported(_))
        ));
        assert!(XgboostModel::from_json(&json!({"learner": {}})).is_err());
    }
}
