//! pyradiomics' `resampleImage` (3 mm grid over the mask's bounding box plus 5 voxels)
//! with SimpleITK's `ResampleImageFilter`: cubic B-spline for the image, nearest
//! neighbour for the mask, both through ITK's index <-> physical point arithmetic.

use super::grid::Grid;
use super::itk_inverse::itk_matrix_inverse;
use super::PixelType;
use crate::geometry::Affine;

/// pyradiomics' `padDistance`.
const PAD_DISTANCE: f64 = 5.0;

/// Image geometry as ITK holds it (LPS): index -> point is `origin + M · index` with
/// `M = direction · diag(spacing)`, and point -> index uses `P = M⁻¹`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ItkGeometry {
    origin: [f64; 3],
    direction: [[f64; 3]; 3],
    index_to_point: [[f64; 3]; 3],
    point_to_index: [[f64; 3]; 3],
}

impl ItkGeometry {
    /// As ITK's NiftiImageIO reads a NIfTI (RAS) `affine` with header `spacing` (pixdim):
    /// each direction column is the affine's column, flipped to LPS and divided by its own
    /// norm (not by pixdim).
    pub fn from_affine(affine: &Affine, spacing: [f64; 3]) -> ItkGeometry {
        let lps = [-1.0, -1.0, 1.0];
        let mut direction = [[0.0; 3]; 3];
        for c in 0..3 {
            let column = [0, 1, 2].map(|r| lps[r] * affine[r][c]);
            let norm = column.iter().map(|v| v * v).sum::<f64>().sqrt();
            for r in 0..3 {
                direction[r][c] = column[r] / norm;
            }
        }
        let origin = [0, 1, 2].map(|r| lps[r] * affine[r][3]);
        ItkGeometry::new(origin, direction, spacing)
    }

    fn new(origin: [f64; 3], direction: [[f64; 3]; 3], spacing: [f64; 3]) -> ItkGeometry {
        let mut m = [[0.0; 3]; 3];
        for r in 0..3 {
            for c in 0..3 {
                m[r][c] = direction[r][c] * spacing[c];
            }
        }
        // ITK inverts M by vnl's SVD (LINPACK dsvdc); the rounding of P decides which
        // voxel a nearest-neighbour sample on a half-voxel tie takes.
        let point_to_index = itk_matrix_inverse(&m);
        ItkGeometry {
            origin,
            direction,
            index_to_point: m,
            point_to_index,
        }
    }

    /// `TransformContinuousIndexToPhysicalPoint`: `((o + M0·i0) + M1·i1) + M2·i2`.
    fn point(&self, index: [f64; 3]) -> [f64; 3] {
        let mut point = self.origin;
        for (r, p) in point.iter_mut().enumerate() {
            for (c, i) in index.iter().enumerate() {
                *p += self.index_to_point[r][c] * i;
            }
        }
        point
    }

    /// `TransformPhysicalPointToContinuousIndex`: `P · (point - origin)`.
    fn continuous_index(&self, point: [f64; 3]) -> [f64; 3] {
        let v = [0, 1, 2].map(|k| point[k] - self.origin[k]);
        let mut index = [0.0; 3];
        for (r, i) in index.iter_mut().enumerate() {
            let mut sum = 0.0;
            for (c, x) in v.iter().enumerate() {
                sum += self.point_to_index[r][c] * x;
            }
            *i = sum;
        }
        index
    }

    /// The same direction with another origin and spacing (the resampled grid).
    fn with(&self, origin: [f64; 3], spacing: [f64; 3]) -> ItkGeometry {
        ItkGeometry::new(origin, self.direction, spacing)
    }
}

/// The resampled grid: its size, spacing and geometry.
#[derive(Debug, Clone, Copy)]
pub(super) struct ResampledGrid {
    pub size: [usize; 3],
    pub spacing: [f64; 3],
    geometry: ItkGeometry,
}

