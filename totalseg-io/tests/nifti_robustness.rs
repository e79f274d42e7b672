//! No input file makes the reader panic: truncations at every length, flipped bytes in the
//! header, extension, data and compressed stream, hostile header values, garbage.

mod nifti_common;

use std::path::Path;

use nifti_common::*;
use totalseg_io::nifti::{
    parse_extensions, read_label_map, read_nifti, read_nifti_from_bytes, read_nifti_header,
    NiftiErrorKind, NiftiHeader,
};

/// Reads `bytes` in memory (whole-image reader and header parser), catching panics;
/// returns the error kind of the image reader.
fn read_in_memory(bytes: &[u8]) -> Result<(), String> {
    let name = Path::new("variant.nii");
    let outcome = std::panic::catch_unwind(|| {
        if let Ok(header) = NiftiHeader::parse(bytes) {
            let _ = parse_extensions(bytes, &header);
            let _ = header.best_affine();
            let _ = header.shape();
        }
        read_nifti_from_bytes(bytes, Some(name))
            .map(|_| ())
            .map_err(|e| {
                assert_eq!(e.path.as_deref(), Some(name), "error names the source");
                kind_name(&e.kind).to_string()
            })
    });
    match outcome {
        Ok(result) => result,
        Err(_) => panic!("reader panicked on a {}-byte input", bytes.len()),
    }
}

/// Reads `bytes` as a file through every reader, catching panics; returns read_nifti's kind.
fn read_all_ways(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("temp file");
    let outcome = std::panic::catch_unwind(|| {
        let _ = read_nifti_header(&path);
        let _ = read_label_map(&path);
        read_nifti(&path).map(|_| ()).map_err(|e| {
            assert_eq!(
                e.path.as_deref(),
                Some(path.as_path()),
                "error names the file"
            );
            kind_name(&e.kind).to_string()
        })
    });
    match outcome {
        Ok(result) => result,
        Err(_) => panic!("reader panicked on {name} ({} bytes)", bytes.len()),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("vec");
    e.finish().expect("vec")
}

/// Truncating a file anywhere (inside the header, the extension flag, an extension, the
/// data; inside the gzip header, deflate stream or trailer) is an error.
#[test]
fn every_truncation_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in [
        "read_int16.nii",
        "read_label_map.nii.gz",
        "read_extensions.nii.gz",
        "read_4d_int16.nii.gz",
    ] {
        let compressed = std::fs::read(fixture_dir().join(name)).expect("fixture");
        assert!(
            read_all_ways(dir.path(), "whole.nii", &compressed).is_ok(),
            "{name} itself"
        );
        // Through the file readers for a sample of lengths, in memory for every length.
        for len in (0..compressed.len()).step_by(37) {
            assert!(
                read_all_ways(dir.path(), "cut.nii", &compressed[..len]).is_err(),
                "{name} cut to {len}"
            );
        }
        let plain = if name.ends_with(".gz") {
            gunzip(&compressed)
        } else {
            compressed.clone()
        };
        for variant in [&plain, &compressed] {
            for len in 0..variant.len() {
                let result = read_in_memory(&variant[..len]);
                assert!(
                    result.is_err(),
                    "{name} cut to {len} of {} bytes was accepted",
                    variant.len()
                );
            }
        }
    }
    // The uncompressed cuts fail for the right reason.
    let plain = std::fs::read(fixture_dir().join("read_int16.nii")).expect("fixture");
    let kind = |len: usize| read_in_memory(&plain[..len]).unwrap_err();
    assert_eq!(kind(0), "TooShortForHeader");
    assert_eq!(kind(347), "TooShortForHeader");
    assert_eq!(kind(348), "TruncatedData");
    assert_eq!(kind(plain.len() - 1), "TruncatedData");
    let gz = std::fs::read(fixture_dir().join("read_label_map.nii.gz")).expect("fixture");
    assert_eq!(read_in_memory(&gz[..gz.len() - 4]).unwrap_err(), "Gzip");
}

/// Flipping any header/extension byte (and sampled data bytes) never panics; flipping
/// the magic is always an error. Flips of the compressed stream never panic.
#[test]
fn flipped_bytes_never_panic() {
    let compressed = std::fs::read(fixture_dir().join("read_label_map.nii.gz")).expect("fixture");
    let plain = gunzip(&compressed);
    let mut accepted = 0;
    let mut refused = 0;
    for pos in 0..plain.len() {
        for mask in [0xFFu8, 0x80, 0x01, 0x40] {
            let mut variant = plain.clone();
            variant[pos] ^= mask;
            match read_in_memory(&variant) {
                Ok(()) => accepted += 1,
                Err(_) => refused += 1,
            }
            if (344..347).contains(&pos) {
                assert!(read_in_memory(&variant).is_err(), "magic byte {pos}");
            }
        }
    }
    // Both outcomes occur: the test exercises acceptance and refusal paths.
    assert!(
        accepted > 100 && refused > 50,
        "accepted {accepted}, refused {refused}"
    );
    for pos in 0..compressed.len() {
        let mut variant = compressed.clone();
        variant[pos] ^= 0x55;
        let _ = read_in_memory(&variant);
    }
    // A big real file, sampled.
    let seg = std::fs::read(example("example_seg.nii.gz")).expect("example");
    for pos in (0..seg.len()).step_by(1999) {
        let mut variant = seg.clone();
        variant[pos] ^= 0xA5;
        let _ = read_in_memory(&variant);
    }
}

