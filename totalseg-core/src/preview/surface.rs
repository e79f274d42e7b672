//! The surface of one structure, built as `contour_from_roi_smooth` (TotalSegmentator's
//! `vtk_utils.py`) builds it: marching cubes at 100 on the 0/255 mask (`vtkMarchingCubes`),
//! 20 passes of Laplacian smoothing with relaxation 0.1 (`vtkSmoothPolyDataFilter`, boundary
//! and feature edges held), and vertex normals (`vtkPolyDataNormals`, split at edges
//! sharper than 60 degrees).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::reslice::WorldVolume;
use crate::radiomics::mesh_table::TRIANGLES;

/// A triangle mesh in world coordinates, with a unit normal at each corner of each triangle
/// (a vertex on a sharp edge has one normal per side).
pub(crate) struct Surface {
    pub vertices: Vec<[f32; 3]>,
    pub triangles: Vec<[u32; 3]>,
    pub normals: Vec<[[f32; 3]; 3]>,
}

impl Surface {
    /// World bounds `[min, max]` of the vertices, `None` for an empty mesh.
    pub fn bounds(&self) -> Option<[[f64; 3]; 2]> {
        let first = self.vertices.first()?;
        let mut bounds = [first.map(f64::from), first.map(f64::from)];
        for v in &self.vertices {
            for a in 0..3 {
                bounds[0][a] = bounds[0][a].min(f64::from(v[a]));
                bounds[1][a] = bounds[1][a].max(f64::from(v[a]));
            }
        }
        Some(bounds)
    }
}

/// A multiply-rotate hasher for the integer keys below (SipHash costs more than the rest
/// of the lookup here).
#[derive(Default)]
struct IntHasher(u64);

impl Hasher for IntHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// The cube's corners as (x, y, z) offsets, in the bit order of the triangle table.
const CORNERS: [[usize; 3]; 8] = [
    [0, 0, 0],
    [1, 0, 0],
    [1, 1, 0],
    [0, 1, 0],
    [0, 0, 1],
    [1, 0, 1],
    [1, 1, 1],
    [0, 1, 1],
];

/// Each cube edge as (first corner, axis it runs along).
const EDGES: [(usize, usize); 12] = [
    (0, 0),
    (1, 1),
    (3, 0),
    (0, 1),
    (4, 0),
    (5, 1),
    (7, 0),
    (4, 1),
    (0, 2),
    (1, 2),
    (2, 2),
    (3, 2),
];

/// Smoothing passes and relaxation of `contour_from_roi_smooth` (`smoothing=20` in
/// `nnunet.py`).
pub(crate) const SMOOTHING_ITERATIONS: usize = 20;
const RELAXATION: f32 = 0.1;
/// `vtkPolyDataNormals` feature angle set by `contour_from_roi_smooth`: normals are not
/// averaged across edges whose faces turn more than this.
const FEATURE_ANGLE_DEGREES: f64 = 60.0;
/// `vtkSmoothPolyDataFilter`'s default edge angle: a held edge vertex whose two edges turn
/// more than this is fixed.
const EDGE_ANGLE_DEGREES: f64 = 15.0;

/// The surface of `volume >= iso`, smoothed `iterations` times.
pub(crate) fn structure_surface(volume: &WorldVolume, iso: f32, iterations: usize) -> Surface {
    let (mut vertices, triangles) = marching_cubes(volume, iso);
    smooth(&mut vertices, &triangles, iterations);
    let normals = corner_normals(&vertices, &triangles);
    Surface {
        vertices,
        triangles,
        normals,
    }
}