/// pyradiomics' grid for a mask with bounding box (`lower`, `extent`), or `None` when the
/// image already has the target spacing (then only the mask is re-gridded, onto itself).
pub(super) fn resampled_grid(
    source: &ItkGeometry,
    source_size: [usize; 3],
    source_spacing: [f64; 3],
    lower: [usize; 3],
    extent: [usize; 3],
    target_spacing: f64,
) -> Option<ResampledGrid> {
    // Axes the mask spans in one voxel keep their spacing.
    let spacing = [0, 1, 2].map(|a| {
        if extent[a] != 1 {
            target_spacing
        } else {
            source_spacing[a]
        }
    });
    // numpy.allclose(imageSpacing, resampledPixelSpacing)
    if (0..3).all(|a| (source_spacing[a] - spacing[a]).abs() <= 1e-8 + 1e-5 * spacing[a].abs()) {
        return None;
    }
    let mut size = [0usize; 3];
    let mut origin_index = [0.0; 3];
    for a in 0..3 {
        let ratio = source_spacing[a] / spacing[a];
        let low = ((lower[a] as f64 - 0.5) * ratio - PAD_DISTANCE).floor();
        let high = (((lower[a] + extent[a]) as f64 - 0.5) * ratio + PAD_DISTANCE).ceil();
        let max_high = (source_size[a] as f64 * ratio).ceil() - 1.0;
        let low = if low < 0.0 { 0.0 } else { low };
        let high = if high > max_high { max_high } else { high };
        size[a] = (high - low + 1.0) as usize;
        let first_centre = 0.5 * (spacing[a] - source_spacing[a]) / source_spacing[a];
        origin_index[a] = first_centre + low / ratio;
    }
    let origin = source.point(origin_index);
    Some(ResampledGrid {
        size,
        spacing,
        geometry: source.with(origin, spacing),
    })
}

impl ResampledGrid {
    /// The continuous source index of every output voxel, x fastest, as ITK's
    /// `LinearThreadedGenerateData` computes it: per row, the indices `s` of the first voxel
    /// and `e` of one past the last, then `s + (i / n) · (e - s)`.
    fn source_indices<'a>(
        &'a self,
        source: &'a ItkGeometry,
    ) -> impl Iterator<Item = [f64; 3]> + 'a {
        let [nx, ny, nz] = self.size;
        let index = move |x: usize, y: usize, z: usize| {
            source.continuous_index(self.geometry.point([x as f64, y as f64, z as f64]))
        };
        (0..nz).flat_map(move |z| {
            (0..ny).flat_map(move |y| {
                let start = index(0, y, z);
                let end = index(nx, y, z);
                let step = [0, 1, 2].map(|d| end[d] - start[d]);
                (0..nx).map(move |x| {
                    let alpha = x as f64 / nx as f64;
                    [0, 1, 2].map(|d| start[d] + alpha * step[d])
                })
            })
        })
    }

    /// The mask by nearest neighbour (ITK rounds half up); outside the source it is 0.
    pub fn nearest(&self, mask: &Grid<bool>, source: &ItkGeometry) -> Grid<bool> {
        let data = self
            .source_indices(source)
            .map(|c| {
                inside(c, mask.size) && {
                    let [x, y, z] = c.map(|v| (v + 0.5).floor() as usize);
                    mask.get(x, y, z)
                }
            })
            .collect();
        Grid {
            size: self.size,
            data,
        }
    }

    /// The image by cubic B-spline from its `coefficients`, cast to `pixel_type`.
    pub fn bspline(
        &self,
        coefficients: &Grid<f64>,
        source: &ItkGeometry,
        pixel_type: PixelType,
    ) -> Grid<f64> {
        let data = self
            .source_indices(source)
            .map(|c| {
                if inside(c, coefficients.size) {
                    pixel_type.cast(evaluate_bspline(coefficients, c))
                } else {
                    0.0
                }
            })
            .collect();
        Grid {
            size: self.size,
            data,
        }
    }
}

/// ITK's `IsInsideBuffer` for a continuous index: within half a voxel of the buffer.
fn inside(c: [f64; 3], size: [usize; 3]) -> bool {
    (0..3).all(|a| c[a] >= -0.5 && c[a] < size[a] as f64 - 0.5)
}

/// The cubic B-spline pole.
fn pole() -> f64 {
    3f64.sqrt() - 2.0
}

/// ITK's `BSplineDecompositionImageFilter` (order 3): the interpolation coefficients,
/// filtering along x, then y, then z.
pub(super) fn bspline_coefficients(image: &Grid<f32>) -> Grid<f64> {
    let mut out = Grid {
        size: image.size,
        data: image.data.iter().map(|&v| f64::from(v)).collect(),
    };
    let [nx, ny, nz] = image.size;
    let mut line = Vec::new();
    for axis in 0..3 {
        let (len, stride) = match axis {
            0 => (nx, 1),
            1 => (ny, nx),
            _ => (nz, nx * ny),
        };
        if len == 1 {
            continue;
        }
        for start in line_starts(image.size, axis) {
            line.clear();
            line.extend((0..len).map(|i| out.data[start + i * stride]));
            coefficients_1d(&mut line);
            for (i, v) in line.iter().enumerate() {
                out.data[start + i * stride] = *v;
            }
        }
    }
    out
}

