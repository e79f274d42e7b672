//! Binary morphology and connected components with scipy.ndimage semantics on 3-D masks:
//! `label`, `binary_fill_holes`, `binary_dilation`, `binary_erosion` with their default
//! structuring element (the 6-connected cross, `generate_binary_structure(3, 1)`).
//!
//! Masks are indexed `[a0, a1, a2]` in whatever axis order the caller uses; "raster order"
//! below means C order over those indices (`a2` fastest), which is the order scipy scans.

use std::collections::VecDeque;

use ndarray::{Array3, ArrayView3};

/// Which neighbours touch: scipy's `generate_binary_structure(3, connectivity)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Connectivity {
    /// 6 face neighbours (scipy's default structure; TotalSegmentator uses this).
    #[default]
    Faces,
    /// 18 face and edge neighbours.
    FacesEdges,
    /// All 26 neighbours.
    Full,
}

impl Connectivity {
    /// Offsets of the neighbours that precede a voxel in raster order.
    fn preceding_offsets(self) -> Vec<[i64; 3]> {
        let max_nonzero = match self {
            Self::Faces => 1,
            Self::FacesEdges => 2,
            Self::Full => 3,
        };
        let mut out = Vec::new();
        for d0 in -1i64..=1 {
            for d1 in -1i64..=1 {
                for d2 in -1i64..=1 {
                    let nonzero = [d0, d1, d2].iter().filter(|&&d| d != 0).count();
                    let precedes = (d0, d1, d2) < (0, 0, 0);
                    if nonzero >= 1 && nonzero <= max_nonzero && precedes {
                        out.push([d0, d1, d2]);
                    }
                }
            }
        }
        out
    }
}

/// Connected components of a mask: `labels` holds 0 for background and `1..=count`,
/// numbered like `scipy.ndimage.label` (by each component's first voxel in raster order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Components {
    /// Component index per voxel, 0 = background.
    pub labels: Array3<u32>,
    /// Number of components.
    pub count: usize,
}

impl Components {
    /// Voxels per label, index 0 = background (`np.bincount(labels.flatten())`).
    pub fn sizes(&self) -> Vec<u64> {
        let mut sizes = vec![0u64; self.count + 1];
        for &l in &self.labels {
            sizes[l as usize] += 1;
        }
        sizes
    }
}

fn find(parent: &mut [u32], mut x: u32) -> u32 {
    while parent[x as usize] != x {
        let grand = parent[parent[x as usize] as usize];
        parent[x as usize] = grand;
        x = grand;
    }
    x
}

/// `scipy.ndimage.label(mask, structure)` for the given connectivity.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::morphology::{label_components, Connectivity};
/// let mut m = Array3::from_elem((1, 1, 5), false);
/// m[[0, 0, 0]] = true;
/// m[[0, 0, 3]] = true;
/// m[[0, 0, 4]] = true;
/// let c = label_components(m.view(), Connectivity::Faces);
/// assert_eq!(c.count, 2);
/// assert_eq!(c.labels.iter().copied().collect::<Vec<_>>(), vec![1, 0, 0, 2, 2]);
/// assert_eq!(c.sizes(), vec![2, 1, 2]);
/// ```
pub fn label_components(mask: ArrayView3<bool>, connectivity: Connectivity) -> Components {
    let (n0, n1, n2) = mask.dim();
    let mask = mask.as_standard_layout();
    let flat_mask: Vec<bool> = mask.iter().copied().collect();
    let offsets: Vec<([i64; 3], isize)> = connectivity
        .preceding_offsets()
        .into_iter()
        .map(|o| (o, ((o[0] * n1 as i64 + o[1]) * n2 as i64 + o[2]) as isize))
        .collect();
    let mut provisional = vec![0u32; n0 * n1 * n2];
    // parent[0] is the background; provisional labels start at 1 in raster order, and a
    // union keeps the smaller root, so each root is its component's first voxel's label.
    let mut parent: Vec<u32> = vec![0];
    let mut index = 0usize;
    for i0 in 0..n0 as i64 {
        for i1 in 0..n1 as i64 {
            for i2 in 0..n2 as i64 {
                let here = index;
                index += 1;
                if !flat_mask[here] {
                    continue;
                }
                let mut current = 0u32;
                for &(off, delta) in &offsets {
                    let (j0, j1, j2) = (i0 + off[0], i1 + off[1], i2 + off[2]);
                    if j0 < 0 || j1 < 0 || j2 < 0 || j1 >= n1 as i64 || j2 >= n2 as i64 {
                        continue;
                    }
                    let neighbour = provisional[(here as isize + delta) as usize];
                    if neighbour == 0 {
                        continue;
                    }
                    let root = find(&mut parent, neighbour);
                    if current == 0 {
                        current = root;
                    } else if root != current {
                        let (keep, drop) = if root < current {
                            (root, current)
                        } else {
                            (current, root)
                        };
                        parent[drop as usize] = keep;
                        current = keep;
                    }
                }
                if current == 0 {
                    current = parent.len() as u32;
                    parent.push(current);
                }
                provisional[here] = current;
            }
        }
    }
    // Final numbers: roots in increasing order (= order of first appearance).
    let mut final_label = vec![0u32; parent.len()];
    let mut count = 0u32;
    for l in 1..parent.len() as u32 {
        let root = find(&mut parent, l);
        final_label[l as usize] = if root == l {
            count += 1;
            count
        } else {
            // Roots precede their members, so the root's number is already set.
            final_label[root as usize]
        };
    }
    for l in &mut provisional {
        *l = final_label[*l as usize];
    }
    Components {
        labels: Array3::from_shape_vec((n0, n1, n2), provisional)
            .unwrap_or_else(|_| Array3::zeros((n0, n1, n2))),
        count: count as usize,
    }
}

