//! `--radiomics`: the shape and first-order features TotalSegmentator computes per class
//! with pyradiomics (`totalsegmentator/statistics.py`, `get_radiomics_features`), written
//! as `statistics_radiomics.json`.
//!
//! The reference resamples image and mask to 3 mm over the mask's bounding box plus five
//! voxels (pyradiomics `resampleImage`: SimpleITK cubic B-spline for the image, nearest
//! neighbour for the mask; no resampling when the image already has 3 mm voxels), then
//! computes 14 shape features (a marching-cubes mesh and the principal axes) and 18
//! first-order features (bin width 25), each rounded to 4 decimals. A mask that is empty
//! gets TotalSegmentator's 107 `standard_features`, all 0, and so does one whose
//! extraction fails (e.g. a single voxel).
//!
//! ```
//! use ndarray::Array3;
//! use totalseg_core::radiomics::{structure_radiomics, PixelType, RadiomicsImage};
//! let ct = Array3::from_shape_fn((12, 12, 12), |(i, j, k)| (i * 7 + j * 3 + k) as f32);
//! let mut affine = [[0.0; 4]; 4];
//! for a in 0..3 { affine[a][a] = 3.0; }
//! affine[3][3] = 1.0;
//! let image = RadiomicsImage::new(ct.view(), &affine, [3.0; 3], PixelType::INT16);
//! let mask = Array3::from_shape_fn((12, 12, 12), |(i, j, k)| (3..8).contains(&i) && (3..9).contains(&j) && (2..6).contains(&k));
//! let result = structure_radiomics(&image, mask.view());
//! assert_eq!(result.features[13], ("shape_VoxelVolume".to_string(), 5.0 * 6.0 * 4.0 * 27.0));
//! assert!(result.warning.is_none());
//! ```

mod first_order;
mod grid;
mod itk_inverse;
pub(crate) mod mesh_table;
mod resample;
mod shape;

use std::path::Path;
use std::sync::OnceLock;

use ndarray::ArrayView3;

use crate::geometry::Affine;
use crate::statistics::json::{python_json_object, python_json_string};
use crate::statistics::python_float_repr;
use first_order::{first_order_features, FIRST_ORDER_NAMES};
use grid::Grid;
use resample::{bspline_coefficients, resampled_grid, ItkGeometry};
use shape::{shape_features, SHAPE_NAMES};

/// The spacing (mm) TotalSegmentator asks pyradiomics to resample to.
const RESAMPLED_SPACING: f64 = 3.0;

/// The pixel type the image is stored in: the B-spline result is cast back to it, as
/// SimpleITK's `ResampleImageFilter` does, and the grey-level binning runs in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PixelType {
    /// An integer type with this range: values are clamped, then truncated toward zero.
    Integer {
        /// Smallest value of the type.
        min: f64,
        /// Largest value of the type.
        max: f64,
    },
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Float64,
}

impl PixelType {
    /// `int16`, the usual CT type.
    pub const INT16: PixelType = PixelType::Integer {
        min: i16::MIN as f64,
        max: i16::MAX as f64,
    };

    fn cast(self, value: f64) -> f64 {
        match self {
            PixelType::Integer { min, max } => {
                if value <= min {
                    min
                } else if value >= max {
                    max
                } else {
                    // `+ 0.0`: an integer has no negative zero (-0.4 becomes 0, not -0.0).
                    value.trunc() + 0.0
                }
            }
            PixelType::Float32 => f64::from(value as f32),
            PixelType::Float64 => value,
        }
    }
}

/// Why pyradiomics would stop for a mask (TotalSegmentator then writes all features 0).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RadiomicsError {
    /// Image and mask have different grids.
    #[error("mask shape {mask:?} differs from image shape {image:?}")]
    ShapeMismatch {
        /// Image shape.
        image: [usize; 3],
        /// Mask shape.
        mask: [usize; 3],
    },
    /// No voxel of the mask is set (after resampling).
    #[error("Label (1) not present in mask")]
    LabelNotPresent,
    /// The mask is one voxel.
    #[error("mask only contains 1 segmented voxel! Cannot extract features for a single voxel.")]
    SingleVoxel,
    /// The mask is a line.
    #[error("mask has too few dimensions (number of dimensions {0}, minimum required 2)")]
    TooFewDimensions(usize),
}

/// A CT prepared for feature extraction; the B-spline coefficients are computed once, on
/// first use, and shared by all masks.
#[derive(Debug)]
pub struct RadiomicsImage {
    /// The voxels as read (f32 holds every int16 / int32 CT value and float32 exactly).
    values: Grid<f32>,
    spacing: [f64; 3],
    geometry: ItkGeometry,
    pixel_type: PixelType,
    coefficients: OnceLock<Grid<f64>>,
}

