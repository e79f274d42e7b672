//! Writing NIfTI files the way nibabel saves TotalSegmentator's outputs, atomically
//! (temporary file in the target folder, then rename).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use ndarray::ArrayView3;

use super::affine::affines_allclose;
use super::datatype::NiftiDataType;
use super::error::{NiftiError, NiftiErrorKind};
use super::header::{Endianness, NiftiExtension, NiftiHeader, MAGIC_SINGLE, NIFTI1_MIN_VOX_OFFSET};
use super::label_ext::{label_extension, LabelNames};
use super::layout::write_c_order_as_file_order;
use super::read::io_error;
use super::volume::{storable_shape, Volume, XFORM_ALIGNED, XFORM_UNKNOWN};

/// nibabel's default gzip level (`Opener.default_compresslevel`).
const GZIP_LEVEL: u32 = 1;

/// Writes a uint8 label map on the grid of `reference_header`, as TotalSegmentator's
/// `--ml` output: the reference header copied (with nibabel's fixes), datatype uint8,
/// `scl_slope` 1 / `scl_inter` 0, the reference's extensions, and, when `label_names` is
/// given, the label-map extension appended. Gzipped when `path` ends in `.gz`.
///
/// `labels[[i, j, k]]` is voxel `(i, j, k)`; its shape must equal the header's
/// `dim[1..=3]`. For the same inputs the decompressed file is byte-identical to
/// TotalSegmentator's (`nib.save(add_label_map_to_nifti(Nifti1Image(seg, affine, hdr)))`).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use ndarray::Array3;
/// use totalseg_io::nifti::{read_label_map, write_label_map, LabelNames, Volume};
/// let ct = Volume::new(Array3::zeros((3, 3, 2)), [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])?;
/// let mut labels = Array3::<u8>::zeros((3, 3, 2));
/// labels[[1, 1, 0]] = 5;
/// let names = LabelNames::from([(5, "liver".to_string())]);
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("seg.nii.gz");
/// write_label_map(&path, labels.view(), &ct.header, Some(&names))?;
///
/// let back = read_label_map(&path)?;
/// assert_eq!(back.labels, labels);
/// assert_eq!(back.names, Some(names));
/// # Ok(())
/// # }
/// ```
pub fn write_label_map(
    path: &Path,
    labels: ArrayView3<u8>,
    reference_header: &NiftiHeader,
    label_names: Option<&LabelNames>,
) -> Result<(), NiftiError> {
    let at = |kind| NiftiError::at(path, kind);
    let shape = dims_of(&labels);
    check_shape(reference_header, shape).map_err(at)?;
    let header = output_header(
        reference_header,
        shape,
        NiftiDataType::U8,
        label_names.map(label_extension),
    )
    .map_err(at)?;
    write_grid(path, &header, labels, |v: u8, out: &mut [u8]| out[0] = v)
}

/// Writes a binary (0/1) uint8 mask on the grid of `reference_header`, as TotalSegmentator
/// writes one file per class: like [`write_label_map`] without the label extension.
pub fn write_binary_mask(
    path: &Path,
    mask: ArrayView3<bool>,
    reference_header: &NiftiHeader,
) -> Result<(), NiftiError> {
    let at = |kind| NiftiError::at(path, kind);
    let shape = dims_of(&mask);
    check_shape(reference_header, shape).map_err(at)?;
    let header = output_header(reference_header, shape, NiftiDataType::U8, None).map_err(at)?;
    write_grid(path, &header, mask, |v: bool, out: &mut [u8]| {
        out[0] = v as u8
    })
}

/// Writes the binary mask `labels == class_id` (TotalSegmentator's `<class>.nii.gz`)
/// without building the mask array first.
pub fn write_class_mask(
    path: &Path,
    labels: ArrayView3<u8>,
    class_id: u8,
    reference_header: &NiftiHeader,
) -> Result<(), NiftiError> {
    let at = |kind| NiftiError::at(path, kind);
    let shape = dims_of(&labels);
    check_shape(reference_header, shape).map_err(at)?;
    let header = output_header(reference_header, shape, NiftiDataType::U8, None).map_err(at)?;
    write_grid(path, &header, labels, move |v: u8, out: &mut [u8]| {
        out[0] = (v == class_id) as u8
    })
}

