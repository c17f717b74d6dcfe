//! Typed errors of `mesa-causal`.

use thiserror::Error;

/// Everything that can go wrong while running a causal-intervention detector.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CausalError {
    /// A hyper-parameter is out of range.
    #[error("invalid parameter {param}: {reason}")]
    InvalidParam { param: &'static str, reason: String },

    /// The inputs cannot be used: none given, an empty prompt, lengths that do not match.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    #[error("model: {0}")]
    Model(#[from] mesa_nn::NnError),

    #[error("behaviour: {0}")]
    Behavioral(#[from] mesa_behavioral::BehavioralError),

    #[error("activations: {0}")]
    Probe(#[from] mesa_probe::ProbeError),
}

/// Result type of `mesa-causal`.
pub type Result<T> = std::result::Result<T, CausalError>;
