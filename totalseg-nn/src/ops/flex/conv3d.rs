//! Direct 3-D convolution on f32 NCDHW data, tiled over the output: each tile is
//! [`TILE`] consecutive output voxels of every output channel, accumulated in registers by
//! the microkernel (see [`super::microkernel`]) over `K = in x kd x kh x kw` reduction rows.
//!
//! The input is first copied once into rows padded with the convolution's zeros along the
//! last axis (and split by phase when that axis strides), so that every reduction row of a
//! tile that lies within one output row is a contiguous run of one input row: the kernel reads
//! it in place through a pointer, with no im2col copy. Only tiles that wrap over several
//! output rows (the small deep layers) gather their rows into a per-thread panel.
//!
//! Why not a full-size im2col + one GEMM (what Burn's CPU backend does): that panel is 27 x
//! the input (gigabytes for a 128^3 tile of 32 channels) written to and read back from main
//! memory.

use rayon::prelude::*;

use super::microkernel::{self, Kernel, NR, TILE};

/// Reduction rows per block (rounded to whole input channels): a block's rows (`K_BLOCK x
/// TILE` floats when gathered) and its weights stay in L2 while every output-channel panel
/// runs over them.
const K_BLOCK: usize = 512;

/// Most tiles run together as one group (see `conv3d_f32`): groups are as large as this
/// allows while every thread still gets the same number of groups.
const MAX_GROUP: usize = 8;

/// Shapes of one convolution (batch, channels, sizes, kernel, stride, padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvGeometry {
    pub(crate) batch: usize,
    pub(crate) in_channels: usize,
    pub(crate) out_channels: usize,
    pub(crate) input: [usize; 3],
    pub(crate) kernel: [usize; 3],
    pub(crate) stride: [usize; 3],
    pub(crate) padding: [usize; 3],
}

impl ConvGeometry {
    /// Output sizes, PyTorch's `floor((in + 2 p - k) / s) + 1`; `None` when the kernel does not
    /// fit or a stride is zero.
    pub(crate) fn output(&self) -> Option<[usize; 3]> {
        let mut out = [0; 3];
        for (axis, size) in out.iter_mut().enumerate() {
            let padded = self.input[axis] + 2 * self.padding[axis];
            if self.stride[axis] == 0 || padded < self.kernel[axis] {
                return None;
            }
            *size = (padded - self.kernel[axis]) / self.stride[axis] + 1;
        }
        Some(out)
    }

    /// Rows of the im2col panel: `in_channels * kd * kh * kw`.
    pub(crate) fn reduction_len(&self) -> usize {
        self.in_channels * self.kernel.iter().product::<usize>()
    }
}

/// Input rows padded along the last axis and split by phase: with stride `s`, phase `r`
/// holds the padded positions `u = r, r + s, r + 2s, ...`, so that kernel column `e` of the
/// outputs `ow0..ow0 + len` is the contiguous run `phase (e mod s)`, from `ow0 + e / s`.
struct PaddedRows {
    data: Vec<f32>,
    /// Length of one phase (`ceil((w + 2 p) / s)`); a row holds `stride` phases.
    phase_len: usize,
    stride: usize,
}

impl PaddedRows {
    fn new(input: &[f32], width: usize, stride: usize, padding: usize) -> Self {
        let padded = width + 2 * padding;
        let phase_len = padded.div_ceil(stride);
        let rows = input.len() / width.max(1);
        let mut data = vec![0.0f32; rows * phase_len * stride];
        if width > 0 {
            data.par_chunks_mut(phase_len * stride)
                .zip(input.par_chunks(width))
                .for_each(|(dst, src)| {
                    if stride == 1 {
                        dst[padding..padding + width].copy_from_slice(src);
                    } else {
                        for (w, &value) in src.iter().enumerate() {
                            let u = w + padding;
                            dst[(u % stride) * phase_len + u / stride] = value;
                        }
                    }
                });
        }
        Self {
            data,
            phase_len,
            stride,
        }
    }

    /// Row `row` (a flat `(n, c, d, h)` index).
    #[inline]
    fn row(&self, row: usize) -> &[f32] {
        let len = self.phase_len * self.stride;
        &self.data[row * len..(row + 1) * len]
    }

    /// Start, within a row, of kernel column `e`'s run for the outputs from `ow0`.
    #[inline]
    fn run_start(&self, e: usize, ow0: usize) -> usize {
        (e % self.stride) * self.phase_len + ow0 + e / self.stride
    }
}

/// Output channels of the next panel when `remaining` are left: panels of 12 (the widest
/// microkernel) and 8, so that every multiple of 4 splits without padding (64 = 4 x 12 + 2 x 8);
/// otherwise the last panel is rounded up and reads zero-padded weights.
fn panel_width(remaining: usize) -> usize {
    match remaining {
        16 => 8,
        r if r > 8 => NR,
        r if r > 4 => 8,
        _ => 4,
    }
}

/// The output-channel panels `(first channel, width)` covering `columns` channels.
pub(crate) fn panel_widths(columns: usize) -> Vec<(usize, usize)> {
    let mut panels = Vec::new();
    let mut first = 0;
    while first < columns {
        let width = panel_width(columns - first);
        panels.push((first, width));
        first += width;
    }
    panels
}

