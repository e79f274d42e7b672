//! PNG output for `--preview`: 8-bit RGB, written through a temporary file.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A PNG could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PngWriteError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// Writes `rgb` (`width * height * 3` bytes, rows top first) to `path` as an 8-bit RGB PNG.
/// Nothing is left at `path` when writing fails.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("preview.png");
/// totalseg_io::png::write_png_rgb(&path, 2, 1, &[255, 0, 0, 0, 0, 255])?;
/// assert!(std::fs::read(&path)?.starts_with(b"\x89PNG"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_png_rgb(
    path: &Path,
    width: usize,
    height: usize,
    rgb: &[u8],
) -> Result<(), PngWriteError> {
    let err = |message: String| PngWriteError {
        path: path.to_path_buf(),
        message,
    };
    if rgb.len() != width * height * 3 {
        return Err(err(format!(
            "{} bytes for a {width}x{height} RGB image",
            rgb.len()
        )));
    }
    let (w, h) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(err(format!("cannot store a {width}x{height} image"))),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| err(e.to_string()))?;
    }
    crate::atomic::write_atomically(path, |file| {
        let mut out = BufWriter::new(file);
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer
            .write_image_data(rgb)
            .map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)?;
        out.flush()?;
        drop(out);
        file.sync_all()
    })
    .map_err(|(step, e)| err(format!("{step}: {e}")))
}

/// Reads an 8-bit RGB or RGBA PNG as RGB bytes (alpha dropped): `(width, height, rgb)`.
pub fn read_png_rgb(path: &Path) -> Result<(usize, usize, Vec<u8>), PngWriteError> {
    let err = |message: String| PngWriteError {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = decoder.read_info().map_err(|e| err(e.to_string()))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| err("image too large".into()))?;
    let mut buffer = vec![0; size];
    let info = reader
        .next_frame(&mut buffer)
        .map_err(|e| err(e.to_string()))?;
    if info.bit_depth != png::BitDepth::Eight {
        return Err(err(format!("{:?} bits per sample, not 8", info.bit_depth)));
    }
    let (width, height) = (info.width as usize, info.height as usize);
    let rgb = match info.color_type {
        png::ColorType::Rgb => buffer[..width * height * 3].to_vec(),
        png::ColorType::Rgba => buffer[..width * height * 4]
            .chunks(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        other => return Err(err(format!("{other:?} PNG, not RGB"))),
    };
    Ok((width, height, rgb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_sizes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("a.png");
        let rgb: Vec<u8> = (0..4 * 3 * 3).map(|v| v as u8 * 7).collect();
        write_png_rgb(&path, 4, 3, &rgb).expect("write");
        assert_eq!(read_png_rgb(&path).expect("read"), (4, 3, rgb));
        let bad = dir.path().join("b.png");
        assert!(write_png_rgb(&bad, 4, 3, &[0; 5]).is_err());
        assert!(write_png_rgb(&bad, 0, 3, &[]).is_err());
        assert!(!bad.exists());
    }

    #[test]
    fn a_truncated_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.png");
        write_png_rgb(&path, 8, 8, &[9; 8 * 8 * 3]).expect("write");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("truncate");
        let e = read_png_rgb(&path).expect_err("truncated");
        assert!(e.to_string().contains("a.png"), "{e}");
    }
}