/// Writes `volume.data` as `datatype`, with `volume.header` updated as nibabel's
/// `to_file_map` does: dims from the data, and, if `volume.affine` is not `allclose` to the
/// header's affine, sform = affine (code 2) and qform from the affine (code 0). Values are
/// converted with Rust `as` (integers: truncation toward zero, saturating, NaN -> 0).
pub fn write_volume(
    path: &Path,
    volume: &Volume,
    datatype: NiftiDataType,
) -> Result<(), NiftiError> {
    let at = |kind| NiftiError::at(path, kind);
    let shape = volume.shape();
    let mut reference = volume.header.clone();
    reference.apply_nibabel_fixes();
    let dims = storable_shape(shape).map_err(at)?;
    if reference.dim[0] != 3 || reference.dim[1..4] != dims {
        reference.set_data_shape_3d(dims);
    }
    let header_affine = reference.best_affine().map_err(at)?;
    if !affines_allclose(&volume.affine, &header_affine) {
        reference.set_sform(&volume.affine, XFORM_ALIGNED);
        reference
            .set_qform(&volume.affine, XFORM_UNKNOWN)
            .map_err(at)?;
    }
    let header = output_header(&reference, shape, datatype, None).map_err(at)?;
    let big = header.endianness == Endianness::Big;
    let view = volume.data.view();
    macro_rules! write_as {
        ($t:ty) => {
            write_grid(path, &header, view, move |v: f32, out: &mut [u8]| {
                let x = v as $t;
                out.copy_from_slice(&if big {
                    x.to_be_bytes()
                } else {
                    x.to_le_bytes()
                });
            })
        };
    }
    match datatype {
        NiftiDataType::U8 => write_as!(u8),
        NiftiDataType::I8 => write_as!(i8),
        NiftiDataType::I16 => write_as!(i16),
        NiftiDataType::U16 => write_as!(u16),
        NiftiDataType::I32 => write_as!(i32),
        NiftiDataType::U32 => write_as!(u32),
        NiftiDataType::I64 => write_as!(i64),
        NiftiDataType::U64 => write_as!(u64),
        NiftiDataType::F32 => write_as!(f32),
        NiftiDataType::F64 => write_as!(f64),
    }
}

/// [`write_volume`] as float32 (handy for debugging intermediate volumes).
pub fn write_volume_f32(path: &Path, volume: &Volume) -> Result<(), NiftiError> {
    write_volume(path, volume, NiftiDataType::F32)
}

/// The header nibabel writes for `Nifti1Image(array, affine, reference)` when `affine`
/// equals the reference's: reference fields kept (after `check_fix`), `dim` set from the
/// array if it differs, datatype/bitpix for `datatype`, slope 1 / intercept 0 (what
/// nibabel's array writer picks for data that needs no scaling), magic `n+1`, the
/// reference's extensions plus `extra`, `vox_offset` just past them.
fn output_header(
    reference: &NiftiHeader,
    shape: [usize; 3],
    datatype: NiftiDataType,
    extra: Option<NiftiExtension>,
) -> Result<NiftiHeader, NiftiErrorKind> {
    let mut h = reference.clone();
    h.apply_nibabel_fixes();
    let dims = storable_shape(shape)?;
    if h.dim[0] != 3 || h.dim[1..4] != dims {
        h.set_data_shape_3d(dims);
    }
    h.set_data_type(datatype);
    h.scl_slope = 1.0;
    h.scl_inter = 0.0;
    h.magic = MAGIC_SINGLE;
    h.extensions.extend(extra);
    let extensions_size: usize = h.extensions.iter().map(NiftiExtension::size_on_disk).sum();
    h.vox_offset = (NIFTI1_MIN_VOX_OFFSET + extensions_size) as f32;
    Ok(h)
}