fn patched(base: &[u8], offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    out[offset..offset + bytes.len()].copy_from_slice(bytes);
    out
}

/// Header values chosen to provoke huge allocations, overflows or bad arithmetic.
#[test]
fn hostile_headers_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = std::fs::read(fixture_dir().join("read_int16.nii")).expect("fixture");
    let dims = |d: [i16; 8]| d.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "huge dims",
            patched(&base, 40, &dims([4, 32767, 32767, 32767, 32767, 1, 1, 1])),
            "TruncatedData",
        ),
        (
            "huge int64 dims",
            patched(
                &patched(&base, 40, &dims([3, 32767, 32767, 32767, 1, 1, 1, 1])),
                70,
                &1024i16.to_le_bytes(),
            ),
            "TruncatedData",
        ),
        (
            "zero dim",
            patched(&base, 40, &dims([3, 5, 0, 3, 1, 1, 1, 1])),
            "InvalidDim",
        ),
        (
            "dim0 zero",
            patched(&base, 40, &dims([0, 5, 4, 3, 1, 1, 1, 1])),
            "InvalidDim",
        ),
        (
            "1D",
            patched(&base, 40, &dims([1, 60, 1, 1, 1, 1, 1, 1])),
            "UnsupportedDimensionality",
        ),
        (
            "7D",
            patched(&base, 40, &dims([7, 5, 4, 3, 1, 1, 1, 1])),
            "UnsupportedDimensionality",
        ),
        (
            "vox_offset 1e30",
            patched(&base, 108, &1e30f32.to_le_bytes()),
            "InvalidVoxOffset",
        ),
        (
            "vox_offset NaN",
            patched(&base, 108, &f32::NAN.to_le_bytes()),
            "InvalidVoxOffset",
        ),
        (
            "vox_offset -1",
            patched(&base, 108, &(-1f32).to_le_bytes()),
            "InvalidVoxOffset",
        ),
        (
            "vox_offset 0",
            patched(&base, 108, &0f32.to_le_bytes()),
            "InvalidVoxOffset",
        ),
        (
            "vox_offset past end",
            patched(&base, 108, &1e9f32.to_le_bytes()),
            "TruncatedData",
        ),
        (
            "infinite spacing",
            patched(&base, 84, &f32::INFINITY.to_le_bytes()),
            "InvalidSpacing",
        ),
        (
            "datatype rgb",
            patched(&base, 70, &128i16.to_le_bytes()),
            "UnsupportedDatatype",
        ),
        (
            "datatype bogus",
            patched(&base, 70, &77i16.to_le_bytes()),
            "UnsupportedDatatype",
        ),
        (
            "NaN sform",
            patched(&base, 280, &f32::NAN.to_le_bytes()),
            "InvalidAffine",
        ),
        (
            "pair magic",
            patched(&base, 344, b"ni1\0"),
            "PairUnsupported",
        ),
    ];
    for (what, bytes, expected) in cases {
        assert_eq!(
            read_all_ways(dir.path(), "hostile.nii", &bytes),
            Err(expected.to_string()),
            "{what}"
        );
    }
    // An extension whose size runs past the data offset is dropped, the image still reads.
    let with_ext = patched(
        &patched(&base, 348, &[1, 0, 0, 0]),
        108,
        &368f32.to_le_bytes(),
    );
    let mut with_ext = with_ext[..352].to_vec();
    with_ext.extend_from_slice(&i32::MAX.to_le_bytes());
    with_ext.extend_from_slice(&[0u8; 12]);
    with_ext.extend_from_slice(&base[352..]);
    let path = dir.path().join("ext.nii");
    std::fs::write(&path, &with_ext).expect("temp file");
    let volume = read_nifti(&path).expect("image still readable");
    assert!(volume.header.extensions.is_empty());
}

#[test]
fn garbage_empty_missing_and_directories_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in [0usize, 1, 2, 100, 347, 348, 352, 1000, 5000] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        assert!(
            read_all_ways(dir.path(), "garbage.nii", &bytes).is_err(),
            "{len} random bytes"
        );
        let mut gz_magic = bytes.clone();
        if gz_magic.len() >= 2 {
            gz_magic[0] = 0x1f;
            gz_magic[1] = 0x8b;
            assert!(read_all_ways(dir.path(), "garbage.nii.gz", &gz_magic).is_err());
        }
        assert!(read_all_ways(dir.path(), "garbage.gz", &gzip(&bytes)).is_err());
    }
    let missing = dir.path().join("missing.nii.gz");
    let err = read_nifti(&missing).expect_err("missing file");
    assert!(matches!(err.kind, NiftiErrorKind::Io { .. }));
    assert!(err.to_string().contains("missing.nii.gz"), "{err}");
    assert!(read_nifti(dir.path()).is_err());
    assert!(read_nifti_header(dir.path()).is_err());
}

#[test]
fn label_map_reader_refuses_non_label_images() {
    let err = read_label_map(&fixture_dir().join("read_float32.nii.gz")).expect_err("floats");
    assert!(
        matches!(err.kind, NiftiErrorKind::NotALabelMap { .. }),
        "{err}"
    );
    let err = read_label_map(&example("example_ct_sm.nii.gz")).expect_err("CT");
    assert!(
        matches!(err.kind, NiftiErrorKind::NotALabelMap { .. }),
        "{err}"
    );
}
