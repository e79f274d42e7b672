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

impl Voxel for half::f16 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        half::f16::to_f64(self)
    }
}

impl CastFromF64 for half::f16 {
    /// numpy's `float64 -> float16` cast: rounded once, to nearest, ties to even (not via f32,
    /// and not with the `half` crate's conversion, which truncates low mantissa bits first).
    #[inline]
    fn cast_from_f64(value: f64) -> Self {
        half::f16::from_bits(f64_to_f16_bits(value))
    }
}

fn f64_to_f16_bits(value: f64) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 48) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff_ffff_ffff;
    if abs >= 0x7ff0_0000_0000_0000 {
        // Infinity, or a quiet NaN carrying the top mantissa bits as numpy does.
        return if abs == 0x7ff0_0000_0000_0000 {
            sign | 0x7c00
        } else {
            sign | 0x7e00 | ((abs >> 42) as u16 & 0x3ff)
        };
    }
    let exp = (abs >> 52) as i64 - 1023;
    if exp > 15 {
        return sign | 0x7c00;
    }
    if abs == 0 {
        return sign;
    }
    let mantissa = if abs >> 52 == 0 {
        abs & 0x000f_ffff_ffff_ffff // f64 subnormal: far below f16 range, rounds to zero
    } else {
        (abs & 0x000f_ffff_ffff_ffff) | (1 << 52)
    };
    // Keep 11 significant bits for normal halves; fewer for subnormal ones.
    let shift = if exp >= -14 { 42 } else { 42 + (-14 - exp) } as u32;
    if shift > 53 {
        return sign; // below half the smallest subnormal
    }
    let mut q = mantissa >> shift;
    let rem = mantissa & ((1u64 << shift) - 1);
    let halfway = 1u64 << (shift - 1);
    if rem > halfway || (rem == halfway && q & 1 == 1) {
        q += 1;
    }
    let magnitude = if exp >= -14 {
        // q in [1024, 2048]; a carry to 2048 moves into the exponent (up to infinity).
        (((exp + 15) as u64) << 10) + (q - 1024)
    } else {
        q // subnormal; 1024 here is the smallest normal
    };
    sign | magnitude as u16
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

    #[test]
    fn f16_cast_rounds_once_like_numpy() {
        let f16 = |v: f64| half::f16::cast_from_f64(v).to_bits();
        // Values and results from numpy's astype(np.float16).
        assert_eq!(f16(65519.99), 0x7bff); // 65504
        assert_eq!(f16(65520.0), 0x7c00); // inf
        assert_eq!(f16(-0.0), 0x8000);
        assert_eq!(f16(5.96e-8), 0x0001);
        assert_eq!(f16(2.98e-8), 0x0000);
        assert_eq!(f16(1.0 + 1.0 / 2048.0), 0x3c00); // tie -> even
        assert_eq!(f16(1.0 + 3.0 / 2048.0), 0x3c02); // tie -> even (up)
                                                     // Just above a tie, with the excess only in the low 32 mantissa bits: rounds up.
        assert_eq!(f16(1.0 + 1.0 / 2048.0 + f64::EPSILON), 0x3c01);
        assert_eq!(f16(f64::INFINITY), 0x7c00);
        assert!(half::f16::cast_from_f64(f64::NAN).is_nan());
    }
}
