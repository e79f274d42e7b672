//! `scipy.ndimage.map_coordinates(input, np.meshgrid(c0, c1, c2, indexing="ij"), order,
//! mode="nearest")`: interpolation at the points of an axis-aligned grid, with the same
//! footprints, weights and float64 sums as the zoom (`kernel.rs`).

use ndarray::{Array3, ArrayView3};
use rayon::iter::IndexedParallelIterator;

use super::axis_plan::AxisPlan;
use super::kernel::{interpolate, interpolate_rows};
use super::{dims, ResampleError, SplineOrder, Voxel};

/// Samples `input` at every point `(coordinates[0][i], coordinates[1][j], coordinates[2][k])`
/// (input voxel units, float64 as scipy converts them), orders 0 and 1 only: those need no
/// spline prefilter. Out-of-range footprint taps read the nearest edge voxel.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::resample::{map_grid_coordinates, SplineOrder};
/// let data = Array3::from_shape_fn((2, 1, 3), |(i, _, k)| (10 * i + k) as f32);
/// let out = map_grid_coordinates(data.view(), [&[0.5], &[0.0], &[-0.5, 2.0]], SplineOrder::Linear).unwrap();
/// assert_eq!(out.dim(), (1, 1, 2));
/// assert_eq!(out[[0, 0, 0]], 5.0); // halfway along axis 0; k = -0.5 reads the edge twice
/// assert_eq!(out[[0, 0, 1]], 7.0);
/// ```
pub fn map_grid_coordinates<T: Voxel>(
    input: ArrayView3<'_, T>,
    coordinates: [&[f64]; 3],
    order: SplineOrder,
) -> Result<Array3<f64>, ResampleError> {
    let plans = grid_plans(&input, coordinates, order)?;
    Ok(interpolate(input, &plans, |_, t| t))
}

/// [`map_grid_coordinates`] that hands each output row of float64 results to
/// `visit(plane, a, b, values)` instead of storing them, `planes` giving one mutable state per
/// output plane along axis 0 (e.g. the rows of arrays the caller updates in place).
pub(crate) fn map_grid_coordinates_rows<T, S, P, V>(
    input: ArrayView3<'_, T>,
    coordinates: [&[f64]; 3],
    order: SplineOrder,
    planes: P,
    visit: V,
) -> Result<(), ResampleError>
where
    T: Voxel,
    S: Send,
    P: IndexedParallelIterator<Item = S>,
    V: Fn(&mut S, usize, usize, &[f64]) + Sync,
{
    let plans = grid_plans(&input, coordinates, order)?;
    interpolate_rows(input, &plans, planes, visit);
    Ok(())
}

fn grid_plans<T>(
    input: &ArrayView3<'_, T>,
    coordinates: [&[f64]; 3],
    order: SplineOrder,
) -> Result<[AxisPlan; 3], ResampleError> {
    let shape = dims(input);
    if shape.contains(&0) {
        return Err(ResampleError::EmptyInput { shape });
    }
    if order == SplineOrder::Cubic {
        return Err(ResampleError::CubicMapCoordinates);
    }
    Ok(std::array::from_fn(|a| {
        AxisPlan::at_coordinates(shape[a], coordinates[a].iter().copied(), order)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resample::{scipy_zoom, GridMode};

    #[test]
    fn grid_coordinates_of_a_zoom_give_the_zoom() {
        // The coordinates scipy's zoom (grid_mode=True) samples at, passed explicitly.
        let data = Array3::from_shape_fn((5, 4, 7), |(i, j, k)| {
            ((i * 31 + j * 17 + k * 7) % 23) as f32 * 0.37 - 3.0
        });
        let out_shape = [9usize, 3, 11];
        let coords: Vec<Vec<f64>> = (0..3)
            .map(|a| {
                let zoom = shape_of(&data)[a] as f64 / out_shape[a] as f64;
                (0..out_shape[a])
                    .map(|t| (t as f64 + 0.5) * zoom - 0.5)
                    .collect()
            })
            .collect();
        let mapped = map_grid_coordinates(
            data.view(),
            [&coords[0], &coords[1], &coords[2]],
            SplineOrder::Linear,
        )
        .unwrap();
        let zoom = [9.0 / 5.0, 3.0 / 4.0, 11.0 / 7.0];
        let zoomed: Array3<f64> =
            scipy_zoom(data.view(), zoom, SplineOrder::Linear, GridMode::AlignEdges).unwrap();
        assert_eq!(mapped, zoomed);
    }

    #[test]
    fn cubic_is_refused_and_empty_input_is_an_error() {
        let data = Array3::<f32>::zeros((2, 2, 2));
        let c = [0.5];
        assert_eq!(
            map_grid_coordinates(data.view(), [&c, &c, &c], SplineOrder::Cubic),
            Err(ResampleError::CubicMapCoordinates)
        );
        let empty = Array3::<f32>::zeros((0, 2, 2));
        assert!(map_grid_coordinates(empty.view(), [&c, &c, &c], SplineOrder::Nearest).is_err());
    }

    fn shape_of(a: &Array3<f32>) -> [usize; 3] {
        let (x, y, z) = a.dim();
        [x, y, z]
    }
}
