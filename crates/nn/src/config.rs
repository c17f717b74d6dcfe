//! Model configuration: one transformer type with pluggable parts, and named presets.
//!
//! Presets are types (`Tiny`, `Small`) that fix the layer sizes; the parts that differ between
//! organisms (token or real-vector input, softmax or linear attention, MLP or not, output width)
//! are fields of [`ModelConfig`]. Batch size and sequence length are always runtime.

use serde::{Deserialize, Serialize};

use crate::error::{NnError, Result};

/// What the model reads at each position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputFront {
    /// Token ids in `0..vocab`, looked up in an embedding table (`W_E`).
    Tokens { vocab: usize },
    /// Real vectors of width `dim`, mapped into the residual stream by a linear layer
    /// (in-context regression feeds `(x_i, y_i)` this way).
    Vectors { dim: usize },
}

/// How each block mixes positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionKind {
    /// Causal softmax attention, scores scaled by `1/sqrt(d_head)`.
    Softmax,
    /// Causal linear attention: the pattern is the raw score `q.k` (no softmax), scaled by
    /// `1/n_positions` (von Oswald et al. 2023 use this form to show in-context gradient descent).
    Linear,
}

/// Full description of a model's shape. Stored in every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Name of the preset the sizes came from (`tiny`, `small`, or `custom`).
    pub preset: String,
    pub input: InputFront,
    /// Width of the output head: vocabulary size for language models, 1 for regression, number
    /// of actions for a policy.
    pub d_out: usize,
    pub d_model: usize,
    pub n_heads: usize,
    pub d_head: usize,
    pub n_layers: usize,
    /// Hidden width of the MLP; 0 means the blocks have no MLP (attention-only model).
    pub d_mlp: usize,
    /// Longest sequence the learned positional embedding covers; 0 means no positional embedding.
    pub max_seq: usize,
    pub attention: AttentionKind,
    /// Pre-LayerNorm before attention, MLP and unembedding; false gives a LayerNorm-free model.
    pub layer_norm: bool,
}

/// A named set of layer sizes.
pub trait Preset {
    const NAME: &'static str;
    const D_MODEL: usize;
    const N_HEADS: usize;
    const N_LAYERS: usize;
    const D_MLP: usize;

    /// A causal softmax language model over `vocab` tokens with a learned positional embedding.
    fn language_model(vocab: usize, max_seq: usize) -> ModelConfig {
        ModelConfig {
            preset: Self::NAME.to_string(),
            input: InputFront::Tokens { vocab },
            d_out: vocab,
            d_model: Self::D_MODEL,
            n_heads: Self::N_HEADS,
            d_head: Self::D_MODEL / Self::N_HEADS,
            n_layers: Self::N_LAYERS,
            d_mlp: Self::D_MLP,
            max_seq,
            attention: AttentionKind::Softmax,
            layer_norm: true,
        }
    }
}

/// d_model 32, 2 heads, 2 layers, MLP 128: trains in seconds in tests.
#[derive(Clone, Copy, Debug)]
pub struct Tiny;
impl Preset for Tiny {
    const NAME: &'static str = "tiny";
    const D_MODEL: usize = 32;
    const N_HEADS: usize = 2;
    const N_LAYERS: usize = 2;
    const D_MLP: usize = 128;
}

/// d_model 64, 4 heads, 2 layers, MLP 256: the benchmark shape.
#[derive(Clone, Copy, Debug)]
pub struct Small;
impl Preset for Small {
    const NAME: &'static str = "small";
    const D_MODEL: usize = 64;
    const N_HEADS: usize = 4;
    const N_LAYERS: usize = 2;
    const D_MLP: usize = 256;
}

/// d_model 64, 4 heads, 4 layers, MLP 256.
#[derive(Clone, Copy, Debug)]
pub struct Small4;
impl Preset for Small4 {
    const NAME: &'static str = "small4";
    const D_MODEL: usize = 64;
    const N_HEADS: usize = 4;
    const N_LAYERS: usize = 4;
    const D_MLP: usize = 256;
}

impl ModelConfig {
    /// Width of the input front: vocabulary size or vector width.
    pub fn d_in(&self) -> usize {
        match self.input {
            InputFront::Tokens { vocab } => vocab,
            InputFront::Vectors { dim } => dim,
        }
    }

    /// Checks every size; called by every constructor and loader.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &'static str, reason: &str| {
            Err(NnError::InvalidConfig {
                field,
                reason: reason.to_string(),
            })
        };
        if self.d_in() == 0 {
            return bad("input", "vocabulary size / vector width must be positive");
        }
        if self.d_out == 0 {
            return bad("d_out", "must be positive");
        }
        if self.d_model == 0 {
            return bad("d_model", "must be positive");
        }
        if self.n_heads == 0 || self.d_head == 0 {
            return bad("n_heads", "n_heads and d_head must be positive");
        }
        if self.n_layers == 0 {
            return bad("n_layers", "must be positive");
        }
        Ok(())
    }
}
