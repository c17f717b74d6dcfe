//! The one error type of the crate.
//!
//! Every metric validates its input before computing anything, so a caller gets one of these
//! errors instead of a NaN that would silently travel into a results table.

use std::fmt;

use thiserror::Error;

/// Which side of the ground truth an example is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Label `true`: the example the detector should flag (backdoored, deceptive, triggered).
    Positive,
    /// Label `false`: the example the detector should leave alone.
    Negative,
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Class::Positive => f.write_str("positive"),
            Class::Negative => f.write_str("negative"),
        }
    }
}

/// Everything that can make a metric undefined.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Two slices that must pair up element by element have different lengths.
    #[error("length mismatch: {left_name} has {left} elements but {right_name} has {right}")]
    LengthMismatch {
        left_name: &'static str,
        left: usize,
        right_name: &'static str,
        right: usize,
    },

    /// An input slice that must hold at least one element is empty.
    #[error("{name} is empty")]
    EmptyInput { name: &'static str },

    /// A ranking metric needs examples of both classes, and this one has none.
    #[error("no {class} examples: the metric needs both classes")]
    EmptyClass { class: Class },

    /// A variance estimate needs more examples of one class than were given.
    #[error("{class} class has {found} examples but at least {needed} are needed")]
    TooFewInClass {
        class: Class,
        needed: usize,
        found: usize,
    },

    /// A score is NaN or infinite; ranks (and therefore AUROC) are meaningless then.
    #[error("{name}[{index}] is {value}, not a finite number")]
    NonFiniteScore {
        name: &'static str,
        index: usize,
        value: f64,
    },

    /// A calibration metric got a "probability" outside [0, 1].
    #[error("probability[{index}] = {value} lies outside [0, 1]")]
    ProbabilityOutOfRange { index: usize, value: f64 },

    /// A target false-positive rate must lie strictly between 0 and 1.
    #[error("target false-positive rate {fpr} lies outside the open interval (0, 1)")]
    FprOutOfRange { fpr: f64 },

    /// A confidence level must lie strictly between 0 and 1 (0.95 for a 95% interval).
    #[error("confidence level {confidence} lies outside the open interval (0, 1)")]
    ConfidenceOutOfRange { confidence: f64 },

    /// A correlation with a constant side is undefined.
    #[error("{name} is constant: the correlation is undefined")]
    ConstantInput { name: &'static str },

    /// A proportion needs `0 <= successes <= n` and `n > 0`.
    #[error("a proportion needs 0 <= successes <= n and n > 0, got {successes} of {n}")]
    InvalidProportion { successes: usize, n: usize },

    /// A count parameter (resamples, bins) must be positive.
    #[error("parameter {name} must be at least 1, got {value}")]
    ZeroCount { name: &'static str, value: usize },

    /// A metric handed to the bootstrap returned NaN or an infinity.
    #[error("the bootstrapped metric returned {value}, not a finite number")]
    NonFiniteMetric { value: f64 },

    /// DeLong's test has zero standard error while the two AUROCs differ, so its z statistic
    /// would be infinite. Happens when every example is ranked with no spread at all
    /// (for instance one detector separates perfectly and the other gives every input the
    /// same score); compare such detectors with the bootstrap instead.
    #[error(
        "DeLong test is degenerate: AUROCs {auroc_a} and {auroc_b} differ but the standard \
         error of their difference is 0"
    )]
    DegenerateTest { auroc_a: f64, auroc_b: f64 },
}

/// Result alias used by every fallible function in the crate.
pub type Result<T> = std::result::Result<T, EvalError>;

/// Why a result table or plot could not be written. Nothing is left on disk when one of these
/// is returned: every file is written to a temporary name and renamed only once all are done.
#[cfg(any(feature = "tables", feature = "plots"))]
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A table has no rows, so its columns and their types are unknown.
    #[error("table `{table}` has no rows")]
    EmptyTable { table: String },

    /// A row cannot become a table row: not a flat struct, a NaN, a field of a different type
    /// than in the rows before it.
    #[error("table `{table}`, row {row}, field `{field}`: {reason}")]
    InvalidRow {
        table: String,
        row: usize,
        field: String,
        reason: String,
    },

    /// Polars refused the frame or failed to encode it.
    #[error("{path}: polars: {message}")]
    Polars {
        path: std::path::PathBuf,
        message: String,
    },

    /// Plot data that cannot be drawn (empty, non-finite, mismatched lengths).
    #[error("plot `{plot}`: {reason}")]
    InvalidPlot { plot: String, reason: String },

    /// plotters failed to draw or encode the image.
    #[error("{path}: plotters: {message}")]
    Plot {
        path: std::path::PathBuf,
        message: String,
    },

    /// A metadata value could not be serialised to JSON.
    #[error("metadata: {0}")]
    Metadata(String),
}
