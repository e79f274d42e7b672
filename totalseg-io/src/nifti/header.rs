//! The NIfTI-1 header: parsing, nibabel's load-time fixes, and byte-exact serialisation.
//!
//! Own parser rather than the `nifti` crate's because we need signed `dim`s (to reject
//! negative ones), the extensions kept with the header (nibabel copies them into outputs),
//! and header bytes identical to what nibabel writes.

use super::datatype::{known_code_size, NiftiDataType};
use super::error::NiftiErrorKind;

/// Size of a NIfTI-1 header in bytes.
pub const NIFTI1_HEADER_SIZE: usize = 348;
/// Offset of the voxel data in a single file without extensions (header + 4 extension bytes).
pub const NIFTI1_MIN_VOX_OFFSET: usize = 352;
/// Magic of a single-file NIfTI-1 (`.nii`).
pub const MAGIC_SINGLE: [u8; 4] = *b"n+1\0";
/// Magic of a header/image pair (`.hdr` + `.img`), not supported.
pub const MAGIC_PAIR: [u8; 4] = *b"ni1\0";

/// Byte order of a header and its voxel data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endianness {
    /// Least significant byte first (every common platform).
    Little,
    /// Most significant byte first.
    Big,
}

/// One NIfTI-1 header extension: its code and its content with trailing NUL bytes
/// stripped (as nibabel keeps it; writing pads it back to a multiple of 16 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NiftiExtension {
    /// `ecode` (0 = unknown, used by TotalSegmentator's label-map XML; 6 = comment; ...).
    pub code: i32,
    /// The extension bytes.
    pub content: Vec<u8>,
}

impl NiftiExtension {
    /// Bytes this extension takes on disk: 8 bytes of size and code plus the content,
    /// rounded up to 16 (nibabel's `get_sizeondisk`).
    pub fn size_on_disk(&self) -> usize {
        (self.content.len() + 23) / 16 * 16
    }
}

/// A NIfTI-1 header with its extensions. Field names and types follow the NIfTI-1
/// standard (`nifti1.h`) and nibabel; `qoffset_*` are the standard's `qoffset_x/y/z`.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // the fields are the standard's; see nifti1.h
pub struct NiftiHeader {
    pub sizeof_hdr: i32,
    pub data_type: [u8; 10],
    pub db_name: [u8; 18],
    pub extents: i32,
    pub session_error: i16,
    pub regular: u8,
    pub dim_info: u8,
    /// `dim[0]` = number of dimensions, `dim[1..=dim[0]]` = sizes.
    pub dim: [i16; 8],
    pub intent_p1: f32,
    pub intent_p2: f32,
    pub intent_p3: f32,
    pub intent_code: i16,
    pub datatype: i16,
    pub bitpix: i16,
    pub slice_start: i16,
    /// `pixdim[0]` = qfac, `pixdim[1..=3]` = voxel spacing.
    pub pixdim: [f32; 8],
    pub vox_offset: f32,
    pub scl_slope: f32,
    pub scl_inter: f32,
    pub slice_end: i16,
    pub slice_code: u8,
    pub xyzt_units: u8,
    pub cal_max: f32,
    pub cal_min: f32,
    pub slice_duration: f32,
    pub toffset: f32,
    pub glmax: i32,
    pub glmin: i32,
    pub descrip: [u8; 80],
    pub aux_file: [u8; 24],
    pub qform_code: i16,
    pub sform_code: i16,
    pub quatern_b: f32,
    pub quatern_c: f32,
    pub quatern_d: f32,
    pub qoffset_x: f32,
    pub qoffset_y: f32,
    pub qoffset_z: f32,
    pub srow_x: [f32; 4],
    pub srow_y: [f32; 4],
    pub srow_z: [f32; 4],
    pub intent_name: [u8; 16],
    pub magic: [u8; 4],
    /// Byte order of the file this header came from (and will be written in).
    pub endianness: Endianness,
    /// Header extensions, in file order.
    pub extensions: Vec<NiftiExtension>,
}