/// Marching cubes, vertices shared between the cubes of an edge and placed by linear
/// interpolation of the two corner values (as `vtkMarchingCubes`).
fn marching_cubes(volume: &WorldVolume, iso: f32) -> (Vec<[f32; 3]>, Vec<[u32; 3]>) {
    let shape = volume.data.shape();
    let [nx, ny, nz] = [shape[0], shape[1], shape[2]];
    // VTK walks the cubes x fastest (that order numbers the vertices, which the in-place
    // smoothing sees): a copy with x fastest in memory keeps that walk cache-friendly.
    let x_fastest = volume.data.view().reversed_axes();
    let x_fastest = x_fastest.as_standard_layout();
    let Some(flat) = x_fastest.as_slice() else {
        return (Vec::new(), Vec::new());
    };
    let at = |p: [usize; 3]| flat[(p[2] * ny + p[1]) * nx + p[0]];
    let corner_offsets = CORNERS.map(|[dx, dy, dz]| (dz * ny + dy) * nx + dx);
    let mut vertices: Vec<[f32; 3]> = Vec::new();
    let mut triangles = Vec::new();
    // Edge `axis` from grid point `p` is the key `p * 3 + axis`.
    let mut vertex_of_edge: IntMap<u64, u32> = IntMap::default();
    let key = |p: [usize; 3], axis: usize| (((p[2] * ny + p[1]) * nx + p[0]) * 3 + axis) as u64;
    let position = |p: [usize; 3]| -> [f64; 3] {
        [0, 1, 2].map(|a| volume.origin[a] + p[a] as f64 * volume.spacing[a])
    };
    for k in 0..nz.saturating_sub(1) {
        for j in 0..ny.saturating_sub(1) {
            for i in 0..nx.saturating_sub(1) {
                let base = (k * ny + j) * nx + i;
                let mut cube = 0u8;
                for (bit, offset) in corner_offsets.iter().enumerate() {
                    if flat[base + offset] >= iso {
                        cube |= 1 << bit;
                    }
                }
                if cube == 0 || cube == 0xff {
                    continue;
                }
                // The table holds the lower half; the upper half is the complement with the
                // triangles turned round, so that all faces keep one orientation.
                let flipped = cube & 0x80 != 0;
                let row = usize::from(if flipped { cube ^ 0xff } else { cube });
                let mut vertex = |edge: usize| -> u32 {
                    let (corner, axis) = EDGES[edge];
                    let [dx, dy, dz] = CORNERS[corner];
                    let start = [i + dx, j + dy, k + dz];
                    *vertex_of_edge.entry(key(start, axis)).or_insert_with(|| {
                        let mut end = start;
                        end[axis] += 1;
                        let (s0, s1) = (f64::from(at(start)), f64::from(at(end)));
                        let t = (f64::from(iso) - s0) / (s1 - s0);
                        let (p0, p1) = (position(start), position(end));
                        vertices.push([0, 1, 2].map(|a| (p0[a] + t * (p1[a] - p0[a])) as f32));
                        (vertices.len() - 1) as u32
                    })
                };
                for triangle in TRIANGLES[row].chunks(3) {
                    if triangle[0] < 0 {
                        break;
                    }
                    let [a, b, c] = [0, 1, 2].map(|n| vertex(triangle[n] as usize));
                    if a == b || b == c || a == c {
                        continue;
                    }
                    triangles.push(if flipped { [a, c, b] } else { [a, b, c] });
                }
            }
        }
    }
    (vertices, triangles)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum VertexKind {
    Simple,
    Fixed,
    FeatureEdge,
    BoundaryEdge,
}

/// `vtkSmoothPolyDataFilter` with `FeatureEdgeSmoothingOff`, `BoundarySmoothingOff` and
/// convergence 0: each movable vertex moves `RELAXATION` of the way to the mean of its
/// neighbours, in place (vertices later in the pass see the moved ones), in f32.
fn smooth(vertices: &mut [[f32; 3]], triangles: &[[u32; 3]], iterations: usize) {
    if iterations == 0 || triangles.is_empty() {
        return;
    }
    // For each undirected edge: how many cells use it, and the first of them.
    let edge_key = |p: u32, q: u32| u64::from(p.min(q)) << 32 | u64::from(p.max(q));
    let mut edge_cells: IntMap<u64, (usize, usize)> = IntMap::default();
    edge_cells.reserve(triangles.len() * 3 / 2);
    for (cell, t) in triangles.iter().enumerate() {
        for e in 0..3 {
            let entry = edge_cells
                .entry(edge_key(t[e], t[(e + 1) % 3]))
                .or_insert((0, cell));
            entry.0 += 1;
        }
    }
    let mut kind = vec![VertexKind::Simple; vertices.len()];
    let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); vertices.len()];
    for (cell, t) in triangles.iter().enumerate() {
        for e in 0..3 {
            let (p1, p2) = (t[e], t[(e + 1) % 3]);
            let (count, first) = edge_cells[&edge_key(p1, p2)];
            // As vtkSmoothPolyDataFilter: a boundary edge, a manifold edge seen from its
            // first cell, or a non-manifold edge (a feature edge from its first cell).
            let edge = match count {
                1 => VertexKind::BoundaryEdge,
                2 if first < cell => continue, // visited from the other cell
                2 => VertexKind::Simple,
                _ if first == cell => VertexKind::FeatureEdge,
                _ => VertexKind::Simple,
            };
            for (p, q) in [(p1, p2), (p2, p1)] {
                let (p, q) = (p as usize, q);
                let is_edge = edge != VertexKind::Simple;
                if is_edge && kind[p] == VertexKind::Simple {
                    neighbours[p].clear();
                    neighbours[p].push(q);
                    kind[p] = edge;
                } else if (is_edge
                    && matches!(kind[p], VertexKind::BoundaryEdge | VertexKind::FeatureEdge))
                    || (!is_edge && kind[p] == VertexKind::Simple)
                {
                    neighbours[p].push(q);
                    if kind[p] != VertexKind::Simple && edge == VertexKind::BoundaryEdge {
                        kind[p] = VertexKind::BoundaryEdge;
                    }
                }
            }
        }
    }
    let cos_edge_angle = EDGE_ANGLE_DEGREES.to_radians().cos();
    for (p, k) in kind.iter_mut().enumerate() {
        match *k {
            VertexKind::BoundaryEdge => *k = VertexKind::Fixed,
            VertexKind::FeatureEdge if neighbours[p].len() != 2 => *k = VertexKind::Fixed,
            VertexKind::FeatureEdge => {
                let at = |v: u32| vertices[v as usize].map(f64::from);
                let (x1, x2, x3) = (at(neighbours[p][0]), at(p as u32), at(neighbours[p][1]));
                let l1 = normalized([0, 1, 2].map(|a| x2[a] - x1[a]));
                let l2 = normalized([0, 1, 2].map(|a| x3[a] - x2[a]));
                if (0..3).map(|a| l1[a] * l2[a]).sum::<f64>() < cos_edge_angle {
                    *k = VertexKind::Fixed;
                }
            }
            _ => {}
        }
    }
    for _ in 0..iterations {
        for p in 0..vertices.len() {
            if kind[p] == VertexKind::Fixed || neighbours[p].is_empty() {
                continue;
            }
            let mut sum = [0f32; 3];
            for &q in &neighbours[p] {
                for a in 0..3 {
                    sum[a] += vertices[q as usize][a];
                }
            }
            let count = neighbours[p].len() as f32;
            for a in 0..3 {
                let x = vertices[p][a];
                vertices[p][a] = x + RELAXATION * (sum[a] / count - x);
            }
        }
    }
}

