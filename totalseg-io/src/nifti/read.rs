//! Reading `.nii` / `.nii.gz` files into a [`Volume`], as nibabel's `nib.load(..)` +
//! `get_fdata()` + `affine` see them, and TotalSegmentator's handling of 4D inputs.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::bufread::GzDecoder;
use ndarray::Array3;

use super::affine::{validate_affine, Affine};
use super::datatype::NiftiDataType;
use super::error::{NiftiError, NiftiErrorKind};
use super::header::{parse_extensions, Endianness, NiftiHeader, NIFTI1_MIN_VOX_OFFSET};
use super::label_ext::{label_names_from_extensions, LabelNames};
use super::layout::file_order_to_c_order;
use super::volume::Volume;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads a `.nii` or `.nii.gz` file (gzip is recognised by content, not by name).
///
/// What you get matches nibabel: `data[[i, j, k]] == img.get_fdata()[i, j, k]` (as `f32`,
/// scaled by `scl_slope`/`scl_inter` unless the slope is 0 or not finite), `affine ==
/// img.affine` (sform if `sform_code != 0`, else qform if `qform_code != 0`, else the
/// pixdim-only base affine), and `header` carries the fixes nibabel applies on load
/// (see [`NiftiHeader::apply_nibabel_fixes`]) plus the extensions.
///
/// 4D images: the first volume is returned with a warning, and `header` is the one nibabel
/// builds for `Nifti1Image(first_volume, affine)`, because TotalSegmentator replaces a 4D
/// input by exactly that image (so its outputs carry that header). 1D, 2D and 5D+ images
/// are errors. NaN voxels are passed through unchanged, as nibabel does.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ndarray::Array3;
/// use totalseg_io::nifti::{read_nifti, write_volume_f32, Volume};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("ct.nii.gz");
/// let affine = [[1.5, 0.0, 0.0, -10.0], [0.0, 1.5, 0.0, 4.0], [0.0, 0.0, 3.0, 0.0], [0.0, 0.0, 0.0, 1.0]];
/// write_volume_f32(&path, &Volume::new(Array3::from_elem((4, 3, 2), -1000.0), affine)?)?;
///
/// let ct = read_nifti(&path)?;
/// assert_eq!(ct.data.dim(), (4, 3, 2));
/// assert_eq!(ct.affine, affine);
/// assert_eq!(ct.spacing, [1.5, 1.5, 3.0]);
/// # Ok(())
/// # }
/// ```
pub fn read_nifti(path: &Path) -> Result<Volume, NiftiError> {
    let bytes = read_decompressed(path)?;
    volume_from_bytes(&bytes, Some(path)).map_err(|kind| NiftiError::at(path, kind))
}

/// [`read_nifti`] for a file already in memory (gzipped or not). `source` is recorded in
/// [`Volume::source`] and named in errors.
pub fn read_nifti_from_bytes(bytes: &[u8], source: Option<&Path>) -> Result<Volume, NiftiError> {
    let error = |kind| NiftiError {
        path: source.map(Path::to_path_buf),
        kind,
    };
    if bytes.starts_with(&GZIP_MAGIC) {
        let plain = gunzip(bytes).map_err(error)?;
        volume_from_bytes(&plain, source).map_err(error)
    } else {
        volume_from_bytes(bytes, source).map_err(error)
    }
}