impl NiftiHeader {
    /// nibabel's empty `Nifti1Header()`: 348, `dim = [0, 1, ...]`, unit pixdims, float32,
    /// both transform codes 0, magic `n+1`, little-endian, no extensions.
    pub fn empty() -> Self {
        NiftiHeader {
            sizeof_hdr: NIFTI1_HEADER_SIZE as i32,
            data_type: [0; 10],
            db_name: [0; 18],
            extents: 0,
            session_error: 0,
            regular: 0,
            dim_info: 0,
            dim: [0, 1, 1, 1, 1, 1, 1, 1],
            intent_p1: 0.0,
            intent_p2: 0.0,
            intent_p3: 0.0,
            intent_code: 0,
            datatype: NiftiDataType::F32.code(),
            bitpix: 32,
            slice_start: 0,
            pixdim: [1.0; 8],
            vox_offset: 0.0,
            scl_slope: f32::NAN,
            scl_inter: f32::NAN,
            slice_end: 0,
            slice_code: 0,
            xyzt_units: 0,
            cal_max: 0.0,
            cal_min: 0.0,
            slice_duration: 0.0,
            toffset: 0.0,
            glmax: 0,
            glmin: 0,
            descrip: [0; 80],
            aux_file: [0; 24],
            qform_code: 0,
            sform_code: 0,
            quatern_b: 0.0,
            quatern_c: 0.0,
            quatern_d: 0.0,
            qoffset_x: 0.0,
            qoffset_y: 0.0,
            qoffset_z: 0.0,
            srow_x: [0.0; 4],
            srow_y: [0.0; 4],
            srow_z: [0.0; 4],
            intent_name: [0; 16],
            magic: MAGIC_SINGLE,
            endianness: Endianness::Little,
            extensions: Vec::new(),
        }
    }

    /// Parses the 348-byte header at the start of `bytes` (extensions are not read here;
    /// see [`parse_extensions`]). Byte order is guessed as nibabel does: from `dim[0]`, or
    /// from `sizeof_hdr` when `dim[0]` is 0. Checks the magic; applies no other checks.
    pub fn parse(bytes: &[u8]) -> Result<Self, NiftiErrorKind> {
        if bytes.len() < NIFTI1_HEADER_SIZE {
            // A NIfTI-2 header is longer, but still says so in its first 4 bytes.
            if looks_like_nifti2(bytes) {
                return Err(NiftiErrorKind::Nifti2Unsupported);
            }
            return Err(NiftiErrorKind::TooShortForHeader { len: bytes.len() });
        }
        if looks_like_nifti2(bytes) {
            return Err(NiftiErrorKind::Nifti2Unsupported);
        }
        let endianness = guess_endianness(bytes);
        let mut r = FieldReader {
            bytes,
            pos: 0,
            endianness,
        };
        let mut h = NiftiHeader::empty();
        h.endianness = endianness;
        h.sizeof_hdr = r.i32();
        r.bytes_into(&mut h.data_type);
        r.bytes_into(&mut h.db_name);
        h.extents = r.i32();
        h.session_error = r.i16();
        h.regular = r.u8();
        h.dim_info = r.u8();
        for d in &mut h.dim {
            *d = r.i16();
        }
        h.intent_p1 = r.f32();
        h.intent_p2 = r.f32();
        h.intent_p3 = r.f32();
        h.intent_code = r.i16();
        h.datatype = r.i16();
        h.bitpix = r.i16();
        h.slice_start = r.i16();
        for p in &mut h.pixdim {
            *p = r.f32();
        }
        h.vox_offset = r.f32();
        h.scl_slope = r.f32();
        h.scl_inter = r.f32();
        h.slice_end = r.i16();
        h.slice_code = r.u8();
        h.xyzt_units = r.u8();
        h.cal_max = r.f32();
        h.cal_min = r.f32();
        h.slice_duration = r.f32();
        h.toffset = r.f32();
        h.glmax = r.i32();
        h.glmin = r.i32();
        r.bytes_into(&mut h.descrip);
        r.bytes_into(&mut h.aux_file);
        h.qform_code = r.i16();
        h.sform_code = r.i16();
        h.quatern_b = r.f32();
        h.quatern_c = r.f32();
        h.quatern_d = r.f32();
        h.qoffset_x = r.f32();
        h.qoffset_y = r.f32();
        h.qoffset_z = r.f32();
        for v in &mut h.srow_x {
            *v = r.f32();
        }
        for v in &mut h.srow_y {
            *v = r.f32();
        }
        for v in &mut h.srow_z {
            *v = r.f32();
        }
        r.bytes_into(&mut h.intent_name);
        r.bytes_into(&mut h.magic);
        debug_assert_eq!(r.pos, NIFTI1_HEADER_SIZE);

        if h.magic == MAGIC_PAIR {
            return Err(NiftiErrorKind::PairUnsupported);
        }
        if h.magic != MAGIC_SINGLE {
            return Err(NiftiErrorKind::BadMagic { magic: h.magic });
        }
        Ok(h)
    }

