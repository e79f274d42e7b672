//! A volume in ITK's layout: `size` is (x, y, z) and the data run x fastest, as the
//! `(z, y, x)` NumPy array pyradiomics gets from `sitk.GetArrayFromImage`.

use ndarray::ArrayView3;

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Grid<T> {
    pub size: [usize; 3],
    pub data: Vec<T>,
}

impl<T: Copy + Default> Grid<T> {
    /// From a NIfTI-ordered `[i, j, k]` array (i = x).
    pub fn from_ijk<S: Copy>(values: ArrayView3<S>, map: impl Fn(S) -> T) -> Grid<T> {
        let (nx, ny, nz) = values.dim();
        let mut data = Vec::with_capacity(nx * ny * nz);
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    data.push(map(values[[x, y, z]]));
                }
            }
        }
        Grid {
            size: [nx, ny, nz],
            data,
        }
    }

    pub fn index(&self, x: usize, y: usize, z: usize) -> usize {
        (z * self.size[1] + y) * self.size[0] + x
    }

    pub fn get(&self, x: usize, y: usize, z: usize) -> T {
        self.data[self.index(x, y, z)]
    }

    /// The sub-volume `[lower, lower + size)`.
    pub fn crop(&self, lower: [usize; 3], size: [usize; 3]) -> Grid<T> {
        let mut data = Vec::with_capacity(size.iter().product());
        for z in lower[2]..lower[2] + size[2] {
            for y in lower[1]..lower[1] + size[1] {
                let start = self.index(lower[0], y, z);
                data.extend_from_slice(&self.data[start..start + size[0]]);
            }
        }
        Grid { size, data }
    }

    /// The volume with `pad` default-valued voxels added on every side.
    pub fn padded(&self, pad: usize) -> Grid<T> {
        let size = self.size.map(|n| n + 2 * pad);
        let mut out = Grid {
            size,
            data: vec![T::default(); size.iter().product()],
        };
        for z in 0..self.size[2] {
            for y in 0..self.size[1] {
                let from = self.index(0, y, z);
                let to = out.index(pad, y + pad, z + pad);
                out.data[to..to + self.size[0]]
                    .copy_from_slice(&self.data[from..from + self.size[0]]);
            }
        }
        out
    }
}

impl Grid<bool> {
    /// `LabelShapeStatisticsImageFilter.GetBoundingBox`: lower index and size per axis, or
    /// `None` when no voxel is set.
    pub fn bounding_box(&self) -> Option<([usize; 3], [usize; 3])> {
        let mut lower = self.size;
        let mut upper = [0usize; 3];
        let mut any = false;
        for z in 0..self.size[2] {
            for y in 0..self.size[1] {
                for x in 0..self.size[0] {
                    if self.get(x, y, z) {
                        any = true;
                        for (axis, v) in [x, y, z].into_iter().enumerate() {
                            lower[axis] = lower[axis].min(v);
                            upper[axis] = upper[axis].max(v);
                        }
                    }
                }
            }
        }
        any.then(|| (lower, [0, 1, 2].map(|a| upper[a] - lower[a] + 1)))
    }
}