/// Reads only the header and its extensions (decompressing just that much of a `.gz`),
/// with nibabel's load-time fixes applied. Does not check dimensions or data length.
pub fn read_nifti_header(path: &Path) -> Result<NiftiHeader, NiftiError> {
    let at = |kind| NiftiError::at(path, kind);
    let file = File::open(path).map_err(|e| at(io_error("opening", e)))?;
    let mut reader = BufReader::new(file);
    let is_gz = reader
        .fill_buf()
        .map_err(|e| at(io_error("reading", e)))?
        .starts_with(&GZIP_MAGIC);
    let mut source: Box<dyn Read> = if is_gz {
        Box::new(flate2::bufread::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut prefix = Vec::new();
    read_up_to(&mut source, &mut prefix, NIFTI1_MIN_VOX_OFFSET, is_gz).map_err(at)?;
    let mut header = NiftiHeader::parse(&prefix).map_err(at)?;
    if let Ok(offset) = header.data_offset() {
        read_up_to(&mut source, &mut prefix, offset, is_gz).map_err(at)?;
    }
    header.extensions = parse_extensions(&prefix, &header);
    header.apply_nibabel_fixes();
    Ok(header)
}

/// A uint8 label map and its label names (TotalSegmentator's `--ml` output format).
#[derive(Debug, Clone)]
pub struct LabelMap {
    /// Labels, indexed `[i, j, k]` like [`Volume::data`].
    pub labels: Array3<u8>,
    /// Voxel-to-world affine (as [`Volume::affine`]).
    pub affine: Affine,
    /// The header (for writing outputs on the same grid).
    pub header: NiftiHeader,
    /// Names from the label-map extension, `None` if the file has none.
    pub names: Option<LabelNames>,
}

/// Reads a label map: any integer-valued image whose voxels are all in 0..=255, plus the
/// names in TotalSegmentator's label extension if present.
pub fn read_label_map(path: &Path) -> Result<LabelMap, NiftiError> {
    let volume = read_nifti(path)?;
    let at = |kind| NiftiError::at(path, kind);
    let names = label_names_from_extensions(&volume.header.extensions).map_err(at)?;
    let mut labels = Array3::<u8>::zeros(volume.data.dim());
    for ((index, &value), label) in volume.data.indexed_iter().zip(labels.iter_mut()) {
        if !(0.0..=255.0).contains(&value) || value.fract() != 0.0 {
            let (i, j, k) = index;
            return Err(at(NiftiErrorKind::NotALabelMap { value, i, j, k }));
        }
        *label = value as u8;
    }
    Ok(LabelMap {
        labels,
        affine: volume.affine,
        header: volume.header,
        names,
    })
}

/// The whole file, gunzipped when it starts with the gzip magic. Like Python's gzip module:
/// several members are concatenated, zero padding after a member is skipped, anything
/// else after it is an error.
fn read_decompressed(path: &Path) -> Result<Vec<u8>, NiftiError> {
    let raw = std::fs::read(path).map_err(|e| NiftiError::at(path, io_error("reading", e)))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    gunzip(&raw).map_err(|kind| NiftiError::at(path, kind))
}

fn gunzip(compressed: &[u8]) -> Result<Vec<u8>, NiftiErrorKind> {
    // The trailer's ISIZE (size mod 2^32 of the last member) is a capacity hint, capped at
    // deflate's maximum ratio so a hostile trailer cannot reserve absurd amounts.
    let hint = compressed
        .len()
        .checked_sub(4)
        .and_then(|at| compressed.get(at..))
        .map(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize)
        .unwrap_or(0)
        .min(compressed.len().saturating_mul(1032));
    let mut out = Vec::with_capacity(hint);
    let mut rest = compressed;
    loop {
        let mut decoder = GzDecoder::new(rest);
        decoder
            .read_to_end(&mut out)
            .map_err(NiftiErrorKind::Gzip)?;
        rest = decoder.into_inner();
        let zeros = rest.iter().take_while(|&&b| b == 0).count();
        rest = &rest[zeros..];
        if rest.is_empty() {
            return Ok(out);
        }
        if !rest.starts_with(&GZIP_MAGIC) {
            return Err(NiftiErrorKind::Gzip(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} bytes of trailing garbage after the gzip stream",
                    rest.len()
                ),
            )));
        }
    }
}

