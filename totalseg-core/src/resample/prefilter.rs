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
use ndarray::{Array3, ArrayView3, ArrayViewMut2, Axis};

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
            .for_each(|mut plane| filter_rows_direction(&mut plane)),
        // Lines along axis 1: each i-plane (j, k) is contiguous.
        1 => coeffs
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|mut plane| filter_rows_direction(&mut plane)),
        // Lines along axis 2 are contiguous rows.
        _ => coeffs
            .axis_iter_mut(Axis(0))
            .into_par_iter()
            .for_each(|mut plane| {
                for mut row in plane.outer_iter_mut() {
                    match row.as_slice_mut() {
                        Some(line) => filter_line(line),
                        None => {
                            let mut line = row.to_vec();
                            filter_line(&mut line);
                            row.assign(&ndarray::ArrayView1::from(&line[..]));
                        }
                    }
                }
            }),
    }
}

/// `apply_filter` on one line, in place (cubic: one pole; reflect initial conditions).
fn filter_line(c: &mut [f64]) {
    let n = c.len();
    let z = CUBIC_POLE;
    let gain = (1.0 - z) * (1.0 - 1.0 / z);
    for v in c.iter_mut() {
        *v *= gain;
    }
    // _init_causal_reflect as in scipy <= 1.17: for i = n-1 the loop reads c[0] back after
    // accumulating into it (scipy 1.18 accumulates separately, rounding differently).
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
    // _init_anticausal_reflect
    c[n - 1] *= z / (z - 1.0);
    for i in (0..n - 1).rev() {
        c[i] = z * (c[i + 1] - c[i]);
    }
}

/// [`filter_line`] applied to every column of `plane` (lines run along the rows index),
/// with the arithmetic vectorised across the contiguous columns.
fn filter_rows_direction(plane: &mut ArrayViewMut2<'_, f64>) {
    let n = plane.nrows();
    let z = CUBIC_POLE;
    let gain = (1.0 - z) * (1.0 - 1.0 / z);
    plane.mapv_inplace(|v| v * gain);
    let z_n = z.powf(n as f64);
    let first_scale = z / (1.0 - z_n * z_n);
    let last_scale = z / (z - 1.0);

    let c0: Vec<f64> = plane.row(0).to_vec();
    {
        let (mut first, last) = plane.multi_slice_mut((ndarray::s![0, ..], ndarray::s![n - 1, ..]));
        first.zip_mut_with(&last, |f, &l| *f += z_n * l);
    }
    let mut z_i = z;
    for i in 1..n {
        // c[0] += z_i * (c[i] + z_n * c[n-1-i]).
        let (mut first, rest) = plane.view_mut().split_at(Axis(0), 1);
        let a = rest.row(i - 1);
        if i == n - 1 {
            // c[n-1-i] is c[0] itself, already accumulated into (scipy <= 1.17 reads it
            // in place; 1.18 changed this).
            ndarray::Zip::from(first.row_mut(0))
                .and(&a)
                .for_each(|f, &ci| {
                    *f += z_i * (ci + z_n * *f);
                });
        } else {
            let b = rest.row(n - 2 - i);
            ndarray::Zip::from(first.row_mut(0))
                .and(&a)
                .and(&b)
                .for_each(|f, &ci, &cm| {
                    *f += z_i * (ci + z_n * cm);
                });
        }
        z_i *= z;
    }
    {
        let mut first = plane.row_mut(0);
        ndarray::Zip::from(&mut first)
            .and(&c0[..])
            .for_each(|f, &orig| {
                *f *= first_scale;
                *f += orig;
            });
    }
    for i in 1..n {
        let (prev, mut cur) = plane.multi_slice_mut((ndarray::s![i - 1, ..], ndarray::s![i, ..]));
        cur.zip_mut_with(&prev, |c, &p| *c += z * p);
    }
    plane.row_mut(n - 1).mapv_inplace(|v| v * last_scale);
    for i in (0..n - 1).rev() {
        let (mut cur, next) = plane.multi_slice_mut((ndarray::s![i, ..], ndarray::s![i + 1, ..]));
        cur.zip_mut_with(&next, |c, &nx| *c = z * (nx - *c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn row_direction_filter_matches_line_filter_bitwise() {
        let n = 17;
        let plane = Array2::from_shape_fn((n, 5), |(i, k)| ((i * 7 + k * 13) % 11) as f64 - 4.5);
        let mut by_rows = plane.clone();
        filter_rows_direction(&mut by_rows.view_mut());
        for k in 0..5 {
            let mut line: Vec<f64> = plane.column(k).to_vec();
            filter_line(&mut line);
            for i in 0..n {
                assert_eq!(line[i].to_bits(), by_rows[[i, k]].to_bits(), "i {i} k {k}");
            }
        }
    }

    #[test]
    fn filtered_constant_line_stays_constant() {
        let mut line = vec![3.0; 30];
        filter_line(&mut line);
        for v in line {
            assert!((v - 3.0).abs() < 1e-12);
        }
    }
}
