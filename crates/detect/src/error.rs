//! The error every detector returns instead of a score it cannot stand behind.

use mesa_nn::NnError;
use thiserror::Error;

/// Why a detector could not be built, fitted or scored. There is no "safe" fallback: a caller
/// that gets one of these has no score for the input or model.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DetectError {
    /// A hyper-parameter is out of range (checked once, before fitting).
    #[error("detector `{detector}`: parameter {param}: {reason}")]
    InvalidParam {
        detector: String,
        param: &'static str,
        reason: String,
    },

    /// The fit data lacks what the detector needs (labels, contrast pairs, unlabelled inputs),
    /// or what it has is unusable (one class empty, lengths that do not match).
    #[error("detector `{detector}`: fit data: {reason}")]
    InvalidFitData { detector: String, reason: String },

    /// The audited model comes without a training log (a checkpoint saved without one), or the
    /// detector did not declare it in its needs: a detector that reads the log has no score.
    #[error(
        "detector `{detector}`: needs the audited model's training log, none given (the \
         checkpoint records none, or the detector did not declare it in its needs)"
    )]
    MissingTrainingLog { detector: String },

    /// Inputs to score are unusable (empty batch, empty sequence).
    #[error("detector `{detector}`: inputs: {reason}")]
    InvalidInputs { detector: String, reason: String },

    /// The numerical fit failed (singular matrix, solver did not converge, degenerate data).
    #[error("detector `{detector}`: fit failed: {reason}")]
    FitFailed { detector: String, reason: String },

    /// A detector returned a score that is not finite, or the wrong number of scores: a bug in
    /// the detector, caught before the score reaches an evaluation.
    #[error("detector `{detector}`: {reason}")]
    BadScores { detector: String, reason: String },

    /// A detector broke the contract it registered with (it declares other data than its
    /// registry entry says).
    #[error("detector `{detector}` breaks its contract: {reason}")]
    Contract { detector: String, reason: String },

    /// No detector of this name is registered.
    #[error("unknown detector `{name}`; registered: {known}")]
    UnknownDetector { name: String, known: String },

    /// Two detectors were registered under one name.
    #[error("detector name `{name}` is registered twice")]
    DuplicateName { name: String },

    /// Running the model failed.
    #[error("detector `{detector}`: model: {source}")]
    Model {
        detector: String,
        #[source]
        source: NnError,
    },
}

/// Result type of the detector contract.
pub type Result<T> = std::result::Result<T, DetectError>;
