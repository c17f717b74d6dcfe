//! Typed errors of `mesa-activation`.

use mesa_detect::DetectError;
use thiserror::Error;

/// Why an activation statistic could not be fitted or scored.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ActivationError {
    /// A hyper-parameter is out of range.
    #[error("parameter {param}: {reason}")]
    InvalidParam { param: &'static str, reason: String },

    /// Too few or inconsistent activations (fewer rows than the statistic needs, widths that
    /// differ between fit and score).
    #[error("activations: {0}")]
    InvalidData(String),

    /// Reading activations failed.
    #[error(transparent)]
    Probe(#[from] mesa_probe::ProbeError),
}

impl ActivationError {
    /// The contract's error for detector `detector`.
    pub fn into_detect(self, detector: &str) -> DetectError {
        match self {
            ActivationError::Probe(mesa_probe::ProbeError::Model(source)) => DetectError::Model {
                detector: detector.to_string(),
                source,
            },
            ActivationError::InvalidParam { param, reason } => DetectError::InvalidParam {
                detector: detector.to_string(),
                param,
                reason,
            },
            other => DetectError::InvalidInputs {
                detector: detector.to_string(),
                reason: other.to_string(),
            },
        }
    }
}

/// Result type of `mesa-activation`.
pub type Result<T> = std::result::Result<T, ActivationError>;