    /// The 348 header bytes in this header's byte order.
    pub fn to_bytes(&self) -> [u8; NIFTI1_HEADER_SIZE] {
        let mut out = [0u8; NIFTI1_HEADER_SIZE];
        let mut w = FieldWriter {
            out: &mut out,
            pos: 0,
            endianness: self.endianness,
        };
        w.i32(self.sizeof_hdr);
        w.bytes(&self.data_type);
        w.bytes(&self.db_name);
        w.i32(self.extents);
        w.i16(self.session_error);
        w.u8(self.regular);
        w.u8(self.dim_info);
        for &d in &self.dim {
            w.i16(d);
        }
        w.f32(self.intent_p1);
        w.f32(self.intent_p2);
        w.f32(self.intent_p3);
        w.i16(self.intent_code);
        w.i16(self.datatype);
        w.i16(self.bitpix);
        w.i16(self.slice_start);
        for &p in &self.pixdim {
            w.f32(p);
        }
        w.f32(self.vox_offset);
        w.f32(self.scl_slope);
        w.f32(self.scl_inter);
        w.i16(self.slice_end);
        w.u8(self.slice_code);
        w.u8(self.xyzt_units);
        w.f32(self.cal_max);
        w.f32(self.cal_min);
        w.f32(self.slice_duration);
        w.f32(self.toffset);
        w.i32(self.glmax);
        w.i32(self.glmin);
        w.bytes(&self.descrip);
        w.bytes(&self.aux_file);
        w.i16(self.qform_code);
        w.i16(self.sform_code);
        for v in [
            self.quatern_b,
            self.quatern_c,
            self.quatern_d,
            self.qoffset_x,
            self.qoffset_y,
            self.qoffset_z,
        ] {
            w.f32(v);
        }
        for row in [&self.srow_x, &self.srow_y, &self.srow_z] {
            for &v in row {
                w.f32(v);
            }
        }
        w.bytes(&self.intent_name);
        w.bytes(&self.magic);
        debug_assert_eq!(w.pos, NIFTI1_HEADER_SIZE);
        out
    }

    /// The validated voxel datatype.
    pub fn data_type(&self) -> Result<NiftiDataType, NiftiErrorKind> {
        NiftiDataType::from_code(self.datatype)
    }

    /// The image shape `dim[1..=dim[0]]`, validated (`dim[0]` in 1..=7, sizes >= 1).
    pub fn shape(&self) -> Result<Vec<usize>, NiftiErrorKind> {
        let ndim = self.dim[0];
        if !(1..=7).contains(&ndim) {
            return Err(NiftiErrorKind::InvalidDim {
                dim: self.dim,
                reason: "dim[0] (the number of dimensions) must be 1..=7",
            });
        }
        let sizes = &self.dim[1..=ndim as usize];
        if sizes.iter().any(|&d| d < 1) {
            return Err(NiftiErrorKind::InvalidDim {
                dim: self.dim,
                reason: "every used dimension must be at least 1",
            });
        }
        Ok(sizes.iter().map(|&d| d as usize).collect())
    }

