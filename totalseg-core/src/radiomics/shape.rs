//! pyradiomics' 3-D shape features (`RadiomicsShape`): a marching-cubes mesh with its
//! vertices at edge midpoints (pyradiomics' `cshape.c`), and the principal axes of the
//! voxel coordinates.

use super::grid::Grid;
use super::mesh_table::TRIANGLES;
use crate::geometry::svd::svd3;

/// Names in pyradiomics' output order.
pub(super) const SHAPE_NAMES: [&str; 14] = [
    "Elongation",
    "Flatness",
    "LeastAxisLength",
    "MajorAxisLength",
    "Maximum2DDiameterColumn",
    "Maximum2DDiameterRow",
    "Maximum2DDiameterSlice",
    "Maximum3DDiameter",
    "MeshVolume",
    "MinorAxisLength",
    "Sphericity",
    "SurfaceArea",
    "SurfaceVolumeRatio",
    "VoxelVolume",
];

/// The cube's corners as (z, y, x) offsets, in pyradiomics' bit order.
const CORNERS: [[usize; 3]; 8] = [
    [0, 0, 0],
    [0, 0, 1],
    [0, 1, 1],
    [0, 1, 0],
    [1, 0, 0],
    [1, 0, 1],
    [1, 1, 1],
    [1, 1, 0],
];

/// The midpoints of the cube's twelve edges, as (z, y, x) offsets.
const EDGE_MIDPOINTS: [[f64; 3]; 12] = [
    [0.0, 0.0, 0.5],
    [0.0, 0.5, 1.0],
    [0.0, 1.0, 0.5],
    [0.0, 0.5, 0.0],
    [1.0, 0.0, 0.5],
    [1.0, 0.5, 1.0],
    [1.0, 1.0, 0.5],
    [1.0, 0.5, 0.0],
    [0.5, 0.0, 0.0],
    [0.5, 0.0, 1.0],
    [0.5, 1.0, 1.0],
    [0.5, 1.0, 0.0],
];

/// The 14 features, in [`SHAPE_NAMES`] order, of `mask` (cropped to its bounding box) with
/// voxel `spacing` (x, y, z).
pub(super) fn shape_features(mask: &Grid<bool>, spacing: [f64; 3]) -> [f64; 14] {
    let padded = mask.padded(1);
    // pyradiomics works on the (z, y, x) array with the spacing reversed.
    let spacing_zyx = [spacing[2], spacing[1], spacing[0]];
    let mesh = Mesh::of(&padded, spacing_zyx);
    let [slice, column, row, diameter_3d] = mesh_diameters(&mesh.vertices);

    let count = padded.data.iter().filter(|&&m| m).count();
    let [sz, sy, sx] = spacing_zyx;
    let voxel_volume = count as f64 * (sz * sx * sy);
    let [least, minor, major] = principal_moments(&padded, spacing_zyx);

    let axis = |eigenvalue: f64| eigenvalue.sqrt() * 4.0;
    [
        (minor / major).sqrt(),
        (least / major).sqrt(),
        axis(least),
        axis(major),
        column,
        row,
        slice,
        diameter_3d,
        mesh.volume,
        axis(minor),
        (36.0 * std::f64::consts::PI * mesh.volume.powi(2)).powf(1.0 / 3.0) / mesh.surface_area,
        mesh.surface_area,
        mesh.surface_area / mesh.volume,
        voxel_volume,
    ]
}

/// Surface area, signed volume and the vertices kept for the diameters.
struct Mesh {
    surface_area: f64,
    volume: f64,
    /// Physical (z, y, x) vertices on the edges 6, 7 and 11 of each cube, so that every
    /// vertex of the mesh is stored once.
    vertices: Vec<[f64; 3]>,
}

