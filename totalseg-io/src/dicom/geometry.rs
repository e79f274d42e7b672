//! Slice geometry as dicom2nifti (the converter TotalSegmentator 2.18 calls) handles it:
//! slice sorting, the series checks, the voxel-to-world affine and the reorientation to
//! LAS storage order. Pure functions on positions and orientations; the tolerances are
//! dicom2nifti's (`numpy.allclose` with its `rtol`/`atol`).

use crate::nifti::Affine;

/// `numpy.allclose(a, b, rtol, atol)`: `|a - b| <= atol + rtol * |b|` for every element.
pub fn allclose(a: &[f64], b: &[f64], rtol: f64, atol: f64) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= atol + rtol * y.abs())
}

/// The order dicom2nifti's `sort_dicoms` puts slices in: ascending along the patient axis
/// (x, y or z of ImagePositionPatient) whose positions span the most, ties going to x, then
/// y (stable sort, so equal positions keep their reading order).
pub fn sort_order(positions: &[[f64; 3]]) -> Vec<usize> {
    let sorted_along = |axis: usize| {
        let mut idx: Vec<usize> = (0..positions.len()).collect();
        idx.sort_by(|&a, &b| positions[a][axis].total_cmp(&positions[b][axis]));
        idx
    };
    let [by_x, by_y, by_z] = [0, 1, 2].map(sorted_along);
    let span = |idx: &[usize], axis: usize| match (idx.first(), idx.last()) {
        (Some(&f), Some(&l)) => (positions[l][axis] - positions[f][axis]).abs(),
        _ => 0.0,
    };
    let (dx, dy, dz) = (span(&by_x, 0), span(&by_y, 1), span(&by_z, 2));
    if dx >= dy && dx >= dz {
        by_x
    } else if dy >= dx && dy >= dz {
        by_y
    } else {
        by_z
    }
}

/// Groups slices by orientation (dicom2nifti's `remove_localizers_by_orientation`): with more
/// than one orientation, the groups of fewer than 4 slices (localizers) are dropped. Returns
/// the indices kept, in input order.
pub fn drop_orientation_outliers(orientations: &[[f64; 6]]) -> Vec<usize> {
    let mut groups: Vec<([f64; 6], Vec<usize>)> = Vec::new();
    for (i, o) in orientations.iter().enumerate() {
        let found = groups.iter_mut().find(|(g, _)| {
            allclose(&o[..3], &g[..3], 0.001, 0.001) && allclose(&o[3..], &g[3..], 0.001, 0.001)
        });
        match found {
            Some((_, members)) => members.push(i),
            None => groups.push((*o, vec![i])),
        }
    }
    if groups.len() <= 1 {
        return (0..orientations.len()).collect();
    }
    let mut kept: Vec<usize> = groups
        .into_iter()
        .filter(|(_, m)| m.len() >= 4)
        .flat_map(|(_, m)| m)
        .collect();
    kept.sort_unstable();
    kept
}

/// The first slice whose orientation differs from slice 0's (dicom2nifti's
/// `validate_orientation`), if any.
pub fn first_orientation_mismatch(orientations: &[[f64; 6]]) -> Option<usize> {
    let first = orientations.first()?;
    orientations.iter().position(|o| {
        !(allclose(&o[..3], &first[..3], 0.001, 0.001)
            && allclose(&o[3..], &first[3..], 0.001, 0.001))
    })
}

/// dicom2nifti's `is_orthogonal`: the stacking direction (first to last slice) must be the
/// slice normal or its opposite within `rtol = atol = 0.05`. Returns `(normal, stacking)`
/// when it is not.
pub fn stacking_mismatch(
    orientation: &[f64; 6],
    first: &[f64; 3],
    last: &[f64; 3],
) -> Option<([f64; 3], [f64; 3])> {
    let normal = normalize(cross(row(orientation), col(orientation)));
    let stacking = normalize(sub(*last, *first));
    let neg = stacking.map(|v| -v);
    if allclose(&normal, &stacking, 0.05, 0.05) || allclose(&normal, &neg, 0.05, 0.05) {
        None
    } else {
        Some((normal, stacking))
    }
}

