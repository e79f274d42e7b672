//! A little-endian `.npy` (version 1 or 2, C order) reader for the parity fixtures.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};

/// The element types the fixtures use.
#[allow(dead_code)] // each test binary uses some of the variants
pub enum Npy {
    F64(ArrayD<f64>),
    F32(ArrayD<f32>),
    F16(ArrayD<half::f16>),
    I32(ArrayD<i32>),
    I16(ArrayD<i16>),
    U8(ArrayD<u8>),
}

/// Reads `path`; panics with the file name on anything unexpected (test code).
pub fn read_npy(path: &Path) -> Npy {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{name}: not an .npy file");
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).expect("ascii header");
    assert!(
        header.contains("'fortran_order': False"),
        "{name}: {header}"
    );
    let descr = header
        .split("'descr': '")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .expect("descr");
    let shape_txt = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("shape");
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let data = &bytes[start + header_len..];
    fn decode<T, const N: usize>(data: &[u8], shape: &[usize], f: fn([u8; N]) -> T) -> ArrayD<T> {
        let v: Vec<T> = data
            .chunks_exact(N)
            .map(|c| f(c.try_into().unwrap()))
            .collect();
        ArrayD::from_shape_vec(IxDyn(shape), v).unwrap()
    }
    match descr {
        "<f8" => Npy::F64(decode(data, &shape, f64::from_le_bytes)),
        "<f4" => Npy::F32(decode(data, &shape, f32::from_le_bytes)),
        "<f2" => Npy::F16(decode(data, &shape, |b| {
            half::f16::from_bits(u16::from_le_bytes(b))
        })),
        "<i4" => Npy::I32(decode(data, &shape, i32::from_le_bytes)),
        "<i2" => Npy::I16(decode(data, &shape, i16::from_le_bytes)),
        "|u1" => Npy::U8(decode(data, &shape, u8::from_le_bytes)),
        other => panic!("{name}: unsupported dtype {other}"),
    }
}