/// Reads from `source` until `buf` holds `len` bytes or the stream ends.
fn read_up_to(
    source: &mut dyn Read,
    buf: &mut Vec<u8>,
    len: usize,
    is_gz: bool,
) -> Result<(), NiftiErrorKind> {
    let missing = len.saturating_sub(buf.len()) as u64;
    source
        .take(missing)
        .read_to_end(buf)
        .map(|_| ())
        .map_err(|e| {
            if is_gz {
                NiftiErrorKind::Gzip(e)
            } else {
                io_error("reading", e)
            }
        })
}

pub(crate) fn io_error(action: &str, source: std::io::Error) -> NiftiErrorKind {
    NiftiErrorKind::Io {
        action: action.to_string(),
        source,
    }
}

/// Everything after decompression: header, checks, data conversion.
fn volume_from_bytes(bytes: &[u8], path: Option<&Path>) -> Result<Volume, NiftiErrorKind> {
    let mut header = NiftiHeader::parse(bytes)?;
    let datatype = header.data_type()?;
    let shape = header.shape()?;
    match shape.len() {
        3 | 4 => {}
        _ => {
            return Err(NiftiErrorKind::UnsupportedDimensionality {
                ndim: header.dim[0],
                dim: header.dim,
            })
        }
    }
    let raw_spacing = [header.pixdim[1], header.pixdim[2], header.pixdim[3]];
    if raw_spacing.iter().any(|s| !s.is_finite() || *s == 0.0) {
        return Err(NiftiErrorKind::InvalidSpacing(raw_spacing));
    }
    let offset = header.data_offset()?;
    header.extensions = parse_extensions(bytes, &header);
    header.apply_nibabel_fixes();

    let elem = datatype.size_of();
    let too_large = || NiftiErrorKind::TooLarge {
        dim: header.dim,
        bytes_per_voxel: elem,
    };
    let total_voxels = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(too_large)?;
    let expected = total_voxels
        .checked_mul(elem as u64)
        .ok_or_else(too_large)?;
    let available = (bytes.len() as u64).saturating_sub(offset as u64);
    if offset as u64 > bytes.len() as u64 || expected > available {
        return Err(NiftiErrorKind::TruncatedData {
            offset: offset as u64,
            expected,
            available,
        });
    }
    let grid = [shape[0], shape[1], shape[2]];
    let volume_bytes = grid.iter().product::<usize>() * elem;
    let raw = &bytes[offset..offset + volume_bytes];

    let affine = header.best_affine()?;
    let affine_source = if header.sform_code != 0 {
        "sform"
    } else if header.qform_code != 0 {
        "qform"
    } else {
        "pixdim"
    };
    validate_affine(&affine, affine_source)?;
    let scaling = read_scaling(&header)?;
    let data = decode_voxels(raw, grid, datatype, header.endianness, scaling);

    if shape.len() == 4 {
        log::warn!(
            "{}: 4D image with {} volumes; using the first volume, as TotalSegmentator does",
            path.map_or_else(|| "<in memory>".into(), |p| p.display().to_string()),
            shape[3]
        );
        // TotalSegmentator continues with `nib.Nifti1Image(get_fdata()[..., 0], affine)`,
        // a fresh image whose header (float64) is what its outputs copy.
        let mut volume = Volume::new(data, affine).map_err(|e| e.kind)?;
        volume.header.set_data_type(NiftiDataType::F64);
        volume.source = path.map(Path::to_path_buf);
        return Ok(volume);
    }
    let spacing = [
        header.pixdim[1] as f64,
        header.pixdim[2] as f64,
        header.pixdim[3] as f64,
    ];
    Ok(Volume {
        data,
        affine,
        spacing,
        header,
        source: path.map(Path::to_path_buf),
    })
}

