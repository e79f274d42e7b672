//! scipy's cubic B-spline prefilter for `mode="nearest"`: the input is edge-padded by 12 voxels
//! (`_prepad_for_spline_filter`), converted to float64, then filtered along each axis in turn
//! (`spline_filter` -> `NI_SplineFilter1D` -> `apply_filter` with the "reflect" initial
//! conditions that scipy uses for `nearest`).
//!
//! Every line sees exactly scipy's sequence of floating-point operations. To stay
//! cache-friendly, lines along the outer axes are filtered many at a time (the recursion runs
//! over rows while the arithmetic runs across the contiguous last axis); that interleaves lines
//! but does not change any line's arithmetic.

use ndarray::parallel::prelude::*;
use ndarray::{s, Array3, ArrayView3, ArrayViewMut2, Axis};

use super::Voxel;

/// Padding scipy adds before spline-filtering in `nearest` mode.
pub(crate) const SPLINE_PREPAD: usize = 12;

/// The pole of the cubic B-spline, `sqrt(3) - 2` (scipy's literal
/// `-0.267949192431122706472553658494127633` rounds to this f64).
const CUBIC_POLE: f64 = -0.2679491924311227;

/// Edge-pads `input` by [`SPLINE_PREPAD`] along the axes in `axes` and runs the cubic spline
/// prefilter along those axes (ascending). Returns the float64 coefficients.
pub(crate) fn cubic_coefficients<T: Voxel>(
    input: ArrayView3<'_, T>,
    axes: [bool; 3],
) -> Array3<f64> {
    let mut coeffs = edge_padded(input, axes);
    for (axis, &filter) in axes.iter().enumerate() {
        if filter && coeffs.len_of(Axis(axis)) > 1 {
            filter_axis(&mut coeffs, axis);
        }
    }
    coeffs
}

/// `np.pad(input.astype(float64), pad, mode="edge")` on the selected axes.
fn edge_padded<T: Voxel>(input: ArrayView3<'_, T>, axes: [bool; 3]) -> Array3<f64> {
    let pad = axes.map(|p| if p { SPLINE_PREPAD } else { 0 });
    let (n0, n1, n2) = input.dim();
    let in_dims = [n0, n1, n2];
    let shape = [n0 + 2 * pad[0], n1 + 2 * pad[1], n2 + 2 * pad[2]];
    let src = |axis: usize, i: usize| -> usize {
        (i as i64 - pad[axis] as i64).clamp(0, in_dims[axis] as i64 - 1) as usize
    };
    let mut out = Array3::<f64>::zeros(shape);
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut plane)| {
            let si = src(0, i);
            for (j, mut row) in plane.outer_iter_mut().enumerate() {
                let sj = src(1, j);
                let in_row = input.slice(ndarray::s![si, sj, ..]);
                for (k, v) in row.iter_mut().enumerate() {
                    *v = in_row[src(2, k)].to_f64();
                }
            }
        });
    out
}

fn filter_axis(coeffs: &mut Array3<f64>, axis: usize) {
    match axis {
        // Lines along axis 0: for each j the plane (i, k) has contiguous rows along k.
        0 => coeffs
            .axis_iter_mut(Axis(1))
            .into_par_iter()
            .for_each(|plane| filter_columns(&mut row_slices(plane))),
        // Lines along axis 1: each i-plane (j, k) is contiguous.
        1 => coeffs
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|plane| filter_columns(&mut row_slices(plane))),
        // Lines along axis 2 are contiguous rows. Each recursion is a serial chain, so rows are
        // transposed in groups into a small buffer where the chains of a group run side by side.
        _ => coeffs
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|mut plane| {
                let n = plane.ncols();
                let mut buffer = vec![0.0; n * LINE_GROUP];
                let mut start = 0;
                while start < plane.nrows() {
                    let width = LINE_GROUP.min(plane.nrows() - start);
                    let mut group = plane.slice_mut(s![start..start + width, ..]);
                    for (j, line) in group.outer_iter().enumerate() {
                        for (i, &v) in line.iter().enumerate() {
                            buffer[i * width + j] = v;
                        }
                    }
                    let mut rows: Vec<&mut [f64]> =
                        buffer[..n * width].chunks_exact_mut(width).collect();
                    filter_columns(&mut rows);
                    for (j, mut line) in group.outer_iter_mut().enumerate() {
                        for (i, v) in line.iter_mut().enumerate() {
                            *v = buffer[i * width + j];
                        }
                    }
                    start += width;
                }
            }),
    }
}

/// Lines filtered side by side when the lines run along the contiguous axis.
const LINE_GROUP: usize = 8;

/// The rows of a plane whose rows are contiguous (true for every plane of a standard-layout
/// array sliced along axis 0 or 1).
fn row_slices(plane: ArrayViewMut2<'_, f64>) -> Vec<&mut [f64]> {
    plane
        .into_outer_iter_mut()
        .map(|row| {
            row.into_slice()
                .unwrap_or_else(|| unreachable!("rows of a C-order array are contiguous"))
        })
        .collect()
}

