//! All-or-nothing writes of a group of files (a table's CSV, Parquet and sidecar; a plot's PNG
//! and SVG): each file is written under a temporary name in its final directory, and the group
//! is renamed into place only once every file is complete.

use std::path::{Path, PathBuf};

use crate::error::WriteError;

/// Temporary files waiting to be renamed onto their final paths. Dropping an uncommitted group
/// removes its temporary files.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    files: Vec<(PathBuf, PathBuf)>,
}

impl Staged {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Creates the directory of `target` and returns the temporary path to write it under.
    pub(crate) fn stage(&mut self, target: &Path) -> Result<PathBuf, WriteError> {
        let dir = target.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).map_err(|source| WriteError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // The extension stays last: image encoders pick the format from it.
        let stem = target
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = target
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()))
            .unwrap_or_default();
        let tmp = target.with_file_name(format!(".{stem}.tmp{}{ext}", std::process::id()));
        self.files.push((tmp.clone(), target.to_path_buf()));
        Ok(tmp)
    }

    /// Renames every temporary file onto its target. If one rename fails, the targets renamed
    /// before it are removed again, so the group is never left half in place.
    pub(crate) fn commit(mut self) -> Result<(), WriteError> {
        let files = std::mem::take(&mut self.files);
        for (k, (tmp, target)) in files.iter().enumerate() {
            if let Err(source) = std::fs::rename(tmp, target) {
                for (_, done) in &files[..k] {
                    let _ = std::fs::remove_file(done);
                }
                for (rest, _) in &files[k..] {
                    let _ = std::fs::remove_file(rest);
                }
                return Err(WriteError::Io {
                    path: target.clone(),
                    source,
                });
            }
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
    }
}
