//! Transposed 3-D convolution with kernel = stride (the decoder's upsampling) on f32 NCDHW
//! data: every input voxel owns a disjoint `sd x sh x sw` block of the output, so it is one
//! matrix product `[voxels, in] x [in, out * sd * sh * sw]` followed by a depth-to-space
//! scatter. The product runs on the convolution microkernel: a tile is [`TILE`] consecutive
//! input voxels, whose reduction rows (one per input channel) are read in place.

use rayon::prelude::*;

use super::conv3d::{pack_panels, panel_widths, OutputPtr, RowPtr};
use super::microkernel::{self, Kernel, TILE};

/// `conv_transpose3d(input, weight, bias, stride)` with kernel = stride and no padding:
/// `input` is `[batch, in, d, h, w]`, `weight` `[in, out, sd, sh, sw]` (both contiguous), the
/// result `[batch, out, d * sd, h * sh, w * sw]`.
pub(crate) fn conv_transpose3d_f32(
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    [batch, cin, d, h, w]: [usize; 5],
    out_channels: usize,
    [sd, sh, sw]: [usize; 3],
    kernel: Kernel,
) -> Vec<f32> {
    let voxels = d * h * w;
    let block = sd * sh * sw;
    // The product's columns: (out channel, a, b, c), exactly the weight's row-major order.
    let columns = out_channels * block;
    let panels = panel_widths(columns);
    let packed = pack_panels(weight, cin, columns, &panels);
    let (od, oh, ow) = (d * sd, h * sh, w * sw);
    let out_voxels = od * oh * ow;
    let mut output = vec![0.0f32; batch * out_channels * out_voxels];
    let out_ptr = OutputPtr(output.as_mut_ptr());
    let tiles_per_sample = voxels.div_ceil(TILE);
    let zeros = [0.0f32; TILE];
    let result_len = panels.last().map_or(0, |&(f, w)| f + w) * TILE;
    (0..batch * tiles_per_sample).into_par_iter().for_each_init(
        || {
            (
                vec![0.0f32; cin * TILE],
                vec![RowPtr(zeros.as_ptr()); cin],
                vec![0.0f32; result_len],
            )
        },
        |(panel, rows, result), tile| {
            let n = tile / tiles_per_sample;
            let m0 = (tile % tiles_per_sample) * TILE;
            let valid = TILE.min(voxels - m0);
            for (c, row) in rows.iter_mut().enumerate() {
                let src = &input[(n * cin + c) * voxels + m0..][..valid];
                *row = if valid == TILE {
                    RowPtr(src.as_ptr())
                } else {
                    // The last tile of a sample: copy, zero-padded to a whole tile.
                    let dst = &mut panel[c * TILE..(c + 1) * TILE];
                    dst[..valid].copy_from_slice(src);
                    dst[valid..].fill(0.0);
                    RowPtr(dst.as_ptr())
                };
            }
            for &(first, width) in &panels {
                let weights = &packed[first * cin..];
                let acc = &mut result[first * TILE..(first + width) * TILE];
                microkernel::run(kernel, width, rows, weights, width, acc, false);
            }
            // Depth-to-space: column (o, a, b, c) of voxel (z, y, x) goes to output voxel
            // (z sd + a, y sh + b, x sw + c) of channel o.
            for i in 0..valid {
                let m = m0 + i;
                let (z, y, x) = (m / (h * w), (m / w) % h, m % w);
                for o in 0..out_channels {
                    let add = bias.map_or(0.0, |b| b[o]);
                    let channel = (n * out_channels + o) * out_voxels;
                    for a in 0..sd {
                        for b in 0..sh {
                            let row = channel + ((z * sd + a) * oh + y * sh + b) * ow + x * sw;
                            for c in 0..sw {
                                let j = ((o * sd + a) * sh + b) * sw + c;
                                // SAFETY: each output voxel is written by exactly one input
                                // voxel (kernel = stride), which belongs to this tile only;
                                // indices are within `output` by construction.
                                unsafe { *out_ptr.at(row + c) = result[j * TILE + i] + add };
                            }
                        }
                    }
                }
            }
        },
    );
    output
}
