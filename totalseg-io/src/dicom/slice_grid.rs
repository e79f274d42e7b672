//! Where each pixel of a source slice lies in the label volume: the slice's position,
//! orientation and spacing against the volume's (RAS) affine, checked to fall on voxels.

use ndarray::{Array2, ArrayView3};

use crate::nifti::Affine;

/// Where a source slice's pixels lie in the label volume: voxel of pixel `(row, column)` =
/// `origin + row * row_step + column * column_step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceInVolume {
    /// Voxel of pixel (0, 0).
    pub origin: [i64; 3],
    /// Voxel step from one row to the next.
    pub row_step: [i64; 3],
    /// Voxel step from one column to the next.
    pub column_step: [i64; 3],
}

/// What a source slice contributes to the mapping.
#[derive(Debug, Clone, Copy)]
pub struct SliceGeometry {
    /// ImagePositionPatient (LPS, mm).
    pub position: [f64; 3],
    /// ImageOrientationPatient: row direction, then column direction.
    pub orientation: [f64; 6],
    /// PixelSpacing: (between rows, between columns), mm.
    pub pixel_spacing: [f64; 2],
    /// Rows and columns.
    pub size: [usize; 2],
}

/// A voxel index off the grid by more than this (in voxels) means the label volume is not
/// on the slices' grid.
const GRID_TOLERANCE: f64 = 0.05;

/// Locates `slice` in the label volume of shape `shape` with (RAS) `affine`. `Err` says why
/// the slice's pixels are not voxels of the volume.
pub fn locate_slice(
    slice: &SliceGeometry,
    affine: &Affine,
    shape: [usize; 3],
) -> Result<SliceInVolume, String> {
    let inverse = invert_affine(affine).ok_or("the segmentation's affine is singular")?;
    // LPS (DICOM) -> RAS (NIfTI) -> voxel.
    let voxel_at = |row: f64, column: f64| -> [f64; 3] {
        let o = &slice.orientation;
        let lps: [f64; 3] = std::array::from_fn(|k| {
            slice.position[k]
                + column * slice.pixel_spacing[1] * o[k]
                + row * slice.pixel_spacing[0] * o[3 + k]
        });
        let ras = [-lps[0], -lps[1], lps[2]];
        std::array::from_fn(|i| {
            inverse[i][0] * ras[0] + inverse[i][1] * ras[1] + inverse[i][2] * ras[2] + inverse[i][3]
        })
    };
    let to_index = |v: [f64; 3], what: &str| -> Result<[i64; 3], String> {
        let rounded = v.map(f64::round);
        if v.iter()
            .zip(&rounded)
            .any(|(a, b)| (a - b).abs() > GRID_TOLERANCE)
        {
            return Err(format!(
                "{what} falls between voxels of the segmentation (voxel {v:.3?})"
            ));
        }
        Ok(rounded.map(|x| x as i64))
    };
    let origin_f = voxel_at(0.0, 0.0);
    let origin = to_index(origin_f, "pixel (0, 0)")?;
    let step = |v: [f64; 3]| -> [f64; 3] { std::array::from_fn(|k| v[k] - origin_f[k]) };
    let row_step = to_index(step(voxel_at(1.0, 0.0)), "the row step")?;
    let column_step = to_index(step(voxel_at(0.0, 1.0)), "the column step")?;
    let located = SliceInVolume {
        origin,
        row_step,
        column_step,
    };
    let [rows, columns] = slice.size.map(|n| n as i64 - 1);
    for (r, c) in [(0, 0), (rows, 0), (0, columns), (rows, columns)] {
        let v = located.voxel(r, c);
        if v.iter().zip(shape).any(|(&i, n)| i < 0 || i >= n as i64) {
            return Err(format!(
                "pixel ({r}, {c}) is voxel {v:?}, outside the segmentation's {shape:?} voxels"
            ));
        }
    }
    Ok(located)
}

impl SliceInVolume {
    fn voxel(&self, row: i64, column: i64) -> [i64; 3] {
        std::array::from_fn(|k| {
            self.origin[k] + row * self.row_step[k] + column * self.column_step[k]
        })
    }

