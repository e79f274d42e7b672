//! The convolution's inner product: a `TILE x NR` block of outputs (TILE voxels of NR output
//! channels) accumulated over the reduction `k` in registers.
//!
//! The panel (`[k][TILE]`, voxels contiguous) is loaded as vectors; each weight is broadcast.
//! An AVX-512 version is chosen at run time where the processor has it (24 accumulator
//! registers, 2 loads and 24 FMAs per `k`); elsewhere a portable version that the compiler
//! vectorises for the target (SSE2 on any x86-64, NEON on aarch64).

pub(crate) use super::conv3d::RowPtr;

/// Output voxels per tile (two 16-lane vectors).
pub(crate) const TILE: usize = 32;
/// Output channels per tile.
pub(crate) const NR: usize = 12;

/// Which implementation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// `std::arch` AVX-512F intrinsics (x86-64 only, checked at run time).
    Avx512,
    /// Plain Rust, auto-vectorised.
    Portable,
    /// AVX-512 BF16 dot products (`vdpbf16ps`): every 32-bit "value" of the rows and weights
    /// is a pair of bf16 numbers (two input channels), multiplied pairwise and summed into f32
    /// accumulators. Only the reduced-precision mode uses it (see `super::bf16`).
    Avx512Bf16,
}

impl Kernel {
    /// The fastest kernel this processor supports.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
        }
        Kernel::Portable
    }
}