fn normalized(v: [f64; 3]) -> [f64; 3] {
    let norm = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    if norm == 0.0 {
        v
    } else {
        v.map(|x| x / norm)
    }
}

fn face_normal(vertices: &[[f32; 3]], t: &[u32; 3]) -> [f64; 3] {
    let [a, b, c] = t.map(|v| vertices[v as usize].map(f64::from));
    let u = [0, 1, 2].map(|k| b[k] - a[k]);
    let w = [0, 1, 2].map(|k| c[k] - a[k]);
    normalized([
        u[1] * w[2] - u[2] * w[1],
        u[2] * w[0] - u[0] * w[2],
        u[0] * w[1] - u[1] * w[0],
    ])
}

/// Unit normals at each triangle corner: at each vertex, the triangles around it are grouped
/// across the edges where their faces turn by at most [`FEATURE_ANGLE_DEGREES`], and each
/// group's corners get the normalised sum of its unit face normals (vtkPolyDataNormals with
/// splitting on).
fn corner_normals(vertices: &[[f32; 3]], triangles: &[[u32; 3]]) -> Vec<[[f32; 3]; 3]> {
    let faces: Vec<[f64; 3]> = triangles.iter().map(|t| face_normal(vertices, t)).collect();
    let mut around: Vec<Vec<usize>> = vec![Vec::new(); vertices.len()];
    for (cell, t) in triangles.iter().enumerate() {
        for &v in t {
            around[v as usize].push(cell);
        }
    }
    let cos_feature = FEATURE_ANGLE_DEGREES.to_radians().cos();
    let mut normals = vec![[[0f32; 3]; 3]; triangles.len()];
    let mut group: Vec<usize> = Vec::new();
    let mut by_neighbour: Vec<(u32, usize)> = Vec::new();
    fn root(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    for (v, cells) in around.iter().enumerate() {
        // Union-find over the triangles at `v`: two join when they share an edge from `v`
        // (the same other vertex) and their faces are within the feature angle.
        group.clear();
        group.extend(0..cells.len());
        by_neighbour.clear();
        for (i, &cell) in cells.iter().enumerate() {
            for &w in &triangles[cell] {
                if w as usize != v {
                    by_neighbour.push((w, i));
                }
            }
        }
        by_neighbour.sort_unstable();
        for pair in by_neighbour.windows(2) {
            let [(w0, a), (w1, b)] = [pair[0], pair[1]];
            let (fa, fb) = (faces[cells[a]], faces[cells[b]]);
            if w0 == w1 && fa[0] * fb[0] + fa[1] * fb[1] + fa[2] * fb[2] >= cos_feature {
                let (ra, rb) = (root(&mut group, a), root(&mut group, b));
                group[ra] = rb;
            }
        }
        let mut sums: Vec<[f64; 3]> = vec![[0.0; 3]; cells.len()];
        for (i, &cell) in cells.iter().enumerate() {
            let r = root(&mut group, i);
            for k in 0..3 {
                sums[r][k] += faces[cell][k];
            }
        }
        for (i, &cell) in cells.iter().enumerate() {
            let r = root(&mut group, i);
            let n = normalized(sums[r]).map(|x| x as f32);
            if let Some(corner) = triangles[cell].iter().position(|&w| w as usize == v) {
                normals[cell][corner] = n;
            }
        }
    }
    normals
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;

    fn volume(size: usize, inside: impl Fn(usize, usize, usize) -> bool) -> WorldVolume {
        WorldVolume {
            data: Array3::from_shape_fn((size, size, size), |(i, j, k)| {
                if inside(i, j, k) {
                    255.0
                } else {
                    0.0
                }
            }),
            origin: [0.0; 3],
            spacing: [1.0; 3],
        }
    }

    /// Every edge of a closed surface is shared by exactly two triangles, once in each
    /// direction when the faces are consistently oriented.
    fn assert_closed_and_oriented(triangles: &[[u32; 3]]) {
        let mut directed: HashMap<(u32, u32), usize> = HashMap::new();
        for t in triangles {
            for e in 0..3 {
                *directed.entry((t[e], t[(e + 1) % 3])).or_default() += 1;
            }
        }
        for (&(p, q), &n) in &directed {
            assert_eq!(n, 1, "edge {p}-{q} used twice in one direction");
            assert_eq!(directed.get(&(q, p)), Some(&1), "edge {p}-{q} has no twin");
        }
    }

    #[test]
    fn a_single_voxel_gives_a_closed_octahedron_at_155_255_of_a_voxel() {
        let v = volume(3, |i, j, k| (i, j, k) == (1, 1, 1));
        let (vertices, triangles) = marching_cubes(&v, 100.0);
        assert_eq!(vertices.len(), 6);
        assert_eq!(triangles.len(), 8);
        assert_closed_and_oriented(&triangles);
        let reach = 155.0 / 255.0;
        for p in &vertices {
            let offsets: Vec<f32> = p.iter().map(|c| (c - 1.0).abs()).collect();
            let mut sorted = offsets.clone();
            sorted.sort_by(f32::total_cmp);
            assert!(sorted[0] == 0.0 && sorted[1] == 0.0, "{p:?}");
            assert!((sorted[2] - reach).abs() < 1e-6, "{p:?}");
        }
    }

    #[test]
    fn a_ball_is_closed_oriented_and_shrinks_a_little_when_smoothed() {
        let centre = 5.0;
        let v = volume(11, |i, j, k| {
            let d2 = [i, j, k]
                .iter()
                .map(|&c| (c as f64 - centre).powi(2))
                .sum::<f64>();
            d2 <= 9.0
        });
        let (mut vertices, triangles) = marching_cubes(&v, 100.0);
        assert_closed_and_oriented(&triangles);
        let mean_radius = |vs: &[[f32; 3]]| {
            vs.iter()
                .map(|p| {
                    p.iter()
                        .map(|&c| (f64::from(c) - centre).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .sum::<f64>()
                / vs.len() as f64
        };
        let before = mean_radius(&vertices);
        smooth(&mut vertices, &triangles, SMOOTHING_ITERATIONS);
        let after = mean_radius(&vertices);
        assert!(
            after < before && after > before - 0.5,
            "{before} -> {after}"
        );
        // Normals point along the radius (outwards or inwards, the same way everywhere), and
        // a smoothed ball has no edge sharp enough to split them.
        let normals = corner_normals(&vertices, &triangles);
        let mut signs = Vec::new();
        let mut at_vertex: HashMap<u32, [f32; 3]> = HashMap::new();
        for (t, n) in triangles.iter().zip(&normals) {
            for corner in 0..3 {
                let p = vertices[t[corner] as usize];
                let radial: f64 = (0..3)
                    .map(|a| (f64::from(p[a]) - centre) * f64::from(n[corner][a]))
                    .sum();
                signs.push(radial);
                assert_eq!(*at_vertex.entry(t[corner]).or_insert(n[corner]), n[corner]);
            }
        }
        assert!(signs.iter().all(|&s| s > 0.0) || signs.iter().all(|&s| s < 0.0));
    }

    #[test]
    fn normals_split_where_faces_turn_more_than_60_degrees() {
        // The octahedron of one voxel: neighbouring faces turn by 70.5 degrees, so every
        // corner keeps its own face's normal.
        let v = volume(3, |i, j, k| (i, j, k) == (1, 1, 1));
        let (vertices, triangles) = marching_cubes(&v, 100.0);
        let normals = corner_normals(&vertices, &triangles);
        for (t, n) in triangles.iter().zip(&normals) {
            let face = face_normal(&vertices, t).map(|x| x as f32);
            assert_eq!(n, &[face; 3]);
        }
    }

    #[test]
    fn a_mask_at_the_volume_border_keeps_its_open_rim_fixed() {
        // A slab touching the x = 0 face: the surface is open there, and those vertices
        // (boundary edges) do not move.
        let v = volume(6, |i, j, k| {
            i <= 2 && (1..5).contains(&j) && (1..5).contains(&k)
        });
        let (mut vertices, triangles) = marching_cubes(&v, 100.0);
        let rim: Vec<usize> = (0..vertices.len())
            .filter(|&p| vertices[p][0] == 0.0)
            .collect();
        assert!(!rim.is_empty());
        let before: Vec<[f32; 3]> = rim.iter().map(|&p| vertices[p]).collect();
        smooth(&mut vertices, &triangles, SMOOTHING_ITERATIONS);
        let after: Vec<[f32; 3]> = rim.iter().map(|&p| vertices[p]).collect();
        assert_eq!(before, after);
    }
}