/// Channels covered by the panels of `columns` channels (a multiple of 4).
pub(crate) fn panels_width(columns: usize) -> usize {
    panel_widths(columns).last().map_or(0, |&(f, w)| f + w)
}

/// The weights regrouped panel by panel: panel `(first, width)` is `[k_len][width]`
/// contiguous from `first * k_len` (zero-padded past `columns`), so the microkernel streams
/// them sequentially.
pub(crate) fn pack_panels(
    weight_k_major: &[f32],
    k_len: usize,
    columns: usize,
    panels: &[(usize, usize)],
) -> Vec<f32> {
    let total = panels.last().map_or(0, |&(f, w)| f + w);
    let mut packed = vec![0.0f32; total * k_len];
    for &(first, width) in panels {
        let real = width.min(columns - first);
        let dst_panel = &mut packed[first * k_len..(first + width) * k_len];
        for (k, dst) in dst_panel.chunks_exact_mut(width).enumerate() {
            let src = &weight_k_major[k * columns + first..][..real];
            dst[..real].copy_from_slice(src);
        }
    }
    packed
}

/// Where the microkernel reads one reduction row of a tile: in place in the padded input, in
/// the tile's gathered panel, or a row of zeros (padding along the first two axes).
#[derive(Clone, Copy)]
pub(crate) struct RowPtr(pub(crate) *const f32);
// SAFETY: a `RowPtr` only ever points into buffers that outlive the parallel loop that
// uses it (the padded input, the thread's own panel, a zero row), and is only read through.
unsafe impl Send for RowPtr {}

/// What every tile of one convolution shares.
struct TileShape {
    geometry: ConvGeometry,
    out_dims: [usize; 3],
}

impl TileShape {
    /// The input row `(n, c, d, h)` read by output row `(z, y)` at kernel offsets `(a, b)`, or
    /// `None` in the zero padding.
    #[inline]
    fn input_row(
        &self,
        n: usize,
        c: usize,
        z: usize,
        y: usize,
        a: usize,
        b: usize,
    ) -> Option<usize> {
        let g = &self.geometry;
        let d = (z * g.stride[0] + a).checked_sub(g.padding[0])?;
        let h = (y * g.stride[1] + b).checked_sub(g.padding[1])?;
        (d < g.input[0] && h < g.input[1])
            .then(|| ((n * g.in_channels + c) * g.input[0] + d) * g.input[1] + h)
    }

    /// Points `rows[k]` at the reduction rows of input channels `channels` (row `k` is
    /// `(c - channels.start, a, b, e)`) for the tile of `valid` output voxels starting at flat
    /// output index `m0` of sample `n`, gathering into `panel` when the tile wraps.
    #[allow(clippy::too_many_arguments)]
    fn point_rows(
        &self,
        input: &PaddedRows,
        n: usize,
        m0: usize,
        valid: usize,
        channels: std::ops::Range<usize>,
        panel: &mut [f32],
        rows: &mut [RowPtr],
        zeros: &[f32; TILE],
    ) {
        let g = &self.geometry;
        let [_, oh, ow] = self.out_dims;
        let [kd, kh, kw] = g.kernel;
        let (z, rest) = (m0 / (oh * ow), m0 % (oh * ow));
        let (y, x) = (rest / ow, rest % ow);
        if x + TILE <= ow {
            // The whole tile is one run of one output row: read every row in place.
            let mut k = 0;
            for c in channels {
                for a in 0..kd {
                    for b in 0..kh {
                        match self.input_row(n, c, z, y, a, b) {
                            Some(r) => {
                                let row = input.row(r);
                                for e in 0..kw {
                                    rows[k + e] = RowPtr(row[input.run_start(e, x)..].as_ptr());
                                }
                            }
                            None => rows[k..k + kw].fill(RowPtr(zeros.as_ptr())),
                        }
                        k += kw;
                    }
                }
            }
            return;
        }
        // Gather run by run (each within one output row), zeros after the last valid voxel.
        let mut m = m0;
        while m < m0 + valid {
            let (z, rest) = (m / (oh * ow), m % (oh * ow));
            let (y, x) = (rest / ow, rest % ow);
            let run = (ow - x).min(m0 + valid - m);
            let offset = m - m0;
            let mut k = 0;
            for c in channels.clone() {
                for a in 0..kd {
                    for b in 0..kh {
                        let row = self.input_row(n, c, z, y, a, b).map(|r| input.row(r));
                        for e in 0..kw {
                            let dst = &mut panel[(k + e) * TILE + offset..][..run];
                            match row {
                                Some(row) => {
                                    let start = input.run_start(e, x);
                                    dst.copy_from_slice(&row[start..start + run]);
                                }
                                None => dst.fill(0.0),
                            }
                        }
                        k += kw;
                    }
                }
            }
            m += run;
        }
        for (k, row) in rows.iter_mut().enumerate() {
            panel[k * TILE + valid..(k + 1) * TILE].fill(0.0);
            *row = RowPtr(panel[k * TILE..].as_ptr());
        }
    }
}

