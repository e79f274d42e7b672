//! Per-axis sampling tables: for every output index along one axis, the input indices of the
//! interpolation footprint and their spline weights, computed exactly as scipy's
//! `NI_ZoomShift` does for `mode="nearest"` (`ni_interpolation.c`, `ni_splines.c`).

use super::SplineOrder;

/// The footprint of every output index along one axis: `taps` input indices (already clamped
/// to the input, which is what `mode="nearest"` does to out-of-range taps) and their weights.
#[derive(Debug, Clone)]
pub(crate) struct AxisPlan {
    pub taps: usize,
    /// `out_len * taps` input indices.
    pub indices: Vec<usize>,
    /// `out_len * taps` weights; 1.0 where scipy multiplies by nothing (order 0), which is
    /// exact because `v * 1.0 == v` in IEEE arithmetic.
    pub weights: Vec<f64>,
}

impl AxisPlan {
    pub fn out_len(&self) -> usize {
        self.indices.len() / self.taps
    }

    /// An axis that is not resampled: output index `i` reads input index `i`, no weight.
    pub fn passthrough(len: usize) -> Self {
        AxisPlan {
            taps: 1,
            indices: (0..len).collect(),
            weights: vec![1.0; len],
        }
    }

    /// scipy's zoom mapping along one axis. `in_len` is the length of the (possibly
    /// pre-padded) array that is sampled, `nprepad` the padding added before index 0 of the
    /// original input, `zoom` the factor scipy recomputed from the shapes.
    pub fn zoom(
        in_len: usize,
        out_len: usize,
        zoom: f64,
        grid_mode: bool,
        order: SplineOrder,
        nprepad: usize,
    ) -> Self {
        let coordinates = (0..out_len).map(|kk| {
            let mut cc = kk as f64;
            if grid_mode {
                cc += 0.5;
                cc *= zoom;
                cc -= 0.5;
            } else {
                cc *= zoom;
            }
            cc + nprepad as f64
        });
        Self::at_coordinates(in_len, coordinates, order)
    }

    /// The footprints of explicit input coordinates along one axis (scipy's
    /// `map_coordinates` on a grid whose coordinates vary along this axis only).
    pub fn at_coordinates(
        in_len: usize,
        coordinates: impl ExactSizeIterator<Item = f64>,
        order: SplineOrder,
    ) -> Self {
        let taps = order.taps();
        let mut indices = Vec::with_capacity(coordinates.len() * taps);
        let mut weights = Vec::with_capacity(coordinates.len() * taps);
        let last = in_len as i64 - 1;
        for cc in coordinates {
            let start = footprint_start(cc, order);
            for hh in 0..taps as i64 {
                indices.push((start + hh).clamp(0, last) as usize);
            }
            weights.extend_from_slice(&spline_weights(cc, order)[..taps]);
        }
        AxisPlan {
            taps,
            indices,
            weights,
        }
    }
}

/// First input index of the footprint: `floor(cc) - order/2` for odd orders,
/// `floor(cc + 0.5) - order/2` for even ones (so order 0 rounds halves up).
fn footprint_start(cc: f64, order: SplineOrder) -> i64 {
    let o = order.as_u8() as i64;
    if o & 1 == 1 {
        cc.floor() as i64 - o / 2
    } else {
        (cc + 0.5).floor() as i64 - o / 2
    }
}

/// scipy's `get_spline_interpolation_weights` for orders 0, 1 and 3, operation for operation.
fn spline_weights(x: f64, order: SplineOrder) -> [f64; 4] {
    let mut w = [1.0, 0.0, 0.0, 0.0];
    match order {
        SplineOrder::Nearest => {}
        SplineOrder::Linear => {
            let x = x - x.floor();
            w[0] = 1.0 - x;
            w[1] = 1.0 - w[0];
        }
        SplineOrder::Cubic => {
            let x = x - x.floor();
            let y = x;
            let z = 1.0 - x;
            w[1] = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0;
            w[2] = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0;
            w[0] = z * z * z / 6.0;
            w[3] = 1.0 - w[0] - w[1] - w[2];
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order0_rounds_half_up_and_clamps() {
        // grid_mode=False, 4 -> 7: zoom 3/6 = 0.5, cc = 0, .5, 1, 1.5, 2, 2.5, 3
        let p = AxisPlan::zoom(4, 7, 0.5, false, SplineOrder::Nearest, 0);
        assert_eq!(p.indices, vec![0, 1, 1, 2, 2, 3, 3]);
        // grid_mode=True, 2 -> 4: cc = -0.25, 0.25, 0.75, 1.25
        let p = AxisPlan::zoom(2, 4, 0.5, true, SplineOrder::Nearest, 0);
        assert_eq!(p.indices, vec![0, 0, 1, 1]);
    }

    #[test]
    fn cubic_weights_sum_to_one_and_are_symmetric() {
        let w = spline_weights(0.5, SplineOrder::Cubic);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        // w[3] is 1 minus the others (scipy's way), so symmetry holds only to rounding.
        assert!((w[0] - w[3]).abs() < 1e-15);
        assert_eq!(w[1], w[2]);
        let w = spline_weights(3.0, SplineOrder::Cubic);
        assert_eq!(
            w,
            [
                1.0 / 6.0,
                4.0 / 6.0,
                1.0 / 6.0,
                1.0 - 1.0 / 6.0 - 4.0 / 6.0 - 1.0 / 6.0
            ]
        );
    }

    #[test]
    fn linear_footprint_clamps_at_the_far_edge() {
        let p = AxisPlan::zoom(3, 3, 1.0, false, SplineOrder::Linear, 0);
        assert_eq!(p.indices, vec![0, 1, 1, 2, 2, 2]);
        assert_eq!(p.weights, vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
    }
}
