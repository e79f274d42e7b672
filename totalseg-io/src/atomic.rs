//! Writing a file through a temporary file in the same folder, synced and renamed into place:
//! a failure half way (disk full, an error in the writer) leaves no partial file, and an
//! existing file keeps its old content.

use std::fs::File;
use std::io;
use std::path::Path;

/// Runs `body` on a temporary file next to `path` (the body flushes and syncs what it
/// wrote), then renames the file over `path`. On failure the temporary file is removed and the error
/// comes with the step that failed ("writing", "renaming ...").
pub(crate) fn write_atomically<F>(path: &Path, body: F) -> Result<(), (String, io::Error)>
where
    F: FnOnce(&File) -> io::Result<()>,
{
    let Some(file_name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return Err((
            "choosing the output file".into(),
            io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"),
        ));
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let prefix = format!(".{file_name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Like a file created by open(2): 0666 minus the umask.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let tmp = builder
        .tempfile_in(dir)
        .map_err(|e| (format!("creating a temporary file in {}", dir.display()), e))?;
    body(tmp.as_file()).map_err(|e| ("writing".to_string(), e))?;
    tmp.persist(path).map_err(|e| {
        (
            "renaming the temporary file into place".to_string(),
            e.error,
        )
    })?;
    Ok(())
}