impl Mesh {
    fn of(mask: &Grid<bool>, spacing: [f64; 3]) -> Mesh {
        let [nx, ny, nz] = mask.size;
        let at = |z: usize, y: usize, x: usize| mask.data[(z * ny + y) * nx + x];
        let mut mesh = Mesh {
            surface_area: 0.0,
            volume: 0.0,
            vertices: Vec::new(),
        };
        // Edges 6, 7 and 11 are the ones with a vertex when corners 6, 4 and 3 are inside
        // (after the flip below the last corner is never inside).
        const KEPT_EDGES: [(u8, usize); 3] = [(6, 6), (4, 7), (3, 11)];
        for iz in 0..nz.saturating_sub(1) {
            for iy in 0..ny.saturating_sub(1) {
                for ix in 0..nx.saturating_sub(1) {
                    let mut cube = 0u8;
                    for (bit, [dz, dy, dx]) in CORNERS.iter().enumerate() {
                        if at(iz + dz, iy + dy, ix + dx) {
                            cube |= 1 << bit;
                        }
                    }
                    // The surface is symmetric about the isovalue: flip the upper half of
                    // the table, and the sign of the volume with it.
                    let sign = if cube & 0x80 != 0 {
                        cube ^= 0xff;
                        -1.0
                    } else {
                        1.0
                    };
                    let origin = [iz as f64, iy as f64, ix as f64];
                    let point = |edge: usize| -> [f64; 3] {
                        let m = EDGE_MIDPOINTS[edge];
                        [
                            (origin[0] + m[0]) * spacing[0],
                            (origin[1] + m[1]) * spacing[1],
                            (origin[2] + m[2]) * spacing[2],
                        ]
                    };
                    for (corner, edge) in KEPT_EDGES {
                        if cube & (1 << corner) != 0 {
                            mesh.vertices.push(point(edge));
                        }
                    }
                    if cube == 0 {
                        continue;
                    }
                    for triangle in TRIANGLES[usize::from(cube)].chunks(3) {
                        if triangle[0] < 0 {
                            break;
                        }
                        let [a, b, c] = [0, 1, 2].map(|k| point(triangle[k] as usize));
                        mesh.volume += sign * dot(cross(a, b), c);
                        let (ac, bc) = (sub(a, c), sub(b, c));
                        let n = cross(ac, bc);
                        mesh.surface_area += 0.5 * (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
                    }
                }
            }
        }
        mesh.volume /= 6.0;
        mesh
    }
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - b[1] * a[2],
        a[2] * b[0] - b[2] * a[0],
        a[0] * b[1] - b[0] * a[1],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn sub(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// The largest vertex distances within a z slice, a y row... as pyradiomics pairs them:
/// [slice (same z), column (same y), row (same x), any].
fn mesh_diameters(vertices: &[[f64; 3]]) -> [f64; 4] {
    let mut best = [0.0f64; 4];
    for (i, a) in vertices.iter().enumerate() {
        for b in &vertices[..i] {
            let d = sub(*a, *b);
            let distance = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
            for axis in 0..3 {
                if a[axis] == b[axis] && distance > best[axis] {
                    best[axis] = distance;
                }
            }
            if distance > best[3] {
                best[3] = distance;
            }
        }
    }
    best.map(f64::sqrt)
}

/// Eigenvalues (ascending) of the covariance of the physical voxel coordinates, as
/// pyradiomics computes them for the axis lengths.
fn principal_moments(mask: &Grid<bool>, spacing_zyx: [f64; 3]) -> [f64; 3] {
    let [nx, ny, _] = mask.size;
    let points: Vec<[f64; 3]> = mask
        .data
        .iter()
        .enumerate()
        .filter(|(_, &m)| m)
        .map(|(index, _)| {
            let (x, rest) = (index % nx, index / nx);
            let (y, z) = (rest % ny, rest / ny);
            [
                z as f64 * spacing_zyx[0],
                y as f64 * spacing_zyx[1],
                x as f64 * spacing_zyx[2],
            ]
        })
        .collect();
    let n = points.len() as f64;
    // np.mean(axis=0) of an (N, 3) array adds row by row.
    let mut mean = [0.0; 3];
    for p in &points {
        for axis in 0..3 {
            mean[axis] += p[axis];
        }
    }
    let mean = mean.map(|s| s / n);
    let scale = n.sqrt();
    let mut covariance = [[0.0; 3]; 3];
    for p in &points {
        let c = [0, 1, 2].map(|axis| (p[axis] - mean[axis]) / scale);
        for r in 0..3 {
            for col in 0..3 {
                covariance[r][col] += c[r] * c[col];
            }
        }
    }
    // The covariance is symmetric positive semi-definite: its singular values are its
    // eigenvalues.
    let mut eigenvalues = svd3(&covariance).s;
    eigenvalues.sort_by(f64::total_cmp);
    eigenvalues
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(size: [usize; 3], inside: impl Fn(usize, usize, usize) -> bool) -> Grid<bool> {
        let [nx, ny, nz] = size;
        let mut data = Vec::with_capacity(nx * ny * nz);
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    data.push(inside(x, y, z));
                }
            }
        }
        Grid { size, data }
    }

    #[test]
    fn single_cube_has_the_octahedron_like_mesh_of_pyradiomics() {
        // One voxel: the mesh joins the 6 face-adjacent edge midpoints around it, an
        // octahedron with vertices 0.5 voxel from the centre: volume 4/3 * 0.5^3.
        let f = shape_features(&block([1, 1, 1], |_, _, _| true), [1.0, 1.0, 1.0]);
        assert!((f[8] - 1.0 / 6.0).abs() < 1e-12, "mesh volume {}", f[8]);
        assert!(
            (f[11] - 8.0 * 3f64.sqrt() / 8.0).abs() < 1e-12,
            "area {}",
            f[11]
        );
        assert_eq!(f[13], 1.0);
        assert_eq!(f[7], 1.0); // two opposite vertices
    }

    #[test]
    fn box_volume_and_axes_scale_with_spacing() {
        let f = shape_features(&block([4, 3, 2], |_, _, _| true), [2.0, 1.0, 3.0]);
        assert_eq!(f[13], 24.0 * 6.0);
        // The major axis runs along x (4 voxels of 2 mm): variance of {0,2,4,6} = 5.
        assert!((f[3] - 4.0 * 5f64.sqrt()).abs() < 1e-9, "major {}", f[3]);
        assert!(f[8] > 0.0 && f[8] < f[13]);
    }
}
