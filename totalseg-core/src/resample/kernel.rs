//! The interpolation loop: every output voxel is the sum over its footprint (axis-0 taps
//! outermost, axis-2 taps innermost) of `((value * w0) * w1) * w2`, added to a float64
//! accumulator that starts at 0.0: scipy's `NI_ZoomShift` operation for operation, so that
//! results are bit-identical and integer casts truncate exactly where scipy's do.
//!
//! The loops are reordered for speed without changing any voxel's sequence of operations:
//! a whole output row is accumulated at once, one input row (fixed axis-0 and axis-1 taps)
//! at a time, in footprint order. Output planes run in parallel.

use ndarray::parallel::prelude::*;
use ndarray::{Array3, ArrayView3, Axis};
use rayon::iter::IndexedParallelIterator;

use super::axis_plan::AxisPlan;
use super::Voxel;

/// Resamples `input` (standard layout) with one plan per axis; `finish` turns each float64
/// sum into the output element, given the output index.
pub(crate) fn interpolate<T, O, F>(
    input: ArrayView3<'_, T>,
    plans: &[AxisPlan; 3],
    finish: F,
) -> Array3<O>
where
    T: Voxel,
    O: Copy + Send + Sync + Default,
    F: Fn([usize; 3], f64) -> O + Sync,
{
    let out_shape = [plans[0].out_len(), plans[1].out_len(), plans[2].out_len()];
    let mut out = Array3::<O>::default(out_shape);
    interpolate_rows(
        input,
        plans,
        out.axis_iter_mut(Axis(0)).into_par_iter(),
        |plane, a, b, sums| {
            for (c, (o, &t)) in plane.row_mut(b).iter_mut().zip(sums).enumerate() {
                *o = finish([a, b, c], t);
            }
        },
    );
    out
}

/// The interpolation, handing each finished output row of float64 sums to
/// `visit(plane, a, b, sums)`: `planes` yields one mutable state per output plane along axis 0
/// (e.g. rows of arrays the caller updates in place), in order.
pub(crate) fn interpolate_rows<T, S, P, V>(
    input: ArrayView3<'_, T>,
    plans: &[AxisPlan; 3],
    planes: P,
    visit: V,
) where
    T: Voxel,
    S: Send,
    P: IndexedParallelIterator<Item = S>,
    V: Fn(&mut S, usize, usize, &[f64]) + Sync,
{
    assert_eq!(
        planes.len(),
        plans[0].out_len(),
        "one state per output plane"
    );
    let input = input.as_standard_layout();
    let Some(flat) = input.as_slice() else {
        unreachable!("standard layout arrays are contiguous")
    };
    let (_, n1, n2) = input.dim();
    let (p0, p1, p2) = (&plans[0], &plans[1], &plans[2]);
    let (out1, out2) = (p1.out_len(), p2.out_len());
    let idx2 = &p2.indices[..];
    let w2 = &p2.weights[..];
    // Each `(value * wa) * wb` is the same whichever output voxel uses it: when the row's
    // values are used more often than once on average (upsampling, wide footprints), they
    // are multiplied once per input row instead of once per use. Same operations, same bits.
    let premultiply = n2 < idx2.len();

    planes.enumerate().for_each(|(a, mut state)| {
        let mut acc = vec![0.0f64; out2];
        let mut products = vec![0.0f64; if premultiply { n2 } else { 0 }];
        for b in 0..out1 {
            acc.fill(0.0);
            for ta in 0..p0.taps {
                let ia = p0.indices[a * p0.taps + ta];
                let wa = p0.weights[a * p0.taps + ta];
                for tb in 0..p1.taps {
                    let ib = p1.indices[b * p1.taps + tb];
                    let wb = p1.weights[b * p1.taps + tb];
                    let row = &flat[(ia * n1 + ib) * n2..(ia * n1 + ib + 1) * n2];
                    if premultiply {
                        for (p, v) in products.iter_mut().zip(row) {
                            *p = (v.to_f64() * wa) * wb;
                        }
                        accumulate(p2.taps, &mut acc, idx2, w2, |i| products[i]);
                    } else {
                        accumulate(p2.taps, &mut acc, idx2, w2, |i| (row[i].to_f64() * wa) * wb);
                    }
                }
            }
            visit(&mut state, a, b, &acc);
        }
    });
}

/// Adds `value(input index) * weight` over the last axis' taps to each output of `acc`
/// (`value` is `(v * wa) * wb`, computed here or taken from the premultiplied row).
#[inline(always)]
fn accumulate(
    taps: usize,
    acc: &mut [f64],
    idx2: &[usize],
    w2: &[f64],
    value: impl Fn(usize) -> f64,
) {
    match taps {
        1 => accumulate_taps::<1>(acc, idx2, w2, value),
        2 => accumulate_taps::<2>(acc, idx2, w2, value),
        _ => accumulate_taps::<4>(acc, idx2, w2, value),
    }
}

#[inline(always)]
fn accumulate_taps<const TAPS2: usize>(
    acc: &mut [f64],
    idx2: &[usize],
    w2: &[f64],
    value: impl Fn(usize) -> f64,
) {
    for ((t, idx), w) in acc
        .iter_mut()
        .zip(idx2.chunks_exact(TAPS2))
        .zip(w2.chunks_exact(TAPS2))
    {
        let mut sum = *t;
        for tc in 0..TAPS2 {
            sum += value(idx[tc]) * w[tc];
        }
        *t = sum;
    }
}

/// Order-0 resampling as a plain gather: scipy's result for one tap is `0.0 + value`, which
/// casts back to the value itself, so the element is copied without the float round trip.
pub(crate) fn gather<T>(input: ArrayView3<'_, T>, plans: &[AxisPlan; 3]) -> Array3<T>
where
    T: Copy + Send + Sync + Default,
{
    let out_shape = [plans[0].out_len(), plans[1].out_len(), plans[2].out_len()];
    let mut out = Array3::<T>::default(out_shape);
    let input = input.as_standard_layout();
    let Some(flat) = input.as_slice() else {
        unreachable!("standard layout arrays are contiguous")
    };
    let (_, n1, n2) = input.dim();
    let idx2 = &plans[2].indices[..];
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(a, mut plane)| {
            let ia = plans[0].indices[a];
            for (b, mut out_row) in plane.outer_iter_mut().enumerate() {
                let ib = plans[1].indices[b];
                let row = &flat[(ia * n1 + ib) * n2..(ia * n1 + ib + 1) * n2];
                for (o, &ic) in out_row.iter_mut().zip(idx2) {
                    *o = row[ic];
                }
            }
        });
    out
}
