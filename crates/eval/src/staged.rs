//! All-or-nothing writes: of a group of files (a table's CSV, Parquet and sidecar; a plot's PNG
//! and SVG), each written under a temporary name in its final directory and renamed into place
//! only once every file is complete; and of a whole run's output directory ([`StagedDir`]).

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

/// A run's output directory, written all or nothing.
///
/// Everything the run writes goes into a staging directory beside the final one
/// (`.NAME.staging-PID`, same file system); [`StagedDir::commit`] then moves each staged file
/// onto its final path. If the run fails before committing, dropping the `StagedDir` removes
/// the staging directory and the final directory still holds the previous run's complete set.
/// Files of the final directory that the run did not write (a hand-written `README.md`) are
/// left as they are.
#[derive(Debug)]
pub struct StagedDir {
    target: PathBuf,
    staging: PathBuf,
    committed: bool,
}

impl StagedDir {
    /// Creates an empty staging directory for `target` (removing a stale one of this process
    /// id).
    ///
    /// # Errors
    /// [`WriteError::Io`] if the staging directory cannot be created.
    pub fn new(target: &Path) -> Result<Self, WriteError> {
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let sibling =
            |what: &str| target.with_file_name(format!(".{name}.{what}-{}", std::process::id()));
        let staging = sibling("staging");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WriteError::Io { path, source }
        };
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
        }
        std::fs::create_dir_all(&staging).map_err(io(&staging))?;
        Ok(Self {
            target: target.to_path_buf(),
            staging,
            committed: false,
        })
    }

    /// Where the run writes its files until [`commit`](Self::commit).
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The final directory.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves every staged file (subdirectories included) onto its final path. A file it
    /// replaces is first moved aside; if any move fails, the files moved in so far are removed
    /// and the ones moved aside restored, so the final directory is never left half-updated.
    ///
    /// # Errors
    /// [`WriteError::Io`] naming the file that could not be moved.
    pub fn commit(mut self) -> Result<(), WriteError> {
        let mut files = Vec::new();
        collect_files(&self.staging, Path::new(""), &mut files)?;
        let backup = self.staging.with_file_name(
            self.staging
                .file_name()
                .map(|n| n.to_string_lossy().replace(".staging-", ".backup-"))
                .unwrap_or_default(),
        );
        let mut moved_in: Vec<PathBuf> = Vec::new();
        let mut moved_aside: Vec<(PathBuf, PathBuf)> = Vec::new();
        let result = (|| {
            for rel in &files {
                let target = self.target.join(rel);
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir).map_err(|source| WriteError::Io {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                if target.exists() {
                    let aside = backup.join(rel);
                    if let Some(dir) = aside.parent() {
                        std::fs::create_dir_all(dir).map_err(|source| WriteError::Io {
                            path: dir.to_path_buf(),
                            source,
                        })?;
                    }
                    std::fs::rename(&target, &aside).map_err(|source| WriteError::Io {
                        path: target.clone(),
                        source,
                    })?;
                    moved_aside.push((aside, target.clone()));
                }
                std::fs::rename(self.staging.join(rel), &target).map_err(|source| {
                    WriteError::Io {
                        path: target.clone(),
                        source,
                    }
                })?;
                moved_in.push(target);
            }
            Ok(())
        })();
        if result.is_err() {
            for target in &moved_in {
                let _ = std::fs::remove_file(target);
            }
            for (aside, target) in &moved_aside {
                let _ = std::fs::rename(aside, target);
            }
        }
        let _ = std::fs::remove_dir_all(&backup);
        let _ = std::fs::remove_dir_all(&self.staging);
        self.committed = true;
        result
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Every file under `dir`, as paths relative to the staging root (`rel` is `dir`'s).
fn collect_files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), WriteError> {
    let io = |source| WriteError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel = rel.join(entry.file_name());
        if entry.file_type().map_err(io)?.is_dir() {
            collect_files(&entry.path(), &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, text).expect("write");
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).expect("read")
    }

    fn previous_run(root: &Path) -> PathBuf {
        let out = root.join("results").join("exp");
        write(&out.join("a.csv"), "old a");
        write(&out.join("plots/b.png"), "old b");
        write(&out.join("README.md"), "hand-written");
        out
    }

    #[test]
    fn a_run_that_fails_before_commit_leaves_the_previous_set() {
        let root = tempfile::tempdir().expect("tempdir");
        let out = previous_run(root.path());
        {
            let staged = StagedDir::new(&out).expect("staged");
            write(&staged.path().join("a.csv"), "new a");
            // The run fails here: `staged` is dropped without commit.
        }
        assert_eq!(read(&out.join("a.csv")), "old a");
        assert_eq!(read(&out.join("plots/b.png")), "old b");
        let left: Vec<_> = std::fs::read_dir(root.path().join("results"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, ["exp"], "no staging directory left behind");
    }

    #[test]
    fn commit_replaces_every_written_file_and_keeps_the_others() {
        let root = tempfile::tempdir().expect("tempdir");
        let out = previous_run(root.path());
        let staged = StagedDir::new(&out).expect("staged");
        write(&staged.path().join("a.csv"), "new a");
        write(&staged.path().join("plots/b.png"), "new b");
        write(&staged.path().join("c.json"), "new c");
        staged.commit().expect("commit");
        assert_eq!(read(&out.join("a.csv")), "new a");
        assert_eq!(read(&out.join("plots/b.png")), "new b");
        assert_eq!(read(&out.join("c.json")), "new c");
        assert_eq!(read(&out.join("README.md")), "hand-written");
        let left = std::fs::read_dir(root.path().join("results"))
            .expect("dir")
            .count();
        assert_eq!(left, 1, "no staging or backup directory left behind");
    }

    #[test]
    fn a_failed_commit_restores_the_previous_set() {
        let root = tempfile::tempdir().expect("tempdir");
        let out = previous_run(root.path());
        // A file where a staged subdirectory must go makes its move fail after `a.csv` moved.
        write(&out.join("sub"), "a file, not a directory");
        let staged = StagedDir::new(&out).expect("staged");
        write(&staged.path().join("a.csv"), "new a");
        write(&staged.path().join("sub/x.csv"), "new x");
        let err = staged.commit().expect_err("must fail");
        assert!(matches!(err, WriteError::Io { .. }), "{err}");
        assert_eq!(read(&out.join("a.csv")), "old a");
        assert_eq!(read(&out.join("sub")), "a file, not a directory");
        let left = std::fs::read_dir(root.path().join("results"))
            .expect("dir")
            .count();
        assert_eq!(left, 1, "no staging or backup directory left behind");
    }
}