impl RadiomicsImage {
    /// `values` indexed `[i, j, k]` (NIfTI order) with their `affine` and header `spacing`.
    pub fn new(
        values: ArrayView3<f32>,
        affine: &Affine,
        spacing: [f64; 3],
        pixel_type: PixelType,
    ) -> RadiomicsImage {
        RadiomicsImage {
            values: Grid::from_ijk(values, |v| v),
            spacing,
            geometry: ItkGeometry::from_affine(affine, spacing),
            pixel_type,
            coefficients: OnceLock::new(),
        }
    }

    /// The 32 features (`shape_*` then `firstorder_*`, pyradiomics' order), unrounded, of
    /// `mask` (same grid as the image).
    pub fn features(&self, mask: ArrayView3<bool>) -> Result<Vec<(String, f64)>, RadiomicsError> {
        let mask = Grid::from_ijk(mask, |m| m);
        if mask.size != self.values.size {
            return Err(RadiomicsError::ShapeMismatch {
                image: self.values.size,
                mask: mask.size,
            });
        }
        let (lower, extent) = mask.bounding_box().ok_or(RadiomicsError::LabelNotPresent)?;
        let (resampled, mask, spacing) = match resampled_grid(
            &self.geometry,
            self.values.size,
            self.spacing,
            lower,
            extent,
            RESAMPLED_SPACING,
        ) {
            None => (None, mask, self.spacing),
            Some(grid) => {
                let coefficients = self
                    .coefficients
                    .get_or_init(|| bspline_coefficients(&self.values));
                (
                    Some(grid.bspline(coefficients, &self.geometry, self.pixel_type)),
                    grid.nearest(&mask, &self.geometry),
                    grid.spacing,
                )
            }
        };
        // checkMask on the resampled mask.
        let (lower, extent) = mask.bounding_box().ok_or(RadiomicsError::LabelNotPresent)?;
        match extent.iter().filter(|&&n| n > 1).count() {
            0 => return Err(RadiomicsError::SingleVoxel),
            1 => return Err(RadiomicsError::TooFewDimensions(1)),
            _ => {}
        }
        let mask = mask.crop(lower, extent);
        let image = match resampled {
            Some(image) => image.crop(lower, extent),
            None => {
                let crop = self.values.crop(lower, extent);
                Grid {
                    size: crop.size,
                    data: crop.data.into_iter().map(f64::from).collect(),
                }
            }
        };
        let shape = shape_features(&mask, spacing);
        let values: Vec<f64> = image
            .data
            .iter()
            .zip(&mask.data)
            .filter(|(_, &m)| m)
            .map(|(&v, _)| v)
            .collect();
        let first_order = first_order_features(&values, spacing, self.pixel_type);
        let named = SHAPE_NAMES
            .iter()
            .zip(shape)
            .map(|(name, v)| (format!("shape_{name}"), v))
            .chain(
                FIRST_ORDER_NAMES
                    .iter()
                    .zip(first_order)
                    .map(|(name, v)| (format!("firstorder_{name}"), v)),
            )
            .collect();
        Ok(named)
    }
}

/// One structure's entry of `statistics_radiomics.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct StructureRadiomics {
    /// Feature name and value, rounded to 4 decimals, in output order.
    pub features: Vec<(String, f64)>,
    /// The warning TotalSegmentator prints when it writes zeros instead.
    pub warning: Option<String>,
}

/// TotalSegmentator's `get_radiomics_features` for one mask: the 32 features rounded to 4
/// decimals; or, for an empty (or full) mask or a failed extraction, the 107
/// [`ZERO_FEATURE_NAMES`] set to 0 with the reference's warning.
pub fn structure_radiomics(image: &RadiomicsImage, mask: ArrayView3<bool>) -> StructureRadiomics {
    let set = mask.iter().filter(|&&m| m).count();
    if set == 0 || set == mask.len() {
        return zero_features("WARNING: Entire mask is 0 or 1. Setting all features to 0".into());
    }
    match image.features(mask) {
        Ok(features) => StructureRadiomics {
            features: features
                .into_iter()
                .map(|(name, v)| (name, python_round(v, 4)))
                .collect(),
            warning: None,
        },
        Err(e) => zero_features(format!(
            "WARNING: radiomics raised an exception (settings all features to 0): {e}"
        )),
    }
}

