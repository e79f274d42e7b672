//! The container `torch.save` writes (torch >= 1.6): a zip of stored entries
//! `<archive>/data.pkl`, `<archive>/data/<key>` (one per storage), `<archive>/byteorder`,
//! `<archive>/version`.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use crate::error::ConvertError;
use crate::pickle::{unpickle, Unpickled};

use super::tensor::ByteOrder;

/// Start of a pre-1.6 `torch.save` stream: `PROTO 2`, then `LONG1` of the magic number
/// 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC: [u8; 14] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/// An opened torch zip checkpoint.
pub struct TorchArchive<R> {
    path: PathBuf,
    zip: ZipArchive<R>,
    prefix: String,
    byte_order: ByteOrder,
    file_len: u64,
}

impl TorchArchive<BufReader<File>> {
    /// Opens the checkpoint at `path` and checks it is a torch zip checkpoint.
    pub fn open(path: &Path) -> Result<Self, ConvertError> {
        let read_err = |source| ConvertError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(read_err)?;
        let file_len = file.metadata().map_err(read_err)?.len();
        Self::from_reader(path, BufReader::new(file), file_len)
    }
}

/// Fills `buf` as far as the reader allows.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn check_not_legacy(path: &Path, head: &[u8]) -> Result<(), ConvertError> {
    if head.starts_with(&LEGACY_MAGIC) {
        return Err(ConvertError::LegacyTorchFormat {
            path: path.to_path_buf(),
        });
    }
    if head.first() == Some(&0x80) {
        return Err(ConvertError::NotZip {
            path: path.to_path_buf(),
            reason: "the file is a bare pickle stream, not a torch zip archive".into(),
        });
    }
    Ok(())
}

impl<R: Read + Seek> TorchArchive<R> {
    /// Reads a torch zip checkpoint from `reader`; `path` is only used in error messages and
    /// `len` bounds the buffers allocated for entries.
    pub fn from_reader(path: &Path, mut reader: R, len: u64) -> Result<Self, ConvertError> {
        let read_err = |source| ConvertError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut head = [0u8; LEGACY_MAGIC.len()];
        let head_len = read_up_to(&mut reader, &mut head).map_err(read_err)?;
        reader.rewind().map_err(read_err)?;
        check_not_legacy(path, &head[..head_len])?;
        let zip = ZipArchive::new(reader).map_err(|e| ConvertError::NotZip {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        // torch names the top folder after the file stem (or `archive`); find it by data.pkl.
        let prefix = zip
            .file_names()
            .filter_map(|name| name.strip_suffix("data.pkl"))
            .filter(|prefix| {
                prefix.is_empty() || (prefix.ends_with('/') && prefix.matches('/').count() == 1)
            })
            .min_by_key(|prefix| prefix.len())
            .map(str::to_owned)
            .ok_or_else(|| ConvertError::MissingDataPkl {
                path: path.to_path_buf(),
            })?;
        let mut archive = TorchArchive {
            path: path.to_path_buf(),
            zip,
            prefix,
            byte_order: ByteOrder::Little,
            file_len: len,
        };
        let byteorder_entry = format!("{}byteorder", archive.prefix);
        if archive.zip.index_for_name(&byteorder_entry).is_some() {
            let bytes = archive.read_entry(&byteorder_entry)?;
            archive.byte_order = match bytes.as_slice() {
                b"little" => ByteOrder::Little,
                b"big" => ByteOrder::Big,
                other => {
                    return Err(ConvertError::ZipEntry {
                        path: path.to_path_buf(),
                        entry: byteorder_entry,
                        reason: format!("unknown byte order {:?}", String::from_utf8_lossy(other)),
                    })
                }
            };
        }
        Ok(archive)
    }

    /// The checkpoint file this archive was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Byte order of the storage entries.
    pub fn byte_order(&self) -> ByteOrder {
        self.byte_order
    }

    /// Runs `data.pkl` through the pickle machine.
    pub fn unpickle(&mut self) -> Result<Unpickled, ConvertError> {
        let entry = format!("{}data.pkl", self.prefix);
        let data = self.read_entry(&entry)?;
        unpickle(&data).map_err(|e| ConvertError::Pickle {
            path: self.path.clone(),
            entry,
            offset: e.offset,
            reason: e.reason,
        })
    }

    /// Size in bytes of storage `key` (`<archive>/data/<key>`).
    pub fn storage_len(&mut self, key: &str) -> Result<u64, ConvertError> {
        let entry = self.storage_entry(key);
        let path = self.path.clone();
        self.zip
            .by_name(&entry)
            .map(|file| file.size())
            .map_err(|e| ConvertError::ZipEntry {
                path,
                entry,
                reason: e.to_string(),
            })
    }

    /// The bytes of storage `key` (CRC-checked).
    pub fn read_storage(&mut self, key: &str) -> Result<Vec<u8>, ConvertError> {
        let entry = self.storage_entry(key);
        self.read_entry(&entry)
    }

    fn storage_entry(&self, key: &str) -> String {
        format!("{}data/{key}", self.prefix)
    }

    /// Reads a whole entry; the zip reader verifies its CRC-32 at the end.
    fn read_entry(&mut self, entry: &str) -> Result<Vec<u8>, ConvertError> {
        let file_len = self.file_len;
        let path = self.path.clone();
        let entry_err = |reason: String| ConvertError::ZipEntry {
            path: path.clone(),
            entry: entry.to_owned(),
            reason,
        };
        let mut file = self
            .zip
            .by_name(entry)
            .map_err(|e| entry_err(e.to_string()))?;
        // The declared size is untrusted: refuse what the file cannot hold (deflate expands at
        // most ~1032x) and never reserve more than the file length.
        let max_size = match file.compression() {
            zip::CompressionMethod::Stored => file_len,
            _ => file_len.saturating_mul(1032),
        };
        if file.size() > max_size {
            return Err(entry_err(format!(
                "declared size {} exceeds what a {file_len}-byte file can hold",
                file.size()
            )));
        }
        let capacity = file.size().min(file_len);
        let mut data = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        file.read_to_end(&mut data)
            .map_err(|e| entry_err(e.to_string()))?;
        Ok(data)
    }
}
