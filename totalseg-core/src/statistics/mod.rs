//! TotalSegmentator's `get_basic_statistics` (statistics.py): per class the volume in mm³
//! and the mean (or median) CT intensity, written as `statistics.json`.
//!
//! Arrays are indexed in the caller's axis order (TotalSegmentator uses nibabel's
//! `[x, y, z]`); the border rule treats all axes alike, so the order does not matter.

pub(crate) mod json;

use std::path::Path;

use ndarray::{ArrayView3, Zip};

pub use json::{python_float_repr, python_json_object, python_json_string, python_round};

use crate::pairwise_sum::pairwise_sum;

/// Voxels this close to any face of the image make a structure "touch the border".
pub const BORDER_MARGIN: usize = 3;

/// What went wrong computing or writing statistics.
#[derive(Debug, thiserror::Error)]
pub enum StatisticsError {
    /// Segmentation and CT shapes differ.
    #[error("segmentation shape {seg:?} differs from CT shape {ct:?}")]
    ShapeMismatch {
        /// Segmentation shape.
        seg: Vec<usize>,
        /// CT shape.
        ct: Vec<usize>,
    },
    /// Writing the JSON file failed.
    #[error("cannot write statistics to {path}: {source}")]
    Write {
        /// Target file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// How the intensity of a structure is summarised (`--stats_aggregation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IntensityAggregation {
    /// `np.average(ct, weights=mask)`.
    #[default]
    Mean,
    /// `np.median(ct[mask])`.
    Median,
}

/// Options of `get_basic_statistics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatisticsOptions {
    /// `--statistics_exclude_masks_at_border` (default true): structures with a voxel within
    /// [`BORDER_MARGIN`] voxels of a face report volume and intensity 0.
    pub exclude_masks_at_border: bool,
    /// Mean or median.
    pub aggregation: IntensityAggregation,
    /// `--statistics_normalized_intensities`: intensities min-max scaled over the image.
    pub normalized_intensities: bool,
    /// `--statistics_extra`: also [`ExtraMetrics`] per structure.
    pub extra_metrics: bool,
}

impl Default for StatisticsOptions {
    fn default() -> Self {
        Self {
            exclude_masks_at_border: true,
            aggregation: IntensityAggregation::Mean,
            normalized_intensities: false,
            extra_metrics: false,
        }
    }
}

/// One structure's entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StructureStatistics {
    /// Volume in mm³: voxel count × voxel volume (float32 voxel volume, not rounded).
    pub volume: f64,
    /// Mean or median intensity rounded to 5 decimals (NumPy's `round(5)`).
    pub intensity: f64,
    /// With [`StatisticsOptions::extra_metrics`].
    pub extra: Option<ExtraMetrics>,
}

/// statistics.py `_add_extra_metrics` (`--statistics_extra`); all zero and `None` for an
/// empty structure or one left out at the border (`_empty_extra_metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ExtraMetrics {
    /// Voxels in the structure.
    pub n_voxels: u64,
    /// `np.std` (population) of its intensities, rounded as NumPy's `round(5)`.
    pub intensity_std: f64,
    /// Lowest intensity.
    pub intensity_min: f64,
    /// Highest intensity.
    pub intensity_max: f64,
    /// Mean voxel index per axis, each rounded as Python's `round(c, 2)`.
    pub centroid_vox: Option<[f64; 3]>,
    /// Per axis the lowest and highest voxel index (inclusive).
    pub bbox_vox: Option<[[usize; 2]; 3]>,
}

/// Statistics per class, in the class map's order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Statistics {
    /// `(class name, statistics)` in output order.
    pub entries: Vec<(String, StructureStatistics)>,
}

impl Statistics {
    /// The entry of the structure `name`, if it is in these statistics.
    ///
    /// ```
    /// use totalseg_core::statistics::{Statistics, StructureStatistics};
    /// let liver = StructureStatistics { volume: 10.0, intensity: 60.0, extra: None };
    /// let stats = Statistics { entries: vec![("liver".to_string(), liver)] };
    /// assert_eq!(stats.get("liver").map(|s| s.intensity), Some(60.0));
    /// assert!(stats.get("spleen").is_none());
    /// ```
    pub fn get(&self, name: &str) -> Option<&StructureStatistics> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// The JSON text `json.dump(stats, f, indent=4)` writes (no trailing newline).
    pub fn to_json_string(&self) -> String {
        let items: Vec<String> = self
            .entries
            .iter()
            .map(|(name, s)| {
                let extra = s
                    .extra
                    .map(|e| json::extra_metrics_fields(&e))
                    .unwrap_or_default();
                format!(
                    "    {}: {{\n        \"volume\": {},\n        \"intensity\": {}{extra}\n    }}",
                    json::python_json_string(name),
                    python_float_repr(s.volume),
                    python_float_repr(s.intensity)
                )
            })
            .collect();
        json::python_json_object(&items, "")
    }