/// nibabel's `get_slope_inter` plus `apply_read_scaling`'s no-op test: `None` when the
/// slope is 0 or not finite, or when the pair is (1, 0).
fn read_scaling(header: &NiftiHeader) -> Result<Option<(f64, f64)>, NiftiErrorKind> {
    let slope = header.scl_slope;
    let inter = header.scl_inter;
    if slope == 0.0 || !slope.is_finite() {
        return Ok(None);
    }
    if !inter.is_finite() {
        return Err(NiftiErrorKind::InvalidScaling { slope, inter });
    }
    if slope == 1.0 && inter == 0.0 {
        return Ok(None);
    }
    Ok(Some((slope as f64, inter as f64)))
}

/// Raw voxels -> `f32` in C order. Each value goes through `f64` (nibabel's `get_fdata`
/// dtype), is scaled there (`x * slope`, then `+ inter`, each only when not a no-op, as
/// nibabel does), and is rounded to `f32` once.
fn decode_voxels(
    raw: &[u8],
    grid: [usize; 3],
    datatype: NiftiDataType,
    endianness: Endianness,
    scaling: Option<(f64, f64)>,
) -> Array3<f32> {
    let finish = move |v: f64| -> f32 {
        match scaling {
            None => v as f32,
            Some((slope, inter)) => {
                let mut x = v;
                if slope != 1.0 {
                    x *= slope;
                }
                if inter != 0.0 {
                    x += inter;
                }
                x as f32
            }
        }
    };
    macro_rules! decode_as {
        ($t:ty) => {{
            const N: usize = std::mem::size_of::<$t>();
            let read = |b: &[u8]| -> [u8; N] {
                let mut a = [0u8; N];
                a.copy_from_slice(&b[..N]);
                a
            };
            match endianness {
                Endianness::Little => file_order_to_c_order(raw, N, grid, |b| {
                    finish(<$t>::from_le_bytes(read(b)) as f64)
                }),
                Endianness::Big => file_order_to_c_order(raw, N, grid, |b| {
                    finish(<$t>::from_be_bytes(read(b)) as f64)
                }),
            }
        }};
    }
    match datatype {
        NiftiDataType::U8 => decode_as!(u8),
        NiftiDataType::I8 => decode_as!(i8),
        NiftiDataType::I16 => decode_as!(i16),
        NiftiDataType::U16 => decode_as!(u16),
        NiftiDataType::I32 => decode_as!(i32),
        NiftiDataType::U32 => decode_as!(u32),
        NiftiDataType::I64 => decode_as!(i64),
        NiftiDataType::U64 => decode_as!(u64),
        NiftiDataType::F32 => decode_as!(f32),
        NiftiDataType::F64 => decode_as!(f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).expect("vec");
        e.finish().expect("vec")
    }

    #[test]
    fn gunzip_handles_members_and_zero_padding_like_python() {
        let mut two = gz(b"hello ");
        two.extend(gz(b"world"));
        two.extend([0u8; 7]);
        assert_eq!(gunzip(&two).expect("valid"), b"hello world");
        let mut garbage = gz(b"x");
        garbage.extend(b"junk");
        assert!(matches!(gunzip(&garbage), Err(NiftiErrorKind::Gzip(_))));
        let whole = gz(&[7u8; 1000]);
        for cut in [3, 10, whole.len() / 2, whole.len() - 1] {
            assert!(
                matches!(gunzip(&whole[..cut]), Err(NiftiErrorKind::Gzip(_))),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn scaling_rules() {
        let mut h = NiftiHeader::empty();
        for (slope, inter, expected) in [
            (0.0, 5.0, None),
            (f32::NAN, 5.0, None),
            (f32::INFINITY, 5.0, None),
            (1.0, 0.0, None),
            (2.0, 0.0, Some((2.0, 0.0))),
            (1.0, -3.0, Some((1.0, -3.0))),
        ] {
            h.scl_slope = slope;
            h.scl_inter = inter;
            assert_eq!(read_scaling(&h).expect("valid"), expected);
        }
        h.scl_slope = 2.0;
        h.scl_inter = f32::NAN;
        assert!(read_scaling(&h).is_err());
    }
}
