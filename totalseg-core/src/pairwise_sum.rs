//! NumPy's pairwise summation (`np.sum`, `np.mean`, `np.std` on float arrays).
//!
//! Reductions in the reference (z-score normalisation, the gaussian kernel's normalisation)
//! go through NumPy's `pairwise_sum`: blocks of at most 128 elements are summed with eight
//! interleaved accumulators, longer runs are split in two at a multiple of 8. Reproducing
//! that order is what makes our float results bit-identical to NumPy's. A reduction over a
//! whole C-contiguous array is one pairwise sum over the flattened array.

/// Floats that NumPy sums with its pairwise algorithm in their own precision.
pub trait PairwiseFloat: Copy + std::ops::Add<Output = Self> {
    /// The additive identity.
    const ZERO: Self;
}

impl PairwiseFloat for f32 {
    const ZERO: Self = 0.0;
}

impl PairwiseFloat for f64 {
    const ZERO: Self = 0.0;
}

/// Number of elements below which NumPy stops splitting (`PW_BLOCKSIZE`).
const BLOCK_SIZE: usize = 128;

/// Sums `values` exactly as NumPy's `pairwise_sum` does, in the element type's precision.
///
/// ```
/// use totalseg_core::pairwise_sum::pairwise_sum;
/// let v: Vec<f32> = (0..1000).map(|i| i as f32 * 0.1).collect();
/// assert!((pairwise_sum(&v) - 49950.0).abs() < 0.1);
/// ```
pub fn pairwise_sum<T: PairwiseFloat>(values: &[T]) -> T {
    pairwise_sum_by(0, values.len(), &|i| values[i])
}

/// [`pairwise_sum`] of the `n` values `value(start)`, ..., `value(start + n - 1)`, for
/// values that are not in one slice (a volume walked in another memory order, say).
///
/// ```
/// use totalseg_core::pairwise_sum::{pairwise_sum, pairwise_sum_by};
/// let v: Vec<f64> = (0..1000).map(|i| (i as f64).sqrt()).collect();
/// assert_eq!(pairwise_sum_by(0, v.len(), &|i| v[i]), pairwise_sum(&v));
/// ```
pub fn pairwise_sum_by<T: PairwiseFloat>(start: usize, n: usize, value: &impl Fn(usize) -> T) -> T {
    if n < 8 {
        let mut res = T::ZERO;
        for i in start..start + n {
            res = res + value(i);
        }
        res
    } else if n <= BLOCK_SIZE {
        let mut r = [T::ZERO; 8];
        for (j, acc) in r.iter_mut().enumerate() {
            *acc = value(start + j);
        }
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for (j, acc) in r.iter_mut().enumerate() {
                *acc = *acc + value(start + i + j);
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for i in full..n {
            res = res + value(start + i);
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum_by(start, n2, value) + pairwise_sum_by(start + n2, n - n2, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_runs_add_left_to_right() {
        let v = [1.0e8f32, 1.0, -1.0e8, 1.0];
        // ((1e8 + 1) - 1e8) + 1 in f32: the first 1 is absorbed.
        assert_eq!(pairwise_sum(&v), 1.0);
    }

    #[test]
    fn blocks_use_eight_accumulators() {
        // 16 elements: accumulator j holds v[j] + v[j+8].
        let mut v = [0.0f32; 16];
        v[0] = 1.0e8;
        v[8] = -1.0e8;
        v[1] = 1.0;
        // Sequential summation would absorb the 1 into 1e8; pairwise keeps it.
        assert_eq!(pairwise_sum(&v), 1.0);
    }
}
