//! The in-memory image: voxels, affine, spacing and the header kept for writing.

use std::path::PathBuf;

use ndarray::Array3;

use super::affine::{column_norms, validate_affine, Affine};
use super::datatype::NiftiDataType;
use super::error::{NiftiError, NiftiErrorKind};
use super::header::NiftiHeader;
use super::label_ext::{label_names_from_extensions, LabelNames};

/// nibabel's `xform_codes['aligned']`.
pub const XFORM_ALIGNED: i16 = 2;
/// nibabel's `xform_codes['unknown']`.
pub const XFORM_UNKNOWN: i16 = 0;

/// A 3D image as nibabel presents it.
#[derive(Debug, Clone)]
pub struct Volume {
    /// Voxel values indexed `[i, j, k]` exactly like nibabel's `img.get_fdata()[i, j, k]`
    /// (`i` = first NIfTI dimension), in standard (C) memory layout.
    pub data: Array3<f32>,
    /// Voxel-to-world affine, `affine[row][col]` (nibabel's `img.affine`).
    pub affine: Affine,
    /// `|pixdim[1..=3]|` (nibabel's `header.get_zooms()[:3]`, float32 values widened).
    pub spacing: [f64; 3],
    /// The header (nibabel's load-time fixes applied, extensions included), kept so that
    /// outputs can copy it as TotalSegmentator does.
    pub header: NiftiHeader,
    /// The file this came from, if any.
    pub source: Option<PathBuf>,
}

impl Volume {
    /// A volume for synthetic data, with the header nibabel builds for
    /// `Nifti1Image(data.astype(float32), affine)`: sform = `affine` with code 2
    /// ("aligned"), qform set from `affine` with code 0 ("unknown"), pixdim = column norms
    /// of the affine as float32 (and `spacing` = those), float32 data, little-endian.
    ///
    /// Errors for an affine that is not finite or singular, or a shape NIfTI-1 cannot
    /// store (dimensions above 32767).
    ///
    /// ```
    /// use ndarray::Array3;
    /// use totalseg_io::nifti::Volume;
    /// let lps = [[-2.0, 0.0, 0.0, 100.0], [0.0, -2.0, 0.0, 50.0], [0.0, 0.0, 3.0, -20.0], [0.0, 0.0, 0.0, 1.0]];
    /// let v = Volume::new(Array3::zeros((4, 5, 6)), lps).unwrap();
    /// assert_eq!(v.spacing, [2.0, 2.0, 3.0]);
    /// assert_eq!((v.header.sform_code, v.header.qform_code), (2, 0));
    /// assert_eq!(v.header.dim, [3, 4, 5, 6, 1, 1, 1, 1]);
    /// ```
    pub fn new(data: Array3<f32>, affine: Affine) -> Result<Self, NiftiError> {
        let (ni, nj, nk) = data.dim();
        let header = NiftiHeader::for_new_image([ni, nj, nk], &affine, NiftiDataType::F32)
            .map_err(NiftiError::without_path)?;
        let data = if data.is_standard_layout() {
            data
        } else {
            data.as_standard_layout().into_owned()
        };
        let spacing = [
            header.pixdim[1] as f64,
            header.pixdim[2] as f64,
            header.pixdim[3] as f64,
        ];
        Ok(Volume {
            data,
            affine,
            spacing,
            header,
            source: None,
        })
    }

    /// `[ni, nj, nk]`.
    pub fn shape(&self) -> [usize; 3] {
        let (a, b, c) = self.data.dim();
        [a, b, c]
    }

    /// Voxel sizes implied by the affine: its column norms rounded to float32, i.e. the
    /// `get_zooms()` of `Nifti1Image(data, affine)`. TotalSegmentator resamples such a copy
    /// of the input, so these (not `pixdim`) are the spacings its resampling uses.
    pub fn affine_zooms(&self) -> [f64; 3] {
        column_norms(&self.affine).map(|z| z as f32 as f64)
    }

    /// Names from TotalSegmentator's label-map extension, `None` if the file had none.
    pub fn label_names(&self) -> Result<Option<LabelNames>, NiftiError> {
        label_names_from_extensions(&self.header.extensions).map_err(|kind| NiftiError {
            path: self.source.clone(),
            kind,
        })
    }

    /// Number of NaN or infinite voxels (passed through from the file as nibabel does;
    /// callers decide what they mean).
    pub fn count_non_finite(&self) -> usize {
        self.data.iter().filter(|v| !v.is_finite()).count()
    }
}

impl NiftiHeader {
    /// The header nibabel makes for `Nifti1Image(array, affine)` without a header, for an
    /// array of `shape` stored as `datatype`. `scl_slope`/`scl_inter` are NaN ("choose when
    /// writing"); `vox_offset` is 0 (set when writing).
    pub fn for_new_image(
        shape: [usize; 3],
        affine: &Affine,
        datatype: NiftiDataType,
    ) -> Result<NiftiHeader, NiftiErrorKind> {
        validate_affine(affine, "given")?;
        let dims = storable_shape(shape)?;
        let mut h = NiftiHeader::empty();
        h.set_data_shape_3d(dims);
        h.set_data_type(datatype);
        h.set_sform(affine, XFORM_ALIGNED);
        h.set_qform(affine, XFORM_UNKNOWN)?;
        Ok(h)
    }
}

/// The shape as NIfTI-1 `dim` values, if every dimension is in 1..=32767.
pub(crate) fn storable_shape(shape: [usize; 3]) -> Result<[i16; 3], NiftiErrorKind> {
    let mut out = [0i16; 3];
    for (o, &s) in out.iter_mut().zip(shape.iter()) {
        *o = i16::try_from(s)
            .ok()
            .filter(|&d| d >= 1)
            .ok_or(NiftiErrorKind::ShapeNotRepresentable(shape))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ShapeBuilder;

    #[test]
    fn spacings_are_float32_like_nibabels_zooms() {
        let s = std::f64::consts::SQRT_2;
        let affine = [
            [1.0, -1.0, 0.0, 0.0],
            [1.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 0.3, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let v = Volume::new(Array3::zeros((2, 3, 4)), affine).expect("valid");
        let expected = [s as f32 as f64, s as f32 as f64, 0.3f32 as f64];
        assert_eq!(v.spacing, expected);
        assert_eq!(v.affine_zooms(), expected);
        assert_eq!(v.shape(), [2, 3, 4]);
        assert_eq!(v.count_non_finite(), 0);
    }

    #[test]
    fn unusable_inputs_are_errors() {
        let mut singular = [[0.0; 4]; 4];
        singular[3][3] = 1.0;
        assert!(Volume::new(Array3::zeros((2, 2, 2)), singular).is_err());
        let eye = [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let err = Volume::new(Array3::zeros((40_000, 1, 1)), eye).expect_err("too long");
        assert!(matches!(err.kind, NiftiErrorKind::ShapeNotRepresentable(_)));
        assert!(Volume::new(Array3::zeros((0, 1, 1)), eye).is_err());
        // Fortran-ordered input is stored in standard layout, same values.
        let f = Array3::from_shape_fn((2, 3, 4).f(), |(i, j, k)| (i * 12 + j * 4 + k) as f32);
        let v = Volume::new(f.clone(), eye).expect("valid");
        assert!(v.data.is_standard_layout());
        assert_eq!(v.data, f);
    }
}
