//! The `vertebrae_pp` task's postprocessing (TotalSegmentator 2.18 `postprocessing.py`):
//! touching vertebra labels are split into connected bodies and relabelled anatomically,
//! then every vertebra is dilated back by the 3 mm its training labels were eroded.
//!
//! Arithmetic follows numpy's types: the spacings are the NIfTI zooms (float32), so radii,
//! the ellipsoid test and the voxel volume are float32 as in the Python code.

use ndarray::{s, Array3, ArrayView3};

use crate::morphology::{label_components, Connectivity};

/// `get_ellipsoid_structuring_element(voxel_spacing, radius_mm)`: the voxels `g` of
/// `np.ogrid[-r:r+1]` per axis (`r = radius_mm / spacing`, float32) with
/// `sum(g^2 / r^2) <= 1`. A radius of 0 or less gives the single voxel.
pub fn ellipsoid_structure(spacing: [f32; 3], radius_mm: f32) -> Array3<bool> {
    if radius_mm <= 0.0 {
        return Array3::from_elem((1, 1, 1), true);
    }
    let radii = spacing.map(|sp| radius_mm / sp);
    // np.ogrid[start:stop] with float32 bounds: ceil(stop - start) points start + i.
    let grid = |r: f32| -> Vec<f32> {
        let start = -r;
        let stop = r + 1.0;
        let n = f64::from(stop - start).ceil().max(0.0) as usize;
        (0..n).map(|i| i as f32 + start).collect()
    };
    let [g0, g1, g2] = radii.map(grid);
    let term = |g: f32, r: f32| (g * g) / (r * r);
    Array3::from_shape_fn((g0.len(), g1.len(), g2.len()), |(i, j, k)| {
        term(g0[i], radii[0]) + term(g1[j], radii[1]) + term(g2[k], radii[2]) <= 1.0
    })
}

/// `dilate_vertebrae_labels`: each label of `labels` (ascending) is dilated with the
/// ellipsoid of `dilation_mm`, into background voxels only (voxels taken by an earlier
/// label stay).
pub fn dilate_vertebrae_labels(
    data: ArrayView3<u8>,
    labels: &[u8],
    spacing: [f32; 3],
    dilation_mm: f32,
) -> Array3<u8> {
    let mut out = data.to_owned();
    if dilation_mm <= 0.0 {
        return out;
    }
    let structure = ellipsoid_structure(spacing, dilation_mm);
    let offsets: Vec<[isize; 3]> = structure
        .indexed_iter()
        .filter(|(_, &on)| on)
        .map(|((i, j, k), _)| {
            let (a, b, c) = structure.dim();
            [
                i as isize - (a / 2) as isize,
                j as isize - (b / 2) as isize,
                k as isize - (c / 2) as isize,
            ]
        })
        .collect();
    let radius_vox = spacing.map(|sp| f64::from(dilation_mm / sp).ceil() as usize);
    let shape = data.dim();
    let shape = [shape.0, shape.1, shape.2];
    let mut sorted: Vec<u8> = labels.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    for label in sorted {
        let Some((lo, hi)) = label_extent(data, label) else {
            continue;
        };
        let min: [usize; 3] = std::array::from_fn(|a| lo[a].saturating_sub(radius_vox[a]));
        let max: [usize; 3] = std::array::from_fn(|a| (hi[a] + radius_vox[a] + 1).min(shape[a]));
        let window = data.slice(s![min[0]..max[0], min[1]..max[1], min[2]..max[2]]);
        let (w0, w1, w2) = window.dim();
        let mut dilated = Array3::<bool>::from_elem((w0, w1, w2), false);
        for ((i, j, k), &v) in window.indexed_iter() {
            if v != label {
                continue;
            }
            for o in &offsets {
                let (x, y, z) = (i as isize + o[0], j as isize + o[1], k as isize + o[2]);
                if x >= 0
                    && y >= 0
                    && z >= 0
                    && (x as usize) < w0
                    && (y as usize) < w1
                    && (z as usize) < w2
                {
                    dilated[[x as usize, y as usize, z as usize]] = true;
                }
            }
        }
        let mut out_window = out.slice_mut(s![min[0]..max[0], min[1]..max[1], min[2]..max[2]]);
        ndarray::Zip::from(&mut out_window)
            .and(&dilated)
            .for_each(|o, &d| {
                if d && *o == 0 {
                    *o = label;
                }
            });
    }
    out
}

