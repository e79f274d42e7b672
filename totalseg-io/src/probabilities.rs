//! nnU-Net's `save_probabilities` files, as TotalSegmentator's `--save_probabilities PATH`
//! copies them: `PATH` is `np.savez_compressed(..., probabilities=array)` (one float32 array
//! `[classes, d0, d1, d2]` in the reader's axis order) and `PATH` with the suffix `.pkl` is
//! `pickle.dump(properties)` (protocol 4, NumPy 2 arrays), byte for byte as Python writes
//! that dictionary.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ndarray::ArrayView4;
use zip::write::SimpleFileOptions;

/// Writing the probability files failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct ProbabilitiesError {
    /// The file being written.
    pub path: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

/// The `properties` dictionary nnU-Net pickles next to the probabilities (its
/// `NibabelIOWithReorient` reader and preprocessing), for an input that needs no
/// reorientation (TotalSegmentator hands nnU-Net a canonical image).
#[derive(Debug, Clone, PartialEq)]
pub struct NnunetProperties {
    /// `nibabel_stuff.original_affine` (= `reoriented_affine`, the same array).
    pub affine: [[f64; 4]; 4],
    /// `spacing`, in the reader's axis order (the NIfTI zooms reversed).
    pub spacing: [f64; 3],
    /// `shape_before_cropping` (after `transpose_forward`).
    pub shape_before_cropping: [usize; 3],
    /// `bbox_used_for_cropping`: `[start, end)` per axis.
    pub bbox_used_for_cropping: [[usize; 2]; 3],
    /// `shape_after_cropping_and_before_resampling`.
    pub shape_after_cropping: [usize; 3],
}

/// Python's `Path.with_suffix(".pkl")`: the last suffix replaced (or added).
pub fn pickle_path(npz: &Path) -> PathBuf {
    npz.with_extension("pkl")
}

/// Writes the npz at `npz` and the pickle at [`pickle_path`]`(npz)`, each through a
/// temporary file renamed into place.
///
/// ```
/// use ndarray::Array4;
/// use totalseg_io::probabilities::{write_probabilities, NnunetProperties};
/// let dir = tempfile::tempdir()?;
/// let probabilities = Array4::<f32>::from_elem((2, 1, 2, 3), 0.5);
/// let properties = NnunetProperties {
///     affine: [[1.5, 0.0, 0.0, 0.0], [0.0, 1.5, 0.0, 0.0], [0.0, 0.0, 1.5, 0.0], [0.0, 0.0, 0.0, 1.0]],
///     spacing: [1.5; 3],
///     shape_before_cropping: [1, 2, 3],
///     bbox_used_for_cropping: [[0, 1], [0, 2], [0, 3]],
///     shape_after_cropping: [1, 2, 3],
/// };
/// write_probabilities(&dir.path().join("probs.npz"), probabilities.view(), &properties)?;
/// assert!(dir.path().join("probs.pkl").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_probabilities(
    npz: &Path,
    probabilities: ArrayView4<f32>,
    properties: &NnunetProperties,
) -> Result<(), ProbabilitiesError> {
    write_atomically(npz, |out| write_npz(out, probabilities))?;
    let pickle = properties_pickle(properties);
    write_atomically(&pickle_path(npz), |out| out.write_all(&pickle))
}

fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<&File>) -> std::io::Result<()>,
) -> Result<(), ProbabilitiesError> {
    let err = |source| ProbabilitiesError {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    crate::atomic::write_atomically(path, |file| {
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        out.flush()?;
        drop(out);
        file.sync_all()
    })
    .map_err(|(step, e)| err(std::io::Error::new(e.kind(), format!("{step}: {e}"))))
}

/// `np.savez_compressed(out, probabilities=array)`: a deflated zip holding
/// `probabilities.npy` (format 1.0, little-endian float32, C order).
fn write_npz(out: &mut BufWriter<&File>, array: ArrayView4<f32>) -> std::io::Result<()> {
    let mut zip = zip::ZipWriter::new(out);
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    zip.start_file("probabilities.npy", options)
        .map_err(std::io::Error::other)?;
    zip.write_all(&npy_header(array.shape()))?;
    let mut chunk = Vec::with_capacity(1 << 16);
    for &v in array.iter() {
        chunk.extend_from_slice(&v.to_le_bytes());
        if chunk.len() >= 1 << 16 {
            zip.write_all(&chunk)?;
            chunk.clear();
        }
    }
    zip.write_all(&chunk)?;
    zip.finish().map_err(std::io::Error::other)?;
    Ok(())
}

/// The `.npy` 1.0 header NumPy writes: magic, version, length, then the dictionary padded
/// with spaces to a multiple of 64 bytes, ending in a newline.
fn npy_header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 10 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut header = b"\x93NUMPY\x01\x00".to_vec();
    header.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    header.extend_from_slice(dict.as_bytes());
    header
}

