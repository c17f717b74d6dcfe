//! Typed errors of `mesa-goalmisgen`.

use std::path::PathBuf;

/// Everything that can go wrong when loading a config, generating levels, running episodes or
/// training a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GoalMisgenError {
    /// The TOML file does not parse or does not match the schema; `message` is the parser's,
    /// which names the field and the line.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },

    /// A field parsed but its value is not allowed.
    #[error("{path}: field `{field}`: {reason}")]
    InvalidField {
        path: PathBuf,
        field: String,
        reason: String,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An action index outside the action set (`0..4`).
    #[error("action {index} is outside the action set (0..{n_actions})")]
    InvalidAction { index: usize, n_actions: usize },

    /// A step was asked of an episode that has already ended.
    #[error("the episode has already ended")]
    EpisodeOver,

    /// The generator could not draw a level meeting its constraints.
    #[error("{env}: {reason}")]
    Generation { env: &'static str, reason: String },

    #[error(transparent)]
    Nn(#[from] mesa_nn::NnError),
}

/// Result type of `mesa-goalmisgen`.
pub type Result<T> = std::result::Result<T, GoalMisgenError>;
