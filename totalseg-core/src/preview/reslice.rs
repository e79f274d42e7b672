//! `vtkImageReslice` as fury's `slicer` and TotalSegmentator's `contour_from_roi_smooth` set
//! it up: the array (VTK point `(i, j, k)` = `data[[i, j, k]]`, unit spacing, origin 0) is
//! moved by the affine onto an axis-aligned grid whose spacing is the length of the affine's
//! columns and which just covers the moved volume (`AutoCropOutputOn`), sampled trilinearly.

use ndarray::{Array3, ArrayView3};

use crate::geometry::Affine;

/// A scalar volume on an axis-aligned world grid: point `(i, j, k)` lies at
/// `origin + (i, j, k) * spacing`.
pub(crate) struct WorldVolume {
    pub data: Array3<f32>,
    pub origin: [f64; 3],
    pub spacing: [f64; 3],
}

/// The axis-aligned world grid `vtkImageReslice` (AutoCropOutput) makes for an array of
/// `shape` placed by `affine`: spacing from the columns, origin at the low corner of the
/// moved volume, `round(extent / spacing) + 1` points along each axis.
struct WorldGrid {
    origin: [f64; 3],
    spacing: [f64; 3],
    counts: [usize; 3],
}

fn world_grid(shape: [usize; 3], affine: &Affine) -> WorldGrid {
    let spacing = [0, 1, 2].map(|c| (0..3).map(|r| affine[r][c].powi(2)).sum::<f64>().sqrt());
    let [low, high] = moved_bounds(affine, [0; 3], shape.map(|n| n.saturating_sub(1)));
    let counts = [0, 1, 2].map(|a| ((high[a] - low[a]) / spacing[a] + 0.5).floor() as usize + 1);
    WorldGrid {
        origin: low,
        spacing,
        counts,
    }
}

/// World bounds of the index box `first..=last` moved by `affine`.
fn moved_bounds(affine: &Affine, first: [usize; 3], last: [usize; 3]) -> [[f64; 3]; 2] {
    let mut bounds = [[f64::INFINITY; 3], [f64::NEG_INFINITY; 3]];
    for corner in 0..8 {
        let index = [0, 1, 2].map(|a| if corner >> a & 1 == 1 { last[a] } else { first[a] } as f64);
        for r in 0..3 {
            let world = affine[r][3] + (0..3).map(|c| affine[r][c] * index[c]).sum::<f64>();
            bounds[0][r] = bounds[0][r].min(world);
            bounds[1][r] = bounds[1][r].max(world);
        }
    }
    bounds
}

/// The spacing when `affine` only scales (positive diagonal) and translates: then the
/// resliced grid is the array's own.
pub(crate) fn diagonal_spacing(affine: &Affine) -> Option<[f64; 3]> {
    let diagonal = (0..3).all(|r| {
        (0..3).all(|c| {
            if r == c {
                affine[r][c] > 0.0
            } else {
                affine[r][c] == 0.0
            }
        })
    });
    diagonal.then(|| [affine[0][0], affine[1][1], affine[2][2]])
}

/// Resamples `data`, placed in the world by `affine`, onto the axis-aligned grid described
/// above. Points outside the moved volume are 0.
pub(crate) fn reslice(data: ArrayView3<f32>, affine: &Affine) -> WorldVolume {
    let shape = [data.shape()[0], data.shape()[1], data.shape()[2]];
    reslice_part(data, [0; 3], shape, affine)
}