    /// Applies the fixes nibabel's `Nifti1Header.check_fix` makes when loading a file, so
    /// that headers copied into outputs carry the same bytes as nibabel's:
    /// `sizeof_hdr` = 348, `bitpix` from `datatype`, zero `pixdim[1..=3]` -> 1, negative
    /// ones -> absolute value, `pixdim[0]` (qfac) not +-1 -> 1, unknown qform/sform codes
    /// (outside 0..=5) -> 0.
    pub fn apply_nibabel_fixes(&mut self) {
        self.sizeof_hdr = NIFTI1_HEADER_SIZE as i32;
        if let Some(size) = known_code_size(self.datatype) {
            self.bitpix = (size * 8) as i16;
        }
        for p in &mut self.pixdim[1..4] {
            if *p == 0.0 {
                *p = 1.0;
            } else if *p < 0.0 {
                *p = p.abs();
            }
        }
        if self.pixdim[0] != 1.0 && self.pixdim[0] != -1.0 {
            self.pixdim[0] = 1.0;
        }
        if !(0..=5).contains(&self.qform_code) {
            self.qform_code = 0;
        }
        if !(0..=5).contains(&self.sform_code) {
            self.sform_code = 0;
        }
    }

    /// Sets `dim` to a 3D shape as nibabel's `set_data_shape` does: `dim[0]` = 3, unused
    /// dims 1, and `pixdim[4..]` = 1.
    pub(crate) fn set_data_shape_3d(&mut self, shape: [i16; 3]) {
        self.dim = [3, shape[0], shape[1], shape[2], 1, 1, 1, 1];
        for p in &mut self.pixdim[4..] {
            *p = 1.0;
        }
    }

    /// Sets `datatype` and `bitpix`.
    pub fn set_data_type(&mut self, datatype: NiftiDataType) {
        self.datatype = datatype.code();
        self.bitpix = (datatype.size_of() * 8) as i16;
    }

    /// The data offset nibabel would use (`int(vox_offset)`), validated: finite and at
    /// least 352 (nibabel refuses single files with a smaller, non-zero offset; we also
    /// refuse 0, with which nibabel would read the header bytes as voxels).
    pub fn data_offset(&self) -> Result<usize, NiftiErrorKind> {
        let v = self.vox_offset;
        if !v.is_finite() || v < NIFTI1_MIN_VOX_OFFSET as f32 || v > 1e15 {
            return Err(NiftiErrorKind::InvalidVoxOffset(v));
        }
        Ok(v as usize)
    }
}

/// Reads the extensions that follow a single-file header (`bytes` = the decompressed file
/// from its start), as nibabel does: only if byte 348 is non-zero, extension after
/// extension while at least 16 bytes remain before `vox_offset`. A malformed extension
/// block is dropped with a warning (the image itself is still readable).
pub fn parse_extensions(bytes: &[u8], header: &NiftiHeader) -> Vec<NiftiExtension> {
    let mut extensions = Vec::new();
    if bytes.len() < NIFTI1_MIN_VOX_OFFSET || bytes[NIFTI1_HEADER_SIZE] == 0 {
        return extensions;
    }
    let Ok(end) = header.data_offset() else {
        return extensions;
    };
    let mut pos = NIFTI1_MIN_VOX_OFFSET;
    let mut remaining = end as i64 - pos as i64;
    while remaining >= 16 {
        let Some(def) = bytes.get(pos..pos + 8) else {
            log::warn!("NIfTI extension header at byte {pos} is cut off; ignoring extensions");
            return Vec::new();
        };
        let mut r = FieldReader {
            bytes: def,
            pos: 0,
            endianness: header.endianness,
        };
        let esize = r.i32();
        let ecode = r.i32();
        let content_len = esize as i64 - 8;
        let content = usize::try_from(content_len)
            .ok()
            .and_then(|len| bytes.get(pos + 8..(pos + 8).checked_add(len)?));
        let Some(content) = content else {
            log::warn!(
                "NIfTI extension at byte {pos} claims {esize} bytes, which the file does not hold; ignoring extensions"
            );
            return Vec::new();
        };
        if esize % 16 != 0 {
            log::warn!("NIfTI extension size {esize} is not a multiple of 16; using it anyway");
        }
        let trimmed = content.len() - content.iter().rev().take_while(|&&b| b == 0).count();
        extensions.push(NiftiExtension {
            code: ecode,
            content: content[..trimmed].to_vec(),
        });
        pos += esize as usize;
        remaining -= esize as i64;
    }
    extensions
}

