//! Typed errors of `mesa-gdfp`.

/// Everything that can go wrong when fingerprinting a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GdfpError {
    /// A hyper-parameter is out of range.
    #[error("invalid fingerprint parameter `{field}`: {reason}")]
    InvalidParams { field: &'static str, reason: String },

    /// Task arrays of inconsistent shapes, or a model whose input width does not fit them.
    #[error("invalid tasks: {0}")]
    InvalidTasks(String),

    /// A least-squares fit had no unique solution.
    #[error("singular system in {0}")]
    Singular(&'static str),

    /// A metric came out NaN or infinite; reported as an error, never as a score.
    #[error("metric `{0}` is not finite")]
    NonFinite(&'static str),

    #[error(transparent)]
    Nn(#[from] mesa_nn::NnError),
}

/// Result type of `mesa-gdfp`.
pub type Result<T> = std::result::Result<T, GdfpError>;
