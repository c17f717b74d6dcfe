//! Typed errors of `mesa-nn`.

use std::path::PathBuf;

/// Everything that can go wrong when building, running, training, saving or loading a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NnError {
    #[error("invalid model config: {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },

    #[error("invalid input: {0}")]
    InvalidInput(String),

    #[error("invalid hook: {point}: {reason}")]
    InvalidHook { point: String, reason: String },

    #[error("unknown hook point name `{0}`")]
    UnknownHookName(String),

    #[error("invalid training config: {field}: {reason}")]
    InvalidTrainConfig { field: &'static str, reason: String },

    #[error("training diverged at step {step}: loss is {loss}")]
    NonFiniteLoss { step: usize, loss: f32 },

    /// The model put out a NaN or an infinity where generation chooses the next token.
    #[error(
        "non-finite logit for token {token} after position {position} of prompt {prompt}: the \
         model is broken (NaN or infinite weights or activations)"
    )]
    NonFiniteLogits {
        prompt: usize,
        position: usize,
        token: usize,
    },

    #[error("unknown word `{word}` (not in the vocabulary)")]
    UnknownWord { word: String },

    #[error("token id {id} is outside the vocabulary of {size} words")]
    UnknownTokenId { id: usize, size: usize },

    #[error("{path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },

    #[error("{path}: tensor `{tensor}`: {reason}")]
    CheckpointTensor {
        path: PathBuf,
        tensor: String,
        reason: String,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Result type of `mesa-nn`.
pub type Result<T> = std::result::Result<T, NnError>;
