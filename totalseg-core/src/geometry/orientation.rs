//! Axis orientations (nibabel's `io_orientation`, `ornt_transform`, `apply_orientation`,
//! `inv_ornt_aff`).
//!
//! An orientation has one row per voxel axis: the world (or target) axis it maps to and
//! whether it points the opposite way. nibabel stores this as an `(n, 2)` float array
//! `[[axis, ±1], ...]`; here it is [`OrientedAxis`] per input axis.

use ndarray::{Array3, ArrayView3, Axis};

use super::svd::svd3;
use super::{check_affine, Affine, GeometryError};

/// Where one input axis goes: output axis `axis`, reversed if `flipped`
/// (nibabel's row `[axis, -1]` when flipped, `[axis, 1]` otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OrientedAxis {
    /// The output axis (0, 1 or 2).
    pub axis: usize,
    /// True when the input axis runs opposite to the output axis.
    pub flipped: bool,
}

/// A complete orientation of three axes: row `n` says where input axis `n` goes.
/// The output axes form a permutation of `0, 1, 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Orientation {
    rows: [OrientedAxis; 3],
}

impl Orientation {
    /// The identity, nibabel's `[[0, 1], [1, 1], [2, 1]]`; as an axis code, `RAS`.
    pub const IDENTITY: Orientation = Orientation {
        rows: [
            OrientedAxis {
                axis: 0,
                flipped: false,
            },
            OrientedAxis {
                axis: 1,
                flipped: false,
            },
            OrientedAxis {
                axis: 2,
                flipped: false,
            },
        ],
    };

    /// Builds an orientation, checking that the output axes are a permutation.
    pub fn new(rows: [OrientedAxis; 3]) -> Result<Self, GeometryError> {
        let axes = rows.map(|r| r.axis);
        let mut seen = [false; 3];
        for &a in &axes {
            if a > 2 || seen[a] {
                return Err(GeometryError::NotAPermutation { rows: axes });
            }
            seen[a] = true;
        }
        Ok(Orientation { rows })
    }

    /// Completes an [`io_orientation`] result, failing on a dropped (degenerate) axis.
    pub fn from_partial(rows: [Option<OrientedAxis>; 3]) -> Result<Self, GeometryError> {
        let mut full = [OrientedAxis {
            axis: 0,
            flipped: false,
        }; 3];
        for (axis, row) in rows.iter().enumerate() {
            full[axis] = row.ok_or(GeometryError::DroppedAxis { axis })?;
        }
        Self::new(full)
    }

    /// The rows, one per input axis.
    pub fn rows(&self) -> [OrientedAxis; 3] {
        self.rows
    }

    /// True for the identity (nothing to permute or flip).
    pub fn is_identity(&self) -> bool {
        *self == Self::IDENTITY
    }

    /// nibabel's axis codes with the default `RAS` labels, e.g. `"LPS"`.
    pub fn axis_codes(&self) -> String {
        const LABELS: [(char, char); 3] = [('L', 'R'), ('P', 'A'), ('I', 'S')];
        self.rows
            .iter()
            .map(|r| {
                let (neg, pos) = LABELS[r.axis];
                if r.flipped {
                    neg
                } else {
                    pos
                }
            })
            .collect()
    }
}