/// [`reslice`] of an array of `full_shape` of which only `part` (starting at index `start`)
/// holds non-zero values: the points of the full array's grid around the part are computed
/// (the rest would be 0), on that grid, so the result equals the corresponding piece of
/// reslicing the full array.
pub(crate) fn reslice_part(
    part: ArrayView3<f32>,
    start: [usize; 3],
    full_shape: [usize; 3],
    affine: &Affine,
) -> WorldVolume {
    let linear = [0, 1, 2].map(|r| [0, 1, 2].map(|c| affine[r][c]));
    let translation = [affine[0][3], affine[1][3], affine[2][3]];
    let is_diagonal = (0..3).all(|r| {
        (0..3).all(|c| {
            if r == c {
                linear[r][c] > 0.0
            } else {
                linear[r][c] == 0.0
            }
        })
    });
    if is_diagonal {
        // The grid is the array's own: no interpolation happens.
        let spacing = [linear[0][0], linear[1][1], linear[2][2]];
        return WorldVolume {
            data: part.to_owned(),
            origin: [0, 1, 2].map(|a| translation[a] + start[a] as f64 * spacing[a]),
            spacing,
        };
    }
    let grid = world_grid(full_shape, affine);
    let part_shape = [part.shape()[0], part.shape()[1], part.shape()[2]];
    let last = [0, 1, 2].map(|a| start[a] + part_shape[a].saturating_sub(1));
    let [low, high] = moved_bounds(affine, start, last);
    // Grid points within a cell of the part's moved box.
    let first_point = [0, 1, 2]
        .map(|a| (((low[a] - grid.origin[a]) / grid.spacing[a]).floor() - 1.0).max(0.0) as usize);
    let last_point = [0, 1, 2].map(|a| {
        let p = ((high[a] - grid.origin[a]) / grid.spacing[a]).ceil() + 1.0;
        (p.max(0.0) as usize).min(grid.counts[a] - 1)
    });
    let counts = [0, 1, 2].map(|a| (last_point[a] + 1).saturating_sub(first_point[a]).max(1));
    let origin = [0, 1, 2].map(|a| grid.origin[a] + first_point[a] as f64 * grid.spacing[a]);
    let Some(inverse) = invert3(linear) else {
        return WorldVolume {
            data: Array3::zeros((1, 1, 1)),
            origin,
            spacing: grid.spacing,
        };
    };
    let out = Array3::from_shape_fn((counts[0], counts[1], counts[2]), |(i, j, k)| {
        let world = [
            origin[0] + i as f64 * grid.spacing[0] - translation[0],
            origin[1] + j as f64 * grid.spacing[1] - translation[1],
            origin[2] + k as f64 * grid.spacing[2] - translation[2],
        ];
        let index = [0, 1, 2].map(|r| (0..3).map(|c| inverse[r][c] * world[c]).sum::<f64>());
        trilinear(&part, start, full_shape, index)
    });
    WorldVolume {
        data: out,
        origin,
        spacing: grid.spacing,
    }
}

/// Trilinear interpolation of the full array at continuous `index`, from the `part` of it
/// that starts at `start` (elsewhere the array is 0). As vtkImageReslice with its default
/// border: points up to half a voxel outside the array take the value at its edge, points
/// further out are 0.
fn trilinear(
    part: &ArrayView3<f32>,
    start: [usize; 3],
    full_shape: [usize; 3],
    index: [f64; 3],
) -> f32 {
    const BORDER_TOLERANCE: f64 = 0.5;
    let mut base = [0usize; 3];
    let mut frac = [0f64; 3];
    for a in 0..3 {
        let last = full_shape[a].saturating_sub(1) as f64;
        if !(index[a] >= -BORDER_TOLERANCE && index[a] <= last + BORDER_TOLERANCE) {
            return 0.0;
        }
        let x = index[a].clamp(0.0, last);
        base[a] = (x.floor() as usize).min(full_shape[a].saturating_sub(2));
        frac[a] = x - base[a] as f64;
    }
    let part_shape = part.shape();
    let mut sum = 0.0;
    for corner in 0..8 {
        let mut weight = 1.0;
        let mut at = [0usize; 3];
        for a in 0..3 {
            let upper = corner >> a & 1 == 1;
            if full_shape[a] == 1 && upper {
                weight = 0.0;
            }
            let p = base[a] + usize::from(upper && full_shape[a] > 1);
            weight *= if upper { frac[a] } else { 1.0 - frac[a] };
            at[a] = p;
        }
        if weight == 0.0 {
            continue;
        }
        let local = [0, 1, 2].map(|a| at[a].checked_sub(start[a]));
        if let [Some(i), Some(j), Some(k)] = local {
            if i < part_shape[0] && j < part_shape[1] && k < part_shape[2] {
                sum += weight * f64::from(part[[i, j, k]]);
            }
        }
    }
    sum as f32
}