/// A break in the slice spacing found by [`first_increment_break`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IncrementBreak {
    /// Index (in the sorted order) of the slice before the break.
    pub before: usize,
    /// Index of the slice after it.
    pub after: usize,
    /// Length of the first increment, mm.
    pub expected_mm: f64,
    /// Length of this increment, mm.
    pub found_mm: f64,
}

/// dicom2nifti's `validate_slice_increment` on sorted positions: every increment must be
/// the first one within `rtol = 0.05, atol = 0.1` (element-wise). Returns the first break.
pub fn first_increment_break(sorted: &[[f64; 3]]) -> Option<IncrementBreak> {
    if sorted.len() < 3 {
        return None;
    }
    let increment = sub(sorted[0], sorted[1]);
    for i in 2..sorted.len() {
        let current = sub(sorted[i - 1], sorted[i]);
        if !allclose(&increment, &current, 0.05, 0.1) {
            return Some(IncrementBreak {
                before: i - 1,
                after: i,
                expected_mm: norm(increment),
                found_mm: norm(current),
            });
        }
    }
    None
}

/// dicom2nifti's `create_affine` for sorted slices: columns = row direction x column
/// spacing, column direction x row spacing, the mean step from first to last slice; origin
/// = first slice's position; x and y negated (DICOM LPS to NIfTI RAS). `None` if all slices
/// are at one position.
///
/// `pixel_spacing` is DICOM's `(row spacing, column spacing)`.
pub fn series_affine(
    orientation: &[f64; 6],
    pixel_spacing: [f64; 2],
    first: &[f64; 3],
    last: &[f64; 3],
    slices: usize,
    slice_thickness: Option<f64>,
) -> Option<Affine> {
    let (o1, o2) = (row(orientation), col(orientation));
    let (delta_r, delta_c) = (pixel_spacing[0], pixel_spacing[1]);
    let step = if slices == 1 {
        let t = slice_thickness.unwrap_or(1.0);
        cross(o1, o2).map(|v| -v * t)
    } else {
        let d = 1.0 - slices as f64;
        [
            (first[0] - last[0]) / d,
            (first[1] - last[1]) / d,
            (first[2] - last[2]) / d,
        ]
    };
    if norm(step) == 0.0 {
        return None;
    }
    Some([
        [-o1[0] * delta_c, -o2[0] * delta_r, -step[0], -first[0]],
        [-o1[1] * delta_c, -o2[1] * delta_r, -step[1], -first[1]],
        [o1[2] * delta_c, o2[2] * delta_r, step[2], first[2]],
        [0.0, 0.0, 0.0, 1.0],
    ])
}

/// How dicom2nifti's `reorient_image` stores an image in LAS order: output axis `a` is
/// input axis `axes[a]`, reversed when `flip[a]`; `affine` is the new voxel-to-world map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LasReorientation {
    /// Input axis for each output axis.
    pub axes: [usize; 3],
    /// Whether each output axis runs backwards through its input axis.
    pub flip: [bool; 3],
    /// The affine of the reoriented image.
    pub affine: Affine,
}

/// dicom2nifti's `reorient_image` (via `ImageVolume`): the voxel axis closest to each world
/// axis is found from the inverse affine (ties and clashes resolved as its
/// `__calc_most_likely_direction__` does), then the axes are permuted to x, y, z and
/// flipped so that x runs right-to-left, y posterior-to-anterior, z inferior-to-superior.
/// `None` for a singular affine.
pub fn las_reorientation(affine: &Affine, shape: [usize; 3]) -> Option<LasReorientation> {
    let inv = invert3(affine)?;
    // transformed_w = inverse @ e_w: how a unit step along world axis w moves in voxel space.
    let t = |w: usize| [inv[0][w], inv[1][w], inv[2][w]];
    let (tx, ty, tz) = (t(0), t(1), t(2));
    let [xc, yc, zc] = most_likely_components(tx, ty, tz);
    let flip = [tx[xc] >= 0.0, ty[yc] < 0.0, tz[zc] < 0.0];
    let axes = [xc, yc, zc];
    let mut out = [[0.0; 4]; 4];
    out[3][3] = 1.0;
    let mut point = [0.0, 0.0, 0.0, 1.0];
    for a in 0..3 {
        let sign = if flip[a] { -1.0 } else { 1.0 };
        for (r, out_row) in out.iter_mut().enumerate() {
            out_row[a] = sign * affine[r][axes[a]];
        }
        if flip[a] {
            point[axes[a]] = shape[axes[a]] as f64 - 1.0;
        }
    }
    for r in 0..4 {
        out[r][3] = (0..4).map(|c| affine[r][c] * point[c]).sum();
    }
    Some(LasReorientation {
        axes,
        flip,
        affine: out,
    })
}

