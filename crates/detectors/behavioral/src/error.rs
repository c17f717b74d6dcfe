//! Typed errors of `mesa-behavioral`.

use thiserror::Error;

/// Everything that can go wrong while building or running a behavioural detector.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BehavioralError {
    /// A hyper-parameter is out of range.
    #[error("invalid parameter {param}: {reason}")]
    InvalidParam { param: &'static str, reason: String },

    /// The inputs cannot be used: none given, an empty prompt, lengths that do not match.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// The cue library does not parse or validate; `origin` names where it came from.
    #[error("cue library {origin}: {reason}")]
    Cues { origin: String, reason: String },

    #[error("model: {0}")]
    Model(#[from] mesa_nn::NnError),
}

/// Result type of `mesa-behavioral`.
pub type Result<T> = std::result::Result<T, BehavioralError>;