/// nibabel's `io_orientation(affine)`: for each voxel axis, the world axis it is closest to
/// and whether it points the opposite way; `None` where the affine gives the axis no direction.
///
/// Like nibabel: the columns are normalised, the nearest orthogonal matrix is found by SVD
/// (singular values at or below `S.max() * 3 * f64::EPSILON` are dropped), then the voxel axes
/// are assigned greedily, the most decided first (ties keep axis order), each taking the world
/// axis of its largest absolute entry, which is then removed from the remaining choices.
/// Affines whose entries tie exactly (45° obliques) may be decided differently from LAPACK.
///
/// ```
/// use totalseg_core::geometry::{io_orientation, Orientation};
/// // voxel i runs right-to-left, j posterior-to-anterior, k inferior-to-superior: "LAS"
/// let affine = [[-0.8, 0.0, 0.0, 0.0], [0.0, 0.8, 0.0, 0.0], [0.0, 0.0, 1.5, 0.0], [0.0, 0.0, 0.0, 1.0]];
/// let ornt = Orientation::from_partial(io_orientation(&affine).unwrap()).unwrap();
/// assert_eq!(ornt.axis_codes(), "LAS");
/// ```
pub fn io_orientation(affine: &Affine) -> Result<[Option<OrientedAxis>; 3], GeometryError> {
    check_affine(affine)?;
    let mut rs = [[0.0; 3]; 3];
    for col in 0..3 {
        let (a, b, c) = (affine[0][col], affine[1][col], affine[2][col]);
        let mut zoom = (a * a + b * b + c * c).sqrt();
        if zoom == 0.0 {
            zoom = 1.0;
        }
        for row in 0..3 {
            rs[row][col] = affine[row][col] / zoom;
        }
    }
    let d = svd3(&rs);
    let s_max = d.s.iter().cloned().fold(0.0, f64::max);
    let tol = s_max * 3.0 * f64::EPSILON;
    // R = P[:, keep] · Qs[keep]: the orthogonal part of RS restricted to kept directions.
    let mut r = [[0.0; 3]; 3];
    for k in 0..3 {
        if d.s[k] > tol {
            for (row, r_row) in r.iter_mut().enumerate() {
                for (col, r_val) in r_row.iter_mut().enumerate() {
                    *r_val += d.u[row][k] * d.v[col][k];
                }
            }
        }
    }
    // Most decided axis first: ascending min over rows of -(R²), stable.
    let key = |col: usize| {
        (0..3)
            .map(|row| -(r[row][col] * r[row][col]))
            .fold(f64::INFINITY, f64::min)
    };
    let keys = [key(0), key(1), key(2)];
    let mut in_axes = [0usize, 1, 2];
    // numpy's stable argsort; -0.0 and 0.0 compare equal as in numpy.
    in_axes.sort_by(|&a, &b| {
        keys[a]
            .partial_cmp(&keys[b])
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut ornt = [None; 3];
    for in_ax in in_axes {
        let col = [r[0][in_ax], r[1][in_ax], r[2][in_ax]];
        // np.allclose(col, 0): |x| <= atol (1e-8) for every entry.
        if col.iter().all(|x| x.abs() <= 1e-8) {
            continue;
        }
        let mut out_ax = 0;
        for row in 1..3 {
            if col[row].abs() > col[out_ax].abs() {
                out_ax = row;
            }
        }
        ornt[in_ax] = Some(OrientedAxis {
            axis: out_ax,
            flipped: col[out_ax] < 0.0,
        });
        r[out_ax] = [0.0; 3];
    }
    Ok(ornt)
}

/// nibabel's `ornt_transform(start, end)`: the orientation that takes an array oriented as
/// `start` to one oriented as `end`.
///
/// ```
/// use totalseg_core::geometry::{ornt_transform, Orientation};
/// let t = ornt_transform(&Orientation::IDENTITY, &Orientation::IDENTITY);
/// assert!(t.is_identity());
/// ```
pub fn ornt_transform(start: &Orientation, end: &Orientation) -> Orientation {
    let mut rows = [OrientedAxis {
        axis: 0,
        flipped: false,
    }; 3];
    for (end_in, end_row) in end.rows.iter().enumerate() {
        // Both are permutations, so exactly one start row has the same output axis.
        if let Some(start_in) = start.rows.iter().position(|s| s.axis == end_row.axis) {
            rows[start_in] = OrientedAxis {
                axis: end_in,
                flipped: start.rows[start_in].flipped != end_row.flipped,
            };
        }
    }
    Orientation { rows }
}

/// nibabel's `apply_orientation(arr, ornt)`: flip the input axes marked flipped, then
/// transpose so that input axis `n` becomes output axis `ornt[n].axis`. Returns a new array
/// in standard (C) layout.
///
/// ```
/// use ndarray::Array3;
/// use totalseg_core::geometry::{apply_orientation, OrientedAxis, Orientation};
/// let a = Array3::from_shape_fn((2, 3, 4), |(i, j, k)| 100 * i + 10 * j + k);
/// let swap_flip = Orientation::new([
///     OrientedAxis { axis: 1, flipped: true },
///     OrientedAxis { axis: 0, flipped: false },
///     OrientedAxis { axis: 2, flipped: false },
/// ]).unwrap();
/// let b = apply_orientation(a.view(), &swap_flip);
/// assert_eq!(b.dim(), (3, 2, 4));
/// assert_eq!(b[[0, 0, 0]], a[[1, 0, 0]]);
/// ```
pub fn apply_orientation<T: Clone>(arr: ArrayView3<'_, T>, ornt: &Orientation) -> Array3<T> {
    let mut view = arr;
    for (axis, row) in ornt.rows.iter().enumerate() {
        if row.flipped {
            view.invert_axis(Axis(axis));
        }
    }
    // Output axis m is the input axis whose row names m (numpy argsort of ornt[:, 0]).
    let mut perm = [0usize; 3];
    for (input_axis, row) in ornt.rows.iter().enumerate() {
        perm[row.axis] = input_axis;
    }
    let view = view.permuted_axes(perm);
    let dim = view.raw_dim();
    let data: Vec<T> = view.iter().cloned().collect();
    Array3::from_shape_vec(dim, data).unwrap_or_else(|_| unreachable!("length matches shape"))
}

/// nibabel's `inv_ornt_aff(ornt, shape)`: the affine taking voxel indices of the array that
/// `apply_orientation(arr, ornt)` returns back to voxel indices of `arr` (shape `shape`).
/// The reoriented image's affine is `affine · inv_ornt_aff(ornt, shape)`.
pub fn inv_ornt_aff(ornt: &Orientation, shape: [usize; 3]) -> Affine {
    // undo_flip · undo_reorder, written out: row r of undo_reorder is e_{ornt[r].axis}.
    let mut out = [[0.0; 4]; 4];
    for (r, row) in ornt.rows.iter().enumerate() {
        let flip = if row.flipped { -1.0 } else { 1.0 };
        let center = -((shape[r] as f64) - 1.0) / 2.0;
        out[r][row.axis] = flip;
        out[r][3] = flip * center - center;
    }
    out[3][3] = 1.0;
    out
}