/// nibabel's `guessed_endian`: `dim[0]` in 1..=7 read little-endian means little-endian;
/// `dim[0]` == 0 defers to `sizeof_hdr`; anything else means big-endian.
fn guess_endianness(bytes: &[u8]) -> Endianness {
    let dim0 = i16::from_le_bytes([bytes[40], bytes[41]]);
    match dim0 {
        0 => {
            let sizeof_be = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if sizeof_be == NIFTI1_HEADER_SIZE as i32 {
                Endianness::Big
            } else {
                Endianness::Little
            }
        }
        1..=7 => Endianness::Little,
        _ => Endianness::Big,
    }
}

fn looks_like_nifti2(bytes: &[u8]) -> bool {
    let Some(first) = bytes.get(0..4) else {
        return false;
    };
    let first = [first[0], first[1], first[2], first[3]];
    i32::from_le_bytes(first) == 540 || i32::from_be_bytes(first) == 540
}

/// Sequential field reader over a slice known to be long enough (callers check).
struct FieldReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    endianness: Endianness,
}

impl FieldReader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        // Callers guarantee the length; a short slice yields zeros rather than a panic.
        if let Some(src) = self.bytes.get(self.pos..self.pos + N) {
            out.copy_from_slice(src);
        }
        self.pos += N;
        out
    }
    fn bytes_into(&mut self, dst: &mut [u8]) {
        if let Some(src) = self.bytes.get(self.pos..self.pos + dst.len()) {
            dst.copy_from_slice(src);
        }
        self.pos += dst.len();
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn i16(&mut self) -> i16 {
        let b = self.take::<2>();
        match self.endianness {
            Endianness::Little => i16::from_le_bytes(b),
            Endianness::Big => i16::from_be_bytes(b),
        }
    }
    fn i32(&mut self) -> i32 {
        let b = self.take::<4>();
        match self.endianness {
            Endianness::Little => i32::from_le_bytes(b),
            Endianness::Big => i32::from_be_bytes(b),
        }
    }
    fn f32(&mut self) -> f32 {
        f32::from_bits(self.i32() as u32)
    }
}

struct FieldWriter<'a> {
    out: &'a mut [u8],
    pos: usize,
    endianness: Endianness,
}