/// `postprocess_vertebrae_pp`: if no two different labels touch (face neighbours), only
/// [`dilate_vertebrae_labels`]. Otherwise the foreground's connected components of at least
/// `min_size_mm3` are relabelled from their centre's last index: upwards from the highest
/// label present (inferior first), or from C1 downwards for head-only scans (C1 present,
/// L5 absent); then dilated. `labels` are the task's `(label, name)` pairs.
pub fn postprocess_vertebrae_pp(
    data: ArrayView3<u8>,
    labels: &[(u8, &str)],
    min_size_mm3: f32,
    voxel_volume: f32,
    spacing: [f32; 3],
    dilation_mm: f32,
) -> Array3<u8> {
    let label_values: Vec<u8> = labels.iter().map(|(l, _)| *l).collect();
    if !labels_touch(data) {
        return dilate_vertebrae_labels(data, &label_values, spacing, dilation_mm);
    }
    let components = label_components(data.mapv(|v| v > 0).view(), Connectivity::Faces);
    let sizes = components.sizes();
    // numpy: int64 sizes * float32 voxel volume -> float64, compared with the threshold.
    let keep: Vec<usize> = (1..sizes.len())
        .filter(|&c| sizes[c] as f64 * f64::from(voxel_volume) >= f64::from(min_size_mm3))
        .collect();
    let zeros = || Array3::<u8>::zeros(data.raw_dim());
    if keep.is_empty() {
        return zeros();
    }
    let mut kept = vec![false; sizes.len()];
    for &c in &keep {
        kept[c] = true;
    }
    let mut present: Vec<u8> = data
        .iter()
        .zip(components.labels.iter())
        .filter(|(&v, &c)| v != 0 && kept[c as usize] && label_values.contains(&v))
        .map(|(&v, _)| v)
        .collect();
    present.sort_unstable();
    present.dedup();
    if present.is_empty() {
        return zeros();
    }
    let label_of = |name: &str| labels.iter().find(|(_, n)| *n == name).map(|(l, _)| *l);
    let (c1, l5) = (label_of("vertebrae_C1"), label_of("vertebrae_L5"));
    let l5_in_image = l5.is_some_and(|l| present.contains(&l));
    let count_from_top = !l5_in_image && c1.is_some_and(|l| present.contains(&l));

    // Centre of mass along the last axis: sum of k over the component's voxels / count.
    let mut k_sum = vec![0f64; sizes.len()];
    for ((_, _, k), &c) in components.labels.indexed_iter() {
        k_sum[c as usize] += k as f64;
    }
    let mut centres: Vec<(usize, f64)> = keep
        .iter()
        .map(|&c| (c, k_sum[c] / sizes[c] as f64))
        .collect();
    let max_label = label_values.iter().copied().max().unwrap_or(0);
    let min_label = label_values.iter().copied().min().unwrap_or(0);
    let assign: Vec<u8> = if count_from_top {
        centres.sort_by(|a, b| b.1.total_cmp(&a.1));
        let start = c1.unwrap_or(min_label);
        (start..=max_label).collect()
    } else {
        centres.sort_by(|a, b| a.1.total_cmp(&b.1));
        let top = present.last().copied().unwrap_or(0);
        (min_label..=top).rev().collect()
    };
    let mut new_label = vec![0u8; sizes.len()];
    for ((component, _), label) in centres.iter().zip(assign) {
        new_label[*component] = label;
    }
    let relabelled = components.labels.mapv(|c| new_label[c as usize]);
    dilate_vertebrae_labels(relabelled.view(), &label_values, spacing, dilation_mm)
}

/// `refine_vertebrae_pp_with_body_mask` (`vertebrae_pp_refined`, at the input's spacing):
/// the labels dilated by `dilation_mm` (see [`dilate_vertebrae_labels`]), then cleared
/// wherever the `vertebrae_body` model's output is not label 1.
pub fn refine_vertebrae_pp_with_body_mask(
    data: ArrayView3<u8>,
    body: ArrayView3<u8>,
    labels: &[u8],
    spacing: [f32; 3],
    dilation_mm: f32,
) -> Array3<u8> {
    let mut refined = dilate_vertebrae_labels(data, labels, spacing, dilation_mm);
    ndarray::Zip::from(&mut refined)
        .and(&body)
        .for_each(|v, &b| {
            if b != 1 {
                *v = 0;
            }
        });
    refined
}

/// `_multilabel_labels_touch`: two face neighbours with different non-zero labels.
fn labels_touch(data: ArrayView3<u8>) -> bool {
    let (a, b, c) = data.dim();
    let differ = |x: u8, y: u8| x > 0 && y > 0 && x != y;
    for i in 0..a {
        for j in 0..b {
            for k in 0..c {
                let v = data[[i, j, k]];
                if v == 0 {
                    continue;
                }
                if (i + 1 < a && differ(v, data[[i + 1, j, k]]))
                    || (j + 1 < b && differ(v, data[[i, j + 1, k]]))
                    || (k + 1 < c && differ(v, data[[i, j, k + 1]]))
                {
                    return true;
                }
            }
        }
    }
    false
}

/// Inclusive index bounds of `label`, `None` if absent.
fn label_extent(data: ArrayView3<u8>, label: u8) -> Option<([usize; 3], [usize; 3])> {
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    let mut any = false;
    for ((i, j, k), &v) in data.indexed_iter() {
        if v == label {
            any = true;
            for (a, x) in [i, j, k].into_iter().enumerate() {
                lo[a] = lo[a].min(x);
                hi[a] = hi[a].max(x);
            }
        }
    }
    any.then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ellipsoid_matches_numpy_for_isotropic_1_5_mm() {
        // get_ellipsoid_structuring_element((1.5,)*3, 3): a 5x5x5 ball of radius 2 voxels.
        let e = ellipsoid_structure([1.5; 3], 3.0);
        assert_eq!(e.dim(), (5, 5, 5));
        assert_eq!(e.iter().filter(|&&v| v).count(), 33);
        // Anisotropic: numpy gives (5, 5, 4) with 20 voxels for (1.5, 1.5, 2.0).
        let e = ellipsoid_structure([1.5, 1.5, 2.0], 3.0);
        assert_eq!(e.dim(), (5, 5, 4));
        assert_eq!(e.iter().filter(|&&v| v).count(), 20);
        assert_eq!(ellipsoid_structure([1.0; 3], 0.0).dim(), (1, 1, 1));
    }

    #[test]
    fn dilation_fills_only_background() {
        let mut data = Array3::<u8>::zeros((7, 7, 7));
        data[[3, 3, 3]] = 2;
        data[[3, 3, 5]] = 1;
        let out = dilate_vertebrae_labels(data.view(), &[1, 2], [1.5; 3], 3.0);
        // Label 1 first: it takes the voxels between the two; the original 2 stays.
        assert_eq!(out[[3, 3, 4]], 1);
        assert_eq!(out[[3, 3, 3]], 2);
        assert_eq!(out[[3, 3, 1]], 2);
        assert_eq!(out[[3, 3, 0]], 0);
    }
}