    /// The slice's labels, `(rows, columns)`. Assumes [`locate_slice`] checked the corners
    /// (the steps are integral, so every pixel between them is inside too).
    pub fn labels(&self, volume: ArrayView3<u8>, size: [usize; 2]) -> Array2<u8> {
        Array2::from_shape_fn((size[0], size[1]), |(r, c)| {
            let v = self.voxel(r as i64, c as i64);
            volume[[v[0] as usize, v[1] as usize, v[2] as usize]]
        })
    }
}

/// Inverse of a 4x4 affine whose last row is (0, 0, 0, 1).
fn invert_affine(a: &Affine) -> Option<[[f64; 4]; 3]> {
    let m = [
        [a[0][0], a[0][1], a[0][2]],
        [a[1][0], a[1][1], a[1][2]],
        [a[2][0], a[2][1], a[2][2]],
    ];
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if !det.is_finite() || det.abs() < 1e-12 {
        return None;
    }
    let cof =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let inv = [
        [cof(1, 2, 1, 2), -cof(0, 2, 1, 2), cof(0, 1, 1, 2)],
        [-cof(1, 2, 0, 2), cof(0, 2, 0, 2), -cof(0, 1, 0, 2)],
        [cof(1, 2, 0, 1), -cof(0, 2, 0, 1), cof(0, 1, 0, 1)],
    ]
    .map(|row| row.map(|v| v / det));
    let t = [a[0][3], a[1][3], a[2][3]];
    Some(std::array::from_fn(|i| {
        let shift = -(inv[i][0] * t[0] + inv[i][1] * t[1] + inv[i][2] * t[2]);
        [inv[i][0], inv[i][1], inv[i][2], shift]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    /// dicom2nifti's LAS affine for an axial series with IOP (1,0,0, 0,1,0): i goes with
    /// the columns (patient left), j against the rows (anterior), k up the slices.
    fn las_affine(cols: usize, rows: usize, spacing: [f64; 3], first: [f64; 3]) -> Affine {
        // Voxel (i, j, k) is pixel (row = rows-1-j, column = i) of slice k.
        let y_last_row = first[1] + (rows - 1) as f64 * spacing[1];
        let _ = cols;
        [
            [-spacing[0], 0.0, 0.0, -first[0]],
            [0.0, spacing[1], 0.0, -y_last_row],
            [0.0, 0.0, spacing[2], first[2]],
            [0.0, 0.0, 0.0, 1.0],
        ]
    }

    #[test]
    fn axial_slice_maps_to_flipped_rows() {
        let (cols, rows, slices) = (4, 3, 5);
        let affine = las_affine(cols, rows, [0.5, 0.7, 2.0], [-10.0, -20.0, -100.0]);
        let mut volume = Array3::<u8>::zeros((cols, rows, slices));
        volume[[1, 2, 3]] = 7; // column 1, row 0 (j = rows-1), slice 3
        let slice = SliceGeometry {
            position: [-10.0, -20.0, -100.0 + 3.0 * 2.0],
            orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            pixel_spacing: [0.7, 0.5],
            size: [rows, cols],
        };
        let located = locate_slice(&slice, &affine, [cols, rows, slices]).expect("on grid");
        assert_eq!(located.origin, [0, 2, 3]);
        assert_eq!(located.row_step, [0, -1, 0]);
        assert_eq!(located.column_step, [1, 0, 0]);
        let plane = located.labels(volume.view(), [rows, cols]);
        assert_eq!(plane[[0, 1]], 7);
        assert_eq!(plane.iter().filter(|&&v| v != 0).count(), 1);
    }

    #[test]
    fn off_grid_and_outside_slices_are_refused() {
        let affine = las_affine(4, 3, [0.5, 0.7, 2.0], [-10.0, -20.0, -100.0]);
        let mut slice = SliceGeometry {
            position: [-10.0, -20.0, -99.0],
            orientation: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            pixel_spacing: [0.7, 0.5],
            size: [3, 4],
        };
        let err = locate_slice(&slice, &affine, [4, 3, 5]).expect_err("half a slice off");
        assert!(err.contains("between voxels"), "{err}");
        slice.position[2] = -100.0 + 5.0 * 2.0;
        let err = locate_slice(&slice, &affine, [4, 3, 5]).expect_err("past the last slice");
        assert!(err.contains("outside"), "{err}");
    }
}