/// `__calc_most_likely_direction__`: for each world axis the voxel axis with the largest
/// |component| (first on ties, like `numpy.argmax`); clashes keep the stronger axis and move
/// the weaker one to its next-best component (at most 10 rounds, as in dicom2nifti).
fn most_likely_components(tx: [f64; 3], ty: [f64; 3], tz: [f64; 3]) -> [usize; 3] {
    let mut dots = [tx.map(f64::abs), ty.map(f64::abs), tz.map(f64::abs)];
    let argmax = |d: &[f64; 3]| {
        let mut best = 0;
        for i in 1..3 {
            if d[i] > d[best] {
                best = i;
            }
        }
        best
    };
    let mut comp = [argmax(&dots[0]), argmax(&dots[1]), argmax(&dots[2])];
    let mut max = [dots[0][comp[0]], dots[1][comp[1]], dots[2][comp[2]]];
    let mut rounds = 0;
    while comp[0] == comp[1] || comp[0] == comp[2] || comp[1] == comp[2] {
        rounds += 1;
        for (a, b) in [(0usize, 1usize), (0, 2), (1, 2)] {
            if comp[a] == comp[b] {
                // Keep the stronger; the weaker (b on ties) moves to its next component.
                let weaker = if max[a] >= max[b] { b } else { a };
                dots[weaker][comp[weaker]] = 0.0;
                comp[weaker] = argmax(&dots[weaker]);
                max[weaker] = dots[weaker][comp[weaker]];
            }
        }
        if rounds >= 10 {
            break;
        }
    }
    comp
}

/// Inverse of the affine's 3x3 part (the translation does not affect directions).
fn invert3(a: &Affine) -> Option<[[f64; 3]; 3]> {
    let m = |r: usize, c: usize| a[r][c];
    let det = m(0, 0) * (m(1, 1) * m(2, 2) - m(1, 2) * m(2, 1))
        - m(0, 1) * (m(1, 0) * m(2, 2) - m(1, 2) * m(2, 0))
        + m(0, 2) * (m(1, 0) * m(2, 1) - m(1, 1) * m(2, 0));
    if !det.is_finite() || det == 0.0 {
        return None;
    }
    let mut inv = [[0.0; 3]; 3];
    for (r, inv_row) in inv.iter_mut().enumerate() {
        for (c, v) in inv_row.iter_mut().enumerate() {
            // Cofactor of (c, r) over det.
            let (r1, r2) = others(c);
            let (c1, c2) = others(r);
            let minor = m(r1, c1) * m(r2, c2) - m(r1, c2) * m(r2, c1);
            let sign = if (r + c) % 2 == 0 { 1.0 } else { -1.0 };
            *v = sign * minor / det;
        }
    }
    Some(inv)
}

fn others(i: usize) -> (usize, usize) {
    match i {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    }
}

fn row(o: &[f64; 6]) -> [f64; 3] {
    [o[0], o[1], o[2]]
}

