//! Typed errors of `mesa-goalmisgen`.

pub use mesa_nn::ConfigFileError;

/// Everything that can go wrong when loading a config, generating levels, running episodes or
/// training a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GoalMisgenError {
    /// The config file could not be read, does not parse or match the schema, or holds a value
    /// that is not allowed; the message names the file (and the field).
    #[error(transparent)]
    Config(#[from] ConfigFileError),

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