impl FieldWriter<'_> {
    fn bytes(&mut self, src: &[u8]) {
        self.out[self.pos..self.pos + src.len()].copy_from_slice(src);
        self.pos += src.len();
    }
    fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    fn i16(&mut self, v: i16) {
        match self.endianness {
            Endianness::Little => self.bytes(&v.to_le_bytes()),
            Endianness::Big => self.bytes(&v.to_be_bytes()),
        }
    }
    fn i32(&mut self, v: i32) {
        match self.endianness {
            Endianness::Little => self.bytes(&v.to_le_bytes()),
            Endianness::Big => self.bytes(&v.to_be_bytes()),
        }
    }
    fn f32(&mut self, v: f32) {
        self.i32(v.to_bits() as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NiftiHeader {
        let mut h = NiftiHeader::empty();
        h.dim = [3, 4, 5, 6, 1, 1, 1, 1];
        h.set_data_type(NiftiDataType::I16);
        h.pixdim = [1.0, 0.5, 0.75, 2.0, 1.0, 1.0, 1.0, 1.0];
        h.vox_offset = 352.0;
        h.scl_slope = 1.0;
        h.scl_inter = 0.0;
        h.descrip[..5].copy_from_slice(b"hello");
        h.sform_code = 1;
        h.srow_x = [0.5, 0.0, 0.0, -10.0];
        h.srow_y = [0.0, 0.75, 0.0, 5.5];
        h.srow_z = [0.0, 0.0, 2.0, 7.25];
        h
    }

    #[test]
    fn serialise_parse_round_trip_both_byte_orders() {
        for endianness in [Endianness::Little, Endianness::Big] {
            let mut h = sample();
            h.endianness = endianness;
            let bytes = h.to_bytes();
            let back = NiftiHeader::parse(&bytes).expect("parse");
            assert_eq!(back.endianness, endianness);
            assert_eq!(back.to_bytes(), bytes);
            assert_eq!(back.dim, h.dim);
            assert_eq!(back.srow_y, h.srow_y);
        }
    }

    #[test]
    fn field_offsets_match_the_standard() {
        let bytes = sample().to_bytes();
        assert_eq!(&bytes[0..4], &348i32.to_le_bytes());
        assert_eq!(&bytes[40..42], &3i16.to_le_bytes());
        assert_eq!(&bytes[70..72], &4i16.to_le_bytes()); // datatype
        assert_eq!(&bytes[108..112], &352f32.to_le_bytes()); // vox_offset
        assert_eq!(&bytes[148..153], b"hello"); // descrip
        assert_eq!(&bytes[254..256], &1i16.to_le_bytes()); // sform_code
        assert_eq!(&bytes[292..296], &(-10f32).to_le_bytes()); // srow_x[3]
        assert_eq!(&bytes[344..348], b"n+1\0");
    }

    #[test]
    fn rejects_bad_magic_pairs_and_nifti2() {
        let mut bytes = sample().to_bytes();
        bytes[344..348].copy_from_slice(b"xyz\0");
        assert!(matches!(
            NiftiHeader::parse(&bytes),
            Err(NiftiErrorKind::BadMagic { .. })
        ));
        bytes[344..348].copy_from_slice(b"ni1\0");
        assert!(matches!(
            NiftiHeader::parse(&bytes),
            Err(NiftiErrorKind::PairUnsupported)
        ));
        bytes[0..4].copy_from_slice(&540i32.to_le_bytes());
        assert!(matches!(
            NiftiHeader::parse(&bytes),
            Err(NiftiErrorKind::Nifti2Unsupported)
        ));
        assert!(matches!(
            NiftiHeader::parse(&bytes[..100]),
            Err(NiftiErrorKind::Nifti2Unsupported)
        ));
        assert!(matches!(
            NiftiHeader::parse(&[0u8; 10]),
            Err(NiftiErrorKind::TooShortForHeader { len: 10 })
        ));
    }

    #[test]
    fn nibabel_fixes() {
        let mut h = sample();
        h.sizeof_hdr = 0;
        h.bitpix = 3;
        h.pixdim[0] = 0.0;
        h.pixdim[1] = -2.0;
        h.pixdim[2] = 0.0;
        h.qform_code = 9;
        h.sform_code = -1;
        h.apply_nibabel_fixes();
        assert_eq!(h.sizeof_hdr, 348);
        assert_eq!(h.bitpix, 16);
        assert_eq!(&h.pixdim[0..4], &[1.0, 2.0, 1.0, 2.0]);
        assert_eq!((h.qform_code, h.sform_code), (0, 0));
    }

    #[test]
    fn extensions_parse_and_strip_trailing_nuls() {
        let mut h = sample();
        let content = b"<xml/>";
        let ext = NiftiExtension {
            code: 0,
            content: content.to_vec(),
        };
        let size = ext.size_on_disk();
        assert_eq!(size, 16);
        h.vox_offset = (352 + size) as f32;
        let mut bytes = h.to_bytes().to_vec();
        bytes.extend_from_slice(&[1, 0, 0, 0]);
        bytes.extend_from_slice(&(size as i32).to_le_bytes());
        bytes.extend_from_slice(&0i32.to_le_bytes());
        bytes.extend_from_slice(content);
        bytes.resize(352 + size, 0);
        assert_eq!(parse_extensions(&bytes, &h), vec![ext]);
        // A size running past the file is dropped, not a panic.
        bytes[352..356].copy_from_slice(&4000i32.to_le_bytes());
        assert!(parse_extensions(&bytes, &h).is_empty());
        bytes[352..356].copy_from_slice(&(-8i32).to_le_bytes());
        assert!(parse_extensions(&bytes, &h).is_empty());
    }
}