/// The first voxel of every line along `axis` (x fastest in memory).
fn line_starts(size: [usize; 3], axis: usize) -> Vec<usize> {
    let [nx, ny, nz] = size;
    match axis {
        0 => (0..ny * nz).map(|row| row * nx).collect(),
        1 => (0..nz)
            .flat_map(|z| (0..nx).map(move |x| z * nx * ny + x))
            .collect(),
        _ => (0..nx * ny).collect(),
    }
}

/// `DataToCoefficients1D`: gain, causal and anti-causal recursions with mirror
/// boundaries.
fn coefficients_1d(c: &mut [f64]) {
    let z = pole();
    let n = c.len();
    let gain = (1.0 - z) * (1.0 - 1.0 / z);
    for v in c.iter_mut() {
        *v *= gain;
    }
    c[0] = initial_causal(c, z);
    for i in 1..n {
        c[i] += z * c[i - 1];
    }
    c[n - 1] = (z / (z * z - 1.0)) * (z * c[n - 2] + c[n - 1]);
    for i in (0..n - 1).rev() {
        c[i] = z * (c[i + 1] - c[i]);
    }
}

/// `SetInitialCausalCoefficient` with ITK's default tolerance 1e-10.
fn initial_causal(c: &[f64], z: f64) -> f64 {
    let n = c.len();
    let horizon = (1e-10f64.ln() / z.abs().ln()).ceil() as usize;
    let mut zn = z;
    if horizon < n {
        let mut sum = c[0];
        for v in &c[1..horizon] {
            sum += zn * v;
            zn *= z;
        }
        sum
    } else {
        let iz = 1.0 / z;
        let mut z2n = z.powf((n - 1) as f64);
        let mut sum = c[0] + z2n * c[n - 1];
        // ITK: z2n = z2n * (z2n * iz).
        z2n = z2n * (z2n * iz);
        for v in &c[1..n - 1] {
            sum += (zn + z2n) * v;
            zn *= z;
            z2n *= iz;
        }
        sum / (1.0 - zn * zn)
    }
}

/// `BSplineInterpolateImageFunction::EvaluateAtContinuousIndex` (order 3, mirror
/// boundaries).
fn evaluate_bspline(coefficients: &Grid<f64>, c: [f64; 3]) -> f64 {
    let mut indices = [[0usize; 4]; 3];
    let mut weights = [[0.0; 4]; 3];
    for a in 0..3 {
        // ITK rounds the index to float32 before the floor.
        let first = (c[a] as f32).floor() as i64 - 1;
        let w = c[a] - (first + 1) as f64;
        let w3 = (1.0 / 6.0) * w * w * w;
        let w0 = (1.0 / 6.0) + 0.5 * w * (w - 1.0) - w3;
        let w2 = w + w0 - 2.0 * w3;
        let w1 = 1.0 - w0 - w2 - w3;
        weights[a] = [w0, w1, w2, w3];
        let len = coefficients.size[a] as i64;
        for (k, index) in indices[a].iter_mut().enumerate() {
            *index = mirror(first + k as i64, len);
        }
    }
    let mut sum = 0.0;
    for kz in 0..4 {
        for ky in 0..4 {
            for kx in 0..4 {
                let w = ((1.0 * weights[0][kx]) * weights[1][ky]) * weights[2][kz];
                sum += w * coefficients.get(indices[0][kx], indices[1][ky], indices[2][kz]);
            }
        }
    }
    sum
}

/// ITK's `ApplyMirrorBoundaryConditions`: reflect once about each end sample.
fn mirror(index: i64, len: i64) -> usize {
    if len == 1 {
        return 0;
    }
    let end = len - 1;
    let mut i = index;
    if i < 0 {
        i = -i;
    }
    if i >= end {
        i = end - (i - end);
    }
    // ITK reads outside the buffer for a two-voxel axis; stay inside instead.
    i.clamp(0, end) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bspline_reproduces_the_samples_at_voxel_centres() {
        let size = [5, 4, 3];
        let data: Vec<f32> = (0..60).map(|i| ((i * 37) % 11) as f32 - 3.0).collect();
        let image = Grid { size, data };
        let coefficients = bspline_coefficients(&image);
        for z in 0..3 {
            for y in 0..4 {
                for x in 0..5 {
                    let v = evaluate_bspline(&coefficients, [x as f64, y as f64, z as f64]);
                    let expected = f64::from(image.get(x, y, z));
                    assert!((v - expected).abs() < 1e-9, "{v} at {x},{y},{z}");
                }
            }
        }
    }

    #[test]
    fn mirror_reflects_about_the_end_samples() {
        assert_eq!(mirror(-1, 5), 1);
        assert_eq!(mirror(5, 5), 3);
        assert_eq!(mirror(-2, 5), 2);
        assert_eq!(mirror(3, 1), 0);
    }
}
