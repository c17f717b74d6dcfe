//! Typed errors of `mesa-gradient`.

use thiserror::Error;

/// Everything that can go wrong while searching for a trigger or scoring inputs.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GradientError {
    /// A hyper-parameter is out of range.
    #[error("invalid parameter {param}: {reason}")]
    InvalidParam { param: &'static str, reason: String },

    /// The prompts, tokens or questions cannot be used with this model (too few prompts, a
    /// prompt too long for an insertion, a token outside the vocabulary).
    #[error("invalid data: {0}")]
    InvalidData(String),

    #[error("model: {0}")]
    Model(#[from] mesa_nn::NnError),
}

/// Result type of `mesa-gradient`.
pub type Result<T> = std::result::Result<T, GradientError>;
