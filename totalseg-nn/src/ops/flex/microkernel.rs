//! The convolution's inner product: a `TILE x NR` block of outputs (TILE voxels of NR output
//! channels) accumulated over the reduction `k` in registers.
//!
//! The panel (`[k][TILE]`, voxels contiguous) is loaded as vectors; each weight is broadcast.
//! An AVX-512 version is chosen at run time where the processor has it (24 accumulator
//! registers, 2 loads and 24 FMAs per `k`); else, on x86-64 with AVX2 + FMA, a plain-Rust
//! version compiled for those; elsewhere the same plain Rust vectorised by the compiler for
//! the target (SSE2 on any x86-64, NEON on aarch64).

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
    /// Plain Rust, auto-vectorised for the build target (SSE2 on x86-64, NEON on aarch64).
    Portable,
    /// The same plain Rust compiled for AVX2 + FMA (x86-64, checked at run time).
    Avx2,
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
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernel::Avx2;
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
    // Every implementation is monomorphised per panel width.
    macro_rules! by_width {
        ($($tile:ident)::+ ($($arg:expr),*)) => {
            match width {
                12 => $($tile)::+::<12>($($arg),*),
                8 => $($tile)::+::<8>($($arg),*),
                _ => $($tile)::+::<4>($($arg),*),
            }
        };
    }
    match kernel {
        // SAFETY (all three x86-64 arms): each variant is only chosen when the processor
        // reports its features (`detect`, `super::bf16::supported`, or a test that checked
        // them); the bounds were asserted above and the rows are valid by this function's
        // contract.
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512 => unsafe {
            by_width!(avx512::tile(
                rows,
                weights.as_ptr(),
                stride,
                acc.as_mut_ptr(),
                accumulate
            ))
        },
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512Bf16 => unsafe {
            by_width!(avx512bf16::tile(
                rows,
                weights.as_ptr(),
                stride,
                acc.as_mut_ptr(),
                accumulate
            ))
        },
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => unsafe { by_width!(avx2(rows, weights, stride, acc, accumulate)) },
        #[cfg(not(target_arch = "x86_64"))]
        Kernel::Avx512Bf16 | Kernel::Avx2 => {
            unreachable!("x86-64 kernels are only selected on x86-64")
        }
        _ => by_width!(portable(rows, weights, stride, acc, accumulate)),
    }
}

fn portable<const W: usize>(
    rows: &[RowPtr],
    weights: &[f32],
    stride: usize,
    out: &mut [f32],
    accumulate: bool,
) {
    portable_body::<W, 4, false>(rows, weights, stride, out, accumulate);
}

/// The portable tile compiled for AVX2 + FMA (x86-64 processors without AVX-512).
///
/// # Safety
/// AVX2 and FMA must be available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<const W: usize>(
    rows: &[RowPtr],
    weights: &[f32],
    stride: usize,
    out: &mut [f32],
    accumulate: bool,
) {
    portable_body::<W, 8, true>(rows, weights, stride, out, accumulate);
}

/// The tile in slices of `V` voxels, each over the whole reduction, so that the `W x V`
/// accumulators fit the target's vector registers (12 x 8 lanes: 12 AVX2 registers; with
/// `V = 4`, 12 SSE/NEON registers). `FUSED` multiplies and adds with one rounding
/// (`mul_add`), which only pays where the target has FMA instructions (elsewhere it would call
/// the C library's `fmaf`).
#[inline(always)]
fn portable_body<const W: usize, const V: usize, const FUSED: bool>(
    rows: &[RowPtr],
    weights: &[f32],
    stride: usize,
    out: &mut [f32],
    accumulate: bool,
) {
    for v0 in (0..TILE).step_by(V) {
        let mut acc = [[0.0f32; V]; W];
        if accumulate {
            for (j, acc_row) in acc.iter_mut().enumerate() {
                acc_row.copy_from_slice(&out[j * TILE + v0..j * TILE + v0 + V]);
            }
        }
        for (k, row) in rows.iter().enumerate() {
            // SAFETY: every row points at TILE readable values (this module's contract) and
            // v0 + V <= TILE.
            let a: [f32; V] = unsafe { std::ptr::read_unaligned(row.0.add(v0).cast()) };
            let w = &weights[k * stride..k * stride + W];
            for (acc_row, &wj) in acc.iter_mut().zip(w) {
                for (r, &x) in acc_row.iter_mut().zip(&a) {
                    *r = if FUSED {
                        x.mul_add(wj, *r)
                    } else {
                        *r + x * wj
                    };
                }
            }
        }
        for (j, acc_row) in acc.iter().enumerate() {
            out[j * TILE + v0..j * TILE + v0 + V].copy_from_slice(acc_row);
        }
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
