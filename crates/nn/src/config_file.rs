//! TOML config files of the organisms: reading, parsing and the sections they share.
//!
//! Every organism reads its config from a TOML file under `datasets/`, refuses unknown fields,
//! and names the file (and, for a bad value, the dotted field) in its error. [`load_toml`] and
//! [`read_toml`] do the reading and parsing; [`ConfigFileError`] is the error; [`PresetName`],
//! [`ModelSection`] and [`TrainSection`] are the `[model]` and `[train]` sections that organisms
//! training one language model share.
//!
//! ```
//! use mesa_nn::config_file::{read_toml, ConfigFileError, TrainSection};
//! use std::path::Path;
//!
//! let path = Path::new("train.toml");
//! let train: TrainSection =
//!     read_toml("steps = 10\nbatch_size = 4\nlr = 1e-3\nwarmup_steps = 2\n", path)?;
//! train.validate(path)?;
//! let err = read_toml::<TrainSection>("steps = 10\n", path).unwrap_err();
//! assert!(err.to_string().starts_with("train.toml: "), "{err}");
//! # Ok::<(), ConfigFileError>(())
//! ```

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::{ModelConfig, Preset, Small, Tiny};

/// What can go wrong when loading a config file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The TOML does not parse or does not match the schema (missing or unknown field, wrong
    /// type); `message` is the parser's, which names the field and the line.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },

    /// A field parsed but its value is not allowed; `field` is the dotted TOML key.
    #[error("{path}: field `{field}`: {reason}")]
    InvalidField {
        path: PathBuf,
        field: String,
        reason: String,
    },
}

impl ConfigFileError {
    /// An [`InvalidField`](Self::InvalidField) error for `field` of the file at `path`.
    pub fn invalid_field(path: &Path, field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            path: path.to_path_buf(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

/// Parses TOML `text` into `T`; `path` only names the source in errors. Validation of the
/// values is the caller's.
pub fn read_toml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigFileError> {
    toml::from_str(text).map_err(|e| ConfigFileError::Parse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// Reads the file at `path` and parses it as [`read_toml`] does.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_toml(&text, path)
}

/// A model preset by name, as written in a config (`"tiny"`, `"small"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresetName {
    Tiny,
    Small,
}

impl PresetName {
    /// The preset's language model over `vocab` words and sequences of up to `seq_len` tokens.
    pub fn language_model(self, vocab: usize, seq_len: usize) -> ModelConfig {
        match self {
            PresetName::Tiny => Tiny::language_model(vocab, seq_len),
            PresetName::Small => Small::language_model(vocab, seq_len),
        }
    }
}

/// The `[model]` section: which preset to build.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub preset: PresetName,
}

/// The `[train]` section: the run's length, batch size and learning-rate schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub warmup_steps: usize,
}

impl TrainSection {
    /// Checks `train.steps`, `train.batch_size`, `train.lr` and `train.warmup_steps`
    /// (positive, positive, a finite positive number, smaller than `train.steps`); errors name
    /// `path` and the field.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigFileError> {
        let bad =
            |field: &str, reason: &str| Err(ConfigFileError::invalid_field(path, field, reason));
        if self.steps == 0 {
            return bad("train.steps", "must be positive");
        }
        if self.batch_size == 0 {
            return bad("train.batch_size", "must be positive");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("train.lr", "must be a positive number");
        }
        if self.warmup_steps >= self.steps {
            return bad("train.warmup_steps", "must be smaller than train.steps");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        model: ModelSection,
        train: TrainSection,
    }

    const GOOD: &str = r#"
[model]
preset = "small"

[train]
steps = 100
batch_size = 8
lr = 1e-3
warmup_steps = 10
"#;

    fn path() -> &'static Path {
        Path::new("datasets/x/cfg.toml")
    }

    #[test]
    fn good_text_parses_and_validates() {
        let doc: Doc = read_toml(GOOD, path()).unwrap();
        assert_eq!(doc.model.preset, PresetName::Small);
        assert_eq!(doc.train.steps, 100);
        doc.train.validate(path()).unwrap();
    }

    #[test]
    fn bad_toml_is_a_parse_error_naming_the_path() {
        let err = read_toml::<Doc>("[model\npreset = 1", path()).unwrap_err();
        assert!(matches!(&err, ConfigFileError::Parse { path: p, .. } if p == path()));
        let msg = err.to_string();
        assert!(msg.starts_with("datasets/x/cfg.toml: "), "{msg}");
        assert_eq!(msg, msg.trim_end(), "no trailing newline");
    }

    #[test]
    fn unknown_field_is_refused_naming_it() {
        let text = GOOD.replace("warmup_steps = 10", "warmup_steps = 10\nwarmup = 3");
        let err = read_toml::<Doc>(&text, path()).unwrap_err();
        assert!(matches!(err, ConfigFileError::Parse { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("cfg.toml") && msg.contains("warmup"), "{msg}");
        let err = read_toml::<Doc>(&format!("{GOOD}\nextra = 1\n"), path()).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }

    #[test]
    fn invalid_train_section_names_the_field() {
        let check = |from: &str, to: &str, field: &str| {
            let doc: Doc = read_toml(&GOOD.replace(from, to), path()).unwrap();
            let err = doc.train.validate(path()).unwrap_err();
            assert!(
                matches!(&err, ConfigFileError::InvalidField { field: f, .. } if f == field),
                "{err}"
            );
            let msg = err.to_string();
            assert!(
                msg.starts_with("datasets/x/cfg.toml: field `") && msg.contains(field),
                "{msg}"
            );
        };
        check("lr = 1e-3", "lr = -1e-3", "train.lr");
        check("lr = 1e-3", "lr = nan", "train.lr");
        check("steps = 100", "steps = 0", "train.steps");
        check("batch_size = 8", "batch_size = 0", "train.batch_size");
        check(
            "warmup_steps = 10",
            "warmup_steps = 100",
            "train.warmup_steps",
        );
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err = load_toml::<Doc>(Path::new("no/such/cfg.toml")).unwrap_err();
        assert!(matches!(err, ConfigFileError::Io { .. }), "{err}");
        assert!(err.to_string().starts_with("no/such/cfg.toml: "), "{err}");
    }

    #[test]
    fn preset_names_build_their_presets() {
        assert_eq!(
            PresetName::Tiny.language_model(10, 16),
            Tiny::language_model(10, 16)
        );
        assert_eq!(
            PresetName::Small.language_model(10, 16),
            Small::language_model(10, 16)
        );
    }
}