fn zero_features(warning: String) -> StructureRadiomics {
    StructureRadiomics {
        features: ZERO_FEATURE_NAMES
            .iter()
            .map(|name| (name.to_string(), 0.0))
            .collect(),
        warning: Some(warning),
    }
}

pub use crate::statistics::python_round;

/// `statistics_radiomics.json`: structure name -> features, in the order of the mask files.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RadiomicsReport {
    /// `(structure name, features)` in output order.
    pub entries: Vec<(String, Vec<(String, f64)>)>,
}

impl RadiomicsReport {
    /// The text `json.dump(stats, f, indent=4)` writes (no trailing newline).
    pub fn to_json_string(&self) -> String {
        let items: Vec<String> = self
            .entries
            .iter()
            .map(|(name, features)| {
                let fields: Vec<String> = features
                    .iter()
                    .map(|(key, v)| {
                        format!(
                            "        {}: {}",
                            python_json_string(key),
                            python_float_repr(*v)
                        )
                    })
                    .collect();
                let body = python_json_object(&fields, "    ");
                format!("    {}: {body}", python_json_string(name))
            })
            .collect();
        python_json_object(&items, "")
    }

    /// Writes [`Self::to_json_string`] to `path`.
    pub fn write_json(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.to_json_string())
    }
}

