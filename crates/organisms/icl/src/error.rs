//! Typed errors of `mesa-icl`.

use std::path::PathBuf;

pub use mesa_nn::ConfigFileError;

/// Everything that can go wrong when loading a config, sampling tasks or building a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IclError {
    /// A config value is out of range; `path` is the file (or `<inline>`), `field` the TOML key.
    #[error("{path}: `{field}`: {reason}")]
    InvalidConfig {
        path: PathBuf,
        field: &'static str,
        reason: String,
    },

    /// The file could not be read, is not valid TOML or does not have the expected keys and
    /// types; the message names the file.
    #[error(transparent)]
    Config(#[from] ConfigFileError),

    /// Tasks of different shapes, an empty task set, or a singular system where a learner
    /// needs an inverse.
    #[error("invalid tasks: {0}")]
    InvalidTasks(String),

    #[error(transparent)]
    Nn(#[from] mesa_nn::NnError),
}

/// Result type of `mesa-icl`.
pub type Result<T> = std::result::Result<T, IclError>;
