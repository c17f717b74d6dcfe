//! Typed errors of `mesa-probe`.

use mesa_detect::DetectError;
use thiserror::Error;

/// Everything that can go wrong while building, fitting or scoring a probe.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// A hyper-parameter is out of range.
    #[error("invalid parameter {param}: {reason}")]
    InvalidParam { param: &'static str, reason: String },

    /// The data cannot be fitted or scored: too few rows, one class empty, a NaN, shapes that
    /// do not match.
    #[error("invalid data: {0}")]
    InvalidData(String),

    /// The numerical fit failed (a singular covariance, a direction of zero length).
    #[error("fit failed: {0}")]
    FitFailed(String),

    #[error("linfa: {0}")]
    Linfa(#[from] linfa::Error),

    #[error("linfa-logistic: {0}")]
    Logistic(#[from] linfa_logistic::error::Error),

    #[error("model: {0}")]
    Model(#[from] mesa_nn::NnError),

    #[error("evaluation: {0}")]
    Eval(#[from] mesa_eval::EvalError),
}

/// Result type of `mesa-probe`.
pub type Result<T> = std::result::Result<T, ProbeError>;

impl ProbeError {
    /// The detector-contract error for the detector called `detector`.
    pub fn into_detect(self, detector: &str) -> DetectError {
        let detector = detector.to_string();
        match self {
            ProbeError::InvalidParam { param, reason } => DetectError::InvalidParam {
                detector,
                param,
                reason,
            },
            ProbeError::InvalidData(reason) => DetectError::InvalidFitData { detector, reason },
            ProbeError::Model(source) => DetectError::Model { detector, source },
            other => DetectError::FitFailed {
                detector,
                reason: other.to_string(),
            },
        }
    }
}