/// The labels must lie on the reference grid (TotalSegmentator asserts the same).
fn check_shape(reference: &NiftiHeader, shape: [usize; 3]) -> Result<(), NiftiErrorKind> {
    let ref_shape = reference.shape()?;
    let header = [
        ref_shape.first().copied().unwrap_or(1),
        ref_shape.get(1).copied().unwrap_or(1),
        ref_shape.get(2).copied().unwrap_or(1),
    ];
    if ref_shape.len() < 3 || header != shape {
        return Err(NiftiErrorKind::ShapeMismatch {
            data: shape,
            header,
        });
    }
    Ok(())
}

fn dims_of<T>(a: &ArrayView3<T>) -> [usize; 3] {
    let (x, y, z) = a.dim();
    [x, y, z]
}

/// Header, extensions and voxels (in file order), atomically.
fn write_grid<T, F>(
    path: &Path,
    header: &NiftiHeader,
    data: ArrayView3<T>,
    encode: F,
) -> Result<(), NiftiError>
where
    T: Copy + Default,
    F: Fn(T, &mut [u8]),
{
    let elem = header.bitpix as usize / 8;
    let shape = dims_of(&data);
    let standard = data.as_standard_layout();
    let Some(values) = standard.as_slice() else {
        return Err(NiftiError::at(
            path,
            io_error(
                "laying out voxels",
                io::Error::other("array not contiguous after as_standard_layout"),
            ),
        ));
    };
    write_atomically(path, |out| {
        write_header_and_extensions(header, out)?;
        write_c_order_as_file_order(values, shape, elem, &encode, out)
    })
}

/// The 348 header bytes, the 4-byte extension flag, and each extension (size, code,
/// content, zero padding to its on-disk size), in the header's byte order.
fn write_header_and_extensions(header: &NiftiHeader, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(&header.to_bytes())?;
    if header.extensions.is_empty() {
        return out.write_all(&[0, 0, 0, 0]);
    }
    out.write_all(&[1, 0, 0, 0])?;
    for ext in &header.extensions {
        let size = ext.size_on_disk();
        let (size_bytes, code_bytes) = match header.endianness {
            Endianness::Little => ((size as i32).to_le_bytes(), ext.code.to_le_bytes()),
            Endianness::Big => ((size as i32).to_be_bytes(), ext.code.to_be_bytes()),
        };
        out.write_all(&size_bytes)?;
        out.write_all(&code_bytes)?;
        out.write_all(&ext.content)?;
        out.write_all(&vec![0u8; size - 8 - ext.content.len()])?;
    }
    Ok(())
}

/// Writes through `body` into a temporary file next to `path` (gzip level 1 when `path`
/// ends in `.gz`), syncs it, and renames it over `path`. On any failure the temporary file
/// is removed and `path` is untouched.
fn write_atomically<F>(path: &Path, body: F) -> Result<(), NiftiError>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let gz = path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().ends_with(".gz"));
    crate::atomic::write_atomically(path, |file| write_body(file, gz, body))
        .map_err(|(step, e)| NiftiError::at(path, io_error(&step, e)))
}

fn write_body<F>(file: &File, gz: bool, body: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let mut buffered = BufWriter::with_capacity(1 << 20, file);
    if gz {
        let mut encoder = GzEncoder::new(&mut buffered, Compression::new(GZIP_LEVEL));
        body(&mut encoder)?;
        encoder.finish()?;
    } else {
        body(&mut buffered)?;
    }
    buffered.flush()?;
    drop(buffered);
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failure halfway through writing leaves neither the target nor a temporary file,
    /// and an existing target keeps its old content.
    #[test]
    fn failed_writes_leave_no_trace() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["out.nii", "out.nii.gz"] {
            let path = dir.path().join(name);
            let err = write_atomically(&path, |out| {
                out.write_all(&[7u8; 100_000])?;
                Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
            })
            .expect_err("body failed");
            assert!(err.to_string().contains("disk full"), "{err}");
            assert!(err.to_string().contains(name), "{err}");
            assert!(!path.exists());
            std::fs::write(&path, b"previous").expect("previous file");
            write_atomically(&path, |out| {
                out.write_all(b"partial")?;
                Err(io::Error::other("boom"))
            })
            .expect_err("body failed");
            assert_eq!(std::fs::read(&path).expect("kept"), b"previous");
        }
        let entries: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(entries.len(), 2, "only the two previous files remain");
    }
}
