//! Voxel element types: reading them as f64 (scipy interpolates in float64) and storing
//! float64 results back with numpy's `astype` semantics.

/// A voxel type the resamplers can read; scipy converts every input value to `double`.
pub trait Voxel: Copy + Send + Sync {
    /// The value as f64 (exact for every implementing type but `i64`/`u64` beyond 2^53).
    fn to_f64(self) -> f64;
}

/// A voxel type the resamplers can write: numpy's `float64 -> dtype` cast (`astype`).
///
/// Integers truncate toward zero (`np.array([-2.7]).astype(np.int32) == -2`). Values outside
/// the type's range (and NaN) are undefined in numpy; here they saturate (NaN gives 0).
pub trait CastFromF64: Copy + Send + Sync {
    /// The cast.
    fn cast_from_f64(value: f64) -> Self;
}

macro_rules! impl_voxel {
    ($($t:ty),*) => {$(
        impl Voxel for $t {
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
        impl CastFromF64 for $t {
            #[inline(always)]
            fn cast_from_f64(value: f64) -> Self {
                // `as` truncates toward zero and saturates, NaN -> 0.
                value as $t
            }
        }
    )*};
}

impl_voxel!(u8, i8, u16, i16, u32, i32, i64, u64, f32, f64);

impl Voxel for bool {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        if self {
            1.0
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_casts_truncate_toward_zero_like_numpy() {
        assert_eq!(i32::cast_from_f64(-2.7), -2);
        assert_eq!(i32::cast_from_f64(2.9999999999999996), 2);
        assert_eq!(i32::cast_from_f64(-1023.9999999999999), -1023);
        assert_eq!(u8::cast_from_f64(116.99), 116);
        assert_eq!(f32::cast_from_f64(0.1), 0.1f32);
    }
}