/// scipy's `apply_filter` (cubic: one pole, reflect initial conditions) on every column of
/// `rows`: each column is one line, `rows[i][k]` its element `i`. Every column goes through
/// exactly the operations of a single line in scipy <= 1.17, including the causal
/// initialisation reading `c[0]` back after accumulating into it (scipy 1.18 accumulates
/// separately, which rounds differently).
fn filter_columns(rows: &mut [&mut [f64]]) {
    let n = rows.len();
    if n < 2 {
        return;
    }
    let z = CUBIC_POLE;
    let gain = (1.0 - z) * (1.0 - 1.0 / z);
    for row in rows.iter_mut() {
        for v in row.iter_mut() {
            *v *= gain;
        }
    }
    // _init_causal_reflect
    let z_n = z.powf(n as f64);
    let first_scale = z / (1.0 - z_n * z_n);
    let c0: Vec<f64> = rows[0].to_vec();
    {
        let (first, rest) = rows.split_at_mut(1);
        for (f, &l) in first[0].iter_mut().zip(rest[n - 2].iter()) {
            *f += z_n * l;
        }
    }
    let mut z_i = z;
    for i in 1..n {
        let (first, rest) = rows.split_at_mut(1);
        let ci = &rest[i - 1];
        if i == n - 1 {
            // c[n-1-i] is c[0] itself, already accumulated into.
            for (f, &a) in first[0].iter_mut().zip(ci.iter()) {
                *f += z_i * (a + z_n * *f);
            }
        } else {
            let cm = &rest[n - 2 - i];
            for ((f, &a), &b) in first[0].iter_mut().zip(ci.iter()).zip(cm.iter()) {
                *f += z_i * (a + z_n * b);
            }
        }
        z_i *= z;
    }
    for (f, &orig) in rows[0].iter_mut().zip(c0.iter()) {
        *f *= first_scale;
        *f += orig;
    }
    // Causal recursion.
    for i in 1..n {
        let (done, todo) = rows.split_at_mut(i);
        for (c, &p) in todo[0].iter_mut().zip(done[i - 1].iter()) {
            *c += z * p;
        }
    }
    // _init_anticausal_reflect, then the anti-causal recursion.
    let last_scale = z / (z - 1.0);
    for v in rows[n - 1].iter_mut() {
        *v *= last_scale;
    }
    for i in (0..n - 1).rev() {
        let (lo, hi) = rows.split_at_mut(i + 1);
        for (c, &nx) in lo[i].iter_mut().zip(hi[0].iter()) {
            *c = z * (nx - *c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// scipy 1.17's `apply_filter` for one cubic line, transcribed literally from C.
    fn scipy_line(c: &mut [f64]) {
        let n = c.len();
        let z = CUBIC_POLE;
        let gain = (1.0 - z) * (1.0 - 1.0 / z);
        for v in c.iter_mut() {
            *v *= gain;
        }
        let z_n = z.powf(n as f64);
        let c0 = c[0];
        c[0] += z_n * c[n - 1];
        let mut z_i = z;
        for i in 1..n {
            c[0] += z_i * (c[i] + z_n * c[n - 1 - i]);
            z_i *= z;
        }
        c[0] *= z / (1.0 - z_n * z_n);
        c[0] += c0;
        for i in 1..n {
            c[i] += z * c[i - 1];
        }
        c[n - 1] *= z / (z - 1.0);
        for i in (0..n - 1).rev() {
            c[i] = z * (c[i + 1] - c[i]);
        }
    }

    #[test]
    fn column_filter_matches_scipy_line_filter_bitwise() {
        for n in [2, 3, 17, 40] {
            let plane =
                Array2::from_shape_fn((n, 5), |(i, k)| ((i * 7 + k * 13) % 11) as f64 - 4.5);
            let mut by_columns = plane.clone();
            filter_columns(&mut row_slices(by_columns.view_mut()));
            for k in 0..5 {
                let mut line: Vec<f64> = plane.column(k).to_vec();
                scipy_line(&mut line);
                for i in 0..n {
                    assert_eq!(
                        line[i].to_bits(),
                        by_columns[[i, k]].to_bits(),
                        "n {n} i {i} k {k}"
                    );
                }
            }
        }
    }

    #[test]
    fn volume_prefilter_matches_line_by_line_filtering() {
        let input = Array3::from_shape_fn((3, 13, 5), |(i, j, k)| {
            ((i * 31 + j * 7 + k * 3) % 17) as i16 - 8
        });
        let got = cubic_coefficients(input.view(), [true, false, true]);
        let mut want = edge_padded(input.view(), [true, false, true]);
        for axis in [0, 2] {
            for mut lane in want.lanes_mut(Axis(axis)) {
                let mut line = lane.to_vec();
                scipy_line(&mut line);
                lane.assign(&ndarray::ArrayView1::from(&line[..]));
            }
        }
        assert_eq!(got.dim(), (3 + 24, 13, 5 + 24));
        assert!(got
            .iter()
            .zip(want.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn filtered_constant_line_stays_constant() {
        let mut plane = Array2::from_elem((30, 1), 3.0);
        filter_columns(&mut row_slices(plane.view_mut()));
        assert!(plane.iter().all(|v| (v - 3.0).abs() < 1e-12));
    }
}
