//! From a label volume to the binary frames of a DICOM SEG: which label-map voxel each pixel
//! of each source slice is, the frame order highdicom uses, and the bit packing.

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

/// highdicom's slice normal: column direction x row direction (its "DR" index convention),
/// i.e. the negated row x column cross product.
pub fn highdicom_normal(orientation: &[f64; 6]) -> [f64; 3] {
    let (r, c) = (&orientation[..3], &orientation[3..]);
    [
        c[1] * r[2] - c[2] * r[1],
        c[2] * r[0] - c[0] * r[2],
        c[0] * r[1] - c[1] * r[0],
    ]
}

/// Signed distance of `position` along `normal` (`normal @ position`, left to right).
pub fn distance_along(normal: &[f64; 3], position: &[f64; 3]) -> f64 {
    normal[0] * position[0] + normal[1] * position[1] + normal[2] * position[2]
}

/// The order highdicom gives the planes (`np.unique(distances, return_index=True)`):
/// ascending distance along [`highdicom_normal`]. `None` when two planes share a distance.
pub fn plane_order(distances: &[f64]) -> Option<Vec<usize>> {
    let mut order: Vec<usize> = (0..distances.len()).collect();
    order.sort_by(|&a, &b| distances[a].total_cmp(&distances[b]));
    let unique = order.windows(2).all(|w| distances[w[0]] != distances[w[1]]);
    unique.then_some(order)
}

/// highdicom's `get_volume_positions(...)[0]` for planes at `distances` (in the given
/// order): the mean step `(last - first) / (n - 1)` if every step is within 1 % of it,
/// else `None`.
pub fn regular_spacing(distances: &[f64]) -> Option<f64> {
    match distances.len() {
        0 => None,
        1 => Some(1.0),
        n => {
            let spacing = (distances[n - 1] - distances[0]) / (n - 1) as f64;
            let regular = distances
                .windows(2)
                .all(|w| ((w[1] - w[0]) - spacing).abs() <= 1e-2 * spacing.abs());
            regular.then_some(spacing)
        }
    }
}

/// pydicom's `format_number_as_ds` for the values a SEG holds (no scientific notation):
/// Python's `str(float)`, cut to 16 characters by rounding when longer.
pub fn format_ds(value: f64) -> String {
    let mut text = format!("{value}");
    if !text.contains('.') && !text.contains("inf") && !text.contains("NaN") {
        text.push_str(".0");
    }
    if text.len() <= 16 {
        return text;
    }
    let sign = usize::from(value < 0.0);
    let log = value.abs().log10();
    let decimals = if log >= 1.0 {
        14usize.saturating_sub(sign + log.floor() as usize)
    } else {
        14 - sign
    };
    format!("{value:.decimals$}")
}

/// Packs binary frames the way DICOM stores BitsAllocated = 1: pixels in frame order, one
/// bit each, the first pixel in the lowest bit; frames follow each other without padding,
/// and the whole is padded to an even number of bytes.
#[derive(Debug, Default)]
pub struct BitPacker {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitPacker {
    /// Appends one frame's pixels.
    pub fn push_frame(&mut self, pixels: impl Iterator<Item = bool>) {
        for on in pixels {
            if self.bits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if on {
                if let Some(last) = self.bytes.last_mut() {
                    *last |= 1 << (self.bits % 8);
                }
            }
            self.bits += 1;
        }
    }

    /// The packed bytes, padded to an even length.
    pub fn finish(mut self) -> Vec<u8> {
        if !self.bytes.len().is_multiple_of(2) {
            self.bytes.push(0);
        }
        self.bytes
    }
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

    #[test]
    fn planes_go_down_the_slice_normal() {
        // IOP (1,0,0, 0,1,0): highdicom's normal is -z, so the top slice comes first.
        let normal = highdicom_normal(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        assert_eq!(normal.map(|v| v + 0.0), [0.0, 0.0, -1.0]);
        let z = [-804.5, -802.5, -766.5];
        let d: Vec<f64> = z
            .iter()
            .map(|&z| distance_along(&normal, &[0.0, 0.0, z]))
            .collect();
        assert_eq!(plane_order(&d), Some(vec![2, 1, 0]));
        assert_eq!(plane_order(&[1.0, 1.0]), None);
    }

    #[test]
    fn spacing_and_decimal_strings_as_highdicom_writes_them() {
        assert_eq!(regular_spacing(&[766.5, 768.5, 770.5]), Some(2.0));
        assert_eq!(regular_spacing(&[0.0, 1.0, 3.0]), None);
        assert_eq!(regular_spacing(&[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(format_ds(2.0), "2.0");
        assert_eq!(format_ds(0.9765625), "0.9765625");
        assert_eq!(format_ds(-1.5), "-1.5");
        // str(0.1 + 0.2) is 19 characters: cut to 14 decimals as pydicom does.
        assert_eq!(format_ds(0.1 + 0.2), "0.30000000000000");
        assert_eq!(format_ds(12.345678901234567), "12.3456789012346");
    }

    #[test]
    fn bits_pack_lowest_first_across_frames() {
        let mut packer = BitPacker::default();
        packer.push_frame([true, false, false, false, false, false].into_iter());
        packer.push_frame([false, false, false, true].into_iter());
        // bits: 1 0 0 0 0 0 | 0 0 0 1 -> byte0 = 0b0000_0001, byte1 bit 1 set.
        assert_eq!(packer.finish(), vec![0b0000_0001, 0b0000_0010]);
        let mut odd = BitPacker::default();
        odd.push_frame(std::iter::repeat_n(true, 9));
        assert_eq!(odd.finish(), vec![0xff, 0x01]);
    }
}