const FACE_OFFSETS: [[i64; 3]; 6] = [
    [-1, 0, 0],
    [1, 0, 0],
    [0, -1, 0],
    [0, 1, 0],
    [0, 0, -1],
    [0, 0, 1],
];

fn face_neighbours(index: [usize; 3], shape: [usize; 3]) -> impl Iterator<Item = [usize; 3]> {
    FACE_OFFSETS.iter().filter_map(move |off| {
        let mut out = [0usize; 3];
        for a in 0..3 {
            let j = index[a] as i64 + off[a];
            if j < 0 || j >= shape[a] as i64 {
                return None;
            }
            out[a] = j as usize;
        }
        Some(out)
    })
}

/// `scipy.ndimage.binary_fill_holes(mask)`: background voxels not 6-connected to the array
/// border become foreground.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::morphology::binary_fill_holes;
/// let mut shell = Array3::from_elem((5, 5, 5), false);
/// shell.slice_mut(ndarray::s![1..4, 1..4, 1..4]).fill(true);
/// shell[[2, 2, 2]] = false;
/// let filled = binary_fill_holes(shell.view());
/// assert!(filled[[2, 2, 2]]);
/// assert!(!filled[[0, 0, 0]]);
/// ```
pub fn binary_fill_holes(mask: ArrayView3<bool>) -> Array3<bool> {
    let (n0, n1, n2) = mask.dim();
    let shape = [n0, n1, n2];
    // Flood the background from the border; scipy does this as a dilation with
    // border_value=1 restricted to the background, iterated to convergence.
    let mut outside = Array3::from_elem((n0, n1, n2), false);
    let mut queue = VecDeque::new();
    for ((i0, i1, i2), &m) in mask.indexed_iter() {
        let on_border =
            i0 == 0 || i1 == 0 || i2 == 0 || i0 + 1 == n0 || i1 + 1 == n1 || i2 + 1 == n2;
        if on_border && !m {
            outside[[i0, i1, i2]] = true;
            queue.push_back([i0, i1, i2]);
        }
    }
    while let Some(index) = queue.pop_front() {
        for nb in face_neighbours(index, shape) {
            if !mask[nb] && !outside[nb] {
                outside[nb] = true;
                queue.push_back(nb);
            }
        }
    }
    outside.mapv(|o| !o)
}

/// One step of dilation with the 6-connected cross; outside the array counts as background.
fn dilate_once(mask: &Array3<bool>) -> Array3<bool> {
    let (n0, n1, n2) = mask.dim();
    let shape = [n0, n1, n2];
    Array3::from_shape_fn((n0, n1, n2), |(i0, i1, i2)| {
        mask[[i0, i1, i2]] || face_neighbours([i0, i1, i2], shape).any(|nb| mask[nb])
    })
}

/// One step of erosion with the 6-connected cross; outside the array counts as background
/// (scipy's default `border_value=0`), so border voxels are eroded.
fn erode_once(mask: &Array3<bool>) -> Array3<bool> {
    let (n0, n1, n2) = mask.dim();
    let shape = [n0, n1, n2];
    Array3::from_shape_fn((n0, n1, n2), |(i0, i1, i2)| {
        let on_border =
            i0 == 0 || i1 == 0 || i2 == 0 || i0 + 1 == n0 || i1 + 1 == n1 || i2 + 1 == n2;
        mask[[i0, i1, i2]] && !on_border && face_neighbours([i0, i1, i2], shape).all(|nb| mask[nb])
    })
}

fn iterate(
    mask: ArrayView3<bool>,
    iterations: usize,
    step: fn(&Array3<bool>) -> Array3<bool>,
) -> Array3<bool> {
    let mut current = mask.to_owned();
    if iterations == 0 {
        // scipy: iterations < 1 repeats until nothing changes.
        loop {
            let next = step(&current);
            if next == current {
                return next;
            }
            current = next;
        }
    }
    for _ in 0..iterations {
        current = step(&current);
    }
    current
}

/// `scipy.ndimage.binary_dilation(mask, iterations=iterations)` (6-connected cross,
/// `border_value=0`); `iterations == 0` repeats until the result stops changing, as scipy does.
pub fn binary_dilation(mask: ArrayView3<bool>, iterations: usize) -> Array3<bool> {
    iterate(mask, iterations, dilate_once)
}

/// `scipy.ndimage.binary_erosion(mask, iterations=iterations)` (6-connected cross,
/// `border_value=0`); `iterations == 0` repeats until the result stops changing.
pub fn binary_erosion(mask: ArrayView3<bool>, iterations: usize) -> Array3<bool> {
    iterate(mask, iterations, erode_once)
}