    /// Writes [`Self::to_json_string`] to `path`.
    pub fn write_json(&self, path: &Path) -> Result<(), StatisticsError> {
        std::fs::write(path, self.to_json_string()).map_err(|source| StatisticsError::Write {
            path: path.display().to_string(),
            source,
        })
    }
}

/// NumPy's `astype(np.int16)` of float64 CT values (`get_fdata().astype(np.int16)`):
/// truncation toward zero, wrapping like the C cast on x86 for out-of-range values.
pub fn ct_to_i16(value: f64) -> i16 {
    value as i32 as i16
}

/// statistics.py `touches_border`: any voxel of `mask` in the first or last
/// [`BORDER_MARGIN`] slices of any axis.
pub fn touches_border(mask: ArrayView3<bool>) -> bool {
    let shape = mask.shape().to_vec();
    mask.indexed_iter().any(|((i0, i1, i2), &m)| {
        m && [i0, i1, i2]
            .iter()
            .zip(&shape)
            .any(|(&i, &n)| i < BORDER_MARGIN || i + BORDER_MARGIN >= n)
    })
}

/// NumPy's `x.round(5)` for float64: `rint(x * 1e5) / 1e5`.
fn numpy_round5(x: f64) -> f64 {
    (x * 1e5).round_ties_even() / 1e5
}

/// `get_basic_statistics(seg, ct, ...)` for the classes `(label, name)` in output order
/// (the task's class map, filtered by `roi_subset` if any).
///
/// `ct` holds `get_fdata().astype(np.int16)` of the CT on the same grid as `seg` (see
/// [`ct_to_i16`]); `spacing` is its NIfTI zooms (float32).
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::statistics::{basic_statistics, StatisticsOptions};
/// let mut seg = Array3::<u8>::zeros((9, 9, 9));
/// seg[[4, 4, 4]] = 1;
/// seg[[4, 4, 5]] = 1;
/// let ct = Array3::<i16>::from_elem((9, 9, 9), 40);
/// let stats = basic_statistics(seg.view(), ct.view(), [2.0, 2.0, 2.0], &[(1, "liver"), (2, "spleen")], StatisticsOptions::default())?;
/// assert_eq!(stats.entries[0].1.volume, 16.0);
/// assert_eq!(stats.entries[0].1.intensity, 40.0);
/// assert!(stats.to_json_string().starts_with("{\n    \"liver\": {\n        \"volume\": 16.0,"));
/// # Ok::<(), totalseg_core::statistics::StatisticsError>(())
/// ```
pub fn basic_statistics<N: AsRef<str>>(
    seg: ArrayView3<u8>,
    ct: ArrayView3<i16>,
    spacing: [f32; 3],
    classes: &[(u8, N)],
    options: StatisticsOptions,
) -> Result<Statistics, StatisticsError> {
    if seg.shape() != ct.shape() {
        return Err(StatisticsError::ShapeMismatch {
            seg: seg.shape().to_vec(),
            ct: ct.shape().to_vec(),
        });
    }
    let voxel_volume = f64::from((spacing[0] * spacing[1]) * spacing[2]);
    let intensities = options
        .normalized_intensities
        .then(|| normalized_intensities(ct));
    let mut entries = Vec::with_capacity(classes.len());
    for (label, name) in classes {
        let mask = seg.mapv(|v| v == *label);
        let stats = if options.exclude_masks_at_border && touches_border(mask.view()) {
            StructureStatistics {
                volume: 0.0,
                intensity: 0.0,
                extra: options.extra_metrics.then(ExtraMetrics::default),
            }
        } else {
            let count = mask.iter().filter(|&&m| m).count();
            let intensity = if count == 0 {
                0.0
            } else {
                match (&intensities, options.aggregation) {
                    (None, IntensityAggregation::Mean) => mean_i16(ct, mask.view(), count),
                    (None, IntensityAggregation::Median) => {
                        median(mask_values(ct.mapv(f64::from).view(), mask.view()))
                    }
                    (Some(values), IntensityAggregation::Mean) => {
                        weighted_mean(values.view(), mask.view(), count)
                    }
                    (Some(values), IntensityAggregation::Median) => {
                        median(mask_values(values.view(), mask.view()))
                    }
                }
            };
            let extra = options.extra_metrics.then(|| match &intensities {
                None => extra_metrics(ct.mapv(f64::from).view(), mask.view(), count),
                Some(values) => extra_metrics(values.view(), mask.view(), count),
            });
            StructureStatistics {
                volume: count as f64 * voxel_volume,
                intensity: numpy_round5(intensity),
                extra,
            }
        };
        entries.push((name.as_ref().to_string(), stats));
    }
    Ok(Statistics { entries })
}