/// `acc[j * TILE + i] (+)= sum_k rows[k][i] * weights[k * stride + j]` for `i < TILE`,
/// `j < width` (`width` is 12, 8 or 4: the channels of this panel); `accumulate` adds to
/// `acc`'s values instead of overwriting them (the second and later blocks of the reduction).
///
/// Every `rows[k]` must point at `TILE` readable values (see `conv3d::RowPtr`).
pub(crate) fn run(
    kernel: Kernel,
    width: usize,
    rows: &[RowPtr],
    weights: &[f32],
    stride: usize,
    acc: &mut [f32],
    accumulate: bool,
) {
    let k_len = rows.len();
    assert!(matches!(width, 4 | 8 | 12));
    assert!(acc.len() >= width * TILE);
    assert!(k_len == 0 || weights.len() >= (k_len - 1) * stride + width);
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => {
            // SAFETY: `Avx512` is only chosen when the processor reports AVX-512F (`detect`,
            // or a test that checked it); the bounds were asserted above and the rows are
            // valid by this function's contract.
            unsafe {
                let (w, a) = (weights.as_ptr(), acc.as_mut_ptr());
                match width {
                    12 => avx512::tile::<12>(rows, w, stride, a, accumulate),
                    8 => avx512::tile::<8>(rows, w, stride, a, accumulate),
                    _ => avx512::tile::<4>(rows, w, stride, a, accumulate),
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512Bf16 => {
            // SAFETY: `Avx512Bf16` is only chosen after `super::bf16::supported()` found
            // AVX-512F and AVX-512 BF16; bounds as above.
            unsafe {
                let (w, a) = (weights.as_ptr(), acc.as_mut_ptr());
                match width {
                    12 => avx512bf16::tile::<12>(rows, w, stride, a, accumulate),
                    8 => avx512bf16::tile::<8>(rows, w, stride, a, accumulate),
                    _ => avx512bf16::tile::<4>(rows, w, stride, a, accumulate),
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Kernel::Avx512Bf16 => unreachable!("bf16 kernels are only selected on x86-64"),
        _ => match width {
            12 => portable::<12>(rows, weights, stride, acc, accumulate),
            8 => portable::<8>(rows, weights, stride, acc, accumulate),
            _ => portable::<4>(rows, weights, stride, acc, accumulate),
        },
    }
}

fn portable<const W: usize>(
    rows: &[RowPtr],
    weights: &[f32],
    stride: usize,
    out: &mut [f32],
    accumulate: bool,
) {
    let mut acc = [[0.0f32; TILE]; W];
    if accumulate {
        for (j, acc_row) in acc.iter_mut().enumerate() {
            acc_row.copy_from_slice(&out[j * TILE..(j + 1) * TILE]);
        }
    }
    for (k, row) in rows.iter().enumerate() {
        // SAFETY: every row points at TILE readable values (this module's contract).
        let a = unsafe { std::slice::from_raw_parts(row.0, TILE) };
        let w = &weights[k * stride..k * stride + W];
        for (acc_row, &wj) in acc.iter_mut().zip(w) {
            for (r, &x) in acc_row.iter_mut().zip(a) {
                *r += x * wj;
            }
        }
    }
    for (j, acc_row) in acc.iter().enumerate() {
        out[j * TILE..(j + 1) * TILE].copy_from_slice(acc_row);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{RowPtr, TILE};

    /// See [`super::run`]; the caller guarantees AVX-512F and the bounds.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile<const W: usize>(
        rows: &[RowPtr],
        weights: *const f32,
        stride: usize,
        out: *mut f32,
        accumulate: bool,
    ) {
        let mut lo = [_mm512_setzero_ps(); W];
        let mut hi = [_mm512_setzero_ps(); W];
        if accumulate {
            for j in 0..W {
                lo[j] = _mm512_loadu_ps(out.add(j * TILE));
                hi[j] = _mm512_loadu_ps(out.add(j * TILE + 16));
            }
        }
        let mut w_ptr = weights;
        for row in rows {
            let a0 = _mm512_loadu_ps(row.0);
            let a1 = _mm512_loadu_ps(row.0.add(16));
            for j in 0..W {
                let w = _mm512_set1_ps(*w_ptr.add(j));
                lo[j] = _mm512_fmadd_ps(a0, w, lo[j]);
                hi[j] = _mm512_fmadd_ps(a1, w, hi[j]);
            }
            w_ptr = w_ptr.add(stride);
        }
        for j in 0..W {
            _mm512_storeu_ps(out.add(j * TILE), lo[j]);
            _mm512_storeu_ps(out.add(j * TILE + 16), hi[j]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512bf16 {
    use std::arch::x86_64::*;

    use super::{RowPtr, TILE};

    /// As `avx512::tile`, with each 32-bit lane holding a pair of bf16 values: `rows[k]`
    /// points at TILE pairs (voxels), `weights[k * stride + j]` is one pair per channel.
    ///
    /// # Safety
    /// AVX-512F and AVX-512 BF16 must be available; bounds as in [`super::run`].
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn tile<const W: usize>(
        rows: &[RowPtr],
        weights: *const f32,
        stride: usize,
        out: *mut f32,
        accumulate: bool,
    ) {
        let mut lo = [_mm512_setzero_ps(); W];
        let mut hi = [_mm512_setzero_ps(); W];
        if accumulate {
            for j in 0..W {
                lo[j] = _mm512_loadu_ps(out.add(j * TILE));
                hi[j] = _mm512_loadu_ps(out.add(j * TILE + 16));
            }
        }
        let mut w_ptr = weights.cast::<i32>();
        for row in rows {
            // SAFETY (transmute): __m512i and __m512bh are both 512 plain bits.
            let a0: __m512bh = std::mem::transmute(_mm512_loadu_si512(row.0.cast()));
            let a1: __m512bh = std::mem::transmute(_mm512_loadu_si512(row.0.add(16).cast()));
            for j in 0..W {
                let w: __m512bh = std::mem::transmute(_mm512_set1_epi32(*w_ptr.add(j)));
                lo[j] = _mm512_dpbf16_ps(lo[j], a0, w);
                hi[j] = _mm512_dpbf16_ps(hi[j], a1, w);
            }
            w_ptr = w_ptr.add(stride);
        }
        for j in 0..W {
            _mm512_storeu_ps(out.add(j * TILE), lo[j]);
            _mm512_storeu_ps(out.add(j * TILE + 16), hi[j]);
        }
    }
}