/// A protocol-4 pickler for the few types of the properties dictionary, emitting the
/// opcodes CPython's `pickle` emits (memo entries included).
struct Pickler {
    out: Vec<u8>,
    memo: u32,
}

impl Pickler {
    fn memoize(&mut self) {
        self.out.push(b'\x94');
        self.memo += 1;
    }

    fn string(&mut self, s: &str) {
        let bytes = s.as_bytes();
        if bytes.len() < 256 {
            self.out.push(b'\x8c');
            self.out.push(bytes.len() as u8);
        } else {
            self.out.push(b'X');
            self.out
                .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(bytes);
        self.memoize();
    }

    fn int(&mut self, v: i64) {
        if (0..=0xff).contains(&v) {
            self.out.extend_from_slice(&[b'K', v as u8]);
        } else if (0..=0xffff).contains(&v) {
            self.out.push(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else if i32::try_from(v).is_ok() {
            self.out.push(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            // LONG1: little-endian two's complement, shortest form.
            let mut bytes = v.to_le_bytes().to_vec();
            while bytes.len() > 1 {
                let last = bytes[bytes.len() - 1];
                let prev = bytes[bytes.len() - 2];
                if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
                    bytes.pop();
                } else {
                    break;
                }
            }
            self.out.extend_from_slice(&[b'\x8a', bytes.len() as u8]);
            self.out.extend_from_slice(&bytes);
        }
    }

    fn float(&mut self, v: f64) {
        self.out.push(b'G');
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        if b.len() < 256 {
            self.out.extend_from_slice(&[b'C', b.len() as u8]);
        } else {
            self.out.push(b'B');
            self.out.extend_from_slice(&(b.len() as u32).to_le_bytes());
        }
        self.out.extend_from_slice(b);
        self.memoize();
    }

    /// A tuple of three ints, memoized (shapes).
    fn int_triple(&mut self, v: [usize; 3]) {
        for x in v {
            self.int(x as i64);
        }
        self.out.push(b'\x87');
        self.memoize();
    }

    /// A list, memoized, with `items` appended as CPython batches them.
    fn list(&mut self, count: usize, mut items: impl FnMut(&mut Self)) {
        self.out.push(b']');
        self.memoize();
        match count {
            0 => {}
            1 => {
                items(self);
                self.out.push(b'a');
            }
            _ => {
                self.out.push(b'(');
                items(self);
                self.out.push(b'e');
            }
        }
    }

    fn binget(&mut self, index: u32) {
        if index < 256 {
            self.out.extend_from_slice(&[b'h', index as u8]);
        } else {
            self.out.push(b'j');
            self.out.extend_from_slice(&index.to_le_bytes());
        }
    }

    /// A float64 4x4 array as NumPy 2 reduces it: `_reconstruct(ndarray, (0,), b'b')`, then
    /// `(1, shape, dtype('f8'), False, raw bytes)` as its state. Returns its memo index.
    fn affine(&mut self, affine: &[[f64; 4]; 4]) -> u32 {
        self.string("numpy._core.multiarray");
        self.string("_reconstruct");
        self.out.push(b'\x93');
        self.memoize();
        let numpy = self.memo;
        self.string("numpy");
        self.string("ndarray");
        self.out.push(b'\x93');
        self.memoize();
        self.int(0);
        self.out.push(b'\x85');
        self.memoize();
        self.bytes(b"b");
        self.out.push(b'\x87');
        self.memoize();
        self.out.push(b'R');
        self.memoize();
        let array = self.memo - 1;
        self.out.push(b'(');
        self.int(1);
        self.int(4);
        self.int(4);
        self.out.push(b'\x86');
        self.memoize();
        // dtype('f8', False, True) with state (3, '<', None, None, None, -1, -1, 0).
        self.binget(numpy);
        self.string("dtype");
        self.out.push(b'\x93');
        self.memoize();
        self.string("f8");
        self.out.extend_from_slice(b"\x89\x88\x87");
        self.memoize();
        self.out.push(b'R');
        self.memoize();
        self.out.push(b'(');
        self.int(3);
        self.string("<");
        self.out.extend_from_slice(b"NNN");
        self.int(-1);
        self.int(-1);
        self.int(0);
        self.out.push(b't');
        self.memoize();
        self.out.push(b'b');
        self.out.push(b'\x89');
        let raw: Vec<u8> = affine
            .iter()
            .flatten()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        self.bytes(&raw);
        self.out.push(b't');
        self.memoize();
        self.out.push(b'b');
        array
    }
}

/// `pickle.dumps(properties)` as nnU-Net writes it (`batchgenerators.save_pickle`, protocol 4).
pub fn properties_pickle(p: &NnunetProperties) -> Vec<u8> {
    let mut pk = Pickler {
        out: Vec::new(),
        memo: 0,
    };
    pk.out.push(b'}');
    pk.memoize();
    pk.out.push(b'(');
    pk.string("nibabel_stuff");
    pk.out.push(b'}');
    pk.memoize();
    pk.out.push(b'(');
    pk.string("original_affine");
    let affine = pk.affine(&p.affine);
    pk.string("reoriented_affine");
    pk.binget(affine);
    pk.out.push(b'u');
    pk.string("spacing");
    pk.list(3, |pk| p.spacing.iter().for_each(|&s| pk.float(s)));
    pk.string("shape_before_cropping");
    pk.int_triple(p.shape_before_cropping);
    pk.string("bbox_used_for_cropping");
    pk.list(3, |pk| {
        for [lo, hi] in p.bbox_used_for_cropping {
            pk.list(2, |pk| {
                pk.int(lo as i64);
                pk.int(hi as i64);
            });
        }
    });
    pk.string("shape_after_cropping_and_before_resampling");
    pk.int_triple(p.shape_after_cropping);
    pk.out.push(b'u');
    pk.out.push(b'.');
    // PROTO 4, then the whole body as one frame (CPython frames anything under 64 KiB once).
    let mut framed = vec![b'\x80', 4, b'\x95'];
    framed.extend_from_slice(&(pk.out.len() as u64).to_le_bytes());
    framed.extend_from_slice(&pk.out);
    framed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_padded_to_64_bytes() {
        let header = npy_header(&[118, 30, 101, 122]);
        assert_eq!(header.len() % 64, 0);
        assert!(header.ends_with(b"\n"));
        let text = String::from_utf8_lossy(&header[10..]);
        assert!(text.starts_with(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (118, 30, 101, 122), }"
        ));
    }

    #[test]
    fn pickle_suffix_replaces_the_last_one() {
        assert_eq!(
            pickle_path(Path::new("a/probs.npz")),
            Path::new("a/probs.pkl")
        );
        assert_eq!(pickle_path(Path::new("probs")), Path::new("probs.pkl"));
        assert_eq!(pickle_path(Path::new("x.y.npz")), Path::new("x.y.pkl"));
    }

    #[test]
    fn ints_take_the_shortest_opcode() {
        let mut pk = Pickler {
            out: Vec::new(),
            memo: 0,
        };
        for v in [5, 300, 70000, -1, 1 << 40] {
            pk.int(v);
        }
        assert_eq!(
            pk.out,
            [
                &b"K\x05"[..],
                b"M\x2c\x01",
                b"J\x70\x11\x01\x00",
                b"J\xff\xff\xff\xff",
                b"\x8a\x06\x00\x00\x00\x00\x00\x01"
            ]
            .concat()
        );
    }
}