fn col(o: &[f64; 6]) -> [f64; 3] {
    [o[3], o[4], o[5]]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `a x b`.
pub(crate) fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// `a . b`, summed left to right.
pub(crate) fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The slice normal of an ImageOrientationPatient: row direction x column direction.
pub(crate) fn slice_normal(orientation: &[f64; 6]) -> [f64; 3] {
    let [r0, r1, r2, c0, c1, c2] = *orientation;
    cross([r0, r1, r2], [c0, c1, c2])
}

fn norm(a: [f64; 3]) -> f64 {
    (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt()
}

fn normalize(a: [f64; 3]) -> [f64; 3] {
    let n = norm(a);
    a.map(|v| v / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AXIAL: [f64; 6] = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];

    #[test]
    fn sorting_follows_the_axis_with_the_largest_span() {
        let positions = [[0.0, 0.0, 4.0], [0.0, 0.0, -2.0], [0.1, 0.0, 1.0]];
        assert_eq!(sort_order(&positions), vec![1, 2, 0]);
        // A sagittal stack: x spans most.
        let sag = [[3.0, 1.0, 0.0], [1.0, 1.0, 0.0], [2.0, 1.0, 0.0]];
        assert_eq!(sort_order(&sag), vec![1, 2, 0]);
    }

    #[test]
    fn increments_use_numpys_allclose_tolerances() {
        let z = |v: f64| [0.0, 0.0, v];
        let even: Vec<_> = (0..6).map(|i| z(i as f64 * 2.0)).collect();
        assert_eq!(first_increment_break(&even), None);
        // Within atol 0.1 + rtol 0.05 * 2.0 = 0.2: accepted.
        let jitter = vec![z(0.0), z(2.0), z(4.19), z(6.19)];
        assert_eq!(first_increment_break(&jitter), None);
        let gap = vec![z(0.0), z(2.0), z(4.0), z(8.0), z(10.0)];
        let b = first_increment_break(&gap).expect("gap");
        assert_eq!((b.before, b.after), (2, 3));
        assert_eq!((b.expected_mm, b.found_mm), (2.0, 4.0));
    }

    #[test]
    fn affine_matches_dicom2nifti_for_the_example_series() {
        // example_ct_dicom: first (sorted) slice at z = -804.5, last at -766.5, 20 slices.
        let first = [-249.51171875, -437.51171875, -804.5];
        let last = [-249.51171875, -437.51171875, -766.5];
        let a = series_affine(&AXIAL, [0.9765625, 0.9765625], &first, &last, 20, Some(3.0))
            .expect("volume");
        assert_eq!(a[0], [-0.9765625, -0.0, -0.0, 249.51171875]);
        assert_eq!(a[1], [-0.0, -0.9765625, -0.0, 437.51171875]);
        assert_eq!(a[2], [0.0, 0.0, 2.0, -804.5]);
        let las = las_reorientation(&a, [512, 512, 20]).expect("invertible");
        assert_eq!(las.axes, [0, 1, 2]);
        assert_eq!(las.flip, [false, true, false]);
        // The affine dicom2nifti writes for this series (read back with nibabel).
        assert_eq!(las.affine[0], [-0.9765625, 0.0, 0.0, 249.51171875]);
        assert_eq!(las.affine[1], [0.0, 0.9765625, 0.0, -61.51171875]);
        assert_eq!(las.affine[2], [0.0, 0.0, 2.0, -804.5]);
    }

    #[test]
    fn coronal_slices_are_permuted_to_las() {
        // Rows along x, columns along -z, slices along y.
        let coronal = [1.0, 0.0, 0.0, 0.0, 0.0, -1.0];
        let a = series_affine(
            &coronal,
            [1.0, 1.0],
            &[0.0, 0.0, 0.0],
            &[0.0, 9.0, 0.0],
            10,
            None,
        )
        .expect("volume");
        let las = las_reorientation(&a, [4, 5, 10]).expect("invertible");
        assert_eq!(las.axes, [0, 2, 1]);
        // Every output axis must run L, A, S: x column negative, y positive, z positive.
        assert!(las.affine[0][0] < 0.0 && las.affine[1][1] > 0.0 && las.affine[2][2] > 0.0);
    }

    #[test]
    fn all_slices_at_one_position_is_not_a_volume() {
        let p = [1.0, 2.0, 3.0];
        assert!(series_affine(&AXIAL, [1.0, 1.0], &p, &p, 5, None).is_none());
    }

    #[test]
    fn localizers_and_tilts_are_detected() {
        let mut o = vec![AXIAL; 5];
        o.push([0.0, 1.0, 0.0, 0.0, 0.0, -1.0]);
        assert_eq!(drop_orientation_outliers(&o), vec![0, 1, 2, 3, 4]);
        assert_eq!(first_orientation_mismatch(&o), Some(5));
        assert_eq!(first_orientation_mismatch(&o[..5]), None);
        // 20 degrees of gantry tilt: stacking is not along the normal.
        let (s, c) = 20f64.to_radians().sin_cos();
        assert!(stacking_mismatch(&AXIAL, &[0.0; 3], &[0.0, s * 10.0, c * 10.0]).is_some());
        assert!(stacking_mismatch(&AXIAL, &[0.0; 3], &[0.0, 0.0, -10.0]).is_none());
    }
}
