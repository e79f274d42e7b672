//! Moving voxels between the NIfTI file order (first index fastest, i.e. Fortran order)
//! and C order `[i, j, k]` (last index fastest), converting element types on the way.
//! Both directions work in cache-sized tiles; a naive strided copy is several times slower
//! on CT-sized volumes.

use std::io::{self, Write};

use ndarray::parallel::prelude::*;
use ndarray::{Array3, Axis};

/// Bytes in a cache line.
const LINE: usize = 64;
/// Input bytes gathered per row of a read tile: a few lines, so hardware prefetchers see
/// sequential runs.
const READ_RUN_BYTES: usize = 4 * LINE;
/// Planes (`k` values) per read tile: two cache lines of `f32` output per row.
const READ_TILE_K: usize = 2 * LINE / std::mem::size_of::<f32>();

/// Converts `raw` (voxels in file order, `elem` bytes each, `shape = [ni, nj, nk]`) into a
/// C-order array. `decode` gets each element's bytes. `raw` must hold the whole grid.
///
/// Each `j` is one parallel task: a transpose of the (k, i) plane, done in tiles through a
/// small buffer. Input rows (fixed k) and output rows (fixed i) lie a multiple of 4 KiB
/// apart for typical CT sizes, so streaming many of them at once thrashes the cache;
/// tiles use every line they touch whole.
pub(crate) fn file_order_to_c_order<F>(
    raw: &[u8],
    elem: usize,
    shape: [usize; 3],
    decode: F,
) -> Array3<f32>
where
    F: Fn(&[u8]) -> f32 + Sync,
{
    let [ni, nj, nk] = shape;
    let tile_i = (READ_RUN_BYTES / elem.max(1)).max(1);
    let mut out = Array3::<f32>::zeros((ni, nj, nk));
    debug_assert!(raw.len() >= out.len() * elem);
    out.axis_iter_mut(Axis(1))
        .into_par_iter()
        .enumerate()
        .for_each(|(j, mut plane)| {
            let mut buf = vec![0f32; tile_i * READ_TILE_K];
            for i0 in (0..ni).step_by(tile_i) {
                let rows = tile_i.min(ni - i0);
                for k0 in (0..nk).step_by(READ_TILE_K) {
                    let kn = READ_TILE_K.min(nk - k0);
                    // Gather: kn input rows of `rows` consecutive voxels each.
                    for kk in 0..kn {
                        let start = (i0 + ni * (j + nj * (k0 + kk))) * elem;
                        let Some(src) = raw.get(start..start + rows * elem) else {
                            return;
                        };
                        for (ii, bytes) in src.chunks_exact(elem).enumerate() {
                            buf[ii * READ_TILE_K + kk] = decode(bytes);
                        }
                    }
                    // Scatter: `rows` output rows of kn consecutive values each.
                    for ii in 0..rows {
                        let mut row = plane.row_mut(i0 + ii);
                        if let Some(dst) = row.as_slice_mut() {
                            dst[k0..k0 + kn]
                                .copy_from_slice(&buf[ii * READ_TILE_K..ii * READ_TILE_K + kn]);
                        }
                    }
                }
            }
        });
    out
}

/// Writes a C-order grid (`data` in standard layout, `shape = [ni, nj, nk]`) in file order,
/// `elem` bytes per voxel produced by `encode`, streaming blocks of `k` planes to `out`.
/// Tiled like [`file_order_to_c_order`], in the other direction.
pub(crate) fn write_c_order_as_file_order<T, W, F>(
    data: &[T],
    shape: [usize; 3],
    elem: usize,
    encode: F,
    out: &mut W,
) -> io::Result<()>
where
    T: Copy + Default,
    W: Write + ?Sized,
    F: Fn(T, &mut [u8]),
{
    let [ni, nj, nk] = shape;
    // A block of `kb` planes: each source run data[i, j, k0..k0+kb] is one cache line.
    let kb = (LINE / std::mem::size_of::<T>().max(1)).clamp(1, nk.max(1));
    // Output voxels per tile row: one cache line of output.
    let tile_i = (LINE / elem.max(1)).max(1);
    let plane_bytes = ni * nj * elem;
    let mut buf = vec![0u8; plane_bytes * kb];
    let mut tile = vec![T::default(); tile_i * kb];
    let mut k0 = 0;
    while k0 < nk {
        let kn = kb.min(nk - k0);
        for j in 0..nj {
            for i0 in (0..ni).step_by(tile_i) {
                let rows = tile_i.min(ni - i0);
                for ii in 0..rows {
                    let src = ((i0 + ii) * nj + j) * nk + k0;
                    tile[ii * kb..ii * kb + kn].copy_from_slice(&data[src..src + kn]);
                }
                for kk in 0..kn {
                    let at = ((kk * nj + j) * ni + i0) * elem;
                    let dst = &mut buf[at..at + rows * elem];
                    for (ii, bytes) in dst.chunks_exact_mut(elem).enumerate() {
                        encode(tile[ii * kb + kk], bytes);
                    }
                }
            }
        }
        out.write_all(&buf[..plane_bytes * kn])?;
        k0 += kn;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_matches_fortran_indexing() {
        let shape = [300, 3, 37]; // several read tiles along i and k, partial last ones
        let n = shape.iter().product::<usize>();
        let raw: Vec<u8> = (0..n as u16).flat_map(|v| v.to_le_bytes()).collect();
        let arr =
            file_order_to_c_order(&raw, 2, shape, |b| u16::from_le_bytes([b[0], b[1]]) as f32);
        for i in 0..shape[0] {
            for j in 0..shape[1] {
                for k in 0..shape[2] {
                    let linear = i + shape[0] * (j + shape[1] * k);
                    assert_eq!(arr[[i, j, k]], linear as f32);
                }
            }
        }
        assert!(arr.is_standard_layout());
    }

    #[test]
    fn write_is_the_inverse_of_read() {
        let shape = [7, 4, 70]; // several k blocks, a partial last one
        let n = shape.iter().product::<usize>();
        let data: Vec<u8> = (0..n).map(|v| (v * 7 % 251) as u8).collect();
        let mut out = Vec::new();
        write_c_order_as_file_order(&data, shape, 1, |v, b| b[0] = v, &mut out).expect("vec write");
        assert_eq!(out.len(), n);
        let back = file_order_to_c_order(&out, 1, shape, |b| b[0] as f32);
        for (a, b) in back.iter().zip(data.iter()) {
            assert_eq!(*a, *b as f32);
        }
    }
}