/// TotalSegmentator's `standard_features` (statistics.py): the keys it writes, all 0, for a
/// mask that is empty (or full) or whose extraction fails.
pub const ZERO_FEATURE_NAMES: [&str; 107] = [
    "shape_Elongation",
    "shape_Flatness",
    "shape_LeastAxisLength",
    "shape_MajorAxisLength",
    "shape_Maximum2DDiameterColumn",
    "shape_Maximum2DDiameterRow",
    "shape_Maximum2DDiameterSlice",
    "shape_Maximum3DDiameter",
    "shape_MeshVolume",
    "shape_MinorAxisLength",
    "shape_Sphericity",
    "shape_SurfaceArea",
    "shape_SurfaceVolumeRatio",
    "shape_VoxelVolume",
    "firstorder_10Percentile",
    "firstorder_90Percentile",
    "firstorder_Energy",
    "firstorder_Entropy",
    "firstorder_InterquartileRange",
    "firstorder_Kurtosis",
    "firstorder_Maximum",
    "firstorder_MeanAbsoluteDeviation",
    "firstorder_Mean",
    "firstorder_Median",
    "firstorder_Minimum",
    "firstorder_Range",
    "firstorder_RobustMeanAbsoluteDeviation",
    "firstorder_RootMeanSquared",
    "firstorder_Skewness",
    "firstorder_TotalEnergy",
    "firstorder_Uniformity",
    "firstorder_Variance",
    "glcm_Autocorrelation",
    "glcm_ClusterProminence",
    "glcm_ClusterShade",
    "glcm_ClusterTendency",
    "glcm_Contrast",
    "glcm_Correlation",
    "glcm_DifferenceAverage",
    "glcm_DifferenceEntropy",
    "glcm_DifferenceVariance",
    "glcm_Id",
    "glcm_Idm",
    "glcm_Idmn",
    "glcm_Idn",
    "glcm_Imc1",
    "glcm_Imc2",
    "glcm_InverseVariance",
    "glcm_JointAverage",
    "glcm_JointEnergy",
    "glcm_JointEntropy",
    "glcm_MCC",
    "glcm_MaximumProbability",
    "glcm_SumAverage",
    "glcm_SumEntropy",
    "glcm_SumSquares",
    "gldm_DependenceEntropy",
    "gldm_DependenceNonUniformity",
    "gldm_DependenceNonUniformityNormalized",
    "gldm_DependenceVariance",
    "gldm_GrayLevelNonUniformity",
    "gldm_GrayLevelVariance",
    "gldm_HighGrayLevelEmphasis",
    "gldm_LargeDependenceEmphasis",
    "gldm_LargeDependenceHighGrayLevelEmphasis",
    "gldm_LargeDependenceLowGrayLevelEmphasis",
    "gldm_LowGrayLevelEmphasis",
    "gldm_SmallDependenceEmphasis",
    "gldm_SmallDependenceHighGrayLevelEmphasis",
    "gldm_SmallDependenceLowGrayLevelEmphasis",
    "glrlm_GrayLevelNonUniformity",
    "glrlm_GrayLevelNonUniformityNormalized",
    "glrlm_GrayLevelVariance",
    "glrlm_HighGrayLevelRunEmphasis",
    "glrlm_LongRunEmphasis",
    "glrlm_LongRunHighGrayLevelEmphasis",
    "glrlm_LongRunLowGrayLevelEmphasis",
    "glrlm_LowGrayLevelRunEmphasis",
    "glrlm_RunEntropy",
    "glrlm_RunLengthNonUniformity",
    "glrlm_RunLengthNonUniformityNormalized",
    "glrlm_RunPercentage",
    "glrlm_RunVariance",
    "glrlm_ShortRunEmphasis",
    "glrlm_ShortRunHighGrayLevelEmphasis",
    "glrlm_ShortRunLowGrayLevelEmphasis",
    "glszm_GrayLevelNonUniformity",
    "glszm_GrayLevelNonUniformityNormalized",
    "glszm_GrayLevelVariance",
    "glszm_HighGrayLevelZoneEmphasis",
    "glszm_LargeAreaEmphasis",
    "glszm_LargeAreaHighGrayLevelEmphasis",
    "glszm_LargeAreaLowGrayLevelEmphasis",
    "glszm_LowGrayLevelZoneEmphasis",
    "glszm_SizeZoneNonUniformity",
    "glszm_SizeZoneNonUniformityNormalized",
    "glszm_SmallAreaEmphasis",
    "glszm_SmallAreaHighGrayLevelEmphasis",
    "glszm_SmallAreaLowGrayLevelEmphasis",
    "glszm_ZoneEntropy",
    "glszm_ZonePercentage",
    "glszm_ZoneVariance",
    "ngtdm_Busyness",
    "ngtdm_Coarseness",
    "ngtdm_Complexity",
    "ngtdm_Contrast",
    "ngtdm_Strength",
];

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn image() -> RadiomicsImage {
        let ct = Array3::from_shape_fn((8, 8, 8), |(i, j, k)| (i * 3 + j * 5 + k * 7) as f32);
        let mut affine = [[0.0; 4]; 4];
        for (a, row) in affine.iter_mut().enumerate() {
            row[a] = if a < 3 { 3.0 } else { 1.0 };
        }
        RadiomicsImage::new(ct.view(), &affine, [3.0; 3], PixelType::INT16)
    }

    #[test]
    fn integer_cast_truncates_clamps_and_has_no_negative_zero() {
        let t = PixelType::INT16;
        assert_eq!(t.cast(-3.7), -3.0);
        assert_eq!(t.cast(2.9), 2.0);
        assert!(t.cast(-0.4).is_sign_positive());
        assert_eq!(t.cast(1e6), 32767.0);
        assert_eq!(t.cast(-1e6), -32768.0);
        assert_eq!(PixelType::Float32.cast(0.1), f64::from(0.1f32));
    }

    #[test]
    fn empty_single_voxel_and_mismatched_masks_get_the_zero_features() {
        let image = image();
        let empty = Array3::from_elem((8, 8, 8), false);
        let result = structure_radiomics(&image, empty.view());
        assert_eq!(result.features.len(), 107);
        assert!(result.features.iter().all(|(_, v)| *v == 0.0));
        assert!(result.warning.unwrap().contains("Entire mask is 0 or 1"));

        let mut single = empty.clone();
        single[[3, 3, 3]] = true;
        let result = structure_radiomics(&image, single.view());
        assert_eq!(result.features.len(), 107);
        assert!(result.warning.unwrap().contains("single voxel"));
        assert_eq!(
            image.features(single.view()),
            Err(RadiomicsError::SingleVoxel)
        );

        let mut line = empty.clone();
        for i in 2..6 {
            line[[i, 3, 3]] = true;
        }
        assert_eq!(
            image.features(line.view()),
            Err(RadiomicsError::TooFewDimensions(1))
        );

        let other = Array3::from_elem((8, 8, 7), true);
        let mut other = other;
        other[[0, 0, 0]] = false;
        assert!(matches!(
            image.features(other.view()),
            Err(RadiomicsError::ShapeMismatch { .. })
        ));
        let result = structure_radiomics(&image, other.view());
        assert!(result.warning.unwrap().contains("differs from image shape"));
    }

    #[test]
    fn report_json_is_pythons_indent_4() {
        let report = RadiomicsReport {
            entries: vec![
                ("liver".into(), vec![("shape_VoxelVolume".into(), 27.0)]),
                ("spleen".into(), vec![]),
            ],
        };
        assert_eq!(
            report.to_json_string(),
            "{\n    \"liver\": {\n        \"shape_VoxelVolume\": 27.0\n    },\n    \"spleen\": {}\n}"
        );
        assert_eq!(RadiomicsReport::default().to_json_string(), "{}");
        assert_eq!(python_round(0.03125, 4), 0.0312);
        assert_eq!(python_round(1.23456, 4), 1.2346);
    }
}