/// A raw output pointer shared by the rayon workers; each tile writes a disjoint set of
/// voxels, so no two threads ever touch the same element.
#[derive(Clone, Copy)]
pub(crate) struct OutputPtr(pub(crate) *mut f32);
// SAFETY: see the type's documentation: writes are disjoint per tile.
unsafe impl Send for OutputPtr {}
unsafe impl Sync for OutputPtr {}

impl OutputPtr {
    /// The element `offset` (a method, so closures capture the whole `Send` wrapper).
    pub(crate) fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// `conv3d` of `input` (`[batch, in, d, h, w]`, contiguous) with the weights as
/// [`pack_panels`] arranges them, plus `bias`, returning the contiguous
/// `[batch, out, od, oh, ow]` output.
///
/// The caller checks the lengths against `geometry` (see `Flex`'s `unet_conv3d`).
pub(crate) fn conv3d_f32(
    input: &[f32],
    packed: &[f32],
    bias: Option<&[f32]>,
    geometry: &ConvGeometry,
    kernel: Kernel,
) -> Vec<f32> {
    let g = *geometry;
    let Some(out_dims) = g.output() else {
        return Vec::new();
    };
    let out_voxels: usize = out_dims.iter().product();
    let k_len = g.reduction_len();
    let co = g.out_channels;
    let padded = PaddedRows::new(input, g.input[2], g.stride[2], g.padding[2]);

    let panels = panel_widths(co);
    debug_assert_eq!(packed.len(), panels_width(co) * k_len);

    let mut output = vec![0.0f32; g.batch * co * out_voxels];
    let out_ptr = OutputPtr(output.as_mut_ptr());
    let tiles_per_sample = out_voxels.div_ceil(TILE);
    let zeros = [0.0f32; TILE];
    let shape = TileShape {
        geometry: g,
        out_dims,
    };
    let result_len = panels.last().map_or(0, |&(f, w)| f + w) * TILE;
    let taps: usize = g.kernel.iter().product();
    let channel_block = (K_BLOCK / taps.max(1)).max(1);
    let block_rows = channel_block * taps;
    // Consecutive tiles of one sample run as a group, so that each panel's weight block is
    // reused from cache by every tile of the group (it matters for the deep layers, whose
    // weights are megabytes); groups stay small enough to give every thread work.
    let tiles = g.batch * tiles_per_sample;
    let threads = rayon::current_num_threads().max(1);
    let groups = threads * tiles.div_ceil(threads * MAX_GROUP);
    let group = tiles.div_ceil(groups).clamp(1, MAX_GROUP);
    let groups_per_sample = tiles_per_sample.div_ceil(group);
    (0..g.batch * groups_per_sample)
        .into_par_iter()
        .for_each_init(
            || {
                (
                    vec![0.0f32; group * block_rows * TILE],
                    vec![RowPtr(zeros.as_ptr()); group * block_rows],
                    vec![0.0f32; group * result_len],
                )
            },
            |(panel, rows, result), group_index| {
                let n = group_index / groups_per_sample;
                let first_tile = (group_index % groups_per_sample) * group;
                let last_tile = tiles_per_sample.min(first_tile + group);
                let members = last_tile - first_tile;
                let tile_start = |t: usize| (first_tile + t) * TILE;
                let tile_valid = |t: usize| TILE.min(out_voxels - tile_start(t));
                for c0 in (0..g.in_channels).step_by(channel_block) {
                    let c1 = g.in_channels.min(c0 + channel_block);
                    let k0 = c0 * taps;
                    let len = (c1 - c0) * taps;
                    for t in 0..members {
                        shape.point_rows(
                            &padded,
                            n,
                            tile_start(t),
                            tile_valid(t),
                            c0..c1,
                            &mut panel[t * block_rows * TILE..(t + 1) * block_rows * TILE],
                            &mut rows[t * block_rows..t * block_rows + len],
                            &zeros,
                        );
                    }
                    for &(first, width) in &panels {
                        let weights = &packed[first * k_len + k0 * width..];
                        for t in 0..members {
                            let block = &rows[t * block_rows..t * block_rows + len];
                            let acc =
                                &mut result[t * result_len..][first * TILE..(first + width) * TILE];
                            microkernel::run(kernel, width, block, weights, width, acc, k0 > 0);
                        }
                    }
                }
                for t in 0..members {
                    let (m0, valid) = (tile_start(t), tile_valid(t));
                    let tile_result = &result[t * result_len..(t + 1) * result_len];
                    for j in 0..co {
                        let add = bias.map_or(0.0, |b| b[j]);
                        let dst_offset = (n * co + j) * out_voxels + m0;
                        let src = &tile_result[j * TILE..j * TILE + valid];
                        // SAFETY: voxels m0..m0+valid of channel j of sample n belong to this
                        // tile only, and lie inside `output` (n < batch, j < co,
                        // m0 + valid <= out_voxels).
                        unsafe {
                            let dst = out_ptr.at(dst_offset);
                            for (i, &v) in src.iter().enumerate() {
                                *dst.add(i) = v + add;
                            }
                        }
                    }
                }
            },
        );
    output
}