/// `_add_extra_metrics(target, mask, ct)` over the intensities `values` (the CT, or its
/// normalised form) of the `count` voxels in `mask`.
fn extra_metrics(values: ArrayView3<f64>, mask: ArrayView3<bool>, count: usize) -> ExtraMetrics {
    if count == 0 {
        return ExtraMetrics::default();
    }
    // `ct[data]` and `np.argwhere(data)`: both in C order.
    let inside = mask_values(values, mask);
    let n = inside.len() as f64;
    // np.std: mean by NumPy's pairwise sum, then the pairwise sum of the squared deviations.
    let mean = pairwise_sum(&inside) / n;
    let squares: Vec<f64> = inside.iter().map(|&v| (v - mean) * (v - mean)).collect();
    let std = (pairwise_sum(&squares) / n).sqrt();
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in &inside {
        min = min.min(v);
        max = max.max(v);
    }
    let mut index_sums = [0u64; 3];
    let mut bbox = [[usize::MAX, 0]; 3];
    for ((i, j, k), &m) in mask.indexed_iter() {
        if m {
            for (axis, index) in [i, j, k].into_iter().enumerate() {
                index_sums[axis] += index as u64;
                bbox[axis][0] = bbox[axis][0].min(index);
                bbox[axis][1] = bbox[axis][1].max(index);
            }
        }
    }
    // Integer sums below 2^53: the float64 mean is the exact quotient, rounded once.
    let centroid = index_sums.map(|sum| python_round(sum as f64 / n, 2));
    ExtraMetrics {
        n_voxels: count as u64,
        intensity_std: numpy_round5(std),
        intensity_min: min,
        intensity_max: max,
        centroid_vox: Some(centroid),
        bbox_vox: Some(bbox),
    }
}

/// `np.average(ct, weights=mask)` for int16 CT: every partial sum is an integer far below
/// 2^53, so the float64 sum is exact in any order and equals the integer sum.
fn mean_i16(ct: ArrayView3<i16>, mask: ArrayView3<bool>, count: usize) -> f64 {
    let mut sum = 0i64;
    Zip::from(ct).and(mask).for_each(|&v, &m| {
        if m {
            sum += i64::from(v);
        }
    });
    sum as f64 / count as f64
}

/// `np.average(values, weights=mask)` for float64 values: NumPy multiplies by the 0/1
/// weights and sums the whole array pairwise (C order), then divides by the weight sum.
fn weighted_mean(values: ArrayView3<f64>, mask: ArrayView3<bool>, count: usize) -> f64 {
    let products: Vec<f64> = values
        .iter()
        .zip(mask.iter())
        .map(|(&v, &m)| if m { v } else { 0.0 })
        .collect();
    pairwise_sum(&products) / count as f64
}

/// statistics.py with `normalized_intensities`: `(ct - ct.min()) / (ct.max() - ct.min())`
/// where both subtractions are int16 (wrapping) and the division float64.
fn normalized_intensities(ct: ArrayView3<i16>) -> ndarray::Array3<f64> {
    let min = ct.iter().copied().min().unwrap_or(0);
    let max = ct.iter().copied().max().unwrap_or(0);
    let range = f64::from(max.wrapping_sub(min));
    ct.mapv(|v| f64::from(v.wrapping_sub(min)) / range)
}

fn mask_values(values: ArrayView3<f64>, mask: ArrayView3<bool>) -> Vec<f64> {
    values
        .iter()
        .zip(mask.iter())
        .filter_map(|(&v, &m)| m.then_some(v))
        .collect()
}

/// `np.median`: the middle value, or the mean of the two middle values
/// (`np.mean` of the pair: `(a + b) / 2`).
fn median(mut values: Vec<f64>) -> f64 {
    let n = values.len();
    values.sort_by(f64::total_cmp);
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}