fn invert3(m: [[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det == 0.0 || !det.is_finite() {
        return None;
    }
    let cofactor =
        |r0: usize, r1: usize, c0: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    Some([
        [
            cofactor(1, 2, 1, 2) / det,
            -cofactor(0, 2, 1, 2) / det,
            cofactor(0, 1, 1, 2) / det,
        ],
        [
            -cofactor(1, 2, 0, 2) / det,
            cofactor(0, 2, 0, 2) / det,
            -cofactor(0, 1, 0, 2) / det,
        ],
        [
            cofactor(1, 2, 0, 1) / det,
            -cofactor(0, 2, 0, 1) / det,
            cofactor(0, 1, 0, 1) / det,
        ],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    #[test]
    fn diagonal_affine_keeps_the_grid() {
        let data = Array3::from_shape_fn((3, 4, 5), |(i, j, k)| (i * 100 + j * 10 + k) as f32);
        let affine = [
            [1.5, 0.0, 0.0, -10.0],
            [0.0, 2.0, 0.0, 5.0],
            [0.0, 0.0, 3.0, 7.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let out = reslice(data.view(), &affine);
        assert_eq!(out.data, data);
        assert_eq!(out.origin, [-10.0, 5.0, 7.0]);
        assert_eq!(out.spacing, [1.5, 2.0, 3.0]);
    }

    #[test]
    fn a_swapped_flipped_affine_moves_voxels_to_their_world_points() {
        // World x = 2 * j, world y = -i (flipped), world z = k. As in VTK, output axis a takes
        // the length of column a as its spacing: x every 1 (so halfway points are
        // interpolated), y every 2.
        let data = Array3::from_shape_fn((3, 4, 2), |(i, j, k)| (i * 100 + j * 10 + k) as f32);
        let affine = [
            [0.0, 2.0, 0.0, 0.0],
            [-1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let out = reslice(data.view(), &affine);
        assert_eq!(out.spacing, [1.0, 2.0, 1.0]);
        assert_eq!(out.origin, [0.0, -2.0, 0.0]);
        assert_eq!(out.data.shape(), &[7, 2, 2]);
        for ((x, y, z), &v) in out.data.indexed_iter() {
            // Output point (x, y, z) is world (x, 2y - 2, z): j = x / 2, i = 2 - 2y, k = z.
            let i = 2 - 2 * y;
            let expected = if x % 2 == 0 {
                data[[i, x / 2, z]]
            } else {
                (data[[i, x / 2, z]] + data[[i, x / 2 + 1, z]]) / 2.0
            };
            assert_eq!(v, expected, "at {x} {y} {z}");
        }
    }

    #[test]
    fn a_part_reslices_as_the_same_points_of_the_whole() {
        let rotation = 0.3f64;
        let affine = [
            [2.0 * rotation.cos(), -2.0 * rotation.sin(), 0.0, 4.0],
            [2.0 * rotation.sin(), 2.0 * rotation.cos(), 0.0, -3.0],
            [0.0, 0.0, 1.5, 1.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let mut full = Array3::<f32>::zeros((9, 8, 5));
        let start = [3, 2, 1];
        let part = Array3::from_shape_fn((4, 3, 3), |(i, j, k)| 10.0 + (i * 9 + j * 3 + k) as f32);
        full.slice_mut(ndarray::s![3..7, 2..5, 1..4]).assign(&part);
        let whole = reslice(full.view(), &affine);
        let piece = reslice_part(part.view(), start, [9, 8, 5], &affine);
        assert_eq!(piece.spacing, whole.spacing);
        let offset = [0, 1, 2].map(|a| (piece.origin[a] - whole.origin[a]) / whole.spacing[a]);
        assert!(
            offset.iter().all(|o| (o - o.round()).abs() < 1e-9),
            "{offset:?}"
        );
        let offset = offset.map(|o| o.round() as usize);
        for ((i, j, k), &v) in piece.data.indexed_iter() {
            assert_eq!(v, whole.data[[i + offset[0], j + offset[1], k + offset[2]]]);
        }
        // Nothing non-zero of the whole lies outside the piece.
        let inside: f32 = piece.data.sum();
        assert!((whole.data.sum() - inside).abs() < 1e-3 * inside);
    }

    #[test]
    fn points_half_a_voxel_outside_take_the_edge_value() {
        let data = Array3::<f32>::from_elem((2, 2, 2), 7.0);
        assert_eq!(
            trilinear(&data.view(), [0; 3], [2, 2, 2], [-0.4, 0.5, 1.4]),
            7.0
        );
        assert_eq!(
            trilinear(&data.view(), [0; 3], [2, 2, 2], [-0.6, 0.5, 0.5]),
            0.0
        );
        assert_eq!(
            trilinear(&data.view(), [0; 3], [2, 2, 2], [0.5, 0.5, 1.6]),
            0.0
        );
    }
}
