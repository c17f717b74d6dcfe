//! The one error type of the crate.

use thiserror::Error;

/// Everything that stops a risk model from being fitted or a verdict from being given.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A hyper-parameter is out of its range.
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParam {
        name: &'static str,
        value: f64,
        reason: &'static str,
    },

    /// The training set cannot support a fit.
    #[error("cannot fit the risk model: {0}")]
    InvalidTraining(String),

    /// Every detector failed on the model under audit: there is nothing to judge, and an
    /// absent verdict is never "safe".
    #[error("every detector failed on this model ({0}): no verdict")]
    AllFailed(String),

    /// The model under audit was scored by detectors the risk model was not fitted on, or
    /// lacks some of them entirely (neither a score nor an error).
    #[error("detector {0} is unknown to the fitted risk model or was not run")]
    DetectorMismatch(String),

    /// A detector returned a score that is NaN or infinite (it should have been an error).
    #[error("detector {detector} returned the non-finite score {value}")]
    NonFinite { detector: String, value: f64 },

    /// A metric of the held-out evaluation failed.
    #[error(transparent)]
    Eval(#[from] mesa_eval::EvalError),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, AuditError>;
